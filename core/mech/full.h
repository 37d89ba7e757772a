/*
 * full.h — FullAttention pieces that other mechanisms reuse
 * (conditional_full runs it below its length limit).
 */
#ifndef ATTN_MECH_FULL_H
#define ATTN_MECH_FULL_H

#include "attn_internal.h"

typedef struct attn_full_cfg {
    float softmax_temp; /* 0: 1/sqrt(E) */
} attn_full_cfg;

/* Reads softmax_temp / attention_dropout from a config whose table has them. */
attn_status attn__full_parse(const attn_cfg *cfg, attn_full_cfg *out);
/* The reference's `softmax_temp or 1/sqrt(E)`. */
float attn__temp(float softmax_temp, int64_t E);
/* The workspace contract of full (core/workspace.h): attn__full_workspace
 * sizes the scratch attn__full_forward needs for `a` (its shapes only, never
 * q/k/v) on `threads` threads, and the forward, called with a ctx of that
 * thread count, takes it from `ws` (at least that many bytes, ATTN_WS_ALIGN-
 * aligned, contents undefined) and allocates nothing. */
attn_status attn__full_workspace(const attn_qkv *a, int threads, size_t *bytes, attn_error *err);
attn_status attn__full_forward(float softmax_temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                               attn_error *err);
/* The two fast paths attn__full_forward chooses between (temp already
 * resolved), each with its own size: the fused kernel of full_fused.c, for D
 * a multiple of the vector width (attn__full_fused_ok), and blocked sgemm
 * calls (any shape). */
int attn__full_fused_ok(const attn_qkv *a);
attn_status attn__full_fused_ws(const attn_qkv *a, int threads, size_t *bytes, attn_error *err);
attn_status attn__full_fused(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                             attn_error *err);
attn_status attn__full_blas_ws(const attn_qkv *a, int threads, size_t *bytes, attn_error *err);
attn_status attn__full_blas(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                            attn_error *err);
/* The plain reference of both fast paths, and the one plain full attention
 * of the tests: softmax(temp q·k, masked keys -inf) v per (n, h, l) in
 * three loops, accumulated in double; a row with every key masked is NaN.
 * Not a forward (no mechanism runs it): it allocates its one row of S
 * doubles itself. */
attn_status attn__full_reference(float softmax_temp, const attn_qkv *a, float *out, attn_error *err);
/* The recurrent form (full_seq.c). */
extern const struct attn_seq_ops attn__seq_full;

#endif
