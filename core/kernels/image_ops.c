/*
 * image_ops.c — the channel layer norm (see image_ops.h).
 */
#include "kernels/image_ops.h"

#include <math.h>

/* Shapes: see image_ops.h.  Pixels go in
 * blocks so that every pass reads rows of x contiguously.  The statistics
 * are accumulated in double (torch's CPU var/mean accumulate wider than
 * float); the normalisation itself is float arithmetic in the reference's
 * order. */
#define CLN_BLOCK 64
void attn__chan_layernorm(const float *x, size_t xs, size_t c, size_t np, const float *g, const float *b,
                          float eps, float *y, size_t ys) {
    if (c == 0) return;
    for (size_t p0 = 0; p0 < np; p0 += CLN_BLOCK) {
        size_t n = np - p0 < CLN_BLOCK ? np - p0 : CLN_BLOCK;
        double mean[CLN_BLOCK] = {0}, ss[CLN_BLOCK] = {0};
        float m[CLN_BLOCK], denom[CLN_BLOCK];
        for (size_t k = 0; k < c; k++) {
            const float *xr = x + k * xs + p0;
            for (size_t i = 0; i < n; i++) mean[i] += xr[i];
        }
        for (size_t i = 0; i < n; i++) mean[i] /= (double)c;
        for (size_t k = 0; k < c; k++) {
            const float *xr = x + k * xs + p0;
            for (size_t i = 0; i < n; i++) {
                double d = xr[i] - mean[i];
                ss[i] += d * d;
            }
        }
        for (size_t i = 0; i < n; i++) {
            m[i] = (float)mean[i];
            denom[i] = sqrtf((float)(ss[i] / (double)c)) + eps;
        }
        /* every statistic of the block is taken before y is written: in place is fine */
        for (size_t k = 0; k < c; k++) {
            const float *xr = x + k * xs + p0;
            float *yr = y + k * ys + p0, gk = g[k], bk = b[k];
            for (size_t i = 0; i < n; i++) yr[i] = (xr[i] - m[i]) / denom[i] * gk + bk;
        }
    }
}
