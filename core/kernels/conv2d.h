/*
 * conv2d.h — torch.nn.functional.conv2d for one image, groups = 1, zero
 * padding, any kernel size, stride and dilation, optional bias.
 *
 * Shapes (row-major):
 *   x      (c_in,  h_in,  w_in)       one image of an NCHW batch
 *   weight (c_out, c_in, k_h, k_w)    as nn.Conv2d stores it
 *   bias   (c_out) or NULL
 *   y      (c_out, h_out, w_out)      h_out = (h_in + 2 pad_h - dil_h (k_h-1) - 1) / stride_h + 1
 *
 * The work is split by output rows so that callers can spread one image over
 * several threads: each call computes rows [row0, row1) of every output
 * channel and touches nothing else of y.  It is an im2col of those rows
 * followed by one sgemm; a 1x1, stride-1, unpadded convolution skips the
 * im2col and needs no workspace.  The kernel never allocates and never fails:
 * attn__conv2d_prepare and attn__conv2d_workspace do the checking.
 */
#ifndef ATTN_CONV2D_H
#define ATTN_CONV2D_H

#include "kernels/kernels.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct attn_conv2d {
    /* set by the caller */
    size_t c_in, c_out;
    size_t h_in, w_in;
    size_t k_h, k_w;
    size_t stride_h, stride_w; /* >= 1 */
    size_t pad_h, pad_w;       /* zeros on both sides */
    size_t dil_h, dil_w;       /* >= 1 (nn.Conv2d's default is 1) */
    /* set by attn__conv2d_prepare */
    size_t h_out, w_out;
} attn_conv2d;

/* Fills h_out/w_out as torch computes them.  Returns false, with a static
 * reason in *why (may be NULL), where torch refuses: a zero channel count,
 * kernel, stride or dilation, or a kernel larger than the padded input. */
bool attn__conv2d_prepare(attn_conv2d *c, const char **why);

/* Floats of workspace one call over `rows` output rows needs (0 when no
 * im2col is needed); false when that size overflows. */
bool attn__conv2d_workspace(const attn_conv2d *c, size_t rows, size_t *floats);

/* Output rows [row0, row1) of y = conv2d(x, weight) + bias; with accumulate
 * the result is added to what y holds (a fused residual), otherwise y is
 * overwritten.  `work` holds attn__conv2d_workspace(c, row1 - row0) floats.
 * Fails only as attn__gemm does (ATTN_E_OVERFLOW). */
ATTN_MUST_USE attn_status attn__conv2d(const attn_conv2d *c, const float *x, const float *weight, const float *bias,
                                       float *y, bool accumulate, float *work, size_t row0, size_t row1);

/* The plain reference of attn__conv2d: the whole output y (c_out, h_out,
 * w_out) = conv2d(x, weight) + bias (bias may be NULL) as direct loops
 * accumulated in double; no workspace.  The tests compare the fast path
 * against it. */
void attn__conv2d_reference(const attn_conv2d *c, const float *x, const float *weight, const float *bias,
                            float *y);

/* ---- a zero-padded input, and the fused output ----
 *
 * The Winograd path below reads its input zero-padded: xp holds c_in planes
 * of hp × wp floats (hp = h_in + 2 pad_h, wp = w_in + 2 pad_w; pixel (iy,
 * ix) of x at xp[ci·xs + (iy + pad_h)·wp + ix + pad_w], every other float of
 * a plane 0), plane stride xs >= hp·wp, and attn__conv2d_padded_slack(c)
 * more readable floats after the last plane (zeros: they reach only dropped
 * outputs).  Its outputs go through attn_conv2d_out: v = conv + bias (bias
 * may be NULL); then, with leaky, v = v > 0 ? v : v·slope; then
 * y = accumulate ? y + v : v, at y[co·ys + oy·yr + ox] (yr >= w_out,
 * ys >= h_out·yr: a dense image, or the interior of another padded buffer);
 * nothing but real output pixels is written. */
typedef struct attn_conv2d_out {
    float *y;
    size_t ys, yr; /* plane and row strides of y, in floats */
    const float *bias;
    int leaky, accumulate;
    float slope;
} attn_conv2d_out;

/* Floats of one padded input image, slack excluded (c_in·hp·wp), and its
 * plane size hp·wp; false on overflow. */
bool attn__conv2d_padded_size(const attn_conv2d *c, size_t *plane, size_t *image);
/* The floats past the last plane that the Winograd kernel may read: wp + 64. */
size_t attn__conv2d_padded_slack(const attn_conv2d *c);

/* ---- Winograd F(2×2, 3×3) (kernels/conv_wino.c) ----
 *
 * For 3×3 kernels, stride 1, no dilation (attn__conv2d_wino_ok), on a
 * padded input: outputs in 2×2 tiles, tw × th of them
 * (ceil(w_out / 2) × ceil(h_out / 2)).  The weights are transformed once
 * (attn__conv2d_wino_weights: u, 16·c_out·c_in floats, computed in double).
 * One call computes every output channel of tile rows [ty0, ty1) (output
 * rows 2ty0 .. 2ty1, those past h_out dropped) through `o`, with
 * attn__conv2d_wino_work(c, ty1 - ty0) floats of `work`;
 * an output depends on ty1 - ty0 (the products' shapes), so callers fix the
 * blocks by the shape.  Fails only as attn__gemm does. */
bool attn__conv2d_wino_ok(const attn_conv2d *c);
size_t attn__conv2d_wino_tiles_w(const attn_conv2d *c);
size_t attn__conv2d_wino_tiles_h(const attn_conv2d *c);
/* The row stride of the transformed blocks: rows · tw + 16, a multiple of 16. */
size_t attn__conv2d_wino_ld(const attn_conv2d *c, size_t rows);
/* Floats of work for blocks of `rows` tile rows; false on overflow. */
bool attn__conv2d_wino_work(const attn_conv2d *c, size_t rows, size_t *floats);
void attn__conv2d_wino_weights(const attn_conv2d *c, const float *weight, float *u);
ATTN_MUST_USE attn_status attn__conv2d_wino(const attn_conv2d *c, const float *xp, size_t xs, const float *u,
                                            const attn_conv2d_out *o, size_t ty0, size_t ty1, float *work);

#endif
