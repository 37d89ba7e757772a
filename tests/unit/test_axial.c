/*
 * test_axial.c — axial, axial_positional_embedding, axial_image_transformer
 * and the conv2d / channel-norm kernels under them.  The golden cases check
 * the numbers against the reference; these tests check what must hold for
 * any size or config: shapes, layouts that must agree with each other (the
 * embedding first or last, sum vs sequence with one axis, one N-D model vs
 * its axes run separately), the identity a zeroed transformer must be, how
 * the reversible and plain stacks relate, and every rejected config, weight
 * and input with its status and a message naming the culprit.  The conv2d
 * and channel-norm kernels have their own test_image_kernels.c.
 */
#include "test_util.h"

#include <stdbool.h>

/* ---- fixtures ---- */

/* Adds a random weight; scale 0 gives zeros. */
static void wadd(attn_tensor_set *w, const char *name, int rank, const int64_t *shape,
                 uint64_t seed, float scale) {
    tu_add(w, name, tu_gauss_tensor(&seed, rank, shape, scale));
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
        char n[160];
        snprintf(n, sizeof n, "axial_attentions.0.%s", name + strlen(pre));
        tu_add(w, n, tu_copy(attn_tensor_set_at(src, i)));
    }
    return w;
}

/* Runs m on x (borrowed) with `threads`; returns the output (owned). */
static attn_tensor *run(const attn_model *m, const attn_tensor *x, int threads) {
    attn_tensor_set *in = attn_tensor_set_new();
    attn_tensor *v;
    assert_int_equal(attn_tensor_view(ATTN_F32, x->rank, x->shape, x->data, x->nbytes, &v, NULL),
                     ATTN_OK);
    tu_add(in, "x", v);
    attn_tensor *out = tu_run_ok(m, in, threads);
    attn_tensor_set_free(in);
    return out;
}

/* Expects running m on x (borrowed) to fail with a message containing `needle`. */
static attn_status run_fails(const attn_model *m, const attn_tensor *x, const char *needle) {
    attn_tensor_set *in = attn_tensor_set_new();
    attn_tensor *v;
    assert_int_equal(attn_tensor_view(x->dtype, x->rank, x->shape, x->data, x->nbytes, &v, NULL),
                     ATTN_OK);
    tu_add(in, "x", v);
    attn_error err;
    attn_status st = tu_run_status(m, in, &err);
    assert_int_not_equal(st, ATTN_OK);
    if (!strstr(err.msg, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
    attn_tensor_set_free(in);
    return st;
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
        attn_model *m = tu_model_w("axial", cases[c].cfg, w);
        assert_int_equal(attn_model_num_inputs(m), 1);
        const attn_io_spec *in = attn_model_input(m, 0);
        assert_string_equal(in->name, "x");
        assert_int_equal(in->rank, cases[c].rank);
        attn_tensor *x = tu_gauss_tensor(&(uint64_t){100 + c}, cases[c].rank, cases[c].shape, 1.0f);
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
    attn_model *a = tu_model_w("axial", "{\"dim\":8,\"heads\":4,\"dim_heads\":3,\"num_dimensions\":1}", w);
    attn_model *b = tu_model_w(
        "axial", "{\"dim\":8,\"heads\":4,\"dim_heads\":3,\"num_dimensions\":1,\"sum_axial_out\":false}", w);
    int64_t s[3] = {3, 9, 8};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){11}, 3, s, 1.0f);
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
        attn_model *first = tu_model_w("axial", c1, w), *last = tu_model_w("axial", c2, w);
        int64_t s[4] = {2, 6, 5, 7};
        attn_tensor *x = tu_gauss_tensor(&(uint64_t){5}, 4, s, 1.0f);
        static const int to_last[4] = {0, 2, 3, 1}, to_first[4] = {0, 3, 1, 2};
        attn_tensor *xl = permute4(x, to_last);
        attn_tensor *yf = run(first, x, 1), *yl = run(last, xl, 2);
        attn_tensor *back = permute4(yl, to_first);
        tu_assert_tensor_close(yf, back, 1e-5f);
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
    attn_model *sum = tu_model_w("axial", "{\"dim\":4,\"heads\":2}", w);
    attn_model *seq = tu_model_w("axial", "{\"dim\":4,\"heads\":2,\"sum_axial_out\":false}", w);
    const char *one = "{\"dim\":4,\"heads\":2,\"num_dimensions\":1}";
    attn_model *a0 = tu_model_w("axial", one, w0), *a1 = tu_model_w("axial", one, w1);
    int64_t s[4] = {1, 5, 6, 4}; /* (1, H, W, C) */
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){9}, 4, s, 1.0f);
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
    attn_model *m = tu_model_w("axial", "{\"dim\":4,\"heads\":2,\"num_dimensions\":1}", w);
    int64_t s[3] = {2, 7, 4};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){2}, 3, s, 1.0f), *xp = tu_gauss_tensor(&(uint64_t){2}, 3, s, 1.0f);
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

/* Zero query weights make every score 0, so softmax spreads evenly: each
 * token's output is to_out(to_v(mean of its row)), whatever its own value. */
static void test_axial_zero_queries_average(void **state) {
    (void)state;
    const int64_t D = 4, hid = 6, T = 5;
    attn_tensor_set *w = attn_tensor_set_new();
    wadd2(w, "axial_attentions.0.fn.to_q.weight", hid, D, 1, 0.0f);
    wadd2(w, "axial_attentions.0.fn.to_kv.weight", 2 * hid, D, 2, 0.5f);
    wadd2(w, "axial_attentions.0.fn.to_out.weight", D, hid, 3, 0.5f);
    wadd1(w, "axial_attentions.0.fn.to_out.bias", D, 4, 0.5f);
    attn_model *m = tu_model_w("axial", "{\"dim\":4,\"heads\":2,\"dim_heads\":3,\"num_dimensions\":1}", w);
    int64_t s[3] = {3, T, D};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){5}, 3, s, 1.0f), *y = run(m, x, 1);
    const float *wkv = attn_tensor_set_get(w, "axial_attentions.0.fn.to_kv.weight")->data;
    const float *wo = attn_tensor_set_get(w, "axial_attentions.0.fn.to_out.weight")->data;
    const float *bo = attn_tensor_set_get(w, "axial_attentions.0.fn.to_out.bias")->data;
    const float *xd = x->data, *yd = y->data;
    for (int64_t b = 0; b < 3; b++) {
        double mean[4] = {0}, v[6] = {0};
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < D; c++) mean[c] += xd[(b * T + t) * D + c] / (double)T;
        for (int64_t j = 0; j < hid; j++)
            for (int64_t c = 0; c < D; c++) v[j] += wkv[(hid + j) * D + c] * mean[c];
        for (int64_t c = 0; c < D; c++) {
            double e = bo[c];
            for (int64_t j = 0; j < hid; j++) e += wo[c * hid + j] * v[j];
            for (int64_t t = 0; t < T; t++)
                assert_true(fabs(yd[(b * T + t) * D + c] - e) <= 1e-5 * (1 + fabs(e)));
        }
    }
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

/* More rows than one chunk, many threads: same numbers as one thread. */
static void test_axial_threads_agree(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 51);
    attn_model *m = tu_model_w("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":1}", w);
    int64_t s[4] = {3, 8, 37, 70};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){77}, 4, s, 1.0f);
    attn_tensor *y1 = run(m, x, 1), *y4 = run(m, x, 4);
    tu_assert_tensor_close(y4, y1, 1e-6f);
    attn_tensor_free(x);
    attn_tensor_free(y1);
    attn_tensor_free(y4);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

static void test_axial_config_errors(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 1);
    tu_model_fails("axial", "{\"dim\":8,\"heads\":3}", w, ATTN_E_CONFIG, "divisible");
    /* the reference asserts divisibility even with dim_heads given */
    tu_model_fails("axial", "{\"dim\":8,\"heads\":3,\"dim_heads\":4}", w, ATTN_E_CONFIG, "divisible");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":0}", w, ATTN_E_CONFIG, "dim_index");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":4}", w, ATTN_E_CONFIG, "dim_index");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":-5}", w, ATTN_E_CONFIG, "dim_index");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":0}", w, ATTN_E_CONFIG, "heads");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"dim_heads\":0}", w, ATTN_E_CONFIG, "dim_heads");
    tu_model_fails("axial", "{\"dim\":8,\"num_dimensions\":0}", w, ATTN_E_CONFIG, "num_dimensions");
    tu_model_fails("axial", "{\"dim\":8,\"num_dimensions\":7}", w, ATTN_E_CONFIG, "num_dimensions");
    tu_model_fails("axial", "{\"heads\":2}", w, ATTN_E_CONFIG, "dim");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"dropout\":0.1}", w, ATTN_E_CONFIG, "dropout");
    tu_model_fails("axial", "{\"dim\":8,\"heads\":2,\"sum_axial_out\":1}", w, ATTN_E_CONFIG,
                "sum_axial_out");
    attn_tensor_set_free(w);
}

static void test_axial_weight_errors(void **state) {
    (void)state;
    const char *cfg = "{\"dim\":8,\"heads\":2}";
    /* missing: only one axis given */
    attn_tensor_set *w = axial_weights(1, 8, 8, 1);
    tu_model_fails("axial", cfg, w, ATTN_E_WEIGHTS, "axial_attentions.1.fn.to_q.weight");
    attn_tensor_set_free(w);
    /* extra: three axes for a 2-D model */
    w = axial_weights(3, 8, 8, 1);
    tu_model_fails("axial", cfg, w, ATTN_E_WEIGHTS, "axial_attentions.2.fn.");
    attn_tensor_set_free(w);
    /* mis-shaped: hidden 10 (dim_heads 5) where the config needs 8; both shapes named */
    w = axial_weights(2, 8, 10, 1);
    tu_model_fails("axial", cfg, w, ATTN_E_WEIGHTS, "(10,8)");
    tu_model_fails("axial", cfg, w, ATTN_E_WEIGHTS, "(8,8)");
    attn_model *m = tu_model_w("axial", "{\"dim\":8,\"heads\":2,\"dim_heads\":5}", w);
    attn_model_free(m);
    attn_tensor_set_free(w);
    tu_model_fails("axial", cfg, NULL, ATTN_E_WEIGHTS, "axial_attentions.0.fn.to_q.weight");
}

static void test_axial_input_errors(void **state) {
    (void)state;
    attn_tensor_set *w = axial_weights(2, 8, 8, 1);
    attn_model *m = tu_model_w("axial", "{\"dim\":8,\"heads\":2,\"dim_index\":1}", w);
    int64_t bad_dim[4] = {1, 7, 3, 3}, bad_rank[3] = {1, 8, 3};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){1}, 4, bad_dim, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    x = tu_gauss_tensor(&(uint64_t){1}, 3, bad_rank, 1.0f);
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
    attn_model *m = tu_model_w("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5]}", w);
    const float *p0 = attn_tensor_set_get(w, "param_0")->data;
    const float *p1 = attn_tensor_set_get(w, "param_1")->data;
    /* full x, and x broadcast along H (size 1) */
    int64_t xs[2][4] = {{2, 3, 4, 5}, {2, 3, 1, 5}};
    for (int k = 0; k < 2; k++) {
        attn_tensor *x = tu_gauss_tensor(&(uint64_t){3}, 4, xs[k], 1.0f), *y = run(m, x, 1);
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
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){3}, 4, bad, 1.0f);
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
        tu_model_w("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":-1}", w);
    attn_model_free(m);
    tu_model_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5]}", w, ATTN_E_WEIGHTS,
                "(1,3,4,1)");
    tu_model_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":4}", w,
                ATTN_E_CONFIG, "emb_dim_index");
    tu_model_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,5],\"emb_dim_index\":-5}",
                w, ATTN_E_CONFIG, "emb_dim_index");
    tu_model_fails("axial_positional_embedding", "{\"dim\":3}", w, ATTN_E_CONFIG, "shape");
    /* no axial dims: no parameters, no index check, and x passes unchanged */
    m = tu_model_w("axial_positional_embedding", "{\"dim\":3,\"shape\":[],\"emb_dim_index\":5}", NULL);
    int64_t s2[2] = {2, 3};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){4}, 2, s2, 1.0f), *y = run(m, x, 1);
    assert_int_equal(y->rank, 2);
    assert_memory_equal(x->data, y->data, x->nbytes);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(m);
    tu_model_fails("axial_positional_embedding", "{\"dim\":3,\"shape\":[4,0]}", w, ATTN_E_CONFIG,
                "shape");
    attn_tensor_set_free(w);
}

/* ---- axial_image_transformer ---- */

typedef struct ait_opts {
    int64_t dim, depth, hid;
    bool reversible, pos;
    /* Which blocks are live, 4 bits per layer (attention f, g, feed-forward
     * f, g); a dead block has its last layer zeroed, so it adds exactly 0. */
    unsigned dead;
    int64_t H, W;
} ait_opts;

static attn_tensor_set *ait_weights(const ait_opts *o, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    for (int64_t l = 0; l < o->depth; l++)
        for (int k = 0; k < 2; k++) {
            char base[96], n[160];
            float z = (o->dead >> (4 * l + (unsigned)k)) & 1 ? 0.0f : 1.0f;
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
            z = (o->dead >> (4 * l + 2 + (unsigned)k)) & 1 ? 0.0f : 1.0f;
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
                          .dead = 0xff, .H = 5, .W = 3};
            attn_tensor_set *w = ait_weights(&o, 100);
            char cfg[256];
            attn_model *m = tu_model_w("axial_image_transformer", ait_cfg(&o, cfg, sizeof cfg), w);
            int64_t s[4] = {2, 4, 5, 3};
            attn_tensor *x = tu_gauss_tensor(&(uint64_t){8}, 4, s, 1.0f), *y = run(m, x, 2);
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

/* With one live block b, the plain stack gives x + b(x) and the reversible
 * one (x1 = x2 = x, one half updated, then averaged) x + b(x) / 2.  With
 * both blocks f, g of one pair live, plain gives s = x' + g(x'), x' = x + f(x),
 * and reversible (x' + x + g(x')) / 2 = (x + s) / 2: the same relation. */
static void test_ait_reversible_halves_one_pair(void **state) {
    (void)state;
    static const unsigned lives[] = {1, 2, 4, 8, 3, 12};
    for (size_t li = 0; li < sizeof lives / sizeof lives[0]; li++) {
        unsigned live = lives[li];
        attn_tensor *y[2];
        int64_t s[4] = {2, 4, 5, 6};
        attn_tensor *x = tu_gauss_tensor(&(uint64_t){12}, 4, s, 1.0f);
        for (int rev = 0; rev < 2; rev++) {
            ait_opts o = {.dim = 4, .depth = 1, .hid = 4, .reversible = rev, .pos = false,
                          .dead = 0xf & ~live};
            attn_tensor_set *w = ait_weights(&o, 500);
            char cfg[256];
            attn_model *m = tu_model_w("axial_image_transformer", ait_cfg(&o, cfg, sizeof cfg), w);
            y[rev] = run(m, x, 2);
            attn_model_free(m);
            attn_tensor_set_free(w);
        }
        const float *xd = x->data, *seq = y[0]->data, *rv = y[1]->data;
        double moved = 0;
        for (size_t i = 0; i < x->numel; i++) {
            float half = (seq[i] - xd[i]) / 2.0f;
            assert_true(fabsf((rv[i] - xd[i]) - half) <= 1e-5f * (1.0f + fabsf(seq[i])));
            moved += fabs((double)seq[i] - xd[i]);
        }
        assert_true(moved > 1e-3 * (double)x->numel); /* the live block does something */
        attn_tensor_free(x);
        attn_tensor_free(y[0]);
        attn_tensor_free(y[1]);
    }
}

/* Depth 0 with no embedding is exactly x (the reversible mean of x and x). */
static void test_ait_depth0(void **state) {
    (void)state;
    attn_model *m = tu_model_w("axial_image_transformer", "{\"dim\":4,\"depth\":0,\"heads\":2}", NULL);
    int64_t s[4] = {1, 4, 3, 3};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){8}, 4, s, 1.0f), *y = run(m, x, 1);
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
        attn_model *m = tu_model_w("axial_image_transformer", ait_cfg(&o, cfg, sizeof cfg), w);
        int64_t s[4] = {2, 8, 9, 6};
        attn_tensor *x = tu_gauss_tensor(&(uint64_t){4}, 4, s, 1.0f);
        attn_tensor *y1 = run(m, x, 1), *y3 = run(m, x, 3);
        tu_assert_tensor_close(y3, y1, 1e-5f);
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
    tu_model_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":8}", w, ATTN_E_CONFIG,
                "dim // heads");
    tu_model_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":0}", w,
                ATTN_E_CONFIG, "dim_index");
    tu_model_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":-4}",
                w, ATTN_E_CONFIG, "dim_index");
    tu_model_fails("axial_image_transformer", "{\"dim\":4}", w, ATTN_E_CONFIG, "depth");
    /* reversible weights named for the plain stack, and the reverse */
    tu_model_fails("axial_image_transformer",
                "{\"dim\":4,\"depth\":1,\"heads\":2,\"reversible\":false}", w, ATTN_E_WEIGHTS,
                "layers.blocks.0.0.fn.fn.to_q.weight");
    /* a positional embedding the weights lack */
    tu_model_fails("axial_image_transformer",
                "{\"dim\":4,\"depth\":1,\"heads\":2,\"axial_pos_emb_shape\":[3,3]}", w,
                ATTN_E_WEIGHTS, "pos_emb.param_0");
    /* a head size the weights lack: the message names both shapes */
    tu_model_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_heads\":3}",
                w, ATTN_E_WEIGHTS, "(6,4)");
    tu_model_fails("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_heads\":3}",
                w, ATTN_E_WEIGHTS, "(4,4)");
    attn_model *m = tu_model_w("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2}", w);
    int64_t bad[4] = {1, 5, 3, 3};
    attn_tensor *x = tu_gauss_tensor(&(uint64_t){1}, 4, bad, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
    /* dim at index 2 needs H == dim too, since the convolutions read dim 1 */
    ait_opts o2 = {.dim = 4, .depth = 1, .hid = 4, .reversible = true};
    w = ait_weights(&o2, 2);
    m = tu_model_w("axial_image_transformer", "{\"dim\":4,\"depth\":1,\"heads\":2,\"dim_index\":2}", w);
    int64_t s2[4] = {1, 4, 3, 5};
    x = tu_gauss_tensor(&(uint64_t){1}, 4, s2, 1.0f);
    assert_int_equal(run_fails(m, x, "x"), ATTN_E_SHAPE);
    attn_tensor_free(x);
    int64_t s3[4] = {1, 4, 4, 5};
    x = tu_gauss_tensor(&(uint64_t){1}, 4, s3, 1.0f);
    attn_tensor *y = run(m, x, 1);
    attn_tensor_free(y);
    attn_tensor_free(x);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axial_shapes),
        cmocka_unit_test(test_axial_one_dim_sum_equals_sequential),
        cmocka_unit_test(test_axial_layouts_agree),
        cmocka_unit_test(test_axial_two_dims_are_two_axes),
        cmocka_unit_test(test_axial_permutation_equivariant),
        cmocka_unit_test(test_axial_zero_queries_average),
        cmocka_unit_test(test_axial_threads_agree),
        cmocka_unit_test(test_axial_config_errors),
        cmocka_unit_test(test_axial_weight_errors),
        cmocka_unit_test(test_axial_input_errors),
        cmocka_unit_test(test_pos_emb_adds_params),
        cmocka_unit_test(test_pos_emb_index_forms),
        cmocka_unit_test(test_ait_zero_blocks_are_identity),
        cmocka_unit_test(test_ait_reversible_halves_one_pair),
        cmocka_unit_test(test_ait_depth0),
        cmocka_unit_test(test_ait_shapes_and_threads),
        cmocka_unit_test(test_ait_errors),
    };
    return cmocka_run_group_tests_name("axial", tests, NULL, NULL);
}
