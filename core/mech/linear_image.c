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
#include "workspace.h"
#include "kernels/conv2d.h"
#include "kernels/kernels.h"

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
 * (C, 1, L) image, ck and cv (heads, kd, m) are appended along n (T = n + m).
 * Per head: ks = softmax_T(k), qs = softmax_kd(q) (norm_queries),
 *   ctx (kd, vd) = ks vᵀ, o (vd, n) = ctxᵀ qs; o (heads*vd, H, W) then goes
 *   through to_out (stride 1) into the output (Co, Ho, Wo).
 *
 * to_out is linear in o and o is linear in qs, so to_out(o) is computed as
 * one convolution of qs (heads*kd, H, W) with the folded weights
 *   M[co, h*kd + d, ky, kx] = sum_e ctx_h[d, e] to_out.weight[co, h*vd + e, ky, kx]
 * (zero padding of o is zero padding of qs: o has no bias).  That skips o and
 * its (heads*vd x heads*kd x n) product.
 *
 * Work, in tasks whose arithmetic depends only on the shapes (never on the
 * thread count):
 *   1. one task per (image, head): k of the head and its softmax, ctx, and
 *      the head's slice of M.  ctx comes from v, or, with 1x1 convolutions
 *      (when it is cheaper), from x: ctx = (ks xᵀ) Wvᵀ + (ks 1) bvᵀ, no v;
 *   2. 1x1 convolutions: one task per (image, block of positions): q of every
 *      head for the block, its softmax, and the block of the output, M·qs;
 *      other convolutions, image by image: q for a block of rows into a
 *      per-image buffer, then to_out over blocks of output rows. */

/* im2col workspace per convolution call: rows are processed in blocks of at
 * most this many floats of columns (at least one row). */
#define LI_CONV_WS ((size_t)1 << 17)
/* 1x1 convolutions: positions per phase-2 task, for this many q floats. */
#define LI_Q_BLOCK ((size_t)1 << 16)

typedef struct li_job {
    const li_state *s;
    size_t n, m, L, T, Wq;       /* T = n + m; Wq: columns of the q/k/v convolutions */
    bool pointwise;              /* every convolution is 1x1, stride 1, unpadded */
    bool fold_v;                 /* pointwise, and ctx is cheaper through x than through v */
    attn_conv2d xk, xv, ck, cv;  /* one head's k / v convolutions of x and of the context */
    attn_conv2d xq;              /* every head's q convolution of x */
    attn_conv2d o;               /* to_out, folded: qs (heads*kd, H, W) -> (Co, Ho, Wo) */
    size_t rb_x, rb_c, rb_q, rb_o; /* rows per im2col block of xk/xv, ck/cv, xq, o */
    size_t nb, nblk;             /* pointwise: positions per task, tasks per image */
    size_t col1, ctmp;           /* phase 1 per worker: im2col floats, context conv floats */
    size_t img;                  /* general phase 2/3: the image being worked on */
    const float *x, *c;          /* c may be NULL */
    float *out;
    float *M;                    /* (B, Co, heads*kd, K, K) folded to_out weights */
    float *Q;                    /* general: one image's qs (heads*kd, n) */
    float *scratch;
    size_t ws;                   /* floats per worker, a multiple of 16 */
} li_job;

/* Every output row of c, im2col'ed at most rb rows at a time into col. */
static attn_status conv_rows(const attn_conv2d *c, const float *in, const float *w, const float *bias,
                             float *out, float *col, size_t rb) {
    for (size_t r = 0; r < c->h_out; r += rb)
        ATTN_TRY(attn__conv2d(c, in, w, bias, out, false, col, r, r + rb < c->h_out ? r + rb : c->h_out));
    return ATTN_OK;
}

/* attn__softmax_row_d of x, returning the sum of the result, accumulated
 * in double (ks 1, for fold_v). */
static float row_softmax(float *x, size_t n) {
    attn__softmax_row_d(x, n);
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (size_t i = 0; i < n; i++) total += x[i];
    return (float)total;
}

/* y[r] = (y[r] + bias[r]) * scale over rows of w floats, row stride ld. */
static void bias_scale(float *y, size_t rows, size_t w, size_t ld, const float *bias, bool scale,
                       float sc) {
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        const float bv = bias[r];
        if (scale) {
#pragma omp simd
            for (size_t i = 0; i < w; i++) yr[i] = (yr[i] + bv) * sc;
        } else {
#pragma omp simd
            for (size_t i = 0; i < w; i++) yr[i] += bv;
        }
    }
}

/* One head's projection y (r, T): the x part (r, n), times the scale when
 * `scale`, then the (unscaled) context part (r, m).  w, bias: the head's rows
 * of the convolution weight and bias. */
static attn_status project(const li_job *j, const attn_conv2d *cx, const attn_conv2d *cc, const float *xb,
                           const float *cb, const float *w, const float *bias, size_t r, bool scale,
                           float *y, float *col, float *ctmp) {
    const li_state *s = j->s;
    const size_t n = j->n, m = j->m, T = j->T, C = (size_t)s->C;
    if (j->pointwise) {
        ATTN_TRY(attn__gemm(0, 0, r, n, C, 1.0f, w, C, xb, n, 0.0f, y, T));
        bias_scale(y, r, n, T, bias, scale, s->scale);
        if (cb) {
            ATTN_TRY(attn__gemm(0, 0, r, m, C, 1.0f, w, C, cb, j->L, 0.0f, y + n, T));
            bias_scale(y + n, r, m, T, bias, false, 1.0f);
        }
        return ATTN_OK;
    }
    ATTN_TRY(conv_rows(cx, xb, w, bias, y, col, j->rb_x)); /* (r, n) */
    if (scale)
        for (size_t i = 0; i < r * n; i++) y[i] *= s->scale;
    if (cb) {
        for (size_t d = r; d-- > 1;) memmove(y + d * T, y + d * n, n * sizeof *y);
        ATTN_TRY(conv_rows(cc, cb, w, bias, ctmp, col, j->rb_c)); /* (r, m) */
        for (size_t d = 0; d < r; d++) memcpy(y + d * T + n, ctmp + d * m, m * sizeof *y);
    }
    return ATTN_OK;
}

/* Phase 1, task (image b, head h). */
static attn_status li_head(void *arg, size_t t, int worker) {
    const li_job *j = arg;
    const li_state *s = j->s;
    const size_t kd = (size_t)s->kd, vd = (size_t)s->vd, nh = (size_t)s->H, C = (size_t)s->C;
    const size_t KK = (size_t)(s->K * s->K), Co = (size_t)s->Co, QC = nh * kd, T = j->T;
    const size_t b = t / nh, h = t % nh;
    const float *xb = j->x + b * C * j->xk.h_in * j->xk.w_in;
    const float *cb = j->c ? j->c + b * C * j->L : NULL;
    float *kh = j->scratch + (size_t)worker * j->ws; /* (kd, T) */
    float *ctx;                                        /* (kd, vd) */

    if (j->fold_v) {
        /* 1x1 convolutions: v = Wv [x | c] + bv, so
         *   ctx = ks vᵀ = (ks [x | c]ᵀ) Wvᵀ + (ks 1) bvᵀ,
         * with ks's row sums taken as computed (not as 1).  No v at all. */
        float *g = kh + kd * T;   /* (kd, C) */
        float *rs = g + kd * C;   /* kd row sums */
        ctx = rs + kd;
        ATTN_TRY(project(j, NULL, NULL, xb, cb, s->wk + h * kd * C, s->bk + h * kd, kd, true, kh, NULL, NULL));
        for (size_t d = 0; d < kd; d++) rs[d] = row_softmax(kh + d * T, T);
        ATTN_TRY(attn__gemm(0, 1, kd, C, j->n, 1.0f, kh, T, xb, j->n, 0.0f, g, C));
        if (cb) ATTN_TRY(attn__gemm(0, 1, kd, C, j->m, 1.0f, kh + j->n, T, cb, j->L, 1.0f, g, C));
        ATTN_TRY(attn__gemm(0, 1, kd, vd, C, 1.0f, g, C, s->wv + h * vd * C, C, 0.0f, ctx, vd));
        const float *bv = s->bv + h * vd;
        for (size_t d = 0; d < kd; d++)
            for (size_t e = 0; e < vd; e++) ctx[d * vd + e] += rs[d] * bv[e];
    } else {
        float *vh = kh + kd * T;   /* (vd, T) */
        ctx = vh + vd * T;
        float *col = ctx + kd * vd; /* general: im2col */
        float *ctmp = col + j->col1; /* general, context: (max(kd,vd), m) */
        ATTN_TRY(project(j, &j->xk, &j->ck, xb, cb, s->wk + h * kd * C * KK, s->bk + h * kd, kd, true, kh,
                         col, ctmp));
        ATTN_TRY(project(j, &j->xv, &j->cv, xb, cb, s->wv + h * vd * C * KK, s->bv + h * vd, vd, false, vh,
                         col, ctmp));
        for (size_t d = 0; d < kd; d++) row_softmax(kh + d * T, T);
        ATTN_TRY(attn__gemm(0, 1, kd, vd, T, 1.0f, kh, T, vh, T, 0.0f, ctx, vd));
    }

    /* M[co, h*kd + d, kk] = sum_e ctx[d, e] Wo[co, h*vd + e, kk] */
    float *Mb = j->M + b * Co * QC * KK;
    if (KK == 1) {
        ATTN_TRY(attn__gemm(0, 1, Co, kd, vd, 1.0f, s->wo + h * vd, nh * vd, ctx, vd, 0.0f, Mb + h * kd, QC));
    } else {
        for (size_t co = 0; co < Co; co++)
            ATTN_TRY(attn__gemm(0, 0, kd, KK, vd, 1.0f, ctx, vd, s->wo + (co * nh * vd + h * vd) * KK, KK,
                                0.0f, Mb + (co * QC + h * kd) * KK, KK));
    }
    return ATTN_OK;
}

/* Phase 2 with 1x1 convolutions, task (image b, block of positions). */
static attn_status li_block(void *arg, size_t t, int worker) {
    const li_job *j = arg;
    const li_state *s = j->s;
    const size_t kd = (size_t)s->kd, nh = (size_t)s->H, C = (size_t)s->C, Co = (size_t)s->Co;
    const size_t QC = nh * kd, n = j->n, nb = j->nb;
    const size_t b = t / j->nblk, p0 = (t % j->nblk) * nb, w = n - p0 < nb ? n - p0 : nb;

    float *base = j->scratch + (size_t)worker * j->ws;
    double *sum = (double *)(void *)base;  /* nb doubles (the region is 64-byte aligned) */
    float *mx = base + 2 * nb;             /* nb */
    float *qb = mx + nb;                   /* (QC, w) */
    const float *xb = j->x + b * C * n;

    ATTN_TRY(attn__gemm(0, 0, QC, w, C, 1.0f, s->wq, C, xb + p0, n, 0.0f, qb, w));
    bias_scale(qb, QC, w, w, s->bq, true, s->scale);
    if (s->norm_q)
        for (size_t h = 0; h < nh; h++) attn__softmax_cols(qb + h * kd * w, kd, w, w, 1.0f, mx, sum);
    float *ob = j->out + b * Co * n + p0;
    ATTN_TRY(attn__gemm(0, 0, Co, w, QC, 1.0f, j->M + b * Co * QC, QC, qb, w, 0.0f, ob, n));
    bias_scale(ob, Co, w, n, s->bo, false, 1.0f);
    return ATTN_OK;
}

/* General phase 2, image j->img: q for the q-conv rows of block t, scaled and
 * softmaxed, into j->Q. */
static attn_status li_qrows(void *arg, size_t t, int worker) {
    const li_job *j = arg;
    const li_state *s = j->s;
    const size_t kd = (size_t)s->kd, nh = (size_t)s->H, C = (size_t)s->C, QC = nh * kd, n = j->n;
    const size_t r0 = t * j->rb_q, r1 = r0 + j->rb_q < j->xq.h_out ? r0 + j->rb_q : j->xq.h_out;
    const size_t p0 = r0 * j->Wq, w = (r1 - r0) * j->Wq, wmax = j->rb_q * j->Wq;

    float *base = j->scratch + (size_t)worker * j->ws;
    double *sum = (double *)(void *)base; /* wmax doubles */
    float *mx = base + 2 * wmax;          /* wmax */
    float *col = mx + wmax;
    const float *xb = j->x + j->img * C * j->xq.h_in * j->xq.w_in;

    ATTN_TRY(attn__conv2d(&j->xq, xb, s->wq, s->bq, j->Q, false, col, r0, r1));
    for (size_t ch = 0; ch < QC; ch++) {
        float *qr = j->Q + ch * n + p0;
#pragma omp simd
        for (size_t i = 0; i < w; i++) qr[i] *= s->scale;
    }
    if (s->norm_q)
        for (size_t h = 0; h < nh; h++) attn__softmax_cols(j->Q + h * kd * n + p0, kd, w, n, 1.0f, mx, sum);
    return ATTN_OK;
}

/* General phase 3, image j->img: output rows of block t, to_out folded over Q. */
static attn_status li_orows(void *arg, size_t t, int worker) {
    const li_job *j = arg;
    const li_state *s = j->s;
    const size_t QC = (size_t)(s->H * s->kd), KK = (size_t)(s->K * s->K), Co = (size_t)s->Co;
    const size_t r0 = t * j->rb_o, r1 = r0 + j->rb_o < j->o.h_out ? r0 + j->rb_o : j->o.h_out;
    float *col = j->scratch + (size_t)worker * j->ws;
    return attn__conv2d(&j->o, j->Q, j->M + j->img * Co * QC * KK, s->bo,
                        j->out + j->img * Co * j->o.h_out * j->o.w_out, false, col, r0, r1);
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

/* Rows per im2col block of c (workspace at most LI_CONV_WS floats, at least
 * one row) and that block's workspace; false on overflow. */
static bool conv_block(const attn_conv2d *c, size_t *rows, size_t *ws) {
    size_t per_row;
    if (!attn__conv2d_workspace(c, 1, &per_row)) return false;
    size_t rb = per_row ? LI_CONV_WS / per_row : c->h_out;
    if (rb < 1) rb = 1;
    if (rb > c->h_out) rb = c->h_out;
    *rows = rb;
    return attn__conv2d_workspace(c, rb, ws);
}

static size_t max2(size_t a, size_t b) { return a > b ? a : b; }

/* The inputs, the job and the workspace of a forward on `threads`:
 * per-worker scratch, then M (B, Co, QC, KK) and, general, Q (QC, n). */
typedef struct li_plan {
    const attn_tensor *x, *c;
    size_t scratch, M, Q, bytes;
} li_plan;

static attn_status plan_make(const attn_model *m, const li_state *s, const attn_tensor_set *in,
                             int threads, li_job *jp, li_plan *pl, attn_error *err) {
    const attn_tensor *x, *c = NULL;
    attn_status st;
    char sh[96];
    li_job j = {.s = s};
    *pl = (li_plan){0};
    if ((st = attn__input(m, in, "x", &x, err))) return st;
    const size_t B = (size_t)x->shape[0], H = (size_t)x->shape[2], W = (size_t)x->shape[3];
    const size_t C = (size_t)s->C, kd = (size_t)s->kd, vd = (size_t)s->vd, nh = (size_t)s->H;
    const size_t St = (size_t)s->St, KK = (size_t)(s->K * s->K), Co = (size_t)s->Co;
    const size_t QC = nh * kd; /* <= 2^28 by the param bounds */
    if ((st = conv_setup(&j.xq, s, C, QC, H, W, St, "x", err)) ||
        (st = conv_setup(&j.xk, s, C, kd, H, W, St, "x", err)) ||
        (st = conv_setup(&j.xv, s, C, vd, H, W, St, "x", err)) ||
        (st = conv_setup(&j.o, s, QC, Co, H, W, 1, "to_out input", err)))
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
    j.Wq = j.xq.w_out;
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
        if ((st = conv_setup(&j.ck, s, C, kd, 1, j.L, St, "context", err)) ||
            (st = conv_setup(&j.cv, s, C, vd, 1, j.L, St, "context", err)))
            return st;
        j.m = j.ck.h_out * j.ck.w_out;
    }
    j.pointwise = s->K == 1 && s->P == 0 && s->St == 1;

    /* Sizes, all overflow-checked.  Per worker, the largest of
     *   phase 1: k (kd, T), v (vd, T), ctx (kd, vd), im2col, context conv (max(kd,vd), m),
     *            or, fold_v, k, g, row sums and ctx;
     *   pointwise phase 2: nb doubles + nb floats + q (QC, nb);
     *   general phase 2: wmax doubles + wmax floats + im2col (wmax = q-conv block positions);
     *   general phase 3: im2col.
     * Shared: M (B, Co, QC, KK) and, general, Q (QC, n). */
    size_t T = 0, p1 = 0, t1 = 0, ws = 0, m_len = 0, q_len = 0, ntask = 0, w1 = 0, w2 = 0;
    bool ok = attn__add(n, j.m, &T) && attn__mul(kd + vd, T, &p1) && attn__add(p1, kd * vd, &p1) &&
              attn__mul(Co, QC, &m_len) && attn__mul(m_len, KK, &m_len) &&
              attn__mul(m_len, B, &m_len) && attn__mul(B, nh, &ntask);
    j.T = T;
    /* Through x: kd*C*T multiply-adds per head instead of vd*C*T + kd*vd*T.
     * (Each factor is at most 2^17: no overflow.) */
    j.fold_v = j.pointwise && kd * C <= vd * (C + kd);
    if (ok && j.fold_v) /* k (kd, T), g (kd, C), row sums (kd), ctx (kd, vd) */
        ok = attn__add(T, C + vd + 1, &p1) && attn__mul(kd, p1, &p1);
    if (ok && j.pointwise) {
        size_t nb = LI_Q_BLOCK / QC;
        nb = nb < 16 ? 16 : nb / 16 * 16;
        if (nb > n) nb = n;
        j.nb = nb ? nb : 1;
        j.nblk = (n + j.nb - 1) / j.nb;
        ok = attn__mul(QC + 3, j.nb, &ws) && attn__mul(B, j.nblk, &t1);
        ntask = max2(ntask, t1);
    } else if (ok) {
        ok = conv_block(&j.xk, &j.rb_x, &w1) && conv_block(&j.xv, &j.rb_x, &w2);
        j.col1 = max2(w1, w2);
        if (ok && c) {
            ok = conv_block(&j.ck, &j.rb_c, &w1) && conv_block(&j.cv, &j.rb_c, &w2) &&
                 attn__mul(max2(kd, vd), j.m, &j.ctmp);
            j.col1 = max2(j.col1, max2(w1, w2));
        }
        ok = ok && attn__add(p1, j.col1, &p1) && attn__add(p1, j.ctmp, &p1);
        /* phases 2 and 3 */
        size_t wmax;
        ok = ok && conv_block(&j.xq, &j.rb_q, &w1) && attn__mul(j.rb_q, j.Wq, &wmax) &&
             attn__mul(wmax, 3, &ws) && attn__add(ws, w1, &ws) && conv_block(&j.o, &j.rb_o, &w2) &&
             attn__mul(QC, n, &q_len);
        ws = max2(ws, w2);
        t1 = max2((j.xq.h_out + j.rb_q - 1) / j.rb_q, (j.o.h_out + j.rb_o - 1) / j.rb_o);
        ntask = max2(ntask, t1);
    }
    ws = max2(ws, p1);
    ws = max2(ws, p1);
    ok = ok && attn__add(ws, 15, &ws);
    ws = ws / 16 * 16; /* keeps every worker's region 64-byte aligned */
    j.ws = ws;
    attn_ws_layout y = {.overflow = !ok};
    pl->scratch = attn__ws_region(&y, (size_t)attn__workers_of(threads, ntask), ws * sizeof(float));
    pl->M = attn__ws_region(&y, m_len, sizeof(float));
    pl->Q = attn__ws_region(&y, q_len, sizeof(float));
    if (y.overflow)
        return attn__err(err, ATTN_E_OVERFLOW, "linear_image: scratch size overflows for x %s",
                         attn_shape_str(x->rank, x->shape, sh, sizeof sh));
    pl->bytes = y.size;
    pl->x = x;
    pl->c = c;
    *jp = j;
    return ATTN_OK;
}

static attn_status li_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                              int threads, attn_plan *out, attn_error *err) {
    const li_state *s = state;
    li_job j;
    li_plan p;
    attn_status st = plan_make(m, s, in, threads, &j, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 4, .shape = {p.x->shape[0], s->Co, (int64_t)j.o.h_out, (int64_t)j.o.w_out},
                       .ws_bytes = p.bytes};
    return ATTN_OK;
}

/* Shapes: x (B,C,H,W) F32 (C = chan), optional context (B,C,L) F32.
 * -> out (B,chan_out,H',W') F32, written in full into the caller's `out`; H', W' are
 * to_out's convolution of (H,W) (stride 1).  Needs Hq*Wq == H*W of the q/k/v
 * convolutions (the reference reshapes to H*W).  Inputs are borrowed and
 * only read; M, Q and the per-worker scratch are in the workspace `ws`
 * (declared by the plan; nothing is allocated here). */
static attn_status li_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                              const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    const li_state *s = state;
    li_job j;
    li_plan p;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &j, &p, err);
    if (st) return st;
    const size_t B = (size_t)p.x->shape[0], nh = (size_t)s->H;
    /* Every element of the scratch, M and Q is written before it is read. */
    j.x = p.x->data;
    j.c = p.c ? p.c->data : NULL;
    j.out = out;
    j.M = attn__ws_at(ws, p.M);
    j.Q = attn__ws_at(ws, p.Q);
    j.scratch = attn__ws_at(ws, p.scratch);
    st = attn__parallel_for(ctx, B * nh, li_head, &j);
    if (!st && j.pointwise) st = attn__parallel_for(ctx, B * j.nblk, li_block, &j);
    for (size_t b = 0; !st && !j.pointwise && b < B; b++) {
        j.img = b;
        st = attn__parallel_for(ctx, (j.xq.h_out + j.rb_q - 1) / j.rb_q, li_qrows, &j);
        if (!st) st = attn__parallel_for(ctx, (j.o.h_out + j.rb_o - 1) / j.rb_o, li_orows, &j);
    }
    if (st) attn__err(err, st, "linear_image: forward %s%s", st == ATTN_E_CANCELLED ? "cancelled" : "failed",
                          attn__fail_detail(st));
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
    .plan = li_plan_fn,
    .forward = li_forward,
};
