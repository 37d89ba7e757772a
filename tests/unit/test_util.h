/*
 * test_util.h — the helpers every cmocka unit test uses (include it first,
 * instead of cmocka.h): deterministic random numbers and tensors, building a
 * model from JSON, running it, comparing outputs.  One naming style: every
 * shared helper is `tu_<noun>[_<verb>]`; helpers that exist for one
 * mechanism's test stay in that test file, built on these.
 *
 * Random numbers: tu_next is the one generator (a 64-bit LCG); tu_rand is
 * uniform in [-1, 1), tu_urand uniform in [0, 1), tu_gauss roughly normal.
 * Models: tu_model / tu_model_w fail the test on error, tu_model_try and
 * tu_model_status return the status, tu_model_fails expects one.  Runs:
 * tu_run / tu_run_ok / tu_run_status.  Comparisons: tu_assert_close (relative
 * tolerance tol * (1 + |want|)), tu_maxdiff, tu_rows_diff.
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

#include <sys/wait.h>
#include <unistd.h>

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

/* ---- more random numbers and tensors ---- */

/* Uniform in [0, 1), 53 bits. */
static inline double tu_urand(uint64_t *s) { return (double)tu_next(s) / 9007199254740992.0; }

/* Sum of four uniforms scaled to unit variance: plenty for test inputs, and
 * no libm dependence on order.  Uses the top 24 bits of each state. */
static inline float tu_gauss(uint64_t *s) {
    float x = 0.0f;
    for (int i = 0; i < 4; i++) x += (float)((tu_next(s) >> 29) & 0xffffff) / 16777216.0f - 0.5f;
    return x * 1.7320508f;
}

/* F32 tensor of scale * tu_gauss; scale 0 gives zeros. */
static inline attn_tensor *tu_gauss_tensor(uint64_t *seed, int rank, const int64_t *shape, float scale) {
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, rank, shape, &t, NULL), ATTN_OK);
    float *p = t->data;
    for (size_t i = 0; i < t->numel; i++) p[i] = scale * tu_gauss(seed);
    return t;
}

/* A new tensor holding a copy of `data` (t->nbytes bytes). */
static inline attn_tensor *tu_tensor(attn_dtype dt, int rank, const int64_t *shape, const void *data) {
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(dt, rank, shape, &t, NULL), ATTN_OK);
    memcpy(t->data, data, t->nbytes);
    return t;
}

static inline attn_tensor *tu_copy(const attn_tensor *t) { return tu_tensor(t->dtype, t->rank, t->shape, t->data); }

/* Bool (rows, cols) tensor from rows * cols bytes. */
static inline attn_tensor *tu_mask(int64_t rows, int64_t cols, const uint8_t *vals) {
    const int64_t sh[2] = {rows, cols};
    return tu_tensor(ATTN_BOOL, 2, sh, vals);
}

/* ---- models ---- */

/* attn_model_new with *m and *e cleared first; *m is the caller's on success. */
static inline attn_status tu_model_try(const char *type, const char *cfg, const attn_tensor_set *w, attn_model **m,
                                       attn_error *e) {
    memset(e, 0, sizeof *e);
    *m = NULL;
    return attn_model_new(type, cfg, w, m, e);
}

/* The status of building type/cfg/w (the model, if any, is freed). */
static inline attn_status tu_model_status(const char *type, const char *cfg, const attn_tensor_set *w,
                                          attn_error *e) {
    attn_model *m = NULL;
    attn_status st = tu_model_try(type, cfg, w, &m, e);
    attn_model_free(m);
    return st;
}

/* tu_model with weights `w` (borrowed). */
static inline attn_model *tu_model_w(const char *type, const char *cfg, const attn_tensor_set *w) {
    attn_model *m = NULL;
    attn_error e;
    if (tu_model_try(type, cfg, w, &m, &e)) fail_msg("model %s %s: %s", type, cfg ? cfg : "", e.msg);
    return m;
}

/* Expects building to fail with `code` and a message containing `needle`. */
static inline void tu_model_fails(const char *type, const char *cfg, const attn_tensor_set *w, attn_status code,
                                  const char *needle) {
    attn_model *m = NULL;
    attn_error e;
    attn_status st = tu_model_try(type, cfg, w, &m, &e);
    if (st != code || !strstr(e.msg, needle))
        fprintf(stderr, "%s %s: got %d '%s', want %d '%s'\n", type, cfg, st, e.msg, code, needle);
    assert_int_equal(st, code);
    assert_null(m);
    assert_non_null(strstr(e.msg, needle));
}

/* ---- runs ---- */

/* Runs m with the NULL context (one thread) and returns the status; any
 * output is freed, and a failed run must have made none. */
static inline attn_status tu_run_status(const attn_model *m, const attn_tensor_set *in, attn_error *e) {
    attn_tensor *out = NULL;
    memset(e, 0, sizeof *e);
    attn_status st = attn_model_forward(m, NULL, in, &out, e);
    if (st == ATTN_OK) attn_tensor_free(out);
    else assert_null(out);
    return st;
}

/* ---- comparisons ---- */

/* Every |got - want| <= tol * (1 + |want|), NaN failing. */
static inline void tu_assert_close(const float *got, const float *want, size_t n, float tol) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol * (1.0f + fabsf(want[i]))))
            fail_msg("element %zu: got %.8g, want %.8g", i, (double)got[i], (double)want[i]);
}

/* Same shapes, then tu_assert_close with b as the wanted values. */
static inline void tu_assert_tensor_close(const attn_tensor *a, const attn_tensor *b, float tol) {
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) assert_int_equal(a->shape[i], b->shape[i]);
    tu_assert_close(a->data, b->data, a->numel, tol);
}

/* max |a - b| over rows [r0, r1) of batch bi of two (B,N,D) tensors; INFINITY on NaN. */
static inline float tu_rows_diff(const attn_tensor *a, const attn_tensor *b, int64_t bi, int64_t r0, int64_t r1) {
    const int64_t N = a->shape[1], D = a->shape[2];
    const float *x = (const float *)a->data + bi * N * D, *y = (const float *)b->data + bi * N * D;
    float md = 0;
    for (int64_t i = r0 * D; i < r1 * D; i++) {
        float d = fabsf(x[i] - y[i]);
        if (d != d) return INFINITY;
        md = d > md ? d : md;
    }
    return md;
}

/* ---- queries/keys/values as plain arrays (the random mechanisms' tests) ---- */

typedef struct tu_qkv_buf {
    int64_t N, L, S, H, E, D;
    float *q, *k, *v;       /* (N,L,H,E), (N,S,H,E), (N,S,H,D), tu_gauss */
    uint8_t *mask;          /* attn_mask (L,S) or NULL */
    int64_t *ql, *kl;       /* query_lengths, key_lengths (N) or NULL */
} tu_qkv_buf;

static inline tu_qkv_buf tu_qkv_buf_new(int64_t N, int64_t L, int64_t S, int64_t H, int64_t E, int64_t D,
                                        uint64_t seed) {
    tu_qkv_buf a = {N, L, S, H, E, D, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = (size_t)(N * L * H * E), nk = (size_t)(N * S * H * E), nv = (size_t)(N * S * H * D);
    a.q = malloc(nq * sizeof(float));
    a.k = malloc(nk * sizeof(float));
    a.v = malloc(nv * sizeof(float));
    assert_non_null(a.q);
    assert_non_null(a.k);
    assert_non_null(a.v);
    for (size_t i = 0; i < nq; i++) a.q[i] = tu_gauss(&seed);
    for (size_t i = 0; i < nk; i++) a.k[i] = tu_gauss(&seed);
    for (size_t i = 0; i < nv; i++) a.v[i] = tu_gauss(&seed);
    return a;
}

static inline void tu_qkv_buf_free(tu_qkv_buf *a) {
    free(a->q);
    free(a->k);
    free(a->v);
    free(a->mask);
    free(a->ql);
    free(a->kl);
}

/* The output's element count, N * L * H * D. */
static inline size_t tu_qkv_buf_out_numel(const tu_qkv_buf *a) { return (size_t)(a->N * a->L * a->H * a->D); }

/* Sets a lower-triangular (causal) attn_mask. */
static inline void tu_qkv_buf_causal(tu_qkv_buf *a) {
    a->mask = calloc((size_t)(a->L * a->S), 1);
    assert_non_null(a->mask);
    for (int64_t i = 0; i < a->L; i++)
        for (int64_t j = 0; j <= i && j < a->S; j++) a->mask[i * a->S + j] = 1;
}

/* Builds `type` with `config` and runs it on a with `threads`; *out owned (NULL on error). */
static inline attn_status tu_qkv_buf_run(const char *type, const char *config, const tu_qkv_buf *a, int threads,
                                         attn_tensor **out, attn_error *err) {
    attn_model *m = NULL;
    *out = NULL;
    attn_status st = attn_model_new(type, config, NULL, &m, err);
    if (st) return st;
    attn_tensor_set *s = attn_tensor_set_new();
    assert_non_null(s);
    int64_t qs[4] = {a->N, a->L, a->H, a->E}, ks[4] = {a->N, a->S, a->H, a->E}, vs[4] = {a->N, a->S, a->H, a->D},
            ms[2] = {a->L, a->S}, ns[1] = {a->N};
    tu_add(s, "queries", tu_tensor(ATTN_F32, 4, qs, a->q));
    tu_add(s, "keys", tu_tensor(ATTN_F32, 4, ks, a->k));
    tu_add(s, "values", tu_tensor(ATTN_F32, 4, vs, a->v));
    if (a->mask) tu_add(s, "attn_mask", tu_tensor(ATTN_BOOL, 2, ms, a->mask));
    if (a->ql) tu_add(s, "query_lengths", tu_tensor(ATTN_I64, 1, ns, a->ql));
    if (a->kl) tu_add(s, "key_lengths", tu_tensor(ATTN_I64, 1, ns, a->kl));
    attn_ctx *ctx = attn_ctx_new(threads);
    st = attn_model_forward(m, ctx, s, out, err);
    attn_ctx_free(ctx);
    attn_tensor_set_free(s);
    attn_model_free(m);
    return st;
}

/* tu_qkv_buf_run at 2 threads that must succeed with an (N,L,H,D) output. */
static inline attn_tensor *tu_qkv_buf_run_ok(const char *type, const char *config, const tu_qkv_buf *a) {
    attn_tensor *out;
    attn_error err = {0};
    attn_status st = tu_qkv_buf_run(type, config, a, 2, &out, &err);
    if (st) fail_msg("%s %s: %s", type, config, err.msg);
    assert_int_equal(out->rank, 4);
    assert_int_equal(out->shape[0], a->N);
    assert_int_equal(out->shape[1], a->L);
    assert_int_equal(out->shape[2], a->H);
    assert_int_equal(out->shape[3], a->D);
    return out;
}

/* tu_qkv_buf_run at 1 thread; returns the status (any output is freed). */
static inline attn_status tu_qkv_buf_run_err(const char *type, const char *config, const tu_qkv_buf *a,
                                             attn_error *err) {
    attn_tensor *out;
    attn_status st = tu_qkv_buf_run(type, config, a, 1, &out, err);
    attn_tensor_free(out);
    return st;
}

/* The exit status of this test binary run again (/proc/self/exe) with the
 * arguments arg1 and arg2 (either may be NULL: fewer), and the environment
 * variable `name` set to `value` (NULL: unset) — for settings the library
 * reads once per process. */
static inline int tu_rerun(const char *name, const char *value, const char *arg1, const char *arg2) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (value) setenv(name, value, 1);
        else unsetenv(name);
        execl("/proc/self/exe", "unit-test", arg1, arg2, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

#endif
