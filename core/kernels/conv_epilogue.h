/*
 * conv_epilogue.h — the last step of the convolution kernels built per
 * variant (conv_wino.c): a run of computed outputs t[0 .. n)
 * becomes y[0 .. n) (+)= act(t + bias) as attn_conv2d_out says, in vectors
 * of ATTN_VLEN (vec.h).  Included by variant sources only.
 */
#ifndef ATTN_CONV_EPILOGUE_H
#define ATTN_CONV_EPILOGUE_H

#include "kernels/conv2d.h"
#include "vec.h"

#include <string.h>

typedef int attn_vi __attribute__((vector_size(ATTN_VLEN * sizeof(int))));

/* A select, not a branch, for the leaky ReLU: activation signs are
 * unpredictable.  The flags are constants in each instantiation. */
ATTN_AI void conv_epilogue_t(float *restrict y, const float *restrict t, size_t n, float bv, int leaky,
                             float slope, int accumulate) {
    const size_t VL = ATTN_VLEN;
    attn_vf b = attn_vsplat(bv), s = attn_vsplat(slope);
    for (size_t j = 0;; j += VL) {
        attn_vf v, l, old;
        float part[ATTN_VLEN];
        int whole = j + VL <= n;
        if (!whole && j >= n) break;
        if (whole) {
            v = attn_vload(t + j);
            if (accumulate) old = attn_vload(y + j);
        } else { /* the last n - j (< VL) go through a vector's worth of floats */
            memcpy(part, t + j, (n - j) * sizeof *part);
            v = attn_vload(part);
            if (accumulate) {
                memcpy(part, y + j, (n - j) * sizeof *part);
                old = attn_vload(part);
            }
        }
        v += b;
        if (leaky) { /* v > 0 ? v : v·slope as a bit select (NaN: v·slope, NaN too) */
            l = v * s;
            attn_vi m = v > attn_vsplat(0.0f);
            v = (attn_vf)(((attn_vi)v & m) | ((attn_vi)l & ~m));
        }
        if (accumulate) v += old;
        if (whole) {
            attn_vstore(y + j, v);
        } else {
            attn_vstore(part, v);
            memcpy(y + j, part, (n - j) * sizeof *part);
            break;
        }
    }
}

static inline void conv_epilogue(float *restrict y, const float *restrict t, size_t n, float bv,
                                 const attn_conv2d_out *o) {
    if (o->leaky && o->accumulate)
        conv_epilogue_t(y, t, n, bv, 1, o->slope, 1);
    else if (o->leaky)
        conv_epilogue_t(y, t, n, bv, 1, o->slope, 0);
    else if (o->accumulate)
        conv_epilogue_t(y, t, n, bv, 0, o->slope, 1);
    else
        conv_epilogue_t(y, t, n, bv, 0, o->slope, 0);
}

#endif
