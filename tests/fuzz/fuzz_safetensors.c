/* fuzz_safetensors.c — libFuzzer target: the safetensors reader must reject
 * or accept any byte string without crashing, leaking or reading out of
 * bounds; anything it accepts must survive a write/read round trip. */
#include "attn.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    attn_tensor_set *s = NULL;
    attn_error e;
    if (attn_safetensors_read_mem(data, size, &s, &e) != ATTN_OK) return 0;
    void *buf = NULL;
    size_t len = 0;
    if (attn_safetensors_write_mem(s, &buf, &len, &e) == ATTN_OK) {
        attn_tensor_set *r = NULL;
        if (attn_safetensors_read_mem(buf, len, &r, &e) != ATTN_OK) abort(); /* our own output must parse */
        if (attn_tensor_set_count(r) != attn_tensor_set_count(s)) abort();
        attn_tensor_set_free(r);
        free(buf);
    }
    attn_tensor_set_free(s);
    return 0;
}
