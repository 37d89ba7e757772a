/*
 * test_reformer.c — ReformerAttention (shared-QK LSH attention).  No golden
 * vectors exist for it (its planes come from the torch RNG), so the tests
 * check what holds whatever the hashing: one chunk covering the sequence is
 * exact shared-QK attention, outputs are convex combinations of the values,
 * keys are ignored, a seed reproduces, and the shape/config errors.
 */
#include "test_util.h"

#include <stdbool.h>

/* Shared-QK full attention in double: keys are the unit-length queries
 * (0 at padded positions), logits q_i·k_j + key padding (-inf) + -1e9 on
 * the diagonal when `masked` + attn_mask (-inf). */
static float *shared_qk_ref(const tu_qkv_buf *a, double temp, bool masked) {
    int64_t L = a->L, H = a->H, E = a->E;
    float *out = malloc(tu_qkv_buf_out_numel(a) * sizeof(float));
    double *w = malloc((size_t)L * sizeof *w), *kn = malloc((size_t)(L * E) * sizeof *kn);
    assert_true(out && w && kn);
    for (int64_t n = 0; n < a->N; n++)
        for (int64_t h = 0; h < H; h++) {
            int64_t kl = a->kl ? a->kl[n] : L;
            for (int64_t j = 0; j < L; j++) {
                const float *x = a->q + ((n * L + j) * H + h) * E;
                double ss = 0.0;
                for (int64_t e = 0; e < E; e++) ss += (double)x[e] * x[e];
                for (int64_t e = 0; e < E; e++) kn[j * E + e] = j < kl ? x[e] / sqrt(ss) : 0.0;
            }
            for (int64_t i = 0; i < L; i++) {
                const float *x = a->q + ((n * L + i) * H + h) * E;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < L; j++) {
                    double d = 0.0;
                    for (int64_t e = 0; e < E; e++) d += x[e] * kn[j * E + e];
                    if (j >= kl || (a->mask && !a->mask[i * L + j])) d = -INFINITY;
                    if (masked && i == j) d += -1e9;
                    w[j] = temp * d;
                    if (w[j] > mx) mx = w[j];
                }
                for (int64_t j = 0; j < L; j++) sum += w[j] = exp(w[j] - mx);
                for (int64_t d = 0; d < a->D; d++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < L; j++) o += w[j] / sum * a->v[((n * L + j) * H + h) * a->D + d];
                    out[((n * L + i) * H + h) * a->D + d] = (float)o;
                }
            }
        }
    free(w);
    free(kn);
    return out;
}

/* Per (n,h,d): every output lies within the values' range, widened to 0
 * when `with_zero` (a fully masked row is unmasked by the reference
 * together with chunk 0's zero look-back keys and values). */
static void assert_convex(const tu_qkv_buf *a, const float *y, bool with_zero) {
    for (int64_t n = 0; n < a->N; n++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t d = 0; d < a->D; d++) {
                float lo = with_zero ? 0.0f : INFINITY, hi = with_zero ? 0.0f : -INFINITY;
                for (int64_t s = 0; s < a->S; s++) {
                    float v = a->v[((n * a->S + s) * a->H + h) * a->D + d];
                    lo = fminf(lo, v);
                    hi = fmaxf(hi, v);
                }
                for (int64_t l = 0; l < a->L; l++) {
                    float x = y[((n * a->L + l) * a->H + h) * a->D + d];
                    if (!(x >= lo - 1e-5f && x <= hi + 1e-5f))
                        fail_msg("out[%lld,%lld,%lld,%lld] = %g outside [%g, %g]", (long long)n,
                                 (long long)l, (long long)h, (long long)d, (double)x, (double)lo,
                                 (double)hi);
                }
            }
}

/* ---- tests ---- */

/* One chunk holds every position, so hashing cannot matter: exact
 * shared-QK attention, and every round is the same. */
static void test_one_chunk_is_shared_qk_full(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 8, 8, 2, 6, 6, 1);
    a.kl = malloc(2 * sizeof *a.kl);
    a.kl[0] = 8;
    a.kl[1] = 5;
    struct { const char *cfg; bool masked, causal; double temp; } cases[] = {
        {"{\"chunk_size\": 8}", false, false, 0},
        {"{\"chunk_size\": 8, \"rounds\": 3, \"bits\": 63}", false, false, 0},
        {"{\"chunk_size\": 8, \"masked\": true}", true, false, 0},
        {"{\"chunk_size\": 8, \"softmax_temp\": 0.25, \"bits\": 64}", false, true, 0.25},
        {"{\"chunk_size\": 8, \"masked\": true, \"rounds\": 2}", true, true, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        free(a.mask);
        a.mask = NULL;
        if (cases[i].causal) tu_qkv_buf_causal(&a);
        attn_tensor *o = tu_qkv_buf_run_ok("reformer", cases[i].cfg, &a);
        double temp = cases[i].temp ? cases[i].temp : 1.0 / sqrt(6.0);
        float *want = shared_qk_ref(&a, temp, cases[i].masked);
        tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
        free(want);
        attn_tensor_free(o);
    }
    tu_qkv_buf_free(&a);
}

/* Without padding or attn_mask every query sees at least itself (the
 * -1e9 of `masked` is not -inf), so each output is a convex combination
 * of the values and constant values come back unchanged. */
static void test_convex_combination(void **st) {
    const char *cfgs[] = {
        "{\"chunk_size\": 4}",
        "{\"chunk_size\": 2, \"bits\": 3, \"masked\": true}",
        "{\"chunk_size\": 4, \"bits\": 63, \"rounds\": 1}",
        "{\"chunk_size\": 1, \"bits\": 64, \"rounds\": 5, \"masked\": true}",
    };
    for (size_t c = 0; c < 4; c++) {
        tu_qkv_buf a = tu_qkv_buf_new(2, 16, 16, 3, 5, 5, 2 + c);
        attn_tensor *o = tu_qkv_buf_run_ok("reformer", cfgs[c], &a);
        assert_convex(&a, o->data, false);
        for (size_t i = 0; i < tu_qkv_buf_out_numel(&a); i++) a.v[i] = 0.75f;
        attn_tensor_free(o);
        o = tu_qkv_buf_run_ok("reformer", cfgs[c], &a);
        const float *y = o->data;
        for (size_t i = 0; i < tu_qkv_buf_out_numel(&a); i++) assert_float_equal(y[i], 0.75f, 1e-6f);
        attn_tensor_free(o);
        tu_qkv_buf_free(&a);
    }
}

/* With padding and a causal mask some rows of chunk 0 can be fully masked;
 * the reference unmasks them, zero look-back included, so outputs lie in
 * the hull of the values and 0, and stay finite. */
static void test_masked_rows_stay_finite(void **st) {
    const char *cfgs[] = {"{\"chunk_size\": 2, \"bits\": 3}", "{\"chunk_size\": 4, \"masked\": true}"};
    for (size_t c = 0; c < 2; c++) {
        tu_qkv_buf a = tu_qkv_buf_new(2, 16, 16, 3, 5, 5, 7 + c);
        a.kl = malloc(2 * sizeof *a.kl);
        a.kl[0] = 16;
        a.kl[1] = 3;
        tu_qkv_buf_causal(&a);
        attn_tensor *o = tu_qkv_buf_run_ok("reformer", cfgs[c], &a);
        const float *y = o->data;
        for (size_t i = 0; i < tu_qkv_buf_out_numel(&a); i++) assert_true(isfinite(y[i]));
        assert_convex(&a, o->data, true);
        attn_tensor_free(o);
        tu_qkv_buf_free(&a);
    }
}

/* Several chunks: no longer full attention (the approximation shows). */
static void test_chunks_approximate(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(1, 32, 32, 1, 4, 4, 3);
    attn_tensor *o = tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 4, \"rounds\": 1}", &a);
    float *want = shared_qk_ref(&a, 0.5, false);
    const float *y = o->data;
    bool differs = false;
    for (size_t i = 0; i < tu_qkv_buf_out_numel(&a); i++) differs |= fabsf(y[i] - want[i]) > 1e-3f;
    assert_true(differs);
    free(want);
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

static void test_keys_ignored(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 12, 12, 2, 4, 4, 4);
    attn_tensor *o1 = tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 3}", &a);
    for (size_t i = 0; i < (size_t)(a.N * a.S * a.H * a.E); i++) a.k[i] = -7.0f * a.k[i] + 1.0f;
    attn_tensor *o2 = tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 3}", &a);
    assert_memory_equal(o1->data, o2->data, o1->nbytes);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    tu_qkv_buf_free(&a);
}

static void test_seed_reproducible(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 24, 24, 2, 6, 6, 5);
    attn_tensor *o1, *o2, *o3, *o4;
    attn_error err;
    assert_int_equal(tu_qkv_buf_run("reformer", "{\"chunk_size\": 4, \"seed\": 17}", &a, 1, &o1, &err), ATTN_OK);
    assert_int_equal(tu_qkv_buf_run("reformer", "{\"chunk_size\": 4, \"seed\": 17}", &a, 2, &o2, &err), ATTN_OK);
    assert_int_equal(tu_qkv_buf_run("reformer", "{\"chunk_size\": 4, \"seed\": 17}", &a, 3, &o3, &err), ATTN_OK);
    assert_int_equal(tu_qkv_buf_run("reformer", "{\"chunk_size\": 4, \"seed\": 18}", &a, 1, &o4, &err), ATTN_OK);
    assert_memory_equal(o1->data, o2->data, o1->nbytes);
    assert_memory_equal(o1->data, o3->data, o1->nbytes);
    assert_true(memcmp(o1->data, o4->data, o1->nbytes) != 0);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    attn_tensor_free(o3);
    attn_tensor_free(o4);
    tu_qkv_buf_free(&a);
}

static void test_shape_errors(void **st) {
    attn_error err = {0};
    tu_qkv_buf a = tu_qkv_buf_new(1, 8, 6, 1, 4, 4, 6); /* S != L */
    assert_int_equal(tu_qkv_buf_run_err("reformer", "{\"chunk_size\": 4}", &a, &err), ATTN_E_SHAPE);
    assert_non_null(strstr(err.msg, "S = 6"));
    tu_qkv_buf_free(&a);
    a = tu_qkv_buf_new(1, 8, 8, 1, 4, 3, 7); /* D != E */
    assert_int_equal(tu_qkv_buf_run_err("reformer", "{\"chunk_size\": 4}", &a, &err), ATTN_E_SHAPE);
    assert_non_null(strstr(err.msg, "D == E"));
    tu_qkv_buf_free(&a);
    a = tu_qkv_buf_new(1, 10, 10, 1, 4, 4, 8); /* L not a multiple of chunk_size */
    assert_int_equal(tu_qkv_buf_run_err("reformer", "{\"chunk_size\": 4}", &a, &err), ATTN_E_SHAPE);
    assert_non_null(strstr(err.msg, "chunk_size"));
    /* The default chunk (32) needs L a multiple of 32. */
    assert_int_equal(tu_qkv_buf_run_err("reformer", "{}", &a, &err), ATTN_E_SHAPE);
    attn_tensor_free(tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 5}", &a));
    attn_tensor_free(tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 10}", &a));
    tu_qkv_buf_free(&a);
}

static void test_config_errors(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(1, 8, 8, 1, 4, 4, 9);
    attn_error err = {0};
    const char *bad[] = {
        "{\"chunk_size\": 0}", "{\"bits\": 0}",           "{\"bits\": 65}",
        "{\"rounds\": 0}",     "{\"masked\": 1}",         "{\"clusters\": 2}",
        "{\"seed\": \"x\"}",   "{\"attention_dropout\": -0.1}", "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attn_status got = tu_qkv_buf_run_err("reformer", bad[i], &a, &err);
        if (got != ATTN_E_CONFIG) fail_msg("%s: got %d (%s)", bad[i], got, err.msg);
    }
    attn_tensor_free(tu_qkv_buf_run_ok("reformer", "{\"chunk_size\": 8, \"bits\": 1, \"rounds\": 1, \"masked\": false, "
                            "\"softmax_temp\": null, \"attention_dropout\": 0.0, \"seed\": 99}", &a));
    tu_qkv_buf_free(&a);
}

static void test_registry(void **st) {
    const attn_mech_info *m = attn_mech_find("reformer");
    assert_non_null(m);
    assert_int_equal(m->is_inner, 1);
    assert_int_equal(m->has_weights, 0);
    int seen = 0;
    for (const attn_param *p = m->params; p->key; p++) {
        if (!strcmp(p->key, "bits")) seen += !strcmp(p->def, "8");
        if (!strcmp(p->key, "chunk_size")) seen += !strcmp(p->def, "32");
        if (!strcmp(p->key, "rounds")) seen += !strcmp(p->def, "4");
        if (!strcmp(p->key, "masked")) seen += !strcmp(p->def, "false");
    }
    assert_int_equal(seen, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_chunk_is_shared_qk_full),
        cmocka_unit_test(test_convex_combination),
        cmocka_unit_test(test_masked_rows_stay_finite),
        cmocka_unit_test(test_chunks_approximate),
        cmocka_unit_test(test_keys_ignored),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
