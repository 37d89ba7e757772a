/* fuzz_config.c — libFuzzer target: every mechanism's config parser.
 * Input: one byte picks the type, the rest is the config JSON text.  A
 * model that builds is run once on tiny random-shaped inputs so that the
 * config's effect on the forward (sizes, modes) is exercised too. */
#include "attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builds the model, supplying every weight the binder reports missing
 * ("missing weight 'NAME' of shape (a,b,...)") with small values, so that
 * mechanisms with weights get their forward fuzzed too. */
static attn_status build(const char *type, const char *cfg, attn_model **out) {
    attn_tensor_set *w = attn_tensor_set_new();
    attn_error e;
    attn_status st = ATTN_E_WEIGHTS;
    for (int tries = 0; tries < 64 && st == ATTN_E_WEIGHTS; tries++) {
        st = attn_model_new(type, cfg, w, out, &e);
        if (st != ATTN_E_WEIGHTS) break;
        char name[200];
        const char *p = strstr(e.msg, "missing weight '"), *q, *sh;
        if (!p) break;
        p += strlen("missing weight '");
        q = strchr(p, '\'');
        sh = q ? strstr(q, "of shape (") : NULL;
        if (!q || !sh || (size_t)(q - p) >= sizeof name) break;
        memcpy(name, p, (size_t)(q - p));
        name[q - p] = 0;
        int64_t shape[ATTN_MAX_RANK];
        int rank = 0;
        size_t numel = 1;
        for (const char *c = sh + strlen("of shape ("); *c && *c != ')' && rank < ATTN_MAX_RANK;) {
            char *end;
            long long v = strtoll(c, &end, 10);
            if (end == c) break;
            shape[rank++] = v;
            numel *= v > 0 ? (size_t)v : 1;
            c = *end == ',' ? end + 1 : end;
        }
        if (numel > (1u << 20)) break;
        attn_tensor *t = NULL;
        if (attn_tensor_new(ATTN_F32, rank, shape, &t, &e) != ATTN_OK) break;
        for (size_t j = 0; j < t->numel; j++) ((float *)t->data)[j] = (float)((j * 2654435761u) % 17) / 17.0f - 0.5f;
        if (attn_tensor_set_add(w, name, t, &e) != ATTN_OK) break;
    }
    attn_tensor_set_free(w);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    size_t n = attn_mech_count();
    const attn_mech_info *m = attn_mech_at(data[0] % n);
    char *cfg = malloc(size);
    memcpy(cfg, data + 1, size - 1);
    cfg[size - 1] = 0;
    attn_model *model = NULL;
    attn_error e;
    if (build(m->name, cfg, &model) == ATTN_OK) {
        /* Feed inputs shaped from the declaration, free dims = 2. */
        attn_tensor_set *in = attn_tensor_set_new();
        for (size_t i = 0; i < attn_model_num_inputs(model); i++) {
            const attn_io_spec *s = attn_model_input(model, i);
            if (!s->required) continue;
            int64_t shape[ATTN_MAX_RANK];
            size_t numel = 1;
            for (int d = 0; d < s->rank; d++) {
                shape[d] = s->shape[d] >= 0 ? s->shape[d] : 2;
                numel *= (size_t)shape[d];
            }
            if (numel > (1u << 16)) continue;
            attn_tensor *t = NULL;
            if (attn_tensor_new(s->dtype, s->rank, shape, &t, &e) == ATTN_OK) {
                if (s->dtype == ATTN_F32)
                    for (size_t j = 0; j < t->numel; j++) ((float *)t->data)[j] = (float)((j * 7919) % 13) / 13.0f - 0.5f;
                attn_tensor_set_add(in, s->name, t, &e);
            }
        }
        attn_ctx *c = attn_ctx_new(1);
        attn_tensor *out = NULL;
        if (attn_model_forward(model, c, in, &out, &e) == ATTN_OK) attn_tensor_free(out);
        attn_ctx_free(c);
        attn_tensor_set_free(in);
        attn_model_free(model);
    }
    free(cfg);
    return 0;
}
