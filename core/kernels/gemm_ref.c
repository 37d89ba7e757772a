/*
 * gemm_ref.c — the plain triple loop (double accumulation) that the tests
 * compare libattn's sgemm and attn__gemm with.
 */
#include "kernels.h"

void attn__gemm_ref(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++)
                s += (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
            float *c = C + i * ldc + j;
            *c = (float)(alpha * s) + (beta != 0.0f ? beta * *c : 0.0f);
        }
}
