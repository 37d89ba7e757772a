/*
 * local.c — LocalAttention (fast-transformers): each query attends to a
 * window of w = local_context keys around its own position.
 *
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) -> out (N,L,H,D).
 * Window of query l: keys l-⌊w/2⌋ … l+⌈w/2⌉-1 (one more on the left for even
 * w).  As the reference's C++ kernel does, the w window slots start at
 * -1e24; slots of keys in [max(0,l-⌊w/2⌋), min(key_len, l+⌈w/2⌉)) get q·k
 * plus the finite mask (0 or -1e24); softmax(temp·slots) runs over all w
 * slots, and values are summed over keys below S (not key_len).  A window
 * with nothing visible therefore gets uniform weights 1/w, not NaN.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "mech/full.h"
#include "seq_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const attn_seq_ops local_seq;

typedef struct local_state {
    int64_t w;
    float softmax_temp;
} local_state;

static const attn_param local_params[] = {
    {"local_context", ATTN_P_INT, NULL, 1, 1 << 20, NULL, "window size w"},
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, "null (or 0) means 1/sqrt(E)"},
    {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL, "accepted and ignored (eval mode)"},
    {0},
};

static attn_status local_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    local_state *s = state;
    attn_full_cfg fc;
    attn_status st = attn__cfg_int(cfg, "local_context", &s->w, NULL);
    if (!st) st = attn__full_parse(cfg, &fc);
    if (st) return st;
    s->softmax_temp = fc.softmax_temp;
    return attn__qkv_declare(m, 0, 0);
}

/* Queries per task.  A block of LQ queries sees at most LQ + w - 1 keys:
 * one sgemm gives all their dot products, a second one the weighted sums
 * (the probabilities scattered into a zero-padded LQ × keys tile). */
#define LQ 64

typedef struct local_job {
    const local_state *s;
    const attn_qkv *a;
    float temp;
    size_t qblocks, kmax, per_worker;
    float *out, *scratch;
} local_job;

static attn_status local_task(void *arg, size_t task, int worker) {
    const local_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, E = a->E, D = a->D, L = a->L, S = a->S, w = j->s->w;
    const int64_t qb = (int64_t)(task % j->qblocks), nh = (int64_t)(task / j->qblocks);
    const int64_t n = nh / H, h = nh % H, half = w / 2, up = (w + 1) / 2;
    const int64_t klen = a->key_lengths ? a->key_lengths[n] : S;
    const int64_t l0 = qb * LQ, l1 = l0 + LQ < L ? l0 + LQ : L, nq = l1 - l0;
    /* Keys any query of the block can see or sum: [k0, k1). */
    const int64_t k0 = l0 - half > 0 ? l0 - half : 0;
    int64_t k1 = l1 - 1 + up < S ? l1 - 1 + up : S;
    if (k1 < k0) k1 = k0;
    const int64_t nk = k1 - k0;
    float *sc = j->scratch + (size_t)worker * j->per_worker; /* (nq, nk) dots */
    float *pm = sc + (size_t)LQ * j->kmax;                     /* (nq, nk) probabilities */
    float *slot = pm + (size_t)LQ * j->kmax;                   /* w */
    float *out = j->out + ((n * L + l0) * H + h) * D;
    if (nk == 0) { /* no key in reach: every slot stays -1e24, nothing to sum */
        for (int64_t i = 0; i < nq; i++) memset(out + i * H * D, 0, (size_t)D * sizeof *out);
        return ATTN_OK;
    }
    ATTN_TRY(attn__gemm(0, 1, (size_t)nq, (size_t)nk, (size_t)E, 1.0f, a->q + ((n * L + l0) * H + h) * E,
                        (size_t)(H * E), a->k + ((n * S + k0) * H + h) * E, (size_t)(H * E), 0.0f, sc, (size_t)nk));
    memset(pm, 0, (size_t)(nq * nk) * sizeof *pm);
    for (int64_t i = 0; i < nq; i++) {
        const int64_t l = l0 + i;
        const float *dots = sc + i * nk;
        float *prow = pm + i * nk;
        /* As the reference's kernel: w slots from -1e24; the slots of keys
         * in [max(0, l-⌊w/2⌋), min(key_len, l+⌈w/2⌉)) get q·k plus the
         * finite mask; softmax over all w slots; values summed over keys
         * below S. */
        int64_t start = l - half > 0 ? l - half : 0;
        int64_t end = l + up < klen ? l + up : klen;
        int64_t vend = l + up < S ? l + up : S;
        /* slots [a0, a1) are the keys [start, end), copied whole (in the
         * window's middle, every slot) */
        const int64_t a0 = start - l + half, a1 = end > start ? end - l + half : a0;
        for (int64_t k = 0; k < a0; k++) slot[k] = -1e24f;
        for (int64_t k = a1; k < w; k++) slot[k] = -1e24f;
        if (a1 > a0) memcpy(slot + a0, dots + (start - k0), (size_t)(a1 - a0) * sizeof *slot);
        if (a->attn_mask)
            for (int64_t s = start; s < end; s++)
                if (!a->attn_mask[l * S + s]) slot[s - l + half] += -1e24f;
        attn__scale(slot, j->temp, (size_t)w);
        attn__softmax_row(slot, (size_t)w);
        if (vend > start) memcpy(prow + (start - k0), slot + a0, (size_t)(vend - start) * sizeof *prow);
    }
    /* out rows (stride H·D) = P · V over the block's keys. */
    ATTN_TRY(attn__gemm(0, 0, (size_t)nq, (size_t)D, (size_t)nk, 1.0f, pm, (size_t)nk, a->v + ((n * S + k0) * H + h) * D,
                        (size_t)(H * D), 0.0f, out, (size_t)(H * D)));
    return ATTN_OK;
}

/* The job of a forward (everything but out and scratch), its tasks and
 * the workspace: per worker `per_worker` floats. */
static attn_status local_plan(const local_state *s, const attn_qkv *a, int threads, local_job *j,
                              size_t *tasks, size_t *bytes, attn_error *err) {
    *j = (local_job){.s = s, .a = a, .temp = attn__temp(s->softmax_temp, a->E)};
    j->qblocks = ((size_t)a->L + LQ - 1) / LQ;
    size_t tile, per;
    j->kmax = (size_t)LQ + (size_t)s->w; /* >= LQ + w - 1 keys per block */
    if (!attn__mul((size_t)a->N * (size_t)a->H, j->qblocks, tasks) || !attn__mul(j->kmax, 2 * LQ, &tile) ||
        !attn__add(tile, (size_t)s->w, &per))
        return attn__err(err, ATTN_E_OVERFLOW, "local: too many tasks or too large a window");
    j->per_worker = per;
    attn_ws_layout y = {0};
    attn__ws_region(&y, (size_t)attn__workers_of(threads, *tasks), per * sizeof(float));
    return attn__ws_size(&y, "local", bytes, err);
}

static attn_status local_workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                       attn_error *err) {
    local_job j;
    size_t tasks;
    return local_plan(state, a, threads, &j, &tasks, bytes, err);
}

static attn_status local_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                     void *ws, attn_error *err) {
    local_job j;
    size_t tasks, bytes;
    attn_status st = local_plan(state, a, attn_ctx_threads(ctx), &j, &tasks, &bytes, err);
    if (st) return st;
    j.out = out;
    j.scratch = ws;
    st = attn__parallel_for(ctx, tasks, local_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

/* ---- the attention map: each query's window weights, dense over the keys ----
 * The slots of the forward (window of w keys around l, -1e24 outside the
 * key range and for masked keys, softmax over all w slots), each slot's
 * weight written at its key s in [0, S); every other key is 0.  A window
 * with nothing visible has 1/w on its in-range keys, as in the reference. */

static const attn_out_decl local_outputs[] = {
    {"attention", "N,H,L,S",
     "softmax weights of each query's local_context window, dense over S; keys outside it 0"},
    {0},
};

typedef struct local_map_job {
    const local_state *s;
    const attn_qkv *a;
    float temp;
    float *map, *slots; /* slots: w floats per worker */
} local_map_job;

static attn_status local_map_task(void *arg, size_t nh, int worker) {
    const local_map_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, E = a->E, L = a->L, S = a->S, w = j->s->w;
    const int64_t n = (int64_t)nh / H, h = (int64_t)nh % H, half = w / 2, up = (w + 1) / 2;
    const int64_t klen = a->key_lengths ? a->key_lengths[n] : S;
    float *slot = j->slots + (size_t)worker * (size_t)w;
    for (int64_t l = 0; l < L; l++) {
        float *row = j->map + ((size_t)nh * (size_t)L + (size_t)l) * (size_t)S;
        const float *q = a->q + ((n * L + l) * H + h) * E;
        const int64_t start = l - half > 0 ? l - half : 0, end = l + up < klen ? l + up : klen;
        const int64_t vend = l + up < S ? l + up : S;
        for (int64_t k = 0; k < w; k++) slot[k] = -1e24f;
        for (int64_t s = start; s < end; s++) {
            const float *k = a->k + ((n * S + s) * H + h) * E;
            float dot = 0.0f;
            for (int64_t e = 0; e < E; e++) dot += q[e] * k[e];
            if (a->attn_mask && !a->attn_mask[l * S + s]) dot += -1e24f;
            slot[s - l + half] = dot;
        }
        attn__scale(slot, j->temp, (size_t)w);
        attn__softmax_row(slot, (size_t)w);
        memset(row, 0, (size_t)S * sizeof *row);
        for (int64_t s = start; s < vend; s++) row[s] = slot[s - l + half];
    }
    return ATTN_OK;
}

static attn_status local_maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                                  float *const *maps, attn_error *err) {
    const local_state *s = state;
    local_map_job j = {.s = s, .a = a, .temp = attn__temp(s->softmax_temp, a->E), .map = maps[1]};
    const size_t tasks = (size_t)a->N * (size_t)a->H;
    j.slots = attn__calloc((size_t)attn__workers(ctx, tasks), (size_t)s->w * sizeof(float), err);
    if (!j.slots) return ATTN_E_NOMEM;
    attn_status st = attn__parallel_for(ctx, tasks, local_map_task, &j);
    free(j.slots);
    if (st) attn__err(err, st, "local: attention map %s", attn_status_str(st));
    return st;
}

static const attn_maps_ops local_maps = {.outputs = local_outputs, .qkv = local_maps_qkv};

const attn_mech attn_mech_local = {
    .info = {.name = "local",
             .aliases = NULL,
             .reference = "fast_transformers.attention.LocalAttention",
             .summary = "softmax attention within a window of local_context keys",
             .params = local_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(local_state),
    .init = local_init,
    .workspace_qkv = local_workspace_qkv,
    .forward_qkv = local_forward_qkv,
    .seq = &local_seq,
    .maps = &local_maps,
};

/* ---- sequences: the causal forward (attn_mask lower triangular) ----
 * Query p sees keys max(0, p-⌊w/2⌋) .. p, so the state is the last ⌊w/2⌋
 * keys and values of each stream (slot i holds position len-⌊w/2⌋+i).  A
 * step fills the w slots as local_task does: -1e24, q·k for the visible
 * keys (the future keys the causal mask hides are -1e24 there too, as
 * q·k - 1e24 rounds to -1e24), times temp, softmax over all w slots. */

enum { WIN_KEYS, WIN_VALUES };

static unsigned local_seq_kinds(const attn_model *m, const void *state, const char **why) { return ATTN_SEQ_SELF; }

static attn_status local_seq_layout(attn_seq *q, attn_error *err) {
    const local_state *s = q->mstate;
    size_t half = (size_t)(s->w / 2), H = (size_t)q->dims[0], kw, vw;
    attn_status st;
    if (!attn__mul(half, H * (size_t)q->dims[1], &kw) || !attn__mul(half, H * (size_t)q->dims[2], &vw))
        return attn__err(err, ATTN_E_OVERFLOW, "local: window size overflows");
    return (st = attn__seq_buf_add(q, "window_keys", ATTN_F32, false, kw, err)) ? st
           : attn__seq_buf_add(q, "window_values", ATTN_F32, false, vw, err);
}

typedef struct local_seq_job {
    const local_state *s;
    const attn_seq *q;
    const attn_qkv *a;
    float temp;
    float *out, *scratch; /* per worker: w slots */
} local_seq_job;

static attn_status local_seq_task(void *arg, size_t task, int worker) {
    const local_seq_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, E = a->E, D = a->D, T = a->L, w = j->s->w, half = w / 2, len = j->q->len;
    const int64_t n = (int64_t)task / H, h = (int64_t)task % H;
    const float *wk = attn__seq_stream(j->q, WIN_KEYS, n), *wv = attn__seq_stream(j->q, WIN_VALUES, n);
    float *slot = j->scratch + (size_t)worker * (size_t)w;
    for (int64_t t = 0; t < T; t++) {
        const int64_t p = len + t, start = p - half > 0 ? p - half : 0;
        const float *qr = a->q + ((n * T + t) * H + h) * E;
        for (int64_t k = 0; k < w; k++) slot[k] = -1e24f;
        for (int64_t x = start; x <= p; x++) {
            const float *kr = x < len ? wk + ((x - (len - half)) * H + h) * E : a->k + ((n * T + x - len) * H + h) * E;
            float dot = 0.0f;
            for (int64_t e = 0; e < E; e++) dot += qr[e] * kr[e];
            slot[x - p + half] = dot;
        }
        attn__scale(slot, j->temp, (size_t)w);
        attn__softmax_row(slot, (size_t)w);
        float *o = j->out + ((n * T + t) * H + h) * D;
        for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
        for (int64_t x = start; x <= p; x++) {
            const float *vr = x < len ? wv + ((x - (len - half)) * H + h) * D : a->v + ((n * T + x - len) * H + h) * D;
            attn__axpy(o, slot[x - p + half], vr, (size_t)D);
        }
    }
    return ATTN_OK;
}

/* Keeps the last ⌊w/2⌋ rows of (window ++ new rows); row = H·W floats. */
static void window_shift(float *win, size_t half, const float *fresh, size_t T, size_t row) {
    if (T >= half) {
        memcpy(win, fresh + (T - half) * row, half * row * sizeof *win);
    } else {
        memmove(win, win + T * row, (half - T) * row * sizeof *win);
        memcpy(win + (half - T) * row, fresh, T * row * sizeof *win);
    }
}

static attn_status local_seq_step(attn_seq *q, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err) {
    const local_state *s = q->mstate;
    local_seq_job j = {.s = s, .q = q, .a = a, .temp = attn__temp(s->softmax_temp, a->E), .out = out};
    size_t tasks = (size_t)a->N * (size_t)a->H;
    int workers = attn__workers(ctx, tasks);
    j.scratch = attn__calloc((size_t)workers, (size_t)s->w * sizeof(float), err);
    if (!j.scratch) return err ? err->code : ATTN_E_NOMEM;
    attn_status st = attn__parallel_for(ctx, tasks, local_seq_task, &j);
    free(j.scratch);
    if (st) return attn__err(err, st, "cancelled");
    const size_t half = (size_t)(s->w / 2), T = (size_t)a->L, kr = (size_t)(a->H * a->E), vr = (size_t)(a->H * a->D);
    for (int64_t n = 0; n < a->N && half; n++) {
        window_shift(attn__seq_stream(q, WIN_KEYS, n), half, a->k + (size_t)n * T * kr, T, kr);
        window_shift(attn__seq_stream(q, WIN_VALUES, n), half, a->v + (size_t)n * T * vr, T, vr);
    }
    return ATTN_OK;
}

static const attn_seq_ops local_seq = {
    .kinds = local_seq_kinds,
    .layout = local_seq_layout,
    .step_qkv = local_seq_step,
};
