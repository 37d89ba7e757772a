/* fuzz_model_dir.c — libFuzzer target: the model-folder loader
 * (config.json + weights.safetensors).  The input is split at the first
 * 0xFF byte into the two files, written to a private temp folder. */
#include "attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void put(const char *name, const uint8_t *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/attn_fuzz_dirXXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    const uint8_t *cut = memchr(data, 0xFF, size);
    size_t n1 = cut ? (size_t)(cut - data) : size;
    put("config.json", data, n1);
    char w[128];
    snprintf(w, sizeof w, "%s/weights.safetensors", dir);
    if (cut) put("weights.safetensors", cut + 1, size - n1 - 1);
    else unlink(w);
    attn_model *m = NULL;
    attn_error e;
    if (attn_model_load_dir(dir, &m, &e) == ATTN_OK) attn_model_free(m);
    return 0;
}
