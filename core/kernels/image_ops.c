/*
 * image_ops.c — channel layer norm and leaky ReLU (see image_ops.h).
 */
#include "kernels/image_ops.h"

#include <math.h>

/* Shapes: x, y (c, hw), channel k of pixel p at k*hw + p.  The statistics are
 * accumulated in double (torch's CPU var/mean accumulate wider than float);
 * the normalisation itself is float arithmetic in the reference's order. */
void attn__chan_layernorm(const float *x, size_t c, size_t hw, const float *g, const float *b,
                          float eps, float *y) {
    if (c == 0) return;
    for (size_t p = 0; p < hw; p++) {
        double s = 0.0;
        for (size_t k = 0; k < c; k++) s += x[k * hw + p];
        double mean = s / (double)c, ss = 0.0;
        for (size_t k = 0; k < c; k++) {
            double d = x[k * hw + p] - mean;
            ss += d * d;
        }
        float m = (float)mean, denom = sqrtf((float)(ss / (double)c)) + eps;
        for (size_t k = 0; k < c; k++) y[k * hw + p] = (x[k * hw + p] - m) / denom * g[k] + b[k];
    }
}

void attn__leaky_relu(float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++)
        if (!(x[i] > 0.0f)) x[i] *= slope;
}
