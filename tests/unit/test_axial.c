/*
 * test_axial.c — axial, axial_positional_embedding, axial_image_transformer
 * and the conv2d / channel-norm kernels under them.  The golden cases check
 * the numbers against the reference; these tests check what must hold for
 * any size or config: shapes, layouts that must agree with each other (the
 * embedding first or last, sum vs sequence with one axis, one N-D model vs
 * its axes run separately), the identity a zeroed transformer must be,
 * the kernels against plain loops, and every rejected config, weight and
 * input with its status and a message naming the culprit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "kernels/conv2d.h"
#include "kernels/image_ops.h"

/* ---- fixtures ---- */

static float gauss(uint64_t *s) {
    float x = 0.0f;
    for (int i = 0; i < 4; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x += (float)((*s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    return x * 1.7320508f;
}

static attn_tensor *rand_tensor(int rank, const int64_t *shape, uint64_t seed, float scale) {
    attn_tensor *t;
    assert_int_equal(attn_tensor_new(ATTN_F32, rank, shape, &t, NULL), ATTN_OK);
    float *d = t->data;
    for (size_t i = 0; i < t->numel; i++) d[i] = scale * gauss(&seed);
    return t;
}

/* Adds a random weight; scale 0 gives zeros. */
static void wadd(attn_tensor_set *w, const char *name, int rank, const int64_t *shape,
                 uint64_t seed, float scale) {
    assert_int_equal(attn_tensor_set_add(w, name, rand_tensor(rank, shape, seed, scale), NULL),
                     ATTN_OK);
}

static void wadd2(attn_tensor_set *w, const char *name, int64_t a, int64_t b, uint64_t seed,
                  float scale) {
    int64_t s[2] = {a, b};
    wadd(w, name, 2, s, seed, scale);
}

static void wadd1(attn_tensor_set *w, const char *name, int64_t a, uint64_t seed, float scale) {
    int64_t s[1] = {a};
    wadd(w, name, 1, s, seed, scale);
}

/* One SelfAttention's weights under `pre`; out_scale 0 zeroes to_out. */
static void add_sa(attn_tensor_set *w, const char *pre, int64_t dim, int64_t hid, uint64_t seed,
                   float out_scale) {
    char n[160];
    snprintf(n, sizeof n, "%sto_q.weight", pre);
    wadd2(w, n, hid, dim, seed + 1, 0.4f);
    snprintf(n, sizeof n, "%sto_kv.weight", pre);
    wadd2(w, n, 2 * hid, dim, seed + 2, 0.4f);
    snprintf(n, sizeof n, "%sto_out.weight", pre);
    wadd2(w, n, dim, hid, seed + 3, 0.4f * out_scale);
    snprintf(n, sizeof n, "%sto_out.bias", pre);
    wadd1(w, n, dim, seed + 4, 0.1f * out_scale);
}

static attn_tensor_set *axial_weights(int n_axes, int64_t dim, int64_t hid, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    assert_non_null(w);
    for (int i = 0; i < n_axes; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "axial_attentions.%d.fn.", i);
        add_sa(w, pre, dim, hid, seed + 10 * (uint64_t)i, 1.0f);
    }
    return w;
}

/* Copies the weights of axis `from` of `src` to axis 0 of a new set. */
static attn_tensor_set *one_axis(const attn_tensor_set *src, int from) {
    attn_tensor_set *w = attn_tensor_set_new();
    char pre[64];
    snprintf(pre, sizeof pre, "axial_attentions.%d.", from);
    for (size_t i = 0; i < attn_tensor_set_count(src); i++) {
        const char *name = attn_tensor_set_name(src, i);
        if (strncmp(name, pre, strlen(pre))) continue;
        const attn_tensor *t = attn_tensor_set_at(src, i);
        attn_tensor *c;
        assert_int_equal(attn_tensor_new(ATTN_F32, t->rank, t->shape, &c, NULL), ATTN_OK);
        memcpy(c->data, t->data, t->nbytes);
        char n[160];
        snprintf(n, sizeof n, "axial_attentions.0.%s", name + strlen(pre));
        assert_int_equal(attn_tensor_set_add(w, n, c, NULL), ATTN_OK);
    }
    return w;
}

static attn_model *build(const char *type, const char *cfg, const attn_tensor_set *w) {
    attn_model *m = NULL;
    attn_error err = {0};
    attn_status st = attn_model_new(type, cfg, w, &m, &err);
    if (st) fprintf(stderr, "build %s %s: %s\n", type, cfg, err.msg);
    assert_int_equal(st, ATTN_OK);
    return m;
}

/* Expects attn_model_new to fail with `code` and a message containing `needle`. */
static void build_fails(const char *type, const char *cfg, const attn_tensor_set *w,
                        attn_status code, const char *needle) {
    attn_model *m = NULL;
    attn_error err = {0};
    attn_status st = attn_model_new(type, cfg, w, &m, &err);
    if (st != code || !strstr(err.msg, needle))
        fprintf(stderr, "%s %s: got %d '%s', want %d '%s'\n", type, cfg, st, err.msg, code, needle);
    assert_int_equal(st, code);
    assert_null(m);
    assert_non_null(strstr(err.msg, needle));
}

/* Runs m on x (borrowed) with `threads`; returns the output (owned). */
static attn_tensor *run(const attn_model *m, const attn_tensor *x, int threads) {
    attn_tensor_set *in = attn_tensor_set_new();
    attn_tensor *v, *out = NULL;
    assert_int_equal(attn_tensor_view(ATTN_F32, x->rank, x->shape, x->data, x->nbytes, &v, NULL),
                     ATTN_OK);
    assert_int_equal(attn_tensor_set_add(in, "x", v, NULL), ATTN_OK);
    attn_ctx *ctx = attn_ctx_new(threads);
    attn_error err = {0};
    attn_status st = attn_model_forward(m, ctx, in, &out, &err);
    if (st) fprintf(stderr, "forward: %s\n", err.msg);
    assert_int_equal(st, ATTN_OK);
    attn_ctx_free(ctx);
    attn_tensor_set_free(in);
    return out;
}

static attn_status run_fails(const attn_model *m, const attn_tensor *x, const char *needle) {
    attn_tensor_set *in = attn_tensor_set_new();
    attn_tensor *v, *out = NULL;
    assert_int_equal(attn_tensor_view(x->dtype, x->rank, x->shape, x->data, x->nbytes, &v, NULL),
                     ATTN_OK);
    assert_int_equal(attn_tensor_set_add(in, "x", v, NULL), ATTN_OK);
    attn_ctx *ctx = attn_ctx_new(1);
    attn_error err = {0};
    attn_status st = attn_model_forward(m, ctx, in, &out, &err);
    if (!strstr(err.msg, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    assert_int_not_equal(st, ATTN_OK);
    assert_null(out);
    assert_non_null(strstr(err.msg, needle));
    attn_ctx_free(ctx);
    attn_tensor_set_free(in);
    return st;
}

static void assert_close(const attn_tensor *a, const attn_tensor *b, float tol) {
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) assert_int_equal(a->shape[i], b->shape[i]);
    const float *x = a->data, *y = b->data;
    for (size_t i = 0; i < a->numel; i++) {
        if (!(fabsf(x[i] - y[i]) <= tol * (1.0f + fabsf(y[i]))))
            fprintf(stderr, "element %zu: %g vs %g\n", i, (double)x[i], (double)y[i]);
        assert_true(fabsf(x[i] - y[i]) <= tol * (1.0f + fabsf(y[i])));
    }
}

/* out (a rank-4 tensor) with dims 1..3 permuted: out[b][i][j][k] = in[b][...] */
static attn_tensor *permute4(const attn_tensor *t, const int p[4]) {
    int64_t s[4];
    for (int d = 0; d < 4; d++) s[d] = t->shape[p[d]];
    attn_tensor *o;
    assert_int_equal(attn_tensor_new(ATTN_F32, 4, s, &o, NULL), ATTN_OK);
    size_t st[4] = {(size_t)(t->shape[1] * t->shape[2] * t->shape[3]),
                    (size_t)(t->shape[2] * t->shape[3]), (size_t)t->shape[3], 1};
    const float *x = t->data;
    float *y = o->data;
    size_t e = 0;
    for (int64_t a = 0; a < s[0]; a++)
        for (int64_t b = 0; b < s[1]; b++)
            for (int64_t c = 0; c < s[2]; c++)
                for (int64_t d = 0; d < s[3]; d++)
                    y[e++] = x[a * st[p[0]] + b * st[p[1]] + c * st[p[2]] + d * st[p[3]]];
    return o;
}

/* ---- axial ---- */

static void test_axial_shapes(void **state) {
    (void)state;
    struct {
        const char *cfg;
        int n_axes;
        int64_t dim, hid;
        int rank;
        int64_t shape[6];
    } cases[] = {
        {"{\"dim\":8,\"heads\":2}", 2, 8, 8, 4, {2, 3, 5, 8}},
        {"{\"dim\":8,\"heads\":2,\"dim_index\":1,\"sum_axial_out\":false}", 2, 8, 8, 4, {1, 8, 4, 3}},
        {"{\"dim\":6,\"heads\":3,\"dim_heads\":5,\"num_dimensions\":3,\"dim_index\":2}", 3, 6, 15,
         5, {2, 3, 6, 2, 4}},
        {"{\"dim\":4,\"heads\":4,\"num_dimensions\":1}", 1, 4, 4, 3, {3, 7, 4}},
        {"{\"dim\":4,\"heads\":1,\"num_dimensions\":4,\"dim_index\":-3}", 4, 4, 4, 6,
         {1, 2, 3, 4, 2, 3}},
        /* -total names the batch dim: the reference then attends over all the others */
        {"{\"dim\":4,\"heads\":2,\"dim_index\":-4}", 3, 4, 4, 4, {4, 3, 2, 5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        attn_tensor_set *w = axial_weights(cases[c].n_axes, cases[c].dim, cases[c].hid, 7 + c);
        attn_model *m = build("axial", cases[c].cfg, w);
        assert_int_equal(attn_model_num_inputs(m), 1);
        const attn_io_spec *in = attn_model_input(m, 0);
        assert_string_equal(in->name, "x");
        assert_int_equal(in->rank, cases[c].rank);
        attn_tensor *x = rand_tensor(cases[c].rank, cases[c].shape, 100 + c, 1.0f);
        attn_tensor *y = run(m, x, 2);
        assert_int_equal(y->rank, x->rank);
        for (int d = 0; d < x->rank; d++) assert_int_equal(y->shape[d], x->shape[d]);
        const float *yd = y->data;
        for (size_t i = 0; i < y->numel; i++) assert_true(isfinite(yd[i]));
        attn_tensor_free(x);
        attn_tensor_free(y);
        attn_model_free(m);
        attn_tensor_set_free(w);
    }
}

/* With one axial dim there is nothing to sum or chain: both modes agree. */
static void test_axial_one_dim_sum_equals_sequential(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(1, 8, 12, 3);
    attn_model *a = build("axial", "{\"dim\":8,\"heads\":4,\"dim_heads\":3,\"num_dimensions\":1}", w);
    attn_model *b = build(
        "axial", "{\"dim\":8,\"heads\":4,\"dim_heads\":3,\"num_dimensions\":1,\"sum_axial_out\":false}", w);
    int64_t s[3] = {3, 9, 8};
    attn_tensor *x = rand_tensor(3, s, 11, 1.0f);
    attn_tensor *ya = run(a, x, 1), *yb = run(b, x, 1);
    assert_memory_equal(ya->data, yb->data, ya->nbytes);
    attn_tensor_free(ya);
    attn_tensor_free(yb);
    attn_tensor_free(x);
    attn_model_free(a);
    attn_model_free(b);
    attn_tensor_set_free(w);
}

/* Channels first (dim_index 1) on x equals channels last (dim_index -1) on
 * x transposed: the same attention, gathered through other strides. */
static void test_axial_layouts_agree(void **state) {
    (void)state;
    for (int sum = 0; sum < 2; sum++) {
        attn_tensor_set *w = axial_weights(2, 6, 6, 21);
        char c1[128], c2[128];
        snprintf(c1, sizeof c1, "{\"dim\":6,\"heads\":3,\"dim_index\":1,\"sum_axial_out\":%s}",
                 sum ? "true" : "false");
        snprintf(c2, sizeof c2, "{\"dim\":6,\"heads\":3,\"dim_index\":-1,\"sum_axial_out\":%s}",
                 sum ? "true" : "false");
        attn_model *first = build("axial", c1, w), *last = build("axial", c2, w);
        int64_t s[4] = {2, 6, 5, 7};
        attn_tensor *x = rand_tensor(4, s, 5, 1.0f);
        static const int to_last[4] = {0, 2, 3, 1}, to_first[4] = {0, 3, 1, 2};
        attn_tensor *xl = permute4(x, to_last);
        attn_tensor *yf = run(first, x, 1), *yl = run(last, xl, 2);
        attn_tensor *back = permute4(yl, to_first);
        assert_close(yf, back, 1e-5f);
        attn_tensor_free(x);
        attn_tensor_free(xl);
        attn_tensor_free(yf);
        attn_tensor_free(yl);
        attn_tensor_free(back);
        attn_model_free(first);
        attn_model_free(last);
        attn_tensor_set_free(w);
    }
}

/* A 2-D model is its two axes: each axis alone is a 1-D model run on x
 * with the other axis folded into the batch (here: moved to dim 0 by a
 * transpose, B = 1). */
static void test_axial_two_dims_are_two_axes(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 4, 4, 31);
    attn_tensor_set *w0 = one_axis(w, 0), *w1 = one_axis(w, 1);
    attn_model *sum = build("axial", "{\"dim\":4,\"heads\":2}", w);
    attn_model *seq = build("axial", "{\"dim\":4,\"heads\":2,\"sum_axial_out\":false}", w);
    const char *one = "{\"dim\":4,\"heads\":2,\"num_dimensions\":1}";
    attn_model *a0 = build("axial", one, w0), *a1 = build("axial", one, w1);
    int64_t s[4] = {1, 5, 6, 4}; /* (1, H, W, C) */
    attn_tensor *x = rand_tensor(4, s, 9, 1.0f);
    static const int swap[4] = {0, 2, 1, 3};
    /* axis 0 attends over H for each W: view x as (W, H, C) */
    attn_tensor *xt = permute4(x, swap); /* (1, W, H, C) */
    int64_t s3[3] = {6, 5, 4};
    attn_tensor *xt3, *x3;
    assert_int_equal(attn_tensor_view(ATTN_F32, 3, s3, xt->data, xt->nbytes, &xt3, NULL), 0);
    int64_t s3b[3] = {5, 6, 4};
    assert_int_equal(attn_tensor_view(ATTN_F32, 3, s3b, x->data, x->nbytes, &x3, NULL), 0);
    attn_tensor *h = run(a0, xt3, 1); /* (W, H, C) */
    attn_tensor *wv = run(a1, x3, 1);   /* (H, W, C) */
    attn_tensor *h4;
    int64_t s4[4] = {1, 6, 5, 4};
    assert_int_equal(attn_tensor_view(ATTN_F32, 4, s4, h->data, h->nbytes, &h4, NULL), 0);
    attn_tensor *hb = permute4(h4, swap); /* (1, H, W, C) */
    attn_tensor *ysum = run(sum, x, 2);
    const float *pa = hb->data, *pb = wv->data, *py = ysum->data;
    for (size_t i = 0; i < ysum->numel; i++)
        assert_true(fabsf(py[i] - (pa[i] + pb[i])) <= 1e-5f * (1.0f + fabsf(py[i])));
    /* sequential: axis 1 runs on the output of axis 0 */
    attn_tensor *hb3;
    assert_int_equal(attn_tensor_view(ATTN_F32, 3, s3b, hb->data, hb->nbytes, &hb3, NULL), 0);
    attn_tensor *chain = run(a1, hb3, 1), *yseq = run(seq, x, 2);
    const float *pc = chain->data, *ps = yseq->data;
    for (size_t i = 0; i < yseq->numel; i++)
        assert_true(fabsf(ps[i] - pc[i]) <= 1e-5f * (1.0f + fabsf(ps[i])));
    attn_tensor *all[] = {x, xt, xt3, x3, h, wv, h4, hb, ysum, hb3, chain, yseq};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) attn_tensor_free(all[i]);
    attn_model *ms[] = {sum, seq, a0, a1};
    for (size_t i = 0; i < 4; i++) attn_model_free(ms[i]);
    attn_tensor_set_free(w);
    attn_tensor_set_free(w0);
    attn_tensor_set_free(w1);
}

/* No positions inside attention: permuting the tokens of the attended axis
 * permutes the output the same way. */
static void test_axial_permutation_equivariant(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(1, 4, 4, 41);
    attn_model *m = build("axial", "{\"dim\":4,\"heads\":2,\"num_dimensions\":1}", w);
    int64_t s[3] = {2, 7, 4};
    attn_tensor *x = rand_tensor(3, s, 2, 1.0f), *xp = rand_tensor(3, s, 2, 1.0f);
    static const int perm[7] = {3, 0, 6, 1, 5, 2, 4};
    float *src = x->data, *dst = xp->data;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 7; t++) memcpy(dst + (b * 7 + t) * 4, src + (b * 7 + perm[t]) * 4, 16);
    attn_tensor *y = run(m, x, 1), *yp = run(m, xp, 1);
    const float *a = y->data, *bq = yp->data;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 7; t++)
            for (int c = 0; c < 4; c++) {
                float u = bq[(b * 7 + t) * 4 + c], v = a[(b * 7 + perm[t]) * 4 + c];
                assert_true(fabsf(u - v) <= 1e-5f * (1.0f + fabsf(v)));
            }
    attn_tensor_free(x);
    attn_tensor_free(xp);
    attn_tensor_free(y);
    attn_tensor_free(yp);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

/* More rows than one chunk, many threads: same numbers as one thread. */
static void test_axial_threads_agree(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 51);
    attn_model *m = build("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":1}", w);
    int64_t s[4] = {3, 8, 37, 70};
    attn_tensor *x = rand_tensor(4, s, 77, 1.0f);
    attn_tensor *y1 = run(m, x, 1), *y4 = run(m, x, 4);
    assert_close(y4, y1, 1e-6f);
    attn_tensor_free(x);
    attn_tensor_free(y1);
    attn_tensor_free(y4);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

static void test_axial_config_errors(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 1);
    build_fails("axial", "{\"dim\":8,\"heads\":3}", w, ATTN_E_CONFIG, "divisible");
    /* the reference asserts divisibility even with dim_heads given */
    build_fails("axial", "{\"dim\":8,\"heads\":3,\"dim_heads\":4}", w, ATTN_E_CONFIG, "divisible");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":0}", w, ATTN_E_CONFIG, "dim_index");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":4}", w, ATTN_E_CONFIG, "dim_index");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":-5}", w, ATTN_E_CONFIG, "dim_index");
    build_fails("axial", "{\"dim\":8,\"heads\":0}", w, ATTN_E_CONFIG, "heads");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_heads\":0}", w, ATTN_E_CONFIG, "dim_heads");
    build_fails("axial", "{\"dim\":8,\"num_dimensions\":0}", w, ATTN_E_CONFIG, "num_dimensions");
    build_fails("axial", "{\"dim\":8,\"num_dimensions\":7}", w, ATTN_E_CONFIG, "num_dimensions");
    build_fails("axial", "{\"heads\":2}", w, ATTN_E_CONFIG, "dim");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"dropout\":0.1}", w, ATTN_E_CONFIG, "dropout");
    build_fails("axial", "{\"dim\":8,\"heads\":2,\"sum_axial_out\":1}", w, ATTN_E_CONFIG,
                "sum_axial_out");
    attn_tensor_set_free(w);
}

static void test_axial_weight_errors(void **state) {
    (void)state;
    const char *cfg = "{\"dim\":8,\"heads\":2}";
    /* missing: only one axis given */
    attn_tensor_set *w = axial_weights(1, 8, 8, 1);
    build_fails("axial", cfg, w, ATTN_E_WEIGHTS, "axial_attentions.1.fn.to_q.weight");
    attn_tensor_set_free(w);
    /* extra: three axes for a 2-D model */
    w = axial_weights(3, 8, 8, 1);
    build_fails("axial", cfg, w, ATTN_E_WEIGHTS, "axial_attentions.2.fn.");
    attn_tensor_set_free(w);
    /* mis-shaped: hidden 10 (dim_heads 5) where the config needs 8; both shapes named */
    w = axial_weights(2, 8, 10, 1);
    build_fails("axial", cfg, w, ATTN_E_WEIGHTS, "(10,8)");
    build_fails("axial", cfg, w, ATTN_E_WEIGHTS, "(8,8)");
    attn_model *m = build("axial", "{\"dim\":8,\"heads\":2,\"dim_heads\":5}", w);
    attn_model_free(m);
    attn_tensor_set_free(w);
    build_fails("axial", cfg, NULL, ATTN_E_WEIGHTS, "axial_attentions.0.fn.to_q.weight");
}

static void test_axial_input_errors(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 1);
    attn_model *m = build("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":1}", w);
    int64_t bad_dim[4] = {1, 7, 3, 3}, bad_rank[3] = {1, 8, 3};
    attn_tensor *x = rand_tensor(4, bad_dim, 1, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    x = rand_tensor(3, bad_rank, 1, 1.0f);
    assert_int_equal(run_fails(m, x, "rank"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    int64_t ok[4] = {1, 8, 3, 3};
    assert_int_equal(attn_tensor_new(ATTN_I32, 4, ok, &x, NULL), ATTN_OK);
    assert_int_equal(run_fails(m, x, "F32"), ATTN_E_DTYPE);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

/* ---- axial_positional_embedding ---- */

static void test_pos_emb_adds_params(void **state) {
    (void)state;
    attn_tensor_set *w = attn_tensor_set_new();
    int64_t s0[4] = {1, 3, 4, 1}, s1[4] = {1, 3, 1, 5};
    wadd(w, "param_0", 4, s0, 1, 1.0f);
    wadd(w, "param_1", 4, s1, 2, 1.0f);
    attn_model *m = build("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5]}", w);
    const float *p0 = attn_tensor_set_get(w, "param_0")->data;
    const float *p1 = attn_tensor_set_get(w, "param_1")->data;
    /* full x, and x broadcast along H (size 1) */
    int64_t xs[2][4] = {{2, 3, 4, 5}, {2, 3, 1, 5}};
    for (int k = 0; k < 2; k++) {
        attn_tensor *x = rand_tensor(4, xs[k], 3, 1.0f), *y = run(m, x, 1);
        int64_t want[4] = {2, 3, 4, 5};
        for (int d = 0; d < 4; d++) assert_int_equal(y->shape[d], want[d]);
        const float *xd = x->data, *yd = y->data;
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 4; h++)
                    for (int v = 0; v < 5; v++) {
                        int hx = xs[k][2] == 1 ? 0 : h;
                        float e = xd[((b * 3 + c) * xs[k][2] + hx) * 5 + v] + p0[c * 4 + h];
                        e += p1[c * 5 + v];
                        assert_true(yd[((b * 3 + c) * 4 + h) * 5 + v] == e);
                    }
        attn_tensor_free(x);
        attn_tensor_free(y);
    }
    int64_t bad[4] = {2, 3, 3, 5};
    attn_tensor *x = rand_tensor(4, bad, 3, 1.0f);
    assert_int_equal(run_fails(m, x, "broadcast"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

static void test_pos_emb_index_forms(void **state) {
    (void)state;
    /* channels last: -1 puts dim at the end, the axes at 1 and 2 */
    attn_tensor_set *w = attn_tensor_set_new();
    int64_t s0[4] = {1, 4, 1, 3}, s1[4] = {1, 1, 5, 3};
    wadd(w, "param_0", 4, s0, 1, 1.0f);
    wadd(w, "param_1", 4, s1, 2, 1.0f);
    attn_model *m =
        build("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":-1}", w);
    attn_model_free(m);
    build_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5]}", w, ATTN_E_WEIGHTS,
                "(1,3,4,1)");
    build_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":4}", w,
                ATTN_E_CONFIG, "emb_dim_index");
    build_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":-5}",
                w, ATTN_E_CONFIG, "emb_dim_index");
    build_fails("axial_positional_embedding", "{\"dim\":3}", w, ATTN_E_CONFIG, "shape");
    build_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,0]}", w, ATTN_E_CONFIG,
                "shape");
    attn_tensor_set_free(w);
}

/* ---- axial_image_transformer ---- */

typedef struct ait_opts {
    int64_t dim, depth, hid;
    bool reversible, pos, zero_out; /* zero_out: every block's last layer 0 */
    int64_t H, W;
} ait_opts;

static attn_tensor_set *ait_weights(const ait_opts *o, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    float z = o->zero_out ? 0.0f : 1.0f;
    for (int64_t l = 0; l < o->depth; l++)
        for (int k = 0; k < 2; k++) {
            char base[96], n[160];
            const char *fg = o->reversible ? (k ? "g.net." : "f.net.") : (k ? "1." : "0.");
            snprintf(base, sizeof base, "layers.blocks.%lld.%s", (long long)(2 * l), fg);
            snprintf(n, sizeof n, "%sfn.fn.", base);
            add_sa(w, n, o->dim, o->hid, seed++, z);
            snprintf(n, sizeof n, "%sfn.norm.weight", base);
            wadd1(w, n, o->dim, seed++, 1.0f);
            snprintf(n, sizeof n, "%sfn.norm.bias", base);
            wadd1(w, n, o->dim, seed++, 0.2f);
            snprintf(base, sizeof base, "layers.blocks.%lld.%s", (long long)(2 * l + 1), fg);
            int64_t sn[4] = {1, o->dim, 1, 1}, w1[4] = {4 * o->dim, o->dim, 3, 3},
                    w2[4] = {o->dim, 4 * o->dim, 3, 3};
            snprintf(n, sizeof n, "%s0.g", base);
            wadd(w, n, 4, sn, seed++, 1.0f);
            snprintf(n, sizeof n, "%s0.b", base);
            wadd(w, n, 4, sn, seed++, 0.2f);
            snprintf(n, sizeof n, "%s1.weight", base);
            wadd(w, n, 4, w1, seed++, 0.2f);
            snprintf(n, sizeof n, "%s1.bias", base);
            wadd1(w, n, 4 * o->dim, seed++, 0.1f);
            snprintf(n, sizeof n, "%s3.weight", base);
            wadd(w, n, 4, w2, seed++, 0.1f * z);
            snprintf(n, sizeof n, "%s3.bias", base);
            wadd1(w, n, o->dim, seed++, 0.1f * z);
        }
    if (o->pos) {
        int64_t s0[4] = {1, o->dim, o->H, 1}, s1[4] = {1, o->dim, 1, o->W};
        wadd(w, "pos_emb.param_0", 4, s0, seed++, 1.0f);
        wadd(w, "pos_emb.param_1", 4, s1, seed++, 1.0f);
    }
    return w;
}

static char *ait_cfg(const ait_opts *o, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "{\"dim\":%lld,\"depth\":%lld,\"heads\":2,\"dim_heads\":%lld,"
                               "\"reversible\":%s",
                     (long long)o->dim, (long long)o->depth, (long long)(o->hid / 2),
                     o->reversible ? "true" : "false");
    if (o->pos) n += snprintf(buf + n, cap - (size_t)n, ",\"axial_pos_emb_shape\":[%lld,%lld]",
                              (long long)o->H, (long long)o->W);
    snprintf(buf + n, cap - (size_t)n, "}");
    return buf;
}

/* Every block ends in a zeroed layer, so every residual adds 0: the output
 * is x (plus the positional embedding), for both stacks and any depth. */
static void test_ait_zero_blocks_are_identity(void **state) {
    (void)state;
    for (int rev = 0; rev < 2; rev++)
        for (int pos = 0; pos < 2; pos++) {
            ait_opts o = {.dim = 4, .depth = 2, .hid = 6, .reversible = rev, .pos = pos,
                          .zero_out = true, .H = 5, .W = 3};
            attn_tensor_set *w = ait_weights(&o, 100);
            char cfg[256];
            attn_model *m = build("axial_image_transformer", ait_cfg(&o, cfg, sizeof cfg), w);
            int64_t s[4] = {2, 4, 5, 3};
            attn_tensor *x = rand_tensor(4, s, 8, 1.0f), *y = run(m, x, 2);
            const float *xd = x->data, *yd = y->data;
            const float *p0 = pos ? attn_tensor_set_get(w, "pos_emb.param_0")->data : NULL;
            const float *p1 = pos ? attn_tensor_set_get(w, "pos_emb.param_1")->data : NULL;
            for (int b = 0; b < 2; b++)
                for (int c = 0; c < 4; c++)
                    for (int h = 0; h < 5; h++)
                        for (int v = 0; v < 3; v++) {
                            size_t i = (size_t)((b * 4 + c) * 5 + h) * 3 + (size_t)v;
                            float e = xd[i];
                            if (pos) e = e + p0[c * 5 + h] + p1[c * 3 + v];
                            assert_true(fabsf(yd[i] - e) <= 1e-6f * (1.0f + fabsf(e)));
                        }
            attn_tensor_free(x);
            attn_tensor_free(y);
            attn_model_free(m);
            attn_tensor_set_free(w);
        }
}

/* Depth 0 with no embedding is exactly x (the reversible mean of x and x). */
static void test_ait_depth0(void **state) {
    (void)state;
    attn_model *m = build("axial_image_transformer", "{\"dim\":4,\"depth\":0,\"heads\":2}", NULL);
    int64_t s[4] = {1, 4, 3, 3};
    attn_tensor *x = rand_tensor(4, s, 8, 1.0f), *y = run(m, x, 1);
    assert_memory_equal(x->data, y->data, x->nbytes);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(m);
}

static void test_ait_shapes_and_threads(void **state) {
    (void)state;
    for (int rev = 0; rev < 2; rev++) {
        ait_opts o = {.dim = 8, .depth = 2, .hid = 8, .reversible = rev, .pos = true, .H = 9, .W = 6};
        attn_tensor_set *w = ait_weights(&o, 300);
        char cfg[256];
        attn_model *m = build("axial_image_transformer", ait_cfg(&o, cfg, sizeof cfg), w);
        int64_t s[4] = {2, 8, 9, 6};
        attn_tensor *x = rand_tensor(4, s, 4, 1.0f);
        attn_tensor *y1 = run(m, x, 1), *y3 = run(m, x, 3);
        assert_close(y3, y1, 1e-5f);
        /* the blocks do something: the output is not x + pos */
        const float *a = y1->data, *b = x->data;
        double diff = 0;
        for (size_t i = 0; i < x->numel; i++) diff += fabs((double)a[i] - b[i]);
        assert_true(diff > 1e-2 * (double)x->numel);
        attn_tensor_free(x);
        attn_tensor_free(y1);
        attn_tensor_free(y3);
        attn_model_free(m);
        attn_tensor_set_free(w);
    }
}

static void test_ait_errors(void **state) {
    (void)state;
    ait_opts o = {.dim = 4, .depth = 1, .hid = 4, .reversible = true};
    attn_tensor_set *w = ait_weights(&o, 1);
    build_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":8}", w, ATTN_E_CONFIG,
                "dim // heads");
    build_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":0}", w,
                ATTN_E_CONFIG, "dim_index");
    build_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":-4}",
                w, ATTN_E_CONFIG, "dim_index");
    build_fails("axial_image_transformer", "{\"dim\":4}", w, ATTN_E_CONFIG, "depth");
    /* reversible weights named for the plain stack, and the reverse */
    build_fails("axial_image_transformer",
                "{\"dim\":4,\"depth\":1,\"heads\":2,\"reversible\":false}", w, ATTN_E_WEIGHTS,
                "layers.blocks.0.0.fn.fn.to_q.weight");
    /* a positional embedding the weights lack */
    build_fails("axial_image_transformer",
                "{\"dim\":4,\"depth\":1,\"heads\":2,\"axial_pos_emb_shape\":[3,3]}", w,
                ATTN_E_WEIGHTS, "pos_emb.param_0");
    /* a head size the weights lack: the message names both shapes */
    build_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_heads\":3}",
                w, ATTN_E_WEIGHTS, "(6,4)");
    build_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_heads\":3}",
                w, ATTN_E_WEIGHTS, "(4,4)");
    attn_model *m = build("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2}", w);
    int64_t bad[4] = {1, 5, 3, 3};
    attn_tensor *x = rand_tensor(4, bad, 1, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
    /* dim at index 2 needs H == dim too, since the convolutions read dim 1 */
    ait_opts o2 = {.dim = 4, .depth = 1, .hid = 4, .reversible = true};
    w = ait_weights(&o2, 2);
    m = build("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":2}", w);
    int64_t s2[4] = {1, 4, 3, 5};
    x = rand_tensor(4, s2, 1, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    int64_t s3[4] = {1, 4, 4, 5};
    x = rand_tensor(4, s3, 1, 1.0f);
    attn_tensor *y = run(m, x, 1);
    attn_tensor_free(y);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

/* ---- kernels ---- */

static void naive_conv(const attn_conv2d *c, const float *x, const float *wt, const float *b,
                       float *y) {
    for (size_t co = 0; co < c->c_out; co++)
        for (size_t oy = 0; oy < c->h_out; oy++)
            for (size_t ox = 0; ox < c->w_out; ox++) {
                double s = b ? b[co] : 0.0;
                for (size_t ci = 0; ci < c->c_in; ci++)
                    for (size_t ky = 0; ky < c->k_h; ky++)
                        for (size_t kx = 0; kx < c->k_w; kx++) {
                            long iy = (long)(oy * c->stride_h + ky * c->dil_h) - (long)c->pad_h;
                            long ix = (long)(ox * c->stride_w + kx * c->dil_w) - (long)c->pad_w;
                            if (iy < 0 || ix < 0 || iy >= (long)c->h_in || ix >= (long)c->w_in)
                                continue;
                            s += (double)x[(ci * c->h_in + (size_t)iy) * c->w_in + (size_t)ix] *
                                 wt[((co * c->c_in + ci) * c->k_h + ky) * c->k_w + kx];
                        }
                y[(co * c->h_out + oy) * c->w_out + ox] = (float)s;
            }
}

static void test_conv2d_matches_loops(void **state) {
    (void)state;
    attn_conv2d cases[] = {
        {.c_in = 3, .c_out = 5, .h_in = 7, .w_in = 6, .k_h = 3, .k_w = 3, .stride_h = 1,
         .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1},
        {.c_in = 2, .c_out = 4, .h_in = 9, .w_in = 8, .k_h = 3, .k_w = 2, .stride_h = 2,
         .stride_w = 3, .pad_h = 2, .pad_w = 0, .dil_h = 1, .dil_w = 2},
        {.c_in = 4, .c_out = 3, .h_in = 5, .w_in = 5, .k_h = 1, .k_w = 1, .stride_h = 1,
         .stride_w = 1, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1},
        {.c_in = 4, .c_out = 3, .h_in = 5, .w_in = 7, .k_h = 1, .k_w = 1, .stride_h = 2,
         .stride_w = 2, .pad_h = 0, .pad_w = 1, .dil_h = 1, .dil_w = 1},
        {.c_in = 1, .c_out = 2, .h_in = 4, .w_in = 4, .k_h = 4, .k_w = 4, .stride_h = 1,
         .stride_w = 1, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1},
    };
    const size_t want_h[] = {7, 6, 5, 3, 1}, want_w[] = {6, 2, 5, 5, 1};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        attn_conv2d c = cases[k];
        assert_true(attn__conv2d_prepare(&c, NULL));
        assert_int_equal(c.h_out, want_h[k]);
        assert_int_equal(c.w_out, want_w[k]);
        uint64_t seed = 17 + k;
        size_t nx = c.c_in * c.h_in * c.w_in, nw = c.c_out * c.c_in * c.k_h * c.k_w;
        size_t ny = c.c_out * c.h_out * c.w_out, nwork;
        float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc(c.c_out * 4);
        float *want = malloc(ny * 4), *got = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = gauss(&seed);
        for (size_t i = 0; i < nw; i++) wt[i] = gauss(&seed);
        for (size_t i = 0; i < c.c_out; i++) b[i] = gauss(&seed);
        assert_true(attn__conv2d_workspace(&c, c.h_out, &nwork));
        float *work = malloc((nwork ? nwork : 1) * 4);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            naive_conv(&c, x, wt, with_bias ? b : NULL, want);
            /* whole image, then row by row (as threads split it) */
            attn__conv2d(&c, x, wt, with_bias ? b : NULL, got, false, work, 0, c.h_out);
            for (size_t i = 0; i < ny; i++) assert_true(fabsf(got[i] - want[i]) <= 1e-4f);
            for (size_t i = 0; i < ny; i++) got[i] = 1.0f;
            for (size_t r = 0; r < c.h_out; r++)
                attn__conv2d(&c, x, wt, with_bias ? b : NULL, got, true, work, r, r + 1);
            for (size_t i = 0; i < ny; i++) assert_true(fabsf(got[i] - (want[i] + 1.0f)) <= 1e-4f);
        }
        free(x);
        free(wt);
        free(b);
        free(want);
        free(got);
        free(work);
    }
    attn_conv2d bad = {.c_in = 1, .c_out = 1, .h_in = 2, .w_in = 2, .k_h = 5, .k_w = 1,
                       .stride_h = 1, .stride_w = 1, .pad_h = 1, .dil_h = 1, .dil_w = 1};
    const char *why = NULL;
    assert_false(attn__conv2d_prepare(&bad, &why));
    assert_non_null(why);
    bad.k_h = 1;
    bad.stride_w = 0;
    assert_false(attn__conv2d_prepare(&bad, &why));
}

static void test_chan_layernorm(void **state) {
    (void)state;
    size_t C = 5, HW = 7;
    uint64_t seed = 3;
    float x[35], y[35], g[5], b[5];
    for (size_t i = 0; i < C * HW; i++) x[i] = 2.0f * gauss(&seed) + 1.0f;
    for (size_t i = 0; i < C; i++) {
        g[i] = gauss(&seed);
        b[i] = gauss(&seed);
    }
    attn__chan_layernorm(x, C, HW, g, b, 1e-5f, y);
    for (size_t p = 0; p < HW; p++) {
        double m = 0, v = 0;
        for (size_t c = 0; c < C; c++) m += x[c * HW + p];
        m /= (double)C;
        for (size_t c = 0; c < C; c++) v += (x[c * HW + p] - m) * (x[c * HW + p] - m);
        double sd = sqrt(v / (double)C); /* biased; eps added to the std */
        for (size_t c = 0; c < C; c++) {
            double e = (x[c * HW + p] - m) / (sd + 1e-5) * g[c] + b[c];
            assert_true(fabs(y[c * HW + p] - e) <= 1e-5 * (1 + fabs(e)));
        }
    }
    /* in place gives the same */
    attn__chan_layernorm(x, C, HW, g, b, 1e-5f, x);
    assert_memory_equal(x, y, sizeof x);
    float l[4] = {-2.0f, 0.0f, 3.0f, -0.5f};
    attn__leaky_relu(l, 4, 0.01f);
    assert_true(l[0] == -2.0f * 0.01f && l[1] == 0.0f && l[2] == 3.0f && l[3] == -0.5f * 0.01f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axial_shapes),
        cmocka_unit_test(test_axial_one_dim_sum_equals_sequential),
        cmocka_unit_test(test_axial_layouts_agree),
        cmocka_unit_test(test_axial_two_dims_are_two_axes),
        cmocka_unit_test(test_axial_permutation_equivariant),
        cmocka_unit_test(test_axial_threads_agree),
        cmocka_unit_test(test_axial_config_errors),
        cmocka_unit_test(test_axial_weight_errors),
        cmocka_unit_test(test_axial_input_errors),
        cmocka_unit_test(test_pos_emb_adds_params),
        cmocka_unit_test(test_pos_emb_index_forms),
        cmocka_unit_test(test_ait_zero_blocks_are_identity),
        cmocka_unit_test(test_ait_depth0),
        cmocka_unit_test(test_ait_shapes_and_threads),
        cmocka_unit_test(test_ait_errors),
        cmocka_unit_test(test_conv2d_matches_loops),
        cmocka_unit_test(test_chan_layernorm),
    };
    return cmocka_run_group_tests_name("axial", tests, NULL, NULL);
}
