/*
 * linear_image.c — ImageLinearAttention of linear-attention-transformer
 * (lucidrains, images.py), the "Linear Attention" seed's LinearImageAttention:
 * convolutional q/k/v projections, per head softmax over positions for the
 * keys (and over key features for the queries when norm_queries), a
 * (key_dim x value_dim) context, and a convolutional output projection.
 * An optional context sequence adds keys and values (not scaled, as in the
 * reference).
 */
#include "attn_internal.h"
#include "kernels/conv2d.h"
#include "kernels/kernels.h"
#include "mech/strided_softmax.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const attn_param params[] = {
    {"chan", ATTN_P_INT, NULL, 1, 1 << 16, NULL, "input channels"},
    {"chan_out", ATTN_P_INT, "null", 1, 1 << 16, NULL, "output channels (null: chan)"},
    {"kernel_size", ATTN_P_INT, "1", 1, 64, NULL, "kernel of the q/k/v/out convolutions"},
    {"padding", ATTN_P_INT, "0", 0, 64, NULL, "zero padding of every convolution"},
    {"stride", ATTN_P_INT, "1", 1, 64, NULL, "stride of the q/k/v convolutions"},
    {"key_dim", ATTN_P_INT, "64", 1, 1 << 16, NULL, "key (and query) features per head"},
    {"value_dim", ATTN_P_INT, "64", 1, 1 << 16, NULL, "value features per head"},
    {"heads", ATTN_P_INT, "8", 1, 1 << 12, NULL, "number of heads"},
    {"norm_queries", ATTN_P_BOOL, "true", 0, 0, NULL, "softmax the queries over key features"},
    {0},
};

typedef struct li_state {
    int64_t C, Co, K, P, St, kd, vd, H;
    bool norm_q;
    float scale; /* key_dim ** -0.25 on q and k (not on the context keys) */
    float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} li_state;

static attn_status li_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    li_state *s = state;
    attn_status st;
    bool co_null;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "chan", &s->C, NULL)) ||
        (st = attn__cfg_int(cfg, "chan_out", &s->Co, &co_null)) ||
        (st = attn__cfg_int(cfg, "kernel_size", &s->K, NULL)) ||
        (st = attn__cfg_int(cfg, "padding", &s->P, NULL)) ||
        (st = attn__cfg_int(cfg, "stride", &s->St, NULL)) ||
        (st = attn__cfg_int(cfg, "key_dim", &s->kd, NULL)) ||
        (st = attn__cfg_int(cfg, "value_dim", &s->vd, NULL)) ||
        (st = attn__cfg_int(cfg, "heads", &s->H, NULL)) ||
        (st = attn__cfg_bool(cfg, "norm_queries", &s->norm_q)))
        return st;
    if (co_null) s->Co = s->C;
    s->scale = (float)pow((double)s->kd, -0.25);

    const int64_t K = s->K, QC = s->kd * s->H, VC = s->vd * s->H;
    if ((st = attn__bind(b, "to_q.weight", 4, (int64_t[]){QC, s->C, K, K}, &s->wq)) ||
        (st = attn__bind(b, "to_q.bias", 1, (int64_t[]){QC}, &s->bq)) ||
        (st = attn__bind(b, "to_k.weight", 4, (int64_t[]){QC, s->C, K, K}, &s->wk)) ||
        (st = attn__bind(b, "to_k.bias", 1, (int64_t[]){QC}, &s->bk)) ||
        (st = attn__bind(b, "to_v.weight", 4, (int64_t[]){VC, s->C, K, K}, &s->wv)) ||
        (st = attn__bind(b, "to_v.bias", 1, (int64_t[]){VC}, &s->bv)) ||
        (st = attn__bind(b, "to_out.weight", 4, (int64_t[]){s->Co, VC, K, K}, &s->wo)) ||
        (st = attn__bind(b, "to_out.bias", 1, (int64_t[]){s->Co}, &s->bo)))
        return st;

    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, "B,C,H,W", 4,
                                    (int64_t[]){-1, s->C, -1, -1})) ||
        (st = attn__model_add_input(m, "context", ATTN_F32, false, "B,C,L", 3,
                                    (int64_t[]){-1, s->C, -1})))
        return st;
    attn__model_set_output(m, "B,chan_out,H',W'", 4, (int64_t[]){-1, s->Co, -1, -1});
    return ATTN_OK;
}

/* ---- forward ----------------------------------------------------------------
 * Shapes per image b: x (C, H, W); q, k (H*kd, Hq, Wq), v (H*vd, Hq, Wq),
 * read as (heads, kd|vd, n) with n = H*W: the reference reshapes them so,
 * which is only valid when Hq*Wq == H*W.  With context (C, L), seen as a
 * (C, 1, L) image, ck and cv (heads, kd, m) are appended along n.
 * Per head: ks = softmax_n(k), qs = softmax_kd(q) (norm_queries),
 *   ctx (kd, vd) = ks vᵀ, o (vd, n) = ctxᵀ qs; o (heads*vd, H, W) then goes
 *   through to_out (stride 1) into the output (Co, Ho, Wo). */

typedef struct li_job {
    const li_state *s;
    size_t n, m, L;              /* n = H*W, m = context positions after the conv */
    attn_conv2d xq, xv, cq, cv, o; /* x -> q/k and v, context -> k and v, to_out */
    const float *x, *c;          /* c may be NULL */
    float *out;
    float *scratch;
    size_t scratch_len, col_len;
} li_job;

static void conv(const attn_conv2d *c, const float *in, const float *w, const float *bias,
                 float *col, float *out) {
    attn__conv2d(c, in, w, bias, out, false, col, 0, c->h_out);
}

static attn_status li_image(void *arg, size_t b, int worker) {
    const li_job *j = arg;
    const li_state *s = j->s;
    const size_t kd = (size_t)s->kd, vd = (size_t)s->vd, nh = (size_t)s->H;
    const size_t n = j->n, m = j->m, T = n + m, C = (size_t)s->C;

    float *col = j->scratch + (size_t)worker * j->scratch_len;
    float *q = col + j->col_len;   /* (heads*kd, n) */
    float *k = q + nh * kd * n;    /* (heads*kd, T) */
    float *v = k + nh * kd * T;    /* (heads*vd, T) */
    float *tmp = v + nh * vd * T;  /* (heads*max(kd,vd), max(n,m)) conv output */
    const size_t tmp_len = nh * (kd > vd ? kd : vd) * (n > m ? n : m);
    float *ctx = tmp + tmp_len;    /* (kd, vd) */
    float *o = ctx + kd * vd;      /* (heads*vd, n) */
    float *cs = o + nh * vd * n;   /* column softmax: n doubles (8-aligned) + n floats */
    double *csum = (double *)(void *)(cs + ((uintptr_t)cs % sizeof(double) ? 1 : 0));
    float *cmax = (float *)(void *)(csum + n);

    const float *x = j->x + b * C * j->xq.h_in * j->xq.w_in;
    conv(&j->xq, x, s->wq, s->bq, col, q);
    for (size_t i = 0; i < nh * kd * n; i++) q[i] *= s->scale;
    conv(&j->xq, x, s->wk, s->bk, col, tmp);
    for (size_t r = 0; r < nh * kd; r++)
        for (size_t i = 0; i < n; i++) k[r * T + i] = tmp[r * n + i] * s->scale;
    conv(&j->xv, x, s->wv, s->bv, col, tmp);
    for (size_t r = 0; r < nh * vd; r++) memcpy(v + r * T, tmp + r * n, n * sizeof *v);
    if (j->c) {
        const float *c = j->c + b * C * j->L;
        conv(&j->cq, c, s->wk, s->bk, col, tmp);
        for (size_t r = 0; r < nh * kd; r++) memcpy(k + r * T + n, tmp + r * m, m * sizeof *k);
        conv(&j->cv, c, s->wv, s->bv, col, tmp);
        for (size_t r = 0; r < nh * vd; r++) memcpy(v + r * T + n, tmp + r * m, m * sizeof *v);
    }

    for (size_t h = 0; h < nh; h++) {
        float *qh = q + h * kd * n, *kh = k + h * kd * T, *vh = v + h * vd * T;
        for (size_t d = 0; d < kd; d++) attn__softmax_row_d(kh + d * T, T);
        if (s->norm_q) /* over the kd features of every position (dim -2) */
            attn__softmax_cols(qh, kd, n, cmax, csum);
        attn__gemm(0, 1, kd, vd, T, 1.0f, kh, T, vh, T, 0.0f, ctx, vd);
        attn__gemm(1, 0, vd, n, kd, 1.0f, ctx, vd, qh, n, 0.0f, o + h * vd * n, n);
    }
    conv(&j->o, o, s->wo, s->bo, col, j->out + b * j->o.c_out * j->o.h_out * j->o.w_out);
    return ATTN_OK;
}

/* A convolution of the module: c_in -> c_out over an (h, w) image. */
static attn_status conv_setup(attn_conv2d *c, const li_state *s, size_t c_in, size_t c_out,
                              size_t h, size_t w, size_t stride, const char *what,
                              attn_error *err) {
    const char *why = NULL;
    *c = (attn_conv2d){.c_in = c_in, .c_out = c_out, .h_in = h, .w_in = w,
                       .k_h = (size_t)s->K, .k_w = (size_t)s->K, .stride_h = stride,
                       .stride_w = stride, .pad_h = (size_t)s->P, .pad_w = (size_t)s->P,
                       .dil_h = 1, .dil_w = 1};
    if (!attn__conv2d_prepare(c, &why))
        return attn__err(err, ATTN_E_SHAPE, "linear_image: %s (%zux%zu, kernel_size %lld, "
                         "padding %lld): %s", what, h, w, (long long)s->K, (long long)s->P, why);
    return ATTN_OK;
}

static attn_status li_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                              const attn_tensor_set *in, attn_tensor **out, attn_error *err) {
    const li_state *s = state;
    const attn_tensor *x, *c = NULL;
    attn_status st;
    float *scratch = NULL;
    attn_tensor *y = NULL;
    char sh[96];
    li_job j = {.s = s};

    if ((st = attn__input(m, in, "x", &x, err))) return st;
    const size_t B = (size_t)x->shape[0], H = (size_t)x->shape[2], W = (size_t)x->shape[3];
    const size_t C = (size_t)s->C, kd = (size_t)s->kd, vd = (size_t)s->vd, nh = (size_t)s->H;
    const size_t St = (size_t)s->St;
    if ((st = conv_setup(&j.xq, s, C, nh * kd, H, W, St, "x", err)) ||
        (st = conv_setup(&j.xv, s, C, nh * vd, H, W, St, "x", err)) ||
        (st = conv_setup(&j.o, s, nh * vd, (size_t)s->Co, H, W, 1, "to_out input", err)))
        return st;
    size_t n, nq;
    if (!attn__mul(H, W, &n) || !attn__mul(j.xq.h_out, j.xq.w_out, &nq))
        return attn__err(err, ATTN_E_OVERFLOW, "x %s: too many positions",
                         attn_shape_str(x->rank, x->shape, sh, sizeof sh));
    if (nq != n)
        return attn__err(err, ATTN_E_SHAPE,
                         "x %s: the q/k/v convolutions give %zux%zu positions but the reference "
                         "reshapes them to H*W = %zu (choose padding = (kernel_size - 1) / 2, "
                         "stride 1)",
                         attn_shape_str(x->rank, x->shape, sh, sizeof sh), j.xq.h_out, j.xq.w_out, n);
    j.n = n;
    if (attn_tensor_set_get(in, "context")) {
        if ((st = attn__input(m, in, "context", &c, err))) return st;
        if ((size_t)c->shape[0] != B)
            return attn__err(err, ATTN_E_SHAPE, "context: expected (B,C,L) with B = %zu, got %s", B,
                             attn_shape_str(c->rank, c->shape, sh, sizeof sh));
        if (s->kd != s->vd)
            return attn__err(err, ATTN_E_UNSUPPORTED,
                             "linear_image: context needs key_dim == value_dim (the reference "
                             "reshapes the context values with key_dim); got %lld and %lld",
                             (long long)s->kd, (long long)s->vd);
        /* The reference views the context as a (C, 1, L) image. */
        j.L = (size_t)c->shape[2];
        if ((st = conv_setup(&j.cq, s, C, nh * kd, 1, j.L, St, "context", err)) ||
            (st = conv_setup(&j.cv, s, C, nh * vd, 1, j.L, St, "context", err)))
            return st;
        j.m = j.cq.h_out * j.cq.w_out;
    }
    if ((st = attn_tensor_new(ATTN_F32, 4,
                              (int64_t[]){(int64_t)B, s->Co, (int64_t)j.o.h_out, (int64_t)j.o.w_out},
                              &y, err)))
        return st;

    /* Per worker: im2col (the largest of the convolutions) + q, k, v, conv
     * output, ctx and o.  All products overflow-checked. */
    const size_t T = n + j.m, mx = kd > vd ? kd : vd, nm = n > j.m ? n : j.m;
    size_t w1 = 0, w2 = 0, w3 = 0, w4 = 0, a, t, pw, all;
    bool ok = attn__conv2d_workspace(&j.xq, j.xq.h_out, &w1) &&
              attn__conv2d_workspace(&j.o, j.o.h_out, &w2) &&
              (!c || (attn__conv2d_workspace(&j.cq, j.cq.h_out, &w3) &&
                      attn__conv2d_workspace(&j.cv, j.cv.h_out, &w4)));
    j.col_len = w1 > w2 ? w1 : w2;
    j.col_len = j.col_len > w3 ? j.col_len : w3;
    j.col_len = j.col_len > w4 ? j.col_len : w4;
    ok = ok && attn__mul(nh * kd, n, &pw) && attn__mul(nh * (kd + vd), T, &a) &&
         attn__add(pw, a, &pw) && attn__mul(nh * mx, nm, &t) && attn__add(pw, t, &pw) &&
         attn__add(pw, kd * vd, &pw) && attn__mul(nh * vd, n, &t) && attn__add(pw, t, &pw) &&
         attn__add(pw, j.col_len, &pw) && attn__mul(n, 3, &t) && attn__add(pw, t, &pw) && attn__add(pw, 1, &pw);
    const int workers = attn__workers(ctx, B);
    ok = ok && attn__mul(pw, (size_t)workers, &all);
    if (!ok) {
        st = attn__err(err, ATTN_E_OVERFLOW, "linear_image: scratch size overflows for x %s",
                       attn_shape_str(x->rank, x->shape, sh, sizeof sh));
        goto fail;
    }
    if (!(scratch = attn__calloc(all, sizeof(float), err))) {
        st = err ? err->code : ATTN_E_NOMEM;
        goto fail;
    }
    j.x = x->data;
    j.c = c ? c->data : NULL;
    j.out = y->data;
    j.scratch = scratch;
    j.scratch_len = pw;
    if ((st = attn__parallel_for(ctx, B, li_image, &j))) {
        attn__err(err, st, "linear_image: forward %s", st == ATTN_E_CANCELLED ? "cancelled" : "failed");
        goto fail;
    }
    free(scratch);
    *out = y;
    return ATTN_OK;
fail:
    free(scratch);
    attn_tensor_free(y);
    return st;
}

const attn_mech attn_mech_linear_image = {
    .info = {
        .name = "linear_image",
        .aliases = (const char *const[]){"linear-image-attention", "image_linear_attention", NULL},
        .reference = "ImageLinearAttention in linear_attention_transformer.images (lucidrains), "
                     "the Linear Attention seed's LinearImageAttention",
        .summary = "linear attention over the pixels of an image with convolutional q/k/v/out "
                   "projections and an optional context sequence",
        .params = params,
        .has_weights = 1,
        .is_inner = 0,
    },
    .state_size = sizeof(li_state),
    .init = li_init,
    .forward = li_forward,
};
