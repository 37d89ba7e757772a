/*
 * test_clustered.c — clustered, improved_clustered and
 * improved_clustered_causal.  No golden vectors exist for these random
 * mechanisms, so the tests check properties the reference guarantees:
 * one query per cluster is full attention, top-k >= S is full attention,
 * padded queries give 0, the causal variant never reads the future, a seed
 * reproduces, and every rejected mask / config / shape gives its status.
 */
#include "test_util.h"

#include <stdbool.h>
#include "mech/full.h"

/* FullAttention by the plain reference (attn__full_reference, in core). */
static void full_ref(const tu_qkv_buf *a, double temp, float *out) {
    attn_qkv x = {.N = a->N, .L = a->L, .S = a->S, .H = a->H, .E = a->E, .D = a->D, .q = a->q, .k = a->k,
                  .v = a->v, .attn_mask = a->mask, .key_lengths = a->kl};
    assert_int_equal(attn__full_reference((float)temp, &x, out, NULL), ATTN_OK);
}

static float *full_out(const tu_qkv_buf *a, double temp) {
    float *r = malloc((size_t)(a->N * a->L * a->H * a->D) * sizeof(float));
    assert_non_null(r);
    full_ref(a, temp, r);
    return r;
}

/* ---- clustered ---- */

/* K = L and distinct hashes: every query is its own centroid, so the
 * centroid attention is each query's exact attention. */
static void test_clustered_one_per_cluster_is_full(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 12, 9, 2, 8, 5, 1);
    a.kl = malloc(2 * sizeof *a.kl);
    a.kl[0] = 9;
    a.kl[1] = 4;
    attn_tensor *o = tu_qkv_buf_run_ok("clustered", "{\"clusters\": 12, \"bits\": 63, \"iterations\": 10}", &a);
    float *want = full_out(&a, 1.0 / sqrt(8.0));
    tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
    free(want);
    attn_tensor_free(o);
    /* The explicit temperature is used as given. */
    o = tu_qkv_buf_run_ok("clustered", "{\"clusters\": 12, \"bits\": 63, \"softmax_temp\": 0.7}", &a);
    want = full_out(&a, 0.7);
    tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
    free(want);
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

/* With fewer clusters every output is its centroid's: at most C distinct
 * rows per (n,h), each a convex combination of the values. */
static void test_clustered_shares_outputs(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 20, 7, 3, 6, 4, 2);
    attn_tensor *o = tu_qkv_buf_run_ok("clustered", "{\"clusters\": 3}", &a);
    const float *y = o->data;
    for (int64_t n = 0; n < a.N; n++)
        for (int64_t h = 0; h < a.H; h++) {
            int distinct = 0;
            for (int64_t l = 0; l < a.L; l++) {
                const float *row = y + ((n * a.L + l) * a.H + h) * a.D;
                bool seen = false;
                for (int64_t p = 0; p < l && !seen; p++)
                    seen = memcmp(row, y + ((n * a.L + p) * a.H + h) * a.D, (size_t)a.D * 4) == 0;
                distinct += !seen;
                for (int64_t d = 0; d < a.D; d++) {
                    float lo = INFINITY, hi = -INFINITY;
                    for (int64_t s = 0; s < a.S; s++) {
                        float v = a.v[((n * a.S + s) * a.H + h) * a.D + d];
                        lo = fminf(lo, v);
                        hi = fmaxf(hi, v);
                    }
                    assert_true(row[d] >= lo - 1e-5f && row[d] <= hi + 1e-5f);
                }
            }
            assert_in_range(distinct, 1, 3);
        }
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

static void test_padded_queries_are_zero(void **st) {
    /* The causal variant uses top-k >= S so that no query's keys are all
     * in the future (which would also give 0). */
    const char *types[] = {"clustered", "improved_clustered", "improved_clustered_causal"};
    const char *cfgs[] = {"{\"clusters\": 4}", "{\"clusters\": 4, \"topk\": 3}",
                          "{\"clusters\": 4, \"topk\": 10}"};
    for (int t = 0; t < 3; t++) {
        tu_qkv_buf a = tu_qkv_buf_new(2, 10, 10, 2, 4, 3, 3);
        a.ql = malloc(2 * sizeof *a.ql);
        a.ql[0] = 10;
        a.ql[1] = 6;
        if (t == 2) tu_qkv_buf_causal(&a);
        attn_tensor *o = tu_qkv_buf_run_ok(types[t], cfgs[t], &a);
        const float *y = o->data;
        for (int64_t l = 0; l < a.L; l++)
            for (int64_t i = 0; i < a.H * a.D; i++) {
                float x0 = y[(0 * a.L + l) * a.H * a.D + i], x1 = y[(1 * a.L + l) * a.H * a.D + i];
                assert_true(isfinite(x0) && isfinite(x1) && x0 != 0.0f);
                if (l >= 6) assert_true(x1 == 0.0f);
                else assert_true(x1 != 0.0f);
            }
        attn_tensor_free(o);
        tu_qkv_buf_free(&a);
    }
}

/* ---- improved ---- */

static void test_improved_topk_all_is_full(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 11, 13, 2, 6, 5, 4);
    a.kl = malloc(2 * sizeof *a.kl);
    a.kl[0] = 13;
    a.kl[1] = 5;
    /* topk >= S: every query scores every key exactly, whatever the
     * clustering; bottom-k mass is 0. */
    attn_tensor *o = tu_qkv_buf_run_ok("improved-clustered", "{\"clusters\": 3, \"topk\": 13}", &a);
    float *want = full_out(&a, 1.0 / sqrt(6.0));
    tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
    attn_tensor_free(o);
    o = tu_qkv_buf_run_ok("improved_clustered", "{\"clusters\": 2, \"topk\": 50, \"bits\": 64, \"hash_bias\": false}", &a);
    tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
    attn_tensor_free(o);
    free(want);
    tu_qkv_buf_free(&a);
}

/* Small top-k: not full attention, but still a convex combination. */
static void test_improved_small_topk_convex(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(1, 16, 16, 2, 4, 3, 5);
    attn_tensor *o = tu_qkv_buf_run_ok("improved_clustered", "{\"clusters\": 4, \"topk\": 3}", &a);
    float *want = full_out(&a, 0.5);
    const float *y = o->data;
    bool differs = false;
    for (int64_t l = 0; l < a.L; l++)
        for (int64_t h = 0; h < a.H; h++)
            for (int64_t d = 0; d < a.D; d++) {
                float lo = INFINITY, hi = -INFINITY;
                for (int64_t s = 0; s < a.S; s++) {
                    lo = fminf(lo, a.v[(s * a.H + h) * a.D + d]);
                    hi = fmaxf(hi, a.v[(s * a.H + h) * a.D + d]);
                }
                float x = y[(l * a.H + h) * a.D + d];
                assert_true(x >= lo - 1e-5f && x <= hi + 1e-5f);
                differs |= fabsf(x - want[(l * a.H + h) * a.D + d]) > 1e-4f;
            }
    assert_true(differs); /* the approximation is an approximation */
    free(want);
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

/* ---- causal ---- */

static void test_causal_topk_all_is_causal_full(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 9, 9, 2, 5, 4, 6);
    tu_qkv_buf_causal(&a);
    attn_tensor *o = tu_qkv_buf_run_ok("causal-improved-clustered", "{\"clusters\": 3, \"topk\": 9}", &a);
    float *want = full_out(&a, 1.0 / sqrt(5.0));
    tu_assert_close(o->data, want, tu_qkv_buf_out_numel(&a), 1e-5f);
    free(want);
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

/* Future values get weight exactly 0: making them huge changes nothing
 * earlier.  With top-k >= S the future keys do not matter either. */
static void test_causal_never_reads_future(void **st) {
    const int64_t t = 5;
    const char *cfgs[] = {"{\"clusters\": 3, \"topk\": 4}", "{\"clusters\": 3, \"topk\": 12}"};
    for (int c = 0; c < 2; c++) {
        tu_qkv_buf a = tu_qkv_buf_new(1, 12, 12, 2, 4, 3, 7);
        tu_qkv_buf_causal(&a);
        attn_tensor *o1 = tu_qkv_buf_run_ok("improved-clustered-causal", cfgs[c], &a);
        for (int64_t s = t + 1; s < a.S; s++)
            for (int64_t i = 0; i < a.H * a.D; i++) a.v[s * a.H * a.D + i] = 1e6f;
        if (c == 1)
            for (int64_t s = t + 1; s < a.S; s++)
                for (int64_t i = 0; i < a.H * a.E; i++) a.k[s * a.H * a.E + i] *= -3.0f;
        attn_tensor *o2 = tu_qkv_buf_run_ok("improved_clustered_causal", cfgs[c], &a);
        size_t head = (size_t)((t + 1) * a.H * a.D);
        tu_assert_close(o2->data, o1->data, head, 1e-6f);
        const float *y = o2->data;
        bool leaked = false;
        for (size_t i = head; i < tu_qkv_buf_out_numel(&a); i++) leaked |= fabsf(y[i]) > 1e3f;
        if (c == 1) assert_true(leaked); /* later queries do see those values */
        attn_tensor_free(o1);
        attn_tensor_free(o2);
        tu_qkv_buf_free(&a);
    }
}

/* key_lengths shrink k to the batch's shortest valid length. */
static void test_causal_key_lengths(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 8, 8, 1, 4, 2, 8);
    tu_qkv_buf_causal(&a);
    a.kl = malloc(2 * sizeof *a.kl);
    a.kl[0] = 8;
    a.kl[1] = 3;
    attn_tensor *o = tu_qkv_buf_run_ok("improved_clustered_causal", "{\"clusters\": 2, \"topk\": 8}", &a);
    const float *y = o->data;
    for (size_t i = 0; i < tu_qkv_buf_out_numel(&a); i++) assert_true(isfinite(y[i]));
    attn_tensor_free(o);
    tu_qkv_buf_free(&a);
}

/* ---- seeds, threads ---- */

static void test_seed_reproducible(void **st) {
    const char *types[] = {"clustered", "improved_clustered"};
    const char *same[] = {"{\"clusters\": 3, \"seed\": 5}", "{\"clusters\": 3, \"topk\": 2, \"seed\": 5}"};
    const char *other[] = {"{\"clusters\": 3, \"seed\": 6}", "{\"clusters\": 3, \"topk\": 2, \"seed\": 6}"};
    for (int t = 0; t < 2; t++) {
        tu_qkv_buf a = tu_qkv_buf_new(2, 24, 10, 2, 6, 4, 9);
        attn_tensor *o1, *o2, *o3, *o4;
        attn_error err;
        /* Same seed: identical bits, whatever the thread count. */
        assert_int_equal(tu_qkv_buf_run(types[t], same[t], &a, 1, &o1, &err), ATTN_OK);
        assert_int_equal(tu_qkv_buf_run(types[t], same[t], &a, 2, &o2, &err), ATTN_OK);
        assert_int_equal(tu_qkv_buf_run(types[t], same[t], &a, 3, &o3, &err), ATTN_OK);
        assert_int_equal(tu_qkv_buf_run(types[t], other[t], &a, 1, &o4, &err), ATTN_OK);
        assert_memory_equal(o1->data, o2->data, o1->nbytes);
        assert_memory_equal(o1->data, o3->data, o1->nbytes);
        assert_true(memcmp(o1->data, o4->data, o1->nbytes) != 0);
        attn_tensor_free(o1);
        attn_tensor_free(o2);
        attn_tensor_free(o3);
        attn_tensor_free(o4);
        tu_qkv_buf_free(&a);
    }
}

/* ---- errors ---- */

static void test_mask_errors(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(1, 6, 6, 1, 4, 4, 10);
    attn_error err = {0};
    tu_qkv_buf_causal(&a);
    assert_int_equal(tu_qkv_buf_run_err("clustered", "{\"clusters\": 2}", &a, &err), ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Clustered attention cannot use an arbitrary attention mask"));
    assert_int_equal(tu_qkv_buf_run_err("improved_clustered", "{\"clusters\": 2}", &a, &err), ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Improved-clustered attention cannot use an arbitrary attention mask"));
    /* An all-true mask is fine. */
    memset(a.mask, 1, 36);
    attn_tensor_free(tu_qkv_buf_run_ok("clustered", "{\"clusters\": 2}", &a));
    /* The causal variant needs exactly the lower-triangular mask. */
    assert_int_equal(tu_qkv_buf_run_err("improved_clustered_causal", "{\"clusters\": 2}", &a, &err), ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "only supports lower triangular masks"));
    free(a.mask);
    a.mask = NULL;
    assert_int_equal(tu_qkv_buf_run_err("improved_clustered_causal", "{\"clusters\": 2}", &a, &err), ATTN_E_UNSUPPORTED);
    tu_qkv_buf_causal(&a);
    a.mask[0] = 0;
    assert_int_equal(tu_qkv_buf_run_err("improved_clustered_causal", "{\"clusters\": 2}", &a, &err), ATTN_E_UNSUPPORTED);
    tu_qkv_buf_free(&a);
}

static void test_config_errors(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(1, 6, 6, 1, 4, 4, 11);
    attn_error err = {0};
    struct { const char *type, *cfg; attn_status want; } cases[] = {
        {"clustered", "{}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 0}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 2, \"bits\": 0}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 2, \"bits\": 65}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 2, \"topk\": 3}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 2, \"hash_bias\": 1}", ATTN_E_CONFIG},
        {"clustered", "{\"clusters\": 2, \"seed\": 1.5}", ATTN_E_CONFIG},
        {"improved_clustered", "{\"clusters\": 2, \"topk\": -1}", ATTN_E_CONFIG},
        {"improved_clustered", "{\"clusters\": 2, \"iterations\": -1}", ATTN_E_CONFIG},
        {"improved_clustered", "{\"clusters\": 2, \"attention_dropout\": 2}", ATTN_E_CONFIG},
        {"improved_clustered_causal", "{\"clusters\": 2, \"event_dispatcher\": \"\"}", ATTN_E_CONFIG},
        /* More clusters than queries (numpy refuses to choose them). */
        {"clustered", "{\"clusters\": 7}", ATTN_E_INPUT},
        {"improved_clustered", "{\"clusters\": 7}", ATTN_E_INPUT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_status got = tu_qkv_buf_run_err(cases[i].type, cases[i].cfg, &a, &err);
        if (got != cases[i].want)
            fail_msg("%s %s: got %d (%s), want %d", cases[i].type, cases[i].cfg, got, err.msg,
                     cases[i].want);
    }
    /* Boundaries that are accepted. */
    attn_tensor_free(tu_qkv_buf_run_ok("clustered", "{\"clusters\": 6, \"bits\": 1, \"iterations\": 0}", &a));
    attn_tensor_free(tu_qkv_buf_run_ok("improved_clustered", "{\"clusters\": 1, \"topk\": 0, \"seed\": 123456789012}", &a));
    attn_tensor_free(tu_qkv_buf_run_ok("clustered", "{\"clusters\": 2, \"softmax_temp\": null, \"attention_dropout\": 0.5}", &a));
    tu_qkv_buf_free(&a);
}

/* topk = 0 keeps only the bottom (centroid) part, which is then exactly
 * the clustered output for the same seed. */
static void test_improved_topk0_is_clustered(void **st) {
    tu_qkv_buf a = tu_qkv_buf_new(2, 10, 8, 2, 4, 3, 12);
    attn_tensor *o1 = tu_qkv_buf_run_ok("clustered", "{\"clusters\": 3, \"seed\": 4}", &a);
    attn_tensor *o2 = tu_qkv_buf_run_ok("improved_clustered", "{\"clusters\": 3, \"topk\": 0, \"seed\": 4}", &a);
    tu_assert_close(o2->data, o1->data, tu_qkv_buf_out_numel(&a), 1e-6f);
    attn_tensor_free(o1);
    attn_tensor_free(o2);
    tu_qkv_buf_free(&a);
}

static void test_registry(void **st) {
    const char *names[][2] = {
        {"clustered", "clustered"},
        {"improved-clustered", "improved_clustered"},
        {"causal-improved-clustered", "improved_clustered_causal"},
        {"improved-clustered-causal", "improved_clustered_causal"},
    };
    for (int i = 0; i < 4; i++) {
        const attn_mech_info *m = attn_mech_find(names[i][0]);
        assert_non_null(m);
        assert_string_equal(m->name, names[i][1]);
        assert_int_equal(m->is_inner, 1);
        assert_int_equal(m->has_weights, 0);
    }
    /* Constructor defaults: bits 32, topk 32. */
    const attn_mech_info *m = attn_mech_find("improved_clustered");
    int seen = 0;
    for (const attn_param *p = m->params; p->key; p++) {
        if (!strcmp(p->key, "bits")) seen += !strcmp(p->def, "32");
        if (!strcmp(p->key, "topk")) seen += !strcmp(p->def, "32");
        if (!strcmp(p->key, "clusters")) seen += p->def == NULL;
    }
    assert_int_equal(seen, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clustered_one_per_cluster_is_full),
        cmocka_unit_test(test_clustered_shares_outputs),
        cmocka_unit_test(test_padded_queries_are_zero),
        cmocka_unit_test(test_improved_topk_all_is_full),
        cmocka_unit_test(test_improved_small_topk_convex),
        cmocka_unit_test(test_improved_topk0_is_clustered),
        cmocka_unit_test(test_causal_topk_all_is_causal_full),
        cmocka_unit_test(test_causal_never_reads_future),
        cmocka_unit_test(test_causal_key_lengths),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_mask_errors),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
