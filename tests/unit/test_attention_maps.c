/* test_attention_maps.c — the optional outputs (attention maps): what models
 * declare, the size queries and their overflow checks, exact zeros at masked
 * keys, row sums, the primary output bit-identical with and without the maps,
 * and names that do not exist.  The weighted types run on their golden cases'
 * weights and inputs (tests/golden/cases/maps_*, read from the repository
 * root, where `make test-unit` runs). */
#include "test_util.h"

#include <jansson.h>
#include <stdbool.h>

/* ---- helpers ---- */

static attn_tensor_set *run_outputs(const attn_model *m, const attn_tensor_set *in, const char *name, int threads) {
    attn_ctx *ctx = attn_ctx_new(threads);
    attn_tensor_set *out = NULL;
    attn_error e = {0};
    const char *names[1] = {name};
    attn_status st = attn_model_forward_outputs(m, ctx, in, names, name ? 1 : 0, &out, &e);
    attn_ctx_free(ctx);
    if (st) fail_msg("forward_outputs(%s): %s", name ? name : "-", e.msg);
    return out;
}

/* A golden case's model and inputs (as tests/golden/golden.c prep maps them). */
static void load_case(const char *id, attn_model **m, attn_tensor_set **in, attn_tensor_set **io) {
    char p[512];
    json_error_t je;
    attn_error e = {0};
    snprintf(p, sizeof p, "tests/golden/cases/%s/case.json", id);
    json_t *c = json_load_file(p, 0, &je);
    if (!c) fail_msg("%s: %s (run from the repository root)", p, je.text);
    char *cfg = json_dumps(json_object_get(c, "config"), JSON_COMPACT);
    attn_tensor_set *w = NULL;
    snprintf(p, sizeof p, "tests/golden/cases/%s/weights.safetensors", id);
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        assert_int_equal(attn_safetensors_read_file(p, &w, &e), ATTN_OK);
    }
    if (attn_model_new(json_string_value(json_object_get(c, "type")), cfg, w, m, &e)) fail_msg("%s: %s", id, e.msg);
    snprintf(p, sizeof p, "tests/golden/cases/%s/io.safetensors", id);
    assert_int_equal(attn_safetensors_read_file(p, io, &e), ATTN_OK);
    *in = attn_tensor_set_new();
    json_t *names = json_object_get(c, "inputs"), *opt = json_object_get(c, "optional_inputs");
    size_t k = 0;
    for (size_t i = 0; i < attn_model_num_inputs(*m) && k < json_array_size(names); i++) {
        const attn_io_spec *s = attn_model_input(*m, i);
        if (!s->required) continue;
        const attn_tensor *t = attn_tensor_set_get(*io, json_string_value(json_array_get(names, k++)));
        tu_add(*in, s->name, tu_copy(t));
    }
    const char *arg;
    json_t *tn;
    json_object_foreach(opt, arg, tn) tu_add(*in, arg, tu_copy(attn_tensor_set_get(*io, json_string_value(tn))));
    free(cfg);
    attn_tensor_set_free(w);
    json_decref(c);
}

/* ---- outputs listing ---- */

static void outputs_are_declared(void **state) {
    (void)state;
    attn_model *m = tu_model("full", NULL);
    assert_int_equal(attn_model_num_outputs(m), 2);
    const attn_io_spec *o0 = attn_model_output_at(m, 0), *o1 = attn_model_output_at(m, 1);
    assert_ptr_equal(o0, attn_model_output(m));
    assert_string_equal(o0->name, "output");
    assert_int_equal(o0->required, 1);
    assert_string_equal(o1->name, "attention");
    assert_int_equal(o1->required, 0);
    assert_string_equal(o1->dims, "N,H,L,S");
    assert_int_equal(o1->rank, 4);
    assert_true(strlen(o1->doc) > 10);
    assert_null(attn_model_output_at(m, 2));
    assert_int_equal(attn_model_output_index(m, "attention"), 1);
    assert_int_equal(attn_model_output_index(m, "nope"), -1);
    attn_model_free(m);

    /* a type that forms no weights has only its output */
    m = tu_model("aft_simple", NULL);
    assert_int_equal(attn_model_num_outputs(m), 1);
    attn_model_free(m);

    /* attention_layer returns its inner attention's maps */
    attn_tensor_set *in, *io;
    load_case("maps_attention_layer_topk", &m, &in, &io);
    assert_int_equal(attn_model_num_outputs(m), 2);
    assert_string_equal(attn_model_output_at(m, 1)->name, "attention");
    attn_model_free(m);
    attn_tensor_set_free(in);
    attn_tensor_set_free(io);

    /* the registry lists them for `attn list` */
    const char *n, *d, *doc;
    assert_true(attn_mech_output_doc(attn_mech_find("area"), 1, &n, &d, &doc));
    assert_string_equal(n, "attention_areas");
    assert_false(attn_mech_output_doc(attn_mech_find("area"), 2, &n, &d, &doc));
    assert_false(attn_mech_output_doc(attn_mech_find("aft_simple"), 0, &n, &d, &doc));
}

static void axial_declares_one_map_per_axis(void **state) {
    (void)state;
    attn_model *m;
    attn_tensor_set *in, *io;
    load_case("maps_axial_video_seq", &m, &in, &io);
    assert_int_equal(attn_model_num_outputs(m), 4);
    assert_string_equal(attn_model_output_at(m, 1)->name, "attention_axis1");
    assert_string_equal(attn_model_output_at(m, 3)->name, "attention_axis3");
    /* x (1,4,5,3,6) with dim last: axis 1 (length 4) keeps B, A2, A3 */
    assert_string_equal(attn_model_output_at(m, 1)->dims, "B,A2,A3,heads,A1,A1");
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    size_t numel;
    assert_int_equal(attn_model_output_shape(m, in, "attention_axis1", &rank, shape, &numel, NULL), ATTN_OK);
    assert_int_equal(rank, 6);
    assert_int_equal(numel, 1 * 5 * 3 * 3 * 4 * 4);
    /* "attention" selects the whole family */
    size_t all;
    const char *names[1] = {"attention"};
    assert_int_equal(attn_model_output_elements(m, in, names, 1, &all, NULL), ATTN_OK);
    assert_int_equal(all, 15 * 3 * 16 + 12 * 3 * 25 + 20 * 3 * 9);
    attn_model_free(m);
    attn_tensor_set_free(in);
    attn_tensor_set_free(io);
}

/* ---- size queries ---- */

static void size_query_and_overflow(void **state) {
    (void)state;
    attn_model *m = tu_model("full", NULL);
    attn_tensor_set *in = tu_qkv(3, 2, 5, 7, 3, 4, 6);
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    size_t numel = 0;
    assert_int_equal(attn_model_output_shape(m, in, "attention", &rank, shape, &numel, NULL), ATTN_OK);
    assert_int_equal(rank, 4);
    assert_true(shape[0] == 2 && shape[1] == 3 && shape[2] == 5 && shape[3] == 7);
    assert_int_equal(numel, 2 * 3 * 5 * 7);
    assert_int_equal(attn_model_output_shape(m, in, "output", &rank, shape, &numel, NULL), ATTN_OK);
    assert_int_equal(numel, 2 * 5 * 3 * 6);
    const char *names[2] = {"output", "attention"};
    assert_int_equal(attn_model_output_elements(m, in, names, 2, &numel, NULL), ATTN_OK);
    assert_int_equal(numel, 2 * 3 * 5 * 7); /* the primary output is not counted */
    assert_int_equal(attn_model_output_elements(m, in, NULL, 0, &numel, NULL), ATTN_OK);
    assert_int_equal(numel, 0);
    attn_tensor_set_free(in);

    /* L = S = 2^31 with N = H = E = D = 1: inputs of 8 GiB each (views over
     * a small buffer: the query reads shapes only), a map of 2^62 floats. */
    static float dummy[4];
    const int64_t big = (int64_t)1 << 31, sh[4] = {1, big, 1, 1};
    in = attn_tensor_set_new();
    const char *qkv[3] = {"queries", "keys", "values"};
    for (int i = 0; i < 3; i++) {
        attn_tensor *t;
        assert_int_equal(attn_tensor_view(ATTN_F32, 4, sh, dummy, (size_t)big * 4, &t, NULL), ATTN_OK);
        tu_add(in, qkv[i], t);
    }
    attn_error e = {0};
    assert_int_equal(attn_model_output_shape(m, in, "attention", &rank, shape, &numel, &e), ATTN_E_OVERFLOW);
    assert_int_equal(numel, 0);
    assert_int_equal(attn_model_output_elements(m, in, names + 1, 1, &numel, &e), ATTN_E_OVERFLOW);
    assert_true(strlen(e.msg) > 0);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

/* ---- masked entries and row sums ---- */

static void check_rows(const attn_tensor *A, const attn_tensor_set *in, int64_t topk, bool local, int64_t w) {
    const int64_t N = A->shape[0], H = A->shape[1], L = A->shape[2], S = A->shape[3];
    const attn_tensor *mask = attn_tensor_set_get(in, "attn_mask"), *kl = attn_tensor_set_get(in, "key_lengths");
    const float *a = A->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                const float *row = a + ((n * H + h) * L + l) * S;
                double sum = 0;
                int64_t nz = 0, visible = 0;
                for (int64_t s = 0; s < S; s++) {
                    bool off = (mask && !((const uint8_t *)mask->data)[l * S + s]) ||
                               (kl && s >= ((const int64_t *)kl->data)[n]);
                    visible += !off && (!local || (s >= l - w / 2 && s < l + (w + 1) / 2));
                }
                if (local && visible == 0) { /* nothing visible: 1/w on the window's keys, as the reference */
                    for (int64_t s = 0; s < S; s++) {
                        bool in_window = s >= l - w / 2 && s < l + (w + 1) / 2;
                        if (row[s] != (in_window ? 1.0f / (float)w : 0.0f))
                            fail_msg("l=%lld s=%lld: %g in a window with nothing visible", (long long)l, (long long)s, row[s]);
                    }
                    continue;
                }
                for (int64_t s = 0; s < S; s++) {
                    bool masked = (mask && !((const uint8_t *)mask->data)[l * S + s]) ||
                                  (kl && s >= ((const int64_t *)kl->data)[n]);
                    if (local) masked = masked || s < l - w / 2 || s >= l + (w + 1) / 2;
                    if (masked && row[s] != 0.0f)
                        fail_msg("n=%lld h=%lld l=%lld s=%lld: masked weight %g is not 0", (long long)n,
                                 (long long)h, (long long)l, (long long)s, row[s]);
                    sum += row[s];
                    nz += row[s] != 0.0f;
                }
                if (fabs(sum - 1.0) > 1e-4) fail_msg("l=%lld: row sums to %.9g", (long long)l, sum);
                if (topk && nz > topk) fail_msg("l=%lld: %lld weights past topk=%lld", (long long)l, (long long)nz, (long long)topk);
            }
}

static void masked_entries_are_zero(void **state) {
    (void)state;
    const int64_t N = 2, L = 9, S = 9, kl[2] = {9, 5};
    struct { const char *type, *cfg; int64_t topk; bool local; int64_t w; } cases[] = {
        {"full", NULL, 0, false, 0},
        {"exact_topk", "{\"topk\": 3}", 3, false, 0},
        {"local", "{\"local_context\": 4}", 0, true, 4},
        {"conditional_full", "{\"other_attention\": {\"type\": \"full\"}, \"length_limit\": 16}", 0, false, 0},
        {"conditional_full", "{\"other_attention\": {\"type\": \"causal_linear\", \"query_dimensions\": 4}, "
                             "\"length_limit\": 4}", 0, false, 0},
        {"causal_linear", "{\"query_dimensions\": 4}", 0, false, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        attn_model *m = tu_model(cases[c].type, cases[c].cfg);
        attn_tensor_set *in = tu_qkv(11 + c, N, L, S, 2, 4, 3);
        tu_add(in, "attn_mask", tu_tril(L, S, 0));
        tu_add(in, "key_lengths", tu_lengths(N, kl));
        for (int threads = 1; threads <= 3; threads += 2) {
            attn_tensor_set *out = run_outputs(m, in, "attention", threads);
            const attn_tensor *A = attn_tensor_set_get(out, "attention");
            assert_non_null(A);
            check_rows(A, in, cases[c].topk, cases[c].local, cases[c].w);
            attn_tensor_set_free(out);
        }
        attn_tensor_set_free(in);
        attn_model_free(m);
    }
}

/* Every key masked for query rows of a stream: torch's softmax makes the
 * row NaN in full attention, and the map says so too. */
static void fully_masked_row_is_nan(void **state) {
    (void)state;
    attn_model *m = tu_model("full", NULL);
    attn_tensor_set *in = tu_qkv(5, 1, 3, 4, 1, 4, 2);
    const int64_t kl[1] = {0};
    tu_add(in, "key_lengths", tu_lengths(1, kl));
    attn_tensor_set *out = run_outputs(m, in, "attention", 1);
    const attn_tensor *A = attn_tensor_set_get(out, "attention");
    for (size_t i = 0; i < A->numel; i++) assert_true(isnan(((float *)A->data)[i]));
    attn_tensor_set_free(out);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

/* ---- the primary output does not change ---- */

static void primary_output_bit_identical(void **state) {
    (void)state;
    static const char *const ids[] = {
        "maps_full_causal_key_lengths", "maps_local_ctx5_key_lengths", "maps_exact_topk3_key_lengths",
        "maps_conditional_full_below", "maps_attention_layer_causal", "maps_attention_layer_topk",
        "maps_area_mean_max_2d_topk", "maps_multi_head_area_2d_topk", "maps_axial_image_sum",
        "maps_axial_video_seq", "maps_axial_image_transformer_d2", "maps_compositional_mask",
        "maps_compositional_causal", "maps_linear_key_lengths", "maps_causal_linear_key_lengths",
        "maps_attention_layer_linear", "maps_clustered_one_cluster_key_lengths",
        "maps_improved_clustered_one_cluster_topk3", "maps_reformer_one_chunk_masked"};
    for (size_t c = 0; c < sizeof ids / sizeof ids[0]; c++) {
        attn_model *m;
        attn_tensor_set *in, *io;
        load_case(ids[c], &m, &in, &io);
        for (int threads = 1; threads <= 3; threads += 2) {
            attn_tensor *plain = tu_run_ok(m, in, threads);
            attn_tensor_set *with = run_outputs(m, in, "attention", threads), *without = run_outputs(m, in, NULL, threads);
            const attn_tensor *o1 = attn_tensor_set_get(with, "output"), *o2 = attn_tensor_set_get(without, "output");
            assert_int_equal(attn_tensor_set_count(without), 1);
            assert_int_equal(attn_tensor_set_count(with), attn_model_num_outputs(m));
            assert_non_null(o1);
            assert_int_equal(o1->nbytes, plain->nbytes);
            if (memcmp(o1->data, plain->data, plain->nbytes) || memcmp(o2->data, plain->data, plain->nbytes))
                fail_msg("%s: the output changes when the maps are computed", ids[c]);
            /* every map row of a softmax sums to 1 (area geometry aside) */
            for (size_t i = 1; i < attn_model_num_outputs(m); i++) {
                const attn_io_spec *s = attn_model_output_at(m, i);
                const attn_tensor *A = attn_tensor_set_get(with, s->name);
                assert_non_null(A);
                /* local: windows with nothing visible are uniform over w slots, some off the keys */
                if (!strcmp(s->name, "attention_areas") || !strcmp(attn_model_mech(m)->name, "local")) continue;
                const size_t S = (size_t)A->shape[A->rank - 1];
                for (size_t r = 0; r < A->numel / S; r++) {
                    double sum = 0;
                    for (size_t k = 0; k < S; k++) sum += ((const float *)A->data)[r * S + k];
                    if (fabs(sum - 1.0) > 1e-4) fail_msg("%s %s row %zu sums to %.9g", ids[c], s->name, r, sum);
                }
            }
            attn_tensor_free(plain);
            attn_tensor_set_free(with);
            attn_tensor_set_free(without);
        }
        attn_model_free(m);
        attn_tensor_set_free(in);
        attn_tensor_set_free(io);
    }
}

/* The area geometry: row a is (top, left, height, width), shapes h outer,
 * w inner, corners row-major; every area inside the grid. */
static void area_geometry(void **state) {
    (void)state;
    attn_model *m;
    attn_tensor_set *in, *io;
    load_case("maps_area_mean_max_2d_topk", &m, &in, &io); /* 4 x 3 grid, areas up to 3 x 2 */
    attn_tensor_set *out = run_outputs(m, in, "attention_areas", 1);
    assert_int_equal(attn_tensor_set_count(out), 2); /* exact name: just that one map */
    const attn_tensor *g = attn_tensor_set_get(out, "attention_areas");
    assert_int_equal(g->shape[1], 4);
    const float *r = g->data;
    assert_true(r[0] == 0 && r[1] == 0 && r[2] == 1 && r[3] == 1);
    assert_true(r[4] == 0 && r[5] == 1 && r[6] == 1 && r[7] == 1);
    for (int64_t a = 0; a < g->shape[0]; a++) {
        const float *x = r + 4 * a;
        assert_true(x[0] + x[2] <= 4 && x[1] + x[3] <= 3 && x[2] >= 1 && x[2] <= 3 && x[3] >= 1 && x[3] <= 2);
    }
    const float *last = r + 4 * (g->shape[0] - 1);
    assert_true(last[0] == 1 && last[1] == 1 && last[2] == 3 && last[3] == 2);
    attn_tensor_set_free(out);
    attn_model_free(m);
    attn_tensor_set_free(in);
    attn_tensor_set_free(io);
}

/* ---- the random types and linear_self: A V is the output ---- */

/* out (N,L,H,D) == Σ_s A (N,H,L,S) · values (N,S,H,D), within tol. */
static void check_av(const char *what, const attn_tensor *A, const attn_tensor *values, const attn_tensor *out,
                     float tol) {
    const int64_t N = A->shape[0], H = A->shape[1], L = A->shape[2], S = A->shape[3], D = values->shape[3];
    const float *a = A->data, *v = values->data, *o = out->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++)
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t s = 0; s < S; s++)
                        acc += (double)a[((n * H + h) * L + l) * S + s] * v[((n * S + s) * H + h) * D + d];
                    const float want = o[((n * L + l) * H + h) * D + d];
                    if (!(fabs(acc - want) <= tol * (1.0 + fabs(want))))
                        fail_msg("%s: n=%lld h=%lld l=%lld d=%lld: A V = %.8g, output %.8g", what, (long long)n,
                                 (long long)h, (long long)l, (long long)d, acc, (double)want);
                }
}

/* The map of `m` on `in` at 1 and 3 threads: the same bits, the primary
 * output bit-identical with and without it; returned (threads 3). */
static attn_tensor_set *maps_consistent(const char *what, const attn_model *m, const attn_tensor_set *in) {
    attn_tensor_set *keep = NULL;
    attn_tensor *first = NULL;
    for (int threads = 1; threads <= 3; threads += 2) {
        attn_tensor *plain = tu_run_ok(m, in, threads);
        attn_tensor_set *with = run_outputs(m, in, "attention", threads), *without = run_outputs(m, in, NULL, threads);
        const attn_tensor *o1 = attn_tensor_set_get(with, "output"), *o2 = attn_tensor_set_get(without, "output");
        const attn_tensor *A = attn_tensor_set_get(with, "attention");
        assert_non_null(A);
        assert_int_equal(attn_tensor_set_count(without), 1);
        if (memcmp(o1->data, plain->data, plain->nbytes) || memcmp(o2->data, plain->data, plain->nbytes))
            fail_msg("%s: the output changes when the map is computed", what);
        if (first && memcmp(first->data, A->data, A->nbytes)) fail_msg("%s: map bits depend on the thread count", what);
        if (!first) first = tu_copy(A);
        attn_tensor_free(plain);
        attn_tensor_set_free(without);
        if (keep) attn_tensor_set_free(keep);
        keep = with;
    }
    attn_tensor_free(first);
    return keep;
}

/* Row sums of A (N,H,L,S) and its zeros: keys s >= kl[n] exactly 0, query
 * rows l >= ql[n] all 0 (ql NULL: none), other rows summing to 1 (or at
 * most 1 with `at_most`). */
static void check_map_rows(const char *what, const attn_tensor *A, const int64_t *kl, const int64_t *ql, bool at_most) {
    const int64_t N = A->shape[0], H = A->shape[1], L = A->shape[2], S = A->shape[3];
    const float *a = A->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                const float *row = a + ((n * H + h) * L + l) * S;
                const bool padded = ql && l >= ql[n];
                double sum = 0;
                for (int64_t s = 0; s < S; s++) {
                    if ((padded || (kl && s >= kl[n])) && row[s] != 0.0f)
                        fail_msg("%s: n=%lld h=%lld l=%lld s=%lld: masked weight %g is not 0", what, (long long)n,
                                 (long long)h, (long long)l, (long long)s, (double)row[s]);
                    if (row[s] < 0.0f) fail_msg("%s: negative weight %g", what, (double)row[s]);
                    sum += row[s];
                }
                if (padded) continue;
                if (at_most ? sum > 1.0 + 1e-5 : fabs(sum - 1.0) > 1e-5)
                    fail_msg("%s: n=%lld h=%lld l=%lld: row sums to %.9g", what, (long long)n, (long long)h,
                             (long long)l, sum);
            }
}

static void random_types_av_is_output(void **state) {
    (void)state;
    const int64_t N = 2, L = 9, S = 9, kl[2] = {9, 5}, ql[2] = {9, 6}, kl7[2] = {9, 7};
    struct {
        const char *type, *cfg;
        bool lengths, causal, at_most;
        const int64_t *kl;
    } cases[] = {
        {"clustered", "{\"clusters\": 3, \"bits\": 16, \"seed\": 7}", true, false, false, kl},
        {"clustered", "{\"clusters\": 2, \"bits\": 8, \"hash_bias\": false, \"softmax_temp\": 0.4, \"seed\": 1}",
         false, false, false, NULL},
        {"improved_clustered", "{\"clusters\": 3, \"topk\": 4, \"bits\": 16, \"seed\": 3}", true, false, false, kl},
        {"improved_clustered", "{\"clusters\": 2, \"topk\": 20, \"seed\": 4}", true, false, false, kl},
        /* the future keys of a cluster's top-k are dropped: rows sum to at most 1 */
        {"improved_clustered_causal", "{\"clusters\": 3, \"topk\": 4, \"seed\": 5}", false, true, true, NULL},
        /* fewer padded keys than a chunk: no window is all masked */
        {"reformer", "{\"chunk_size\": 3, \"bits\": 2, \"rounds\": 3, \"seed\": 5}", true, false, false, kl7},
        {"reformer", "{\"chunk_size\": 3, \"bits\": 3, \"rounds\": 2, \"masked\": true, \"seed\": 9}", false,
         false, false, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s", cases[c].type, cases[c].cfg);
        attn_model *m = tu_model(cases[c].type, cases[c].cfg);
        attn_tensor_set *in = tu_qkv(31 + c, N, L, S, 2, 4, 4);
        const bool ft_lengths = cases[c].lengths && strcmp(cases[c].type, "reformer");
        if (cases[c].kl) tu_add(in, "key_lengths", tu_lengths(N, cases[c].kl));
        if (ft_lengths) tu_add(in, "query_lengths", tu_lengths(N, ql));
        if (cases[c].causal) tu_add(in, "attn_mask", tu_tril(L, S, 0));
        attn_tensor_set *out = maps_consistent(what, m, in);
        const attn_tensor *A = attn_tensor_set_get(out, "attention");
        assert_int_equal(A->rank, 4);
        assert_true(A->shape[0] == N && A->shape[1] == 2 && A->shape[2] == L && A->shape[3] == S);
        check_av(what, A, attn_tensor_set_get(in, "values"), attn_tensor_set_get(out, "output"), 1e-5f);
        check_map_rows(what, A, cases[c].kl, ft_lengths ? ql : NULL, cases[c].at_most);
        if (cases[c].causal) /* nothing from the future */
            for (int64_t r = 0; r < N * 2 * L; r++)
                for (int64_t s = r % L + 1; s < S; s++)
                    if (((const float *)A->data)[r * S + s] != 0.0f) fail_msg("%s: future weight", what);
        if (!strcmp(cases[c].type, "clustered")) { /* every query shares its centroid's row: at most 3 distinct rows */
            const float *a = A->data;
            for (int64_t nh = 0; nh < N * 2; nh++) {
                int distinct = 0;
                for (int64_t l = 0; l < L; l++) {
                    bool seen = false;
                    for (int64_t l2 = 0; l2 < l && !seen; l2++)
                        seen = !memcmp(a + (nh * L + l) * S, a + (nh * L + l2) * S, (size_t)S * sizeof *a);
                    distinct += !seen;
                }
                /* + 1: the zero rows of padded queries */
                if (distinct > 3 + (ft_lengths && nh >= 2)) fail_msg("%s: %d distinct rows", what, distinct);
            }
        }
        if (!strcmp(cases[c].type, "reformer")) { /* a query sees at most rounds windows of 2 chunks */
            const float *a = A->data;
            for (int64_t r = 0; r < N * 2 * L; r++) {
                int nz = 0;
                for (int64_t s = 0; s < S; s++) nz += a[r * S + s] != 0.0f;
                if (nz > 3 * 6) fail_msg("%s: %d keys", what, nz);
            }
        }
        attn_tensor_set_free(out);
        attn_tensor_set_free(in);
        attn_model_free(m);
    }
}

/* linear_self on its golden cases: att = A v per head, out = att Woᵀ + bo;
 * masked keys 0; rows 1 (non-causal), at most 1 and 0 in the blindspot's
 * first bucket (causal). */
static void linear_self_av_is_output(void **state) {
    (void)state;
    static const struct { const char *id; bool causal; int64_t bucket; } ids[] = {
        {"maps_linear_self_noncausal_mask", false, 1}, {"maps_linear_self_noncausal_one_kv", false, 1},
        {"maps_linear_self_causal_b1_mask", true, 1}, {"maps_linear_self_causal_b4_relu", true, 4},
        {"maps_linear_self_causal_one_kv_b4", true, 4}};
    for (size_t c = 0; c < sizeof ids / sizeof ids[0]; c++) {
        attn_model *m;
        attn_tensor_set *in, *io, *w = NULL;
        attn_error e = {0};
        char p[256];
        load_case(ids[c].id, &m, &in, &io);
        snprintf(p, sizeof p, "tests/golden/cases/%s/weights.safetensors", ids[c].id);
        assert_int_equal(attn_safetensors_read_file(p, &w, &e), ATTN_OK);
        attn_tensor_set *out = maps_consistent(ids[c].id, m, in);
        const attn_tensor *A = attn_tensor_set_get(out, "attention"), *y = attn_tensor_set_get(out, "output");
        const attn_tensor *x = attn_tensor_set_get(in, "x"), *mask = attn_tensor_set_get(in, "input_mask");
        const attn_tensor *wv = attn_tensor_set_get(w, "to_v.weight"), *wo = attn_tensor_set_get(w, "to_out.weight"),
                          *bo = attn_tensor_set_get(w, "to_out.bias");
        const int64_t B = x->shape[0], Nn = x->shape[1], dim = x->shape[2], H = A->shape[1], S = A->shape[3];
        const int64_t KD = wv->shape[0], HD = wo->shape[1], d = HD / H, kvh = KD / d;
        assert_true(A->shape[0] == B && A->shape[2] == Nn && S == Nn);
        double *v = calloc((size_t)(B * S * KD), sizeof *v), *att = calloc((size_t)(B * Nn * HD), sizeof *att);
        const float *xf = x->data, *a = A->data;
        for (int64_t r = 0; r < B * S; r++)
            for (int64_t o = 0; o < KD; o++)
                for (int64_t i = 0; i < dim; i++) v[r * KD + o] += (double)xf[r * dim + i] * ((const float *)wv->data)[o * dim + i];
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t l = 0; l < Nn; l++) {
                    const float *row = a + ((b * H + h) * Nn + l) * S;
                    double sum = 0;
                    for (int64_t s = 0; s < S; s++) {
                        if (mask && !((const uint8_t *)mask->data)[b * S + s] && row[s] != 0.0f)
                            fail_msg("%s: masked weight %g", ids[c].id, (double)row[s]);
                        sum += row[s];
                        for (int64_t e2 = 0; e2 < d; e2++)
                            att[(b * Nn + l) * HD + h * d + e2] += row[s] * v[(b * S + s) * KD + (kvh == 1 ? 0 : h) * d + e2];
                    }
                    bool any = false;
                    for (int64_t s = 0; s < S; s++) any = any || !mask || ((const uint8_t *)mask->data)[b * S + s];
                    if (ids[c].causal && l < ids[c].bucket - (ids[c].bucket == 1)) {
                        if (sum != 0.0) fail_msg("%s l=%lld: the first bucket reads nothing, sums to %g", ids[c].id, (long long)l, sum);
                    } else if (!ids[c].causal && !any) {
                        if (sum != 0.0) fail_msg("%s: every key masked, row sums to %g", ids[c].id, sum);
                    } else if (ids[c].causal ? sum > 1.0 + 1e-5 : fabs(sum - 1.0) > 1e-5) {
                        fail_msg("%s b=%lld h=%lld l=%lld: row sums to %.9g", ids[c].id, (long long)b, (long long)h, (long long)l, sum);
                    }
                    if (ids[c].causal)
                        for (int64_t s = (l / ids[c].bucket + (ids[c].bucket == 1)) * ids[c].bucket; s < S; s++)
                            if (row[s] != 0.0f) fail_msg("%s l=%lld s=%lld: a key it cannot see", ids[c].id, (long long)l, (long long)s);
                }
        const float *yf = y->data;
        for (int64_t r = 0; r < B * Nn; r++)
            for (int64_t o = 0; o < dim; o++) {
                double acc = ((const float *)bo->data)[o];
                for (int64_t i = 0; i < HD; i++) acc += att[r * HD + i] * ((const float *)wo->data)[o * HD + i];
                if (fabs(acc - yf[r * dim + o]) > 1e-5 * (1 + fabs(acc)))
                    fail_msg("%s: (A v) Wo^T + b = %.8g, output %.8g", ids[c].id, acc, (double)yf[r * dim + o]);
            }
        free(v);
        free(att);
        attn_tensor_set_free(out);
        attn_tensor_set_free(w);
        attn_model_free(m);
        attn_tensor_set_free(in);
        attn_tensor_set_free(io);
    }
}

/* ---- bad names ---- */

static void bad_names_are_refused(void **state) {
    (void)state;
    attn_model *m = tu_model("full", NULL);
    attn_tensor_set *in = tu_qkv(3, 1, 3, 3, 1, 4, 2), *out = (attn_tensor_set *)1;
    attn_error e = {0};
    const char *names[2] = {"attention", "weights"};
    assert_int_equal(attn_model_forward_outputs(m, NULL, in, names, 2, &out, &e), ATTN_E_NOTFOUND);
    assert_null(out);
    assert_non_null(strstr(e.msg, "'weights'"));
    assert_non_null(strstr(e.msg, "output, attention"));
    size_t n;
    assert_int_equal(attn_model_output_elements(m, in, names + 1, 1, &n, &e), ATTN_E_NOTFOUND);
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    assert_int_equal(attn_model_output_shape(m, in, "weights", &rank, shape, &n, &e), ATTN_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "output, attention"));
    const char *null_name[1] = {NULL};
    assert_int_equal(attn_model_forward_outputs(m, NULL, in, null_name, 1, &out, &e), ATTN_E_INVALID);
    attn_model_free(m);

    /* a type without maps: "attention" itself is unknown, and says what there is */
    m = tu_model("aft_simple", NULL);
    assert_int_equal(attn_model_forward_outputs(m, NULL, in, names, 1, &out, &e), ATTN_E_NOTFOUND);
    assert_non_null(strstr(e.msg, "its outputs: output"));
    attn_model_free(m);

    /* conditional_full past its limit with an other attention without maps */
    attn_tensor_set_free(in);
    in = tu_qkv(4, 1, 3, 3, 1, 4, 4);
    m = tu_model("conditional_full", "{\"other_attention\": {\"type\": \"aft_simple\"}, \"length_limit\": 2}");
    assert_int_equal(attn_model_output_elements(m, in, names, 1, &n, &e), ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "aft_simple"));
    assert_int_equal(attn_model_forward_outputs(m, NULL, in, names, 1, &out, &e), ATTN_E_UNSUPPORTED);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outputs_are_declared),
        cmocka_unit_test(axial_declares_one_map_per_axis),
        cmocka_unit_test(size_query_and_overflow),
        cmocka_unit_test(masked_entries_are_zero),
        cmocka_unit_test(fully_masked_row_is_nan),
        cmocka_unit_test(primary_output_bit_identical),
        cmocka_unit_test(area_geometry),
        cmocka_unit_test(random_types_av_is_output),
        cmocka_unit_test(linear_self_av_is_output),
        cmocka_unit_test(bad_names_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
