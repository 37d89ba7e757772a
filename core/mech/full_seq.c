/*
 * full_seq.c — FullAttention as a sequence: fast-transformers'
 * RecurrentFullAttention (self) and RecurrentCrossFullAttention (cross).
 *
 * Self: the state is every key and value so far, per stream (N, t, H·E)
 * and (N, t, H·D) row caches.  A step appends the T new keys/values and
 * runs the blocked softmax kernel of full.c for the T new queries against
 * the cache directly (nothing of the past is recomputed): with T == 1 no
 * mask, with T > 1 the (T, t+T) causal mask of the new rows.
 * Cross: the memory's keys, values (N, S, H, ·) and key_lengths are stored
 * once; a step is the kernel for the new queries against them.
 * A step has no caller's workspace (attn_seq_step): it allocates the
 * kernel's (attn__full_workspace) with the call, as it does the mask.
 */
#include "mech/full.h"
#include "seq_internal.h"
#include "workspace.h"

#include <stdlib.h>
#include <string.h>

enum { KEYS, VALUES, KEY_LENGTHS };

static unsigned full_kinds(const attn_model *m, const void *state, const char **why) {
    return ATTN_SEQ_SELF | ATTN_SEQ_CROSS;
}

static attn_status full_layout(attn_seq *s, attn_error *err) {
    const size_t H = (size_t)s->dims[0], E = (size_t)s->dims[1], D = (size_t)s->dims[2];
    attn_status st;
    if (s->kind == ATTN_SEQ_SELF)
        return (st = attn__seq_buf_add(s, "keys", ATTN_F32, true, H * E, err)) ? st
               : attn__seq_buf_add(s, "values", ATTN_F32, true, H * D, err);
    size_t S = (size_t)s->dims[3], ke, ve;
    if (!attn__mul(S, H * E, &ke) || !attn__mul(S, H * D, &ve))
        return attn__err(err, ATTN_E_OVERFLOW, "full: memory size overflows");
    if ((st = attn__seq_buf_add(s, "keys", ATTN_F32, false, ke, err)) ||
        (st = attn__seq_buf_add(s, "values", ATTN_F32, false, ve, err)))
        return st;
    return attn__seq_buf_add(s, "key_lengths", ATTN_I64, false, 1, err);
}

static attn_status full_start(attn_seq *s, attn_ctx *ctx, const attn_qkv *mem, attn_error *err) {
    memcpy(attn__seq_stream(s, KEYS, 0), mem->k, (size_t)s->N * s->bufs[KEYS].width * sizeof(float));
    memcpy(attn__seq_stream(s, VALUES, 0), mem->v, (size_t)s->N * s->bufs[VALUES].width * sizeof(float));
    int64_t *kl = attn__seq_stream(s, KEY_LENGTHS, 0);
    for (int64_t n = 0; n < s->N; n++) kl[n] = mem->key_lengths ? mem->key_lengths[n] : mem->S;
    return ATTN_OK;
}

/* The kernel with a workspace of its own. */
static attn_status run_full(const attn_full_cfg *c, attn_ctx *ctx, const attn_qkv *b, float *out, attn_error *err) {
    size_t bytes;
    void *ws;
    attn_status st = attn__full_workspace(b, attn_ctx_threads(ctx), &bytes, err);
    if (st || (st = attn__ws_alloc(bytes, &ws, err))) return st;
    st = attn__full_forward(c->softmax_temp, ctx, b, out, ws, err);
    attn__ws_free(ws, bytes);
    return st;
}

static attn_status full_step(attn_seq *s, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err) {
    const attn_full_cfg *c = s->mstate;
    if (s->kind == ATTN_SEQ_CROSS) {
        attn_qkv b = {.N = s->N, .L = a->L, .S = s->dims[3], .H = a->H, .E = a->E, .D = s->dims[2], .q = a->q,
                      .k = attn__seq_stream(s, KEYS, 0), .v = attn__seq_stream(s, VALUES, 0),
                      .key_lengths = attn__seq_stream(s, KEY_LENGTHS, 0)};
        attn__qkv_prepare(&b);
        if (b.keys_all_ones) b.key_lengths = NULL;
        return run_full(c, ctx, &b, out, err);
    }
    const int64_t T = a->L, S = s->len + T;
    const size_t kw = s->bufs[KEYS].width, vw = s->bufs[VALUES].width;
    uint8_t *mask = NULL;
    if (T > 1) { /* row t sees keys 0 .. len+t */
        size_t n;
        if (!attn__mul((size_t)T, (size_t)S, &n)) return attn__err(err, ATTN_E_OVERFLOW, "full: mask size overflows");
        if (!(mask = attn__calloc(n, 1, err))) return ATTN_E_NOMEM;
        for (int64_t t = 0; t < T; t++) memset(mask + (size_t)t * (size_t)S, 1, (size_t)(s->len + t + 1));
    }
    /* every stream's block has the same shapes: one workspace for all */
    attn_qkv b = {.N = 1, .L = T, .S = S, .H = a->H, .E = a->E, .D = a->D, .attn_mask = mask};
    attn__qkv_prepare(&b);
    size_t bytes = 0;
    void *ws = NULL;
    attn_status st = attn__full_workspace(&b, attn_ctx_threads(ctx), &bytes, err);
    if (!st) st = attn__ws_alloc(bytes, &ws, err);
    for (int64_t n = 0; n < s->N && !st; n++) {
        float *kc = attn__seq_stream(s, KEYS, n), *vc = attn__seq_stream(s, VALUES, n);
        memcpy(kc + (size_t)s->len * kw, a->k + (size_t)n * (size_t)T * kw, (size_t)T * kw * sizeof(float));
        memcpy(vc + (size_t)s->len * vw, a->v + (size_t)n * (size_t)T * vw, (size_t)T * vw * sizeof(float));
        b.q = a->q + (size_t)n * (size_t)T * kw;
        b.k = kc;
        b.v = vc;
        st = attn__full_forward(c->softmax_temp, ctx, &b, out + (size_t)n * (size_t)T * vw, ws, err);
    }
    attn__ws_free(ws, bytes);
    free(mask);
    return st;
}

const attn_seq_ops attn__seq_full = {
    .kinds = full_kinds,
    .layout = full_layout,
    .start_qkv = full_start,
    .step_qkv = full_step,
};
