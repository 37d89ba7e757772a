/*
 * aft.c — AFTFullAttention and AFTSimpleAttention (fast-transformers).
 *
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) with E == D -> out (N,L,H,D).
 *
 * aft_full, as the reference code computes it (a product, not the paper's
 * sum):  w[l,s] = (u[:L] v[:S]ᵀ)[l,s] + attn_mask(0/-inf)
 *        logits[l,s] = (K[s,d] + key_mask(0/-inf)) · w[l,s]
 *        out[l,d] = sigmoid(Q[l,d]) · Σ_s softmax_s(logits)[l,s] V[s,d]
 * Masked entries turn into ±inf/NaN exactly as they do in torch.
 *
 * aft_simple: K' = K + key_mask.  With a lower-triangular attn_mask (L == S)
 * out_t = σ(Q_t) ⊙ Σ_{s≤t} e_s/Σ_{r≤s} e_r ⊙ V_s with e = exp(K' − max_s K')
 * (each term normalised by its own prefix sum, as the reference does);
 * with an all-ones mask out_l = σ(Q_l) ⊙ Σ_s softmax_s(K')_s ⊙ V_s; any other
 * mask is rejected.  query_lengths is ignored by both.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "kernels/fast_exp.h"
#include "seq_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const attn_seq_ops simple_seq;

typedef struct aft_state {
    int64_t msl, ap;
    float *u, *v; /* (msl, ap) */
} aft_state;

static const attn_param aft_full_params[] = {
    {"max_sequence_length", ATTN_P_INT, "1024", 1, 1 << 24, NULL, "rows of u and v; L, S must not exceed it"},
    {"aft_parameterization", ATTN_P_INT, "64", 1, 1 << 20, NULL, "columns of u and v"},
    {0},
};
static const attn_param aft_simple_params[] = {{0}};

static attn_status aft_full_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    aft_state *s = state;
    attn_status st;
    if ((st = attn__cfg_int(cfg, "max_sequence_length", &s->msl, NULL)) ||
        (st = attn__cfg_int(cfg, "aft_parameterization", &s->ap, NULL)))
        return st;
    int64_t shape[2] = {s->msl, s->ap};
    if ((st = attn__bind(b, "u", 2, shape, &s->u)) || (st = attn__bind(b, "v", 2, shape, &s->v))) return st;
    return attn__qkv_declare(m, 0, 0);
}

static attn_status aft_simple_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return attn__qkv_declare(m, 0, 0);
}

static attn_status check_ed(const attn_qkv *a, attn_error *err) {
    if (a->E != a->D)
        return attn__err(err, ATTN_E_SHAPE,
                         "AFT requires that queries, keys and values have the same dimensionality (E=%lld, D=%lld)",
                         (long long)a->E, (long long)a->D);
    return ATTN_OK;
}

typedef struct aft_job {
    const aft_state *s;
    const attn_qkv *a;
    const float *w; /* (L,S) */
    float *out, *scratch;
} aft_job;

static attn_status aft_full_task(void *arg, size_t task, int worker) {
    const aft_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, D = a->D, L = a->L, S = a->S;
    const int64_t n = (int64_t)task / H, h = (int64_t)task % H;
    const int64_t klen = a->key_lengths ? a->key_lengths[n] : S;
    /* This head's keys (with the key mask added) and values as (D,S) rows,
     * as the reference permutes them, so the loops over s are contiguous. */
    float *row = j->scratch + (size_t)worker * (size_t)(2 * D + 1) * (size_t)S;
    float *kt = row + S, *vt = kt + D * S;
    for (int64_t s = 0; s < S; s++) {
        const float *ks = a->k + ((n * S + s) * H + h) * D, *vs = a->v + ((n * S + s) * H + h) * D;
        const float km = s < klen ? 0.0f : -INFINITY;
        for (int64_t d = 0; d < D; d++) {
            kt[d * S + s] = ks[d] + km;
            vt[d * S + s] = vs[d];
        }
    }
    for (int64_t l = 0; l < L; l++) {
        const float *wl = j->w + l * S;
        float *o = j->out + ((n * L + l) * H + h) * D;
        const float *q = a->q + ((n * L + l) * H + h) * D;
        for (int64_t d = 0; d < D; d++) {
            const float *kd = kt + d * S, *vd = vt + d * S;
            attn__vmul(row, kd, wl, (size_t)S);
            attn__softmax_row(row, (size_t)S);
            o[d] = attn__dot(row, vd, (size_t)S) / (1.0f + expf(-q[d]));
        }
    }
    return ATTN_OK;
}

/* Checks the shapes; the workspace of a forward: w (L,S), then per
 * worker (2D+1)·S floats. */
typedef struct aft_full_plan {
    size_t tasks, w, scratch, bytes;
} aft_full_plan;

static attn_status full_plan(const aft_state *s, const attn_qkv *a, int threads, aft_full_plan *p,
                             attn_error *err) {
    attn_status st = check_ed(a, err);
    if (st) return st;
    if (a->L > s->msl || a->S > s->msl)
        return attn__err(err, ATTN_E_SHAPE, "aft_full: L=%lld and S=%lld must be <= max_sequence_length=%lld",
                         (long long)a->L, (long long)a->S, (long long)s->msl);
    p->tasks = (size_t)a->N * (size_t)a->H;
    attn_ws_layout y = {0};
    p->w = attn__ws_region(&y, (size_t)a->L * (size_t)a->S, sizeof(float));
    size_t per;
    y.overflow |= !attn__mul((size_t)(2 * a->D + 1), (size_t)a->S, &per);
    p->scratch = attn__ws_region(&y, (size_t)attn__workers_of(threads, p->tasks), per * sizeof(float));
    return attn__ws_size(&y, "aft_full", &p->bytes, err);
}

static attn_status aft_full_workspace_qkv(const void *state, const attn_qkv *a, int threads,
                                          size_t *bytes, attn_error *err) {
    aft_full_plan p;
    attn_status st = full_plan(state, a, threads, &p, err);
    *bytes = st ? 0 : p.bytes;
    return st;
}

static attn_status aft_full_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                        void *ws, attn_error *err) {
    const aft_state *s = state;
    aft_full_plan p;
    attn_status st = full_plan(s, a, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    aft_job j = {.s = s, .a = a, .out = out};
    float *w = attn__ws_at(ws, p.w);
    if ((st = attn__gemm(0, 1, (size_t)a->L, (size_t)a->S, (size_t)s->ap, 1.0f, s->u, (size_t)s->ap, s->v,
                         (size_t)s->ap, 0.0f, w, (size_t)a->S)))
        return attn__err(err, st, "aft_full: a matrix product exceeds BLAS's int");
    if (a->attn_mask)
        for (size_t i = 0; i < (size_t)a->L * (size_t)a->S; i++)
            if (!a->attn_mask[i]) w[i] += -INFINITY;
    j.w = w;
    j.scratch = attn__ws_at(ws, p.scratch);
    st = attn__parallel_for(ctx, p.tasks, aft_full_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

/* ---- aft_simple ---- */

/* Non-causal, in three steps that each stream whole rows (H·D contiguous
 * floats):
 *   1. per segment of seg_rows positions (a task each): m = the max of K' over
 *      its rows, then sum = Σ exp(K' - m) and acc = Σ exp(K' - m) ⊙ V over
 *      them, the segment's K rows read the second time from cache;
 *   2. per batch entry (the caller): ctx = Σ_g w_g acc_g / Σ_g w_g sum_g with
 *      w_g = exp(m_g - max_g m_g), segments in order;
 *   3. per block of out_rows queries (a task each): out = ctx / (1 + exp(-Q)).
 * The segments are a function of the shape only, so the results do not
 * depend on the thread count.  Causal: one task per batch entry (a prefix
 * scan over the positions). */
#define SIMPLE_SEG_BYTES ((size_t)256 << 10) /* bytes of K rows per segment: they stay in L2 */
#define SIMPLE_OUT_BYTES ((size_t)256 << 10) /* bytes of Q rows per output task */

typedef struct simple_job {
    const attn_qkv *a;
    bool causal;
    float *out;
    size_t W;                /* H·D: floats of a row */
    size_t seg_rows, segs;   /* positions per segment, segments per batch entry */
    size_t out_rows, outs;   /* queries per output task, output tasks per batch entry */
    float *part;             /* (N, segs, 3, W): m, sum, acc of every segment */
    float *ctx;              /* (N, W), then 2·W floats of step 2's scratch */
    float *scratch;          /* per worker: causal 3·W + D floats, else W */
    size_t per_worker;       /* floats */
} simple_job;

static int64_t simple_klen(const attn_qkv *a, int64_t n) {
    int64_t kl = a->key_lengths ? a->key_lengths[n] : a->S;
    return kl < 0 ? 0 : kl < a->S ? kl : a->S;
}

/* Step 1: segment task % segs of batch entry task / segs.  Keys at or past
 * the key length are masked (K' = -inf): they add nothing. */
static attn_status simple_seg_task(void *arg, size_t task, int worker) {
    const simple_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t W = j->W, n = task / j->segs, g = task % j->segs, S = (size_t)a->S;
    const size_t klen = (size_t)simple_klen(a, (int64_t)n);
    size_t s0 = g * j->seg_rows, s1 = s0 + j->seg_rows < S ? s0 + j->seg_rows : S;
    if (s1 > klen) s1 = klen;
    float *mx = j->part + task * 3 * W, *sum = mx + W, *acc = sum + W;
    const float *k0 = a->k + n * S * W, *v0 = a->v + n * S * W;
    for (size_t i = 0; i < W; i++) mx[i] = -INFINITY, sum[i] = 0.0f, acc[i] = 0.0f;
    for (size_t s = s0; s < s1; s++) attn__max_into(mx, k0 + s * W, W);
    /* a feature whose every key here is -inf: exp(-inf - 0) = 0 */
    float *msub = j->scratch + (size_t)worker * j->per_worker;
    for (size_t i = 0; i < W; i++) msub[i] = mx[i] == -INFINITY ? 0.0f : mx[i];
    for (size_t s = s0; s < s1; s++) attn__exp_sum_acc(k0 + s * W, msub, v0 + s * W, sum, acc, W);
    return ATTN_OK;
}

/* Step 2 for batch entry n, segment by segment over whole rows (an all
 * -inf feature is 0/0 = NaN, as torch's softmax makes it); tmp: 2·W floats. */
static void simple_combine(const simple_job *j, size_t n, float *tmp) {
    const size_t W = j->W, G = j->segs;
    const float *p = j->part + n * G * 3 * W;
    float *ctx = j->ctx + n * W, *M = tmp, *sum = tmp + W;
    for (size_t i = 0; i < W; i++) M[i] = -INFINITY, sum[i] = 0.0f, ctx[i] = 0.0f;
    for (size_t g = 0; g < G; g++) {
        const float *mg = p + g * 3 * W;
#pragma omp simd
        for (size_t i = 0; i < W; i++) M[i] = mg[i] > M[i] ? mg[i] : M[i];
    }
    /* a segment with no visible key weighs 0 (its sums are 0 too, but
     * exp(-inf - -inf) would be NaN) */
    for (size_t g = 0; g < G; g++) {
        const float *mg = p + g * 3 * W, *sg = mg + W, *ag = sg + W;
        attn__exp_weight_acc(mg, M, sg, ag, sum, ctx, W);
    }
#pragma omp simd
    for (size_t i = 0; i < W; i++) ctx[i] /= sum[i];
}

/* Step 3: rows of output task task % outs of batch entry task / outs. */
static attn_status simple_out_task(void *arg, size_t task, int worker) {
    (void)worker;
    const simple_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t W = j->W, n = task / j->outs, L = (size_t)a->L;
    size_t l0 = task % j->outs * j->out_rows, l1 = l0 + j->out_rows < L ? l0 + j->out_rows : L;
    const float *ctx = j->ctx + n * W;
    for (size_t l = l0; l < l1; l++) {
        const float *q = a->q + (n * L + l) * W;
        float *o = j->out + (n * L + l) * W;
        attn__gate_div(ctx, q, o, W);
    }
    return ATTN_OK;
}

/* Causal (L == S), batch entry `task`: each term normalised by its own
 * prefix sum. */
static attn_status simple_causal_task(void *arg, size_t task, int worker) {
    const simple_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, D = a->D, L = a->L, S = a->S;
    const int64_t n = (int64_t)task, W = H * D;
    const int64_t klen = simple_klen(a, n);
    float *mx = j->scratch + (size_t)worker * j->per_worker;
    float *sum = mx + W, *acc = sum + W, *x = acc + W;
    const size_t ld = (size_t)W;
    const float *k0 = a->k + n * S * W, *v0 = a->v + n * S * W, *q0 = a->q + n * L * W;
    float *o0 = j->out + n * L * W;
    for (int64_t i = 0; i < W; i++) mx[i] = -INFINITY, sum[i] = 0.0f, acc[i] = 0.0f;
    /* K' = K + key mask; the max over positions of every feature. */
    for (int64_t s = 0; s < S; s++) {
        const float *ks = k0 + (size_t)s * ld;
        const float km = s < klen ? 0.0f : -INFINITY;
#pragma omp simd
        for (int64_t i = 0; i < W; i++) {
            float y = ks[i] + km;
            mx[i] = y > mx[i] ? y : mx[i];
        }
    }
    for (int64_t t = 0; t < L; t++) {
        const float km = t < klen ? 0.0f : -INFINITY;
        for (int64_t h = 0; h < H; h++) {
            const size_t off = (size_t)t * ld + (size_t)(h * D);
            const float *ks = k0 + off, *vs = v0 + off, *q = q0 + off, *m = mx + h * D;
            float *su = sum + h * D, *ac = acc + h * D, *o = o0 + off;
#pragma omp simd
            for (int64_t d = 0; d < D; d++) x[d] = ks[d] + km - m[d];
            attn__exp_sub_sum(x, (size_t)D, 0.0f);
#pragma omp simd
            for (int64_t d = 0; d < D; d++) {
                su[d] += x[d];
                ac[d] += (x[d] / su[d]) * vs[d];
            }
            attn__gate_div(ac, q, o, (size_t)D); /* the reference's gate, acc / (1 + exp(-q)) */
        }
    }
    return ATTN_OK;
}

/* Checks the mask and shapes; the steps' task counts and the workspace of
 * a forward: non-causal, the segments' partial sums (N·segs·3·W floats),
 * ctx (N·W) and the combine's 2·W; causal, per worker 3·W + D floats. */
static attn_status simple_plan(const attn_qkv *a, int threads, simple_job *j, size_t *bytes, size_t *part_off,
                               size_t *ctx_off, size_t *scratch_off, attn_error *err) {
    attn_status st = check_ed(a, err);
    if (st) return st;
    j->causal = false;
    if (a->mask_lower_triangular) {
        if (a->L != a->S)
            return attn__err(err, ATTN_E_SHAPE, "aft_simple with a causal mask needs L == S (got %lld, %lld)",
                             (long long)a->L, (long long)a->S);
        j->causal = true;
    } else if (!a->mask_all_ones) {
        return attn__err(err, ATTN_E_UNSUPPORTED,
                         "You cannot use general attention masks with AFTSimpleAttention because it would be "
                         "quadratic in time. Use AFTFullAttention instead.");
    }
    const size_t N = (size_t)a->N, S = (size_t)a->S, L = (size_t)a->L, D = (size_t)a->D;
    attn_ws_layout y = {.overflow = !attn__mul((size_t)a->H, D, &j->W)};
    const size_t row = j->W ? j->W * sizeof(float) : 1; /* W <= the tensor limits: no overflow */
    *part_off = *ctx_off = 0;
    if (j->causal) {
        size_t per = 0;
        y.overflow |= !attn__mul(j->W, 3, &per) || !attn__add(per, D, &per);
        j->per_worker = (per + 15) / 16 * 16; /* whole cache lines */
        *scratch_off = attn__ws_region(&y, (size_t)attn__workers_of(threads, N), j->per_worker * sizeof(float));
    } else {
        size_t pn = 0, cn = 0, seg_tasks = 0;
        j->seg_rows = SIMPLE_SEG_BYTES / row ? SIMPLE_SEG_BYTES / row : 1;
        j->out_rows = SIMPLE_OUT_BYTES / row ? SIMPLE_OUT_BYTES / row : 1;
        j->segs = S ? (S + j->seg_rows - 1) / j->seg_rows : 1; /* S = 0: one empty segment (NaN, as torch) */
        j->outs = (L + j->out_rows - 1) / j->out_rows;
        y.overflow |= !attn__mul(N, j->segs, &seg_tasks) || !attn__mul(seg_tasks, 3, &pn) || !attn__mul(pn, j->W, &pn) ||
                      !attn__mul(N + 2, j->W, &cn) || !attn__mul(N, j->outs, &(size_t){0});
        *part_off = attn__ws_region(&y, pn, sizeof(float));
        *ctx_off = attn__ws_region(&y, cn, sizeof(float));
        j->per_worker = (j->W + 15) / 16 * 16; /* step 1's subtrahends */
        *scratch_off = attn__ws_region(&y, (size_t)attn__workers_of(threads, seg_tasks), j->per_worker * sizeof(float));
    }
    return attn__ws_size(&y, "aft_simple", bytes, err);
}

static attn_status aft_simple_workspace_qkv(const void *state, const attn_qkv *a, int threads,
                                            size_t *bytes, attn_error *err) {
    simple_job j = {0};
    size_t po, co, so;
    return simple_plan(a, threads, &j, bytes, &po, &co, &so, err);
}

static attn_status aft_simple_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a,
                                          float *out, void *ws, attn_error *err) {
    simple_job j = {.a = a, .out = out};
    size_t bytes, po, co, so;
    attn_status st = simple_plan(a, attn_ctx_threads(ctx), &j, &bytes, &po, &co, &so, err);
    if (st) return st;
    const size_t N = (size_t)a->N;
    j.scratch = attn__ws_at(ws, so);
    if (j.causal) {
        st = attn__parallel_for(ctx, N, simple_causal_task, &j);
    } else {
        j.part = attn__ws_at(ws, po);
        j.ctx = attn__ws_at(ws, co);
        st = attn__parallel_for(ctx, N * j.segs, simple_seg_task, &j);
        for (size_t n = 0; !st && n < N; n++) simple_combine(&j, n, j.ctx + N * j.W);
        if (!st) st = attn__parallel_for(ctx, N * j.outs, simple_out_task, &j);
    }
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

static const char *const full_aliases[] = {"aft-full", NULL};
static const char *const simple_aliases[] = {"aft-simple", NULL};

const attn_mech attn_mech_aft_full = {
    .info = {.name = "aft_full",
             .aliases = full_aliases,
             .reference = "fast_transformers.attention.AFTFullAttention",
             .summary = "attention-free transformer with learned position biases u·vᵀ",
             .params = aft_full_params,
             .has_weights = 1,
             .is_inner = 1},
    .state_size = sizeof(aft_state),
    .init = aft_full_init,
    .workspace_qkv = aft_full_workspace_qkv,
    .forward_qkv = aft_full_forward_qkv,
};

const attn_mech attn_mech_aft_simple = {
    .info = {.name = "aft_simple",
             .aliases = simple_aliases,
             .reference = "fast_transformers.attention.AFTSimpleAttention",
             .summary = "attention-free transformer without position biases",
             .params = aft_simple_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(int),
    .init = aft_simple_init,
    .workspace_qkv = aft_simple_workspace_qkv,
    .forward_qkv = aft_simple_forward_qkv,
    .seq = &simple_seq,
};

/* ---- sequences: aft_simple's causal form (lower-triangular attn_mask) ----
 * out_t = σ(Q_t) ⊙ Σ_{s≤t} e_s / Σ_{r≤s} e_r ⊙ V_s.  Each ratio does not
 * depend on the shift of the exponentials, so a stream shifts by its
 * running max m (the reference by the max over the whole sequence, which
 * a stream does not know yet): per (stream, head, feature) the state is m,
 * the prefix sum P in units of exp(-m), rescaled when m grows, and the
 * accumulated output A.  Per token: m' = max(m, k), P = P·exp(m - m') +
 * exp(k - m'), A += exp(k - m')/P · v, out = A / (1 + exp(-q)). */

enum { RUN_MAX, PREFIX_SUM, ACC };

static unsigned simple_seq_kinds(const attn_model *m, const void *state, const char **why) { return ATTN_SEQ_SELF; }

static attn_status simple_seq_layout(attn_seq *q, attn_error *err) {
    if (q->dims[1] != q->dims[2])
        return attn__err(err, ATTN_E_SHAPE,
                         "AFT requires that queries, keys and values have the same dimensionality (E=%lld, D=%lld)",
                         (long long)q->dims[1], (long long)q->dims[2]);
    size_t w = (size_t)(q->dims[0] * q->dims[2]);
    attn_status st;
    if ((st = attn__seq_buf_add(q, "running_max", ATTN_F32, false, w, err)) ||
        (st = attn__seq_buf_add(q, "prefix_sum", ATTN_F32, false, w, err)) ||
        (st = attn__seq_buf_add(q, "acc", ATTN_F32, false, w, err)))
        return st;
    float *mx = attn__seq_stream(q, RUN_MAX, 0);
    for (size_t i = 0; i < (size_t)q->N * w; i++) mx[i] = -INFINITY;
    return ATTN_OK;
}

static attn_status simple_seq_step(attn_seq *q, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err) {
    const size_t T = (size_t)a->L, W = (size_t)(a->H * a->D);
    for (int64_t n = 0; n < a->N; n++) {
        float *mx = attn__seq_stream(q, RUN_MAX, n), *sum = attn__seq_stream(q, PREFIX_SUM, n),
              *acc = attn__seq_stream(q, ACC, n);
        for (size_t t = 0; t < T; t++) {
            const size_t r = ((size_t)n * T + t) * W;
            const float *k = a->k + r, *v = a->v + r, *qq = a->q + r;
            float *o = out + r;
            for (size_t i = 0; i < W; i++) {
                if (k[i] > mx[i]) {
                    sum[i] *= expf(mx[i] - k[i]);
                    mx[i] = k[i];
                }
                float e = expf(k[i] - mx[i]);
                sum[i] += e;
                acc[i] += (e / sum[i]) * v[i];
                o[i] = acc[i] / (1.0f + expf(-qq[i]));
            }
        }
    }
    return ATTN_OK;
}

static const attn_seq_ops simple_seq = {
    .kinds = simple_seq_kinds,
    .layout = simple_seq_layout,
    .step_qkv = simple_seq_step,
};
