/*
 * rowops.c — the element-wise loops of the mechanisms that are not
 * products: AFT's running max, exp-weighted sums and sigmoid gate, a dot product, and
 * clustering's Hamming nearest centroid.  Built once per instruction-set
 * variant (kernels/variant.h), like softmax.c: these loops are fast only
 * when vectorised (the exp) or given POPCNT, which a `PORTABLE=1` build's
 * baseline flags do not allow in the mechanisms' own files.  core/cpu.c
 * defines the plain names over the chosen variant.
 *
 * Rounding: the exp is fast_exp lane for lane, the same bits in every
 * variant; attn__dot's sum follows the variant's vector width (variants
 * agree to rounding, not bit for bit).  No multiply-add is contracted
 * (this file is built without -ffp-contract=fast).
 */
#include "cpu.h"
#include "kernels.h"
#include "fast_exp.h"
#include "variant.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

ATTN_CPU_DECLARE(ATTN_VARIANT)

void ATTN_V(attn__exp_sum_acc)(const float *k, const float *msub, const float *v, float *sum, float *acc,
                               size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float y = fast_exp(k[i] - msub[i]);
        sum[i] += y;
        acc[i] += y * v[i];
    }
}

void ATTN_V(attn__max_into)(float *m, const float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) m[i] = x[i] > m[i] ? x[i] : m[i];
}

void ATTN_V(attn__gate_div)(const float *x, const float *q, float *o, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) o[i] = x[i] / (1.0f + fast_exp(-q[i]));
}

float ATTN_V(attn__dot)(const float *a, const float *b, size_t n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

void ATTN_V(attn__hamming_nearest)(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K,
                                   int32_t *labels) {
    for (size_t l = 0; l < n; l++) {
        const uint64_t h = hash[l];
        int best = 65;
        int32_t arg = 0;
        for (size_t k = 0; k < K; k++) {
            int d = __builtin_popcountll(h ^ centroids[k]);
            if (d < best) {
                best = d;
                arg = (int32_t)k;
            }
        }
        labels[l] = arg;
    }
}
