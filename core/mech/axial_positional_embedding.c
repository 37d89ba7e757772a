/*
 * axial_positional_embedding.c — AxialPositionalEmbedding(dim, shape,
 * emb_dim_index) of lucidrains/axial-attention 0.6.1: one learned parameter
 * per axial dimension, each spanning the embedding and its own axis, all
 * added to x with broadcasting.  AxialImageTransformer reuses the pieces
 * (axial_common.h).
 */
#include "mech/axial_common.h"

#include <stdio.h>
#include <string.h>

attn_status attn__axial_pos_init(axial_pos *pe, attn_binder *b, const char *prefix, int64_t dim,
                                 const int64_t *shape, int n, int64_t emb_dim_index,
                                 const char *what, attn_error *err) {
    int total = n + 2;
    if (n < 0 || n > AXIAL_MAX_POS)
        return attn__err(err, ATTN_E_CONFIG, "%s: at most %d axial dimensions", what, AXIAL_MAX_POS);
    /* The reference writes shape[emb_dim_index] = dim into a Python list of
     * `total` ones, once per parameter: any index in [-total, total) works,
     * others raise (and with no parameters nothing is checked). */
    if (n > 0 && (emb_dim_index < -total || emb_dim_index >= total))
        return attn__err(err, ATTN_E_CONFIG,
                         "%s: embedding index %lld is out of range for %d-D parameters "
                         "(len(shape) + 2): use %d..%d",
                         what, (long long)emb_dim_index, total, -total, total - 1);
    int emb = (int)(emb_dim_index < 0 ? emb_dim_index + total : emb_dim_index); /* if n > 0 */
    /* Axial positions: 1..total-1 minus the raw index (a negative index never
     * matches, so the first n of 1..total-1 are used, as zip() truncates). */
    int ax[ATTN_MAX_RANK], n_ax = 0;
    for (int i = 1; i < total; i++)
        if (i != emb_dim_index) ax[n_ax++] = i;
    pe->n = n;
    pe->rank = total;
    for (int i = 0; i < n; i++) {
        int64_t *s = pe->shape[i];
        for (int d = 0; d < total; d++) s[d] = 1;
        s[emb] = dim;
        s[ax[i]] = shape[i]; /* may overwrite the embedding, as the reference does */
        char name[160];
        snprintf(name, sizeof name, "%sparam_%d", prefix, i);
        float *p;
        attn_status st = attn__bind(b, name, total, s, &p);
        if (st) return st;
        pe->param[i] = p;
    }
    return ATTN_OK;
}

/* Strides of `shape` (rank r) seen from the broadcast shape of rank R:
 * right-aligned, 0 where the dim is absent or broadcast. */
static void bcast_strides(int r, const int64_t *shape, int R, const int64_t *out, size_t *st) {
    size_t s = 1;
    for (int d = R - 1; d >= 0; d--) {
        int k = d - (R - r);
        if (k < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = (shape[k] == 1 && out[d] != 1) ? 0 : s;
        s *= (size_t)shape[k];
    }
}

attn_status attn__axial_pos_apply(const axial_pos *pe, const attn_tensor *x, attn_tensor **out,
                                  attn_error *err) {
    int R = x->rank > pe->rank ? x->rank : pe->rank;
    int64_t oshape[ATTN_MAX_RANK];
    for (int d = 0; d < R; d++) {
        int k = d - (R - x->rank);
        oshape[d] = k >= 0 ? x->shape[k] : 1;
    }
    for (int i = 0; i < pe->n; i++)
        for (int d = 0; d < R; d++) {
            int k = d - (R - pe->rank);
            int64_t p = k >= 0 ? pe->shape[i][k] : 1;
            if (p == oshape[d] || p == 1) continue;
            if (oshape[d] != 1) {
                char a[96], c[96];
                return attn__err(err, ATTN_E_SHAPE,
                                 "x of shape %s does not broadcast with param_%d of shape %s",
                                 attn_shape_str(x->rank, x->shape, a, sizeof a), i,
                                 attn_shape_str(pe->rank, pe->shape[i], c, sizeof c));
            }
            oshape[d] = p;
        }
    attn_tensor *o;
    attn_status st = attn_tensor_new(ATTN_F32, R, oshape, &o, err);
    if (st) return st;
    size_t xs[ATTN_MAX_RANK], ps[AXIAL_MAX_POS][ATTN_MAX_RANK];
    bcast_strides(x->rank, x->shape, R, oshape, xs);
    for (int i = 0; i < pe->n; i++) bcast_strides(pe->rank, pe->shape[i], R, oshape, ps[i]);
    /* Walk the output row by row (rows = the last dimension) with an
     * odometer over the other dimensions; each operand's offset follows its
     * own strides.  Inside a row an operand's stride is 0 (broadcast) or 1,
     * so the row loops are plain vector loops.  Sums in the reference's
     * order: x + p0 + p1. */
    size_t idx[ATTN_MAX_RANK] = {0}, xo = 0, po[AXIAL_MAX_POS] = {0};
    const float *xd = x->data;
    float *od = o->data;
    const size_t W = R > 0 ? (size_t)oshape[R - 1] : 1, rows = W ? o->numel / W : 0;
    const size_t xw = R > 0 ? xs[R - 1] : 0;
    for (size_t r = 0; r < rows; r++) {
        float *orow = od + r * W;
        const float *xr = xd + xo;
        /* The output is a new tensor: it overlaps no operand. */
        if (xw == 1) {
#pragma omp simd
            for (size_t c = 0; c < W; c++) orow[c] = xr[c];
        } else {
            for (size_t c = 0; c < W; c++) orow[c] = xr[c * xw];
        }
        for (int i = 0; i < pe->n; i++) {
            const float *pr = pe->param[i] + po[i];
            const size_t pw = R > 0 ? ps[i][R - 1] : 0;
            if (pw == 1) {
#pragma omp simd
                for (size_t c = 0; c < W; c++) orow[c] += pr[c];
            } else if (pw == 0) {
                const float p = pr[0];
#pragma omp simd
                for (size_t c = 0; c < W; c++) orow[c] += p;
            } else {
                for (size_t c = 0; c < W; c++) orow[c] += pr[c * pw];
            }
        }
        for (int d = R - 2; d >= 0; d--) {
            xo += xs[d];
            for (int i = 0; i < pe->n; i++) po[i] += ps[i][d];
            if (++idx[d] < (size_t)oshape[d]) break;
            xo -= xs[d] * idx[d];
            for (int i = 0; i < pe->n; i++) po[i] -= ps[i][d] * idx[d];
            idx[d] = 0;
        }
    }
    *out = o;
    return ATTN_OK;
}

/* ---- the mechanism ---- */

typedef struct pos_state {
    axial_pos pe;
} pos_state;

static const attn_param pos_params[] = {
    {"dim", ATTN_P_INT, NULL, 1, 1 << 24, NULL, "embedding dimension"},
    {"shape", ATTN_P_INT_LIST, NULL, 1, 1 << 24, NULL,
     "sizes of the axial dimensions, e.g. [H, W] for an image"},
    {"emb_dim_index", ATTN_P_INT, "1", -ATTN_MAX_RANK, ATTN_MAX_RANK, NULL,
     "index of the embedding dimension in x"},
    {0},
};

static attn_status pos_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    pos_state *s = state;
    int64_t dim, emb, shape[AXIAL_MAX_POS];
    int n;
    attn_status st;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "dim", &dim, NULL)) ||
        (st = attn__cfg_int_list(cfg, "shape", shape, AXIAL_MAX_POS, &n)) ||
        (st = attn__cfg_int(cfg, "emb_dim_index", &emb, NULL)))
        return st;
    st = attn__axial_pos_init(&s->pe, b, "", dim, shape, n, emb,
                              "axial_positional_embedding: emb_dim_index", cfg->err);
    if (st) return st;
    /* x broadcasts against the parameters, so no dim is fixed; its rank is
     * the parameters' (len(shape) + 2). */
    int e = (int)(emb < 0 ? emb + s->pe.rank : emb);
    char dims[64] = "";
    size_t k = 0;
    for (int d = 0, a = 1; d < s->pe.rank; d++) {
        const char *sep = d ? "," : "";
        if (d == e)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%sdim", sep);
        else if (d == 0)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%sB", sep);
        else
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%sA%d", sep, a++);
    }
    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, dims, s->pe.rank, NULL))) return st;
    attn__model_set_output(m, dims, s->pe.rank, NULL);
    return ATTN_OK;
}

static attn_status pos_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                               const attn_tensor_set *in, attn_tensor **out, attn_error *err) {
    const pos_state *s = state;
    const attn_tensor *x;
    attn_status st = attn__input(m, in, "x", &x, err);
    if (st) return st;
    return attn__axial_pos_apply(&s->pe, x, out, err);
}

const attn_mech attn_mech_axial_positional_embedding = {
    .info =
        {
            .name = "axial_positional_embedding",
            .aliases = (const char *const[]){"AxialPositionalEmbedding", NULL},
            .reference = "AxialPositionalEmbedding in axial_attention "
                         "(lucidrains/axial-attention 0.6.1)",
            .summary = "adds one learned embedding per axial dimension, broadcast over the others",
            .params = pos_params,
            .has_weights = 1,
            .is_inner = 0,
        },
    .state_size = sizeof(pos_state),
    .init = pos_init,
    .forward = pos_forward,
};
