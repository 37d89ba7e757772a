/*
 * vec.h — the float vector type of the hand-blocked kernels (mech/full_fused.c,
 * kernels/gemm.c), in GCC vector extensions: ATTN_VLEN floats, 16 with
 * AVX-512, 8 with AVX, else 4 (each file using it is built once per
 * variant, core/cpu.c).  Loads and stores are unaligned (memcpy); a scalar
 * operand is broadcast.  Files using it are built with
 * -ffp-contract=fast so that `acc += a * b` becomes a fused multiply-add.
 */
#ifndef ATTN_VEC_H
#define ATTN_VEC_H

#include <string.h>

#if defined(__AVX512F__)
#define ATTN_VLEN 16
#elif defined(__AVX__)
#define ATTN_VLEN 8
#else
#define ATTN_VLEN 4
#endif
#if defined(__SSE__)
#include <immintrin.h>
#endif

typedef float attn_vf __attribute__((vector_size(ATTN_VLEN * sizeof(float))));

#define ATTN_AI static inline __attribute__((always_inline))

ATTN_AI attn_vf attn_vload(const float *p) {
    attn_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
ATTN_AI void attn_vstore(float *p, attn_vf v) { memcpy(p, &v, sizeof v); }
/* A broadcast: every lane x (not `(attn_vf){0} + x`, which costs an add per
 * splat, keeps a zero register live, and turns -0 into +0). */
ATTN_AI attn_vf attn_vsplat(float x) {
#if ATTN_VLEN == 16
    return (attn_vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
#elif ATTN_VLEN == 8
    return (attn_vf){x, x, x, x, x, x, x, x};
#else
    return (attn_vf){x, x, x, x};
#endif
}

#if defined(__AVX512F__)
/* In-register transpose of 16 rows of 16 floats: r[i][j] -> r[j][i] (the
 * packing of kernels/gemm.c and the query transposes of mech/full_fused.c). */
ATTN_AI void attn_tr16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 16
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
        }
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    }
}
#endif

#if defined(__AVX__) && !defined(__AVX512F__)
/* In-register transpose of 8 rows of 8 floats: r[i][j] -> r[j][i] (the
 * query transposes of mech/full_fused.c with AVX2). */
ATTN_AI void attn_tr8(__m256 r[8]) {
    __m256 t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 2; i++) {
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 8
    for (int j = 0; j < 4; j++) {
        t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
        t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) r[j] = t[j];
}
#elif defined(__SSE__) && !defined(__AVX__)
/* In-register transpose of 4 rows of 4 floats (SSE). */
ATTN_AI void attn_tr4(__m128 r[4]) { _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); }
#endif

#endif
