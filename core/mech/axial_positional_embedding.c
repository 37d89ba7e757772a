/*
 * axial_positional_embedding.c — AxialPositionalEmbedding(dim, shape,
 * emb_dim_index) of lucidrains/axial-attention 0.6.1: one learned parameter
 * per axial dimension, each spanning the embedding and its own axis, all
 * added to x with broadcasting.  AxialImageTransformer reuses the pieces
 * (axial_common.h).
 */
#include "mech/axial_common.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The broadcast add, split over blocks of output rows (rows = the last
 * dimension).  Inside a row every operand's stride is 0 (broadcast) or 1
 * (bcast_strides gives the last dimension stride 1 unless it is broadcast).
 * The output is written once, with no zeroing, and each element is summed in
 * the reference's order, x + p0 + p1 + ..., whatever the thread count. */
typedef struct pos_job {
    int R, n;
    int64_t oshape[ATTN_MAX_RANK];
    size_t xs[ATTN_MAX_RANK], ps[AXIAL_MAX_POS][ATTN_MAX_RANK];
    const float *x, *param[AXIAL_MAX_POS];
    float *o;
    size_t W, rows, rows_per_task;
} pos_job;

#define POS_CHUNK 64

/* Any number of parameters: the row in chunks summed in a small buffer. */
static void pos_row(float *orow, const float *xr, size_t xw, int n, const float *const *pr,
                    const size_t *pw, size_t W) {
    for (size_t c0 = 0; c0 < W; c0 += POS_CHUNK) {
        const size_t cw = W - c0 < POS_CHUNK ? W - c0 : POS_CHUNK;
        float acc[POS_CHUNK];
        if (xw) {
#pragma omp simd
            for (size_t c = 0; c < cw; c++) acc[c] = xr[c0 + c];
        } else {
            const float v = xr[0];
#pragma omp simd
            for (size_t c = 0; c < cw; c++) acc[c] = v;
        }
        for (int i = 0; i < n; i++) {
            if (pw[i]) {
                const float *p = pr[i] + c0;
#pragma omp simd
                for (size_t c = 0; c < cw; c++) acc[c] += p[c];
            } else {
                const float v = pr[i][0];
#pragma omp simd
                for (size_t c = 0; c < cw; c++) acc[c] += v;
            }
        }
        memcpy(orow + c0, acc, cw * sizeof *acc);
    }
}

/* Task t: output rows [t * rows_per_task, ...).  R >= 2 (the parameters
 * have rank len(shape) + 2, x the same). */
static attn_status pos_rows(void *arg, size_t t, int worker) {
    (void)worker;
    const pos_job *j = arg;
    const int R = j->R, n = j->n, d2 = R - 2;
    const size_t r0 = t * j->rows_per_task;
    const size_t r1 = j->rows - r0 < j->rows_per_task ? j->rows : r0 + j->rows_per_task;
    /* The odometer over the dimensions before the last, started at row r0;
     * each operand's offset follows its own strides. */
    size_t idx[ATTN_MAX_RANK] = {0}, xo = 0, po[AXIAL_MAX_POS] = {0}, rem = r0;
    for (int d = d2; d >= 0; d--) {
        idx[d] = rem % (size_t)j->oshape[d];
        rem /= (size_t)j->oshape[d];
        xo += idx[d] * j->xs[d];
        for (int i = 0; i < n; i++) po[i] += idx[d] * j->ps[i][d];
    }
    /* Row strides: 1 or 0 (broadcast) for every operand. */
    const size_t xw = j->xs[R - 1] != 0;
    size_t pw[AXIAL_MAX_POS];
    for (int i = 0; i < n; i++) pw[i] = j->ps[i][R - 1] != 0;
    /* one or two parameters (the usual 2-D image case): a kernel per
     * instruction set (kernels/rowops.c) with these strides fixed */
    const unsigned code = n == 1 ? (unsigned)(xw * 2 + pw[0]) : n == 2 ? (unsigned)(xw * 4 + pw[0] * 2 + pw[1]) : 0;
    const size_t len2 = (size_t)j->oshape[d2];
    for (size_t r = r0; r < r1;) {
        /* A run of rows along dimension d2, up to its end or the task's. */
        size_t cnt = len2 - idx[d2] < r1 - r ? len2 - idx[d2] : r1 - r;
        /* The output is a new tensor: it overlaps no operand. */
        if (n == 1 || n == 2) {
            attn__pos_rows(n, code, j->o + r * j->W, j->x + xo, j->param[0] + po[0],
                           n > 1 ? j->param[1] + po[1] : NULL, j->W, cnt, j->xs[d2], j->ps[0][d2],
                           n > 1 ? j->ps[1][d2] : 0);
        } else {
            for (size_t k = 0; k < cnt; k++) {
                const float *pr[AXIAL_MAX_POS];
                for (int i = 0; i < n; i++) pr[i] = j->param[i] + po[i] + k * j->ps[i][d2];
                pos_row(j->o + (r + k) * j->W, j->x + xo + k * j->xs[d2], xw, n, pr, pw, j->W);
            }
        }
        r += cnt;
        idx[d2] += cnt;
        xo += cnt * j->xs[d2];
        for (int i = 0; i < n; i++) po[i] += cnt * j->ps[i][d2];
        if (idx[d2] < len2) continue; /* the task ends inside the run */
        for (int d = d2; d >= 0; d--) {
            if (d < d2) {
                xo += j->xs[d];
                for (int i = 0; i < n; i++) po[i] += j->ps[i][d];
                if (++idx[d] < (size_t)j->oshape[d]) break;
            }
            xo -= j->xs[d] * idx[d];
            for (int i = 0; i < n; i++) po[i] -= j->ps[i][d] * idx[d];
            idx[d] = 0;
        }
    }
    return ATTN_OK;
}

/* Output elements per task: enough to pay for handing a task to a thread. */
#define POS_TASK_ELEMS ((size_t)1 << 14)

attn_status attn__axial_pos_shape(const axial_pos *pe, const attn_tensor *x, int *rank, int64_t *shape,
                                  attn_error *err) {
    int R = *rank = x->rank > pe->rank ? x->rank : pe->rank;
    for (int d = 0; d < R; d++) {
        int k = d - (R - x->rank);
        shape[d] = k >= 0 ? x->shape[k] : 1;
    }
    for (int i = 0; i < pe->n; i++)
        for (int d = 0; d < R; d++) {
            int k = d - (R - pe->rank);
            int64_t p = k >= 0 ? pe->shape[i][k] : 1;
            if (p == shape[d] || p == 1) continue;
            if (shape[d] != 1) {
                char a[96], c[96];
                return attn__err(err, ATTN_E_SHAPE,
                                 "x of shape %s does not broadcast with param_%d of shape %s",
                                 attn_shape_str(x->rank, x->shape, a, sizeof a), i,
                                 attn_shape_str(pe->rank, pe->shape[i], c, sizeof c));
            }
            shape[d] = p;
        }
    /* The broadcast shape may be larger than x: its size must fit too. */
    size_t numel;
    return attn_shape_numel(R, shape, sizeof(float), &numel, err);
}

attn_status attn__axial_pos_apply_ctx(const axial_pos *pe, attn_ctx *ctx, const attn_tensor *x,
                                      float *out, attn_error *err) {
    pos_job j = {.n = pe->n, .x = x->data};
    attn_status st = attn__axial_pos_shape(pe, x, &j.R, j.oshape, err);
    if (st) return st;
    int R = j.R;
    size_t numel = 1;
    for (int d = 0; d < R; d++) numel *= (size_t)j.oshape[d]; /* checked above */
    /* Every element is written below. */
    bcast_strides(x->rank, x->shape, R, j.oshape, j.xs);
    for (int i = 0; i < pe->n; i++) {
        bcast_strides(pe->rank, pe->shape[i], R, j.oshape, j.ps[i]);
        j.param[i] = pe->param[i];
    }
    j.o = out;
    j.W = R > 0 ? (size_t)j.oshape[R - 1] : 1;
    j.rows = j.W ? numel / j.W : 0;
    j.rows_per_task = j.W >= POS_TASK_ELEMS ? 1 : POS_TASK_ELEMS / j.W;
    if ((st = attn__parallel_for(ctx, j.rows ? (j.rows - 1) / j.rows_per_task + 1 : 0, pos_rows,
                                 &j)))
        return attn__err(err, st, "axial_positional_embedding: forward %s",
                         st == ATTN_E_CANCELLED ? "cancelled" : "failed");
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

static attn_status pos_plan(const attn_model *m, const void *state, const attn_tensor_set *in,
                            int threads, attn_plan *p, attn_error *err) {
    const pos_state *s = state;
    const attn_tensor *x;
    attn_status st = attn__input(m, in, "x", &x, err);
    *p = (attn_plan){0};
    return st ? st : attn__axial_pos_shape(&s->pe, x, &p->rank, p->shape, err);
}

static attn_status pos_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                               const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    const pos_state *s = state;
    const attn_tensor *x;
    attn_status st = attn__input(m, in, "x", &x, err);
    if (st) return st;
    return attn__axial_pos_apply_ctx(&s->pe, ctx, x, out, err);
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
    .plan = pos_plan,
    .forward = pos_forward,
};
