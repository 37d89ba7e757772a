/*
 * axial_common.h — what the three axial-attention mechanisms share
 * (lucidrains/axial-attention 0.6.1): the SelfAttention that runs along one
 * axis of an N-D tensor (optionally behind PreNorm's LayerNorm), the axis
 * bookkeeping of calculate_permutations, and AxialPositionalEmbedding's
 * parameters and broadcast add.  Defined in axial.c and
 * axial_positional_embedding.c.
 */
#ifndef ATTN_AXIAL_COMMON_H
#define ATTN_AXIAL_COMMON_H

#include "attn_internal.h"

/* Largest count of positional parameters: one per axial dim of a tensor of
 * at most ATTN_MAX_RANK dims (batch and embedding excluded). */
#define AXIAL_MAX_POS (ATTN_MAX_RANK - 2)

/* One bound SelfAttention(dim, heads, dim_heads); hidden = heads*dim_heads.
 * Weights as nn.Linear stores them: wq (hidden, dim), wkv (2 hidden, dim)
 * whose first `hidden` rows are the keys, wo (dim, hidden), bo (dim).
 * ln_w/ln_b: PreNorm's LayerNorm(dim) (eps 1e-5) in front, or NULL. */
typedef struct axial_sa {
    int64_t dim, heads, dim_heads;
    const float *ln_w, *ln_b;
    const float *wq, *wkv, *wo, *bo;
} axial_sa;

/* Binds <prefix>to_q.weight, to_kv.weight, to_out.weight, to_out.bias and,
 * with `prenorm`, <norm_prefix>weight/bias. */
attn_status attn__axial_sa_bind(attn_binder *b, const char *prefix, const char *norm_prefix,
                                int64_t dim, int64_t heads, int64_t dim_heads, axial_sa *sa);

/* calculate_permutations(num_dimensions, dim_index) in terms of axes: the
 * embedding index `*emb` (normalised as the reference does: kept when > 0,
 * else + total) and the attended axes in the reference's order (ascending,
 * the embedding skipped).  Returns the number of axes, or -1 when the
 * normalised index lies outside the tensor (the reference then fails). */
int attn__axial_axes(int total, int64_t dim_index, int *emb, int axes[ATTN_MAX_RANK]);

/* PermuteToFrom(SelfAttention) along `axis` of a contiguous tensor of shape
 * `shape` (rank dims) whose `emb` dim has size sa->dim:
 *   y = (accumulate ? y : 0) + attention over `axis`, every other index fixed.
 * y may be x: every attended row is read whole before it is written and rows
 * are disjoint, so the update is safe in place and across threads.  `ws`
 * holds attn__axial_scratch bytes for ctx's thread count. */
attn_status attn__axial_scratch(const axial_sa *sa, int rank, const int64_t *shape, int emb, int axis,
                                int threads, size_t *bytes, attn_error *err);
attn_status attn__axial_apply(const axial_sa *sa, attn_ctx *ctx, int rank, const int64_t *shape,
                              int emb, int axis, const float *x, float *y, bool accumulate,
                              void *ws, float *map, attn_error *err);
/* `map` (or NULL) receives the softmax weights: the reference's (b*heads,
 * T, T) with b the other dims in order (all but `axis` and `emb`), i.e.
 * shape (rest..., heads, T, T); attn__axial_map_shape gives it. */
void attn__axial_map_shape(const axial_sa *sa, int rank, const int64_t *shape, int emb, int axis, int *mrank,
                           int64_t *mshape);
/* Its dims string from the input's dims names (dims[d] names dim d). */
void attn__axial_map_dims(int rank, const char *const *names, int emb, int axis, char *buf, size_t cap);

/* AxialPositionalEmbedding(dim, shape, emb_dim_index): `n` parameters of
 * rank n+2 named <prefix>param_<i>. */
typedef struct axial_pos {
    int n, rank;
    int64_t shape[AXIAL_MAX_POS][ATTN_MAX_RANK];
    const float *param[AXIAL_MAX_POS];
} axial_pos;

/* Computes the parameter shapes exactly as the reference constructor does
 * (Python list indexing, so a negative emb_dim_index counts from the end) and
 * binds them.  `what` names the config keys in messages. */
attn_status attn__axial_pos_init(axial_pos *pe, attn_binder *b, const char *prefix, int64_t dim,
                                 const int64_t *shape, int n, int64_t emb_dim_index,
                                 const char *what, attn_error *err);

/* out = x + param_0 + param_1 + ... with torch broadcasting, on ctx's
 * threads (ctx may be NULL: one thread); the result does not depend on the
 * thread count.  attn__axial_pos_shape gives the broadcast shape (rank,
 * shape) of out, or ATTN_E_SHAPE; `out` must not overlap x. */
attn_status attn__axial_pos_shape(const axial_pos *pe, const attn_tensor *x, int *rank, int64_t *shape,
                                  attn_error *err);
attn_status attn__axial_pos_apply_ctx(const axial_pos *pe, attn_ctx *ctx, const attn_tensor *x,
                                      float *out, attn_error *err);

#endif
