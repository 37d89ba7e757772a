/*
 * conv_direct.c — the direct stride-1 convolution of conv2d.h, built once per
 * instruction-set variant (core/cpu.c defines attn__conv2d_direct over the
 * chosen one).
 *
 * Where im2col + sgemm copies the input nine times (3x3) and the BLAS packs
 * it once more, this kernel reads it in place: the input is a zero-padded
 * copy (c_in planes of hp × wp), and the output is computed along the padded
 * rows, so that output pixel q = oy·wp + ox of the "wide" image sums
 *   Σ_ci Σ_ky Σ_kx  w[co][ci][ky][kx] · xp[ci·xs + q + ky·dil_h·wp + kx·dil_w]
 * — for every tap one contiguous run of input, a shifted vector load.  The
 * wp - w_out columns past each row's end are computed and dropped.
 *
 * Register blocking as in gemm.c: a tile of MR output channels × NV vectors
 * of consecutive wide pixels (AVX-512: 8 × 3·16, AVX2 and SSE2: 6 × 2·8 or
 * 2·4), the weights broadcast from their rows in place (nn.Conv2d's layout
 * is already (c_out, K) with K = (ci, ky, kx)), the input loaded from the
 * padded planes.  The tile is written through a small buffer that drops
 * the wide columns and applies bias, leaky ReLU and accumulation.
 *
 * Rounding: every output is one chain of fused multiply-adds in (ci, ky, kx)
 * order starting from zero, then + bias; it depends on nothing else (not on
 * the tile, the pixel range or the thread), so a split into tasks changes
 * no bit.  attn__conv2d_reference is the plain loop the tests compare with.
 */
#include "cpu.h"
#include "kernels.h"
#include "kernels/conv2d.h"
#include "kernels/conv_epilogue.h"
#include "variant.h"
#include "vec.h"

ATTN_CPU_DECLARE(ATTN_VARIANT)

#define VL ATTN_VLEN
#if VL == 16
#define MR 8
#define NV 3
#else
#define MR 6
#define NV 2
#endif
#define NR (NV * VL) /* wide pixels per tile; <= 65, what attn__conv2d_padded_slack allows */

typedef attn_vf vf;
#define AI ATTN_AI

/* The epilogue of one tile: rows [0, h) of tile (MR × NR) are output
 * channels co0 + r, its columns the wide pixels q0 .. q0 + n. */
static void store_tile(const attn_conv2d *c, const attn_conv2d_out *o, const float *tile, size_t co0, size_t h,
                       size_t q0, size_t n) {
    size_t wp = c->w_in + 2 * c->pad_w;
    for (size_t r = 0; r < h; r++) {
        const float *t = tile + r * NR;
        float bv = o->bias ? o->bias[co0 + r] : 0.0f;
        float *yc = o->y + (co0 + r) * o->ys;
        size_t oy = q0 / wp, ox = q0 % wp, i = 0;
        while (i < n) {
            size_t seg = wp - ox < n - i ? wp - ox : n - i;
            size_t valid = ox < c->w_out ? (c->w_out - ox < seg ? c->w_out - ox : seg) : 0;
            float *yr = yc + oy * o->yr + ox;
            const float *tr = t + i;
            conv_epilogue(yr, tr, valid, bv, o);
            i += seg;
            ox += seg;
            if (ox == wp) {
                ox = 0;
                oy++;
            }
        }
    }
}

/* One tile of mr channels (rows of w at stride K) over NR wide pixels from
 * q; kw_c / dw_c are the kernel width and dilation when known at compile
 * time (0: read kw / dw). */
AI void tile_t(const int mr, const int kw_c, const int dw_c, const attn_conv2d *c, const float *xp, size_t xs,
               const float *w, size_t q, float *tile) {
    const size_t kh = c->k_h, kw = kw_c ? (size_t)kw_c : c->k_w, dw = dw_c ? (size_t)dw_c : c->dil_w;
    const size_t wp = c->w_in + 2 * c->pad_w, dhw = c->dil_h * wp, K = c->c_in * kh * kw;
    vf acc[MR][NV];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[r][v] = attn_vsplat(0.0f);
    const float *xc = xp + q, *wc = w;
    for (size_t ci = 0; ci < c->c_in; ci++, xc += xs) {
        const float *xr = xc;
        for (size_t ky = 0; ky < kh; ky++, xr += dhw, wc += kw) {
#pragma GCC unroll 3
            for (size_t kx = 0; kx < kw; kx++) {
                vf b[NV];
#pragma GCC unroll 3
                for (int v = 0; v < NV; v++) b[v] = attn_vload(xr + kx * dw + (size_t)v * VL);
#pragma GCC unroll 12
                for (int r = 0; r < mr; r++) {
                    vf a = attn_vsplat(wc[(size_t)r * K + kx]);
#pragma GCC unroll 3
                    for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];
                }
            }
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) attn_vstore(tile + (size_t)r * NR + (size_t)v * VL, acc[r][v]);
}

/* The tile of h (<= MR) channels: an instantiation per row count, for the
 * common 3-wide undilated kernel and for any other. */
#define TILE_CASES(kw_c, dw_c)                                                                             \
    switch (h) {                                                                                           \
    case 1: tile_t(1, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 2: tile_t(2, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 3: tile_t(3, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 4: tile_t(4, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 5: tile_t(5, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    MORE_CASES(kw_c, dw_c)                                                                                 \
    default: tile_t(MR, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                        \
    }
#if MR == 12
#define MORE_CASES(kw_c, dw_c)                                                                             \
    case 6: tile_t(6, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 7: tile_t(7, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 8: tile_t(8, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 9: tile_t(9, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                          \
    case 10: tile_t(10, kw_c, dw_c, c, xp, xs, w, q, tile); break;                                        \
    case 11: tile_t(11, kw_c, dw_c, c, xp, xs, w, q, tile); break;
#else
#define MORE_CASES(kw_c, dw_c)
#endif

static void tile_3(size_t h, const attn_conv2d *c, const float *xp, size_t xs, const float *w, size_t q,
                   float *tile) {
    TILE_CASES(3, 1)
}
static void tile_any(size_t h, const attn_conv2d *c, const float *xp, size_t xs, const float *w, size_t q,
                     float *tile) {
    TILE_CASES(0, 0)
}

void ATTN_V(attn__conv2d_direct)(const attn_conv2d *c, const float *xp, size_t xs, const float *weight,
                                 const attn_conv2d_out *o, size_t co0, size_t co1, size_t q0, size_t q1) {
    const size_t K = c->c_in * c->k_h * c->k_w;
    const int three = c->k_w == 3 && c->dil_w == 1;
    float tile[MR * NR] __attribute__((aligned(64)));
    for (size_t co = co0; co < co1; co += MR) {
        size_t h = co1 - co < MR ? co1 - co : MR;
        const float *w = weight + co * K;
        for (size_t q = q0; q < q1; q += NR) {
            if (three)
                tile_3(h, c, xp, xs, w, q, tile);
            else
                tile_any(h, c, xp, xs, w, q, tile);
            store_tile(c, o, tile, co, h, q, q1 - q < NR ? q1 - q : NR);
        }
    }
}
