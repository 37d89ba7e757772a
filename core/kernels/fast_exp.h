/*
 * fast_exp.h — the vectorisable exp of the softmax loops, shared by
 * kernels/math.c and the fused attention kernel (mech/full_fused.c).
 */
#ifndef ATTN_FAST_EXP_H
#define ATTN_FAST_EXP_H

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

#endif
