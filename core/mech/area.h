/*
 * area.h — the AreaAttention core shared by area.c (the `area` mechanism)
 * and multi_head_area.c (`multi_head_area`, whose inner attention is an
 * AreaAttention applied to every head).  Private to core/mech.
 */
#ifndef ATTN_MECH_AREA_H
#define ATTN_MECH_AREA_H

#include "attn_internal.h"

/* The reference's area_key_mode / area_value_mode strings, in its order. */
enum area_key_mode {
    AREA_KEY_MEAN,
    AREA_KEY_MAX,
    AREA_KEY_SAMPLE,
    AREA_KEY_CONCAT,
    AREA_KEY_MAX_CONCAT,
    AREA_KEY_SUM,
    AREA_KEY_SAMPLE_CONCAT,
    AREA_KEY_SAMPLE_SUM
};
enum area_value_mode { AREA_VALUE_MEAN, AREA_VALUE_MAX, AREA_VALUE_SUM };

/* One configured AreaAttention with its weights bound.  The memory is a
 * (mem_h, mem_w) grid; an area is any (h, w) rectangle of it with
 * h <= max_h and w <= max_w.  Areas are numbered as the reference
 * concatenates them: by shape (h outer, w inner), then by top-left corner
 * in row-major order. */
typedef struct area_cfg {
    int64_t kqs; /* key_query_size */
    int key_mode, value_mode;
    int64_t max_h, max_w, mem_h, mem_w;
    int64_t top_k; /* <= 0: every area */
    size_t n_mem;   /* mem_h * mem_w: the number of keys and values */
    size_t n_areas;
    size_t feat;       /* learned key modes: input width of area_key_embedding.0 */
    float temperature; /* sqrt(key_query_size), as the reference divides by it */
    /* Learned key modes only (else NULL). */
    const float *h_embed; /* area_height_embedding.weight (max_h, kqs/2) */
    const float *w_embed; /* area_width_embedding.weight (max_w, kqs/2) */
    const float *w1, *b1; /* area_key_embedding.0: (kqs, feat), (kqs) */
    const float *w2, *b2; /* area_key_embedding.2: (kqs, kqs), (kqs) */
} area_cfg;

/* The AreaAttention constructor's keys and defaults (terminated by {0}). */
extern const attn_param attn__area_params[];

/* Reads and checks an AreaAttention config (cfg->params must be
 * attn__area_params), then binds the learned key-mode weights, if any,
 * under `wprefix` ("" or "area_attention."). */
attn_status attn__area_parse(area_cfg *a, const attn_cfg *cfg);
attn_status attn__area_bind(area_cfg *a, attn_binder *b, const char *wprefix);

/* Whether the key mode has learned weights (and needs keys of width kqs). */
bool attn__area_learned(const area_cfg *a);

/* Bytes of scratch one attn__area_forward call needs for nq queries, keys
 * of width dk and values of width dv; ATTN_E_OVERFLOW when it does not fit
 * in size_t. */
attn_status attn__area_scratch(const area_cfg *a, size_t nq, size_t dk, size_t dv, size_t *bytes,
                               attn_error *err);

/* The q (B,Nq,*), k (B,S,*), v (B,S,D) inputs of area and multi_head_area,
 * looked up by their declarations and checked to share the batch size B. */
typedef struct area_inputs {
    const attn_tensor *q, *k, *v;
    size_t B, nq;
} area_inputs;
attn_status attn__area_inputs(const attn_model *m, const attn_tensor_set *in, area_inputs *x,
                              attn_error *err);

/* One AreaAttention forward for one batch element.
 *   q   (nq, dk)     row stride ldq
 *   k   (n_mem, dk)  row stride ldk, the (mem_h, mem_w) grid row-major
 *   v   (n_mem, dv)  row stride ldv
 *   out (nq, dv)     row stride ldo
 * `scratch` holds attn__area_scratch bytes, 8-byte aligned.  For learned
 * key modes dk must equal kqs.  Fails only as attn__gemm does. */
attn_status attn__area_forward(const area_cfg *a, size_t nq, size_t dk, size_t dv, const float *q,
                               size_t ldq, const float *k, size_t ldk, const float *v, size_t ldv,
                               float *out, size_t ldo, void *scratch, float *wmap);
/* wmap (nq, A) or NULL: the final weights of each query over the areas.
 * attn__area_geometry: (A, 4) rows (top, left, height, width) in the
 * areas' numbering above. */
void attn__area_geometry(const area_cfg *a, float *geo);

#endif
