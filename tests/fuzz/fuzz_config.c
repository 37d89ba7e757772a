/* fuzz_config.c — libFuzzer target: every mechanism's config parser.
 * Input: one byte picks the type, the rest is the config JSON text.  A
 * model that builds is run once on tiny random-shaped inputs so that the
 * config's effect on the forward (sizes, modes) is exercised too. */
#include "attn.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    size_t n = attn_mech_count();
    const attn_mech_info *m = attn_mech_at(data[0] % n);
    char *cfg = malloc(size);
    memcpy(cfg, data + 1, size - 1);
    cfg[size - 1] = 0;
    attn_model *model = NULL;
    attn_error e;
    if (attn_model_new(m->name, cfg, NULL, &model, &e) == ATTN_OK) {
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
