/*
 * compositional.c — CompositionalAttention from compositional-attention-pytorch
 * (lucidrains), the "Compositional Attention: Disentangling Search and
 * Retrieval" layer: S searches (query/key heads) each retrieve from R value
 * heads, and a second, per-position softmax over the R retrievals picks what
 * each search returns.  Eval mode: dropout is accepted and ignored.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "mech/full.h"
#include "seq_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const attn_seq_ops comp_seq;

static const attn_param params[] = {
    {"dim", ATTN_P_INT, NULL, 1, 1 << 20, NULL, "input and output feature size"},
    {"dim_head", ATTN_P_INT, "64", 1, 1 << 16, NULL, "size of every search / retrieval head"},
    {"num_searches", ATTN_P_INT, "8", 1, 1 << 12, NULL, "number of searches (query/key heads)"},
    {"num_retrievals", ATTN_P_INT, "2", 1, 1 << 12, NULL, "number of retrievals (value heads)"},
    {"dropout", ATTN_P_FLOAT, "0.0", 0, 1, NULL, "attention dropout (ignored: eval mode)"},
    {"prenorm", ATTN_P_BOOL, "false", 0, 0, NULL, "LayerNorm(dim) on the input first"},
    {"causal", ATTN_P_BOOL, "false", 0, 0, NULL, "search j > i is masked"},
    {0},
};

typedef struct comp_state {
    int64_t dim, E, S, R; /* E = dim_head */
    bool prenorm, causal;
    float scale;          /* dim_head ** -0.5, on search and retrieval queries */
    float *norm_w, *norm_b; /* model-owned, read-only after init */
    float *w_sq, *w_sk, *w_rv, *w_rq, *w_rk, *w_out;
} comp_state;

static attn_status comp_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    comp_state *s = state;
    attn_status st;
    double dropout;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "dim", &s->dim, NULL)) ||
        (st = attn__cfg_int(cfg, "dim_head", &s->E, NULL)) ||
        (st = attn__cfg_int(cfg, "num_searches", &s->S, NULL)) ||
        (st = attn__cfg_int(cfg, "num_retrievals", &s->R, NULL)) ||
        (st = attn__cfg_float(cfg, "dropout", &dropout, NULL)) ||
        (st = attn__cfg_bool(cfg, "prenorm", &s->prenorm)) ||
        (st = attn__cfg_bool(cfg, "causal", &s->causal)))
        return st;
    /* Python evaluates dim_head ** -0.5 in double; torch multiplies in float. */
    s->scale = (float)pow((double)s->E, -0.5);

    const int64_t D = s->dim, SE = s->S * s->E, RE = s->R * s->E;
    if (s->prenorm) {
        if ((st = attn__bind(b, "norm.weight", 1, (int64_t[]){D}, &s->norm_w)) ||
            (st = attn__bind(b, "norm.bias", 1, (int64_t[]){D}, &s->norm_b)))
            return st;
    }
    if ((st = attn__bind(b, "to_searches_queries.weight", 2, (int64_t[]){SE, D}, &s->w_sq)) ||
        (st = attn__bind(b, "to_searches_keys.weight", 2, (int64_t[]){SE, D}, &s->w_sk)) ||
        (st = attn__bind(b, "to_retrieval_values.weight", 2, (int64_t[]){RE, D}, &s->w_rv)) ||
        (st = attn__bind(b, "to_retrieval_queries.weight", 2, (int64_t[]){SE, D}, &s->w_rq)) ||
        (st = attn__bind(b, "to_retrieval_keys.weight", 2, (int64_t[]){s->E, s->E}, &s->w_rk)) ||
        (st = attn__bind(b, "to_out.weight", 2, (int64_t[]){D, SE}, &s->w_out)))
        return st;

    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, "B,N,dim", 3, (int64_t[]){-1, -1, D})) ||
        (st = attn__model_add_input(m, "mask", ATTN_BOOL, false, "B,N", 2, (int64_t[]){-1, -1})))
        return st;
    attn__model_set_output(m, "B,N,dim", 3, (int64_t[]){-1, -1, D});
    return ATTN_OK;
}

/* ---- forward ----------------------------------------------------------------
 * Shapes (row-major): x (B,N,D); projections per batch row n:
 *   sq, sk, rq (N, S*E) — search s owns columns [s*E, (s+1)*E);
 *   rv (N, R*E) — retrieval r owns columns [r*E, (r+1)*E).
 * Per (b, s): sim (N,N) = sq_s sk_sᵀ, masked, softmax over keys;
 *   ret_r (N,E) = sim rv_r;  rk_r (N,E) = ret_r Wrkᵀ;
 *   w (R) = softmax_r(rq_s[n] · rk_r[n]);  comb[n, s*E:] = Σ_r w_r ret_r[n].
 * Finally out (B,N,D) = comb Woutᵀ. */

typedef struct comp_job {
    const comp_state *s;
    int64_t B, N;
    const float *x;
    const uint8_t *mask; /* (B,N) or NULL */
    float *xn;           /* (B,N,D) normalised input, or NULL without prenorm */
    float *sq, *sk, *rq, *rv;
    float *comb;         /* (B,N,S*E) */
    float *out;          /* (B,N,D) */
    float *scratch;      /* per worker: scratch_len floats */
    size_t scratch_len;
    float *smap, *rmap;  /* (B,S,N,N) search and (B,S,N,R) retrieval weights, or NULL */
    /* the fused path: rv repeated per search and the
     * retrievals, both (B,N,S,R*E), and per worker ROWS_PER_TASK*S*R*E floats
     * of retrieval keys and R of their weights */
    float *vrep, *ret, *rk;
} comp_job;

/* Rows per task of the row-wise passes (norm and projections): small enough
 * to spread one long sequence over the threads, big enough for sgemm (each
 * call packs the 512 × 512 weights of the medium bench again: 256 rows
 * against 64 measured 59.3 against 61.7-64 ms on 1 thread at N = 1024,
 * the same on 2). */
#define ROWS_PER_TASK 256

static size_t row_tasks(size_t rows) { return rows / ROWS_PER_TASK + (rows % ROWS_PER_TASK != 0); }

/* Pass 1, one chunk of the B*N rows: norm and the four input projections. */
static attn_status comp_project(void *arg, size_t t, int worker) {
    (void)worker;
    const comp_job *j = arg;
    const comp_state *s = j->s;
    const size_t D = (size_t)s->dim, SE = (size_t)(s->S * s->E), RE = (size_t)(s->R * s->E);
    const size_t r0 = t * ROWS_PER_TASK, rows = (size_t)(j->B * j->N);
    const size_t n = rows - r0 < ROWS_PER_TASK ? rows - r0 : ROWS_PER_TASK;
    const float *x = j->x + r0 * D;
    if (j->xn) {
        float *xn = j->xn + r0 * D;
        attn__layernorm(x, n, D, s->norm_w, s->norm_b, 1e-5f, xn);
        x = xn;
    }
    float *sq = j->sq + r0 * SE, *rq = j->rq + r0 * SE;
    ATTN_TRY(attn__linear(x, n, D, s->w_sq, NULL, SE, sq));
    ATTN_TRY(attn__linear(x, n, D, s->w_sk, NULL, SE, j->sk + r0 * SE));
    ATTN_TRY(attn__linear(x, n, D, s->w_rq, NULL, SE, rq));
    ATTN_TRY(attn__linear(x, n, D, s->w_rv, NULL, RE, j->rv + r0 * RE));
    /* The reference scales after projecting (sq * scale), so do we. */
    for (size_t i = 0; i < n * SE; i++) {
        sq[i] *= s->scale;
        rq[i] *= s->scale;
    }
    if (j->vrep) /* the fused path: every search's values are all R retrievals */
        for (size_t r = 0; r < n; r++)
            for (size_t si = 0; si < (size_t)s->S; si++)
                memcpy(j->vrep + ((r0 + r) * (size_t)s->S + si) * RE, j->rv + (r0 + r) * RE, RE * sizeof(float));
    return ATTN_OK;
}

/* The retrieval softmax of one (position, search): w[r] = softmax_r(q · k_r)
 * over R keys of E floats, ldk apart. */
static void retrieval_weights(const float *q, const float *k, size_t ldk, size_t R, size_t E, float *w) {
    for (size_t r = 0; r < R; r++) {
        const float *kr = k + r * ldk;
        float acc = 0.0f;
        for (size_t e = 0; e < E; e++) acc += q[e] * kr[e];
        w[r] = acc;
    }
    attn__softmax_row_d(w, R);
}

/* o (E) = Σ_r w[r] v_r, the R retrievals ldv apart. */
static void retrieval_mix(const float *w, const float *v, size_t ldv, size_t R, size_t E, float *o) {
    for (size_t e = 0; e < E; e++) o[e] = 0.0f;
    for (size_t r = 0; r < R; r++)
        for (size_t e = 0; e < E; e++) o[e] += w[r] * v[r * ldv + e];
}

/* Pass 2, one (batch, search): search attention, retrievals, retrieval
 * attention, written into comb's columns of this search.  Compiled twice
 * (`maps` a constant): the ordinary forward's copy has no trace of the
 * map writes. */
static inline __attribute__((always_inline)) attn_status comp_search_body(void *arg, size_t task, int worker, bool maps) {
    const comp_job *j = arg;
    const comp_state *s = j->s;
    const size_t N = (size_t)j->N, E = (size_t)s->E, S = (size_t)s->S, R = (size_t)s->R;
    const size_t SE = S * E, RE = R * E;
    const size_t b = task / S, si = task % S;

    float *sim = j->scratch + (size_t)worker * j->scratch_len; /* (N,N) */
    float *ret = sim + N * N;                                   /* (R,N,E) */
    float *rk = ret + R * N * E;                                /* (R,N,E) */
    float *w = rk + R * N * E;                                  /* (R) */

    const float *sq = j->sq + b * N * SE + si * E;
    const float *sk = j->sk + b * N * SE + si * E;
    const float *rq = j->rq + b * N * SE + si * E;
    const float *rv = j->rv + b * N * RE;
    const uint8_t *mask = j->mask ? j->mask + b * N : NULL;

    ATTN_TRY(attn__gemm(0, 1, N, N, E, 1.0f, sq, SE, sk, SE, 0.0f, sim, N));
    /* Masked scores get -finfo.max, not -inf, as in the reference: a row
     * with every key masked becomes uniform instead of NaN. */
    for (size_t i = 0; i < N; i++) {
        float *row = sim + i * N;
        if (mask)
            for (size_t jj = 0; jj < N; jj++)
                if (!mask[jj]) row[jj] = -FLT_MAX;
        if (s->causal)
            for (size_t jj = i + 1; jj < N; jj++) row[jj] = -FLT_MAX;
        attn__softmax_row_d(row, N);
        if (maps && j->smap) memcpy(j->smap + ((b * S + si) * N + i) * N, row, N * sizeof *row);
    }

    for (size_t r = 0; r < R; r++) {
        float *ret_r = ret + r * N * E;
        ATTN_TRY(attn__gemm(0, 0, N, E, N, 1.0f, sim, N, rv + r * E, RE, 0.0f, ret_r, E));
        ATTN_TRY(attn__linear(ret_r, N, E, s->w_rk, NULL, E, rk + r * N * E));
    }

    float *comb = j->comb + b * N * SE + si * E;
    for (size_t n = 0; n < N; n++) {
        retrieval_weights(rq + n * SE, rk + n * E, N * E, R, E, w);
        if (maps && j->rmap) memcpy(j->rmap + ((b * S + si) * N + n) * R, w, R * sizeof *w);
        retrieval_mix(w, ret + n * E, N * E, R, E, comb + n * SE);
    }
    return ATTN_OK;
}

/* The fused path's pass 2b, one chunk of rows: the retrieval keys of every
 * (row, search, retrieval) by one product (ret rows are E floats each, in
 * order), then per (row, search) the softmax over the R retrievals and
 * their weighted sum into comb, as comp_search_body does. */
static attn_status comp_retrieve(void *arg, size_t t, int worker) {
    const comp_job *j = arg;
    const comp_state *s = j->s;
    const size_t E = (size_t)s->E, S = (size_t)s->S, R = (size_t)s->R, SE = S * E;
    const size_t r0 = t * ROWS_PER_TASK, rows = (size_t)(j->B * j->N);
    const size_t n = rows - r0 < ROWS_PER_TASK ? rows - r0 : ROWS_PER_TASK;
    float *rk = j->rk + (size_t)worker * (ROWS_PER_TASK * S * R * E + R), *w = rk + ROWS_PER_TASK * S * R * E;
    const float *ret = j->ret + r0 * S * R * E;
    ATTN_TRY(attn__linear(ret, n * S * R, E, s->w_rk, NULL, E, rk));
    for (size_t i = 0; i < n; i++)
        for (size_t si = 0; si < S; si++) {
            retrieval_weights(j->rq + (r0 + i) * SE + si * E, rk + (i * S + si) * R * E, E, R, E, w);
            if (j->rmap) {
                const size_t b = (r0 + i) / (size_t)j->N, pos = (r0 + i) % (size_t)j->N;
                memcpy(j->rmap + ((b * S + si) * (size_t)j->N + pos) * R, w, R * sizeof *w);
            }
            retrieval_mix(w, ret + (i * S + si) * R * E, E, R, E, j->comb + (r0 + i) * SE + si * E);
        }
    return ATTN_OK;
}

/* The fused path's search map of one (batch, search), computed aside as
 * comp_search_body computes its weights (no mask on this path), straight
 * into the map. */
static attn_status comp_smap(void *arg, size_t task, int worker) {
    (void)worker;
    const comp_job *j = arg;
    const comp_state *s = j->s;
    const size_t N = (size_t)j->N, E = (size_t)s->E, S = (size_t)s->S, SE = S * E;
    const size_t b = task / S, si = task % S;
    float *sim = j->smap + task * N * N;
    ATTN_TRY(attn__gemm(0, 1, N, N, E, 1.0f, j->sq + b * N * SE + si * E, SE, j->sk + b * N * SE + si * E, SE, 0.0f,
                        sim, N));
    for (size_t i = 0; i < N; i++) {
        float *row = sim + i * N;
        if (s->causal)
            for (size_t jj = i + 1; jj < N; jj++) row[jj] = -FLT_MAX;
        attn__softmax_row_d(row, N);
    }
    return ATTN_OK;
}

static attn_status comp_search(void *arg, size_t task, int worker) {
    return comp_search_body(arg, task, worker, false);
}

static attn_status comp_search_maps(void *arg, size_t task, int worker) {
    return comp_search_body(arg, task, worker, true);
}

/* Pass 3, one chunk of rows: the output projection. */
static attn_status comp_output(void *arg, size_t t, int worker) {
    (void)worker;
    const comp_job *j = arg;
    const comp_state *s = j->s;
    const size_t D = (size_t)s->dim, SE = (size_t)(s->S * s->E);
    const size_t r0 = t * ROWS_PER_TASK, rows = (size_t)(j->B * j->N);
    const size_t n = rows - r0 < ROWS_PER_TASK ? rows - r0 : ROWS_PER_TASK;
    ATTN_TRY(attn__linear(j->comb + r0 * SE, n, SE, s->w_out, NULL, D, j->out + r0 * D));
    return ATTN_OK;
}

/* The inputs and the workspace of a forward on `threads`: the per-row
 * buffers (sq, sk, rq, comb, rv, then xn), then either the per-worker
 * scratch of comp_search (N*N + 2*R*N*E + R floats each) or, on the fused
 * path (no mask, or all true: the searches are full attention), its
 * buffers: vrep and ret (B*N*S*R*E floats each), per worker
 * ROWS_PER_TASK*S*R*E + R floats of retrieval keys, the causal mask (N*N
 * bytes, causal only) and full's workspace (the larger of the two: one
 * block serves either).  With maps the fused path computes the search map
 * aside (comp_smap), into the map itself. */
typedef struct comp_plan {
    const attn_tensor *x, *mask;
    size_t rows, per_worker, buf, scratch, bytes;
    bool fused; /* the fused path's regions are laid out; taken without a mask (or all true) */
    size_t vrep, ret, rk, tril, full_ws, full_bytes;
} comp_plan;

/* The full-attention block of the fused path: queries sq, keys sk (B,N,S,E:
 * the searches are the heads), values vrep (B,N,S,R*E), temperature 1 (sq is
 * scaled already); causal: the lower-triangular `tril` (its -inf weighs as
 * the reference's -finfo.max: exactly 0, and every row keeps key 0). */
static attn_qkv comp_qkv(const comp_state *s, int64_t B, int64_t N, const comp_job *j, const uint8_t *tril) {
    attn_qkv a = {.N = B, .L = N, .S = N, .H = s->S, .E = s->E, .D = s->R * s->E,
                  .q = j ? j->sq : NULL, .k = j ? j->sk : NULL, .v = j ? j->vrep : NULL,
                  .keys_all_ones = true, .queries_all_ones = true};
    if (s->causal) {
        a.attn_mask = tril;
        a.mask_lower_triangular = true;
    } else {
        a.mask_all_ones = true;
    }
    return a;
}

static attn_status plan_make(const attn_model *m, const comp_state *s, const attn_tensor_set *in,
                             int threads, comp_plan *p, attn_error *err) {
    attn_status st;
    char sh[96];
    *p = (comp_plan){0};
    if ((st = attn__input(m, in, "x", &p->x, err))) return st;
    const int64_t B = p->x->shape[0], N = p->x->shape[1];
    if (attn_tensor_set_get(in, "mask")) {
        if ((st = attn__input(m, in, "mask", &p->mask, err))) return st;
        if (p->mask->shape[0] != B || p->mask->shape[1] != N)
            return attn__err(err, ATTN_E_SHAPE, "mask: expected (B,N) = (%lld,%lld), got %s",
                             (long long)B, (long long)N,
                             attn_shape_str(p->mask->rank, p->mask->shape, sh, sizeof sh));
    }
    /* Sizes: per batch row N*(D [norm] + 3*SE + RE + SE [comb]) floats;
     * per worker N*N + 2*R*N*E + R floats. */
    const size_t Bz = (size_t)B, Nz = (size_t)N, D = (size_t)s->dim;
    const size_t SE = (size_t)(s->S * s->E), RE = (size_t)(s->R * s->E);
    size_t per_row = 0, total = 0, nn = 0, rne = 0;
    bool ok = attn__mul(Bz, Nz, &p->rows) && attn__mul(4, SE, &per_row) &&
              attn__add(per_row, RE, &per_row) && attn__add(per_row, s->prenorm ? D : 0, &per_row) &&
              attn__mul(p->rows, per_row, &total) && attn__mul(Nz, Nz, &nn) &&
              attn__mul(2 * (size_t)s->R, Nz, &rne) && attn__mul(rne, (size_t)s->E, &rne) &&
              attn__add(nn, rne, &p->per_worker) && attn__add(p->per_worker, (size_t)s->R, &p->per_worker);
    attn_ws_layout y = {.overflow = !ok};
    p->buf = attn__ws_region(&y, total, sizeof(float));
    attn_ws_layout yf = y; /* the fused path's regions, after the same buffers */
    p->scratch = attn__ws_region(&y, (size_t)attn__workers_of(threads, Bz * (size_t)s->S),
                                 p->per_worker * sizeof(float));
    p->fused = !y.overflow; /* laid out whatever the mask: the forward reads it */
    if (p->fused) {
        size_t srep = 0, rkn = 0;
        bool fok = attn__mul(p->rows, (size_t)s->S, &srep) && attn__mul(srep, RE, &srep) &&
                   attn__mul((size_t)ROWS_PER_TASK * (size_t)s->S, RE, &rkn) && attn__add(rkn, (size_t)s->R, &rkn);
        yf.overflow |= !fok;
        p->vrep = attn__ws_region(&yf, srep, sizeof(float));
        p->ret = attn__ws_region(&yf, srep, sizeof(float));
        p->rk = attn__ws_region(&yf, (size_t)attn__workers_of(threads, row_tasks(p->rows)), rkn * sizeof(float));
        p->tril = attn__ws_region(&yf, s->causal ? nn : 0, 1);
        /* sizes only: any non-NULL mask pointer stands for the causal one */
        attn_qkv a = comp_qkv(s, B, N, NULL, (const uint8_t *)"");
        if (!yf.overflow && (st = attn__full_workspace(&a, threads, &p->full_bytes, err))) return st;
        p->full_ws = attn__ws_region(&yf, p->full_bytes, 1);
        if (yf.size > y.size) y.size = yf.size;
        y.overflow |= yf.overflow;
    }
    if (y.overflow)
        return attn__err(err, ATTN_E_OVERFLOW, "compositional: scratch size overflows for x %s",
                         attn_shape_str(p->x->rank, p->x->shape, sh, sizeof sh));
    p->bytes = y.size;
    return ATTN_OK;
}

static attn_status comp_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                                int threads, attn_plan *out, attn_error *err) {
    const comp_state *s = state;
    comp_plan p;
    attn_status st = plan_make(m, s, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 3, .shape = {p.x->shape[0], p.x->shape[1], s->dim}, .ws_bytes = p.bytes};
    return ATTN_OK;
}

/* Shapes: x (B,N,dim) F32, optional mask (B,N) BOOL (0 = masked key).
 * -> out (B,N,dim) F32, written in full into the caller's `out`.  Inputs are borrowed
 * and only read; the projections sq, sk, rq (B,N,S*E), rv (B,N,R*E), comb
 * (B,N,S*E) and the per-worker scratch are in the workspace `ws` (declared by the plan; nothing is allocated here). */
static attn_status comp_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                     const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                     attn_error *err) {
    const comp_state *s = state;
    comp_plan pl;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &pl, err);
    if (st) return st;
    const size_t rows = pl.rows, SE = (size_t)(s->S * s->E), RE = (size_t)(s->R * s->E);
    comp_job j = {.s = s, .B = pl.x->shape[0], .N = pl.x->shape[1], .x = pl.x->data,
                  .mask = pl.mask ? pl.mask->data : NULL, .out = out,
                  .scratch = attn__ws_at(ws, pl.scratch), .scratch_len = pl.per_worker,
                  .smap = maps ? maps[1] : NULL, .rmap = maps ? maps[2] : NULL};
    float *p = attn__ws_at(ws, pl.buf);
    j.sq = p, p += rows * SE;
    j.sk = p, p += rows * SE;
    j.rq = p, p += rows * SE;
    j.comb = p, p += rows * SE;
    j.rv = p, p += rows * RE;
    j.xn = s->prenorm ? p : NULL;

    bool all_ones = true; /* an all-true mask is no mask (the same bits) */
    for (size_t i = 0; pl.mask && all_ones && i < rows; i++) all_ones = ((const uint8_t *)pl.mask->data)[i] != 0;
    if (pl.fused && all_ones) {
        /* The searches as one full attention over every (batch, search) —
         * the fused kernel, whose scores never leave the cache — with all R
         * retrievals as its values, then the retrieval softmax per row. */
        j.vrep = attn__ws_at(ws, pl.vrep);
        j.ret = attn__ws_at(ws, pl.ret);
        j.rk = attn__ws_at(ws, pl.rk);
        uint8_t *tril = attn__ws_at(ws, pl.tril);
        const size_t N = (size_t)j.N;
        if (s->causal)
            for (size_t i = 0; i < N; i++)
                for (size_t c = 0; c < N; c++) tril[i * N + c] = c <= i;
        attn_qkv a = comp_qkv(s, j.B, j.N, &j, tril);
        if ((st = attn__parallel_for(ctx, row_tasks(rows), comp_project, &j)) ||
            (st = attn__full_forward(1.0f, ctx, &a, j.ret, attn__ws_at(ws, pl.full_ws), err)) ||
            (st = attn__parallel_for(ctx, row_tasks(rows), comp_retrieve, &j)) ||
            (st = attn__parallel_for(ctx, row_tasks(rows), comp_output, &j)) ||
            (j.smap && (st = attn__parallel_for(ctx, (size_t)j.B * (size_t)s->S, comp_smap, &j))))
            return attn__err(err, st, "compositional: forward %s%s", st == ATTN_E_CANCELLED ? "cancelled" : "failed",
                             attn__fail_detail(st));
        return ATTN_OK;
    }
    if ((st = attn__parallel_for(ctx, row_tasks(rows), comp_project, &j)) ||
        (st = attn__parallel_for(ctx, (size_t)j.B * (size_t)s->S, maps ? comp_search_maps : comp_search, &j)) ||
        (st = attn__parallel_for(ctx, row_tasks(rows), comp_output, &j)))
        return attn__err(err, st, "compositional: forward %s%s", st == ATTN_E_CANCELLED ? "cancelled" : "failed",
                         attn__fail_detail(st));
    return ATTN_OK;
}

static attn_status comp_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                                const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return comp_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention maps: search weights and retrieval weights ---- */

static const attn_out_decl comp_outputs[] = {
    {"attention", "B,searches,N,N",
     "search weights: softmax over keys j of each search's q_i.k_j; masked (and future, causal) keys 0"},
    {"attention_retrieval", "B,searches,N,retrievals",
     "retrieval weights: each search's softmax over the R retrievals, per position"},
    {0},
};

static attn_status comp_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                   const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const comp_state *s = state;
    comp_plan pl;
    attn_status st = plan_make(m, s, in, 1, &pl, err);
    if (st) return st;
    *rank = 4;
    shape[0] = pl.x->shape[0], shape[1] = s->S, shape[2] = pl.x->shape[1];
    shape[3] = i == 1 ? pl.x->shape[1] : s->R;
    return ATTN_OK;
}

static const attn_maps_ops comp_maps = {.outputs = comp_outputs, .shape = comp_maps_shape, .forward = comp_forward_maps};

const attn_mech attn_mech_compositional = {
    .info = {
        .name = "compositional",
        .aliases = (const char *const[]){"compositional-attention", NULL},
        .reference = "CompositionalAttention in compositional_attention_pytorch (lucidrains)",
        .summary = "searches and retrievals disentangled: S query/key searches, each "
                   "choosing among R value retrievals by a second softmax",
        .params = params,
        .has_weights = 1,
        .is_inner = 0,
    },
    .state_size = sizeof(comp_state),
    .init = comp_init,
    .plan = comp_plan_fn,
    .forward = comp_forward,
    .seq = &comp_seq,
    .maps = &comp_maps,
};

/* ---- sequences (causal=true) ----
 * The state is each stream's search keys (t, S·E) and retrieval values
 * (t, R·E).  A step projects its new rows only, appends their keys and
 * values, and runs comp_search's arithmetic for each new position p over
 * keys 0 .. p: the keys the causal mask hides get -finfo.max there, whose
 * exponential is exactly 0, so leaving them out changes nothing.  `mask`
 * (padding of the whole sequence) is refused. */

enum { SEARCH_KEYS, RETRIEVAL_VALUES };

static unsigned comp_seq_kinds(const attn_model *m, const void *state, const char **why) {
    const comp_state *s = state;
    if (s && !s->causal) {
        if (why) *why = "it needs causal=true";
        return 0;
    }
    return ATTN_SEQ_SELF;
}

static attn_status comp_seq_layout(attn_seq *q, attn_error *err) {
    const comp_state *s = q->mstate;
    attn_status st;
    return (st = attn__seq_buf_add(q, "search_keys", ATTN_F32, true, (size_t)(s->S * s->E), err)) ? st
           : attn__seq_buf_add(q, "retrieval_values", ATTN_F32, true, (size_t)(s->R * s->E), err);
}

typedef struct comp_seq_job {
    const comp_state *s;
    const attn_seq *q;
    int64_t T;
    const float *sq, *rq; /* (N·T, S·E), scaled */
    float *comb;          /* (N·T, S·E) */
    float *scratch;       /* per worker: len+T + 2·R·E + R */
    size_t scratch_len;
} comp_seq_job;

static attn_status comp_seq_task(void *arg, size_t task, int worker) {
    const comp_seq_job *j = arg;
    const comp_state *s = j->s;
    const size_t E = (size_t)s->E, S = (size_t)s->S, R = (size_t)s->R, SE = S * E, RE = R * E, T = (size_t)j->T;
    const size_t b = task / S, si = task % S, len = (size_t)j->q->len;
    float *sim = j->scratch + (size_t)worker * j->scratch_len, *ret = sim + len + T, *rk = ret + RE, *w = rk + RE;
    const float *sk = attn__seq_stream(j->q, SEARCH_KEYS, (int64_t)b), *rv = attn__seq_stream(j->q, RETRIEVAL_VALUES, (int64_t)b);
    for (size_t t = 0; t < T; t++) {
        const size_t p = len + t, row = b * T + t;
        const float *qs = j->sq + row * SE + si * E;
        for (size_t x = 0; x <= p; x++) {
            const float *k = sk + x * SE + si * E;
            float acc = 0.0f;
            for (size_t e = 0; e < E; e++) acc += qs[e] * k[e];
            sim[x] = acc;
        }
        attn__softmax_row_d(sim, p + 1);
        for (size_t r = 0; r < R; r++) {
            float *ret_r = ret + r * E;
            for (size_t e = 0; e < E; e++) ret_r[e] = 0.0f;
            for (size_t x = 0; x <= p; x++) {
                const float *v = rv + x * RE + r * E;
                for (size_t e = 0; e < E; e++) ret_r[e] += sim[x] * v[e];
            }
            ATTN_TRY(attn__linear(ret_r, 1, E, s->w_rk, NULL, E, rk + r * E));
        }
        retrieval_weights(j->rq + row * SE + si * E, rk, E, R, E, w);
        retrieval_mix(w, ret, E, R, E, j->comb + row * SE + si * E);
    }
    return ATTN_OK;
}

static attn_status comp_seq_step(attn_seq *q, attn_ctx *ctx, const attn_tensor_set *in, attn_tensor **out,
                                 attn_error *err) {
    const comp_state *s = q->mstate;
    const attn_tensor *x;
    attn_status st;
    if ((st = attn__seq_refuse(in, "mask", "padding cannot apply to a stream (end the sequence instead)", err)) ||
        (st = attn__input(q->model, in, "x", &x, err)))
        return st;
    const int64_t B = x->shape[0], T = x->shape[1];
    if (B != q->N)
        return attn__err(err, ATTN_E_SHAPE, "input 'x' has B=%lld; the sequence has %lld streams", (long long)B,
                         (long long)q->N);
    if ((st = attn__seq_begin(q, 0, NULL, T, err))) return st;
    const size_t D = (size_t)s->dim, SE = (size_t)(s->S * s->E), RE = (size_t)(s->R * s->E), rows = (size_t)(B * T);
    size_t tot, pw, all;
    const int workers = attn__workers(ctx, (size_t)B * (size_t)s->S);
    float *buf = NULL, *scratch = NULL;
    attn_tensor *y = NULL;
    bool ok = attn__mul(rows, 4 * SE + RE + (s->prenorm ? D : 0), &tot) &&
              attn__add((size_t)q->len + (size_t)T, 2 * RE + (size_t)s->R, &pw) &&
              attn__mul(pw, (size_t)workers, &all);
    if (!ok) {
        st = attn__err(err, ATTN_E_OVERFLOW, "compositional: scratch size overflows");
        goto done;
    }
    if (!(buf = attn__calloc(tot, sizeof(float), err)) || !(scratch = attn__calloc(all, sizeof(float), err))) {
        st = err ? err->code : ATTN_E_NOMEM;
        goto done;
    }
    float *sq = buf, *sk = sq + rows * SE, *rq = sk + rows * SE, *comb = rq + rows * SE, *rv = comb + rows * SE;
    const float *xin = x->data;
    if (s->prenorm) {
        float *xn = rv + rows * RE;
        attn__layernorm(xin, rows, D, s->norm_w, s->norm_b, 1e-5f, xn);
        xin = xn;
    }
    if ((st = attn__linear_rows(ctx, xin, rows, D, s->w_sq, NULL, SE, sq)) ||
        (st = attn__linear_rows(ctx, xin, rows, D, s->w_sk, NULL, SE, sk)) ||
        (st = attn__linear_rows(ctx, xin, rows, D, s->w_rq, NULL, SE, rq)) ||
        (st = attn__linear_rows(ctx, xin, rows, D, s->w_rv, NULL, RE, rv)))
        goto done;
    for (size_t i = 0; i < rows * SE; i++) {
        sq[i] *= s->scale;
        rq[i] *= s->scale;
    }
    for (int64_t b = 0; b < B; b++) {
        memcpy((float *)attn__seq_stream(q, SEARCH_KEYS, b) + (size_t)q->len * SE, sk + (size_t)(b * T) * SE,
               (size_t)T * SE * sizeof(float));
        memcpy((float *)attn__seq_stream(q, RETRIEVAL_VALUES, b) + (size_t)q->len * RE, rv + (size_t)(b * T) * RE,
               (size_t)T * RE * sizeof(float));
    }
    comp_seq_job j = {.s = s, .q = q, .T = T, .sq = sq, .rq = rq, .comb = comb, .scratch = scratch, .scratch_len = pw};
    if ((st = attn__parallel_for(ctx, (size_t)B * (size_t)s->S, comp_seq_task, &j)) ||
        (st = attn__tensor_new_uninit(ATTN_F32, 3, (int64_t[]){B, T, s->dim}, &y, err)))
        goto done;
    if ((st = attn__linear_rows(ctx, comb, rows, SE, s->w_out, NULL, D, y->data))) goto done;
    *out = y;
    y = NULL;
done:
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    attn_tensor_free(y);
    free(buf);
    free(scratch);
    return attn__seq_commit(q, st, T);
}

static const attn_seq_ops comp_seq = {
    .kinds = comp_seq_kinds,
    .layout = comp_seq_layout,
    .step = comp_seq_step,
};
