/*
 * vec_math.h — lane-wise selects, max / min and the softmax's exp on the
 * vectors of vec.h, for the sources built once per variant (the fused full
 * kernel, the softmax rows).  vexp is kernels/fast_exp.h's fast_exp
 * operation for operation, so a loop over vexp rounds as the scalar loop
 * does when both are built alike (with or without -ffp-contract).
 */
#ifndef ATTN_VEC_MATH_H
#define ATTN_VEC_MATH_H

#include "kernels/fast_exp.h"
#include "kernels/vec.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

#define VLEN ATTN_VLEN
typedef attn_vf vf;
#define AI ATTN_AI
#define vload attn_vload
#define vstore attn_vstore
#define vsplat attn_vsplat

/* Lane-wise selects (C has no vector ?:): the comparison's all-ones lanes
 * pick a. */
typedef int32_t vi __attribute__((vector_size(VLEN * sizeof(int32_t))));
AI vf vselect(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* max(a, b) = `a > b ? a : b` and min(a, b) = `a < b ? a : b` (a NaN a
 * gives b), as the x86 max/min instructions define them. */
#if VLEN == 16
AI vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
AI vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
#elif VLEN == 8
AI vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
AI vf vmin(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
#elif defined(__SSE__)
AI vf vmax(vf a, vf b) { return (vf)_mm_max_ps((__m128)a, (__m128)b); }
AI vf vmin(vf a, vf b) { return (vf)_mm_min_ps((__m128)a, (__m128)b); }
#else
AI vf vmax(vf a, vf b) { return vselect(a > b, a, b); }
AI vf vmin(vf a, vf b) { return vselect(a < b, a, b); }
#endif

/* kernels/fast_exp.h's fast_exp on a vector, operation for operation (the
 * same rounding, lane by lane): the clamp as max/min keeps NaN, as its
 * selects do. */
AI vf vexp(vf x) {
    const float magic = ATTN_FAST_EXP_MAGIC;
    const vf lo = vsplat(-87.0f), hi = vsplat(88.0f);
    vf xc = vmin(hi, vmax(lo, x));
    vf t, p = vsplat(ATTN_FAST_EXP_C6);
    ATTN_FAST_EXP_CORE(xc, t, p);
    int32_t mb;
    memcpy(&mb, &magic, 4);
    vi bits = (vi)(((vi)t - mb + 127) << 23);
#if VLEN == 16
    /* below -87: exactly 0 (masked lanes of the product) */
    return (vf)_mm512_maskz_mul_ps(_mm512_cmp_ps_mask((__m512)x, (__m512)lo, _CMP_NLT_UQ), (__m512)p,
                                   (__m512)bits);
#else
    return (vf)((vi)(p * (vf)bits) & ~(vi)(x < lo));
#endif
}

/* kernels/fast_exp.h's fast_exp2 on a vector, bit for bit, for x <= 127
 * (NaN stays NaN, below -126 gives 0).  With AVX-512 the rounding and the
 * scaling by 2^k are one instruction each (roundscale, scalef: the same
 * integer k, the same exact product). */
AI vf vexp2(vf x) {
    const vf lo = vsplat(-126.0f);
#if VLEN == 16
    vf k = (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = x - k, p;
    ATTN_FAST_EXP2_POLY(r, p);
    /* lanes below -126 (and -inf, whose r is NaN): 0; NaN lanes: NaN */
    return (vf)_mm512_maskz_scalef_ps(_mm512_cmp_ps_mask((__m512)x, (__m512)lo, _CMP_NLT_UQ), (__m512)p,
                                      (__m512)k);
#else
    const float magic = ATTN_FAST_EXP_MAGIC;
    vf xc = vmin(vsplat(127.0f), vmax(lo, x));
    vf t = xc + magic, k = t - magic, r = xc - k, p;
    ATTN_FAST_EXP2_POLY(r, p);
    int32_t mb;
    memcpy(&mb, &magic, 4);
    vi bits = (vi)(((vi)t - mb + 127) << 23);
    return (vf)((vi)(p * (vf)bits) & ~(vi)(x < lo));
#endif
}

/* vexp2 for the fused kernel's exponential pass, whose x is a score minus
 * its column's maximum: x <= 0, -inf or NaN.  The same bits as vexp2 on
 * [-126, 0], 0 for -inf and below -126.5, NaN for NaN; on [-126.5, -126)
 * a subnormal (at most 2^-126, vexp2's 0 there).  Without AVX-512 this is
 * three operations fewer than vexp2: no upper clamp (x <= 0), and the
 * clamp at -127 makes 2^k's exponent bits 0 (the product exactly 0)
 * instead of a compare and a mask.  With AVX-512, vexp2 itself. */
AI vf vexp2_nonpos(vf x) {
#if VLEN == 16
    return vexp2(x);
#else
    const float magic = ATTN_FAST_EXP_MAGIC;
    /* vmax(lo, x): NaN stays NaN (the max of x86 returns its second operand) */
    vf xc = vmax(vsplat(-127.0f), x);
    vf t = xc + magic, k = t - magic, r = xc - k, p;
    ATTN_FAST_EXP2_POLY(r, p);
    int32_t mb;
    memcpy(&mb, &magic, 4);
    vi bits = (vi)(((vi)t + (127 - mb)) << 23);
    return p * (vf)bits;
#endif
}

#endif
