/*
 * full.c — FullAttention (fast-transformers): softmax(temp · Q Kᵀ + masks) V.
 *
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) -> out (N,L,H,D).
 * Masks: attn_mask (L,S) adds -inf where false; key_lengths adds -inf for
 * s >= key_lengths[n]; query_lengths is ignored, as in the reference.
 * A row with every key masked is NaN, as torch's softmax makes it.
 *
 * The fast path never forms the L×S matrix: for each block of BQ (256) queries it
 * walks the keys in blocks of BK (1024), keeping a running max, a running sum and
 * an unnormalised output (online softmax, as flash-attention does), so
 * extra memory is O(BQ·(BK + D)) per worker whatever L and S are.  Both
 * products are attn__gemm calls on strided views of the inputs.  Both this
 * path and the fused kernel (full_fused.c) take their scratch from the
 * forward's workspace (full_workspace_qkv sizes it: core/workspace.h) and
 * allocate none of their own.
 * attn__full_reference is the plain three-loop version the tests compare
 * against.
 */
#include "attn_internal.h"
#include "kernels/kernels.h"
#include "mech/full.h"
#include "workspace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef BQ
#define BQ 256
#endif
#ifndef BK
#define BK 1024
#endif

static const attn_param full_params[] = {
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL,
     "softmax temperature; null (or 0) means 1/sqrt(E), as in the reference"},
    {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL, "accepted and ignored (eval mode)"},
    {0},
};

attn_status attn__full_parse(const attn_cfg *cfg, attn_full_cfg *out) {
    bool null;
    double t, drop;
    attn_status st = attn__cfg_float(cfg, "softmax_temp", &t, &null);
    if (!st) st = attn__cfg_float(cfg, "attention_dropout", &drop, NULL);
    if (st) return st;
    /* The reference computes `softmax_temp or 1/sqrt(E)`: 0 means default. */
    out->softmax_temp = null ? 0.0f : (float)t;
    return ATTN_OK;
}

float attn__temp(float softmax_temp, int64_t E) {
    return softmax_temp != 0.0f ? softmax_temp : (float)(1.0 / sqrt((double)E));
}

static attn_status full_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    attn_status st = attn__full_parse(cfg, state);
    return st ? st : attn__qkv_declare(m, 0, 0);
}

/* ---- blocked online-softmax kernel ---- */

typedef struct full_job {
    const attn_qkv *a;
    float temp;
    float *out;
    size_t qblocks;
    size_t bk;      /* key block: min(S, BK) */
    float *scratch; /* per worker: bq*bk scores + bq*D acc + 2*bq (bq = min(L, BQ)) */
    size_t per_worker; /* floats, a multiple of a cache line */
} full_job;

static attn_status full_task(void *arg, size_t task, int worker) {
    const full_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, L = (size_t)a->L,
                 S = (size_t)a->S;
    size_t qb = task % j->qblocks, nh = task / j->qblocks, n = nh / H, h = nh % H;
    size_t l0 = qb * BQ, nq = L - l0 < BQ ? L - l0 : BQ;
    float *sc = j->scratch + (size_t)worker * j->per_worker;
    float *acc = sc + nq * j->bk, *mx = acc + nq * D, *sum = mx + nq;
    const float *q = a->q + ((n * L + l0) * H + h) * E;
    const float *k = a->k + (n * S * H + h) * E;
    const float *v = a->v + (n * S * H + h) * D;
    size_t klen = a->key_lengths ? (size_t)a->key_lengths[n] : S;

    memset(acc, 0, nq * D * sizeof *acc);
    for (size_t i = 0; i < nq; i++) {
        mx[i] = -INFINITY;
        sum[i] = 0.0f;
    }
    /* Keys at or past key_lengths are -inf for every query: skip them. */
    for (size_t s0 = 0; s0 < klen; s0 += j->bk) {
        size_t nk = klen - s0 < j->bk ? klen - s0 : j->bk;
        ATTN_TRY(attn__gemm(0, 1, nq, nk, E, j->temp, q, H * E, k + s0 * H * E, H * E, 0.0f, sc, nk));
        for (size_t i = 0; i < nq; i++) {
            float *row = sc + i * nk;
            if (a->attn_mask && !a->mask_all_ones) {
                const uint8_t *mrow = a->attn_mask + (l0 + i) * S + s0;
                for (size_t s = 0; s < nk; s++)
                    if (!mrow[s]) row[s] = -INFINITY;
            }
            float bm = -INFINITY;
#pragma omp simd reduction(max : bm)
            for (size_t s = 0; s < nk; s++) bm = row[s] > bm ? row[s] : bm;
            float m_new = bm > mx[i] ? bm : mx[i];
            if (m_new == -INFINITY) { /* nothing visible yet: contributes nothing */
                memset(row, 0, nk * sizeof *row);
                continue;
            }
            float scale = expf(mx[i] - m_new), ps = attn__exp_sub_sum(row, nk, m_new);
            sum[i] = sum[i] * scale + ps;
            mx[i] = m_new;
            if (scale != 1.0f) {
                float *o = acc + i * D;
                for (size_t d = 0; d < D; d++) o[d] *= scale;
            }
        }
        ATTN_TRY(attn__gemm(0, 0, nq, D, nk, 1.0f, sc, nk, v + s0 * H * D, H * D, 1.0f, acc, D));
    }
    float *out = j->out + ((n * L + l0) * H + h) * D;
    for (size_t i = 0; i < nq; i++) {
        float inv = sum[i] > 0.0f ? 1.0f / sum[i] : NAN; /* fully masked row: NaN as torch */
        for (size_t d = 0; d < D; d++) out[i * H * D + d] = acc[i * D + d] * inv;
    }
    return ATTN_OK;
}

/* The blocked path's job (blocks, tasks) and its workspace on `threads`
 * threads: per worker bq·bk scores, bq·D outputs and 2·bq running max and
 * sum, sized by the blocks actually used (a 16-token request needs 16×16
 * scores, not 256×1024).  The one layout both attn__full_blas_ws and the
 * forward read. */
static attn_status blas_layout(const attn_qkv *a, int threads, full_job *j, size_t *tasks, size_t *bytes,
                               attn_error *err) {
    *j = (full_job){.a = a};
    j->qblocks = ((size_t)a->L + BQ - 1) / BQ;
    if (!attn__mul((size_t)a->N * (size_t)a->H, j->qblocks, tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "full: too many tasks");
    size_t bq = (size_t)a->L < BQ ? (size_t)a->L : BQ, bk = (size_t)a->S < BK ? (size_t)a->S : BK;
    size_t scores, acc, per;
    j->bk = bk;
    if (!attn__mul(bq, bk, &scores) || !attn__mul(bq, (size_t)a->D, &acc) || !attn__add(scores, acc, &per) ||
        !attn__add(per, 2 * bq, &per))
        return attn__err(err, ATTN_E_OVERFLOW, "full: workspace size overflows");
    /* each worker's slice a whole number of cache lines */
    attn_ws_layout w = {0}, y = {0};
    attn__ws_region(&w, per, sizeof(float));
    attn__ws_array(&y, (size_t)attn__workers_of(threads, *tasks), &w);
    j->per_worker = w.size / sizeof(float);
    return attn__ws_size(&y, "full", bytes, err);
}

attn_status attn__full_blas_ws(const attn_qkv *a, int threads, size_t *bytes, attn_error *err) {
    full_job j;
    size_t tasks;
    return blas_layout(a, threads, &j, &tasks, bytes, err);
}

/* Not zeroed: every task initialises the scratch it reads. */
attn_status attn__full_blas(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                            attn_error *err) {
    full_job j;
    size_t tasks, bytes;
    attn_status st = blas_layout(a, attn_ctx_threads(ctx), &j, &tasks, &bytes, err);
    if (st) return st;
    j.temp = temp;
    j.out = out;
    j.scratch = ws;
    st = attn__parallel_for(ctx, tasks, full_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

/* The fused kernel wherever it applies; with fewer than 8 queries its
 * vector-wide query blocks would mostly compute padding. */
static bool use_fused(const attn_qkv *a) {
#ifndef ATTN_FULL_NO_FUSED
    return a->L >= 8 && attn__full_fused_ok(a);
#else
    return false;
#endif
}

attn_status attn__full_workspace(const attn_qkv *a, int threads, size_t *bytes, attn_error *err) {
    return use_fused(a) ? attn__full_fused_ws(a, threads, bytes, err) : attn__full_blas_ws(a, threads, bytes, err);
}

attn_status attn__full_forward(float softmax_temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                               attn_error *err) {
    float temp = attn__temp(softmax_temp, a->E);
    return use_fused(a) ? attn__full_fused(temp, ctx, a, out, ws, err) : attn__full_blas(temp, ctx, a, out, ws, err);
}

static attn_status full_workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                      attn_error *err) {
    return attn__full_workspace(a, threads, bytes, err);
}

static attn_status full_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                    void *ws, attn_error *err) {
    const attn_full_cfg *c = state;
    return attn__full_forward(c->softmax_temp, ctx, a, out, ws, err);
}

/* ---- plain reference (tests compare the fast paths against it) ---- */

attn_status attn__full_reference(float softmax_temp, const attn_qkv *a, float *out,
                                 attn_error *err) {
    const int64_t N = a->N, L = a->L, S = a->S, H = a->H, E = a->E, D = a->D;
    const double temp = attn__temp(softmax_temp, E);
    double *row = attn__calloc(S > 0 ? (size_t)S : 1, sizeof *row, err);
    if (!row) return ATTN_E_NOMEM;
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                const float *q = a->q + ((n * L + l) * H + h) * E;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t s = 0; s < S; s++) {
                    const float *k = a->k + ((n * S + s) * H + h) * E;
                    double dot = 0.0;
                    for (int64_t e = 0; e < E; e++) dot += (double)q[e] * k[e];
                    bool keep = (!a->attn_mask || a->attn_mask[l * S + s]) &&
                                (!a->key_lengths || s < a->key_lengths[n]);
                    row[s] = keep ? temp * dot : -INFINITY;
                    mx = row[s] > mx ? row[s] : mx;
                }
                /* every key masked: NaN, as torch's softmax of all -inf */
                for (int64_t s = 0; s < S; s++) sum += row[s] = mx == -INFINITY ? NAN : exp(row[s] - mx);
                float *o = out + ((n * L + l) * H + h) * D;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0.0;
                    for (int64_t s = 0; s < S; s++) acc += row[s] / sum * a->v[((n * S + s) * H + h) * D + d];
                    o[d] = (float)acc;
                }
            }
    free(row);
    return ATTN_OK;
}

/* ---- the attention map (docs/attention-maps.md) ---- */

static const attn_out_decl full_outputs[] = {
    {"attention", "N,H,L,S",
     "A = softmax(temp*Q K^T + masks), the matrix of FullAttention's AttentionEvent; masked keys 0"},
    {0},
};

static attn_status full_maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                                 float *const *maps, attn_error *err) {
    const attn_full_cfg *c = state;
    return attn__maps_softmax_qkv(ctx, a, attn__temp(c->softmax_temp, a->E), 0, maps[1], err);
}

static const attn_maps_ops full_maps = {.outputs = full_outputs, .qkv = full_maps_qkv};

const attn_mech attn_mech_full = {
    .info = {.name = "full",
             .aliases = NULL,
             .reference = "fast_transformers.attention.FullAttention",
             .summary = "softmax attention over every key (blocked, online softmax)",
             .params = full_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(attn_full_cfg),
    .init = full_init,
    .workspace_qkv = full_workspace_qkv,
    .forward_qkv = full_forward_qkv,
    .out_may_alias_queries = true, /* both paths: a task reads only its own query rows */
    .seq = &attn__seq_full,
    .maps = &full_maps,
};
