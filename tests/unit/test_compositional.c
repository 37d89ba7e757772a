/*
 * test_compositional.c — the `compositional` mechanism (CompositionalAttention).
 *
 * Numerics against the reference are the golden cases' job; here: shapes,
 * config / weight / input errors, and properties that follow from the
 * definition: a one-position, one-search, one-retrieval layer reduces to
 * Wout Wrv x; causal outputs ignore later positions; masked positions
 * influence no other position; no mask == all-true mask; permuting the
 * sequence permutes the output; prenorm makes the output invariant to an
 * affine rescaling of each x row; batch rows and thread counts are
 * independent.
 */
#include "test_util.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cfg {
    int64_t dim, dh, S, R;
    bool prenorm, causal;
} cfg;

static char *cfg_json(const cfg *c, char *buf, size_t cap) {
    snprintf(buf, cap,
             "{\"dim\": %lld, \"dim_head\": %lld, \"num_searches\": %lld, \"num_retrievals\": %lld, "
             "\"dropout\": 0.1, \"prenorm\": %s, \"causal\": %s}",
             (long long)c->dim, (long long)c->dh, (long long)c->S, (long long)c->R,
             c->prenorm ? "true" : "false", c->causal ? "true" : "false");
    return buf;
}

static void add_w(attn_tensor_set *w, const char *name, int64_t a, int64_t b, uint64_t *seed,
                  float scale) {
    int64_t sh[2] = {a, b};
    attn_tensor *t = tu_randn(seed, 2, sh);
    for (size_t i = 0; i < t->numel; i++) ((float *)t->data)[i] *= scale;
    tu_add(w, name, t);
}

/* The reference state_dict for c, random (weights ~ U(-1,1)/sqrt(fan_in)). */
static attn_tensor_set *weights(const cfg *c, uint64_t seed) {
    attn_tensor_set *w = attn_tensor_set_new();
    const int64_t SE = c->S * c->dh, RE = c->R * c->dh;
    const float sd = 1.0f / sqrtf((float)c->dim), se = 1.0f / sqrtf((float)SE);
    add_w(w, "to_searches_queries.weight", SE, c->dim, &seed, sd);
    add_w(w, "to_searches_keys.weight", SE, c->dim, &seed, sd);
    add_w(w, "to_retrieval_values.weight", RE, c->dim, &seed, sd);
    add_w(w, "to_retrieval_queries.weight", SE, c->dim, &seed, sd);
    add_w(w, "to_retrieval_keys.weight", c->dh, c->dh, &seed, 1.0f / sqrtf((float)c->dh));
    add_w(w, "to_out.weight", c->dim, SE, &seed, se);
    if (c->prenorm) {
        int64_t d = c->dim;
        attn_tensor *g = tu_randn(&seed, 1, &d), *b = tu_randn(&seed, 1, &d);
        for (int64_t i = 0; i < d; i++) ((float *)g->data)[i] += 1.5f;
        tu_add(w, "norm.weight", g);
        tu_add(w, "norm.bias", b);
    }
    return w;
}

static attn_model *build(const cfg *c, uint64_t seed) {
    char buf[256];
    attn_tensor_set *w = weights(c, seed);
    attn_model *m = tu_model_w("compositional", cfg_json(c, buf, sizeof buf), w);
    attn_tensor_set_free(w);
    return m;
}

static attn_tensor *x_new(uint64_t seed, int64_t B, int64_t N, int64_t D) {
    int64_t sh[3] = {B, N, D};
    return tu_randn(&seed, 3, sh);
}

static attn_tensor_set *inputs(attn_tensor *x, attn_tensor *mask) {
    attn_tensor_set *s = attn_tensor_set_new();
    tu_add(s, "x", x);
    if (mask) tu_add(s, "mask", mask);
    return s;
}

static attn_tensor *run(const attn_model *m, attn_tensor *x, attn_tensor *mask, int threads) {
    attn_tensor_set *in = inputs(x, mask);
    attn_tensor *o = tu_run_ok(m, in, threads);
    attn_tensor_set_free(in);
    return o;
}

/* ---- tests ---- */

static void shapes_and_metadata(void **state) {
    (void)state;
    cfg c = {.dim = 12, .dh = 4, .S = 3, .R = 2};
    attn_model *m = build(&c, 1);
    assert_int_equal(attn_model_num_inputs(m), 2);
    assert_string_equal(attn_model_input(m, 0)->name, "x");
    assert_string_equal(attn_model_input(m, 1)->name, "mask");
    assert_int_equal(attn_model_input(m, 1)->dtype, ATTN_BOOL);
    assert_false(attn_model_input(m, 1)->required);
    attn_tensor *o = run(m, x_new(2, 3, 5, 12), NULL, 1);
    assert_int_equal(o->rank, 3);
    assert_int_equal(o->shape[0], 3);
    assert_int_equal(o->shape[1], 5);
    assert_int_equal(o->shape[2], 12);
    for (size_t i = 0; i < o->numel; i++) assert_true(isfinite(((float *)o->data)[i]));
    attn_tensor_free(o);
    attn_model_free(m);
    /* The defaults of the reference constructor. */
    const attn_mech_info *info = attn_mech_find("compositional");
    assert_non_null(info);
    assert_ptr_equal(attn_mech_find("compositional-attention"), info);
    for (const attn_param *p = info->params; p->key; p++) {
        if (!strcmp(p->key, "dim_head")) assert_string_equal(p->def, "64");
        if (!strcmp(p->key, "num_searches")) assert_string_equal(p->def, "8");
        if (!strcmp(p->key, "num_retrievals")) assert_string_equal(p->def, "2");
        if (!strcmp(p->key, "dim")) assert_null(p->def);
    }
}

static void config_errors(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{}",                                   /* dim is required */
        "{\"dim\": 8, \"heads\": 2}",           /* unknown key */
        "{\"dim\": 8, \"dim_head\": 0}",        /* dim_head ** -0.5 */
        "{\"dim\": 8, \"num_searches\": 0}",
        "{\"dim\": 8, \"dropout\": 1.5}",
        "{\"dim\": 8, \"causal\": 1}",
        "{\"dim\": 0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        attn_model *m = NULL;
        attn_error e = {0};
        assert_int_equal(attn_model_new("compositional", bad[i], NULL, &m, &e), ATTN_E_CONFIG);
        assert_null(m);
        assert_true(strlen(e.msg) > 0);
    }
}

static void weight_errors(void **state) {
    (void)state;
    char buf[256];
    cfg c = {.dim = 8, .dh = 4, .S = 2, .R = 2};
    attn_model *m = NULL;
    attn_error e = {0};
    attn_tensor_set *w = weights(&c, 3);
    c.prenorm = true; /* norm.* missing */
    assert_int_equal(attn_model_new("compositional", cfg_json(&c, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "norm.weight"));
    c.prenorm = false;
    c.S = 3; /* every search weight has the wrong shape now */
    assert_int_equal(attn_model_new("compositional", cfg_json(&c, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "to_searches_queries.weight"));
    attn_tensor_set_free(w);
    c.S = 2;
    c.prenorm = true;
    w = weights(&c, 3); /* norm.* present, the config without prenorm leaves them over */
    c.prenorm = false;
    assert_int_equal(attn_model_new("compositional", cfg_json(&c, buf, sizeof buf), w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "norm."));
    attn_tensor_set_free(w);
    assert_int_equal(attn_model_new("compositional", cfg_json(&c, buf, sizeof buf), NULL, &m, &e), ATTN_E_WEIGHTS);
    assert_null(m);
}

static void input_errors(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 4, .S = 2, .R = 2};
    attn_model *m = build(&c, 4);
    attn_status st;
    attn_error e = {0};
    attn_tensor_set *in = inputs(x_new(1, 2, 5, 7), NULL); /* last dim 7 != dim */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    uint8_t ones[12];
    memset(ones, 1, sizeof ones);
    in = inputs(x_new(1, 2, 5, 8), tu_mask(2, 6, ones)); /* mask (2,6) for N = 5 */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "mask"));
    attn_tensor_set_free(in);
    in = inputs(x_new(1, 2, 5, 8), NULL);
    int64_t ms[2] = {2, 5};
    uint64_t seed = 9;
    tu_add(in, "mask", tu_randn(&seed, 2, ms)); /* F32 mask */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_DTYPE);
    attn_tensor_set_free(in);
    in = attn_tensor_set_new();
    assert_null(tu_run(m, in, 1, &st, &e)); /* no x */
    assert_int_equal(st, ATTN_E_INPUT);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

/* N = 1, S = 1, R = 1: both softmaxes are over one element, so
 * out = Wout · ret with ret = rv = Wrv x. */
static void single_position_closed_form(void **state) {
    (void)state;
    cfg c = {.dim = 6, .dh = 3, .S = 1, .R = 1};
    attn_tensor_set *w = weights(&c, 5);
    char buf[256];
    attn_model *m = NULL;
    assert_int_equal(attn_model_new("compositional", cfg_json(&c, buf, sizeof buf), w, &m, NULL), ATTN_OK);
    attn_tensor *x = x_new(6, 2, 1, 6);
    attn_tensor *xc = tu_copy(x);
    attn_tensor *o = run(m, x, NULL, 1);
    const float *wrv = attn_tensor_set_get(w, "to_retrieval_values.weight")->data;
    const float *wo = attn_tensor_set_get(w, "to_out.weight")->data;
    for (int b = 0; b < 2; b++) {
        const float *xb = (const float *)xc->data + b * 6;
        double rv[3];
        for (int e = 0; e < 3; e++) {
            rv[e] = 0;
            for (int d = 0; d < 6; d++) rv[e] += wrv[e * 6 + d] * xb[d];
        }
        for (int d = 0; d < 6; d++) {
            double want = 0;
            for (int e = 0; e < 3; e++) want += wo[d * 3 + e] * rv[e];
            assert_float_equal(((float *)o->data)[b * 6 + d], want, 1e-5);
        }
    }
    attn_tensor_free(o);
    attn_tensor_free(xc);
    attn_tensor_set_free(w);
    attn_model_free(m);
}

static void causal_ignores_the_future(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 4, .S = 3, .R = 2, .causal = true};
    attn_model *m = build(&c, 7);
    const int64_t N = 9;
    attn_tensor *x = x_new(8, 2, N, 8);
    attn_tensor *x2 = tu_copy(x);
    float *p = x2->data;
    for (int64_t i = 5 * 8; i < N * 8; i++) p[i] += 3.0f;          /* batch 0, t >= 5 */
    for (int64_t i = (N + 5) * 8; i < 2 * N * 8; i++) p[i] -= 2.0f; /* batch 1, t >= 5 */
    attn_tensor *o1 = run(m, x, NULL, 2), *o2 = run(m, x2, NULL, 2);
    for (int b = 0; b < 2; b++) {
        assert_true(tu_rows_diff(o1, o2, b, 0, 5) <= 1e-6f);
        assert_true(tu_rows_diff(o1, o2, b, 5, N) > 1e-3f); /* the test can fail */
    }
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

static void masked_positions_do_not_leak(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 4, .S = 2, .R = 3, .prenorm = true};
    attn_model *m = build(&c, 11);
    const int64_t N = 6;
    static const uint8_t mv[12] = {1, 0, 1, 1, 0, 1, /**/ 0, 0, 0, 0, 0, 0};
    attn_tensor *x = x_new(12, 2, N, 8), *x2 = tu_copy(x);
    float *p = x2->data;
    for (int d = 0; d < 8; d++) p[1 * 8 + d] += (float)d, p[4 * 8 + d] *= -2.0f;
    attn_tensor *o1 = run(m, x, tu_mask(2, N, mv), 1), *o2 = run(m, x2, tu_mask(2, N, mv), 1);
    /* batch 0: rows other than 1 and 4 are untouched; those two change. */
    assert_true(tu_rows_diff(o1, o2, 0, 0, 1) <= 1e-6f);
    assert_true(tu_rows_diff(o1, o2, 0, 2, 4) <= 1e-6f);
    assert_true(tu_rows_diff(o1, o2, 0, 5, 6) <= 1e-6f);
    assert_true(tu_rows_diff(o1, o2, 0, 1, 2) > 1e-4f);
    /* batch 1, every key masked: finite (uniform attention), as with
     * -finfo.max in the reference, never NaN. */
    for (size_t i = (size_t)(N * 8); i < o1->numel; i++) assert_true(isfinite(((float *)o1->data)[i]));
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

static void all_true_mask_is_no_mask(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 2, .S = 4, .R = 2, .causal = true};
    attn_model *m = build(&c, 13);
    uint8_t ones[14];
    memset(ones, 1, sizeof ones);
    attn_tensor *x = x_new(14, 2, 7, 8), *x2 = tu_copy(x);
    attn_tensor *o1 = run(m, x, NULL, 1), *o2 = run(m, x2, tu_mask(2, 7, ones), 1);
    assert_true(tu_maxdiff(o1, o2) == 0.0f);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

static void permutation_equivariant(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 4, .S = 2, .R = 2};
    attn_model *m = build(&c, 17);
    const int64_t N = 6;
    static const int perm[6] = {3, 0, 5, 1, 4, 2};
    attn_tensor *x = x_new(18, 1, N, 8), *xp = tu_copy(x);
    for (int i = 0; i < N; i++)
        memcpy((float *)xp->data + i * 8, (float *)x->data + perm[i] * 8, 8 * sizeof(float));
    attn_tensor *o = run(m, x, NULL, 1), *op = run(m, xp, NULL, 1);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < 8; d++)
            assert_float_equal(((float *)op->data)[i * 8 + d], ((float *)o->data)[perm[i] * 8 + d], 1e-5);
    attn_tensor_free(o);
    attn_tensor_free(op);
    attn_model_free(m);
}

static void prenorm_is_affine_invariant(void **state) {
    (void)state;
    cfg c = {.dim = 16, .dh = 4, .S = 2, .R = 2, .prenorm = true};
    attn_model *m = build(&c, 19);
    attn_tensor *x = x_new(20, 2, 5, 16), *x2 = tu_copy(x);
    float *p = x2->data;
    for (size_t i = 0; i < x2->numel; i++) p[i] = 3.0f * p[i] + 0.75f;
    attn_tensor *o1 = run(m, x, NULL, 1), *o2 = run(m, x2, NULL, 1);
    assert_true(tu_maxdiff(o1, o2) < 1e-4f);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_model_free(m);
}

static void batches_and_threads_independent(void **state) {
    (void)state;
    cfg c = {.dim = 8, .dh = 4, .S = 3, .R = 2, .causal = true, .prenorm = true};
    attn_model *m = build(&c, 23);
    const int64_t N = 70; /* more than one row chunk */
    attn_tensor *x = x_new(24, 3, N, 8), *x1 = x_new(0, 1, N, 8);
    memcpy(x1->data, (float *)x->data + 2 * N * 8, (size_t)(N * 8) * sizeof(float));
    attn_tensor *xc = tu_copy(x);
    attn_tensor *o1 = run(m, x, NULL, 1), *o3 = run(m, xc, NULL, 3), *ob = run(m, x1, NULL, 2);
    assert_true(tu_maxdiff(o1, o3) == 0.0f);
    float md = 0;
    for (int64_t i = 0; i < N * 8; i++)
        md = fmaxf(md, fabsf(((float *)ob->data)[i] - ((float *)o1->data)[2 * N * 8 + i]));
    assert_true(md <= 1e-6f); /* other row chunking: sgemm may round differently */
    attn_tensor_free(o1);
    attn_tensor_free(o3);
    attn_tensor_free(ob);
    attn_model_free(m);
}

/* Without a mask the searches run as one full attention (its fused kernel
 * at these sizes: N >= 8, R·dim_head = 32); with a mask, comp_search's own
 * products.  One extra position, masked, appended to x takes the second
 * path and must leave the first N rows as the first path made them (a
 * masked key weighs exactly 0; causal: it is also every row's future). */
static void fused_path_matches_masked_path(void **state) {
    (void)state;
    for (int causal = 0; causal < 2; causal++) {
        cfg c = {.dim = 32, .dh = 16, .S = 3, .R = 2, .causal = causal};
        attn_model *m = build(&c, 31 + (uint64_t)causal);
        const int64_t B = 2, N = 40;
        attn_tensor *x = x_new(32, B, N, 32), *xe = x_new(0, B, N + 1, 32);
        for (int64_t b = 0; b < B; b++)
            memcpy((float *)xe->data + b * (N + 1) * 32, (float *)x->data + b * N * 32, (size_t)(N * 32) * sizeof(float));
        int64_t msh[2] = {B, N + 1};
        attn_tensor *mask = NULL;
        assert_int_equal(attn_tensor_new(ATTN_BOOL, 2, msh, &mask, NULL), ATTN_OK);
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i <= N; i++) ((uint8_t *)mask->data)[b * (N + 1) + i] = i < N;
        attn_tensor *o = run(m, x, NULL, 2), *oe = run(m, xe, mask, 2);
        float md = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < N * 32; i++)
                md = fmaxf(md, fabsf(((float *)o->data)[b * N * 32 + i] - ((float *)oe->data)[b * (N + 1) * 32 + i]));
        assert_true(md <= 2e-6f);
        attn_tensor_free(o);
        attn_tensor_free(oe);
        attn_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shapes_and_metadata),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(weight_errors),
        cmocka_unit_test(input_errors),
        cmocka_unit_test(single_position_closed_form),
        cmocka_unit_test(causal_ignores_the_future),
        cmocka_unit_test(masked_positions_do_not_leak),
        cmocka_unit_test(all_true_mask_is_no_mask),
        cmocka_unit_test(permutation_equivariant),
        cmocka_unit_test(prenorm_is_affine_invariant),
        cmocka_unit_test(batches_and_threads_independent),
        cmocka_unit_test(fused_path_matches_masked_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
