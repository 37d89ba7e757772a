/*
 * conv_wino.c — the 3×3 stride-1 convolution of conv2d.h by Winograd's
 * minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015), built once per instruction-set
 * variant (core/cpu.c defines attn__conv2d_wino over the chosen one).
 *
 * Each 2×2 block of outputs ("tile") at (2ty, 2tx) comes from the 4×4 patch d
 * of the padded input at the same corner:  Y = Aᵀ [ Σ_ci U_ci ⊙ (Bᵀ d_ci B) ] A
 * with U = G g Gᵀ the transformed 3×3 weights (attn__conv2d_wino_weights,
 * once per model), so the 36 multiplies per tile and channel pair become 16,
 * done as 16 matrix products (one per position ξ of the 4×4 transform):
 *   M[ξ] (c_out × tiles) = U[ξ] (c_out × c_in) · V[ξ] (c_in × tiles),
 * V and M stored channel-major ([ci][ξ][tile], [co][ξ][tile]) so that each
 * transform reads or writes one contiguous run per channel.
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 -1 -1]
 * One call handles the tiles of tile rows [ty0, ty1) (a block): the input
 * transform into V, attn__gemm for the 16 products into M, the output
 * transform with bias, leaky ReLU and accumulation (conv_epilogue.h).  The
 * transforms run in vectors over consecutive tiles of a row; even and odd
 * input columns are split with shuffles.
 *
 * Rounding differs from the direct sum (the transforms add and subtract
 * inputs and outputs in float; U is rounded once from a double product):
 * agreement with attn__conv2d_reference is to a few float ulps times the
 * magnitudes summed, as the tests check.  An output depends on its block's
 * size (the products' shapes) and on nothing else, so callers fix the
 * blocks by the shape, never by the thread count.
 */
#include "cpu.h"
#include "kernels.h"
#include "kernels/conv2d.h"
#include "kernels/conv_epilogue.h"
#include "variant.h"
#include "vec.h"

ATTN_CPU_DECLARE(ATTN_VARIANT)

#define VL ATTN_VLEN
typedef attn_vf vf;
#define AI ATTN_AI

#if VL == 16
#define EVEN 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define ODD 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#define ZIP_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define ZIP_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#elif VL == 8
#define EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define ODD 1, 3, 5, 7, 9, 11, 13, 15
#define ZIP_LO 0, 8, 1, 9, 2, 10, 3, 11
#define ZIP_HI 4, 12, 5, 13, 6, 14, 7, 15
#else
#define EVEN 0, 2, 4, 6
#define ODD 1, 3, 5, 7
#define ZIP_LO 0, 4, 1, 5
#define ZIP_HI 2, 6, 3, 7
#endif
#if defined(__clang__)
#define SHUFFLE(a, b, idx) __builtin_shufflevector(a, b, idx)
#else
#define SHUFFLE(a, b, idx) __builtin_shuffle(a, b, (attn_vi){idx})
#endif

/* e[k] = p[2k], o[k] = p[2k + 1] for k < VL. */
AI void split(const float *p, vf *e, vf *o) {
    vf a = attn_vload(p), b = attn_vload(p + VL);
    *e = SHUFFLE(a, b, EVEN);
    *o = SHUFFLE(a, b, ODD);
}

/* p[2k] = a[k], p[2k + 1] = b[k] for k < VL. */
AI void zip(vf a, vf b, float *p) {
    attn_vstore(p, SHUFFLE(a, b, ZIP_LO));
    attn_vstore(p + VL, SHUFFLE(a, b, ZIP_HI));
}

/* V[ci][ξ][n], n = (ty - ty0)·tw + tx, rows ldv apart (a channel's 16
 * rows together): Bᵀ d B of every tile, VL tiles at a time (the last group
 * of a tile row writes past it; the next row, or ldv's padding, takes
 * that). */
static void input_transform(const attn_conv2d *c, const float *xp, size_t xs, size_t ty0, size_t ty1, size_t tw,
                            float *V, size_t ldv) {
    size_t wp = c->w_in + 2 * c->pad_w, xi = ldv;
    for (size_t ci = 0; ci < c->c_in; ci++) {
        const float *plane = xp + ci * xs;
        float *v = V + ci * 16 * ldv;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const float *r = plane + 2 * ty * wp;
            size_t n0 = (ty - ty0) * tw;
            for (size_t tx = 0; tx < tw; tx += VL) {
                /* e[i][..] = (d B) of row i: from its columns 2tx .. 2tx+3,
                 * d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
                vf e[4][4];
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    vf a0, a1, a2, a3;
                    split(r + (size_t)i * wp + 2 * tx, &a0, &a1);
                    split(r + (size_t)i * wp + 2 * tx + 2, &a2, &a3);
                    e[i][0] = a0 - a2;
                    e[i][1] = a1 + a2;
                    e[i][2] = a2 - a1;
                    e[i][3] = a1 - a3;
                }
                /* Bᵀ (d B): the same across the rows */
                float *dst = v + n0 + tx;
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    attn_vstore(dst + (size_t)(0 + j) * xi, e[0][j] - e[2][j]);
                    attn_vstore(dst + (size_t)(4 + j) * xi, e[1][j] + e[2][j]);
                    attn_vstore(dst + (size_t)(8 + j) * xi, e[2][j] - e[1][j]);
                    attn_vstore(dst + (size_t)(12 + j) * xi, e[1][j] - e[3][j]);
                }
            }
        }
    }
}

/* Aᵀ m A of every tile of output channel co (M[co][ξ][n], rows ldm apart),
 * written through the epilogue (rows past h_out and columns past w_out
 * dropped). */
static void output_transform(const attn_conv2d *c, const float *M, size_t ldm, size_t co, size_t ty0,
                             size_t ty1, size_t tw, const attn_conv2d_out *o) {
    size_t xi = ldm;
    const float *m = M + co * 16 * ldm;
    float bv = o->bias ? o->bias[co] : 0.0f;
    float *yc = o->y + co * o->ys;
    float row[2][2 * VL];
    for (size_t ty = ty0; ty < ty1; ty++) {
        size_t n0 = (ty - ty0) * tw, oy = 2 * ty;
        for (size_t tx = 0; tx < tw; tx += VL) {
            /* Aᵀ m: rows m0 + m1 + m2 and m1 - m2 - m3, column by column */
            const float *p = m + n0 + tx;
            vf s0[4], s1[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                vf a = attn_vload(p + (size_t)j * xi), b = attn_vload(p + (size_t)(4 + j) * xi);
                vf cc = attn_vload(p + (size_t)(8 + j) * xi), d = attn_vload(p + (size_t)(12 + j) * xi);
                s0[j] = a + b + cc;
                s1[j] = b - cc - d;
            }
            /* (Aᵀ m) A: the same across the columns, the two outputs of a
             * row interleaved */
            zip(s0[0] + s0[1] + s0[2], s0[1] - s0[2] - s0[3], row[0]);
            zip(s1[0] + s1[1] + s1[2], s1[1] - s1[2] - s1[3], row[1]);
            size_t ox = 2 * tx, n = c->w_out - ox < 2 * VL ? c->w_out - ox : 2 * VL;
            for (size_t i = 0; i < 2 && oy + i < c->h_out; i++)
                conv_epilogue(yc + (oy + i) * o->yr + ox, row[i], n, bv, o);
        }
    }
}

attn_status ATTN_V(attn__conv2d_wino)(const attn_conv2d *c, const float *xp, size_t xs, const float *u,
                                      const attn_conv2d_out *o, size_t ty0, size_t ty1, float *work) {
    size_t tw = attn__conv2d_wino_tiles_w(c), nb = (ty1 - ty0) * tw, ld = attn__conv2d_wino_ld(c, ty1 - ty0);
    float *V = work, *M = work + 16 * c->c_in * ld;
    input_transform(c, xp, xs, ty0, ty1, tw, V, ld);
    for (size_t k = 0; k < 16; k++)
        ATTN_TRY(attn__gemm(0, 0, c->c_out, nb, c->c_in, 1.0f, u + k * c->c_out * c->c_in, c->c_in,
                            V + k * ld, 16 * ld, 0.0f, M + k * ld, 16 * ld));
    for (size_t co = 0; co < c->c_out; co++) output_transform(c, M, ld, co, ty0, ty1, tw, o);
    return ATTN_OK;
}
