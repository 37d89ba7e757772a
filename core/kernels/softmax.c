/*
 * softmax.c — the exp loops of the softmax and of elu + 1, rounding as
 * torch's CPU kernels do where it matters (max-subtracted softmax).  Built
 * once per instruction-set variant (kernels/variant.h); core/cpu.c defines
 * attn__softmax_row, attn__exp_sub_sum and attn__elu1 over the chosen one.
 * The sum's order follows the variant's vector width, so variants agree to
 * rounding, not bit for bit.
 */
#include "cpu.h"
#include "kernels.h"
#include "fast_exp.h"
#include "variant.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

ATTN_CPU_DECLARE(ATTN_VARIANT)

float ATTN_V(attn__exp_sub_sum)(float *x, size_t n, float m) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) {
        float e = fast_exp(x[i] - m);
        x[i] = e;
        sum += e;
    }
    return sum;
}

void ATTN_V(attn__softmax_row)(float *x, size_t n) {
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
    float inv = 1.0f / ATTN_V(attn__exp_sub_sum)(x, n, mx);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void ATTN_V(attn__elu1)(float *x, size_t n) {
    /* elu(x) + 1 = x + 1 above 0 and exp(x) below: the vectorised exp. */
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] + 1.0f : fast_exp(x[i]);
}

