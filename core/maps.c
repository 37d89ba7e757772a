/*
 * maps.c — the attention map shared by the softmax mechanisms of the
 * fast-transformers family (full, exact_topk, conditional_full's full
 * path): A = softmax(temp · (Q Kᵀ + masks)) as an (N,H,L,S) tensor, the
 * matrix FullAttention dispatches in its AttentionEvent.
 *
 * It is computed aside from the forward (which never forms A: see full.c),
 * only when a caller asks for the `attention` output, so the forward's
 * output bits and cost do not change.
 */
#include "attn_internal.h"
#include "kernels/kernels.h"
#include "workspace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAP_ROWS 256 /* queries per sgemm call */

typedef struct map_job {
    const attn_qkv *a;
    float temp;
    size_t topk; /* 0: every key */
    float *map;
    float *scratch; /* S floats per worker */
} map_job;

static int cmp_desc(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

/* Keeps the k largest entries of row (ties: the first in index order, as
 * exact_topk's forward picks them), the others become -inf. */
static void keep_topk(float *row, size_t S, size_t k, float *tmp) {
    if (k >= S) return;
    memcpy(tmp, row, S * sizeof *tmp);
    qsort(tmp, S, sizeof *tmp, cmp_desc);
    const float thr = tmp[k - 1];
    size_t above = 0;
    for (size_t s = 0; s < S; s++) above += row[s] > thr;
    size_t ties = k - above;
    for (size_t s = 0; s < S; s++) {
        if (row[s] > thr) continue;
        if (row[s] == thr && ties > 0) {
            ties--;
            continue;
        }
        row[s] = -INFINITY;
    }
}

static attn_status map_task(void *arg, size_t nh, int worker) {
    const map_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, L = (size_t)a->L, S = (size_t)a->S;
    const size_t n = nh / H, h = nh % H;
    const size_t klen = a->key_lengths ? (size_t)a->key_lengths[n] : S;
    float *map = j->map + nh * L * S;
    for (size_t l0 = 0; l0 < L; l0 += MAP_ROWS) {
        const size_t nq = L - l0 < MAP_ROWS ? L - l0 : MAP_ROWS;
        ATTN_TRY(attn__gemm(0, 1, nq, S, E, 1.0f, a->q + ((n * L + l0) * H + h) * E, H * E,
                            a->k + (n * S * H + h) * E, H * E, 0.0f, map + l0 * S, S));
    }
    for (size_t l = 0; l < L; l++) {
        float *row = map + l * S;
        const uint8_t *mrow = a->attn_mask && !a->mask_all_ones ? a->attn_mask + l * S : NULL;
        for (size_t s = 0; s < S; s++)
            if ((mrow && !mrow[s]) || s >= klen) row[s] = -INFINITY;
        float *pre = j->scratch + (size_t)worker * S;
        if (j->topk) keep_topk(row, S, j->topk, pre);
        for (size_t s = 0; s < S; s++) row[s] *= j->temp;
        memcpy(pre, row, S * sizeof *pre);
        attn__softmax_row(row, S);
        /* masked (and dropped) keys exactly 0, whatever the vector exp
         * gives for -inf; a row with nothing visible stays NaN */
        for (size_t s = 0; s < S; s++)
            if (pre[s] == -INFINITY && !isnan(row[s])) row[s] = 0.0f;
    }
    return ATTN_OK;
}

attn_status attn__maps_softmax_qkv(attn_ctx *ctx, const attn_qkv *a, float temp, size_t topk, float *map,
                                   attn_error *err) {
    map_job j = {.a = a, .temp = temp, .topk = topk, .map = map};
    const size_t tasks = (size_t)a->N * (size_t)a->H; /* the map's numel was checked: no overflow */
    size_t bytes;
    const int workers = attn__workers(ctx, tasks);
    if (!attn__mul((size_t)workers * sizeof(float), (size_t)a->S, &bytes))
        return attn__err(err, ATTN_E_OVERFLOW, "attention map: scratch size overflows");
    if (!(j.scratch = attn__calloc(1, bytes ? bytes : 1, err))) return ATTN_E_NOMEM;
    attn_status st = attn__parallel_for(ctx, tasks, map_task, &j);
    free(j.scratch);
    if (st) attn__err(err, st, "attention map: %s%s", attn_status_str(st), attn__fail_detail(st));
    return st;
}

attn_status attn__maps_by_rerun(const void *state, attn_ctx *ctx, const attn_qkv *a, size_t tasks, size_t ws_bytes,
                                float *map, attn_rerun_fn run, const char *what, attn_error *err) {
    size_t on;
    void *ws = NULL;
    float *out = NULL;
    if (!attn__mul(tasks, (size_t)a->L, &on) || !attn__mul(on, (size_t)a->D, &on))
        return attn__err(err, ATTN_E_OVERFLOW, "%s attention map: output size overflows", what);
    attn_status st = attn__ws_alloc(ws_bytes, &ws, err);
    if (st) return st;
    if (!(out = attn__calloc(on ? on : 1, sizeof *out, err))) {
        attn__ws_free(ws, ws_bytes);
        return ATTN_E_NOMEM;
    }
    st = run(state, ctx, a, out, ws, map, err);
    free(out);
    attn__ws_free(ws, ws_bytes);
    return st;
}
