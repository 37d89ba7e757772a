/*
 * half_ref.c — the plain definitions of the FP16 / BF16 conversions
 * (kernels/half.h): scalar, one branch per case, written for reading.  The
 * variants in kernels/half.c must agree with these bit for bit.
 */
#include "half.h"

#include <string.h>

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float attn__f16_value(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return float_of(s | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0)); /* inf; NaN made quiet */
    if (e) return float_of(s | ((e + 112) << 23) | (m << 13));
    if (!m) return float_of(s);
    e = 113; /* a subnormal: normalise */
    while (!(m & 0x400u)) {
        m <<= 1;
        e--;
    }
    return float_of(s | (e << 23) | ((m & 0x3ffu) << 13));
}

uint16_t attn__f16_of(float f) {
    uint32_t x = bits_of(f), ax = x & 0x7fffffffu;
    uint16_t s = (uint16_t)((x >> 16) & 0x8000u);
    if (ax > 0x7f800000u) return (uint16_t)(s | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN, quiet */
    if (ax >= 0x477ff000u) return (uint16_t)(s | 0x7c00u); /* >= 65520 rounds to infinity */
    if (ax >= 0x38800000u) {                                /* a normal FP16 */
        uint32_t r = (ax - (112u << 23)) >> 13, rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++; /* may carry into the exponent: right */
        return (uint16_t)(s | r);
    }
    uint32_t e = ax >> 23, shift = 126 - e; /* subnormal: units of 2^-24 */
    if (e == 0 || shift > 24) return s;     /* below 2^-25: 0 */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u, r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(s | r);
}

uint16_t attn__bf16_of(float f) {
    uint32_t x = bits_of(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN, quiet */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void attn__f16_to_f32_ref(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = attn__f16_value(in[i]);
}
void attn__f32_to_f16_ref(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = attn__f16_of(in[i]);
}
void attn__bf16_to_f32_ref(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_of((uint32_t)in[i] << 16);
}
void attn__f32_to_bf16_ref(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = attn__bf16_of(in[i]);
}
