/*
 * half.c — the FP16 / BF16 conversions of kernels/half.h, built once per
 * instruction-set variant (kernels/variant.h).  AVX-512 converts 16 FP16
 * values per instruction (vcvtph2ps / vcvtps2ph on zmm), AVX2 8 (F16C);
 * the generic variant, and every variant's tail, runs branch-free integer
 * code that the compiler vectorises.  BF16 is shifts and an integer add in
 * every variant.  All agree bit for bit with kernels/half_ref.c
 * (tests/unit/test_half.c checks every FP16 pattern on every variant).
 */
#include "cpu.h"
#include "half.h"
#include "variant.h"

#include <string.h>

#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>
#endif

ATTN_CPU_DECLARE(ATTN_VARIANT)

static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* FP16 -> float32 without branches: move exponent and mantissa into place,
 * rebias; infinities and NaN get the all-ones exponent (NaN quiet);
 * subnormals are normalised by a float subtraction (exact). */
static inline float h2f(uint16_t h) {
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13, ex = o & 0x0f800000u;
    o += 112u << 23;
    uint32_t inf_nan = (o + (112u << 23)) | ((h & 0x3ffu) ? 0x400000u : 0u);
    uint32_t den = bits_of(float_of(o + (1u << 23)) - float_of(113u << 23));
    o = ex == 0x0f800000u ? inf_nan : ex == 0 ? den : o;
    return float_of(o | (uint32_t)(h & 0x8000u) << 16);
}

/* float32 -> FP16, nearest even, without branches (F. Giesen's method):
 * subnormal results by a float addition of 0.5, which rounds at 2^-24;
 * normal ones by adding half an FP16 ulp (minus one unless the kept
 * mantissa is odd) and truncating. */
static inline uint16_t f2h(float v) {
    uint32_t x = bits_of(v), sign = x & 0x80000000u, f = x ^ sign;
    uint32_t inf_nan = f > 0x7f800000u ? (0x7e00u | ((f >> 13) & 0x3ffu)) : 0x7c00u;
    uint32_t den = bits_of(float_of(f) + float_of(126u << 23)) - (126u << 23);
    uint32_t nor = (f - (112u << 23) + 0xfffu + ((f >> 13) & 1u)) >> 13;
    uint32_t o = f >= 0x47800000u ? inf_nan : f < 0x38800000u ? den : nor;
    return (uint16_t)(o | sign >> 16);
}

void ATTN_V(attn__f16_to_f32)(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(in + i))));
#elif defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(in + i))));
#endif
#pragma omp simd
    for (size_t j = i; j < n; j++) out[j] = h2f(in[j]);
}

void ATTN_V(attn__f32_to_f16)(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(out + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
#endif
#pragma omp simd
    for (size_t j = i; j < n; j++) out[j] = f2h(in[j]);
}

void ATTN_V(attn__bf16_to_f32)(const uint16_t *in, float *out, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = float_of((uint32_t)in[i] << 16);
}

void ATTN_V(attn__f32_to_bf16)(const float *in, uint16_t *out, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint32_t x = bits_of(in[i]);
        uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16, q = (x >> 16) | 0x40u;
        out[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? q : r);
    }
}
