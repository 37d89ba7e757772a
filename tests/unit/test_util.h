/*
 * test_util.h — small helpers shared by the cmocka unit tests of the core:
 * deterministic random tensors, building a model from JSON, running it.
 */
#ifndef ATTN_TEST_UTIL_H
#define ATTN_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"

static inline uint64_t tu_next(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

/* Uniform in [-1, 1). */
static inline float tu_rand(uint64_t *s) { return (float)((double)tu_next(s) / 9007199254740992.0 * 2.0 - 1.0); }

static inline attn_tensor *tu_randn(uint64_t *seed, int rank, const int64_t *shape) {
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, rank, shape, &t, NULL), ATTN_OK);
    float *p = t->data;
    for (size_t i = 0; i < t->numel; i++) p[i] = tu_rand(seed);
    return t;
}

static inline void tu_add(attn_tensor_set *s, const char *name, attn_tensor *t) {
    assert_int_equal(attn_tensor_set_add(s, name, t, NULL), ATTN_OK);
}

/* Adds random queries (N,L,H,E), keys (N,S,H,E), values (N,S,H,D). */
static inline attn_tensor_set *tu_qkv(uint64_t seed, int64_t N, int64_t L, int64_t S, int64_t H, int64_t E,
                                      int64_t D) {
    attn_tensor_set *s = attn_tensor_set_new();
    int64_t q[4] = {N, L, H, E}, k[4] = {N, S, H, E}, v[4] = {N, S, H, D};
    tu_add(s, "queries", tu_randn(&seed, 4, q));
    tu_add(s, "keys", tu_randn(&seed, 4, k));
    tu_add(s, "values", tu_randn(&seed, 4, v));
    return s;
}

static inline attn_tensor *tu_lengths(int64_t N, const int64_t *vals) {
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(ATTN_I64, 1, &N, &t, NULL), ATTN_OK);
    memcpy(t->data, vals, (size_t)N * sizeof(int64_t));
    return t;
}

/* Bool (L,S) mask with m[l][s] = s <= l + shift. */
static inline attn_tensor *tu_tril(int64_t L, int64_t S, int64_t shift) {
    attn_tensor *t = NULL;
    int64_t sh[2] = {L, S};
    assert_int_equal(attn_tensor_new(ATTN_BOOL, 2, sh, &t, NULL), ATTN_OK);
    uint8_t *p = t->data;
    for (int64_t l = 0; l < L; l++)
        for (int64_t s = 0; s < S; s++) p[l * S + s] = s <= l + shift;
    return t;
}

static inline attn_model *tu_model(const char *type, const char *cfg) {
    attn_model *m = NULL;
    attn_error e = {0};
    attn_status st = attn_model_new(type, cfg, NULL, &m, &e);
    if (st) fail_msg("model %s %s: %s", type, cfg ? cfg : "", e.msg);
    return m;
}

/* Runs m; returns the output (caller frees) or NULL with *st/e set. */
static inline attn_tensor *tu_run(const attn_model *m, const attn_tensor_set *in, int threads, attn_status *st,
                                  attn_error *e) {
    attn_ctx *c = attn_ctx_new(threads);
    attn_tensor *o = NULL;
    attn_error local = {0};
    attn_status s = attn_model_forward(m, c, in, &o, e ? e : &local);
    attn_ctx_free(c);
    if (st) *st = s;
    return o;
}

static inline attn_tensor *tu_run_ok(const attn_model *m, const attn_tensor_set *in, int threads) {
    attn_error e = {0};
    attn_status st;
    attn_tensor *o = tu_run(m, in, threads, &st, &e);
    if (st) fail_msg("forward: %s", e.msg);
    return o;
}

static inline float tu_maxdiff(const attn_tensor *a, const attn_tensor *b) {
    assert_int_equal(a->numel, b->numel);
    float md = 0;
    const float *x = a->data, *y = b->data;
    for (size_t i = 0; i < a->numel; i++) {
        float d = fabsf(x[i] - y[i]);
        if (d != d) return INFINITY;
        md = d > md ? d : md;
    }
    return md;
}

#endif
