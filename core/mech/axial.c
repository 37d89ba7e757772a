/*
 * axial.c — AxialAttention (lucidrains/axial-attention 0.6.1): multi-head
 * self-attention along each axial dimension of an N-D tensor, the outputs
 * summed (sum_axial_out) or the axes applied one after another.  Also the
 * per-axis SelfAttention that AxialImageTransformer reuses (axial_common.h).
 *
 * The reference permutes the tensor so that (rest..., axis, emb) is
 * contiguous and folds `rest` into a batch.  Here the same rows are gathered
 * straight from the strided input, a chunk of rows at a time, so no permuted
 * copy of the whole tensor is made; the order in which rows are visited does
 * not change any result.
 */
#include "mech/axial_common.h"

#include "kernels/kernels.h"
#include "workspace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the per-axis SelfAttention ---- */

attn_status attn__axial_sa_bind(attn_binder *b, const char *prefix, const char *norm_prefix,
                                int64_t dim, int64_t heads, int64_t dim_heads, axial_sa *sa) {
    int64_t hid = heads * dim_heads;
    int64_t s_q[2] = {hid, dim}, s_kv[2] = {2 * hid, dim}, s_o[2] = {dim, hid}, s_v[1] = {dim};
    static const char *const names[6] = {"to_q.weight", "to_kv.weight", "to_out.weight",
                                         "to_out.bias", "weight",       "bias"};
    const char *pre[6] = {prefix, prefix, prefix, prefix, norm_prefix, norm_prefix};
    const int64_t *shapes[6] = {s_q, s_kv, s_o, s_v, s_v, s_v};
    float *p[6] = {0};
    for (int i = 0; i < 6; i++) {
        if (!pre[i]) continue;
        char name[160];
        snprintf(name, sizeof name, "%s%s", pre[i], names[i]);
        attn_status st = attn__bind(b, name, i < 3 ? 2 : 1, shapes[i], &p[i]);
        if (st) return st;
    }
    *sa = (axial_sa){.dim = dim, .heads = heads, .dim_heads = dim_heads, .wq = p[0], .wkv = p[1],
                     .wo = p[2], .bo = p[3], .ln_w = p[4], .ln_b = p[5]};
    return ATTN_OK;
}

int attn__axial_axes(int total, int64_t dim_index, int *emb, int axes[ATTN_MAX_RANK]) {
    int64_t e = dim_index > 0 ? dim_index : dim_index + total;
    if (e < 0 || e >= total) return -1;
    int n = 0;
    for (int i = 1; i < total; i++)
        if (i != e) axes[n++] = i;
    *emb = (int)e;
    return n;
}

/* One parallel job: rows of the tensor along `axis`, split into chunks. */
typedef struct sa_job {
    const axial_sa *sa;
    const float *x;
    float *y;
    bool acc;
    int nrest;
    int64_t rest_len[ATTN_MAX_RANK];
    size_t rest_stride[ATTN_MAX_RANK];
    size_t T, D, ax_stride, emb_stride;
    size_t nrows, rows_per_task;
    size_t per_worker; /* floats of scratch per worker */
    float *scratch;
    float *map; /* (nrows, heads, T, T) weights, or NULL */
    float scale;
} sa_job;

static size_t row_offset(const sa_job *j, size_t r) {
    size_t off = 0;
    for (int d = j->nrest - 1; d >= 0; d--) {
        size_t len = (size_t)j->rest_len[d];
        off += (r % len) * j->rest_stride[d];
        r /= len;
    }
    return off;
}

/* Shapes for a chunk of R rows of T tokens (RT = R*T), hidden = heads*e:
 *   X (RT, D)        gathered rows; later the to_out result
 *   N (RT, D)        PreNorm output (only with a LayerNorm)
 *   Q (RT, hidden)   queries; each head's slice is overwritten by its output
 *   KV (RT, 2 hidden) keys then values, as to_kv's chunk(2) splits them
 *   S (T, T)         one head's scores */
static attn_status sa_task(void *arg, size_t task, int worker) {
    const sa_job *j = arg;
    const axial_sa *sa = j->sa;
    size_t r0 = task * j->rows_per_task;
    size_t R = j->nrows - r0 < j->rows_per_task ? j->nrows - r0 : j->rows_per_task;
    size_t T = j->T, D = j->D, RT = R * T, e = (size_t)sa->dim_heads;
    size_t hid = (size_t)sa->heads * e;
    float *X = j->scratch + (size_t)worker * j->per_worker;
    float *Q = X + RT * D, *KV = Q + RT * hid, *S = KV + RT * 2 * hid, *N = S + T * T;

    for (size_t rr = 0; rr < R; rr++) {
        const float *src = j->x + row_offset(j, r0 + rr);
        float *dst = X + rr * T * D;
        /* Innermost loop over the dimension with the smaller stride in x
         * (channel-first images: the axis), so that reads stay local. */
        if (j->emb_stride > j->ax_stride) {
            for (size_t c = 0; c < D; c++)
                for (size_t t = 0; t < T; t++) dst[t * D + c] = src[t * j->ax_stride + c * j->emb_stride];
        } else {
            for (size_t t = 0; t < T; t++)
                for (size_t c = 0; c < D; c++) dst[t * D + c] = src[t * j->ax_stride + c * j->emb_stride];
        }
    }
    const float *in = X;
    if (sa->ln_w) {
        attn__layernorm(X, RT, D, sa->ln_w, sa->ln_b, 1e-5f, N);
        in = N;
    }
    ATTN_TRY(attn__linear(in, RT, D, sa->wq, NULL, hid, Q));
    ATTN_TRY(attn__linear(in, RT, D, sa->wkv, NULL, 2 * hid, KV));
    for (size_t rr = 0; rr < R; rr++)
        for (size_t h = 0; h < (size_t)sa->heads; h++) {
            float *q = Q + rr * T * hid + h * e;
            const float *k = KV + rr * T * 2 * hid + h * e, *v = k + hid;
            ATTN_TRY(attn__gemm(0, 1, T, T, e, j->scale, q, hid, k, 2 * hid, 0.0f, S, T));
            for (size_t t = 0; t < T; t++) attn__softmax_row(S + t * T, T);
            if (j->map) memcpy(j->map + ((r0 + rr) * (size_t)sa->heads + h) * T * T, S, T * T * sizeof *S);
            /* q's slice is no longer needed: the head's output takes its place */
            ATTN_TRY(attn__gemm(0, 0, T, e, T, 1.0f, S, T, v, 2 * hid, 0.0f, q, hid));
        }
    ATTN_TRY(attn__linear(Q, RT, hid, sa->wo, sa->bo, D, X));
    for (size_t rr = 0; rr < R; rr++) {
        float *dst = j->y + row_offset(j, r0 + rr);
        const float *src = X + rr * T * D;
        if (j->emb_stride > j->ax_stride) {
            for (size_t c = 0; c < D; c++)
                for (size_t t = 0; t < T; t++) {
                    float *o = &dst[t * j->ax_stride + c * j->emb_stride];
                    *o = j->acc ? *o + src[t * D + c] : src[t * D + c];
                }
        } else {
            for (size_t t = 0; t < T; t++)
                for (size_t c = 0; c < D; c++) {
                    float *o = &dst[t * j->ax_stride + c * j->emb_stride];
                    *o = j->acc ? *o + src[t * D + c] : src[t * D + c];
                }
        }
    }
    return ATTN_OK;
}

/* The job of one axis (everything but x, y and the scratch) and its
 * scratch in floats per worker and tasks; *empty when there is no row. */
static attn_status sa_plan(const axial_sa *sa, int rank, const int64_t *shape, int emb, int axis,
                           sa_job *j, size_t *ntasks, bool *empty, attn_error *err) {
    *j = (sa_job){.sa = sa};
    size_t stride[ATTN_MAX_RANK], numel = 1;
    for (int d = rank - 1; d >= 0; d--) {
        stride[d] = numel;
        numel *= (size_t)shape[d]; /* the caller's tensor exists: no overflow */
    }
    j->T = (size_t)shape[axis];
    j->D = (size_t)shape[emb];
    j->ax_stride = stride[axis];
    j->emb_stride = stride[emb];
    if (j->D != (size_t)sa->dim)
        return attn__err(err, ATTN_E_SHAPE, "axial: dimension %d must be dim=%lld, got %lld", emb,
                         (long long)sa->dim, (long long)shape[emb]);
    if (j->T == 0)
        return attn__err(err, ATTN_E_SHAPE, "axial: cannot attend along empty dimension %d", axis);
    *empty = numel == 0;
    *ntasks = 0;
    if (*empty) return ATTN_OK;
    for (int d = 0; d < rank; d++)
        if (d != axis && d != emb) {
            j->rest_len[j->nrest] = shape[d];
            j->rest_stride[j->nrest++] = stride[d];
        }
    j->nrows = numel / (j->T * j->D);
    j->scale = (float)pow((double)sa->dim_heads, -0.5);

    /* Chunks of ~256 tokens keep the projections in few sgemm calls, and at
     * least 8 chunks keep the threads busy.  The chunking depends on the
     * shape only, never on the thread count, so the sgemm sizes — and the
     * result bits — are the same however many threads run. */
    size_t rpt = (256 + j->T - 1) / j->T, fair = (j->nrows + 7) / 8;
    if (rpt > fair) rpt = fair;
    if (rpt == 0) rpt = 1;
    j->rows_per_task = rpt;
    *ntasks = (j->nrows + rpt - 1) / rpt;

    size_t hid = (size_t)sa->heads * (size_t)sa->dim_heads, RT, a, b, c, per;
    bool ok = attn__mul(rpt, j->T, &RT) && attn__mul(RT, j->D * (sa->ln_w ? 2 : 1), &a) &&
              attn__mul(hid, 3, &b) && attn__mul(RT, b, &b) && attn__mul(j->T, j->T, &c) &&
              attn__add(a, b, &per) && attn__add(per, c, &per);
    if (!ok) return attn__err(err, ATTN_E_OVERFLOW, "axial: scratch size overflows");
    j->per_worker = per;
    return ATTN_OK;
}

attn_status attn__axial_scratch(const axial_sa *sa, int rank, const int64_t *shape, int emb, int axis,
                                int threads, size_t *bytes, attn_error *err) {
    sa_job j;
    size_t ntasks;
    bool empty;
    attn_status st = sa_plan(sa, rank, shape, emb, axis, &j, &ntasks, &empty, err);
    attn_ws_layout y = {0};
    *bytes = 0;
    if (st || empty) return st;
    attn__ws_region(&y, (size_t)attn__workers_of(threads, ntasks), j.per_worker * sizeof(float));
    return attn__ws_size(&y, "axial", bytes, err);
}

attn_status attn__axial_apply(const axial_sa *sa, attn_ctx *ctx, int rank, const int64_t *shape,
                              int emb, int axis, const float *x, float *y, bool accumulate,
                              void *ws, float *map, attn_error *err) {
    sa_job j;
    size_t ntasks;
    bool empty;
    attn_status st = sa_plan(sa, rank, shape, emb, axis, &j, &ntasks, &empty, err);
    if (st || empty) return st;
    j.x = x;
    j.y = y;
    j.acc = accumulate;
    j.scratch = ws;
    j.map = map;
    st = attn__parallel_for(ctx, ntasks, sa_task, &j);
    if (st == ATTN_E_CANCELLED) return attn__err(err, st, "axial: cancelled");
    return st;
}

void attn__axial_map_shape(const axial_sa *sa, int rank, const int64_t *shape, int emb, int axis, int *mrank,
                           int64_t *mshape) {
    int n = 0;
    for (int d = 0; d < rank; d++)
        if (d != axis && d != emb) mshape[n++] = shape[d];
    mshape[n++] = sa->heads;
    mshape[n++] = shape[axis];
    mshape[n++] = shape[axis];
    *mrank = n;
}

void attn__axial_map_dims(int rank, const char *const *names, int emb, int axis, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < rank && n < cap; d++)
        if (d != axis && d != emb) n += (size_t)snprintf(buf + n, cap - n, "%s,", names[d]);
    if (n < cap) snprintf(buf + n, cap - n, "heads,%s,%s", names[axis], names[axis]);
}

/* ---- the mechanism ---- */

typedef struct axial_state {
    int64_t dim;
    int total, emb, n_axes;
    int axes[ATTN_MAX_RANK];
    bool sum;
    axial_sa sa[ATTN_MAX_RANK];
} axial_state;

static const attn_param axial_params[] = {
    {"dim", ATTN_P_INT, NULL, 1, 1 << 24, NULL, "embedding dimension"},
    {"num_dimensions", ATTN_P_INT, "2", 1, ATTN_MAX_RANK - 2, NULL,
     "number of axial dimensions (2 for images, 3 for video)"},
    {"heads", ATTN_P_INT, "8", 1, 1 << 24, NULL, "attention heads; must divide dim"},
    {"dim_heads", ATTN_P_INT, "null", 1, 1 << 24, NULL, "dimension per head; null = dim // heads"},
    {"dim_index", ATTN_P_INT, "-1", -ATTN_MAX_RANK, ATTN_MAX_RANK, NULL,
     "index of the embedding dimension in x (negative counts from the end)"},
    {"sum_axial_out", ATTN_P_BOOL, "true", 0, 0, NULL,
     "sum the attention of every axis over x (true) or apply the axes one after another"},
    {0},
};

static attn_status axial_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    axial_state *s = state;
    attn_error *err = cfg->err;
    int64_t nd, heads, dh, di;
    bool dh_null;
    attn_status st;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "dim", &s->dim, NULL)) ||
        (st = attn__cfg_int(cfg, "num_dimensions", &nd, NULL)) ||
        (st = attn__cfg_int(cfg, "heads", &heads, NULL)) ||
        (st = attn__cfg_int(cfg, "dim_heads", &dh, &dh_null)) ||
        (st = attn__cfg_int(cfg, "dim_index", &di, NULL)) ||
        (st = attn__cfg_bool(cfg, "sum_axial_out", &s->sum)))
        return st;
    /* The reference asserts this even when dim_heads is given. */
    if (s->dim % heads != 0)
        return attn__err(err, ATTN_E_CONFIG,
                         "axial: dim (%lld) must be divisible by heads (%lld)", (long long)s->dim,
                         (long long)heads);
    if (dh_null) dh = s->dim / heads;
    s->total = (int)nd + 2;
    s->n_axes = attn__axial_axes(s->total, di, &s->emb, s->axes);
    if (s->n_axes < 0)
        return attn__err(err, ATTN_E_CONFIG,
                         "axial: dim_index %lld is out of range for a %d-D input "
                         "(num_dimensions %lld + 2): use 1..%d or -1..-%d",
                         (long long)di, s->total, (long long)nd, s->total - 1, s->total);
    for (int i = 0; i < s->n_axes; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "axial_attentions.%d.fn.", i);
        if ((st = attn__axial_sa_bind(b, pre, NULL, s->dim, heads, dh, &s->sa[i]))) return st;
    }
    int64_t shape[ATTN_MAX_RANK];
    char dims[64] = "";
    size_t n = 0;
    for (int d = 0, a = 1; d < s->total; d++) {
        shape[d] = d == s->emb ? s->dim : -1;
        const char *sep = d ? "," : "";
        if (d == s->emb)
            n += (size_t)snprintf(dims + n, sizeof dims - n, "%sdim", sep);
        else if (d == 0)
            n += (size_t)snprintf(dims + n, sizeof dims - n, "%sB", sep);
        else
            n += (size_t)snprintf(dims + n, sizeof dims - n, "%sA%d", sep, a++);
    }
    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, dims, s->total, shape))) return st;
    attn__model_set_output(m, dims, s->total, shape);
    return ATTN_OK;
}

/* The axes run one after another, so they share one scratch: the
 * largest any of them needs. */
static attn_status axial_plan(const attn_model *m, const void *state, const attn_tensor_set *in,
                              int threads, attn_plan *p, attn_error *err) {
    const axial_state *s = state;
    const attn_tensor *x;
    attn_status st;
    if ((st = attn__input(m, in, "x", &x, err))) return st;
    *p = (attn_plan){.rank = x->rank};
    memcpy(p->shape, x->shape, (size_t)x->rank * sizeof *x->shape);
    for (int i = 0; i < s->n_axes; i++) {
        size_t b;
        if ((st = attn__axial_scratch(&s->sa[i], x->rank, x->shape, s->emb, s->axes[i], threads, &b, err)))
            return st;
        if (b > p->ws_bytes) p->ws_bytes = b;
    }
    return ATTN_OK;
}

/* maps[1 + i] (or NULL): axis i's weights. */
static attn_status axial_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                      const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                      attn_error *err) {
    const axial_state *s = state;
    const attn_tensor *x;
    attn_status st;
    if ((st = attn__input(m, in, "x", &x, err))) return st;
    if (s->sum) memset(out, 0, x->nbytes); /* every axis adds to it */
    for (int i = 0; i < s->n_axes; i++) {
        /* sequential: each axis reads the previous result, updated in place */
        const float *src = s->sum || i == 0 ? x->data : out;
        st = attn__axial_apply(&s->sa[i], ctx, x->rank, x->shape, s->emb, s->axes[i], src, out,
                               s->sum, ws, maps ? maps[1 + i] : NULL, err);
        if (st) return st;
    }
    return ATTN_OK;
}

static attn_status axial_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                                 const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return axial_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention maps: one per axis, attention_axis1 .. (the A1 .. of
 * x's dims), each the reference's (b*heads, T, T) as (rest..., heads, T, T) */

static attn_status axial_maps_declare(attn_model *m, const void *state) {
    const axial_state *s = state;
    char names[ATTN_MAX_RANK][16];
    const char *np[ATTN_MAX_RANK];
    for (int d = 0, k = 1; d < s->total; d++) {
        if (d == s->emb) snprintf(names[d], sizeof names[d], "dim");
        else if (d == 0) snprintf(names[d], sizeof names[d], "B");
        else snprintf(names[d], sizeof names[d], "A%d", k++);
        np[d] = names[d];
    }
    for (int i = 0; i < s->n_axes; i++) {
        char name[32], dims[64], doc[160];
        snprintf(name, sizeof name, "attention_axis%d", i + 1);
        attn__axial_map_dims(s->total, np, s->emb, s->axes[i], dims, sizeof dims);
        snprintf(doc, sizeof doc, "softmax weights along axis A%d (x's dim %d), per head, every other index fixed%s",
                 i + 1, s->axes[i], s->sum || i == 0 ? "" : "; over the previous axis' output");
        attn_status st = attn__model_add_output(m, name, dims, doc);
        if (st) return st;
    }
    return ATTN_OK;
}

static attn_status axial_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                    const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const axial_state *s = state;
    const attn_tensor *x;
    attn_status st = attn__input(m, in, "x", &x, err);
    if (st) return st;
    const int k = (int)i - 1;
    attn__axial_map_shape(&s->sa[k], x->rank, x->shape, s->emb, s->axes[k], rank, shape);
    return ATTN_OK;
}

static const attn_out_decl axial_outputs[] = {
    {"attention_axis<k>", "<x's other dims>,heads,A<k>,A<k>",
     "one per axial dim A<k> of x: softmax weights along it, per head, every other index fixed"},
    {0},
};

static const attn_maps_ops axial_maps = {
    .outputs = axial_outputs,
    .declare = axial_maps_declare, .shape = axial_maps_shape, .forward = axial_forward_maps};

const attn_mech attn_mech_axial = {
    .info =
        {
            .name = "axial",
            .aliases = (const char *const[]){"AxialAttention", NULL},
            .reference = "AxialAttention in axial_attention (lucidrains/axial-attention 0.6.1)",
            .summary = "multi-head self-attention along every axial dimension of an N-D tensor, "
                       "summed or applied in sequence",
            .params = axial_params,
            .has_weights = 1,
            .is_inner = 0,
        },
    .state_size = sizeof(axial_state),
    .init = axial_init,
    .plan = axial_plan,
    .forward = axial_forward,
    .maps = &axial_maps,
};
