/*
 * conditional_full.c — ConditionalFullAttention (fast-transformers): full
 * softmax attention while L and S are within length_limit, otherwise the
 * configured other_attention.  The other attention's weights (if any) live
 * under "other_attention." as in the reference module's state_dict.
 */
#include "attn_internal.h"
#include "mech/full.h"

typedef struct cond_state {
    int64_t length_limit;
    float softmax_temp;
    attn_model *other; /* adopted by the model */
} cond_state;

static const attn_param cond_params[] = {
    {"other_attention", ATTN_P_OBJECT, NULL, 0, 0, NULL,
     "the attention used above the limit: {\"type\": ..., ...its config}"},
    {"length_limit", ATTN_P_INT, "512", 0, 1e15, NULL, "full attention while L and S <= this"},
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, "null (or 0) means 1/sqrt(E)"},
    {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL, "accepted and ignored (eval mode)"},
    {0},
};

static attn_status cond_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    cond_state *s = state;
    attn_full_cfg fc;
    const json_t *other;
    attn_status st;
    if ((st = attn__cfg_int(cfg, "length_limit", &s->length_limit, NULL)) ||
        (st = attn__full_parse(cfg, &fc)) || (st = attn__cfg_object(cfg, "other_attention", &other)))
        return st;
    s->softmax_temp = fc.softmax_temp;
    if ((st = attn__model_new_nested(m, other, b, "other_attention.", &s->other, cfg->err))) return st;
    /* The other attention may fix E or D (query_dimensions of linear with a
     * random feature map): keep its declaration so inputs are checked
     * against it up front. */
    const attn_io_spec *q = attn_model_input(s->other, 0), *v = attn_model_input(s->other, 2);
    return attn__qkv_declare(m, q ? q->shape[3] : 0, v ? v->shape[3] : 0);
}

static attn_status cond_forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                                    void *ws, attn_error *err) {
    const cond_state *s = state;
    if (a->L > s->length_limit || a->S > s->length_limit)
        return attn__model_forward_qkv(s->other, ctx, a, out, ws, err);
    return attn__full_forward(s->softmax_temp, ctx, a, out, ws, err);
}

/* The workspace of whichever attention runs. */
static attn_status cond_workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                      attn_error *err) {
    const cond_state *s = state;
    *bytes = 0;
    if (a->L > s->length_limit || a->S > s->length_limit)
        return attn__model_workspace_qkv(s->other, a, threads, bytes, err);
    return attn__full_workspace(a, threads, bytes, err);
}

/* ---- the attention map ----
 * Within the limit: full attention's map.  Past it: the other attention's
 * map when it forms one (its output "attention"); otherwise the request
 * is refused (ATTN_E_UNSUPPORTED), already by the size query. */

static const attn_out_decl cond_outputs[] = {
    {"attention", "N,H,L,S",
     "within length_limit: full attention's softmax weights; beyond it: other_attention's map"},
    {0},
};

static bool cond_full_path(const cond_state *s, const attn_qkv *a) {
    return !(a->L > s->length_limit || a->S > s->length_limit);
}

static attn_status cond_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                   const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const cond_state *s = state;
    if (cond_full_path(s, a)) {
        *rank = 4;
        shape[0] = a->N, shape[1] = a->H, shape[2] = a->L, shape[3] = a->S;
        return ATTN_OK;
    }
    int oi = attn_model_output_index(s->other, "attention");
    if (oi < 1)
        return attn__err(err, ATTN_E_UNSUPPORTED,
                         "conditional_full: L=%lld, S=%lld exceed length_limit=%lld, so %s runs, "
                         "which forms no attention map", (long long)a->L, (long long)a->S,
                         (long long)s->length_limit, attn_model_mech(s->other)->name);
    return attn__model_maps_shape(s->other, a, (size_t)oi, rank, shape, err);
}

static attn_status cond_maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                                 float *const *maps, attn_error *err) {
    const cond_state *s = state;
    if (cond_full_path(s, a))
        return attn__maps_softmax_qkv(ctx, a, attn__temp(s->softmax_temp, a->E), 0, maps[1], err);
    int oi = attn_model_output_index(s->other, "attention");
    float *other[ATTN__MAX_OUTPUTS] = {0};
    if (oi < 1 || (size_t)oi >= sizeof other / sizeof other[0])
        return attn__err(err, ATTN_E_UNSUPPORTED, "conditional_full: its other attention forms no attention map");
    other[oi] = maps[1];
    return attn__model_maps_qkv(s->other, ctx, a, other, err);
}

static const attn_maps_ops cond_maps = {.outputs = cond_outputs, .shape = cond_maps_shape, .qkv = cond_maps_qkv};

static const char *const cond_aliases[] = {"conditional-full", NULL};

const attn_mech attn_mech_conditional_full = {
    .info = {.name = "conditional_full",
             .aliases = cond_aliases,
             .reference = "fast_transformers.attention.ConditionalFullAttention",
             .summary = "full attention up to length_limit, other_attention beyond",
             .params = cond_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(cond_state),
    .init = cond_init,
    .workspace_qkv = cond_workspace_qkv,
    .forward_qkv = cond_forward_qkv,
    .maps = &cond_maps,
};
