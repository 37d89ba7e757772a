/*
 * math.c — softmax, layer norm and activations, written to round as torch's
 * CPU kernels do where it matters (max-subtracted softmax, biased variance).
 */
#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* exp for the softmax hot loops: Cody–Waite reduction to r in about
 * [-ln2/2, ln2/2], a degree-6 polynomial (Cephes' expf coefficients), and
 * 2^k assembled in the exponent bits.  Max relative error 1.2e-7 against
 * libm over [-87, 88]; below -87 the result is exactly 0 so that masked
 * (-inf) scores contribute nothing.  Written without calls or casts of
 * out-of-range floats so that the loops below vectorise (and stay free of
 * undefined behaviour on NaN). */
static inline float fast_exp(float x) {
    const float magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    float xc = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float t = xc * 1.44269504088896341f + magic;
    float k = t - magic;
    int32_t tb, mb;
    memcpy(&tb, &t, 4);
    memcpy(&mb, &magic, 4);
    float r = xc - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (int32_t)((uint32_t)(tb - mb + 127) << 23);
    float scale;
    memcpy(&scale, &bits, 4);
    return x < -87.0f ? 0.0f : p * scale;
}

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
