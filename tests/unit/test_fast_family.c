/* test_fast_family.c — linear, causal_linear, local, exact_topk,
 * conditional_full, aft_full, aft_simple and attention_layer against plain
 * re-statements of the reference formulas, plus their error paths. */
#include "test_util.h"

#define AT(t, i) (((const float *)(t)->data)[i])

static float elu1(float x) { return x > 0 ? x + 1 : expf(x); }

/* LinearAttention (causal when `causal`), elu feature map, eps 1e-6. */
static void naive_linear(const attn_tensor_set *in, int causal, float *out) {
    const attn_tensor *q = attn_tensor_set_get(in, "queries"), *k = attn_tensor_set_get(in, "keys"),
                      *v = attn_tensor_set_get(in, "values"), *kl = attn_tensor_set_get(in, "key_lengths");
    int64_t N = q->shape[0], L = q->shape[1], H = q->shape[2], E = q->shape[3], S = k->shape[1], D = v->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                double num[64] = {0}, den = 0;
                int64_t last = causal ? l + 1 : S;
                for (int64_t s = 0; s < last; s++) {
                    if (kl && s >= ((int64_t *)kl->data)[n]) continue;
                    double dot = 0;
                    for (int64_t e = 0; e < E; e++)
                        dot += (double)elu1(AT(q, ((n * L + l) * H + h) * E + e)) * elu1(AT(k, ((n * S + s) * H + h) * E + e));
                    den += dot;
                    for (int64_t d = 0; d < D; d++) num[d] += dot * AT(v, ((n * S + s) * H + h) * D + d);
                }
                for (int64_t d = 0; d < D; d++) out[((n * L + l) * H + h) * D + d] = (float)(num[d] / (den + 1e-6));
            }
}

static void linear_matches_formula(void **state) {
    (void)state;
    for (int causal = 0; causal < 2; causal++) {
        for (int L = 1; L <= 150; L += 149) {
            attn_tensor_set *in = tu_qkv(21 + (uint64_t)L, 2, L, causal ? L + 3 : 9, 3, 5, 7);
            int64_t S = attn_tensor_set_get(in, "keys")->shape[1];
            tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){S, S - 2}));
            if (causal) tu_add(in, "attn_mask", tu_tril(L, S, 0));
            attn_model *m = tu_model(causal ? "causal_linear" : "linear", "{\"query_dimensions\": 5}");
            attn_tensor *o = tu_run_ok(m, in, 2);
            float *ref = calloc(o->numel, sizeof *ref);
            naive_linear(in, causal, ref);
            tu_assert_close(o->data, ref, o->numel, 2e-5f);
            free(ref);
            attn_tensor_free(o);
            attn_model_free(m);
            attn_tensor_set_free(in);
        }
    }
}

static void linear_mask_rules(void **state) {
    (void)state;
    attn_error e = {0};
    attn_status st;
    attn_model *lin = tu_model("linear", "{\"query_dimensions\": 4}");
    attn_model *cau = tu_model("causal-linear", "{\"query_dimensions\": 4}");
    attn_tensor_set *in = tu_qkv(1, 1, 4, 4, 1, 4, 2);
    tu_add(in, "attn_mask", tu_tril(4, 4, 0));
    assert_null(tu_run(lin, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_UNSUPPORTED);
    attn_tensor *o = tu_run_ok(cau, in, 1);
    attn_tensor_free(o);
    attn_tensor_set_free(in);
    in = tu_qkv(1, 1, 4, 4, 1, 4, 2);
    tu_add(in, "attn_mask", tu_tril(4, 4, 1)); /* not lower triangular */
    assert_null(tu_run(cau, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_UNSUPPORTED);
    attn_tensor_set_free(in);
    in = tu_qkv(1, 1, 5, 4, 1, 4, 2); /* L > S: the reference reads out of bounds */
    assert_null(tu_run(cau, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    in = tu_qkv(1, 1, 4, 4, 1, 3, 2); /* E disagrees with a random map's query_dimensions */
    attn_model *fav = tu_model("linear", "{\"query_dimensions\": 4, \"feature_map\": \"favor\"}");
    assert_null(tu_run(fav, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    attn_model_free(fav);
    attn_model_free(lin);
    attn_model_free(cau);
}

static void causal_linear_ignores_the_future(void **state) {
    (void)state;
    attn_tensor_set *a = tu_qkv(5, 1, 70, 70, 2, 4, 3), *b = tu_qkv(5, 1, 70, 70, 2, 4, 3);
    float *kb = (float *)attn_tensor_set_get(b, "keys")->data, *vb = (float *)attn_tensor_set_get(b, "values")->data;
    for (int i = 40 * 2 * 4; i < 70 * 2 * 4; i++) kb[i] = 3.0f;
    for (int i = 40 * 2 * 3; i < 70 * 2 * 3; i++) vb[i] = -9.0f;
    attn_model *m = tu_model("causal_linear", "{\"query_dimensions\": 4}");
    attn_tensor *x = tu_run_ok(m, a, 1), *y = tu_run_ok(m, b, 1);
    assert_memory_equal(x->data, y->data, 40 * 2 * 3 * sizeof(float));
    assert_memory_not_equal(x->data, y->data, x->nbytes);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(m);
    attn_tensor_set_free(a);
    attn_tensor_set_free(b);
}

static void random_feature_maps(void **state) {
    (void)state;
    const char *maps[] = {"\"rff\"", "\"smoothed_rff\"", "\"favor\"", "\"grf\"",
                          "{\"type\": \"favor\", \"n_dims\": 16, \"stabilize\": true, \"seed\": 3}",
                          "{\"type\": \"rff\", \"orthogonal\": true, \"n_dims\": 10, \"seed\": 3}",
                          "{\"type\": \"grf\", \"kernel_fn\": \"exp\", \"softmax_temp\": 0.5}"};
    attn_tensor_set *in = tu_qkv(8, 2, 9, 11, 2, 6, 4);
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
        char cfg[256], cfg2[256];
        snprintf(cfg, sizeof cfg, "{\"query_dimensions\": 6, \"feature_map\": %s}", maps[i]);
        attn_model *m = tu_model("linear", cfg), *m2 = tu_model("linear", cfg);
        attn_tensor *x = tu_run_ok(m, in, 1), *y = tu_run_ok(m2, in, 2);
        assert_memory_equal(x->data, y->data, x->nbytes); /* same seed, same result */
        for (size_t j = 0; j < x->numel; j++) assert_true(isfinite(AT(x, j)));
        attn_tensor_free(x);
        attn_tensor_free(y);
        attn_model_free(m);
        attn_model_free(m2);
        (void)cfg2;
    }
    /* a different seed draws different features */
    attn_model *a = tu_model("linear", "{\"query_dimensions\": 6, \"feature_map\": {\"type\": \"favor\", \"seed\": 1}}");
    attn_model *b = tu_model("linear", "{\"query_dimensions\": 6, \"feature_map\": {\"type\": \"favor\", \"seed\": 2}}");
    attn_tensor *x = tu_run_ok(a, in, 1), *y = tu_run_ok(b, in, 1);
    assert_memory_not_equal(x->data, y->data, x->nbytes);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(a);
    attn_model_free(b);
    attn_tensor_set_free(in);
}

static void favor_approximates_softmax(void **state) {
    (void)state;
    /* With many orthogonal features Favor's estimate approaches full softmax
     * attention: a loose bound, but one a wrong formula cannot meet. */
    attn_tensor_set *in = tu_qkv(4, 1, 16, 16, 1, 4, 4);
    attn_model *f = tu_model("full", NULL);
    attn_model *l = tu_model("linear", "{\"query_dimensions\": 4, \"feature_map\": {\"type\": \"favor\", \"n_dims\": 4096}}");
    attn_tensor *x = tu_run_ok(f, in, 1), *y = tu_run_ok(l, in, 1);
    assert_true(tu_maxdiff(x, y) < 0.05f);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(f);
    attn_model_free(l);
    attn_tensor_set_free(in);
}

static void local_matches_formula(void **state) {
    (void)state;
    for (int w = 1; w <= 6; w++) {
        attn_tensor_set *in = tu_qkv(30 + (uint64_t)w, 2, 9, 9, 2, 4, 3);
        tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){9, 5}));
        char cfg[64];
        snprintf(cfg, sizeof cfg, "{\"local_context\": %d}", w);
        attn_model *m = tu_model("local", cfg);
        attn_tensor *o = tu_run_ok(m, in, 2);
        const attn_tensor *q = attn_tensor_set_get(in, "queries"), *k = attn_tensor_set_get(in, "keys"),
                          *v = attn_tensor_set_get(in, "values");
        for (int n = 0; n < 2; n++)
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 9; l++) {
                    int klen = n ? 5 : 9, lo = l - w / 2, hi = l + (w + 1) / 2; /* [lo, hi) */
                    double sc[16], mx = -1e30, sum = 0;
                    for (int t = 0; t < w; t++) {
                        int s = lo + t;
                        sc[t] = -1e24;
                        if (s >= 0 && s < klen) {
                            double d = 0;
                            for (int e = 0; e < 4; e++) d += AT(q, ((n * 9 + l) * 2 + h) * 4 + e) * AT(k, ((n * 9 + s) * 2 + h) * 4 + e);
                            sc[t] = d * 0.5; /* temp = 1/sqrt(4) */
                        }
                        mx = sc[t] > mx ? sc[t] : mx;
                    }
                    for (int t = 0; t < w; t++) sum += sc[t] = exp(sc[t] - mx);
                    for (int d = 0; d < 3; d++) {
                        double acc = 0;
                        for (int t = 0; t < w; t++) {
                            int s = lo + t;
                            if (s >= 0 && s < 9 && s < hi) acc += sc[t] / sum * AT(v, ((n * 9 + s) * 2 + h) * 3 + d);
                        }
                        assert_float_equal(AT(o, ((n * 9 + l) * 2 + h) * 3 + d), acc, 1e-5);
                    }
                }
        attn_tensor_free(o);
        attn_model_free(m);
        attn_tensor_set_free(in);
    }
}

static void topk_all_keys_equals_full(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(40, 2, 37, 19, 2, 8, 5);
    tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){19, 7}));
    attn_model *f = tu_model("full", NULL), *t = tu_model("exact-topk", "{\"topk\": 64}");
    attn_tensor *x = tu_run_ok(f, in, 1), *y = tu_run_ok(t, in, 2);
    assert_true(tu_maxdiff(x, y) < 1e-5f);
    attn_tensor_free(x);
    attn_tensor_free(y);
    /* topk = 1: each output is exactly the value of the best-scoring key */
    attn_model *one = tu_model("exact_topk", "{\"topk\": 1}");
    y = tu_run_ok(one, in, 1);
    const attn_tensor *q = attn_tensor_set_get(in, "queries"), *k = attn_tensor_set_get(in, "keys"),
                      *v = attn_tensor_set_get(in, "values");
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 37; l++)
            for (int h = 0; h < 2; h++) {
                int best = 0, klen = n ? 7 : 19;
                float bs = -INFINITY;
                for (int s = 0; s < klen; s++) {
                    float d = 0;
                    for (int e = 0; e < 8; e++) d += AT(q, ((n * 37 + l) * 2 + h) * 8 + e) * AT(k, ((n * 19 + s) * 2 + h) * 8 + e);
                    if (d > bs) { bs = d; best = s; }
                }
                for (int d = 0; d < 5; d++)
                    assert_float_equal(AT(y, ((n * 37 + l) * 2 + h) * 5 + d), AT(v, ((n * 19 + best) * 2 + h) * 5 + d), 1e-6);
            }
    attn_tensor_free(y);
    attn_model_free(one);
    attn_model_free(f);
    attn_model_free(t);
    attn_tensor_set_free(in);
}

static void conditional_switches_at_the_limit(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(50, 1, 8, 8, 2, 4, 4);
    attn_model *full = tu_model("full", NULL), *lin = tu_model("linear", "{\"query_dimensions\": 4}");
    attn_model *lo = tu_model("conditional-full", "{\"length_limit\": 7, \"other_attention\": {\"type\": \"linear\", \"query_dimensions\": 4}}");
    attn_model *hi = tu_model("conditional_full", "{\"length_limit\": 8, \"other_attention\": {\"type\": \"linear\", \"query_dimensions\": 4}}");
    attn_tensor *a = tu_run_ok(full, in, 1), *b = tu_run_ok(lin, in, 1), *c = tu_run_ok(lo, in, 1), *d = tu_run_ok(hi, in, 1);
    assert_memory_equal(b->data, c->data, b->nbytes);
    assert_memory_equal(a->data, d->data, a->nbytes);
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_free(c);
    attn_tensor_free(d);
    attn_model_free(full);
    attn_model_free(lin);
    attn_model_free(lo);
    attn_model_free(hi);
    attn_tensor_set_free(in);
}

/* The reference's LinearAttention with the default elu map ignores
 * query_dimensions: queries (2,5,2,6) with {"query_dimensions": 3} give
 * (2,5,2,4), the same numbers as the plain formula. */
static void linear_default_map_ignores_query_dimensions(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(60, 2, 5, 7, 2, 6, 4);
    attn_model *m = tu_model("linear", "{\"query_dimensions\": 3}");
    attn_tensor *o = tu_run_ok(m, in, 1);
    assert_int_equal(o->rank, 4);
    assert_int_equal(o->shape[0], 2);
    assert_int_equal(o->shape[1], 5);
    assert_int_equal(o->shape[2], 2);
    assert_int_equal(o->shape[3], 4);
    float *ref = calloc(o->numel, sizeof *ref);
    naive_linear(in, 0, ref);
    tu_assert_close(o->data, ref, o->numel, 2e-5f);
    free(ref);
    attn_tensor_free(o);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

/* length_limit 0: the reference always takes the other attention (L, S >= 1). */
static void conditional_limit_zero_is_always_other(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(51, 1, 1, 1, 2, 4, 4);
    attn_model *lin = tu_model("linear", "{\"query_dimensions\": 4}");
    attn_model *zero = tu_model("conditional_full", "{\"length_limit\": 0, \"other_attention\": {\"type\": \"linear\", \"query_dimensions\": 4}}");
    attn_tensor *b = tu_run_ok(lin, in, 1), *c = tu_run_ok(zero, in, 1);
    assert_memory_equal(b->data, c->data, b->nbytes);
    attn_tensor_free(b);
    attn_tensor_free(c);
    attn_tensor_set_free(in);
    in = tu_qkv(52, 2, 6, 3, 2, 4, 5);
    b = tu_run_ok(lin, in, 1);
    c = tu_run_ok(zero, in, 1);
    assert_memory_equal(b->data, c->data, b->nbytes);
    attn_tensor_free(b);
    attn_tensor_free(c);
    attn_tensor_set_free(in);
    attn_model_free(lin);
    attn_model_free(zero);
}

static void aft_simple_rules(void **state) {
    (void)state;
    attn_error e = {0};
    attn_status st;
    attn_model *m = tu_model("aft_simple", NULL);
    attn_tensor_set *in = tu_qkv(60, 1, 5, 5, 2, 3, 3);
    attn_tensor *o = tu_run_ok(m, in, 1);
    /* all-ones: out = sigmoid(q) ⊙ (same vector for every l) */
    const attn_tensor *q = attn_tensor_set_get(in, "queries");
    for (int h = 0; h < 2; h++)
        for (int d = 0; d < 3; d++) {
            float r0 = AT(o, h * 3 + d) * (1 + expf(-AT(q, h * 3 + d)));
            for (int l = 1; l < 5; l++) {
                float rl = AT(o, (l * 2 + h) * 3 + d) * (1 + expf(-AT(q, (l * 2 + h) * 3 + d)));
                assert_float_equal(rl, r0, 1e-5);
            }
        }
    attn_tensor_free(o);
    tu_add(in, "attn_mask", tu_tril(5, 5, 1));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_UNSUPPORTED);
    attn_tensor_set_free(in);
    in = tu_qkv(60, 1, 5, 5, 2, 3, 4); /* E != D */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    /* causal at t=0: sigmoid(q0) * v0 */
    in = tu_qkv(61, 1, 4, 4, 1, 2, 2);
    tu_add(in, "attn_mask", tu_tril(4, 4, 0));
    o = tu_run_ok(m, in, 1);
    const attn_tensor *v = attn_tensor_set_get(in, "values");
    q = attn_tensor_set_get(in, "queries");
    for (int d = 0; d < 2; d++) assert_float_equal(AT(o, d), AT(v, d) / (1 + expf(-AT(q, d))), 1e-6);
    attn_tensor_free(o);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

/* Non-causal aft_simple in double: out = sigmoid(q) ⊙ Σ_s softmax_s(K')_s ⊙ V_s,
 * K' = K + key mask (0 / -inf). */
static void naive_aft_simple(const attn_tensor_set *in, float *out) {
    const attn_tensor *q = attn_tensor_set_get(in, "queries"), *k = attn_tensor_set_get(in, "keys"),
                      *v = attn_tensor_set_get(in, "values"), *kl = attn_tensor_set_get(in, "key_lengths");
    int64_t N = q->shape[0], L = q->shape[1], H = q->shape[2], D = q->shape[3], S = k->shape[1], W = H * D;
    for (int64_t n = 0; n < N; n++) {
        int64_t klen = kl ? ((int64_t *)kl->data)[n] : S;
        for (int64_t i = 0; i < W; i++) {
            double m = -INFINITY, sum = 0, acc = 0;
            for (int64_t s = 0; s < klen; s++) m = fmax(m, AT(k, (n * S + s) * W + i));
            for (int64_t s = 0; s < klen; s++) {
                double e = exp(AT(k, (n * S + s) * W + i) - m);
                sum += e;
                acc += e * AT(v, (n * S + s) * W + i);
            }
            for (int64_t l = 0; l < L; l++) {
                double qv = AT(q, (n * L + l) * W + i);
                out[(n * L + l) * W + i] = (float)(acc / sum / (1 + exp(-qv)));
            }
        }
    }
}

/* Long enough for several segments of keys and several output tasks (256
 * KiB of rows each: 1024 rows of H·D = 64 floats), with a key length that
 * leaves the last segment empty and a feature whose keys are -inf in the
 * whole first segment: the formula, and the same bits on 1 and 2 threads. */
static void aft_simple_segments(void **state) {
    (void)state;
    attn_model *m = tu_model("aft_simple", NULL);
    attn_tensor_set *in = tu_qkv(62, 3, 2100, 2100, 2, 32, 32);
    tu_add(in, "key_lengths", tu_lengths(3, (int64_t[]){2100, 2050, 1500}));
    attn_tensor *k = (attn_tensor *)attn_tensor_set_get(in, "keys");
    for (int64_t s = 0; s < 1024; s++) ((float *)k->data)[s * 64 + 5] = -INFINITY; /* n = 0, h = 0, d = 5 */
    attn_tensor *o1 = tu_run_ok(m, in, 1), *o2 = tu_run_ok(m, in, 2);
    float *ref = calloc(o1->numel, sizeof *ref);
    naive_aft_simple(in, ref);
    tu_assert_close(o1->data, ref, o1->numel, 2e-5f);
    assert_memory_equal(o1->data, o2->data, o1->nbytes);
    /* every key masked: NaN, as torch's softmax over all -inf */
    attn_tensor_set_free(in);
    in = tu_qkv(63, 1, 3, 5, 1, 2, 2);
    tu_add(in, "key_lengths", tu_lengths(1, (int64_t[]){0}));
    attn_tensor *o3 = tu_run_ok(m, in, 2);
    for (size_t i = 0; i < o3->numel; i++) assert_true(isnan(((float *)o3->data)[i]));
    free(ref);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_tensor_free(o3);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

static void aft_full_limits(void **state) {
    (void)state;
    attn_tensor_set *w = attn_tensor_set_new();
    uint64_t seed = 4;
    tu_add(w, "u", tu_randn(&seed, 2, (int64_t[]){6, 3}));
    tu_add(w, "v", tu_randn(&seed, 2, (int64_t[]){6, 3}));
    attn_model *m = NULL;
    assert_int_equal(attn_model_new("aft-full", "{\"max_sequence_length\": 6, \"aft_parameterization\": 3}", w, &m, NULL),
                     ATTN_OK);
    attn_error e = {0};
    attn_status st;
    attn_tensor_set *in = tu_qkv(70, 1, 7, 6, 1, 2, 2);
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    /* one key: the softmax is 1, out = sigmoid(q) * v */
    in = tu_qkv(71, 2, 6, 1, 2, 3, 3);
    attn_tensor *o = tu_run_ok(m, in, 2);
    const attn_tensor *q = attn_tensor_set_get(in, "queries"), *v = attn_tensor_set_get(in, "values");
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 6; l++)
            for (int h = 0; h < 2; h++)
                for (int d = 0; d < 3; d++) {
                    size_t qi = (size_t)((n * 6 + l) * 2 + h) * 3 + (size_t)d;
                    assert_float_equal(AT(o, qi), AT(v, (n * 2 + h) * 3 + d) / (1 + expf(-AT(q, qi))), 1e-6);
                }
    attn_tensor_free(o);
    attn_tensor_set_free(in);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

static void layer_with_identity_projections_is_its_inner(void **state) {
    (void)state;
    const int64_t dm = 8, H = 2;
    attn_tensor_set *w = attn_tensor_set_new();
    const char *names[] = {"query_projection", "key_projection", "value_projection", "out_projection"};
    for (int i = 0; i < 4; i++) {
        attn_tensor *W, *b;
        char n1[64], n2[64];
        assert_int_equal(attn_tensor_new(ATTN_F32, 2, (int64_t[]){dm, dm}, &W, NULL), ATTN_OK);
        for (int j = 0; j < dm; j++) ((float *)W->data)[j * dm + j] = 1.0f;
        assert_int_equal(attn_tensor_new(ATTN_F32, 1, (int64_t[]){dm}, &b, NULL), ATTN_OK);
        snprintf(n1, sizeof n1, "%s.weight", names[i]);
        snprintf(n2, sizeof n2, "%s.bias", names[i]);
        tu_add(w, n1, W);
        tu_add(w, n2, b);
    }
    attn_model *layer = NULL;
    attn_error e = {0};
    assert_int_equal(attn_model_new("attention_layer", "{\"attention\": {\"type\": \"full\"}, \"d_model\": 8, \"n_heads\": 2}", w,
                                    &layer, &e),
                     ATTN_OK);
    uint64_t seed = 80;
    attn_tensor_set *in = attn_tensor_set_new(), *in4 = attn_tensor_set_new();
    const char *io[] = {"queries", "keys", "values"};
    int64_t len[3] = {5, 7, 7};
    for (int i = 0; i < 3; i++) {
        attn_tensor *t = tu_randn(&seed, 3, (int64_t[]){2, len[i], dm}), *v;
        assert_int_equal(attn_tensor_view(ATTN_F32, 4, (int64_t[]){2, len[i], H, dm / H}, t->data, t->nbytes, &v, NULL), ATTN_OK);
        tu_add(in, io[i], t);
        tu_add(in4, io[i], v);
    }
    tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){7, 3}));
    tu_add(in4, "key_lengths", tu_lengths(2, (int64_t[]){7, 3}));
    attn_model *full = tu_model("full", NULL);
    attn_tensor *x = tu_run_ok(layer, in, 2), *y = tu_run_ok(full, in4, 1);
    assert_int_equal(x->rank, 3);
    assert_int_equal(x->shape[2], dm);
    assert_true(tu_maxdiff(x, y) < 1e-6f);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(full);
    attn_tensor_set_free(in4);
    attn_tensor_set_free(in);
    attn_model_free(layer);
    /* inner linear with a random map whose query_dimensions disagrees with d_keys */
    assert_int_equal(attn_model_new("attention_layer",
                                    "{\"attention\": {\"type\": \"linear\", \"query_dimensions\": 3, \"feature_map\": \"favor\"}, "
                                    "\"d_model\": 8, \"n_heads\": 2}",
                                    w, &layer, &e),
                     ATTN_E_CONFIG);
    /* the default elu map ignores query_dimensions, as the reference does */
    assert_int_equal(attn_model_new("attention_layer",
                                    "{\"attention\": {\"type\": \"linear\", \"query_dimensions\": 3}, \"d_model\": 8, \"n_heads\": 2}",
                                    w, &layer, &e),
                     ATTN_OK);
    attn_model_free(layer);
    attn_tensor_set_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_matches_formula),
        cmocka_unit_test(linear_mask_rules),
        cmocka_unit_test(causal_linear_ignores_the_future),
        cmocka_unit_test(random_feature_maps),
        cmocka_unit_test(favor_approximates_softmax),
        cmocka_unit_test(local_matches_formula),
        cmocka_unit_test(topk_all_keys_equals_full),
        cmocka_unit_test(conditional_switches_at_the_limit),
        cmocka_unit_test(linear_default_map_ignores_query_dimensions),
        cmocka_unit_test(conditional_limit_zero_is_always_other),
        cmocka_unit_test(aft_simple_rules),
        cmocka_unit_test(aft_simple_segments),
        cmocka_unit_test(aft_full_limits),
        cmocka_unit_test(layer_with_identity_projections_is_its_inner),
    };
    return cmocka_run_group_tests_name("fast_family", tests, NULL, NULL);
}
