/*
 * workspace.h — the scratch contract of a forward.
 *
 * A mechanism never allocates per call.  It lays its scratch out as named,
 * ATTN_WS_ALIGN-aligned regions of one block (attn_ws_layout: offsets, with
 * every size product overflow-checked), reports the block's size for given
 * inputs and a thread count (the vtable's plan / workspace_qkv), and its
 * forward receives a block of at least that size.  model.c allocates the
 * block, or uses the caller's (attn_model_forward_ws).  Contents are
 * undefined on entry: a forward writes every byte it reads.
 */
#ifndef ATTN_WORKSPACE_H
#define ATTN_WORKSPACE_H

#include "attn_internal.h"

#define ATTN_WS_ALIGN 64

/* A layout under construction: its size so far (a multiple of
 * ATTN_WS_ALIGN) and whether any step overflowed size_t. */
typedef struct attn_ws_layout {
    size_t size;
    bool overflow;
} attn_ws_layout;

/* Reserves n*elem bytes at the next aligned offset and returns the offset;
 * on overflow sets y->overflow (the offset is then meaningless). */
size_t attn__ws_region(attn_ws_layout *y, size_t n, size_t elem);

/* Reserves `copies` back-to-back copies of `sub` (per-worker scratch);
 * copy w starts at the returned offset + w * sub->size. */
size_t attn__ws_array(attn_ws_layout *y, size_t copies, const attn_ws_layout *sub);

/* The layout's total bytes, or ATTN_E_OVERFLOW ("<what>: workspace size
 * overflows") when a step overflowed. */
attn_status attn__ws_size(const attn_ws_layout *y, const char *what, size_t *bytes, attn_error *err);

/* The region at `off` of the block at `base`. */
static inline void *attn__ws_at(void *base, size_t off) { return (char *)base + off; }

/* An ATTN_WS_ALIGN-aligned block of `bytes` (*out NULL when 0);
 * ATTN_E_NOMEM when the allocation fails.  Freed with attn__ws_free and
 * the same `bytes`, by any thread.  attn__ws_alloc_zero: the block reads as
 * zeros.  Blocks of ATTN_WS_MMAP_MIN bytes or more are mappings in
 * transparent huge pages, and each thread keeps up to 4 blocks it has freed,
 * ATTN_WS_KEEP bytes in all (environment; default ATTN_WS_KEEP_DEFAULT, 0
 * keeps none; the least recently freed go first), for its next requests
 * (the smallest that is large enough is handed out): a fresh mapping is
 * faulted in and zeroed page by page on every call (5% of a linear_self or
 * compositional forward of 1024-4096 tokens), and a heap block of a few
 * MiB is no better, since malloc gives the top of its heap back to the
 * system on free and faults it in again (half of a 2-thread linear forward
 * of 1024 tokens, whose 2 MiB output was allocated per call).  Forward
 * scratch and tensor data (attn_tensor_new) come from here.  So a thread
 * that ran a large forward holds that memory until it needs other sizes or
 * exits (libattn's own pool threads never allocate it; the caller's
 * thread does); blocks above the limit are mapped and unmapped with the
 * call. */
#define ATTN_WS_MMAP_MIN ((size_t)1 << 20)
#define ATTN_WS_KEEP_DEFAULT ((size_t)64 << 20)
attn_status attn__ws_alloc(size_t bytes, void **out, attn_error *err);
attn_status attn__ws_alloc_zero(size_t bytes, void **out, attn_error *err);
void attn__ws_free(void *p, size_t bytes);
/* The ATTN_WS_KEEP limit in effect (bytes). */
size_t attn__ws_keep_max(void);

#endif
