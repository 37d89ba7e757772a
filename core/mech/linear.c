/*
 * linear.c — LinearAttention and CausalLinearAttention (fast-transformers).
 *
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) -> out (N,L,H,D); φ maps E
 * to F features (feature_map.h).  Per (n, h):
 *   linear:        KV = φKᵀ V (F×D), z = Σ_s φK_s;  out_l = φQ_l KV / (φQ_l·z + eps)
 *   causal_linear: the same with sums over s ≤ l only.
 * φK is zeroed for keys at or past key_lengths[n].  linear rejects any
 * attn_mask that is not all ones; causal_linear needs a lower-triangular one
 * (or none, which we read as causal) and, as the reference's size fix does,
 * uses only the first L keys when L < S.  L > S makes the reference read out
 * of bounds, so it is rejected.
 *
 * The causal sum runs in chunks of CH rows: within a chunk the masked
 * φQ φKᵀ product is an sgemm, across chunks the running KV carries the past.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "mech/feature_map.h"
#include "seq_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CH 64

static const attn_seq_ops lin_seq, causal_seq;

typedef struct lin_state {
    int64_t query_dimensions;
    float eps;
    attn_fmap fm;
    bool causal;
} lin_state;

static const attn_param lin_params[] = {
    {"query_dimensions", ATTN_P_INT, NULL, 1, 1 << 20, NULL,
     "E, the per-head query dimension: sizes a random feature map's omega; ignored by the default elu map"},
    {"feature_map", ATTN_P_OBJECT, "null", 0, 0, NULL,
     "null (elu(x)+1), or \"elu\"|\"rff\"|\"smoothed_rff\"|\"favor\"|\"grf\", or an object {type, n_dims, "
     "softmax_temp, orthogonal, smoothing, stabilize, kernel_fn, seed}"},
    {"eps", ATTN_P_FLOAT, "1e-06", 0, 1, NULL, "added to the normaliser"},
    {0},
};

static attn_status lin_init_common(attn_model *m, lin_state *s, const attn_cfg *cfg, attn_binder *b,
                                   bool causal) {
    int64_t qd;
    double eps;
    const json_t *fm;
    attn_status st;
    if ((st = attn__cfg_int(cfg, "query_dimensions", &qd, NULL)) ||
        (st = attn__cfg_float(cfg, "eps", &eps, NULL)) || (st = attn__cfg_object(cfg, "feature_map", &fm)))
        return st;
    s->query_dimensions = qd;
    s->eps = (float)eps;
    s->causal = causal;
    if ((st = attn__fmap_init(&s->fm, fm, qd, b))) return st;
    /* As in the reference, query_dimensions only sizes ω: the default elu
     * map has none and works on any E; a random map's ω (qd, ·) fixes E. */
    return attn__qkv_declare(m, s->fm.kind == FM_ELU ? 0 : qd, 0);
}

/* The feature map for per-head dimension E: elu(x)+1 maps E to E features
 * whatever query_dimensions says; the random maps are fixed at init. */
static attn_fmap lin_fmap(const lin_state *s, int64_t E) {
    attn_fmap fm = s->fm;
    if (fm.kind == FM_ELU) fm.E = fm.F = E;
    return fm;
}

static attn_status linear_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return lin_init_common(m, state, cfg, b, false);
}
static attn_status causal_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return lin_init_common(m, state, cfg, b, true);
}

typedef struct lin_job {
    const lin_state *s;
    const attn_qkv *a;
    int64_t S_used; /* keys read: S, or L for causal when L < S */
    float *out;
    float *scratch;
    size_t per_worker;
} lin_job;

/* Gathers rows of head h of x (T rows, stride H*W) into a contiguous (T,W).
 * The rows ahead are asked for while one is copied: H*W apart, a row a page
 * or two, they are where the hardware prefetchers stop (without it the copy
 * waited on each row in turn: 16% of a 1024-token forward). */
#define GATHER_AHEAD 8
static void gather(const float *x, size_t T, size_t H, size_t W, size_t h, float *dst) {
    const size_t ld = H * W;
    x += h * W;
    for (size_t t = 0; t < T && t < GATHER_AHEAD; t++)
        for (size_t w = 0; w < W; w += 16) __builtin_prefetch(x + t * ld + w, 0, 3);
    for (size_t t = 0; t < T; t++) {
        if (t + GATHER_AHEAD < T)
            for (size_t w = 0; w < W; w += 16) __builtin_prefetch(x + (t + GATHER_AHEAD) * ld + w, 0, 3);
        memcpy(dst + t * W, x + t * ld, W * sizeof *dst);
    }
}

/* φ of head h's rows of x (T rows, stride H*E) into dst (T, F).  The
 * default elu map gathers straight into dst and maps it in place: the same
 * values as gathering into raw and mapping a copy, one copy fewer. */
static void gather_map(const attn_fmap *fm, const float *x, size_t T, size_t H, size_t E, size_t h, float *raw,
                       float *dst) {
    if (fm->kind == FM_ELU) {
        gather(x, T, H, E, h, dst);
        attn__elu1(dst, T * E);
        return;
    }
    gather(x, T, H, E, h, raw);
    attn__fmap_apply(fm, raw, T, dst, fm->stabilize ? attn__fmap_sqnorm_max(fm, raw, T) : 0);
}

static attn_status lin_task(void *arg, size_t task, int worker) {
    const lin_job *j = arg;
    const lin_state *s = j->s;
    const attn_qkv *a = j->a;
    const attn_fmap fm = lin_fmap(s, a->E);
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, L = (size_t)a->L,
                 S = (size_t)a->S, F = (size_t)fm.F, Su = (size_t)j->S_used;
    const size_t n = task / H, h = task % H;
    float *w = j->scratch + (size_t)worker * j->per_worker;
    size_t big = L > Su ? L : Su;
    float *raw = w, *pq = raw + big * E, *pk = pq + L * F, *vv = pk + Su * F, *kv = vv + Su * D,
          *z = kv + F * D, *blk = z + F;

    gather_map(&fm, a->q + n * L * H * E, L, H, E, h, raw, pq);
    gather_map(&fm, a->k + n * S * H * E, Su, H, E, h, raw, pk);
    (void)vv; /* V is read in place: rows of head h, H*D apart */
    const float *vh = a->v + n * S * H * D + h * D;
    const size_t ldv = H * D;
    if (a->key_lengths)
        for (size_t t = (size_t)a->key_lengths[n]; t < Su; t++) memset(pk + t * F, 0, F * sizeof *pk);

    float *out = j->out + n * L * H * D + h * D;
    memset(kv, 0, F * D * sizeof *kv);
    memset(z, 0, F * sizeof *z);
    if (!s->causal) {
        ATTN_TRY(attn__gemm(1, 0, F, D, Su, 1.0f, pk, F, vh, ldv, 0.0f, kv, D));
        for (size_t t = 0; t < Su; t++) {
#pragma omp simd
            for (size_t f = 0; f < F; f++) z[f] += pk[t * F + f];
        }
        float *o = blk; /* (CH, D) */
        for (size_t l0 = 0; l0 < L; l0 += CH) {
            size_t nl = L - l0 < CH ? L - l0 : CH;
            ATTN_TRY(attn__gemm(0, 0, nl, D, F, 1.0f, pq + l0 * F, F, kv, D, 0.0f, o, D));
            for (size_t i = 0; i < nl; i++) {
                const float *qf = pq + (l0 + i) * F;
                float den = 0;
#pragma omp simd reduction(+ : den)
                for (size_t f = 0; f < F; f++) den += qf[f] * z[f];
                float inv = 1.0f / (den + s->eps);
#pragma omp simd
                for (size_t d = 0; d < D; d++) out[(l0 + i) * H * D + d] = o[i * D + d] * inv;
            }
        }
        return ATTN_OK;
    }
    /* causal: chunks of CH rows; A = tril(φQc φKcᵀ). */
    float *A = blk, *o = blk + CH * CH;
    for (size_t l0 = 0; l0 < L; l0 += CH) {
        size_t nl = L - l0 < CH ? L - l0 : CH;
        const float *qc = pq + l0 * F, *kc = pk + l0 * F, *vc = vh + l0 * ldv;
        ATTN_TRY(attn__gemm(0, 1, nl, nl, F, 1.0f, qc, F, kc, F, 0.0f, A, nl));
        for (size_t i = 0; i < nl; i++)
            for (size_t t = i + 1; t < nl; t++) A[i * nl + t] = 0.0f;
        ATTN_TRY(attn__gemm(0, 0, nl, D, F, 1.0f, qc, F, kv, D, 0.0f, o, D));
        ATTN_TRY(attn__gemm(0, 0, nl, D, nl, 1.0f, A, nl, vc, ldv, 1.0f, o, D));
        for (size_t i = 0; i < nl; i++) {
            const float *qf = qc + i * F;
            float den = 0;
#pragma omp simd reduction(+ : den)
            for (size_t f = 0; f < F; f++) den += qf[f] * z[f];
            for (size_t t = 0; t <= i; t++) den += A[i * nl + t];
            float inv = 1.0f / (den + s->eps);
#pragma omp simd
            for (size_t d = 0; d < D; d++) out[(l0 + i) * H * D + d] = o[i * D + d] * inv;
        }
        ATTN_TRY(attn__gemm(1, 0, F, D, nl, 1.0f, kc, F, vc, ldv, 1.0f, kv, D));
        for (size_t t = 0; t < nl; t++) {
#pragma omp simd
            for (size_t f = 0; f < F; f++) z[f] += kc[t * F + f];
        }
    }
    return ATTN_OK;
}

/* Checks the mask and shapes; the job of a forward (everything but out
 * and scratch), its tasks and the workspace: per worker raw rows, φQ, φK,
 * V, KV, z, and a block buffer. */
static attn_status lin_plan(const void *state, const attn_qkv *a, int threads, lin_job *jp, size_t *tasks,
                            size_t *bytes, attn_error *err) {
    const lin_state *s = state;
    lin_job j = {.s = s, .a = a, .S_used = a->S};
    if (!s->causal && !a->mask_all_ones)
        return attn__err(err, ATTN_E_UNSUPPORTED, "LinearAttention does not support arbitrary attention masks");
    if (s->causal) {
        if (a->attn_mask && !a->mask_lower_triangular)
            return attn__err(err, ATTN_E_UNSUPPORTED,
                             "CausalLinearAttention only supports full lower triangular masks");
        if (a->L > a->S)
            return attn__err(err, ATTN_E_SHAPE,
                             "causal_linear needs L <= S (got L=%lld, S=%lld): the reference reads past the values",
                             (long long)a->L, (long long)a->S);
        j.S_used = a->L;
    }
    /* Scratch per worker: raw rows, φQ, φK, V, KV, z, and a block buffer. */
    size_t L = (size_t)a->L, Su = (size_t)j.S_used, E = (size_t)a->E, D = (size_t)a->D,
           F = (size_t)lin_fmap(s, a->E).F, big = L > Su ? L : Su, tot = 0, t;
    bool ok = attn__mul(big, E, &tot) && attn__mul(L, F, &t) && attn__add(tot, t, &tot) &&
              attn__mul(Su, F, &t) && attn__add(tot, t, &tot) && attn__mul(Su, D, &t) &&
              attn__add(tot, t, &tot) && attn__mul(F, D, &t) && attn__add(tot, t, &tot) &&
              attn__add(tot, F + (size_t)CH * CH + (size_t)CH * D, &tot);
    j.per_worker = tot;
    *tasks = (size_t)a->N * (size_t)a->H;
    attn_ws_layout y = {.overflow = !ok};
    attn__ws_region(&y, (size_t)attn__workers_of(threads, *tasks), tot * sizeof(float));
    *jp = j;
    return attn__ws_size(&y, "linear", bytes, err);
}

static attn_status lin_workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                     attn_error *err) {
    lin_job j;
    size_t tasks;
    return lin_plan(state, a, threads, &j, &tasks, bytes, err);
}

static attn_status lin_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                   void *ws, attn_error *err) {
    lin_job j;
    size_t tasks, bytes;
    attn_status st = lin_plan(state, a, attn_ctx_threads(ctx), &j, &tasks, &bytes, err);
    if (st) return st;
    j.out = out;
    j.scratch = ws;
    st = attn__parallel_for(ctx, tasks, lin_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

/* ---- the attention map: the matrix the forward implies ----
 * out = A V with A[l,s] = φQ_l·φK_s / (Σ_s' φQ_l·φK_s' + eps) over the keys
 * the forward sums (φK zeroed past key_lengths; causal: s <= l, and only
 * the first L keys when L < S).  Rows sum to 1 - eps/(row sum + eps). */

typedef struct lin_map_job {
    lin_job j;
    float *map;
} lin_map_job;

static attn_status lin_map_task(void *arg, size_t task, int worker) {
    const lin_map_job *mj = arg;
    const lin_job *j = &mj->j;
    const lin_state *s = j->s;
    const attn_qkv *a = j->a;
    const attn_fmap fm = lin_fmap(s, a->E);
    const size_t H = (size_t)a->H, E = (size_t)a->E, L = (size_t)a->L, S = (size_t)a->S, F = (size_t)fm.F,
                 Su = (size_t)j->S_used;
    const size_t n = task / H, h = task % H, big = L > Su ? L : Su;
    float *raw = j->scratch + (size_t)worker * j->per_worker, *pq = raw + big * E, *pk = pq + L * F;
    float *map = mj->map + task * L * S;
    gather(a->q + n * L * H * E, L, H, E, h, raw);
    attn__fmap_apply(&fm, raw, L, pq, fm.stabilize ? attn__fmap_sqnorm_max(&fm, raw, L) : 0);
    gather(a->k + n * S * H * E, Su, H, E, h, raw);
    attn__fmap_apply(&fm, raw, Su, pk, fm.stabilize ? attn__fmap_sqnorm_max(&fm, raw, Su) : 0);
    const size_t klen = a->key_lengths && (size_t)a->key_lengths[n] < Su ? (size_t)a->key_lengths[n] : Su;
    memset(map, 0, L * S * sizeof *map);
    if (klen) ATTN_TRY(attn__gemm(0, 1, L, klen, F, 1.0f, pq, F, pk, F, 0.0f, map, S));
    for (size_t l = 0; l < L; l++) {
        float *row = map + l * S;
        const size_t end = s->causal && l + 1 < klen ? l + 1 : klen;
        for (size_t t = end; t < klen; t++) row[t] = 0.0f;
        double den = 0;
        for (size_t t = 0; t < end; t++) den += row[t];
        const float inv = 1.0f / ((float)den + s->eps);
        for (size_t t = 0; t < end; t++) row[t] *= inv;
    }
    return ATTN_OK;
}

static attn_status lin_maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                                float *const *maps, attn_error *err) {
    lin_map_job mj = {.map = maps[1]};
    size_t tasks, bytes;
    void *ws = NULL;
    attn_status st = lin_plan(state, a, attn_ctx_threads(ctx), &mj.j, &tasks, &bytes, err);
    if (!st) st = attn__ws_alloc(bytes, &ws, err);
    if (st) return st;
    mj.j.scratch = ws;
    st = attn__parallel_for(ctx, tasks, lin_map_task, &mj);
    attn__ws_free(ws, bytes);
    if (st) attn__err(err, st, "linear: attention map %s%s", attn_status_str(st), attn__fail_detail(st));
    return st;
}

static const attn_out_decl lin_outputs[] = {
    {"attention", "N,H,L,S",
     "the implied matrix phi(Q) phi(K)^T over its row sum (+ eps), out = A V; keys past key_lengths 0"},
    {0},
};
static const attn_out_decl causal_outputs[] = {
    {"attention", "N,H,L,S",
     "the implied causal matrix phi(Q) phi(K)^T (s <= l) over its row sum (+ eps), out = A V; other keys 0"},
    {0},
};
static const attn_maps_ops lin_maps = {.outputs = lin_outputs, .qkv = lin_maps_qkv};
static const attn_maps_ops causal_maps = {.outputs = causal_outputs, .qkv = lin_maps_qkv};

const attn_mech attn_mech_linear = {
    .info = {.name = "linear",
             .aliases = NULL,
             .reference = "fast_transformers.attention.LinearAttention",
             .summary = "kernelised attention φ(Q)(φ(K)ᵀV), linear in the sequence length",
             .params = lin_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(lin_state),
    .init = linear_init,
    .workspace_qkv = lin_workspace_qkv,
    .forward_qkv = lin_forward_qkv,
    .seq = &lin_seq,
    .maps = &lin_maps,
};

static const char *const causal_aliases[] = {"causal-linear", NULL};

const attn_mech attn_mech_causal_linear = {
    .info = {.name = "causal_linear",
             .aliases = causal_aliases,
             .reference = "fast_transformers.attention.CausalLinearAttention",
             .summary = "causal linear attention (running sums of φ(K)ᵀV)",
             .params = lin_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(lin_state),
    .init = causal_init,
    .workspace_qkv = lin_workspace_qkv,
    .forward_qkv = lin_forward_qkv,
    .seq = &causal_seq,
    .maps = &causal_maps,
};

/* ---- sequences: RecurrentLinearAttention / RecurrentCrossLinearAttention ----
 * State per stream and head: KV = Σ φ(k) vᵀ (F×D) and z = Σ φ(k) (F).
 * Self (linear and causal_linear alike, as the reference registers both):
 * per token z += φ(k), KV += φ(k) vᵀ, then out = φ(q) KV / (φ(q)·z + eps).
 * Cross (linear): KV and z of the memory (φK zeroed past key_lengths),
 * computed once at the start; a step only reads them.  Favor with
 * stabilize normalises by a maximum over the whole sequence, which no
 * stream has: refused. */

enum { KV, Z };

static unsigned lin_seq_kinds_common(const attn_model *m, const void *state, const char **why, unsigned kinds) {
    const lin_state *s = state;
    if (s && s->fm.stabilize) {
        if (why) *why = "favor with stabilize=true needs the whole sequence (use stabilize=false)";
        return 0;
    }
    return kinds;
}
static unsigned lin_seq_kinds(const attn_model *m, const void *state, const char **why) {
    return lin_seq_kinds_common(m, state, why, ATTN_SEQ_SELF | ATTN_SEQ_CROSS);
}
static unsigned causal_seq_kinds(const attn_model *m, const void *state, const char **why) {
    return lin_seq_kinds_common(m, state, why, ATTN_SEQ_SELF);
}

static attn_status lin_seq_layout(attn_seq *q, attn_error *err) {
    const lin_state *s = q->mstate;
    size_t H = (size_t)q->dims[0], F = (size_t)s->fm.F, D = (size_t)q->dims[2], kv;
    attn_status st;
    if (!attn__mul(H * F, D, &kv)) return attn__err(err, ATTN_E_OVERFLOW, "linear: state size overflows");
    return (st = attn__seq_buf_add(q, "kv", ATTN_F32, false, kv, err)) ? st
           : attn__seq_buf_add(q, "z", ATTN_F32, false, H * F, err);
}

typedef struct lin_seq_job {
    const lin_state *s;
    attn_seq *q;
    const attn_qkv *a;
    float *out, *scratch;
    size_t per_worker;
} lin_seq_job;

/* Cross start, one (n, h): KV and z of the memory, as lin_task's non-causal part. */
static attn_status lin_seq_start_task(void *arg, size_t task, int worker) {
    const lin_seq_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, S = (size_t)a->S, F = (size_t)j->s->fm.F;
    const size_t n = task / H, h = task % H;
    float *raw = j->scratch + (size_t)worker * j->per_worker, *pk = raw + S * E, *vv = pk + S * F;
    gather(a->k + n * S * H * E, S, H, E, h, raw);
    attn__fmap_apply(&j->s->fm, raw, S, pk, 0);
    gather(a->v + n * S * H * D, S, H, D, h, vv);
    if (a->key_lengths)
        for (size_t t = (size_t)a->key_lengths[n]; t < S; t++) memset(pk + t * F, 0, F * sizeof *pk);
    float *kv = (float *)attn__seq_stream(j->q, KV, (int64_t)n) + h * F * D;
    float *z = (float *)attn__seq_stream(j->q, Z, (int64_t)n) + h * F;
    ATTN_TRY(attn__gemm(1, 0, F, D, S, 1.0f, pk, F, vv, D, 0.0f, kv, D));
    memset(z, 0, F * sizeof *z);
    for (size_t t = 0; t < S; t++)
        for (size_t f = 0; f < F; f++) z[f] += pk[t * F + f];
    return ATTN_OK;
}

/* A step, one (n, h): the T new tokens in order. */
static attn_status lin_seq_step_task(void *arg, size_t task, int worker) {
    const lin_seq_job *j = arg;
    const attn_qkv *a = j->a;
    const lin_state *s = j->s;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, T = (size_t)a->L, F = (size_t)s->fm.F;
    const size_t n = task / H, h = task % H;
    const bool self = j->q->kind == ATTN_SEQ_SELF;
    float *raw = j->scratch + (size_t)worker * j->per_worker, *pq = raw + T * E, *pk = pq + T * F;
    float *kv = (float *)attn__seq_stream(j->q, KV, (int64_t)n) + h * F * D;
    float *z = (float *)attn__seq_stream(j->q, Z, (int64_t)n) + h * F;
    gather(a->q + n * T * H * E, T, H, E, h, raw);
    attn__fmap_apply(&s->fm, raw, T, pq, 0);
    if (self) {
        gather(a->k + n * T * H * E, T, H, E, h, raw);
        attn__fmap_apply(&s->fm, raw, T, pk, 0);
    }
    for (size_t t = 0; t < T; t++) {
        const float *qf = pq + t * F;
        if (self) {
            const float *kf = pk + t * F, *v = a->v + ((n * T + t) * H + h) * D;
            for (size_t f = 0; f < F; f++) {
                z[f] += kf[f];
                float *row = kv + f * D;
#pragma omp simd
                for (size_t d = 0; d < D; d++) row[d] += kf[f] * v[d];
            }
        }
        float den = 0;
        for (size_t f = 0; f < F; f++) den += qf[f] * z[f];
        float inv = 1.0f / (den + s->eps), *o = j->out + ((n * T + t) * H + h) * D;
        for (size_t d = 0; d < D; d++) o[d] = 0.0f;
        for (size_t f = 0; f < F; f++) {
            const float *row = kv + f * D;
#pragma omp simd
            for (size_t d = 0; d < D; d++) o[d] += qf[f] * row[d];
        }
        for (size_t d = 0; d < D; d++) o[d] *= inv;
    }
    return ATTN_OK;
}

static attn_status lin_seq_run(attn_seq *q, attn_ctx *ctx, const attn_qkv *a, float *out, size_t rows,
                               attn_task_fn fn, attn_error *err) {
    lin_seq_job j = {.s = q->mstate, .q = q, .a = a, .out = out};
    size_t E = (size_t)a->E, F = (size_t)j.s->fm.F, D = (size_t)a->D, per, t;
    /* raw rows (rows×E) + two φ blocks (rows×F) + values (rows×D) */
    bool ok = attn__mul(rows, E + 2 * F + D, &per) && attn__add(per, 1, &per);
    size_t tasks = (size_t)a->N * (size_t)a->H;
    int workers = attn__workers(ctx, tasks);
    if (!ok || !attn__mul(per, (size_t)workers, &t)) return attn__err(err, ATTN_E_OVERFLOW, "linear: scratch size overflows");
    j.per_worker = per;
    j.scratch = attn__calloc(t, sizeof(float), err);
    if (!j.scratch) return err ? err->code : ATTN_E_NOMEM;
    attn_status st = attn__parallel_for(ctx, tasks, fn, &j);
    free(j.scratch);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

static attn_status lin_seq_start(attn_seq *q, attn_ctx *ctx, const attn_qkv *mem, attn_error *err) {
    return lin_seq_run(q, ctx, mem, NULL, (size_t)mem->S, lin_seq_start_task, err);
}

static attn_status lin_seq_step(attn_seq *q, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err) {
    return lin_seq_run(q, ctx, a, out, (size_t)a->L, lin_seq_step_task, err);
}

static const attn_seq_ops lin_seq = {
    .kinds = lin_seq_kinds,
    .layout = lin_seq_layout,
    .start_qkv = lin_seq_start,
    .step_qkv = lin_seq_step,
};

static const attn_seq_ops causal_seq = {
    .kinds = causal_seq_kinds,
    .layout = lin_seq_layout,
    .step_qkv = lin_seq_step,
};
