/*
 * feature_map.h — fast-transformers' feature maps φ for linear attention:
 * elu(x)+1 (the default) and the random-feature maps (RandomFourierFeatures,
 * SmoothedRandomFourierFeatures, Favor, GeneralizedRandomFeatures).
 *
 * Config: `feature_map` is null (elu), a name ("elu", "rff", "smoothed_rff",
 * "favor", "grf"), or an object {"type": name, ...that class's parameters,
 * "seed": int}.  The reference redraws ω on every forward from the torch
 * RNG; we draw it once from `seed`, so a model is deterministic.  When the
 * weights hold `<prefix>feature_map.omega` (the reference's buffer), that ω is
 * used instead, which reproduces a reference module in deterministic_eval.
 */
#ifndef ATTN_FEATURE_MAP_H
#define ATTN_FEATURE_MAP_H

#include "attn_internal.h"

typedef enum { FM_ELU, FM_RFF, FM_SRFF, FM_FAVOR, FM_GRF } attn_fm_kind;
typedef enum { FM_K_RELU, FM_K_EXP, FM_K_SOFTPLUS, FM_K_ABS, FM_K_ELU1 } attn_fm_kernel;

typedef struct attn_fmap {
    attn_fm_kind kind;
    int64_t E;       /* query dimensions */
    int64_t F;       /* output dimension */
    int64_t cols;    /* ω is (E, cols) */
    int64_t nd;      /* the class's n_dims (scale and log terms) */
    float *omega;    /* model-owned, NULL for elu */
    float t;         /* softmax_temp (x' = x·√t) */
    float smoothing; /* srff */
    bool stabilize;  /* favor */
    attn_fm_kernel kernel; /* grf */
} attn_fmap;

extern const attn_param attn__fmap_params[]; /* the keys of a feature_map object */

/* Builds the map for per-head dimension E from spec (JSON null, string or
 * object) and binds `feature_map.omega` if present. */
attn_status attn__fmap_init(attn_fmap *fm, const json_t *spec, int64_t E, attn_binder *b);

/* φ of rows (rows, E) contiguous -> (rows, F).  For favor with stabilize,
 * `seq_max` is the max over the sequence of ‖x'‖² computed by the caller
 * (attn__fmap_sqnorm_max); otherwise ignored. */
void attn__fmap_apply(const attn_fmap *fm, const float *x, size_t rows, float *out, float seq_max);
float attn__fmap_sqnorm_max(const attn_fmap *fm, const float *x, size_t rows);

#endif
