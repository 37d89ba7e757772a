/*
 * attention_layer.c — AttentionLayer (fast-transformers): the four
 * projections around any inner attention.
 *
 * Shapes: queries (N,L,d_model), keys and values (N,S,d_model_keys)
 *   Q = queries Wqᵀ + bq -> (N,L,H,d_keys)     (head h = features h*d_keys ...)
 *   K = keys    Wkᵀ + bk -> (N,S,H,d_keys)
 *   V = values  Wvᵀ + bv -> (N,S,H,d_values)
 *   out = inner(Q,K,V, masks).view(N,L,H*d_values) Woᵀ + bo -> (N,L,d_model)
 * Weights: query_/key_/value_/out_projection.{weight,bias}, and the inner
 * attention's under "inner_attention.".
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "seq_internal.h"

#include <stdlib.h>

static const attn_seq_ops layer_seq;

typedef struct layer_state {
    int64_t d_model, H, dk, dv, dmk;
    float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
    attn_model *inner;
} layer_state;

static const attn_param layer_params[] = {
    {"attention", ATTN_P_OBJECT, NULL, 0, 0, NULL, "the inner attention: {\"type\": ..., ...its config}"},
    {"d_model", ATTN_P_INT, NULL, 1, 1 << 20, NULL, "model width"},
    {"n_heads", ATTN_P_INT, NULL, 1, 1 << 16, NULL, "number of heads H"},
    {"d_keys", ATTN_P_INT, "null", 1, 1 << 20, NULL, "per-head query/key width; null = d_model/n_heads"},
    {"d_values", ATTN_P_INT, "null", 1, 1 << 20, NULL, "per-head value width; null = d_model/n_heads"},
    {"d_model_keys", ATTN_P_INT, "null", 1, 1 << 20, NULL, "width of keys/values inputs; null = d_model"},
    {"event_dispatcher", ATTN_P_STRING, "", 0, 0, NULL, "accepted and ignored"},
    {0},
};

static attn_status layer_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    layer_state *s = state;
    const json_t *inner;
    const char *ev;
    bool dk_null, dv_null, dmk_null;
    attn_status st;
    if ((st = attn__cfg_int(cfg, "d_model", &s->d_model, NULL)) ||
        (st = attn__cfg_int(cfg, "n_heads", &s->H, NULL)) ||
        (st = attn__cfg_int(cfg, "d_keys", &s->dk, &dk_null)) ||
        (st = attn__cfg_int(cfg, "d_values", &s->dv, &dv_null)) ||
        (st = attn__cfg_int(cfg, "d_model_keys", &s->dmk, &dmk_null)) ||
        (st = attn__cfg_string(cfg, "event_dispatcher", &ev)) ||
        (st = attn__cfg_object(cfg, "attention", &inner)))
        return st;
    /* `d_keys or d_model//n_heads`: integer division, as the reference. */
    if (dk_null) s->dk = s->d_model / s->H;
    if (dv_null) s->dv = s->d_model / s->H;
    if (dmk_null) s->dmk = s->d_model;
    if (s->dk < 1 || s->dv < 1)
        return attn__err(cfg->err, ATTN_E_CONFIG, "attention_layer: d_model=%lld / n_heads=%lld gives 0-wide heads",
                         (long long)s->d_model, (long long)s->H);
    int64_t hk = s->H * s->dk, hv = s->H * s->dv;
    int64_t sq[2] = {hk, s->d_model}, sk[2] = {hk, s->dmk}, sv[2] = {hv, s->dmk}, so[2] = {s->d_model, hv};
    if ((st = attn__bind(b, "query_projection.weight", 2, sq, &s->wq)) ||
        (st = attn__bind(b, "query_projection.bias", 1, &hk, &s->bq)) ||
        (st = attn__bind(b, "key_projection.weight", 2, sk, &s->wk)) ||
        (st = attn__bind(b, "key_projection.bias", 1, &hk, &s->bk)) ||
        (st = attn__bind(b, "value_projection.weight", 2, sv, &s->wv)) ||
        (st = attn__bind(b, "value_projection.bias", 1, &hv, &s->bv)) ||
        (st = attn__bind(b, "out_projection.weight", 2, so, &s->wo)) ||
        (st = attn__bind(b, "out_projection.bias", 1, &s->d_model, &s->bo)))
        return st;
    if ((st = attn__model_new_nested(m, inner, b, "inner_attention.", &s->inner, cfg->err))) return st;
    /* An inner attention that fixes E (linear's query_dimensions) must agree. */
    const attn_io_spec *iq = attn_model_input(s->inner, 0), *iv = attn_model_input(s->inner, 2);
    if (iq && iq->shape[3] >= 0 && iq->shape[3] != s->dk)
        return attn__err(cfg->err, ATTN_E_CONFIG, "attention_layer: inner attention expects E=%lld but d_keys=%lld",
                         (long long)iq->shape[3], (long long)s->dk);
    if (iv && iv->shape[3] >= 0 && iv->shape[3] != s->dv)
        return attn__err(cfg->err, ATTN_E_CONFIG, "attention_layer: inner attention expects D=%lld but d_values=%lld",
                         (long long)iv->shape[3], (long long)s->dv);
    int64_t q[3] = {-1, -1, s->d_model}, kv[3] = {-1, -1, s->dmk};
    if ((st = attn__model_add_input(m, "queries", ATTN_F32, true, "N,L,d_model", 3, q)) ||
        (st = attn__model_add_input(m, "keys", ATTN_F32, true, "N,S,d_model_keys", 3, kv)) ||
        (st = attn__model_add_input(m, "values", ATTN_F32, true, "N,S,d_model_keys", 3, kv)) ||
        (st = attn__model_add_input(m, "attn_mask", ATTN_BOOL, false, "L,S", 2, NULL)) ||
        (st = attn__model_add_input(m, "query_lengths", ATTN_I64, false, "N", 1, NULL)) ||
        (st = attn__model_add_input(m, "key_lengths", ATTN_I64, false, "N", 1, NULL)))
        return st;
    attn__model_set_output(m, "N,L,d_model", 3, q);
    return ATTN_OK;
}

/* The inner argument block (without q/k/v) of a forward on `threads` and
 * its workspace: projected Q, K, V, the inner output O, then the inner
 * attention's own workspace. */
typedef struct layer_plan {
    const attn_tensor *q, *k, *v;
    attn_qkv a;
    size_t rq, rk, hk, hv;
    size_t Q, K, V, O, inner, bytes;
} layer_plan;

static attn_status plan_make(const attn_model *m, const layer_state *s, const attn_tensor_set *in,
                             int threads, layer_plan *p, attn_error *err) {
    attn_status st;
    if ((st = attn__input(m, in, "queries", &p->q, err)) || (st = attn__input(m, in, "keys", &p->k, err)) ||
        (st = attn__input(m, in, "values", &p->v, err)))
        return st;
    const int64_t N = p->q->shape[0], L = p->q->shape[1], S = p->k->shape[1];
    if (p->k->shape[0] != N || p->v->shape[0] != N || p->v->shape[1] != S)
        return attn__err(err, ATTN_E_SHAPE, "keys and values must be (N,S,d_model_keys) with the queries' N and a common S");
    p->a = (attn_qkv){.N = N, .L = L, .S = S, .H = s->H, .E = s->dk, .D = s->dv};
    if ((st = attn__qkv_read_masks(m, in, &p->a, err))) return st;
    size_t inner;
    if ((st = attn__model_workspace_qkv(s->inner, &p->a, threads, &inner, err))) return st;
    /* N·L and N·S are element counts of input tensors; H·d_keys of weights. */
    p->rq = (size_t)(N * L), p->rk = (size_t)(N * S);
    p->hk = (size_t)(s->H * s->dk), p->hv = (size_t)(s->H * s->dv);
    attn_ws_layout y = {0};
    p->Q = attn__ws_region(&y, p->rq, p->hk * sizeof(float));
    p->K = attn__ws_region(&y, p->rk, p->hk * sizeof(float));
    p->V = attn__ws_region(&y, p->rk, p->hv * sizeof(float));
    p->O = attn__ws_region(&y, p->rq, p->hv * sizeof(float));
    p->inner = attn__ws_region(&y, inner, 1);
    return attn__ws_size(&y, "attention_layer", &p->bytes, err);
}

static attn_status layer_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                                 int threads, attn_plan *out, attn_error *err) {
    const layer_state *s = state;
    layer_plan p;
    attn_status st = plan_make(m, s, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 3, .shape = {p.a.N, p.a.L, s->d_model}, .ws_bytes = p.bytes};
    return ATTN_OK;
}

static attn_status layer_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                                 const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    const layer_state *s = state;
    layer_plan p;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    float *Q = attn__ws_at(ws, p.Q), *K = attn__ws_at(ws, p.K), *V = attn__ws_at(ws, p.V);
    float *O = attn__ws_at(ws, p.O);
    /* Projections run over row chunks, the inner attention over N×H, both
     * with the call's threads. */
    if ((st = attn__linear_rows(ctx, p.q->data, p.rq, (size_t)s->d_model, s->wq, s->bq, p.hk, Q)) ||
        (st = attn__linear_rows(ctx, p.k->data, p.rk, (size_t)s->dmk, s->wk, s->bk, p.hk, K)) ||
        (st = attn__linear_rows(ctx, p.v->data, p.rk, (size_t)s->dmk, s->wv, s->bv, p.hv, V)))
        return st;
    p.a.q = Q;
    p.a.k = K;
    p.a.v = V;
    if ((st = attn__model_forward_qkv(s->inner, ctx, &p.a, O, attn__ws_at(ws, p.inner), err))) return st;
    return attn__linear_rows(ctx, O, p.rq, p.hv, s->wo, s->bo, (size_t)s->d_model, out);
}

/* ---- the attention maps: the inner attention's, over the projected heads ---- */

static attn_status layer_maps_declare(attn_model *m, const void *state) {
    const layer_state *s = state;
    return attn__model_add_outputs_of(m, s->inner);
}

static attn_status layer_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                    const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const layer_state *s = state;
    layer_plan p;
    attn_status st = plan_make(m, s, in, 1, &p, err);
    return st ? st : attn__model_maps_shape(s->inner, &p.a, i, rank, shape, err);
}

/* layer_forward, then the inner attention's maps of the projected Q, K, V
 * (still in the workspace). */
static attn_status layer_maps_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                                      const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                      attn_error *err) {
    const layer_state *s = state;
    layer_plan p;
    attn_status st = layer_forward(m, state, ctx, in, out, ws, err);
    if (st || !attn__maps_any(m, maps) || (st = plan_make(m, s, in, attn_ctx_threads(ctx), &p, err))) return st;
    p.a.q = attn__ws_at(ws, p.Q);
    p.a.k = attn__ws_at(ws, p.K);
    p.a.v = attn__ws_at(ws, p.V);
    return attn__model_maps_qkv(s->inner, ctx, &p.a, maps, err);
}

static const attn_out_decl layer_outputs[] = {
    {"<the inner attention's>", "N,H,L,S",
     "the inner attention's maps (e.g. attention) over the projected queries and keys"},
    {0},
};

static const attn_maps_ops layer_maps = {
    .outputs = layer_outputs,
    .declare = layer_maps_declare, .shape = layer_maps_shape, .forward = layer_maps_forward};

static const char *const layer_aliases[] = {"attention-layer", NULL};

const attn_mech attn_mech_attention_layer = {
    .info = {.name = "attention_layer",
             .aliases = layer_aliases,
             .reference = "fast_transformers.attention.AttentionLayer",
             .summary = "query/key/value/out projections around any inner attention",
             .params = layer_params,
             .has_weights = 1,
             .is_inner = 0},
    .state_size = sizeof(layer_state),
    .init = layer_init,
    .plan = layer_plan_fn,
    .forward = layer_forward,
    .seq = &layer_seq,
    .maps = &layer_maps,
};

/* ---- sequences: RecurrentAttentionLayer / RecurrentCrossAttentionLayer ----
 * The layer keeps no state of its own: a step projects only its new
 * tokens and runs the inner attention's sequence (its child, exported
 * under "inner.") on them, then the output projection.  A cross start
 * projects the memory's keys and values once and hands them to the inner
 * attention's cross start.  The kinds are the inner attention's. */

static unsigned layer_seq_kinds(const attn_model *m, const void *state, const char **why) {
    const layer_state *s = state;
    if (!s) return ATTN_SEQ_SELF | ATTN_SEQ_CROSS; /* with some inner attention */
    unsigned k = attn__seq_model_kinds(s->inner, why);
    if (!k && why && !*why) *why = "its inner attention has no recurrent form";
    return k;
}

static attn_status layer_seq_layout(attn_seq *q, attn_error *err) {
    const layer_state *s = q->mstate;
    return attn__seq_child(q, s->inner, err);
}

static const char *const layer_refused[] = {"attn_mask", "query_lengths", "key_lengths", NULL};

/* Projects `rows` rows of x (width in) with W, b into a new (rows, outw) buffer. */
static attn_status project(attn_ctx *ctx, const float *x, size_t rows, size_t in, const float *W, const float *b,
                           size_t outw, float **out, attn_error *err) {
    *out = attn__calloc(rows, outw * sizeof(float), err);
    if (!*out) return err ? err->code : ATTN_E_NOMEM;
    attn_status st = attn__linear_rows(ctx, x, rows, in, W, b, outw, *out);
    if (st) attn__err(err, st, "cancelled");
    return st;
}

static attn_status layer_seq_start(attn_seq *q, attn_ctx *ctx, const attn_tensor_set *mem, attn_error *err) {
    const layer_state *s = q->mstate;
    const attn_tensor *tk, *tv;
    attn_status st;
    if ((st = attn__input(q->model, mem, "keys", &tk, err)) || (st = attn__input(q->model, mem, "values", &tv, err)))
        return st;
    const int64_t N = q->N, S = tk->shape[1];
    if (tk->shape[0] != N || tv->shape[0] != N || tv->shape[1] != S)
        return attn__err(err, ATTN_E_SHAPE, "memory keys and values must be (N,S,d_model_keys) with N=%lld streams "
                                            "and a common S", (long long)N);
    int64_t *kl = NULL;
    float *K = NULL, *V = NULL;
    if ((st = attn__seq_memory_lengths(mem, N, S, &kl, err))) return st;
    size_t rk = (size_t)(N * S), hk = (size_t)(s->H * s->dk), hv = (size_t)(s->H * s->dv);
    if (!(st = project(ctx, tk->data, rk, (size_t)s->dmk, s->wk, s->bk, hk, &K, err)) &&
        !(st = project(ctx, tv->data, rk, (size_t)s->dmk, s->wv, s->bv, hv, &V, err))) {
        q->ndims = 1;
        q->dims[0] = S;
        st = attn__seq_layout(q, err);
        attn_qkv a = {.N = N, .S = S, .H = s->H, .E = s->dk, .D = s->dv, .k = K, .v = V, .key_lengths = kl};
        attn__qkv_prepare(&a);
        if (!st) st = attn__seq_qkv_start(q->child, ctx, &a, err);
    }
    free(kl);
    free(K);
    free(V);
    return st;
}

static attn_status layer_seq_step(attn_seq *q, attn_ctx *ctx, const attn_tensor_set *in, attn_tensor **out,
                                  attn_error *err) {
    const layer_state *s = q->mstate;
    const bool self = q->kind == ATTN_SEQ_SELF;
    const attn_tensor *tq, *tk = NULL, *tv = NULL;
    attn_status st;
    for (int i = 0; layer_refused[i]; i++)
        if ((st = attn__seq_refuse(in, layer_refused[i], "a sequence is causal by construction", err))) return st;
    if (!self && ((st = attn__seq_refuse(in, "keys", "a cross sequence takes its memory once, at its start", err)) ||
                  (st = attn__seq_refuse(in, "values", "a cross sequence takes its memory once, at its start", err))))
        return st;
    if ((st = attn__input(q->model, in, "queries", &tq, err))) return st;
    const int64_t N = tq->shape[0], T = tq->shape[1];
    if (N != q->N)
        return attn__err(err, ATTN_E_SHAPE, "input 'queries' has N=%lld; the sequence has %lld streams", (long long)N,
                         (long long)q->N);
    if (self) {
        if ((st = attn__input(q->model, in, "keys", &tk, err)) || (st = attn__input(q->model, in, "values", &tv, err)))
            return st;
        if (tk->shape[0] != N || tv->shape[0] != N || tk->shape[1] != T || tv->shape[1] != T)
            return attn__err(err, ATTN_E_SHAPE, "a self step needs keys and values (N,T,d_model_keys) for the "
                                                "queries' N=%lld, T=%lld", (long long)N, (long long)T);
    }
    if ((st = attn__seq_begin(q, 0, NULL, T, err))) return st;
    size_t rq = (size_t)(N * T), hk = (size_t)(s->H * s->dk), hv = (size_t)(s->H * s->dv);
    float *Q = NULL, *K = NULL, *V = NULL, *O = NULL;
    attn_tensor *res = NULL;
    if ((st = project(ctx, tq->data, rq, (size_t)s->d_model, s->wq, s->bq, hk, &Q, err))) goto done;
    if (self && ((st = project(ctx, tk->data, rq, (size_t)s->dmk, s->wk, s->bk, hk, &K, err)) ||
                 (st = project(ctx, tv->data, rq, (size_t)s->dmk, s->wv, s->bv, hv, &V, err))))
        goto done;
    if (!(O = attn__calloc(rq, hv * sizeof(float), err))) {
        st = err ? err->code : ATTN_E_NOMEM;
        goto done;
    }
    attn_qkv a = {.N = N, .L = T, .S = T, .H = s->H, .E = s->dk, .D = s->dv, .q = Q, .k = K, .v = V};
    attn__qkv_prepare(&a);
    if ((st = attn__seq_qkv_step(q->child, ctx, &a, O, err))) goto done;
    if ((st = attn__tensor_new_uninit(ATTN_F32, 3, (int64_t[]){N, T, s->d_model}, &res, err))) goto done;
    if ((st = attn__linear_rows(ctx, O, rq, hv, s->wo, s->bo, (size_t)s->d_model, res->data))) {
        attn__err(err, st, "cancelled");
        attn_tensor_free(res);
        goto done;
    }
    *out = res;
done:
    free(Q);
    free(K);
    free(V);
    free(O);
    return attn__seq_commit(q, st, T);
}

static const attn_seq_ops layer_seq = {
    .kinds = layer_seq_kinds,
    .layout = layer_seq_layout,
    .start = layer_seq_start,
    .step = layer_seq_step,
};
