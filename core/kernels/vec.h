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

#endif
