/*
 * bench_maps_overhead.c — times attn_model_forward of one case on several
 * builds of libattn in one process, interleaved forward by forward, for
 * bench/maps_overhead.py.
 *
 *   bench_maps_overhead CASE_DIR THREADS ROUNDS LIB.so [LIB.so ...]
 *
 * Each LIB.so (a libattn.so; pass a copy of a file to load it twice, as an
 * A/A control) is dlopen'ed RTLD_LOCAL, so every build keeps its own
 * symbols, and loads CASE_DIR/model and CASE_DIR/inputs.safetensors with
 * its own functions.  One warm-up forward per build, then ROUNDS rounds;
 * a round runs one forward of every build, in an order that rotates from
 * round to round.  Only the public API of the oldest build is used
 * (attn_model_load_dir, attn_safetensors_read_file, attn_ctx_new,
 * attn_model_forward, ...), so builds from before the attention maps load
 * too.  Prints one JSON line per build: {"lib", "threads",
 * "workspace_bytes" (attn_model_workspace_size: the scratch a forward
 * takes), "wall_ms": [...], "cpu_ms": [...]} (cpu: the process's CPU time
 * over the forward, which another job on the machine does not inflate).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "attn.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lib {
    const char *path;
    void *h;
    attn_status (*load_dir)(const char *, attn_model **, attn_error *);
    attn_status (*read_file)(const char *, attn_tensor_set **, attn_error *);
    attn_ctx *(*ctx_new)(int);
    void (*ctx_free)(attn_ctx *);
    attn_status (*forward)(const attn_model *, attn_ctx *, const attn_tensor_set *, attn_tensor **, attn_error *);
    void (*tensor_free)(attn_tensor *);
    void (*set_free)(attn_tensor_set *);
    void (*model_free)(attn_model *);
    attn_status (*ws_size)(const attn_model *, const attn_tensor_set *, int, size_t *, attn_error *);
    attn_model *m;
    size_t ws_bytes;
    attn_tensor_set *in;
    attn_ctx *ctx;
    double *wall, *cpu;
} lib;

static double clock_ms(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

#define SYM(l, field, name)                                                             \
    do {                                                                                \
        *(void **)&(l)->field = dlsym((l)->h, name);                                    \
        if (!(l)->field) {                                                              \
            fprintf(stderr, "%s: no symbol %s\n", (l)->path, name);                     \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

static int open_lib(lib *l, const char *dir, int threads, int rounds) {
    char p[4096];
    attn_error e = {0};
    if (!(l->h = dlopen(l->path, RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    SYM(l, load_dir, "attn_model_load_dir");
    SYM(l, read_file, "attn_safetensors_read_file");
    SYM(l, ctx_new, "attn_ctx_new");
    SYM(l, ctx_free, "attn_ctx_free");
    SYM(l, forward, "attn_model_forward");
    SYM(l, tensor_free, "attn_tensor_free");
    SYM(l, set_free, "attn_tensor_set_free");
    SYM(l, model_free, "attn_model_free");
    SYM(l, ws_size, "attn_model_workspace_size");
    snprintf(p, sizeof p, "%s/model", dir);
    if (l->load_dir(p, &l->m, &e)) {
        fprintf(stderr, "%s: %s: %s\n", l->path, p, e.msg);
        return 1;
    }
    snprintf(p, sizeof p, "%s/inputs.safetensors", dir);
    if (l->read_file(p, &l->in, &e)) {
        fprintf(stderr, "%s: %s: %s\n", l->path, p, e.msg);
        return 1;
    }
    if (l->ws_size(l->m, l->in, threads, &l->ws_bytes, &e)) {
        fprintf(stderr, "%s: workspace size: %s\n", l->path, e.msg);
        return 1;
    }
    l->ctx = l->ctx_new(threads);
    l->wall = calloc((size_t)rounds, sizeof *l->wall);
    l->cpu = calloc((size_t)rounds, sizeof *l->cpu);
    return !l->ctx || !l->wall || !l->cpu;
}

static int run_once(lib *l, double *wall, double *cpu) {
    attn_tensor *out = NULL;
    attn_error e = {0};
    double w0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    attn_status st = l->forward(l->m, l->ctx, l->in, &out, &e);
    double c1 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), w1 = clock_ms(CLOCK_MONOTONIC);
    if (st) {
        fprintf(stderr, "%s: forward: %s\n", l->path, e.msg);
        return 1;
    }
    l->tensor_free(out);
    if (wall) *wall = w1 - w0;
    if (cpu) *cpu = c1 - c0;
    return 0;
}

static void print_list(const char *key, const double *x, int n) {
    printf("\"%s\": [", key);
    for (int i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", x[i]);
    printf("]");
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_maps_overhead CASE_DIR THREADS ROUNDS LIB.so [LIB.so ...]\n");
        return 2;
    }
    const char *dir = argv[1];
    int threads = atoi(argv[2]), rounds = atoi(argv[3]), n = argc - 4;
    if (threads < 1 || rounds < 1) return 2;
    lib *libs = calloc((size_t)n, sizeof *libs);
    if (!libs) return 1;
    for (int i = 0; i < n; i++) {
        libs[i].path = argv[4 + i];
        if (open_lib(&libs[i], dir, threads, rounds)) return 1;
    }
    for (int i = 0; i < n; i++)
        if (run_once(&libs[i], NULL, NULL)) return 1; /* warm-up */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n; k++) {
            lib *l = &libs[(r + k) % n];
            if (run_once(l, &l->wall[r], &l->cpu[r])) return 1;
        }
    for (int i = 0; i < n; i++) {
        printf("{\"lib\": \"%s\", \"threads\": %d, \"workspace_bytes\": %zu, ", libs[i].path, threads,
               libs[i].ws_bytes);
        print_list("wall_ms", libs[i].wall, rounds);
        printf(", ");
        print_list("cpu_ms", libs[i].cpu, rounds);
        printf("}\n");
        libs[i].set_free(libs[i].in);
        libs[i].model_free(libs[i].m);
        libs[i].ctx_free(libs[i].ctx);
    }
    free(libs);
    return 0;
}
