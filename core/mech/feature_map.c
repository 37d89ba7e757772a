/*
 * feature_map.c — φ for the linear attentions; see feature_map.h.
 * Formulas follow fast_transformers/feature_maps exactly (fourier_features.py,
 * base.py); only the source of randomness differs (a seeded stream).
 */
#include "mech/feature_map.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const attn_param attn__fmap_params[] = {
    {"type", ATTN_P_STRING, "elu", 0, 0, "elu|rff|smoothed_rff|favor|grf", "which feature map"},
    {"n_dims", ATTN_P_INT, "null", 1, 65536, NULL, "number of random features; null = E"},
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, "null = 1/sqrt(E) (grf: 1.0)"},
    {"orthogonal", ATTN_P_BOOL, "null", 0, 0, NULL, "orthogonal ω; null = the class default"},
    {"redraw", ATTN_P_INT, "1", 1, 1e9, NULL, "accepted; ω is fixed per model (drawn from seed)"},
    {"deterministic_eval", ATTN_P_BOOL, "false", 0, 0, NULL, "accepted; always deterministic here"},
    {"smoothing", ATTN_P_FLOAT, "1.0", 0, 0, NULL, "smoothed_rff constant feature"},
    {"stabilize", ATTN_P_BOOL, "false", 0, 0, NULL, "favor: subtract the max squared norm"},
    {"kernel_fn", ATTN_P_STRING, "relu", 0, 0, "relu|exp|softplus|abs|elu1", "grf kernel"},
    {"seed", ATTN_P_INT, "0", 0, 9.2e18, NULL, "seed of the random features"},
    {0},
};

/* orthogonal_random_matrix_: blocks of E columns, each the Q of a QR of a
 * Gaussian E×E matrix scaled by that matrix's row norms. */
static void orthogonal_block(attn_rng *r, int64_t E, float *w, int64_t cols, int64_t c0, int64_t m,
                             double *B) {
    for (int64_t i = 0; i < E * E; i++) B[i] = attn__rng_normal(r);
    for (int64_t j = 0; j < m; j++) {
        double nrm = 0;
        for (int64_t k = 0; k < E; k++) nrm += B[j * E + k] * B[j * E + k];
        /* Row norm j, stashed in ω's row 0 until the block is written. */
        w[c0 + j] = (float)sqrt(nrm);
    }
    /* Modified Gram–Schmidt on the columns of B (in place). */
    for (int64_t j = 0; j < E; j++) {
        for (int64_t p = 0; p < j; p++) {
            double dot = 0;
            for (int64_t k = 0; k < E; k++) dot += B[k * E + p] * B[k * E + j];
            for (int64_t k = 0; k < E; k++) B[k * E + j] -= dot * B[k * E + p];
        }
        double nrm = 0;
        for (int64_t k = 0; k < E; k++) nrm += B[k * E + j] * B[k * E + j];
        nrm = sqrt(nrm);
        for (int64_t k = 0; k < E; k++) B[k * E + j] = nrm > 0 ? B[k * E + j] / nrm : 0;
    }
    for (int64_t j = 0; j < m; j++) {
        float scale = w[c0 + j];
        for (int64_t k = 0; k < E; k++) w[k * cols + c0 + j] = (float)B[k * E + j] * scale;
    }
}

static attn_status draw_omega(attn_fmap *fm, bool orthogonal, uint64_t seed, attn_binder *b) {
    size_t n;
    if (!attn__mul((size_t)fm->E, (size_t)fm->cols, &n))
        return attn__err(b->err, ATTN_E_CONFIG, "feature_map: ω too large");
    int64_t shape[2] = {fm->E, fm->cols};
    if (attn__bind_has(b, "feature_map.omega")) return attn__bind(b, "feature_map.omega", 2, shape, &fm->omega);
    fm->omega = attn__model_alloc(b->m, n * sizeof(float), b->err);
    if (!fm->omega) return ATTN_E_NOMEM;
    attn_rng r;
    attn__rng_seed(&r, seed);
    if (!orthogonal) {
        for (size_t i = 0; i < n; i++) fm->omega[i] = attn__rng_normal(&r);
        return ATTN_OK;
    }
    double *B = attn__calloc((size_t)fm->E * (size_t)fm->E, sizeof *B, b->err);
    if (!B) return ATTN_E_NOMEM;
    /* Row 0 of ω doubles as scratch for the norms; it is overwritten after. */
    for (int64_t c0 = 0; c0 < fm->cols; c0 += fm->E) {
        int64_t m = fm->cols - c0 < fm->E ? fm->cols - c0 : fm->E;
        orthogonal_block(&r, fm->E, fm->omega, fm->cols, c0, m, B);
    }
    free(B);
    return ATTN_OK;
}

attn_status attn__fmap_init(attn_fmap *fm, const json_t *spec, int64_t E, attn_binder *b) {
    memset(fm, 0, sizeof *fm);
    fm->E = E;
    fm->F = E;
    fm->kind = FM_ELU;
    json_t *obj = NULL;
    attn_status st = ATTN_OK;
    if (spec && json_is_string(spec)) {
        obj = json_pack("{s:s}", "type", json_string_value(spec));
    } else if (spec && json_is_object(spec)) {
        obj = json_incref((json_t *)spec);
    } else if (spec && !json_is_null(spec)) {
        return attn__err(b->err, ATTN_E_CONFIG, "feature_map must be null, a name or an object");
    }
    if (!obj) return ATTN_OK; /* elu(x) + 1 */
    attn_cfg c = {.obj = obj, .params = attn__fmap_params, .mech = "feature_map", .err = b->err};
    const char *type, *kfn;
    int64_t n_dims = 0, seed = 0;
    bool nd_null, t_null, orth_null, orth = false, stab = false;
    double t = 0, smoothing = 1.0;
    if ((st = attn__cfg_check_keys(&c)) || (st = attn__cfg_string(&c, "type", &type)) ||
        (st = attn__cfg_int(&c, "n_dims", &n_dims, &nd_null)) ||
        (st = attn__cfg_float(&c, "softmax_temp", &t, &t_null)) ||
        (st = attn__cfg_float(&c, "smoothing", &smoothing, NULL)) ||
        (st = attn__cfg_bool(&c, "stabilize", &stab)) || (st = attn__cfg_string(&c, "kernel_fn", &kfn)) ||
        (st = attn__cfg_int(&c, "seed", &seed, NULL)))
        goto out;
    json_t *o = json_object_get(obj, "orthogonal");
    orth_null = !o || json_is_null(o);
    if (!orth_null && !json_is_boolean(o)) {
        st = attn__err(b->err, ATTN_E_CONFIG, "feature_map: 'orthogonal' must be true or false");
        goto out;
    }
    orth = !orth_null && json_is_true(o);
    int64_t nd = nd_null ? E : n_dims;
    fm->t = (float)(t_null || t == 0 ? 1.0 / sqrt((double)E) : t);
    if (!strcmp(type, "elu")) {
        fm->kind = FM_ELU;
        goto out;
    } else if (!strcmp(type, "rff")) {
        fm->kind = FM_RFF;
        fm->cols = nd / 2;
        fm->F = 2 * fm->cols;
        fm->nd = nd;
    } else if (!strcmp(type, "smoothed_rff")) {
        fm->kind = FM_SRFF;
        nd -= 1; /* the parent is built with n_dims - 1 */
        fm->cols = nd / 2;
        fm->F = 2 * fm->cols + 1;
        fm->nd = nd;
        fm->smoothing = (float)smoothing;
    } else if (!strcmp(type, "favor")) {
        fm->kind = FM_FAVOR;
        fm->cols = nd / 2;
        fm->F = 2 * fm->cols;
        fm->nd = nd;
        fm->stabilize = stab;
        if (orth_null) orth = true;
    } else { /* grf */
        fm->kind = FM_GRF;
        fm->cols = nd;
        fm->F = nd;
        fm->t = (float)(t_null ? 1.0 : t); /* GRF defaults softmax_temp to 1.0 */
        if (orth_null) orth = true;
        static const char *const names[] = {"relu", "exp", "softplus", "abs", "elu1"};
        for (int i = 0; i < 5; i++)
            if (!strcmp(kfn, names[i])) fm->kernel = (attn_fm_kernel)i;
    }
    if (fm->cols < 1) {
        st = attn__err(b->err, ATTN_E_CONFIG, "feature_map: n_dims=%lld gives no features", (long long)nd);
        goto out;
    }
    st = draw_omega(fm, orth, (uint64_t)seed, b);
out:
    json_decref(obj);
    return st;
}

float attn__fmap_sqnorm_max(const attn_fmap *fm, const float *x, size_t rows) {
    float mx = -INFINITY;
    for (size_t r = 0; r < rows; r++) {
        float s = 0;
        for (int64_t e = 0; e < fm->E; e++) {
            float v = x[r * (size_t)fm->E + (size_t)e];
            s += v * v;
        }
        s *= fm->t; /* ‖x·√t‖² */
        mx = s > mx ? s : mx;
    }
    return mx;
}

static float kern(attn_fm_kernel k, float u) {
    switch (k) {
    case FM_K_RELU: return u > 0 ? u : 0;
    case FM_K_EXP: return expf(u);
    case FM_K_SOFTPLUS: return u > 20.0f ? u : log1pf(expf(u));
    case FM_K_ABS: return fabsf(u);
    case FM_K_ELU1: return u > 0 ? u + 1 : expf(u);
    }
    return u;
}

/* Shapes: x (rows, E) F32 contiguous, E = fm->E; -> out (rows, F) F32
 * contiguous, F = fm->F, every element written; ω (E, cols) is the map's.
 * out must not overlap x (the random maps read all of x_r while writing
 * out_r).  No allocation; never fails. */
void attn__fmap_apply(const attn_fmap *fm, const float *x, size_t rows, float *out, float seq_max) {
    const size_t E = (size_t)fm->E, C = (size_t)fm->cols, F = (size_t)fm->F;
    if (fm->kind == FM_ELU) {
        memcpy(out, x, rows * E * sizeof *out);
        attn__elu1(out, rows * E);
        return;
    }
    const bool scale_x = !(fm->kind == FM_GRF && fm->t == 1.0f);
    const float st = sqrtf(fm->t);
    const float rff_scale = sqrtf(2.0f / (float)fm->nd);
    const float log_nd = 0.5f * logf((float)fm->nd);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * E;
        float *o = out + r * F, *u = o; /* u = (x·√t) ω in the first C slots */
        for (size_t c = 0; c < C; c++) u[c] = 0;
        float sq = 0;
        for (size_t e = 0; e < E; e++) {
            float xe = scale_x ? xr[e] * st : xr[e];
            sq += xe * xe;
            const float *w = fm->omega + e * C;
            for (size_t c = 0; c < C; c++) u[c] += xe * w[c];
        }
        switch (fm->kind) {
        case FM_RFF:
        case FM_SRFF:
            for (size_t c = 0; c < C; c++) {
                float uc = u[c];
                o[c] = cosf(uc) * rff_scale;
                o[C + c] = sinf(uc) * rff_scale;
            }
            if (fm->kind == FM_SRFF) o[2 * C] = fm->smoothing;
            break;
        case FM_FAVOR: {
            float off = sq * 0.5f + log_nd + (fm->stabilize ? seq_max : 0.0f);
            for (size_t c = 0; c < C; c++) {
                float uc = u[c];
                o[c] = expf(uc - off);
                o[C + c] = expf(-uc - off);
            }
            break;
        }
        case FM_GRF:
            for (size_t c = 0; c < C; c++) o[c] = kern(fm->kernel, u[c]);
            break;
        case FM_ELU: break;
        }
    }
}
