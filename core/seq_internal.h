/*
 * seq_internal.h — what a mechanism implements to support sequences
 * (attn_seq_*, attn.h), and the state store seq.c gives it.
 *
 * A mechanism points attn_mech.seq at an attn_seq_ops.  Its state lives in
 * up to ATTN__SEQ_MAX_BUFS named buffers that seq.c owns: it allocates
 * them, grows the row caches (capacity doubling, overflow-checked), counts
 * their bytes and exports / imports them, so the hooks only compute.
 *   fixed buffer: `width` elements per stream (running sums, a window,
 *                 a cross memory), zeroed at layout;
 *   row buffer:   `width` elements per stream and token, one row appended
 *                 per token (key/value caches); stream n's rows start at
 *                 n * cap * width.
 * The shape a sequence was laid out for (heads, widths, memory length) is
 * kept in dims[] and checked against every later step.
 */
#ifndef ATTN_SEQ_INTERNAL_H
#define ATTN_SEQ_INTERNAL_H

#include "attn_internal.h"

#define ATTN__SEQ_MAX_BUFS 8
#define ATTN__SEQ_MAX_DIMS 8

typedef struct attn__seq_buf {
    const char *name;  /* static; the tensor's name in an export */
    attn_dtype dtype;  /* F32, or I64 (integers, or the bits of doubles) */
    bool rows;         /* a row buffer (else fixed) */
    size_t width;      /* elements per stream (fixed) or per stream and token (rows) */
    size_t cap;        /* row buffers: rows allocated per stream */
    unsigned char *data;
} attn__seq_buf;

struct attn_seq {
    const attn_model *model;          /* borrowed */
    const struct attn_seq_ops *ops;   /* the model's mechanism's */
    const void *mstate;               /* the model's state (borrowed) */
    attn_seq_kind kind;
    int64_t N, len;
    bool laid_out, broken;
    int ndims;
    int64_t dims[ATTN__SEQ_MAX_DIMS];
    attn__seq_buf bufs[ATTN__SEQ_MAX_BUFS];
    int nbufs;
    attn_seq *child; /* the inner attention's sequence (attention_layer), owned */
    int gemm;        /* the sgemm choice it computes with (cpu.h attn__gemm_choice): kept by
                        export and import, pinned for each step, so that a moved sequence
                        continues bit for bit on a process that calibrated otherwise; a
                        child's is not read: it steps under its parent's pin */
};

typedef struct attn_seq_ops {
    /* Kinds this model supports (ATTN_SEQ_* bits); for 0, *why may be set
     * to a static reason ("needs causal=true"). */
    unsigned (*kinds)(const attn_model *m, const void *state, const char **why);
    /* Declares the buffers for s->dims (set by the caller); called once,
     * before the first step or start, and again by attn_seq_import. */
    attn_status (*layout)(attn_seq *s, attn_error *err);
    /* qkv mechanisms (attn_mech.forward == NULL).  seq.c reads and checks
     * the inputs; dims are {H, E, D} (self) or {H, E, D, S} (cross).
     * start_qkv stores the memory a->k, a->v, a->key_lengths (a->N, S, H,
     * E, D set, q NULL).  step_qkv: a->q (N,T,H,E) and, for self, a->k, a->v
     * (N,T,H,·) of the new tokens (a->L = a->S = T); out (N,T,H,D).  Rows
     * len .. len+T-1 of the row buffers are reserved; seq.c advances len. */
    attn_status (*start_qkv)(attn_seq *s, attn_ctx *ctx, const attn_qkv *mem, attn_error *err);
    attn_status (*step_qkv)(attn_seq *s, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err);
    /* Other mechanisms read their own inputs: check them, then
     * attn__seq_begin, compute, attn__seq_commit.  start may be NULL
     * (no cross form). */
    attn_status (*start)(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *memory, attn_error *err);
    attn_status (*step)(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *in, attn_tensor **out,
                        attn_error *err);
} attn_seq_ops;

/* Declares buffer number s->nbufs (from layout). */
attn_status attn__seq_buf_add(attn_seq *s, const char *name, attn_dtype dtype, bool rows, size_t width,
                              attn_error *err);
/* Start of stream n in buffer i. */
static inline void *attn__seq_stream(const attn_seq *s, int i, int64_t n) {
    const attn__seq_buf *b = &s->bufs[i];
    size_t per = b->rows ? b->cap * b->width : b->width;
    return b->data + (size_t)n * per * attn_dtype_size(b->dtype);
}
/* Before a step of T tokens with the given shape: refuses a broken
 * sequence, lays out on first use (setting dims), checks dims against the
 * layout, reserves rows up to len + T.  Changes nothing visible. */
attn_status attn__seq_begin(attn_seq *s, int ndims, const int64_t *dims, int64_t T, attn_error *err);
/* After the step's computation: st == OK advances len by T, else the
 * sequence is broken.  Returns st. */
attn_status attn__seq_commit(attn_seq *s, attn_status st, int64_t T);
/* The inner attention's sequence of kind s->kind (attention_layer). */
attn_status attn__seq_child(attn_seq *s, const attn_model *inner, attn_error *err);
/* A qkv step / cross start on s (which may be a child), through begin and
 * commit; what seq.c runs for qkv models and attention_layer for its inner
 * attention. */
attn_status attn__seq_qkv_step(attn_seq *s, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err);
attn_status attn__seq_qkv_start(attn_seq *s, attn_ctx *ctx, const attn_qkv *mem, attn_error *err);
/* Sets laid_out after the mechanism's layout for s->dims (which the
 * caller set): for a mechanism's own cross start. */
attn_status attn__seq_layout(attn_seq *s, attn_error *err);
/* key_lengths of a cross memory, I64 or I32 (N,) in [0, S], as int64
 * into *kl (owned, free(); NULL when absent). */
attn_status attn__seq_memory_lengths(const attn_tensor_set *mem, int64_t N, int64_t S, int64_t **kl,
                                     attn_error *err);
/* A model's ops and kinds, for nested models. */
unsigned attn__seq_model_kinds(const attn_model *m, const char **why);
/* Refuses input `name` when present: a sequence cannot apply it. */
attn_status attn__seq_refuse(const attn_tensor_set *in, const char *name, const char *why, attn_error *err);

#endif
