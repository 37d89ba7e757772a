/*
 * linear_self.c — SelfAttention of linear-attention-transformer 0.12
 * (lucidrains), the "Linear Attention" seed's LinearSelfAttention: global
 * heads compute softmax(q) (softmax_n(k)ᵀ v) in O(N d²); the causal variant
 * replaces softmax_n(k) by psi(k) normalised by running sums over buckets of
 * `blindspot_size` positions.  q and k are first scaled by d ** -0.25.
 *
 * Not supported: n_local_attn_heads > 0 (the reference hands those heads to
 * the separate local-attention package, whose version it does not pin).
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "seq_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const attn_seq_ops ls_seq;

enum { PSI_ELU1, PSI_RELU, PSI_EXP, PSI_SOFTPLUS, PSI_IDENTITY };
static const char *const psi_names[] = {"elu1", "relu", "exp", "softplus", "identity", NULL};

static const attn_param params[] = {
    {"dim", ATTN_P_INT, NULL, 1, 1 << 20, NULL, "input and output feature size"},
    {"heads", ATTN_P_INT, NULL, 1, 1 << 12, NULL, "number of query heads"},
    {"causal", ATTN_P_BOOL, "false", 0, 0, NULL, "causal linear attention (psi feature map, running sums)"},
    {"dim_head", ATTN_P_INT, "null", 1, 1 << 16, NULL, "size of each head (null: dim / heads)"},
    {"one_kv_head", ATTN_P_BOOL, "false", 0, 0, NULL, "one key/value head shared by all query heads"},
    {"psi_fn", ATTN_P_STRING, "elu1", 0, 0, "elu1|relu|exp|softplus|identity",
     "feature map of the keys in the causal variant (elu1 = elu(x) + 1)"},
    {"blindspot_size", ATTN_P_INT, "1", 1, 1 << 20, NULL,
     "causal bucket size: a query sees the keys of earlier buckets (and its own when 1)"},
    {"n_local_attn_heads", ATTN_P_INT, "0", 0, 1 << 12, NULL, "local attention heads (only 0 supported)"},
    {"local_attn_window_size", ATTN_P_INT, "128", 1, 1 << 20, NULL, "window of the local heads"},
    {"receives_context", ATTN_P_BOOL, "false", 0, 0, NULL, "keys and values come from `context`"},
    {"dropout", ATTN_P_FLOAT, "0.0", 0, 1, NULL, "output dropout (ignored: eval mode)"},
    {"attn_dropout", ATTN_P_FLOAT, "0.0", 0, 1, NULL, "local attention dropout (ignored: eval mode)"},
    {0},
};

typedef struct ls_state {
    int64_t dim, H, d, kvh; /* d = size of a head, kvh = key/value heads */
    int64_t bucket;
    bool causal, one_kv, ctx_mode;
    int psi;
    float qk_scale; /* d ** -0.25 */
    float *wq, *wk, *wv, *wo, *bo;
    /* The projections' weights stacked, so that one product makes them all
     * from the same rows (one pass over x, wider products: 4% faster than
     * three at dim 512): without context [wq; wk; wv] (HD + 2 KD, dim), with
     * a context [wk; wv] (2 KD, dim).  Model-owned copies; the same rows'
     * arithmetic as the separate products. */
    float *w_proj;
} ls_state;

static attn_status ls_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    ls_state *s = state;
    attn_status st;
    int64_t n_local, window;
    bool dh_null;
    double dropout, attn_dropout;
    const char *psi;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "dim", &s->dim, NULL)) ||
        (st = attn__cfg_int(cfg, "heads", &s->H, NULL)) ||
        (st = attn__cfg_bool(cfg, "causal", &s->causal)) ||
        (st = attn__cfg_int(cfg, "dim_head", &s->d, &dh_null)) ||
        (st = attn__cfg_bool(cfg, "one_kv_head", &s->one_kv)) ||
        (st = attn__cfg_string(cfg, "psi_fn", &psi)) ||
        (st = attn__cfg_int(cfg, "blindspot_size", &s->bucket, NULL)) ||
        (st = attn__cfg_int(cfg, "n_local_attn_heads", &n_local, NULL)) ||
        (st = attn__cfg_int(cfg, "local_attn_window_size", &window, NULL)) ||
        (st = attn__cfg_bool(cfg, "receives_context", &s->ctx_mode)) ||
        (st = attn__cfg_float(cfg, "dropout", &dropout, NULL)) ||
        (st = attn__cfg_float(cfg, "attn_dropout", &attn_dropout, NULL)))
        return st;
    if (dh_null) {
        if (s->dim % s->H != 0)
            return attn__err(cfg->err, ATTN_E_CONFIG,
                             "linear_self: embedding dimension must be divisible by number of heads "
                             "(dim = %lld, heads = %lld; or set dim_head)",
                             (long long)s->dim, (long long)s->H);
        s->d = s->dim / s->H;
    }
    if (n_local > s->H)
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "linear_self: n_local_attn_heads = %lld exceeds heads = %lld",
                         (long long)n_local, (long long)s->H);
    if (n_local > 0)
        return attn__err(cfg->err, ATTN_E_UNSUPPORTED,
                         "linear_self: n_local_attn_heads > 0 is not supported (the local heads run "
                         "the separate local-attention package); use 0");
    s->psi = PSI_ELU1;
    for (int i = 0; psi && psi_names[i]; i++)
        if (strcmp(psi, psi_names[i]) == 0) s->psi = i;
    s->kvh = s->one_kv ? 1 : s->H;
    s->qk_scale = (float)pow((double)s->d, -0.25);

    const int64_t D = s->dim, HD = s->H * s->d, KD = s->kvh * s->d;
    if ((st = attn__bind(b, "to_q.weight", 2, (int64_t[]){HD, D}, &s->wq)) ||
        (st = attn__bind(b, "to_k.weight", 2, (int64_t[]){KD, D}, &s->wk)) ||
        (st = attn__bind(b, "to_v.weight", 2, (int64_t[]){KD, D}, &s->wv)) ||
        (st = attn__bind(b, "to_out.weight", 2, (int64_t[]){D, HD}, &s->wo)) ||
        (st = attn__bind(b, "to_out.bias", 1, (int64_t[]){D}, &s->bo)))
        return st;
    {
        const size_t rows = (size_t)(s->ctx_mode ? 2 * KD : HD + 2 * KD), Dz = (size_t)D;
        size_t n;
        if (!attn__mul(rows, Dz, &n) || !attn__mul(n, sizeof(float), &n))
            return attn__err(cfg->err, ATTN_E_OVERFLOW, "linear_self: projection weights overflow");
        if (!(s->w_proj = attn__model_alloc(m, n, cfg->err))) return ATTN_E_NOMEM;
        float *w = s->w_proj;
        if (!s->ctx_mode) memcpy(w, s->wq, (size_t)HD * Dz * sizeof *w), w += (size_t)HD * Dz;
        memcpy(w, s->wk, (size_t)KD * Dz * sizeof *w);
        memcpy(w + (size_t)KD * Dz, s->wv, (size_t)KD * Dz * sizeof *w);
    }

    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, "B,N,dim", 3, (int64_t[]){-1, -1, D})))
        return st;
    if (s->ctx_mode) {
        if ((st = attn__model_add_input(m, "context", ATTN_F32, true, "B,S,dim", 3,
                                        (int64_t[]){-1, -1, D})) ||
            (st = attn__model_add_input(m, "context_mask", ATTN_BOOL, false, "B,S", 2,
                                        (int64_t[]){-1, -1})))
            return st;
    } else if ((st = attn__model_add_input(m, "input_mask", ATTN_BOOL, false, "B,N", 2,
                                           (int64_t[]){-1, -1}))) {
        return st;
    }
    attn__model_set_output(m, "B,N,dim", 3, (int64_t[]){-1, -1, D});
    return ATTN_OK;
}

/* ---- forward ----------------------------------------------------------------
 * Shapes (row-major): x (B,N,dim); keys/values come from x or context (B,S,dim).
 *   q (B,N,H*d), k and v (B,S,kvh*d): head h owns columns [h*d, (h+1)*d);
 *   with one_kv_head every query head reads the single key/value head.
 *   att (B,N,H*d) is gathered per (b, h); out (B,N,dim) = att Woᵀ + bo.
 * Non-causal, per (b, h):  qs = softmax_d(q),  ks = softmax_n(k masked to
 *   -max),  ctx (d,d) = ksᵀ v,  att = qs ctx.
 * Causal, per (b, h), buckets of `bucket` positions:  kp = psi(k) (masked rows
 *   0); running sums K_u = Σ kp, C_u = Σ kpᵀ v over buckets ≤ u (double, as
 *   torch's CPU cumsum accumulates); ctx_u = C_u / (K_u + 1e-6) row-wise;
 *   bucket u reads ctx_u when bucket == 1, else ctx_{u-1} (0 for u = 0). */

typedef struct ls_job {
    const ls_state *s;
    int64_t B, N, S;
    const uint8_t *kv_mask; /* (B,S) or NULL */
    float *q, *k, *v, *att;
    size_t ldq, ldkv; /* row strides of q and of k, v (the stacked projections) */
    float *scratch;   /* per worker: scratch_len floats */
    size_t scratch_len;
    double *dscratch; /* per worker: d*d + d doubles (causal running sums; column softmax sums) */
    float *map;       /* (B,H,N,S) implied weights, or NULL (the ordinary forward) */
    float *mscratch;  /* with map, causal: per worker S*d floats */
} ls_job;

static void psi_apply(int psi, float *x, size_t n) {
    switch (psi) {
    case PSI_ELU1: attn__elu1(x, n); break;
    case PSI_RELU: attn__relu(x, n); break;
    case PSI_EXP:
        for (size_t i = 0; i < n; i++) x[i] = expf(x[i]);
        break;
    case PSI_SOFTPLUS: /* torch: beta 1, linear above threshold 20 */
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
        break;
    default: break;
    }
}

/* Copies `rows` rows of d floats with stride ld into dst (rows, d). */
static void take_head(const float *src, size_t rows, size_t ld, size_t d, float *dst) {
    for (size_t r = 0; r < rows; r++) memcpy(dst + r * d, src + r * ld, d * sizeof *dst);
}

/* Folds one bucket of bs keys/values (bs,d), rows ld apart, into the
 * running sums: the key sum in float (as b_k.sum) then in double (ksum),
 * kᵀv by a float gemm (bctx) then in double (csum); ctx (d,d) = csum /
 * (ksum + 1e-6) row-wise, den (d) the denominators.  The forward and the
 * sequence step both fold through here, so they round alike. */
static attn_status fold_bucket(const float *k, const float *v, size_t bs, size_t d, size_t ld, double *ksum,
                               double *csum, float *den, float *bctx, float *ctx) {
    for (size_t c = 0; c < d; c++) {
        float t = 0.0f;
        for (size_t r = 0; r < bs; r++) t += k[r * ld + c];
        ksum[c] += (double)t;
        den[c] = (float)ksum[c] + 1e-6f;
    }
    ATTN_TRY(attn__gemm(1, 0, d, d, bs, 1.0f, k, ld, v, ld, 0.0f, bctx, d));
    for (size_t i = 0; i < d * d; i++) {
        csum[i] += (double)bctx[i];
        ctx[i] = (float)csum[i] / den[i / d];
    }
    return ATTN_OK;
}

/* One (batch entry, head): q, k and v are that head's columns of the
 * stacked projections, worked on in place (rows ldq and ldkv apart: each
 * task owns its columns), except with one_kv_head, where every head reads
 * the one key/value head and so works on its own copy of k and v. */
static attn_status ls_head(void *arg, size_t task, int worker) {
    const ls_job *j = arg;
    const ls_state *s = j->s;
    const size_t N = (size_t)j->N, S = (size_t)j->S, d = (size_t)s->d, H = (size_t)s->H;
    const size_t HD = H * d;
    const size_t b = task / H, h = task % H;
    const uint8_t *mask = j->kv_mask ? j->kv_mask + b * S : NULL;
    const float scale = s->qk_scale;

    float *ctx = j->scratch + (size_t)worker * j->scratch_len; /* (d,d) */
    float *bctx = ctx + d * d;                                  /* (d,d) */
    float *den = bctx + d * d;                                  /* (d) */
    const size_t ldq = j->ldq, ldkv = j->ldkv;
    float *q = j->q + b * N * ldq + h * d, *k, *v;              /* rows of stride ldq, ldk */
    float *att = j->att + b * N * HD + h * d;                   /* rows of stride HD */
    size_t ldk = ldkv;
    if (s->one_kv) {
        k = den + d; /* (S,d) copies */
        v = k + S * d;
        ldk = d;
        take_head(j->k + b * S * ldkv, S, ldkv, d, k);
        take_head(j->v + b * S * ldkv, S, ldkv, d, v);
    } else {
        k = j->k + b * S * ldkv + h * d;
        v = j->v + b * S * ldkv + h * d;
    }
    /* q and k are scaled by d^-0.25 in the softmaxes' first pass (k's,
     * causal: a pass before psi) */
    attn__softmax_rows_d(q, N, d, ldq, scale);

    if (!s->causal) {
        /* Masked keys get -finfo.max before the softmax over positions and
         * masked values 0, so a row with every key masked attends to zeros.
         * (In place the softmax scales them by d^-0.25 <= 1 first: still
         * exp(...) = 0 beside any real key, and a column of them uniform.) */
        if (mask)
            for (size_t n = 0; n < S; n++)
                if (!mask[n]) {
                    for (size_t c = 0; c < d; c++) k[n * ldk + c] = -FLT_MAX;
                    memset(v + n * ldk, 0, d * sizeof *v);
                }
        /* softmax over the positions (dim -2): columns of the (S,d) block */
        attn__softmax_cols(k, S, d, ldk, scale, bctx, j->dscratch + (size_t)worker * (d * d + d));
        ATTN_TRY(attn__gemm(1, 0, d, d, S, 1.0f, k, ldk, v, ldk, 0.0f, ctx, d));
        ATTN_TRY(attn__gemm(0, 0, N, d, d, 1.0f, q, ldq, ctx, d, 0.0f, att, HD));
        if (j->map) {
            /* att = qs (ksᵀ v) = (qs ksᵀ) v: A = qs ksᵀ, masked keys 0 (their
             * values are zeroed, so A V is the output with the real values) */
            float *A = j->map + task * N * S;
            ATTN_TRY(attn__gemm(0, 1, N, S, d, 1.0f, q, ldq, k, ldk, 0.0f, A, S));
            if (mask)
                for (size_t l = 0; l < N; l++)
                    for (size_t n = 0; n < S; n++)
                        if (!mask[n]) A[l * S + n] = 0.0f;
        }
        return ATTN_OK;
    }

    /* Causal: S == N (checked by the caller). */
    for (size_t n = 0; n < S; n++) {
        float *kr = k + n * ldk;
#pragma omp simd
        for (size_t c = 0; c < d; c++) kr[c] *= scale;
        psi_apply(s->psi, kr, d);
    }
    if (mask)
        for (size_t n = 0; n < S; n++)
            if (!mask[n]) {
                memset(k + n * ldk, 0, d * sizeof *k);
                memset(v + n * ldk, 0, d * sizeof *v);
            }
    const size_t bs = (size_t)s->bucket, U = N / bs;
    double *csum = j->dscratch + (size_t)worker * (d * d + d); /* (d,d) running C */
    double *ksum = csum + d * d;                                /* (d) running K */
    memset(csum, 0, d * d * sizeof *csum);
    memset(ksum, 0, d * sizeof *ksum);
    float *A = j->map ? j->map + task * N * S : NULL;
    if (A) memset(A, 0, N * S * sizeof *A);
    for (size_t u = 0; u < U; u++) {
        const float *ku = k + u * bs * ldk, *vu = v + u * bs * ldk;
        const float *qu = q + u * bs * ldq;
        float *au = att + u * bs * HD;
        if (bs > 1) {
            /* This bucket reads the sums of the buckets before it. */
            if (u == 0) {
                for (size_t r = 0; r < bs; r++) memset(au + r * HD, 0, d * sizeof *au);
            } else {
                ATTN_TRY(attn__gemm(0, 0, bs, d, d, 1.0f, qu, ldq, ctx, d, 0.0f, au, HD));
            }
        }
        /* The bucket's own sums, for the buckets after it. */
        ATTN_TRY(fold_bucket(ku, vu, bs, d, ldk, ksum, csum, den, bctx, ctx));
        if (bs == 1) ATTN_TRY(attn__gemm(0, 0, 1, d, d, 1.0f, qu, ldq, ctx, d, 0.0f, au, HD));
        if (A && (bs == 1 || u + 1 < U)) {
            /* The rows that read ctx_u = Σ_{s in buckets <= u} kp_sᵀ v_s / den_u
             * (row-wise): A[l,s] = Σ_i qs[l,i] kp[s,i] / den_u[i]. */
            const size_t rows0 = bs == 1 ? u : (u + 1) * bs, seen = (u + 1) * bs;
            float *kd = j->mscratch + (size_t)worker * S * d;
            for (size_t r = 0; r < seen; r++)
                for (size_t c = 0; c < d; c++) kd[r * d + c] = k[r * ldk + c] / den[c];
            ATTN_TRY(attn__gemm(0, 1, bs, seen, d, 1.0f, q + rows0 * ldq, ldq, kd, d, 0.0f, A + rows0 * S, S));
        }
    }
    return ATTN_OK;
}

static attn_status check_mask(const attn_tensor *mask, const char *name, int64_t B, int64_t n,
                              const char *dims, attn_error *err) {
    char sh[96];
    if (mask->shape[0] != B || mask->shape[1] != n)
        return attn__err(err, ATTN_E_SHAPE, "%s: expected %s = (%lld,%lld), got %s", name, dims,
                         (long long)B, (long long)n,
                         attn_shape_str(mask->rank, mask->shape, sh, sizeof sh));
    return ATTN_OK;
}

/* The inputs and the workspace of a forward on `threads`: att (B*N*HD),
 * then the projections q (B*N*HD) and k, v (B*S*KD), stacked per row
 * (ls_forward_maps); per worker (2d + 1) d floats (ctx, one bucket's kᵀv,
 * the denominators), with one_kv_head 2S d more (the head's copy of k and
 * v), and d² + d doubles. */
typedef struct ls_plan {
    const attn_tensor *x, *src, *mask;
    size_t bn, bs, qn, kn, pw, buf, scratch, dscratch, bytes;
} ls_plan;

static attn_status plan_make(const attn_model *m, const ls_state *s, const attn_tensor_set *in,
                             int threads, ls_plan *p, attn_error *err) {
    attn_status st;
    char sh[96];
    *p = (ls_plan){0};
    if ((st = attn__input(m, in, "x", &p->x, err))) return st;
    const attn_tensor *x = p->x;
    const int64_t B = x->shape[0], N = x->shape[1];
    p->src = x;
    if (s->ctx_mode) {
        if ((st = attn__input(m, in, "context", &p->src, err))) return st;
        if (p->src->shape[0] != B)
            return attn__err(err, ATTN_E_SHAPE, "context: expected (B,S,dim) with B = %lld, got %s",
                             (long long)B, attn_shape_str(p->src->rank, p->src->shape, sh, sizeof sh));
        if (attn_tensor_set_get(in, "context_mask")) {
            if ((st = attn__input(m, in, "context_mask", &p->mask, err)) ||
                (st = check_mask(p->mask, "context_mask", B, p->src->shape[1], "(B,S)", err)))
                return st;
        }
    } else if (attn_tensor_set_get(in, "input_mask")) {
        if ((st = attn__input(m, in, "input_mask", &p->mask, err)) ||
            (st = check_mask(p->mask, "input_mask", B, N, "(B,N)", err)))
            return st;
    }
    const int64_t S = p->src->shape[1];
    if (s->causal) {
        if (N % s->bucket != 0)
            return attn__err(err, ATTN_E_SHAPE,
                             "linear_self: sequence length %lld must be divisible by the bucket "
                             "size %lld (blindspot_size) for causal linear attention",
                             (long long)N, (long long)s->bucket);
        if (S != N)
            return attn__err(err, ATTN_E_SHAPE,
                             "linear_self: causal attention needs a context as long as x "
                             "(context length %lld, x length %lld)", (long long)S, (long long)N);
    }
    const size_t Bz = (size_t)B, Nz = (size_t)N, Sz = (size_t)S, d = (size_t)s->d;
    const size_t HD = (size_t)(s->H * s->d), KD = (size_t)(s->kvh * s->d);
    size_t total = 0, dd = 0;
    const size_t workers = (size_t)attn__workers_of(threads, Bz * (size_t)s->H);
    bool ok = attn__mul(Bz, Nz, &p->bn) && attn__mul(Bz, Sz, &p->bs) && attn__mul(p->bn, HD, &p->qn) &&
              attn__mul(p->bs, KD, &p->kn) && attn__add(p->qn, p->qn, &total) &&
              attn__add(total, p->kn, &total) && attn__add(total, p->kn, &total) &&
              attn__mul(s->one_kv ? Sz : 0, 2, &p->pw) && attn__add(p->pw, 2 * d + 1, &p->pw) &&
              attn__mul(p->pw, d, &p->pw) &&
              attn__mul(d, d + 1, &dd);
    attn_ws_layout y = {.overflow = !ok};
    p->buf = attn__ws_region(&y, total, sizeof(float));
    p->scratch = attn__ws_region(&y, workers, p->pw * sizeof(float));
    p->dscratch = attn__ws_region(&y, workers, dd * sizeof(double));
    if (y.overflow)
        return attn__err(err, ATTN_E_OVERFLOW, "linear_self: scratch size overflows for x %s",
                         attn_shape_str(x->rank, x->shape, sh, sizeof sh));
    p->bytes = y.size;
    return ATTN_OK;
}

static attn_status ls_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                              int threads, attn_plan *out, attn_error *err) {
    const ls_state *s = state;
    ls_plan p;
    attn_status st = plan_make(m, s, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 3, .shape = {p.x->shape[0], p.x->shape[1], s->dim}, .ws_bytes = p.bytes};
    return ATTN_OK;
}

/* Shapes: x (B,N,dim) F32; with receives_context, context (B,S,dim) F32 and
 * optional context_mask (B,S) BOOL, else optional input_mask (B,N) BOOL
 * (0 = masked key).  -> out (B,N,dim) F32, written in full into the caller's `out`.
 * Inputs are borrowed and only read; scratch (q, k, v, att and per-worker
 * buffers) is in the workspace `ws` (declared by the plan; nothing is allocated here). */
static attn_status ls_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                   const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                   attn_error *err) {
    const ls_state *s = state;
    ls_plan p;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    ls_job j = {.s = s, .B = p.x->shape[0], .N = p.x->shape[1], .S = p.src->shape[1],
                .kv_mask = p.mask ? p.mask->data : NULL, .scratch = attn__ws_at(ws, p.scratch),
                .scratch_len = p.pw, .dscratch = attn__ws_at(ws, p.dscratch), .map = maps ? maps[1] : NULL};
    if (j.map && s->causal) { /* the map's own scratch: S·d floats per worker */
        size_t n;
        const size_t workers = (size_t)attn__workers(ctx, (size_t)j.B * (size_t)s->H);
        if (!attn__mul((size_t)j.S, (size_t)s->d, &n) || !attn__mul(n, workers, &n))
            return attn__err(err, ATTN_E_OVERFLOW, "linear_self: attention map scratch overflows");
        if (!(j.mscratch = attn__calloc(n ? n : 1, sizeof(float), err))) return ATTN_E_NOMEM;
    }
    /* att (B*N, HD), then the projections: [q k v] per row of x, or q and
     * [k v] per row of the context */
    const size_t D = (size_t)s->dim, HD = (size_t)(s->H * s->d), KD = (size_t)(s->kvh * s->d);
    j.att = attn__ws_at(ws, p.buf);
    j.q = j.att + p.qn;
    if (!s->ctx_mode) {
        j.ldq = j.ldkv = HD + 2 * KD;
        j.k = j.q + HD;
        st = attn__linear_rows(ctx, p.x->data, p.bn, D, s->w_proj, NULL, HD + 2 * KD, j.q);
    } else {
        j.ldq = HD, j.ldkv = 2 * KD;
        j.k = j.q + p.qn;
        if (!(st = attn__linear_rows(ctx, p.x->data, p.bn, D, s->wq, NULL, HD, j.q)))
            st = attn__linear_rows(ctx, p.src->data, p.bs, D, s->w_proj, NULL, 2 * KD, j.k);
    }
    j.v = j.k + KD;
    if (st ||
        (st = attn__parallel_for(ctx, (size_t)j.B * (size_t)s->H, ls_head, &j)) ||
        (st = attn__linear_rows(ctx, j.att, p.bn, HD, s->wo, s->bo, D, out)))
        attn__err(err, st, "linear_self: forward %s%s", st == ATTN_E_CANCELLED ? "cancelled" : "failed",
                  attn__fail_detail(st));
    free(j.mscratch);
    return st;
}

static attn_status ls_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                              const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return ls_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention map: the matrix the forward implies ----
 * att = A v per (b, head) before the output projection, v the head's
 * values.  Non-causal: A = softmax_d(q) softmax_n(k)ᵀ, rows summing to 1;
 * masked keys 0.  Causal: a query of bucket u reads ctx_u' (u' = u when
 * blindspot_size is 1, else u - 1; none for u = 0: a zero row), so
 * A[l,s] = Σ_i softmax_d(q)[l,i] psi(k)[s,i] / (Σ_{s' in buckets <= u'}
 * psi(k)[s',i] + 1e-6) for s in buckets <= u', 0 after: the reference
 * normalises each feature by its own running sum, so a row sums to
 * Σ_i softmax_d(q)[l,i] K_i / (K_i + 1e-6), 1 only up to the features whose
 * running sum is (near) 0. */

static const attn_out_decl ls_outputs[] = {
    {"attention", "B,heads,N,S",
     "the implied matrix A with att = A v per head: softmax(q) softmax_n(k)^T, or causal with the bucketed "
     "per-feature normaliser (blindspot: a query sees earlier buckets only); masked keys 0"},
    {0},
};

static attn_status ls_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                 const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    (void)a, (void)i;
    const ls_state *s = state;
    ls_plan p;
    attn_status st = plan_make(m, s, in, 1, &p, err);
    if (st) return st;
    *rank = 4;
    shape[0] = p.x->shape[0], shape[1] = s->H, shape[2] = p.x->shape[1], shape[3] = p.src->shape[1];
    return ATTN_OK;
}

static const attn_maps_ops ls_maps = {.outputs = ls_outputs, .shape = ls_maps_shape, .forward = ls_forward_maps};

const attn_mech attn_mech_linear_self = {
    .info = {
        .name = "linear_self",
        .aliases = (const char *const[]){"linear-self-attention", NULL},
        .reference = "SelfAttention in linear_attention_transformer (lucidrains), "
                     "the Linear Attention seed's LinearSelfAttention",
        .summary = "multi-head linear attention softmax(q)(softmax(k)ᵀv); causal variant with "
                   "a psi feature map and bucketed running sums",
        .params = params,
        .has_weights = 1,
        .is_inner = 0,
    },
    .state_size = sizeof(ls_state),
    .init = ls_init,
    .plan = ls_plan_fn,
    .forward = ls_forward,
    .seq = &ls_seq,
    .maps = &ls_maps,
};

/* ---- sequences (causal=true, without receives_context) ----
 * Per stream and key/value head the state is ls_head's running sums in
 * double — K (d) and C (d×d), stored as the bits of the doubles — over the
 * completed buckets, and the rows of the bucket being filled (at most
 * blindspot_size - 1 keys and values, psi already applied).  Token p of
 * bucket u reads ctx of the buckets before u (bucket size > 1; 0 for
 * u = 0) or up to and including its own (size 1), exactly as the forward:
 * a bucket is folded into the sums when its last token arrives, with the
 * forward's float bucket sums and gemm.  A stream's length need not be a
 * multiple of the bucket size: the rows of a partial bucket do not depend
 * on the tokens that will complete it.  input_mask is refused. */

enum { KSUM, CSUM, PEND_K, PEND_V };

static unsigned ls_seq_kinds(const attn_model *m, const void *state, const char **why) {
    const ls_state *s = state;
    if (s && (!s->causal || s->ctx_mode)) {
        if (why) *why = s->causal ? "receives_context has no recurrent form" : "it needs causal=true";
        return 0;
    }
    return ATTN_SEQ_SELF;
}

static attn_status ls_seq_layout(attn_seq *q, attn_error *err) {
    const ls_state *s = q->mstate;
    const size_t d = (size_t)s->d, kvh = (size_t)s->kvh, pend = (size_t)(s->bucket - 1) * kvh * d;
    attn_status st;
    if ((st = attn__seq_buf_add(q, "key_sum_f64", ATTN_I64, false, kvh * d, err)) ||
        (st = attn__seq_buf_add(q, "context_sum_f64", ATTN_I64, false, kvh * d * d, err)) ||
        (st = attn__seq_buf_add(q, "bucket_keys", ATTN_F32, false, pend, err)) ||
        (st = attn__seq_buf_add(q, "bucket_values", ATTN_F32, false, pend, err)))
        return st;
    return ATTN_OK;
}

typedef struct ls_seq_job {
    const ls_state *s;
    const attn_seq *q;
    int64_t T;
    const float *qp, *kp, *vp; /* projections (N·T, H·d) and (N·T, kvh·d) */
    float *att;                /* (N·T, H·d) */
    float *scratch;            /* per worker: scratch_len */
    size_t scratch_len;
} ls_seq_job;

/* ctx = C / (K + 1e-6) row-wise, as ls_head. */
static void ls_ctx(const double *ksum, const double *csum, size_t d, float *den, float *ctx) {
    for (size_t c = 0; c < d; c++) den[c] = (float)ksum[c] + 1e-6f;
    for (size_t i = 0; i < d * d; i++) ctx[i] = (float)csum[i] / den[i / d];
}

/* One (stream, key/value head): its query heads' rows of the T tokens. */
static attn_status ls_seq_task(void *arg, size_t task, int worker) {
    const ls_seq_job *j = arg;
    const ls_state *s = j->s;
    const size_t d = (size_t)s->d, H = (size_t)s->H, kvh = (size_t)s->kvh, HD = H * d, KD = kvh * d;
    const size_t bs = (size_t)s->bucket, T = (size_t)j->T, len = (size_t)j->q->len;
    const size_t b = task / kvh, kh = task % kvh;
    double *ksum = (double *)attn__seq_stream(j->q, KSUM, (int64_t)b) + kh * d;
    double *csum = (double *)attn__seq_stream(j->q, CSUM, (int64_t)b) + kh * d * d;
    float *pk = attn__seq_stream(j->q, PEND_K, (int64_t)b), *pv = attn__seq_stream(j->q, PEND_V, (int64_t)b);
    float *ctx = j->scratch + (size_t)worker * j->scratch_len, *den = ctx + d * d, *bctx = den + d;
    float *kb = bctx + d * d, *vb = kb + bs * d, *qr = vb + bs * d;
    ls_ctx(ksum, csum, d, den, ctx);
    for (size_t t = 0; t < T; t++) {
        const size_t p = len + t, u = p / bs, r = p % bs, row = b * T + t;
        /* This token's key (scaled, psi) and value into the bucket rows. */
        float *kr = kb + r * d, *vr = vb + r * d;
        for (size_t c = 0; c < d; c++) {
            kr[c] = j->kp[row * KD + kh * d + c] * s->qk_scale;
            vr[c] = j->vp[row * KD + kh * d + c];
        }
        psi_apply(s->psi, kr, d);
        if (r + 1 == bs) { /* the bucket is complete: the earlier rows, then fold as ls_head */
            for (size_t x = 0; x < r; x++) {
                memcpy(kb + x * d, pk + (x * kvh + kh) * d, d * sizeof *kb);
                memcpy(vb + x * d, pv + (x * kvh + kh) * d, d * sizeof *vb);
            }
        }
        for (size_t hh = 0; hh < H; hh++) {
            if ((s->one_kv ? 0 : hh) != kh) continue;
            float *out = j->att + row * HD + hh * d;
            if (bs > 1 && u == 0) {
                memset(out, 0, d * sizeof *out);
                continue;
            }
            if (bs == 1) continue; /* after the fold below */
            for (size_t c = 0; c < d; c++) qr[c] = j->qp[row * HD + hh * d + c] * s->qk_scale;
            attn__softmax_row_d(qr, d);
            ATTN_TRY(attn__gemm(0, 0, 1, d, d, 1.0f, qr, d, ctx, d, 0.0f, out, d));
        }
        if (r + 1 < bs) {
            memcpy(pk + (r * kvh + kh) * d, kr, d * sizeof *kr);
            memcpy(pv + (r * kvh + kh) * d, vr, d * sizeof *vr);
            continue;
        }
        ATTN_TRY(fold_bucket(kb, vb, bs, d, d, ksum, csum, den, bctx, ctx));
        if (bs == 1)
            for (size_t hh = 0; hh < H; hh++) {
                if ((s->one_kv ? 0 : hh) != kh) continue;
                for (size_t c = 0; c < d; c++) qr[c] = j->qp[row * HD + hh * d + c] * s->qk_scale;
                attn__softmax_row_d(qr, d);
                ATTN_TRY(attn__gemm(0, 0, 1, d, d, 1.0f, qr, d, ctx, d, 0.0f, j->att + row * HD + hh * d, d));
            }
    }
    return ATTN_OK;
}

static attn_status ls_seq_step(attn_seq *q, attn_ctx *ctx, const attn_tensor_set *in, attn_tensor **out,
                               attn_error *err) {
    const ls_state *s = q->mstate;
    const attn_tensor *x;
    attn_status st;
    if ((st = attn__seq_refuse(in, "input_mask", "padding cannot apply to a stream (end the sequence instead)", err)) ||
        (st = attn__input(q->model, in, "x", &x, err)))
        return st;
    const int64_t B = x->shape[0], T = x->shape[1];
    if (B != q->N)
        return attn__err(err, ATTN_E_SHAPE, "input 'x' has B=%lld; the sequence has %lld streams", (long long)B,
                         (long long)q->N);
    if ((st = attn__seq_begin(q, 0, NULL, T, err))) return st;
    const size_t D = (size_t)s->dim, d = (size_t)s->d, HD = (size_t)(s->H * s->d), KD = (size_t)(s->kvh * s->d);
    const size_t rows = (size_t)(B * T), bs = (size_t)s->bucket, tasks = (size_t)B * (size_t)s->kvh;
    const int workers = attn__workers(ctx, tasks);
    size_t tot, pw, all;
    float *buf = NULL, *scratch = NULL;
    attn_tensor *y = NULL;
    bool ok = attn__mul(rows, 2 * HD + 2 * KD, &tot) && attn__mul(d, 2 * d + 1 + 2 * bs + 1, &pw) &&
              attn__mul(pw, (size_t)workers, &all);
    if (!ok) {
        st = attn__err(err, ATTN_E_OVERFLOW, "linear_self: scratch size overflows");
        goto done;
    }
    if (!(buf = attn__calloc(tot, sizeof(float), err)) || !(scratch = attn__calloc(all, sizeof(float), err))) {
        st = err ? err->code : ATTN_E_NOMEM;
        goto done;
    }
    ls_seq_job j = {.s = s, .q = q, .T = T, .scratch = scratch, .scratch_len = pw};
    float *qp = buf, *att = qp + rows * HD, *kp = att + rows * HD, *vp = kp + rows * KD;
    j.qp = qp, j.att = att, j.kp = kp, j.vp = vp;
    if ((st = attn__linear_rows(ctx, x->data, rows, D, s->wq, NULL, HD, qp)) ||
        (st = attn__linear_rows(ctx, x->data, rows, D, s->wk, NULL, KD, kp)) ||
        (st = attn__linear_rows(ctx, x->data, rows, D, s->wv, NULL, KD, vp)) ||
        (st = attn__parallel_for(ctx, tasks, ls_seq_task, &j)) ||
        (st = attn__tensor_new_uninit(ATTN_F32, 3, (int64_t[]){B, T, s->dim}, &y, err)))
        goto done;
    if ((st = attn__linear_rows(ctx, att, rows, HD, s->wo, s->bo, D, y->data))) goto done;
    *out = y;
    y = NULL;
done:
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    attn_tensor_free(y);
    free(buf);
    free(scratch);
    return attn__seq_commit(q, st, T);
}

static const attn_seq_ops ls_seq = {
    .kinds = ls_seq_kinds,
    .layout = ls_seq_layout,
    .step = ls_seq_step,
};
