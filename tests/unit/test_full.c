/* test_full.c — full attention: the blocked online-softmax path against a
 * plain softmax written here, masks, lengths and edge cases. */
#include "test_util.h"

#include "cpu.h"
#include "mech/full.h"

/* The plain reference (attn__full_reference, in core) over a tensor set. */
static void naive_full(const attn_tensor_set *in, float temp, float *out) {
    const attn_tensor *q = attn_tensor_set_get(in, "queries"), *k = attn_tensor_set_get(in, "keys"),
                      *v = attn_tensor_set_get(in, "values"), *m = attn_tensor_set_get(in, "attn_mask"),
                      *kl = attn_tensor_set_get(in, "key_lengths");
    attn_qkv a = {.N = q->shape[0], .L = q->shape[1], .S = k->shape[1], .H = q->shape[2], .E = q->shape[3],
                  .D = v->shape[3], .q = q->data, .k = k->data, .v = v->data,
                  .attn_mask = m ? m->data : NULL, .key_lengths = kl ? kl->data : NULL};
    assert_int_equal(attn__full_reference(temp, &a, out, NULL), ATTN_OK);
}

/* The two fast paths with a workspace of exactly the size each declares,
 * NaN-filled (a read of scratch the kernel did not write shows). */
static void *nan_ws(size_t bytes) {
    void *ws = NULL;
    if (bytes) {
        assert_int_equal(posix_memalign(&ws, 64, bytes), 0);
        memset(ws, 0xff, bytes);
    }
    return ws;
}

static attn_status run_blas(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *e) {
    size_t bytes;
    assert_int_equal(attn__full_blas_ws(a, attn_ctx_threads(ctx), &bytes, e), ATTN_OK);
    void *ws = nan_ws(bytes);
    attn_status st = attn__full_blas(temp, ctx, a, out, ws, e);
    free(ws);
    return st;
}

static attn_status run_fused(const attn_kernels *k, float temp, attn_ctx *ctx, const attn_qkv *a, float *out,
                             attn_error *e) {
    size_t bytes = 0;
    attn_status st = k->full_fused_ws(a, attn_ctx_threads(ctx), &bytes, e);
    if (st) return st;
    void *ws = nan_ws(bytes);
    st = k->full_fused(temp, ctx, a, out, ws, e);
    free(ws);
    return st;
}

static void check_against_naive(int64_t N, int64_t L, int64_t S, int64_t H, int64_t E, int64_t D, int mask,
                                int lengths, int threads) {
    attn_tensor_set *in = tu_qkv((uint64_t)(L * 131 + S), N, L, S, H, E, D);
    if (mask) tu_add(in, "attn_mask", tu_tril(L, S, S - L));
    if (lengths) {
        int64_t kl[4] = {S, S / 2 + 1, S, 1};
        tu_add(in, "key_lengths", tu_lengths(N, kl));
    }
    attn_model *m = tu_model("full", NULL);
    attn_tensor *o = tu_run_ok(m, in, threads);
    float *ref = calloc(o->numel, sizeof *ref);
    naive_full(in, 1.0f / sqrtf((float)E), ref);
    float md = 0;
    for (size_t i = 0; i < o->numel; i++) md = fmaxf(md, fabsf(((float *)o->data)[i] - ref[i]));
    if (!(md < 2e-5f)) fail_msg("L=%lld S=%lld: max diff %g", (long long)L, (long long)S, md);
    free(ref);
    attn_tensor_free(o);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

static void blocked_matches_plain(void **state) {
    (void)state;
    check_against_naive(1, 1, 1, 1, 4, 3, 0, 0, 1);
    check_against_naive(2, 5, 7, 3, 8, 5, 0, 0, 2);
    check_against_naive(2, 300, 1100, 2, 16, 8, 0, 0, 2);  /* crosses query and key blocks */
    check_against_naive(2, 300, 1100, 2, 16, 8, 1, 0, 1);
    check_against_naive(4, 129, 700, 1, 8, 8, 1, 1, 2);
    check_against_naive(4, 64, 64, 2, 8, 8, 0, 1, 1);
}

/* Both fast paths (fused kernel, blocked sgemm) called directly on a grid of
 * shapes that cross every tile and block edge, against naive_full. */
static void run_paths(int64_t N, int64_t L, int64_t S, int64_t H, int64_t E, int64_t D, int mask,
                      int lengths, int threads) {
    attn_tensor_set *in = tu_qkv((uint64_t)(L * 7919 + S * 31 + E * 7 + D), N, L, S, H, E, D);
    if (mask == 1) tu_add(in, "attn_mask", tu_tril(L, S, 0));     /* causal: the skip path */
    if (mask == 2) tu_add(in, "attn_mask", tu_tril(L, S, S - L)); /* shifted: not "lower triangular" */
    if (mask == 3) { /* random, with whole rows hidden */
        attn_tensor *mt = tu_tril(L, S, S);
        uint64_t seed = 77;
        uint8_t *mb = mt->data;
        for (int64_t i = 0; i < L * S; i++) mb[i] = tu_rand(&seed) > -0.5f;
        for (int64_t s = 0; s < S; s++) mb[(L / 2) * S + s] = 0;
        tu_add(in, "attn_mask", mt);
    }
    if (lengths) { /* batch 2 sees no key: NaN rows (the fused kernel's
                    * sub-blocks without a last key block) */
        int64_t kl[4] = {S, S / 2 + 1, 0, 1};
        tu_add(in, "key_lengths", tu_lengths(N, kl));
    }
    const attn_tensor *tm = attn_tensor_set_get(in, "attn_mask"), *tk = attn_tensor_set_get(in, "key_lengths");
    attn_qkv a = {.N = N, .L = L, .S = S, .H = H, .E = E, .D = D,
                  .q = attn_tensor_set_get(in, "queries")->data,
                  .k = attn_tensor_set_get(in, "keys")->data,
                  .v = attn_tensor_set_get(in, "values")->data,
                  .attn_mask = tm ? tm->data : NULL,
                  .key_lengths = tk ? tk->data : NULL};
    attn__qkv_prepare(&a);
    size_t n = (size_t)(N * L * H * D);
    float *ref = calloc(n, sizeof *ref), *f = calloc(n, sizeof *f), *b = calloc(n, sizeof *b);
    float temp = 1.0f / sqrtf((float)E);
    naive_full(in, temp, ref);
    attn_ctx *ctx = attn_ctx_new(threads);
    attn_error e = {0};
    assert_int_equal(run_blas(temp, ctx, &a, b, &e), ATTN_OK);
    /* the fused kernel of every variant this CPU executes (core/cpu.c) */
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        if (k->full_fused_ok(&a)) {
            assert_int_equal(run_fused(k, temp, ctx, &a, f, &e), ATTN_OK);
        } else {
            assert_int_equal(run_fused(k, temp, ctx, &a, f, &e), ATTN_E_INVALID);
            memcpy(f, b, n * sizeof *f);
        }
        float mf = 0, mb = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(ref[i]) || isnan(f[i]) || isnan(b[i])) {
                if (!(isnan(ref[i]) && isnan(f[i]) && isnan(b[i])))
                    fail_msg("%s N=%lld L=%lld S=%lld E=%lld D=%lld mask=%d: NaN at %zu differs (ref %g fused %g blas %g)",
                             k->name, (long long)N, (long long)L, (long long)S, (long long)E, (long long)D, mask, i,
                             ref[i], f[i], b[i]);
                continue;
            }
            mf = fmaxf(mf, fabsf(f[i] - ref[i]));
            mb = fmaxf(mb, fabsf(b[i] - ref[i]));
        }
        if (!(mf < 2e-5f && mb < 2e-5f))
            fail_msg("%s N=%lld L=%lld S=%lld H=%lld E=%lld D=%lld mask=%d lengths=%d: fused %g blas %g", k->name,
                     (long long)N, (long long)L, (long long)S, (long long)H, (long long)E, (long long)D, mask,
                     lengths, mf, mb);
    }
    attn_ctx_free(ctx);
    free(ref);
    free(f);
    free(b);
    attn_tensor_set_free(in);
}

/* The grid twice: with the default layout of K and V (in place at these
 * sizes, but for E·H·4 a multiple of 4 KiB) and with the head-by-head copy
 * forced. */
static void fused_and_blas_paths_match_plain(void **state) {
    (void)state;
    static const int64_t Ls[] = {1, 8, 17, 96, 97, 200}, Ss[] = {1, 13, 256, 257, 600};
    static const int64_t EDs[][2] = {{64, 64}, {7, 16}, {1, 32}, {33, 48}, {16, 80}, {24, 128}, {8, 8}, {5, 3}};
    for (int layout = 0; layout < 2; layout++) {
        if (layout) setenv("ATTN_FUSED_HEAD_COPY", "1", 1);
        for (size_t li = 0; li < sizeof Ls / sizeof *Ls; li++)
            for (size_t si = 0; si < sizeof Ss / sizeof *Ss; si++)
                for (size_t ei = 0; ei < sizeof EDs / sizeof *EDs; ei++) {
                    int64_t L = Ls[li], S = Ss[si];
                    int variant = (int)((li + si + ei) % 4);
                    run_paths(2, L, S, 2, EDs[ei][0], EDs[ei][1], variant, (int)(ei % 2), 1 + (int)(ei % 3));
                }
        run_paths(1, 300, 300, 3, 64, 64, 1, 0, 2); /* causal, square: key blocks skipped */
        run_paths(4, 33, 1030, 1, 64, 64, 3, 1, 2);
        run_paths(4, 130, 130, 2, 64, 64, 1, 1, 2); /* causal with key lengths, one of them 0 */
        run_paths(1, 150, 700, 16, 64, 64, 2, 1, 2); /* H·E·4 = 4 KiB: the copy even by default */
    }
    unsetenv("ATTN_FUSED_HEAD_COPY");
}

/* The fused kernel with small blocks (ATTN_FUSED_*: queries per sub-block,
 * keys per block, sub-blocks per task) and each layout of K and V (packed
 * per key block, the head-by-head copy, read in place): every block edge,
 * the causal diagonal inside and across blocks, and sub-blocks that see no
 * key of a block. */
static void fused_small_blocks_match_plain(void **state) {
    (void)state;
    static const char *const cfg[][4] = {
        {"17", "13", "3", "0"}, {"5", "7", "8", "1"}, {"33", "64", "2", "0"}, {"17", "64", "3", "inplace"}};
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        setenv("ATTN_FUSED_BQ", cfg[c][0], 1);
        setenv("ATTN_FUSED_BK", cfg[c][1], 1);
        setenv("ATTN_FUSED_NSUB", cfg[c][2], 1);
        setenv("ATTN_FUSED_HEAD_COPY", cfg[c][3], 1);
        for (int mask = 0; mask < 4; mask++) {
            run_paths(2, 97, 200, 2, 64, 64, mask, mask % 2, 1 + mask % 2);
            run_paths(1, 200, 200, 3, 16, 32, mask, 0, 2);
        }
        run_paths(4, 90, 90, 2, 32, 64, 1, 1, 2);
        run_paths(1, 300, 300, 3, 64, 64, 1, 1, 2);
    }
    /* key blocks of 13 to 24 keys: a last tile of every row count below
     * the tile's 12 (AVX-512) or 5 (AVX2, SSE2), causal or not */
    setenv("ATTN_FUSED_BQ", "32", 1);
    setenv("ATTN_FUSED_NSUB", "2", 1);
    setenv("ATTN_FUSED_HEAD_COPY", "inplace", 1);
    for (int bk = 13; bk <= 24; bk++) {
        char v[16];
        snprintf(v, sizeof v, "%d", bk);
        setenv("ATTN_FUSED_BK", v, 1);
        run_paths(1, 70, 70, 2, 16, 16, bk % 4, 0, 1);
    }
    unsetenv("ATTN_FUSED_BQ");
    unsetenv("ATTN_FUSED_BK");
    unsetenv("ATTN_FUSED_NSUB");
    unsetenv("ATTN_FUSED_HEAD_COPY");
}

/* Infinite and NaN scores: both paths give NaN exactly where torch would. */
static void nonfinite_inputs_agree_across_paths(void **state) {
    (void)state;
    int64_t N = 1, L = 40, S = 300, H = 1, E = 16, D = 32;
    attn_tensor_set *in = tu_qkv(5, N, L, S, H, E, D);
    float *K = attn_tensor_set_get(in, "keys")->data, *Q = attn_tensor_set_get(in, "queries")->data;
    K[17 * E + 3] = INFINITY; /* key 17: +inf or -inf score depending on the query's sign */
    Q[5 * E + 2] = NAN;       /* query 5: NaN everywhere */
    attn_qkv a = {.N = N, .L = L, .S = S, .H = H, .E = E, .D = D, .q = Q, .k = K,
                  .v = attn_tensor_set_get(in, "values")->data};
    attn__qkv_prepare(&a);
    size_t n = (size_t)(L * D);
    float *f = calloc(n, sizeof *f), *b = calloc(n, sizeof *b);
    attn_ctx *ctx = attn_ctx_new(1);
    attn_error e = {0};
    assert_int_equal(run_blas(0.25f, ctx, &a, b, &e), ATTN_OK);
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        if (k->full_fused_ok(&a)) assert_int_equal(run_fused(k, 0.25f, ctx, &a, f, &e), ATTN_OK);
        else memcpy(f, b, n * sizeof *f);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(isnan(f[i]) != 0, isnan(b[i]) != 0);
            if (!isnan(b[i])) assert_true(fabsf(f[i] - b[i]) < 1e-5f);
        }
        for (int64_t d = 0; d < D; d++) assert_true(isnan(f[5 * D + d]));
    }
    attn_ctx_free(ctx);
    free(f);
    free(b);
    attn_tensor_set_free(in);
}

/* Sharp softmaxes: with a large temperature the scores minus their maxima
 * reach far below where the fused kernel's exponential flushes to 0 (2^-126,
 * about e^-87), and the output follows one or two keys; every variant's
 * fused kernel stays with the plain path. */
static void sharp_scores_match_plain(void **state) {
    (void)state;
    int64_t N = 1, L = 70, S = 333, H = 2, E = 64, D = 64;
    attn_tensor_set *in = tu_qkv(11, N, L, S, H, E, D);
    attn_qkv a = {.N = N, .L = L, .S = S, .H = H, .E = E, .D = D,
                  .q = attn_tensor_set_get(in, "queries")->data,
                  .k = attn_tensor_set_get(in, "keys")->data,
                  .v = attn_tensor_set_get(in, "values")->data};
    attn__qkv_prepare(&a);
    size_t n = (size_t)(N * L * H * D);
    float *ref = calloc(n, sizeof *ref), *f = calloc(n, sizeof *f);
    attn_ctx *ctx = attn_ctx_new(2);
    attn_error e = {0};
    static const float temps[] = {0.125f, 1.0f, 4.0f, 16.0f};
    for (size_t t = 0; t < sizeof temps / sizeof *temps; t++) {
        naive_full(in, temps[t], ref);
        for (size_t vi = 0; attn__kernels_at(vi); vi++) {
            const attn_kernels *k = attn__kernels_at(vi);
            if (!attn__kernels_runs(k) || !k->full_fused_ok(&a)) continue;
            assert_int_equal(run_fused(k, temps[t], ctx, &a, f, &e), ATTN_OK);
            float md = 0;
            for (size_t i = 0; i < n; i++) md = fmaxf(md, fabsf(f[i] - ref[i]));
            if (!(md < 2e-5f)) fail_msg("%s temp %g: max diff %g", k->name, (double)temps[t], (double)md);
        }
    }
    attn_ctx_free(ctx);
    free(ref);
    free(f);
    attn_tensor_set_free(in);
}

/* attn__qkv_prepare's mask flags against the definitions written plainly:
 * lower-triangular masks (L = S and S > L, any nonzero byte counting as
 * true) with one byte flipped at each position in turn, all-ones masks with
 * one zero, and shapes where S < L. */
static void plain_flags(const uint8_t *m, size_t L, size_t S, bool *ones, bool *tril) {
    *ones = true;
    for (size_t i = 0; i < L * S; i++) *ones &= m[i] != 0;
    *tril = S >= L;
    for (size_t i = 0; i < L && S >= L; i++)
        for (size_t j = 0; j < S; j++) *tril &= (m[i * S + j] != 0) == (j <= i);
}

static void mask_flags_match_plain(void **state) {
    (void)state;
    static const size_t shapes[][2] = {{1, 1}, {3, 3}, {5, 70}, {40, 40}, {33, 97}, {70, 5}, {64, 64}};
    uint64_t seed = 5;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        size_t L = shapes[si][0], S = shapes[si][1];
        uint8_t *m = malloc(L * S);
        for (int kind = 0; kind < 2; kind++)
            for (size_t flip = 0; flip <= L * S; flip++) { /* flip == L·S: none */
                for (size_t i = 0; i < L; i++)
                    for (size_t j = 0; j < S; j++)
                        m[i * S + j] = (kind == 1 || j <= i) ? (uint8_t)(1 + (tu_rand(&seed) > 0.0f) * 6) : 0;
                if (flip < L * S) m[flip] = m[flip] ? 0 : 1;
                attn_qkv a = {.N = 1, .L = (int64_t)L, .S = (int64_t)S, .H = 1, .E = 1, .D = 1, .attn_mask = m};
                attn__qkv_prepare(&a);
                bool ones, tril;
                plain_flags(m, L, S, &ones, &tril);
                if (a.mask_all_ones != ones || a.mask_lower_triangular != tril)
                    fail_msg("L=%zu S=%zu kind %d flip %zu: all_ones %d (want %d), lower_triangular %d (want %d)", L,
                             S, kind, flip, a.mask_all_ones, ones, a.mask_lower_triangular, tril);
            }
        free(m);
    }
}

/* attn_model_forward_into: into a separate tensor, over the queries (in
 * place), over the keys (computed aside), and with a wrong shape. */
static void forward_into_and_in_place(void **state) {
    (void)state;
    for (int path = 0; path < 2; path++) {
        int64_t D = path ? 64 : 8; /* fused kernel / blocked-sgemm path */
        attn_tensor_set *in = tu_qkv(21, 2, 130, 70, 3, D, D);
        attn_model *m = tu_model("full", NULL);
        attn_ctx *ctx = attn_ctx_new(2);
        attn_error e = {0};
        attn_tensor *want = tu_run_ok(m, in, 2), *sep = NULL;
        assert_int_equal(attn_tensor_new(ATTN_F32, 4, want->shape, &sep, &e), ATTN_OK);
        assert_int_equal(attn_model_forward_into(m, ctx, in, sep, &e), ATTN_OK);
        assert_memory_equal(sep->data, want->data, want->nbytes);
        /* over the keys: L != S, so the shapes differ -> ATTN_E_SHAPE, keys untouched */
        attn_tensor *k = (attn_tensor *)attn_tensor_set_get(in, "keys");
        float k0 = ((float *)k->data)[0];
        assert_int_equal(attn_model_forward_into(m, ctx, in, k, &e), ATTN_E_SHAPE);
        assert_true(((float *)k->data)[0] == k0);
        /* a view over the values' bytes with the output's shape: overlaps, computed aside */
        attn_tensor_set *in2 = tu_qkv(21, 2, 130, 130, 3, D, D);
        attn_tensor *want2 = tu_run_ok(m, in2, 1), *v2 = (attn_tensor *)attn_tensor_set_get(in2, "values"), *ov;
        assert_int_equal(attn_tensor_view(ATTN_F32, 4, want2->shape, v2->data, v2->nbytes, &ov, &e), ATTN_OK);
        assert_int_equal(attn_model_forward_into(m, ctx, in2, ov, &e), ATTN_OK);
        assert_memory_equal(ov->data, want2->data, want2->nbytes);
        attn_tensor_free(ov);
        attn_tensor_free(want2);
        attn_tensor_set_free(in2);
        /* over the queries: in place */
        attn_tensor *q = (attn_tensor *)attn_tensor_set_get(in, "queries");
        assert_int_equal(attn_model_forward_into(m, ctx, in, q, &e), ATTN_OK);
        assert_memory_equal(q->data, want->data, want->nbytes);
        attn_tensor_free(want);
        attn_tensor_free(sep);
        attn_ctx_free(ctx);
        attn_model_free(m);
        attn_tensor_set_free(in);
    }
}

static void threads_do_not_change_results(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(9, 3, 200, 300, 4, 16, 64); /* the fused path */
    attn_model *m = tu_model("full", NULL);
    attn_tensor *a = tu_run_ok(m, in, 1), *b = tu_run_ok(m, in, 2), *c = tu_run_ok(m, in, 7);
    assert_memory_equal(a->data, b->data, a->nbytes);
    assert_memory_equal(a->data, c->data, a->nbytes);
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_free(c);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

static void fully_masked_rows_are_nan(void **state) {
    (void)state;
    /* key_lengths 0 for batch 1: every row of that batch is masked (torch: NaN) */
    attn_tensor_set *in = tu_qkv(5, 2, 3, 4, 1, 4, 2);
    tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){4, 0}));
    attn_model *m = tu_model("full", NULL);
    attn_tensor *o = tu_run_ok(m, in, 1);
    const float *p = o->data;
    for (size_t i = 0; i < 6; i++) assert_false(isnan(p[i]));
    for (size_t i = 6; i < 12; i++) assert_true(isnan(p[i]));
    attn_tensor_free(o);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

static void single_key_returns_its_value(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(11, 2, 5, 1, 3, 4, 6);
    attn_model *m = tu_model("full", "{\"softmax_temp\": 0.7}");
    attn_tensor *o = tu_run_ok(m, in, 2);
    const float *v = attn_tensor_set_get(in, "values")->data, *p = o->data;
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < 5; l++)
            for (int h = 0; h < 3; h++)
                for (int d = 0; d < 6; d++) assert_float_equal(p[((n * 5 + l) * 3 + h) * 6 + d], v[(n * 3 + h) * 6 + d], 1e-6);
    attn_tensor_free(o);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

static void query_lengths_are_ignored_and_int32_accepted(void **state) {
    (void)state;
    attn_tensor_set *a = tu_qkv(13, 2, 6, 6, 2, 4, 4), *b = tu_qkv(13, 2, 6, 6, 2, 4, 4);
    tu_add(b, "query_lengths", tu_lengths(2, (int64_t[]){1, 3}));
    attn_tensor *kl32;
    int64_t two = 2;
    assert_int_equal(attn_tensor_new(ATTN_I32, 1, &two, &kl32, NULL), ATTN_OK);
    ((int32_t *)kl32->data)[0] = 6;
    ((int32_t *)kl32->data)[1] = 6;
    tu_add(b, "key_lengths", kl32);
    attn_model *m = tu_model("full", NULL);
    attn_tensor *x = tu_run_ok(m, a, 1), *y = tu_run_ok(m, b, 1);
    assert_memory_equal(x->data, y->data, x->nbytes);
    attn_tensor_free(x);
    attn_tensor_free(y);
    attn_model_free(m);
    attn_tensor_set_free(a);
    attn_tensor_set_free(b);
}

static void bad_inputs(void **state) {
    (void)state;
    attn_model *m = tu_model("full", NULL);
    attn_error e = {0};
    attn_status st;
    attn_tensor_set *in = tu_qkv(1, 2, 3, 4, 2, 4, 4);
    tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){5, 1})); /* beyond S */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_INPUT);
    assert_non_null(strstr(e.msg, "key_lengths"));
    attn_tensor_set_free(in);

    in = tu_qkv(1, 2, 3, 4, 2, 4, 4);
    tu_add(in, "key_lengths", tu_lengths(2, (int64_t[]){-1, 1}));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_INPUT);
    attn_tensor_set_free(in);

    in = tu_qkv(1, 2, 3, 4, 2, 4, 4);
    tu_add(in, "key_lengths", tu_lengths(1, (int64_t[]){1}));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);

    in = tu_qkv(1, 2, 3, 4, 2, 4, 4);
    tu_add(in, "attn_mask", tu_tril(4, 3, 0)); /* (S,L) instead of (L,S) */
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "attn_mask"));
    attn_tensor_set_free(in);

    uint64_t seed = 2;
    in = attn_tensor_set_new(); /* keys with another E, missing values */
    tu_add(in, "queries", tu_randn(&seed, 4, (int64_t[]){1, 2, 1, 4}));
    tu_add(in, "keys", tu_randn(&seed, 4, (int64_t[]){1, 2, 1, 5}));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_INPUT);
    assert_non_null(strstr(e.msg, "values"));
    tu_add(in, "values", tu_randn(&seed, 4, (int64_t[]){1, 2, 1, 5}));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);

    in = attn_tensor_set_new(); /* wrong rank, wrong dtype, empty dim */
    tu_add(in, "queries", tu_randn(&seed, 3, (int64_t[]){1, 2, 4}));
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    in = tu_qkv(1, 1, 0, 4, 1, 4, 4);
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    in = tu_qkv(1, 1, 2, 2, 1, 4, 4);
    attn_tensor *fmask;
    assert_int_equal(attn_tensor_new(ATTN_F32, 2, (int64_t[]){2, 2}, &fmask, NULL), ATTN_OK);
    tu_add(in, "attn_mask", fmask);
    assert_null(tu_run(m, in, 1, &st, &e));
    assert_int_equal(st, ATTN_E_DTYPE);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

static void cancellation(void **state) {
    (void)state;
    attn_tensor_set *in = tu_qkv(3, 2, 64, 64, 2, 8, 8);
    attn_model *m = tu_model("full", NULL);
    attn_ctx *c = attn_ctx_new(2);
    volatile int flag = 1;
    attn_ctx_set_cancel(c, &flag);
    attn_tensor *o = NULL;
    attn_error e = {0};
    assert_int_equal(attn_model_forward(m, c, in, &o, &e), ATTN_E_CANCELLED);
    assert_null(o);
    flag = 0;
    assert_int_equal(attn_model_forward(m, c, in, &o, &e), ATTN_OK);
    attn_tensor_free(o);
    attn_ctx_free(c);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocked_matches_plain),
        cmocka_unit_test(fused_and_blas_paths_match_plain),
        cmocka_unit_test(fused_small_blocks_match_plain),
        cmocka_unit_test(nonfinite_inputs_agree_across_paths),
        cmocka_unit_test(sharp_scores_match_plain),
        cmocka_unit_test(mask_flags_match_plain),
        cmocka_unit_test(forward_into_and_in_place),
        cmocka_unit_test(threads_do_not_change_results),
        cmocka_unit_test(fully_masked_rows_are_nan),
        cmocka_unit_test(single_key_returns_its_value),
        cmocka_unit_test(query_lengths_are_ignored_and_int32_accepted),
        cmocka_unit_test(bad_inputs),
        cmocka_unit_test(cancellation),
    };
    return cmocka_run_group_tests_name("full", tests, NULL, NULL);
}
