/*
 * test_linear_self.c — the `linear_self` mechanism (linear-attention-
 * transformer SelfAttention / LinearSelfAttention).
 *
 * Numerics against the reference are the golden cases' job; here: shapes,
 * config / weight / input errors, and properties that follow from the
 * definition: causal outputs ignore later positions (whole later buckets
 * when blindspot_size > 1); the first bucket of a blind-spot model sees no
 * keys, so its output is the to_out bias; a one-position causal model
 * returns ≈ Wo v + b; masked keys influence no other position and a fully
 * masked row attends to nothing (bias); the non-causal model is
 * permutation-equivariant; context mode with context = x equals self mode;
 * one_kv_head with one head equals the plain model; thread counts agree.
 */
#include "test_util.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cfg {
    int64_t dim, heads, dh; /* dh 0: null */
    bool causal, one_kv, ctx;
    int64_t bs;
    const char *psi;
} cfg;

static int64_t head(const cfg *c) { return c->dh ? c->dh : c->dim / c->heads; }

static char *cfg_json(const cfg *c, char *buf, size_t cap) {
    char dh[24] = "null";
    if (c->dh) snprintf(dh, sizeof dh, "%lld", (long long)c->dh);
    snprintf(buf, cap,
             "{\"dim\": %lld, \"heads\": %lld, \"causal\": %s, \"dim_head\": %s, \"one_kv_head\": %s, "
             "\"psi_fn\": \"%s\", \"blindspot_size\": %lld, \"n_local_attn_heads\": 0, "
             "\"receives_context\": %s, \"dropout\": 0.0, \"attn_dropout\": 0.0}",
             (long long)c->dim, (long long)c->heads, c->causal ? "true" : "false", dh,
             c->one_kv ? "true" : "false", c->psi ? c->psi : "elu1", (long long)(c->bs ? c->bs : 1),
             c->ctx ? "true" : "false");
    return buf;
}

static void add_w(attn_tensor_set *w, const char *name, int rank, int64_t a, int64_t b,
                  uint64_t *seed, float scale) {
    int64_t sh[2] = {a, b};
    attn_tensor *t = tu_randn(seed, rank, sh);
    for (size_t i = 0; i < t->numel; i++) ((float *)t->data)[i] *= scale;
    tu_add(w, name, t);
}

static attn_tensor_set *weights(const cfg *c, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    const int64_t d = head(c), HD = c->heads * d, KD = (c->one_kv ? 1 : c->heads) * d;
    const float s = 1.0f / sqrtf((float)c->dim);
    add_w(w, "to_q.weight", 2, HD, c->dim, &seed, 2 * s);
    add_w(w, "to_k.weight", 2, KD, c->dim, &seed, 2 * s);
    add_w(w, "to_v.weight", 2, KD, c->dim, &seed, s);
    add_w(w, "to_out.weight", 2, c->dim, HD, &seed, 1.0f / sqrtf((float)HD));
    add_w(w, "to_out.bias", 1, c->dim, 0, &seed, 0.5f);
    return w;
}

static attn_model *build_w(const cfg *c, const attn_tensor_set *w) {
    char buf[512];
    return tu_model_w("linear_self", cfg_json(c, buf, sizeof buf), w);
}

static attn_model *build(const cfg *c, uint64_t seed) {
    attn_tensor_set *w = weights(c, seed);
    attn_model *m = build_w(c, w);
    attn_tensor_set_free(w);
    return m;
}

static attn_status try_build(const cfg *c, const char *extra_cfg, attn_error *e) {
    char buf[512];
    attn_tensor_set *w = weights(c, 1);
    attn_status st = tu_model_status("linear_self", extra_cfg ? extra_cfg : cfg_json(c, buf, sizeof buf), w, e);
    attn_tensor_set_free(w);
    return st;
}

static attn_tensor *x_new(uint64_t seed, int64_t B, int64_t N, int64_t D) {
    int64_t sh[3] = {B, N, D};
    return tu_randn(&seed, 3, sh);
}

/* Runs with the named inputs (stolen; NULL entries skipped). */
static attn_tensor *run4(const attn_model *m, int threads, const char *n1, attn_tensor *t1, const char *n2,
                         attn_tensor *t2, const char *n3, attn_tensor *t3) {
    attn_tensor_set *in = attn_tensor_set_new();
    if (t1) tu_add(in, n1, t1);
    if (t2) tu_add(in, n2, t2);
    if (t3) tu_add(in, n3, t3);
    attn_tensor *o = tu_run_ok(m, in, threads);
    attn_tensor_set_free(in);
    return o;
}

static attn_tensor *run(const attn_model *m, attn_tensor *x, attn_tensor *mask) {
    return run4(m, 1, "x", x, "input_mask", mask, NULL, NULL);
}

/* tu_run_status on `in` (freed). */
static attn_status run_err(const attn_model *m, attn_tensor_set *in, attn_error *e) {
    attn_status st = tu_run_status(m, in, e);
    attn_tensor_set_free(in);
    return st;
}

/* ---- tests ---- */

static void shapes(void **state) {
    (void)state;
    const cfg cs[] = {
        {.dim = 16, .heads = 2},
        {.dim = 12, .heads = 3, .dh = 5},
        {.dim = 8, .heads = 2, .dh = 6, .one_kv = true, .causal = true, .psi = "relu"},
        {.dim = 16, .heads = 4, .one_kv = true, .causal = true, .bs = 4},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        attn_model *m = build(&cs[i], 3 + i);
        attn_tensor *o = run(m, x_new(4, 2, 8, cs[i].dim), NULL);
        assert_int_equal(o->shape[0], 2);
        assert_int_equal(o->shape[1], 8);
        assert_int_equal(o->shape[2], cs[i].dim);
        for (size_t k = 0; k < o->numel; k++) assert_true(isfinite(((float *)o->data)[k]));
        attn_tensor_free(o);
        attn_model_free(m);
    }
}

static void config_errors(void **state) {
    (void)state;
    attn_error e = {0};
    cfg c = {.dim = 10, .heads = 4}; /* 10 % 4 and no dim_head */
    assert_int_equal(try_build(&c, NULL, &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "divisible"));
    c = (cfg){.dim = 8, .heads = 2, .psi = "tanh"};
    assert_int_equal(try_build(&c, NULL, &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "psi_fn"));
    c = (cfg){.dim = 8, .heads = 2, .causal = true, .bs = 0};
    assert_int_equal(try_build(&c, "{\"dim\": 8, \"heads\": 2, \"blindspot_size\": 0}", &e), ATTN_E_CONFIG);
    assert_int_equal(try_build(&c, "{\"dim\": 8, \"heads\": 2, \"n_local_attn_heads\": 1}", &e),
                     ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "n_local_attn_heads"));
    assert_int_equal(try_build(&c, "{\"dim\": 8, \"heads\": 2, \"n_local_attn_heads\": 3}", &e), ATTN_E_CONFIG);
    assert_int_equal(try_build(&c, "{\"dim\": 8, \"heads\": 2, \"bucket_size\": 4}", &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "bucket_size"));
    assert_int_equal(try_build(&c, "{\"dim\": 8}", &e), ATTN_E_CONFIG); /* heads required */
    /* The reference's keys are all accepted, defaults included. */
    assert_int_equal(try_build(&c, "{\"dim\": 8, \"heads\": 2, \"local_attn_window_size\": 64, "
                                   "\"dropout\": 0.1, \"attn_dropout\": 0.2, \"psi_fn\": null}", &e),
                     ATTN_OK);
}

static void weight_errors(void **state) {
    (void)state;
    char buf[512];
    attn_error e = {0};
    attn_model *m = NULL;
    cfg multi = {.dim = 8, .heads = 4}, one = {.dim = 8, .heads = 4, .one_kv = true};
    attn_tensor_set *w = weights(&multi, 2); /* k/v for 4 heads, config wants 1 */
    assert_int_equal(attn_model_new("linear_self", cfg_json(&one, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_k.weight"));
    attn_tensor_set_free(w);
    w = attn_tensor_set_new();
    uint64_t seed = 3;
    add_w(w, "to_q.weight", 2, 8, 8, &seed, 1);
    add_w(w, "to_k.weight", 2, 8, 8, &seed, 1);
    add_w(w, "to_v.weight", 2, 8, 8, &seed, 1);
    add_w(w, "to_out.weight", 2, 8, 8, &seed, 1);
    assert_int_equal(attn_model_new("linear_self", cfg_json(&multi, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_out.bias"));
    add_w(w, "to_out.bias", 1, 8, 0, &seed, 1);
    add_w(w, "to_q.bias", 1, 8, 0, &seed, 1); /* the reference's to_q has no bias */
    assert_int_equal(attn_model_new("linear_self", cfg_json(&multi, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_q.bias"));
    assert_null(m);
    attn_tensor_set_free(w);
}

static void input_errors(void **state) {
    (void)state;
    attn_error e = {0};
    cfg c = {.dim = 8, .heads = 2, .causal = true, .bs = 4};
    attn_model *m = build(&c, 5);
    attn_tensor_set *in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 6, 8)); /* 6 % 4 */
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "divisible"));
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    uint8_t ones[16];
    memset(ones, 1, sizeof ones);
    tu_add(in, "input_mask", tu_mask(2, 7, ones));
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "input_mask"));
    attn_model_free(m);

    c = (cfg){.dim = 8, .heads = 2, .ctx = true};
    m = build(&c, 6);
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    assert_int_equal(run_err(m, in, &e), ATTN_E_INPUT); /* context required */
    assert_non_null(strstr(e.msg, "context"));
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    tu_add(in, "context", x_new(2, 3, 5, 8)); /* batch 3 != 2 */
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    tu_add(in, "context", x_new(2, 2, 5, 7)); /* feature 7 != dim */
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    tu_add(in, "context", x_new(2, 2, 5, 8));
    tu_add(in, "context_mask", tu_mask(2, 8, ones)); /* (B,N), not (B,S) */
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    attn_model_free(m);

    c = (cfg){.dim = 8, .heads = 2, .ctx = true, .causal = true};
    m = build(&c, 7);
    in = attn_tensor_set_new();
    tu_add(in, "x", x_new(1, 2, 8, 8));
    tu_add(in, "context", x_new(2, 2, 5, 8)); /* causal: context length must be N */
    assert_int_equal(run_err(m, in, &e), ATTN_E_SHAPE);
    attn_model_free(m);
}

static void causal_ignores_the_future(void **state) {
    (void)state;
    static const char *const psis[] = {"elu1", "relu", "exp", "softplus", "identity"};
    for (int bs = 1; bs <= 4; bs *= 4)
        for (int p = 0; p < 5; p++) {
            cfg c = {.dim = 12, .heads = 3, .causal = true, .bs = bs, .psi = psis[p], .one_kv = p % 2};
            attn_model *m = build(&c, 10 + p);
            const int64_t N = 12, t0 = 6; /* change t >= 6 (bucket 1 of size 4 starts at 4) */
            attn_tensor *x = x_new(20 + p, 2, N, 12), *x2 = tu_copy(x);
            float *q = x2->data;
            for (int64_t i = t0 * 12; i < N * 12; i++) q[i] += 1.5f * (float)(i % 5) - 2.0f;
            attn_tensor *o1 = run(m, x, NULL), *o2 = run(m, x2, NULL);
            assert_true(tu_rows_diff(o1, o2, 0, 0, t0) <= 1e-6f);
            assert_true(tu_rows_diff(o1, o2, 0, t0, N) > 1e-5f);
            assert_true(tu_rows_diff(o1, o2, 1, 0, N) <= 1e-6f); /* batch 1 untouched */
            attn_tensor_free(o1);
            attn_tensor_free(o2);
            attn_model_free(m);
        }
}

/* With a blind spot the first bucket sees no keys: att = 0, out = to_out.bias. */
static void first_bucket_is_bias(void **state) {
    (void)state;
    cfg c = {.dim = 8, .heads = 2, .causal = true, .bs = 3};
    attn_tensor_set *w = weights(&c, 31);
    attn_model *m = build_w(&c, w);
    attn_tensor *o = run(m, x_new(32, 2, 9, 8), NULL);
    const float *bias = attn_tensor_set_get(w, "to_out.bias")->data;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++)
            for (int d = 0; d < 8; d++) assert_float_equal(((float *)o->data)[(b * 9 + t) * 8 + d], bias[d], 1e-6);
    float moved = 0;
    for (int d = 0; d < 8; d++) moved = fmaxf(moved, fabsf(((float *)o->data)[3 * 8 + d] - bias[d]));
    assert_true(moved > 1e-4f); /* bucket 1 does attend */
    attn_tensor_free(o);
    attn_tensor_set_free(w);
    attn_model_free(m);
}

/* Positions of one bucket do not see each other: changing x[5] (bucket
 * 4..7 of size 4) moves only row 5 (its query) and the later buckets. */
static void bucket_mates_are_blind(void **state) {
    (void)state;
    cfg c = {.dim = 8, .heads = 2, .causal = true, .bs = 4, .psi = "relu"};
    attn_model *m = build(&c, 35);
    attn_tensor *x = x_new(36, 1, 12, 8), *x2 = tu_copy(x);
    for (int d = 0; d < 8; d++) ((float *)x2->data)[5 * 8 + d] += 2.0f - (float)d;
    attn_tensor *o1 = run(m, x, NULL), *o2 = run(m, x2, NULL);
    assert_true(tu_rows_diff(o1, o2, 0, 0, 5) <= 1e-6f);
    assert_true(tu_rows_diff(o1, o2, 0, 6, 8) <= 1e-6f);
    assert_true(tu_rows_diff(o1, o2, 0, 5, 6) > 1e-5f);
    assert_true(tu_rows_diff(o1, o2, 0, 8, 12) > 1e-5f);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

/* One position, causal, psi = elu1 > 0: ctx = k vᵀ / (k + 1e-6) ≈ 1 vᵀ and
 * softmax(q) sums to one, so att ≈ v and out ≈ Wo v + b. */
static void one_position_returns_value(void **state) {
    (void)state;
    cfg c = {.dim = 6, .heads = 2, .causal = true};
    attn_tensor_set *w = weights(&c, 41);
    attn_model *m = build_w(&c, w);
    attn_tensor *x = x_new(42, 1, 1, 6), *xc = tu_copy(x);
    attn_tensor *o = run(m, x, NULL);
    const float *wv = attn_tensor_set_get(w, "to_v.weight")->data;
    const float *wo = attn_tensor_set_get(w, "to_out.weight")->data;
    const float *bo = attn_tensor_set_get(w, "to_out.bias")->data;
    const float *xv = xc->data;
    double v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < 6; j++) v[i] += wv[i * 6 + j] * xv[j];
    }
    for (int i = 0; i < 6; i++) {
        double want = bo[i];
        for (int j = 0; j < 6; j++) want += wo[i * 6 + j] * v[j];
        assert_float_equal(((float *)o->data)[i], want, 1e-4);
    }
    attn_tensor_free(o);
    attn_tensor_free(xc);
    attn_tensor_set_free(w);
    attn_model_free(m);
}

static void masked_keys_do_not_leak(void **state) {
    (void)state;
    for (int causal = 0; causal <= 1; causal++) {
        cfg c = {.dim = 8, .heads = 2, .causal = causal, .one_kv = causal};
        attn_tensor_set *w = weights(&c, 50 + causal);
        attn_model *m = build_w(&c, w);
        static const uint8_t mv[12] = {1, 1, 0, 1, 1, 0, /**/ 0, 0, 0, 0, 0, 0};
        attn_tensor *x = x_new(52, 2, 6, 8), *x2 = tu_copy(x);
        float *p = x2->data;
        for (int d = 0; d < 8; d++) p[2 * 8 + d] += 3.0f, p[5 * 8 + d] -= 1.0f + (float)d;
        attn_tensor *o1 = run(m, x, tu_mask(2, 6, mv)), *o2 = run(m, x2, tu_mask(2, 6, mv));
        assert_true(tu_rows_diff(o1, o2, 0, 0, 2) <= 1e-6f);
        assert_true(tu_rows_diff(o1, o2, 0, 3, 5) <= 1e-6f);
        assert_true(tu_rows_diff(o1, o2, 0, 2, 3) > 1e-5f); /* its own query still changes */
        /* batch 1 has every key masked: masked values are zeroed, so the
         * attention output is 0 and the layer returns its bias. */
        const float *bias = attn_tensor_set_get(w, "to_out.bias")->data;
        for (int t = 0; t < 6; t++)
            for (int d = 0; d < 8; d++)
                assert_float_equal(((float *)o1->data)[(6 + t) * 8 + d], bias[d], 1e-6);
        attn_tensor_free(o1);
        attn_tensor_free(o2);
        attn_tensor_set_free(w);
        attn_model_free(m);
    }
}

static void permutation_equivariant(void **state) {
    (void)state;
    cfg c = {.dim = 8, .heads = 2, .dh = 3};
    attn_model *m = build(&c, 60);
    static const int perm[7] = {6, 2, 0, 5, 1, 3, 4};
    attn_tensor *x = x_new(61, 1, 7, 8), *xp = tu_copy(x);
    for (int i = 0; i < 7; i++) memcpy((float *)xp->data + i * 8, (float *)x->data + perm[i] * 8, 8 * sizeof(float));
    attn_tensor *o = run(m, x, NULL), *op = run(m, xp, NULL);
    for (int i = 0; i < 7; i++)
        for (int d = 0; d < 8; d++)
            assert_float_equal(((float *)op->data)[i * 8 + d], ((float *)o->data)[perm[i] * 8 + d], 1e-5);
    attn_tensor_free(o);
    attn_tensor_free(op);
    attn_model_free(m);
}

/* receives_context with context = x and context_mask = input_mask is the
 * self-attention model (same weights), causal or not. */
static void context_mode_matches_self(void **state) {
    (void)state;
    static const uint8_t mv[16] = {1, 1, 0, 1, 1, 1, 1, 0, /**/ 1, 0, 1, 1, 1, 1, 1, 1};
    for (int causal = 0; causal <= 1; causal++) {
        cfg self = {.dim = 8, .heads = 2, .causal = causal, .bs = causal ? 2 : 1};
        cfg ctx = self;
        ctx.ctx = true;
        attn_tensor_set *w = weights(&self, 70);
        attn_model *ms = build_w(&self, w), *mc = build_w(&ctx, w);
        attn_tensor *x = x_new(71, 2, 8, 8);
        attn_tensor *o1 = run(ms, tu_copy(x), tu_mask(2, 8, mv));
        attn_tensor *o2 = run4(mc, 2, "x", tu_copy(x), "context", x, "context_mask", tu_mask(2, 8, mv));
        assert_true(tu_maxdiff(o1, o2) <= 1e-6f);
        attn_tensor_free(o1);
        attn_tensor_free(o2);
        attn_tensor_set_free(w);
        attn_model_free(ms);
        attn_model_free(mc);
    }
    /* A shorter context works without causality. */
    cfg c = {.dim = 8, .heads = 2, .ctx = true};
    attn_model *m = build(&c, 72);
    attn_tensor *o = run4(m, 1, "x", x_new(73, 2, 8, 8), "context", x_new(74, 2, 3, 8), NULL, NULL);
    assert_int_equal(o->shape[1], 8);
    attn_tensor_free(o);
    attn_model_free(m);
}

static void one_kv_head_with_one_head_is_plain(void **state) {
    (void)state;
    for (int causal = 0; causal <= 1; causal++) {
        cfg a = {.dim = 6, .heads = 1, .causal = causal}, b = a;
        b.one_kv = true;
        attn_tensor_set *w = weights(&a, 80); /* same shapes for both with one head */
        attn_model *ma = build_w(&a, w), *mb = build_w(&b, w);
        attn_tensor *x = x_new(81, 2, 5, 6);
        attn_tensor *o1 = run(ma, tu_copy(x), NULL), *o2 = run(mb, x, NULL);
        assert_true(tu_maxdiff(o1, o2) == 0.0f);
        attn_tensor_free(o1);
        attn_tensor_free(o2);
        attn_tensor_set_free(w);
        attn_model_free(ma);
        attn_model_free(mb);
    }
}

static void threads_agree(void **state) {
    (void)state;
    cfg c = {.dim = 16, .heads = 4, .causal = true, .bs = 2, .psi = "softplus"};
    attn_model *m = build(&c, 90);
    attn_tensor *x = x_new(91, 3, 130, 16);
    attn_tensor *o1 = run4(m, 1, "x", tu_copy(x), NULL, NULL, NULL, NULL);
    attn_tensor *o3 = run4(m, 3, "x", x, NULL, NULL, NULL, NULL);
    assert_true(tu_maxdiff(o1, o3) == 0.0f);
    attn_tensor_free(o1);
    attn_tensor_free(o3);
    attn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shapes),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(weight_errors),
        cmocka_unit_test(input_errors),
        cmocka_unit_test(causal_ignores_the_future),
        cmocka_unit_test(first_bucket_is_bias),
        cmocka_unit_test(bucket_mates_are_blind),
        cmocka_unit_test(one_position_returns_value),
        cmocka_unit_test(masked_keys_do_not_leak),
        cmocka_unit_test(permutation_equivariant),
        cmocka_unit_test(context_mode_matches_self),
        cmocka_unit_test(one_kv_head_with_one_head_is_plain),
        cmocka_unit_test(threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
