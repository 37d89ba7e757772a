/*
 * blas.c — the only file that talks to OpenBLAS.  Wrappers keep the call
 * sites short and row-major; sizes arrive as size_t and are checked to fit
 * BLAS's int by the callers' shape limits (ATTN tensors are bounded by the
 * server's element limit; a dimension over INT_MAX is rejected here by
 * splitting nothing — we simply refuse, see the comment below).
 */
#include "kernels.h"
#include "cpu.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

void attn__gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        /* BLAS with k == 0 scales C by beta; do it here so beta == 0 also
         * clears NaN garbage, as torch's matmul would produce zeros. */
        for (size_t i = 0; i < m; i++) {
            float *c = C + i * ldc;
            for (size_t j = 0; j < n; j++) c[j] = beta == 0.0f ? 0.0f : c[j] * beta;
        }
        return;
    }
    /* Thin products (a vector, a few rows or columns) stay with OpenBLAS,
     * whose kernels do not pad them to a full register tile; the others go
     * to libattn's sgemm where it is the faster (core/cpu.c). */
    if (m >= 12 && n >= 32 && k >= 16 && attn__gemm_use_own(n, k) &&
        attn__gemm_own(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
    attn__gemm_blas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void attn__gemm_blas(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    /* Callers bound every dimension far below INT_MAX (tensor element limits);
     * the casts below are therefore exact. */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void attn__linear(const float *x, size_t rows, size_t in, const float *W, const float *b,
                  size_t out, float *y) {
    if (rows == 0 || out == 0) return;
    if (b) {
        for (size_t r = 0; r < rows; r++) memcpy(y + r * out, b, out * sizeof *y);
    }
    attn__gemm(0, 1, rows, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}
