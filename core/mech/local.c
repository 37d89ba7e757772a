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
#include "kernels/kernels.h"
#include "mech/full.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct local_job {
    const local_state *s;
    const attn_qkv *a;
    float temp;
    float *out, *scratch;
} local_job;

static attn_status local_task(void *arg, size_t task, int worker) {
    const local_job *j = arg;
    const attn_qkv *a = j->a;
    const int64_t H = a->H, E = a->E, D = a->D, L = a->L, S = a->S, w = j->s->w;
    const int64_t n = (int64_t)task / H, h = (int64_t)task % H, half = w / 2, up = (w + 1) / 2;
    const int64_t klen = a->key_lengths ? a->key_lengths[n] : S;
    float *slot = j->scratch + (size_t)worker * (size_t)w;
    for (int64_t l = 0; l < L; l++) {
        const float *q = a->q + ((n * L + l) * H + h) * E;
        int64_t start = l - half > 0 ? l - half : 0;
        int64_t end = l + up < klen ? l + up : klen;
        for (int64_t k = 0; k < w; k++) slot[k] = -1e24f;
        for (int64_t s = start; s < end; s++) {
            const float *kk = a->k + ((n * S + s) * H + h) * E;
            float dot = 0.0f;
            for (int64_t e = 0; e < E; e++) dot += q[e] * kk[e];
            if (a->attn_mask && !a->attn_mask[l * S + s]) dot += -1e24f;
            slot[s - l + half] = dot;
        }
        for (int64_t k = 0; k < w; k++) slot[k] *= j->temp;
        attn__softmax_row(slot, (size_t)w);
        float *o = j->out + ((n * L + l) * H + h) * D;
        for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
        int64_t vend = l + up < S ? l + up : S;
        for (int64_t s = start; s < vend; s++) {
            float p = slot[s - l + half];
            const float *v = a->v + ((n * S + s) * H + h) * D;
            for (int64_t d = 0; d < D; d++) o[d] += p * v[d];
        }
    }
    return ATTN_OK;
}

static attn_status local_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                     attn_error *err) {
    const local_state *s = state;
    local_job j = {.s = s, .a = a, .temp = attn__temp(s->softmax_temp, a->E), .out = out};
    size_t tasks = (size_t)a->N * (size_t)a->H;
    int workers = attn__workers(ctx, tasks);
    j.scratch = attn__calloc((size_t)workers, (size_t)s->w * sizeof(float), err);
    if (!j.scratch) return err ? err->code : ATTN_E_NOMEM;
    attn_status st = attn__parallel_for(ctx, tasks, local_task, &j);
    free(j.scratch);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}

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
    .forward_qkv = local_forward_qkv,
};
