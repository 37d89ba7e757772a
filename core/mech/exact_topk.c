/*
 * exact_topk.c — ExactTopKAttention (fast-transformers): softmax over each
 * query's top-k keys only.
 *
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) -> out (N,L,H,D).
 * Scores QK (unscaled) plus the attn_mask and key_lengths masks (-inf) pick
 * the k = min(topk, S) largest; the softmax of temp·score runs over those
 * (masked keys among them weigh 0; a row with all -inf is NaN, as in torch).
 * Ties at the k-th score go to the lower key index.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "mech/full.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BQ 32

typedef struct topk_state {
    int64_t topk;
    float softmax_temp;
} topk_state;

static const attn_param topk_params[] = {
    {"topk", ATTN_P_INT, "32", 1, 1 << 30, NULL, "keys kept per query (min(topk, S))"},
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, "null (or 0) means 1/sqrt(E)"},
    {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL, "accepted and ignored (eval mode)"},
    {0},
};

static attn_status topk_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    topk_state *s = state;
    attn_full_cfg fc;
    attn_status st = attn__cfg_int(cfg, "topk", &s->topk, NULL);
    if (!st) st = attn__full_parse(cfg, &fc);
    if (st) return st;
    s->softmax_temp = fc.softmax_temp;
    return attn__qkv_declare(m, 0, 0);
}

typedef struct topk_job {
    const attn_qkv *a;
    size_t k, qblocks, per_worker;
    float temp;
    float *out, *scratch;
} topk_job;

static void sift_down(float *h, size_t n, size_t i) {
    float x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (!(h[c] < x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* The k-th largest of row[0..S), 1 <= k <= S, counting repeats: a min-heap
 * of the k largest seen so far (O(S log k), most keys fail the first test). */
static float kth_largest(const float *row, size_t S, size_t k, float *heap) {
    memcpy(heap, row, k * sizeof *heap);
    for (size_t i = k / 2; i-- > 0;) sift_down(heap, k, i);
    for (size_t s = k; s < S; s++)
        if (row[s] > heap[0]) {
            heap[0] = row[s];
            sift_down(heap, k, 0);
        }
    return heap[0];
}

static attn_status topk_task(void *arg, size_t task, int worker) {
    const topk_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, L = (size_t)a->L,
                 S = (size_t)a->S, k = j->k;
    size_t qb = task % j->qblocks, nh = task / j->qblocks, n = nh / H, h = nh % H;
    size_t l0 = qb * BQ, nq = L - l0 < BQ ? L - l0 : BQ;
    float *sc = j->scratch + (size_t)worker * j->per_worker, *heap = sc + BQ * S;
    float *w = heap + S;
    uint32_t *idx = (uint32_t *)(void *)(w + S);
    size_t klen = a->key_lengths ? (size_t)a->key_lengths[n] : S;
    ATTN_TRY(attn__gemm(0, 1, nq, S, E, 1.0f, a->q + ((n * L + l0) * H + h) * E, H * E,
                        a->k + (n * S * H + h) * E, H * E, 0.0f, sc, S));
    for (size_t i = 0; i < nq; i++) {
        float *row = sc + i * S;
        if (a->attn_mask && !a->mask_all_ones) {
            const uint8_t *mrow = a->attn_mask + (l0 + i) * S;
            for (size_t s = 0; s < S; s++)
                if (!mrow[s]) row[s] = -INFINITY;
        }
        for (size_t s = klen; s < S; s++) row[s] = -INFINITY;
        float thr = kth_largest(row, S, k, heap);
        size_t above = 0;
#pragma omp simd reduction(+ : above)
        for (size_t s = 0; s < S; s++) above += row[s] > thr;
        size_t ties = k - above, m = 0;
        for (size_t s = 0; s < S; s++) {
            if (row[s] > thr || (row[s] == thr && ties > 0)) {
                if (!(row[s] > thr)) ties--;
                idx[m] = (uint32_t)s;
                w[m++] = j->temp * row[s];
            }
        }
        attn__softmax_row(w, m);
        float *o = j->out + ((n * L + l0 + i) * H + h) * D;
        for (size_t d = 0; d < D; d++) o[d] = 0.0f;
        for (size_t t = 0; t < m; t++) {
            attn__axpy(o, w[t], a->v + ((n * S + idx[t]) * H + h) * D, D);
        }
    }
    return ATTN_OK;
}

/* The job of a forward (everything but out and scratch), its tasks and
 * the workspace: per worker BQ score rows, a k-heap (S floats), weights,
 * and 32-bit key indices. */
static attn_status topk_plan(const topk_state *s, const attn_qkv *a, int threads, topk_job *j,
                             size_t *tasks, size_t *bytes, attn_error *err) {
    *j = (topk_job){.a = a, .temp = attn__temp(s->softmax_temp, a->E)};
    j->k = (size_t)(s->topk < a->S ? s->topk : a->S);
    j->qblocks = ((size_t)a->L + BQ - 1) / BQ;
    size_t S = (size_t)a->S, per;
    if (S > UINT32_MAX || !attn__mul(S, BQ + 3, &per))
        return attn__err(err, ATTN_E_OVERFLOW, "exact_topk: scratch size overflows");
    j->per_worker = per;
    *tasks = (size_t)a->N * (size_t)a->H * j->qblocks;
    attn_ws_layout y = {0};
    attn__ws_region(&y, (size_t)attn__workers_of(threads, *tasks), per * sizeof(float));
    return attn__ws_size(&y, "exact_topk", bytes, err);
}

static attn_status topk_workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                      attn_error *err) {
    topk_job j;
    size_t tasks;
    return topk_plan(state, a, threads, &j, &tasks, bytes, err);
}

static attn_status topk_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                    void *ws, attn_error *err) {
    topk_job j;
    size_t tasks, bytes;
    attn_status st = topk_plan(state, a, attn_ctx_threads(ctx), &j, &tasks, &bytes, err);
    if (st) return st;
    j.out = out;
    j.scratch = ws;
    st = attn__parallel_for(ctx, tasks, topk_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

/* ---- the attention map: the softmax over each query's top-k keys ---- */

static const attn_out_decl topk_outputs[] = {
    {"attention", "N,H,L,S",
     "softmax(temp*Q K^T) over each query's min(topk, S) largest scores; other and masked keys 0"},
    {0},
};

static attn_status topk_maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                                 float *const *maps, attn_error *err) {
    const topk_state *s = state;
    const size_t k = (size_t)(s->topk < a->S ? s->topk : a->S);
    return attn__maps_softmax_qkv(ctx, a, attn__temp(s->softmax_temp, a->E), k, maps[1], err);
}

static const attn_maps_ops topk_maps = {.outputs = topk_outputs, .qkv = topk_maps_qkv};

static const char *const topk_aliases[] = {"exact-topk", NULL};

const attn_mech attn_mech_exact_topk = {
    .info = {.name = "exact_topk",
             .aliases = topk_aliases,
             .reference = "fast_transformers.attention.ExactTopKAttention",
             .summary = "softmax attention over each query's top-k keys",
             .params = topk_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(topk_state),
    .init = topk_init,
    .workspace_qkv = topk_workspace_qkv,
    .forward_qkv = topk_forward_qkv,
    .maps = &topk_maps,
};
