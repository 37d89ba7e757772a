/*
 * strided_softmax.h — softmax of n floats spaced `stride` apart, for the
 * linear-attention and compositional mechanisms, which normalise both rows
 * (stride 1) and columns (softmax over positions of a (n, d) block).
 *
 * Why not attn__softmax_row: the sum is accumulated in double here.  These
 * softmaxes run over whole sequences (thousands of positions), where a plain
 * float running sum drifts by ~sqrt(n) ulps, more than torch's vectorised
 * (8 partial sums) reduction does.  Max-subtracted as torch does, so a row
 * of -finfo.max entries becomes uniform; an all -inf row becomes NaN.
 */
#ifndef ATTN_STRIDED_SOFTMAX_H
#define ATTN_STRIDED_SOFTMAX_H

#include "kernels/kernels.h"

#include <math.h>
#include <stddef.h>

static inline void attn__softmax_strided(float *x, size_t n, size_t stride) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = x[i * stride] > mx ? x[i * stride] : mx;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = expf(x[i * stride] - mx);
        x[i * stride] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) x[i * stride] *= inv;
}

/* attn__softmax_strided(x, n, 1), with the exponentials from the kernels'
 * vectorised exp (attn__exp_sub_sum, relative error ~1.2e-7) instead of one
 * expf call per element; still max-subtracted and summed in double.  Rows
 * whose max is not finite take the scalar path (same NaN results). */
static inline void attn__softmax_row_d(float *x, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (!isfinite(mx)) {
        attn__softmax_strided(x, n, 1);
        return;
    }
    attn__exp_sub_sum(x, n, mx);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += x[i];
    const float inv = (float)(1.0 / sum);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

/* The same softmax for every column of a (rows, n) row-major block (the
 * softmax over dim -2), column by column the arithmetic above (max, expf,
 * sum in double over the rows in order, times 1/sum), but walking whole
 * rows so that every loop is contiguous instead of n-strided.
 * mx: n floats, sum: n doubles of scratch. */
static inline void attn__softmax_cols(float *x, size_t rows, size_t n, float *mx, double *sum) {
    for (size_t i = 0; i < n; i++) mx[i] = -INFINITY, sum[i] = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
#pragma omp simd
        for (size_t i = 0; i < n; i++) mx[i] = xr[i] > mx[i] ? xr[i] : mx[i];
    }
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * n;
        for (size_t i = 0; i < n; i++) {
            float e = expf(xr[i] - mx[i]);
            xr[i] = e;
            sum[i] += e;
        }
    }
    for (size_t i = 0; i < n; i++) mx[i] = (float)(1.0 / sum[i]);
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * n;
#pragma omp simd
        for (size_t i = 0; i < n; i++) xr[i] *= mx[i];
    }
}

#endif
