/*
 * image_ops.h — elementwise and per-pixel pieces of channel-first (NCHW)
 * image blocks: the channel layer norm of lucidrains' convolutional
 * feed-forwards (their leaky ReLU is fused into the convolution's epilogue,
 * conv2d.h).  It neither allocates nor fails.
 */
#ifndef ATTN_IMAGE_OPS_H
#define ATTN_IMAGE_OPS_H

#include <stddef.h>

/* ChanLayerNorm of one image, as axial_attention 0.6.1 defines it:
 *   y = (x - mean) / (std + eps) * g + b
 * with mean and the biased std taken over the channels of each pixel; note
 * eps is added to the std, not inside the square root as nn.LayerNorm does.
 * Shapes: n pixels of c channels, channel k of pixel p at x[k·xs + p] and
 * y[k·ys + p] (a dense image: xs = ys = hw; y may be x with ys = xs, or the
 * interior of a padded plane); g, b (c). */
void attn__chan_layernorm(const float *x, size_t xs, size_t c, size_t n, const float *g, const float *b,
                          float eps, float *y, size_t ys);

#endif
