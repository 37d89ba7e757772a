/*
 * math.c — softmax, layer norm and activations, written to round as torch's
 * CPU kernels do where it matters (max-subtracted softmax, biased variance).
 */
#include "kernels.h"
#include "fast_exp.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

float attn__exp_sub_sum(float *x, size_t n, float m) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) {
        float e = fast_exp(x[i] - m);
        x[i] = e;
        sum += e;
    }
    return sum;
}

void attn__softmax_row(float *x, size_t n) {
    if (n == 0) return;
    float mx = -INFINITY;
    bool nan = false;
#pragma omp simd reduction(max : mx) reduction(| : nan)
    for (size_t i = 0; i < n; i++) {
        mx = x[i] > mx ? x[i] : mx;
        nan |= x[i] != x[i];
    }
    if (mx == -INFINITY || mx == INFINITY || nan) {
        /* torch: an all -inf row, or one with +inf (inf - inf), is NaN */
        for (size_t i = 0; i < n; i++) x[i] = NAN;
        return;
    }
    float inv = 1.0f / attn__exp_sub_sum(x, n, mx);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

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

void attn__elu1(float *x, size_t n) {
    /* elu(x) + 1 = x + 1 above 0 and exp(x) below: the vectorised exp. */
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] + 1.0f : fast_exp(x[i]);
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
