/*
 * kernels.h — numeric building blocks shared by the mechanisms: products
 * (OpenBLAS or libattn's sgemm, single-threaded per call; parallelism comes
 * from attn__parallel_for), softmax, normalisation and activations.
 * None of them allocates (but libattn's own sgemm its packing buffer); only
 * the products can fail, on sizes BLAS's int cannot hold.  Row-major
 * everywhere.
 */
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H

#include "attn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATTN_MUST_USE __attribute__((warn_unused_result))

/* Returns the status of `expr` from the enclosing function when it is not
 * ATTN_OK: for task functions whose kernels can fail (attn__gemm's BLAS
 * limit) and hold nothing to clean up. */
#define ATTN_TRY(expr)                                                                             \
    do {                                                                                           \
        attn_status try_st_ = (expr);                                                              \
        if (try_st_ != ATTN_OK) return try_st_;                                                    \
    } while (0)

/* C (m,n) = alpha * op(A) op(B) + beta * C, op = transpose when ta/tb.
 * lda/ldb/ldc are row strides in elements.  Plain cblas_sgemm underneath;
 * m, n or k of 0 is fine.  ATTN_E_OVERFLOW, with no matrix touched, when
 * any of m, n, k, lda, ldb, ldc exceeds INT_MAX (cblas_sgemm's int);
 * otherwise ATTN_OK. */
ATTN_MUST_USE attn_status attn__gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* libattn's own sgemm (kernels/gemm.c, in the variant core/cpu.c chose),
 * same contract as attn__gemm, which uses it for all but thin products when
 * it is the faster of the two on this machine (attn__gemm_use_own).  Returns
 * -1 (C untouched) when it cannot allocate its packing buffers.
 * attn__gemm_blas is the OpenBLAS call, attn__gemm_ref (gemm_ref.c) a plain
 * triple loop (double accumulation) for tests. */
int attn__gemm_own(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                   const float *B, size_t ldb, float beta, float *C, size_t ldc);
ATTN_MUST_USE attn_status attn__gemm_blas(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                                          const float *A, size_t lda, const float *B, size_t ldb, float beta,
                                          float *C, size_t ldc);
void attn__gemm_ref(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* torch.nn.Linear: y (rows,out) = x (rows,in) · W(out,in)ᵀ + b (b may be NULL).
 * x and y are contiguous with row strides `in` and `out`.  Fails as
 * attn__gemm does (ATTN_E_OVERFLOW before writing y). */
ATTN_MUST_USE attn_status attn__linear(const float *x, size_t rows, size_t in, const float *W, const float *b,
                                       size_t out, float *y);

/* The plain reference of attn__linear: the same y, as a double-accumulating
 * loop (no BLAS, no limits); the tests compare the fast path against it. */
void attn__linear_reference(const float *x, size_t rows, size_t in, const float *W, const float *b, size_t out,
                            float *y);

/* In-place softmax of one row of n floats, computed as torch does:
 * max-subtracted, exp, divided by the sum.  A row that is all -inf
 * becomes NaN, as in torch. */
void attn__softmax_row(float *x, size_t n);

/* kernels/rowops.c, per variant.  exp is fast_exp (as attn__exp_sub_sum):
 * attn__exp_sum_acc: y = exp(k[i] - msub[i]); sum[i] += y; acc[i] += y·v[i].
 * attn__exp_weight_acc: w = m[i] == -inf ? 0 : exp(m[i] - M[i]);
 * sum[i] += w·s[i]; acc[i] += w·a[i] (partial sums rescaled to a new max).
 * attn__gate_div: o[i] = x[i] / (1 + exp(-q[i])) (o may be x).
 * attn__max_into: m[i] = x[i] > m[i] ? x[i] : m[i] (a NaN x is skipped).
 * attn__axpy: o[i] += w·x[i].  attn__vmul: o[i] = a[i]·b[i] (o may be a or
 * b).  attn__scale: x[i] *= s.  (Each one rounding per operation, the same
 * bits in every variant.)
 * attn__dot: Σ a[i]·b[i] in float, in the variant's vector order.
 * attn__pos_rows: `rows` rows of W floats, o[r][c] = x[r][c·xw] + p0[r][c·w0]
 * (np = 1) or (x[r][c·xw] + p0[r][c·w0]) + p1[r][c·w1] (np = 2), where the
 * bits of code are xw, w0[, w1] (each 0: broadcast, or 1), the rows of x, p0
 * and p1 xs, s0 and s1 floats apart, o's W apart; o overlaps no operand.
 * attn__hamming_nearest: labels[l] = the centroid nearest hash[l] in
 * Hamming distance, the lowest index on ties (K >= 1). */
void attn__exp_sum_acc(const float *k, const float *msub, const float *v, float *sum, float *acc, size_t n);
void attn__exp_weight_acc(const float *m, const float *M, const float *s, const float *a, float *sum, float *acc,
                          size_t n);
void attn__gate_div(const float *x, const float *q, float *o, size_t n);
void attn__max_into(float *m, const float *x, size_t n);
void attn__axpy(float *o, float w, const float *x, size_t n);
void attn__vmul(float *o, const float *a, const float *b, size_t n);
void attn__scale(float *x, float s, size_t n);
float attn__dot(const float *a, const float *b, size_t n);
void attn__pos_rows(int np, unsigned code, float *o, const float *x, const float *p0, const float *p1, size_t W,
                    size_t rows, size_t xs, size_t s0, size_t s1);
void attn__hamming_nearest(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K, int32_t *labels);

/* x[i] = exp(x[i] - m) for all i (vectorised, rel. error ~1.2e-7, exactly 0
 * below exp(-87)); returns the sum.  m must be finite. */
float attn__exp_sub_sum(float *x, size_t n, float m);

/* The softmaxes of the linear-attention and compositional mechanisms, over
 * whole sequences (thousands of positions), where a float running sum
 * drifts by ~sqrt(n) ulps, more than torch's vectorised reduction does: the
 * sum is accumulated in double.  Max-subtracted as torch does, so a row of
 * -finfo.max entries becomes uniform; the exponentials are the vectorised
 * exp above.  A row (column) whose max is not finite takes libm's expf in
 * the same arithmetic: all -inf becomes NaN.
 * attn__softmax_row_d: one row of n floats. */
void attn__softmax_row_d(float *x, size_t n);
/* attn__softmax_rows_d: softmax_d(x · scale) of every row of a (rows, n)
 * block of row stride ld (each element multiplied by scale, then
 * attn__softmax_row_d). */
void attn__softmax_rows_d(float *x, size_t rows, size_t n, size_t ld, float scale);
/* attn__softmax_cols: softmax over dim -2 of x · scale, for every column of
 * a (rows, n) block of row stride ld: each element multiplied by scale,
 * then column by column the arithmetic of attn__softmax_row_d (sum in
 * double over the rows in order), walking whole rows so that every loop is
 * contiguous.  mx: n floats, sum: n doubles of scratch. */
void attn__softmax_cols(float *x, size_t rows, size_t n, size_t ld, float scale, float *mx, double *sum);

/* torch.nn.LayerNorm over the last dim of `rows` rows of width n:
 * biased variance, eps inside the sqrt; gamma/beta may be NULL. */
void attn__layernorm(const float *x, size_t rows, size_t n, const float *gamma, const float *beta,
                     float eps, float *y);

/* Elementwise activations, in place. */
void attn__elu1(float *x, size_t n);   /* elu(x) + 1 (alpha 1) */
void attn__relu(float *x, size_t n);
void attn__gelu(float *x, size_t n);   /* exact erf form, torch default */
void attn__sigmoid(float *x, size_t n);

/* Deterministic random numbers for mechanisms whose reference is random:
 * splitmix64 seeding a xoshiro256** stream; normal() by Box–Muller in
 * double, rounded to float. */
typedef struct attn_rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} attn_rng;
void attn__rng_seed(attn_rng *r, uint64_t seed);
uint64_t attn__rng_u64(attn_rng *r);
double attn__rng_uniform(attn_rng *r); /* [0, 1) */
float attn__rng_normal(attn_rng *r);   /* N(0, 1) */

#endif
