/*
 * test_linear_image.c — the `linear_image` mechanism (ImageLinearAttention).
 *
 * Numerics against the reference are the golden cases' job; here: output
 * shapes for the convolution geometries the reference accepts, the ones it
 * rejects, config / weight / input errors, and properties that follow from
 * the definition with 1x1 convolutions: permuting pixels permutes the
 * output, the order of the context positions does not matter, queries that
 * are constant over features (zero to_q) give a spatially constant output,
 * and batch rows / thread counts are independent.
 */
#include "test_util.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cfg {
    int64_t chan, chan_out, k, pad, stride, kd, vd, heads; /* chan_out 0: null */
    bool no_norm_q;
} cfg;

static char *cfg_json(const cfg *c, char *buf, size_t cap) {
    char co[24] = "null";
    if (c->chan_out) snprintf(co, sizeof co, "%lld", (long long)c->chan_out);
    snprintf(buf, cap,
             "{\"chan\": %lld, \"chan_out\": %s, \"kernel_size\": %lld, \"padding\": %lld, "
             "\"stride\": %lld, \"key_dim\": %lld, \"value_dim\": %lld, \"heads\": %lld, "
             "\"norm_queries\": %s}",
             (long long)c->chan, co, (long long)(c->k ? c->k : 1), (long long)c->pad,
             (long long)(c->stride ? c->stride : 1), (long long)c->kd, (long long)c->vd,
             (long long)c->heads, c->no_norm_q ? "false" : "true");
    return buf;
}

static void add_conv(attn_tensor_set *w, const char *name, int64_t out, int64_t in, int64_t k,
                     uint64_t *seed) {
    char n[64];
    int64_t sh[4] = {out, in, k, k};
    attn_tensor *t = tu_randn(seed, 4, sh);
    const float s = 1.0f / sqrtf((float)(in * k * k));
    for (size_t i = 0; i < t->numel; i++) ((float *)t->data)[i] *= 2 * s;
    snprintf(n, sizeof n, "%s.weight", name);
    tu_add(w, n, t);
    snprintf(n, sizeof n, "%s.bias", name);
    tu_add(w, n, tu_randn(seed, 1, &out));
}

static attn_tensor_set *weights(const cfg *c, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    const int64_t k = c->k ? c->k : 1, co = c->chan_out ? c->chan_out : c->chan;
    add_conv(w, "to_q", c->kd * c->heads, c->chan, k, &seed);
    add_conv(w, "to_k", c->kd * c->heads, c->chan, k, &seed);
    add_conv(w, "to_v", c->vd * c->heads, c->chan, k, &seed);
    add_conv(w, "to_out", co, c->vd * c->heads, k, &seed);
    return w;
}

static attn_model *build_w(const cfg *c, const attn_tensor_set *w) {
    char buf[512];
    return tu_model_w("linear_image", cfg_json(c, buf, sizeof buf), w);
}

static attn_model *build(const cfg *c, uint64_t seed) {
    attn_tensor_set *w = weights(c, seed);
    attn_model *m = build_w(c, w);
    attn_tensor_set_free(w);
    return m;
}

static attn_tensor *img(uint64_t seed, int64_t B, int64_t C, int64_t H, int64_t W) {
    int64_t sh[4] = {B, C, H, W};
    return tu_randn(&seed, 4, sh);
}

static attn_tensor *seq(uint64_t seed, int64_t B, int64_t C, int64_t L) {
    int64_t sh[3] = {B, C, L};
    return tu_randn(&seed, 3, sh);
}

/* Runs with x and an optional context (both stolen); NULL + *st on error. */
static attn_tensor *run_st(const attn_model *m, attn_tensor *x, attn_tensor *c, int threads,
                           attn_status *st, attn_error *e) {
    attn_tensor_set *in = attn_tensor_set_new();
    tu_add(in, "x", x);
    if (c) tu_add(in, "context", c);
    attn_tensor *o = tu_run(m, in, threads, st, e);
    attn_tensor_set_free(in);
    return o;
}

static attn_tensor *run(const attn_model *m, attn_tensor *x, attn_tensor *c, int threads) {
    attn_status st;
    attn_error e = {0};
    attn_tensor *o = run_st(m, x, c, threads, &st, &e);
    if (st) fail_msg("forward: %s", e.msg);
    return o;
}

/* ---- tests ---- */

static void output_shapes(void **state) {
    (void)state;
    /* {config, H, W, expected Ho, Wo}: the out conv has stride 1, so
     * Ho = H + 2p - k + 1; the q/k/v convs must keep H*W positions. */
    static const struct {
        cfg c;
        int64_t H, W, Ho, Wo;
    } cases[] = {
        {{.chan = 6, .kd = 4, .vd = 5, .heads = 2}, 4, 5, 4, 5},
        {{.chan = 5, .chan_out = 7, .k = 3, .pad = 1, .kd = 4, .vd = 6, .heads = 2}, 5, 6, 5, 6},
        {{.chan = 3, .k = 5, .pad = 2, .kd = 2, .vd = 3, .heads = 1}, 6, 3, 6, 3},
        {{.chan = 3, .k = 1, .pad = 1, .stride = 2, .kd = 2, .vd = 2, .heads = 2}, 2, 2, 4, 4},
        {{.chan = 3, .k = 3, .pad = 2, .stride = 2, .kd = 2, .vd = 2, .heads = 2}, 3, 3, 5, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_model *m = build(&cases[i].c, 3 + i);
        attn_tensor *o = run(m, img(5, 2, cases[i].c.chan, cases[i].H, cases[i].W), NULL, 1);
        const int64_t co = cases[i].c.chan_out ? cases[i].c.chan_out : cases[i].c.chan;
        assert_int_equal(o->rank, 4);
        assert_int_equal(o->shape[0], 2);
        assert_int_equal(o->shape[1], co);
        assert_int_equal(o->shape[2], cases[i].Ho);
        assert_int_equal(o->shape[3], cases[i].Wo);
        for (size_t k = 0; k < o->numel; k++) assert_true(isfinite(((float *)o->data)[k]));
        attn_tensor_free(o);
        attn_model_free(m);
    }
}

static void config_and_weight_errors(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{}", "{\"chan\": 4, \"dim\": 3}", "{\"chan\": 4, \"key_dim\": 0}", "{\"chan\": 4, \"heads\": 0}",
        "{\"chan\": 4, \"stride\": 0}", "{\"chan\": 4, \"norm_queries\": \"no\"}", "{\"chan\": 4, \"padding\": -1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        attn_model *m = NULL;
        attn_error e = {0};
        assert_int_equal(attn_model_new("linear_image", bad[i], NULL, &m, &e), ATTN_E_CONFIG);
        assert_null(m);
    }
    char buf[512];
    attn_error e = {0};
    attn_model *m = NULL;
    cfg c1 = {.chan = 4, .kd = 2, .vd = 3, .heads = 2}, c3 = c1;
    c3.k = 3;
    c3.pad = 1;
    attn_tensor_set *w = weights(&c1, 7); /* 1x1 kernels for a 3x3 config */
    assert_int_equal(attn_model_new("linear_image", cfg_json(&c3, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_q.weight"));
    attn_tensor_set_free(w);
    cfg co = c1;
    co.chan_out = 5; /* to_out has chan = 4 outputs */
    w = weights(&c1, 7);
    assert_int_equal(attn_model_new("linear_image", cfg_json(&co, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_out"));
    attn_tensor_set_free(w);
    assert_int_equal(attn_model_new("linear_image", cfg_json(&c1, buf, sizeof buf), NULL, &m, &e), ATTN_E_WEIGHTS);
    assert_null(m);
}

static void input_errors(void **state) {
    (void)state;
    attn_status st;
    attn_error e = {0};
    cfg c = {.chan = 4, .kd = 3, .vd = 3, .heads = 2};
    attn_model *m = build(&c, 9);
    assert_null(run_st(m, img(1, 2, 5, 3, 3), NULL, 1, &st, &e)); /* 5 channels */
    assert_int_equal(st, ATTN_E_SHAPE);
    assert_null(run_st(m, img(1, 2, 4, 3, 3), seq(2, 3, 4, 5), 1, &st, &e)); /* context batch */
    assert_int_equal(st, ATTN_E_SHAPE);
    assert_null(run_st(m, img(1, 2, 4, 3, 3), seq(2, 2, 3, 5), 1, &st, &e)); /* context channels */
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_model_free(m);

    /* The reference reshapes q/k/v to H*W positions: a 3x3 kernel without
     * padding (and an even kernel) cannot keep them. */
    c = (cfg){.chan = 2, .k = 3, .kd = 2, .vd = 2, .heads = 1};
    m = build(&c, 10);
    assert_null(run_st(m, img(1, 1, 2, 5, 5), NULL, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "H*W"));
    assert_null(run_st(m, img(1, 1, 2, 2, 5), NULL, 1, &st, &e)); /* kernel larger than input */
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_model_free(m);
    c = (cfg){.chan = 2, .k = 2, .kd = 2, .vd = 2, .heads = 1};
    m = build(&c, 11);
    assert_null(run_st(m, img(1, 1, 2, 4, 4), NULL, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_model_free(m);

    /* The reference reshapes context values with key_dim: kd != vd fails. */
    c = (cfg){.chan = 2, .kd = 2, .vd = 3, .heads = 2};
    m = build(&c, 12);
    assert_null(run_st(m, img(1, 1, 2, 3, 3), seq(2, 1, 2, 4), 1, &st, &e));
    assert_int_equal(st, ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "key_dim"));
    attn_tensor *o = run(m, img(1, 1, 2, 3, 3), NULL, 1); /* fine without context */
    attn_tensor_free(o);
    attn_model_free(m);
}

static void pixel_permutation_equivariant(void **state) {
    (void)state;
    cfg c = {.chan = 3, .chan_out = 4, .kd = 3, .vd = 2, .heads = 2};
    attn_model *m = build(&c, 20);
    const int64_t H = 2, W = 3, n = H * W;
    static const int perm[6] = {4, 0, 5, 2, 1, 3};
    attn_tensor *x = img(21, 1, 3, H, W), *xp = tu_copy(x);
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < n; i++) ((float *)xp->data)[ch * n + i] = ((float *)x->data)[ch * n + perm[i]];
    attn_tensor *o = run(m, x, NULL, 1), *op = run(m, xp, NULL, 1);
    for (int ch = 0; ch < 4; ch++)
        for (int i = 0; i < n; i++)
            assert_float_equal(((float *)op->data)[ch * n + i], ((float *)o->data)[ch * n + perm[i]], 1e-5);
    attn_tensor_free(o);
    attn_tensor_free(op);
    attn_model_free(m);
}

static void context_order_does_not_matter(void **state) {
    (void)state;
    cfg c = {.chan = 3, .kd = 2, .vd = 2, .heads = 2};
    attn_model *m = build(&c, 30);
    attn_tensor *x = img(31, 2, 3, 3, 2), *cx = seq(32, 2, 3, 5), *cr = tu_copy(cx);
    for (int b = 0; b < 2; b++)
        for (int ch = 0; ch < 3; ch++)
            for (int l = 0; l < 5; l++)
                ((float *)cr->data)[(b * 3 + ch) * 5 + l] = ((float *)cx->data)[(b * 3 + ch) * 5 + 4 - l];
    attn_tensor *o0 = run(m, tu_copy(x), NULL, 1);
    attn_tensor *o1 = run(m, tu_copy(x), cx, 1), *o2 = run(m, x, cr, 2);
    assert_true(tu_maxdiff(o1, o2) < 1e-5f);
    assert_true(tu_maxdiff(o0, o1) > 1e-4f); /* the context does contribute */
    attn_tensor_free(o0);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

/* to_q = 0 (weights and bias): softmax over key features is uniform at every
 * pixel, so every pixel gets the same attention output and, through a 1x1
 * to_out, the same output vector. */
static void constant_queries_give_constant_image(void **state) {
    (void)state;
    cfg c = {.chan = 3, .chan_out = 2, .kd = 4, .vd = 3, .heads = 2};
    attn_tensor_set *w = weights(&c, 40);
    memset(attn_tensor_set_get(w, "to_q.weight")->data, 0, attn_tensor_set_get(w, "to_q.weight")->nbytes);
    memset(attn_tensor_set_get(w, "to_q.bias")->data, 0, attn_tensor_set_get(w, "to_q.bias")->nbytes);
    attn_model *m = build_w(&c, w);
    attn_tensor *o = run(m, img(41, 2, 3, 3, 4), NULL, 1);
    const float *p = o->data;
    for (int b = 0; b < 2; b++)
        for (int ch = 0; ch < 2; ch++)
            for (int i = 1; i < 12; i++)
                assert_float_equal(p[(b * 2 + ch) * 12 + i], p[(b * 2 + ch) * 12], 1e-6);
    attn_tensor_free(o);
    attn_tensor_set_free(w);
    attn_model_free(m);
    /* norm_queries = false keeps zero queries zero: output = to_out.bias. */
    c.no_norm_q = true;
    w = weights(&c, 40);
    memset(attn_tensor_set_get(w, "to_q.weight")->data, 0, attn_tensor_set_get(w, "to_q.weight")->nbytes);
    memset(attn_tensor_set_get(w, "to_q.bias")->data, 0, attn_tensor_set_get(w, "to_q.bias")->nbytes);
    m = build_w(&c, w);
    o = run(m, img(41, 2, 3, 3, 4), NULL, 1);
    const float *bias = attn_tensor_set_get(w, "to_out.bias")->data;
    for (int b = 0; b < 2; b++)
        for (int ch = 0; ch < 2; ch++)
            for (int i = 0; i < 12; i++) assert_float_equal(((float *)o->data)[(b * 2 + ch) * 12 + i], bias[ch], 1e-6);
    attn_tensor_free(o);
    attn_tensor_set_free(w);
    attn_model_free(m);
}

static void batches_and_threads_independent(void **state) {
    (void)state;
    cfg c = {.chan = 4, .chan_out = 3, .k = 3, .pad = 1, .kd = 3, .vd = 3, .heads = 2};
    attn_model *m = build(&c, 50);
    attn_tensor *x = img(51, 3, 4, 5, 6), *cx = seq(52, 3, 4, 7);
    attn_tensor *x1 = img(0, 1, 4, 5, 6), *c1 = seq(0, 1, 4, 7);
    memcpy(x1->data, (float *)x->data + 2 * 4 * 30, 4 * 30 * sizeof(float));
    memcpy(c1->data, (float *)cx->data + 2 * 4 * 7, 4 * 7 * sizeof(float));
    attn_tensor *o1 = run(m, tu_copy(x), tu_copy(cx), 1), *o3 = run(m, x, cx, 3), *ob = run(m, x1, c1, 1);
    assert_true(tu_maxdiff(o1, o3) == 0.0f);
    float md = 0;
    for (int i = 0; i < 3 * 30; i++)
        md = fmaxf(md, fabsf(((float *)ob->data)[i] - ((float *)o1->data)[2 * 3 * 30 + i]));
    assert_true(md == 0.0f);
    attn_tensor_free(o1);
    attn_tensor_free(o3);
    attn_tensor_free(ob);
    attn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(output_shapes),
        cmocka_unit_test(config_and_weight_errors),
        cmocka_unit_test(input_errors),
        cmocka_unit_test(pixel_permutation_equivariant),
        cmocka_unit_test(context_order_does_not_matter),
        cmocka_unit_test(constant_queries_give_constant_image),
        cmocka_unit_test(batches_and_threads_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
