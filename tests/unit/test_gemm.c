/* test_gemm.c — libattn's own sgemm (kernels/gemm.c) and the attn__gemm
 * dispatcher against a plain double-accumulating triple loop, on shapes that
 * cross every register-tile and cache-block edge, with both transposes,
 * padded leading dimensions, alpha and beta (beta 0 must ignore NaN in C). */
#include "test_util.h"

#include "cpu.h"
#include "kernels/kernels.h"

#include <limits.h>

typedef attn_status (*gemm_fn)(int, int, size_t, size_t, size_t, float, const float *, size_t, const float *,
                               size_t, float, float *, size_t);

static const attn_kernels *variant; /* whose sgemm own_or_blas runs */

static attn_status own_or_blas(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                               size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (variant->gemm_own(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) == 0) return ATTN_OK;
    return attn__gemm_blas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void check(gemm_fn f, const char *what, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                  float beta, uint64_t seed) {
    size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    size_t ar = ta ? k : m, br = tb ? n : k;
    float *A = malloc(ar * lda * sizeof *A), *B = malloc(br * ldb * sizeof *B);
    float *C = malloc(m * ldc * sizeof *C), *R = malloc(m * ldc * sizeof *R);
    for (size_t i = 0; i < ar * lda; i++) A[i] = tu_rand(&seed);
    for (size_t i = 0; i < br * ldb; i++) B[i] = tu_rand(&seed);
    for (size_t i = 0; i < m * ldc; i++) R[i] = C[i] = beta == 0.0f ? NAN : tu_rand(&seed);
    for (size_t i = 0; i < m; i++) /* the padding columns must survive */
        for (size_t j = n; j < ldc; j++) R[i * ldc + j] = C[i * ldc + j] = 7.0f;
    assert_int_equal(f(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), ATTN_OK);
    if (beta == 0.0f)
        for (size_t i = 0; i < m * ldc; i++) R[i] = (i % ldc) < n ? 0.0f : R[i];
    attn__gemm_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, R, ldc);
    float tol = 1e-6f * (float)(k + 4);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < ldc; j++) {
            float c = C[i * ldc + j], r = R[i * ldc + j];
            if (!(fabsf(c - r) <= tol))
                fail_msg("%s ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g: C[%zu][%zu] = %g, want %g", what, ta, tb,
                         m, n, k, alpha, beta, i, j, c, r);
        }
    free(A);
    free(B);
    free(C);
    free(R);
}

/* libattn's sgemm of every variant this CPU executes (core/cpu.c). */
static void own_gemm_matches_reference(void **state) {
    (void)state;
    static const size_t ms[] = {1, 5, 6, 7, 11, 12, 13, 97, 200}, ns[] = {1, 15, 16, 17, 31, 32, 33, 100},
                        ks[] = {1, 15, 16, 17, 300};
    static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.5f, -0.5f}};
    for (size_t vi = 0; (variant = attn__kernels_at(vi)) != NULL; vi++) {
        if (!attn__kernels_runs(variant)) continue;
        uint64_t seed = 1;
        for (size_t a = 0; a < sizeof ms / sizeof *ms; a++)
            for (size_t b = 0; b < sizeof ns / sizeof *ns; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                    size_t v = a + b + c;
                    check(own_or_blas, variant->name, (int)(v % 2), (int)(v / 2 % 2), ms[a], ns[b], ks[c],
                          ab[v % 3][0], ab[v % 3][1], seed++);
                }
        /* wider than one column block (NC) and deeper than one k slice (KC) */
        check(own_or_blas, variant->name, 0, 1, 30, 2100, 520, 1.0f, 0.0f, 99);
        check(own_or_blas, variant->name, 1, 0, 130, 2049, 257, 0.25f, 1.0f, 98);
    }
}

static void dispatcher_matches_reference(void **state) {
    (void)state;
    uint64_t seed = 5;
    for (int t = 0; t < 4; t++) {
        check(attn__gemm, "attn__gemm", t & 1, t >> 1, 64, 64, 64, 1.0f, 0.0f, seed++);  /* own */
        check(attn__gemm, "attn__gemm", t & 1, t >> 1, 3, 64, 64, 1.0f, 1.0f, seed++);   /* thin: OpenBLAS */
        check(attn__gemm, "attn__gemm", t & 1, t >> 1, 50, 7, 33, 2.0f, 0.0f, seed++);   /* thin: OpenBLAS */
        check(attn__gemm_blas, "blas", t & 1, t >> 1, 40, 40, 40, 1.0f, 0.5f, seed++);
    }
    /* k == 0: C = beta·C, and beta == 0 clears NaN */
    float C[4] = {NAN, NAN, NAN, NAN}, D[4] = {1, 2, 3, 4};
    assert_int_equal(attn__gemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, C, 2), ATTN_OK);
    assert_int_equal(attn__gemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 2.0f, D, 2), ATTN_OK);
    for (int i = 0; i < 4; i++) {
        assert_true(C[i] == 0.0f);
        assert_true(D[i] == 2.0f * (float)(i + 1));
    }
}

/* Shapes past BLAS's int in one product, with virtual sizes: the matrices
 * are NULL (A, B) or one sentinel float (C), so any access would crash or
 * show; every product must refuse before touching them. */
static void products_past_int_max_are_refused(void **state) {
    (void)state;
    const size_t big = (size_t)INT_MAX + 1;
    /* m, n, k, lda, ldb, ldc: each in turn past INT_MAX (so m*k etc. too) */
    const size_t dims[][6] = {
        {big, 1, 1, 1, 1, 1}, {1, big, 1, big, big, big}, {1, 1, big, big, 1, 1},
        {1, 1, 1, big, 1, 1}, {1, 1, 1, 1, big, 1},       {1, 1, 1, 1, 1, big},
        {big, 1, 0, 1, 1, 1}, /* k == 0 would only scale C: refused as well */
    };
    const gemm_fn fns[] = {attn__gemm, attn__gemm_blas};
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            const size_t *d = dims[i];
            float c = 42.0f;
            assert_int_equal(fns[f](0, 0, d[0], d[1], d[2], 1.0f, NULL, d[3], NULL, d[4], 0.0f, &c, d[5]),
                             ATTN_E_OVERFLOW);
            assert_true(c == 42.0f);
        }
    /* torch.nn.Linear over more rows, inputs or outputs than an int holds */
    float y = 42.0f, bias = 1.0f;
    assert_int_equal(attn__linear(NULL, big, 4, NULL, &bias, 4, &y), ATTN_E_OVERFLOW);
    assert_int_equal(attn__linear(NULL, 4, big, NULL, NULL, 4, &y), ATTN_E_OVERFLOW);
    assert_int_equal(attn__linear(NULL, 4, 4, NULL, &bias, big, &y), ATTN_E_OVERFLOW);
    assert_true(y == 42.0f);
    /* within the limits, a product of dims past INT_MAX is BLAS's business
     * (64-bit offsets): an empty one (n == 0) succeeds without access */
    assert_int_equal(attn__gemm(0, 0, (size_t)INT_MAX, 0, (size_t)INT_MAX, 1.0f, NULL, (size_t)INT_MAX, NULL, 1,
                                0.0f, NULL, 1),
                     ATTN_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_gemm_matches_reference),
        cmocka_unit_test(dispatcher_matches_reference),
        cmocka_unit_test(products_past_int_max_are_refused),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
