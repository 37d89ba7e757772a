/*
 * blas.c — the only file that talks to OpenBLAS.  Wrappers keep the call
 * sites short and row-major.  Sizes arrive as size_t; cblas_sgemm takes
 * them as int, so every product first checks that m, n, k and the three
 * leading dimensions fit in an int and otherwise fails with ATTN_E_OVERFLOW
 * before touching any matrix.  (OpenBLAS computes element offsets such as
 * i * lda in 64 bits, so only the arguments themselves are limited.)  The
 * check is made for every product, whichever kernel then runs it, so that a
 * shape is accepted or refused the same way on every CPU.
 */
#include "kernels.h"
#include "cpu.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

static bool fits_blas_int(size_t m, size_t n, size_t k, size_t lda, size_t ldb, size_t ldc) {
    return m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX;
}

attn_status attn__gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (!fits_blas_int(m, n, k, lda, ldb, ldc)) return ATTN_E_OVERFLOW;
    if (m == 0 || n == 0) return ATTN_OK;
    if (k == 0) {
        /* BLAS with k == 0 scales C by beta; do it here so beta == 0 also
         * clears NaN garbage, as torch's matmul would produce zeros. */
        for (size_t i = 0; i < m; i++) {
            float *c = C + i * ldc;
            for (size_t j = 0; j < n; j++) c[j] = beta == 0.0f ? 0.0f : c[j] * beta;
        }
        return ATTN_OK;
    }
    /* Thin products (a vector, a few rows or columns) stay with OpenBLAS,
     * whose kernels do not pad them to a full register tile; the others go
     * to libattn's sgemm where it is the faster (core/cpu.c). */
    if (m >= 12 && n >= 32 && k >= 16 && attn__gemm_use_own(n, k) &&
        attn__gemm_own(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return ATTN_OK;
    return attn__gemm_blas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

attn_status attn__gemm_blas(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                            size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (!fits_blas_int(m, n, k, lda, ldb, ldc)) return ATTN_E_OVERFLOW;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return ATTN_OK;
}

void attn__linear_reference(const float *x, size_t rows, size_t in, const float *W, const float *b, size_t out,
                            float *y) {
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (size_t i = 0; i < in; i++) s += (double)x[r * in + i] * W[o * in + i];
            y[r * out + o] = (float)s;
        }
}

attn_status attn__linear(const float *x, size_t rows, size_t in, const float *W, const float *b,
                         size_t out, float *y) {
    if (!fits_blas_int(rows, out, in, in, in, out)) return ATTN_E_OVERFLOW;
    if (rows == 0 || out == 0) return ATTN_OK;
    if (b) {
        for (size_t r = 0; r < rows; r++) memcpy(y + r * out, b, out * sizeof *y);
    }
    return attn__gemm(0, 1, rows, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}
