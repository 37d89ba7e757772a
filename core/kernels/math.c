/*
 * math.c — layer norm and activations, written to round as torch's CPU
 * kernels do where it matters (biased variance).  The softmax and the other
 * exp loops are in softmax.c, built once per instruction-set variant.
 */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

void attn__layernorm(const float *x, size_t rows, size_t n, const float *gamma, const float *beta,
                     float eps, float *y) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = x + r * n;
        float *o = y + r * n;
        double mean = 0.0, var = 0.0;
        for (size_t i = 0; i < n; i++) mean += a[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double d = a[i] - mean;
            var += d * d;
        }
        var /= (double)n;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (size_t i = 0; i < n; i++) {
            float v = (float)(a[i] - mean) * rstd;
            if (gamma) v *= gamma[i];
            if (beta) v += beta[i];
            o[i] = v;
        }
    }
}

void attn__relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* keeps NaN, as torch.relu */
}

void attn__gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void attn__sigmoid(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}
