/*
 * fast_exp.h — the vectorisable exp of the softmax loops, shared by
 * kernels/math.c and the fused attention kernel (mech/full_fused.c).
 */
#ifndef ATTN_FAST_EXP_H
#define ATTN_FAST_EXP_H

#include <stdint.h>
#include <string.h>

/* The reduction and the polynomial, on float or on a vector of floats
 * (the same operations in the same order, so the same rounding lane by
 * lane): from the clamped xc, t = xc·log2(e) + magic (its low bits are
 * k = round(xc·log2 e)), and p ≈ exp(xc - k·ln 2); p comes in holding
 * ATTN_FAST_EXP_C6 (a float, or every lane).  kernels/vec_math.h's vexp is
 * the vector form. */
#define ATTN_FAST_EXP_C6 1.9875691500e-4f
#define ATTN_FAST_EXP_MAGIC 12582912.0f /* 1.5·2^23: adding it rounds to an integer */
#define ATTN_FAST_EXP_CORE(xc, t, p)                                                                       \
    do {                                                                                                   \
        t = (xc) * 1.44269504088896341f + ATTN_FAST_EXP_MAGIC;                                            \
        __typeof__(t) k_ = t - ATTN_FAST_EXP_MAGIC;                                                        \
        __typeof__(t) r_ = (xc) - k_ * 0.693359375f;                                                      \
        r_ = r_ - k_ * -2.12194440e-4f;                                                                    \
        p = p * r_ + 1.3981999507e-3f;                                                                     \
        p = p * r_ + 8.3334519073e-3f;                                                                     \
        p = p * r_ + 4.1665795894e-2f;                                                                     \
        p = p * r_ + 1.6666665459e-1f;                                                                     \
        p = p * r_ + 5.0000001201e-1f;                                                                     \
        p = p * r_ * r_ + r_ + 1.0f;                                                                       \
    } while (0)

/* 2^k from t = k + ATTN_FAST_EXP_MAGIC (k in [-126, 127], held in t's low
 * mantissa bits), built in the exponent bits. */
static inline float fast_exp_scale(float t) {
    const float magic = ATTN_FAST_EXP_MAGIC;
    int32_t tb, mb;
    memcpy(&tb, &t, 4);
    memcpy(&mb, &magic, 4);
    int32_t bits = (int32_t)((uint32_t)(tb - mb + 127) << 23);
    float scale;
    memcpy(&scale, &bits, 4);
    return scale;
}

/* exp for the softmax hot loops: Cody–Waite reduction to r in about
 * [-ln2/2, ln2/2], a degree-6 polynomial (Cephes' expf coefficients), and
 * 2^k assembled in the exponent bits.  Max relative error 1.2e-7 against
 * libm over [-87, 88]; below -87 the result is exactly 0 so that masked
 * (-inf) scores contribute nothing.  Written without calls or casts of
 * out-of-range floats so that the loops below vectorise (and stay free of
 * undefined behaviour on NaN). */
static inline float fast_exp(float x) {
    float xc = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float t, p = ATTN_FAST_EXP_C6;
    ATTN_FAST_EXP_CORE(xc, t, p);
    return x < -87.0f ? 0.0f : p * fast_exp_scale(t);
}

/* 2^r for r in [-1/2, 1/2]: a degree-6 polynomial in Horner form (a
 * relative-error near-minimax fit made for this file: with float
 * arithmetic fast_exp2's relative error is 8e-8 with fused multiply-adds,
 * 1.0e-7 without, against 1.2e-7 for fast_exp; tests/unit/test_cpu.c).
 * On float or on a vector of floats, like ATTN_FAST_EXP_CORE. */
#define ATTN_FAST_EXP2_POLY(r, p)                                                                          \
    do {                                                                                                   \
        p = (r) * 1.534581243e-4f + 1.339993090e-3f;                                                       \
        p = p * (r) + 9.618489072e-3f;                                                                     \
        p = p * (r) + 5.550328642e-2f;                                                                     \
        p = p * (r) + 2.402264625e-1f;                                                                     \
        p = p * (r) + 6.931471825e-1f;                                                                     \
        p = p * (r) + 1.0f;                                                                                \
    } while (0)

/* 2^x for the fused attention kernel's softmax, whose scores come scaled by
 * log2(e) so that the exponential needs no reduction by ln 2: k = x rounded
 * to the nearest integer (ties to even, by the magic constant), r = x - k
 * exactly, p = 2^r by the polynomial, and 2^k put in the exponent bits.
 * Below -126 the result is exactly 0 (a -inf score: nothing); the clamp at
 * 127 only keeps larger x finite (the kernel passes x <= 0: a score minus
 * its running maximum).  kernels/vec_math.h's vexp2 gives the same bits. */
static inline float fast_exp2(float x) {
    const float magic = ATTN_FAST_EXP_MAGIC;
    float xc = x < -126.0f ? -126.0f : x > 127.0f ? 127.0f : x;
    float t = xc + magic, k = t - magic, r = xc - k, p;
    ATTN_FAST_EXP2_POLY(r, p);
    return x < -126.0f ? 0.0f : p * fast_exp_scale(t);
}

#endif
