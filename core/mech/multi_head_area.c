/*
 * multi_head_area.c — MultiHeadAreaAttention (area_attention package):
 * project q, k, v into num_heads heads, run one AreaAttention over every
 * (batch, head) pair, concatenate the heads and project back.
 *
 * Shapes: q (B,Nq,key_query_size), k (B,S,key_query_size),
 * v (B,S,value_size) with S = the inner memory_height · memory_width
 * -> out (B,Nq,value_size).  Inside: Q (B,Nq,heads·kqh), K (B,S,heads·kqh),
 * V (B,S,heads·vh), head h being columns [h·kqh, (h+1)·kqh) — the
 * reference's view + permute — and the heads' outputs (B,Nq,heads·vh).
 *
 * The reference takes an AreaAttention module; here `area_attention` is
 * that module's config object (optionally with "type": "area"), and its
 * learned weights, if any, are bound under "area_attention.".
 */
#include "attn_internal.h"
#include "kernels/kernels.h"
#include "mech/area.h"
#include "workspace.h"

#include <stdlib.h>
#include <string.h>

#define DIM_MAX 2147483647.0

static const attn_param mha_params[] = {
    {"area_attention", ATTN_P_OBJECT, NULL, 0, 0, NULL,
     "the inner AreaAttention's config (the `area` keys; \"type\": \"area\" optional)"},
    {"num_heads", ATTN_P_INT, NULL, 1, DIM_MAX, NULL, "number of heads"},
    {"key_query_size", ATTN_P_INT, NULL, 1, DIM_MAX, NULL, "input size of keys and queries"},
    {"key_query_size_hidden", ATTN_P_INT, NULL, 1, DIM_MAX, NULL,
     "per-head size of keys and queries"},
    {"value_size", ATTN_P_INT, NULL, 1, DIM_MAX, NULL, "input (and output) size of values"},
    {"value_size_hidden", ATTN_P_INT, NULL, 1, DIM_MAX, NULL, "per-head size of values"},
    {0},
};

typedef struct mha_state {
    area_cfg area;
    int64_t heads, kqs, kqh, vs, vh;
    const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} mha_state;

extern const attn_mech attn_mech_area;

/* The inner config as an object without "type" (*owned to decref). */
static attn_status inner_config(const attn_cfg *cfg, const json_t *spec, json_t **owned) {
    *owned = NULL;
    if (!json_is_object(spec))
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "%s: area_attention must be an object with the AreaAttention config",
                         cfg->mech);
    const json_t *type = json_object_get(spec, "type");
    if (!type) return ATTN_OK;
    if (!json_is_string(type) || attn__mech_find(json_string_value(type)) != &attn_mech_area)
        return attn__err(cfg->err, ATTN_E_CONFIG, "%s: area_attention.type must be \"area\"",
                         cfg->mech);
    if (!(*owned = json_deep_copy(spec)))
        return attn__err(cfg->err, ATTN_E_NOMEM, "out of memory");
    json_object_del(*owned, "type");
    return ATTN_OK;
}

static attn_status mha_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    mha_state *s = state;
    const json_t *spec;
    json_t *owned = NULL;
    attn_status st;
    if ((st = attn__cfg_check_keys(cfg)) ||
        (st = attn__cfg_object(cfg, "area_attention", &spec)) ||
        (st = attn__cfg_int(cfg, "num_heads", &s->heads, NULL)) ||
        (st = attn__cfg_int(cfg, "key_query_size", &s->kqs, NULL)) ||
        (st = attn__cfg_int(cfg, "key_query_size_hidden", &s->kqh, NULL)) ||
        (st = attn__cfg_int(cfg, "value_size", &s->vs, NULL)) ||
        (st = attn__cfg_int(cfg, "value_size_hidden", &s->vh, NULL)) ||
        (st = inner_config(cfg, spec, &owned)))
        return st;
    const attn_cfg icfg = {.obj = owned ? owned : spec, .params = attn__area_params,
                           .mech = "multi_head_area.area_attention", .err = cfg->err};
    st = attn__area_parse(&s->area, &icfg);
    json_decref(owned);
    if (st) return st;
    /* Learned key modes embed keys of width area_attention.key_query_size;
     * the reference's forward fails unless that is the per-head size.  The
     * other modes only take their temperature from it. */
    if (attn__area_learned(&s->area) && s->area.kqs != s->kqh)
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "%s: area_attention.key_query_size=%lld must equal "
                         "key_query_size_hidden=%lld for a learned area_key_mode",
                         cfg->mech, (long long)s->area.kqs, (long long)s->kqh);
    if ((st = attn__area_bind(&s->area, b, "area_attention."))) return st;
    size_t hq, hv;
    if (!attn__mul((size_t)s->heads, (size_t)s->kqh, &hq) || hq > (size_t)DIM_MAX ||
        !attn__mul((size_t)s->heads, (size_t)s->vh, &hv) || hv > (size_t)DIM_MAX)
        return attn__err(cfg->err, ATTN_E_CONFIG, "%s: num_heads x hidden sizes is too large",
                         cfg->mech);
    const int64_t HQ = (int64_t)hq, HV = (int64_t)hv;
    const struct {
        const char *name;
        int rank;
        int64_t shape[2];
        const float **dst;
    } w[] = {
        {"query_projection.weight", 2, {HQ, s->kqs}, &s->wq},
        {"query_projection.bias", 1, {HQ, 0}, &s->bq},
        {"key_projection.weight", 2, {HQ, s->kqs}, &s->wk},
        {"key_projection.bias", 1, {HQ, 0}, &s->bk},
        {"value_projection.weight", 2, {HV, s->vs}, &s->wv},
        {"value_projection.bias", 1, {HV, 0}, &s->bv},
        {"output_projection.weight", 2, {s->vs, HV}, &s->wo},
        {"output_projection.bias", 1, {s->vs, 0}, &s->bo},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        float *p;
        if ((st = attn__bind(b, w[i].name, w[i].rank, w[i].shape, &p))) return st;
        *w[i].dst = p;
    }
    const int64_t S = (int64_t)s->area.n_mem;
    const int64_t qs[3] = {-1, -1, s->kqs}, ks[3] = {-1, S, s->kqs}, vs[3] = {-1, S, s->vs};
    const int64_t os[3] = {-1, -1, s->vs};
    if ((st = attn__model_add_input(m, "q", ATTN_F32, true, "B,Nq,key_query_size", 3, qs)) ||
        (st = attn__model_add_input(m, "k", ATTN_F32, true, "B,S,key_query_size", 3, ks)) ||
        (st = attn__model_add_input(m, "v", ATTN_F32, true, "B,S,value_size", 3, vs)))
        return st;
    attn__model_set_output(m, "B,Nq,value_size", 3, os);
    return ATTN_OK;
}

/* ---- forward ---- */

/* A torch.nn.Linear over `rows` rows, split into row blocks across ctx. */
typedef struct lin_job {
    const float *x, *W, *b;
    float *y;
    size_t rows, in, out, chunk;
} lin_job;

static attn_status lin_task(void *arg, size_t t, int worker) {
    (void)worker;
    const lin_job *j = arg;
    const size_t r0 = t * j->chunk, n = j->rows - r0 < j->chunk ? j->rows - r0 : j->chunk;
    return attn__linear(j->x + r0 * j->in, n, j->in, j->W, j->b, j->out, j->y + r0 * j->out);
}

static attn_status par_linear(attn_ctx *ctx, const float *x, size_t rows, size_t in,
                              const float *W, const float *b, size_t out, float *y) {
    /* Fixed 64-row chunks: the sgemm sizes, hence the bits, do not depend
     * on the thread count. */
    lin_job j = {.x = x, .W = W, .b = b, .y = y, .rows = rows, .in = in, .out = out, .chunk = 64};
    return attn__parallel_for(ctx, (rows + j.chunk - 1) / j.chunk, lin_task, &j);
}

typedef struct mha_job {
    const mha_state *s;
    size_t nq, S, hq, hv; /* hq = heads·kqh, hv = heads·vh: row strides */
    const float *Q, *K, *V;
    float *att;
    float *wmap; /* (B, heads, nq, A) weights, or NULL */
    char *scratch;
    size_t per_worker;
} mha_job;

static attn_status mha_task(void *arg, size_t t, int worker) {
    const mha_job *j = arg;
    const size_t H = (size_t)j->s->heads, b = t / H, h = t % H;
    const size_t kqh = (size_t)j->s->kqh, vh = (size_t)j->s->vh;
    return attn__area_forward(&j->s->area, j->nq, kqh, vh, j->Q + b * j->nq * j->hq + h * kqh, j->hq,
                              j->K + b * j->S * j->hq + h * kqh, j->hq, j->V + b * j->S * j->hv + h * vh,
                              j->hv, j->att + b * j->nq * j->hv + h * vh, j->hv,
                              j->scratch + (size_t)worker * j->per_worker,
                              j->wmap ? j->wmap + t * j->nq * j->s->area.n_areas : NULL);
}

/* The job of a forward on `threads` and its workspace: the projected
 * Q, K, V, the per-head outputs, then per-worker area scratch. */
typedef struct mha_plan {
    area_inputs x;
    mha_job j;
    size_t tasks, Q, K, V, att, scratch, bytes;
} mha_plan;

static attn_status plan_make(const attn_model *m, const mha_state *s, const attn_tensor_set *in,
                             int threads, mha_plan *p, attn_error *err) {
    attn_status st;
    if ((st = attn__area_inputs(m, in, &p->x, err))) return st;
    const size_t B = p->x.B, H = (size_t)s->heads;
    p->j = (mha_job){.s = s, .nq = p->x.nq, .S = s->area.n_mem, .hq = H * (size_t)s->kqh,
                     .hv = H * (size_t)s->vh};
    mha_job *j = &p->j;
    size_t rq, rs;
    if (!attn__mul(B, j->nq, &rq) || !attn__mul(B, j->S, &rs) || !attn__mul(B, H, &p->tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "multi_head_area: projected sizes overflow");
    if ((st = attn__area_scratch(&s->area, j->nq, (size_t)s->kqh, (size_t)s->vh, &j->per_worker,
                                 err)))
        return st;
    attn_ws_layout y = {0};
    p->Q = attn__ws_region(&y, rq, j->hq * sizeof(float));
    p->K = attn__ws_region(&y, rs, j->hq * sizeof(float));
    p->V = attn__ws_region(&y, rs, j->hv * sizeof(float));
    p->att = attn__ws_region(&y, rq, j->hv * sizeof(float));
    p->scratch = attn__ws_region(&y, (size_t)attn__workers_of(threads, p->tasks), j->per_worker);
    return attn__ws_size(&y, "multi_head_area", &p->bytes, err);
}

static attn_status mha_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                               int threads, attn_plan *out, attn_error *err) {
    const mha_state *s = state;
    mha_plan p;
    attn_status st = plan_make(m, s, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 3, .shape = {p.x.q->shape[0], p.x.q->shape[1], s->vs},
                       .ws_bytes = p.bytes};
    return ATTN_OK;
}

static attn_status mha_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                    const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                    attn_error *err) {
    const mha_state *s = state;
    mha_plan p;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    mha_job *j = &p.j;
    const size_t B = p.x.B;
    float *Q = attn__ws_at(ws, p.Q), *K = attn__ws_at(ws, p.K), *V = attn__ws_at(ws, p.V);
    float *att = attn__ws_at(ws, p.att);
    if ((st = par_linear(ctx, p.x.q->data, B * j->nq, (size_t)s->kqs, s->wq, s->bq, j->hq, Q)) ||
        (st = par_linear(ctx, p.x.k->data, B * j->S, (size_t)s->kqs, s->wk, s->bk, j->hq, K)) ||
        (st = par_linear(ctx, p.x.v->data, B * j->S, (size_t)s->vs, s->wv, s->bv, j->hv, V)))
        return st;
    j->Q = Q;
    j->K = K;
    j->V = V;
    j->att = att;
    j->wmap = maps ? maps[1] : NULL;
    if (maps && maps[2]) attn__area_geometry(&s->area, maps[2]);
    j->scratch = attn__ws_at(ws, p.scratch);
    if ((st = attn__parallel_for(ctx, p.tasks, mha_task, j))) return st;
    return par_linear(ctx, att, B * j->nq, j->hv, s->wo, s->bo, (size_t)s->vs, out);
}

static attn_status mha_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                               const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return mha_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention maps: per head, as the reference's (B*heads, Nq, A) ---- */

static const attn_out_decl mha_outputs[] = {
    {"attention", "B,heads,Nq,A",
     "each head's weights over the A areas (after top-k), the reference's (B*heads,Nq,A)"},
    {"attention_areas", "A,4",
     "area a's top row, left column, height and width on the memory grid (row a: top, left, h, w)"},
    {0},
};

static attn_status mha_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                  const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const mha_state *s = state;
    area_inputs x;
    attn_status st = attn__area_inputs(m, in, &x, err);
    if (st) return st;
    if (i == 1) {
        *rank = 4;
        shape[0] = (int64_t)x.B, shape[1] = s->heads, shape[2] = (int64_t)x.nq, shape[3] = (int64_t)s->area.n_areas;
    } else {
        *rank = 2;
        shape[0] = (int64_t)s->area.n_areas, shape[1] = 4;
    }
    return ATTN_OK;
}

static const attn_maps_ops mha_maps = {.outputs = mha_outputs, .shape = mha_maps_shape, .forward = mha_forward_maps};

const attn_mech attn_mech_multi_head_area = {
    .info = {.name = "multi_head_area",
             .aliases = (const char *const[]){"multi-head-area-attention",
                                              "MultiHeadAreaAttention", NULL},
             .reference = "MultiHeadAreaAttention in area_attention",
             .summary = "area attention over num_heads projected heads, concatenated and "
                        "projected back",
             .params = mha_params,
             .has_weights = 1,
             .is_inner = 0},
    .state_size = sizeof(mha_state),
    .init = mha_init,
    .plan = mha_plan_fn,
    .forward = mha_forward,
    .maps = &mha_maps,
};
