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

#endif
