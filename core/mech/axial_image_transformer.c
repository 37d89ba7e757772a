/*
 * axial_image_transformer.c — AxialImageTransformer (lucidrains/axial-attention
 * 0.6.1): an optional AxialPositionalEmbedding, then `depth` layers, each a
 * pair of blocks:
 *   attention:    f, g = PermuteToFrom(PreNorm(LayerNorm, SelfAttention)) along
 *                 the first and the second axial dim
 *   feed-forward: f, g = ChanLayerNorm -> Conv2d(dim, 4 dim, 3, padding 1)
 *                 -> LeakyReLU(0.01) -> Conv2d(4 dim, dim, 3, padding 1)
 * run either as ReversibleSequence (x1 = x2 = x; per block y1 = x1 + f(x2),
 * y2 = x2 + g(y1); output the mean of the two halves) or as Sequential
 * (per block x = x + f(x); x = x + g(x)).  The convolutions read x as NCHW
 * whatever dim_index says, as the reference's nn.Conv2d does.
 */
#include "mech/axial_common.h"

#include "kernels/conv2d.h"
#include "kernels/image_ops.h"
#include "workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One feed-forward: ChanLayerNorm g, b (1,dim,1,1); conv weights and
 * biases; the weights' Winograd transforms u1, u2 (16·4·dim·dim floats
 * each, model-owned). */
typedef struct ait_ff {
    const float *g, *b, *w1, *b1, *w2, *b2;
    float *u1, *u2;
} ait_ff;

typedef struct ait_layer {
    axial_sa attn[2];
    ait_ff ff[2];
} ait_layer;

typedef struct ait_state {
    int64_t dim, depth, heads;
    int emb, axes[ATTN_MAX_RANK];
    bool reversible, has_pos;
    axial_pos pos;
    ait_layer *layers; /* depth of them, model-owned */
} ait_state;

static const attn_param ait_params[] = {
    {"dim", ATTN_P_INT, NULL, 1, 1 << 20, NULL, "channels (the embedding dimension)"},
    {"depth", ATTN_P_INT, NULL, 0, 1 << 12, NULL, "number of (attention, feed-forward) layers"},
    {"heads", ATTN_P_INT, "8", 1, 1 << 20, NULL, "attention heads"},
    {"dim_heads", ATTN_P_INT, "null", 1, 1 << 20, NULL, "dimension per head; null = dim // heads"},
    {"dim_index", ATTN_P_INT, "1", -3, 3, NULL, "index of the embedding dimension in x"},
    {"reversible", ATTN_P_BOOL, "true", 0, 0, NULL,
     "reversible residual stack (true) or plain residual blocks"},
    {"axial_pos_emb_shape", ATTN_P_INT_LIST, "null", 1, 1 << 20, NULL,
     "[H, W] of an AxialPositionalEmbedding added first; null = none"},
    {0},
};

/* ---- binding ---- */

static attn_status bind_ff(attn_model *m, attn_binder *b, const char *pre, int64_t dim, ait_ff *ff,
                           attn_error *err) {
    int64_t s_n[4] = {1, dim, 1, 1}, s_w1[4] = {4 * dim, dim, 3, 3}, s_b1[1] = {4 * dim},
            s_w2[4] = {dim, 4 * dim, 3, 3}, s_b2[1] = {dim};
    static const char *const names[6] = {"0.g", "0.b", "1.weight", "1.bias", "3.weight", "3.bias"};
    const int64_t *shapes[6] = {s_n, s_n, s_w1, s_b1, s_w2, s_b2};
    const int ranks[6] = {4, 4, 4, 1, 4, 1};
    float *p[6];
    for (int i = 0; i < 6; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", pre, names[i]);
        attn_status st = attn__bind(b, name, ranks[i], shapes[i], &p[i]);
        if (st) return st;
    }
    *ff = (ait_ff){.g = p[0], .b = p[1], .w1 = p[2], .b1 = p[3], .w2 = p[4], .b2 = p[5]};
    size_t d = (size_t)dim, bytes;
    if (!attn__mul(d, d, &bytes) || !attn__mul(bytes, 16 * 4 * sizeof(float), &bytes))
        return attn__err(err, ATTN_E_OVERFLOW, "axial_image_transformer: dim %lld too large", (long long)dim);
    attn_conv2d c1 = {.c_in = d, .c_out = 4 * d, .k_h = 3, .k_w = 3}, c2 = {.c_in = 4 * d, .c_out = d, .k_h = 3, .k_w = 3};
    if (!(ff->u1 = attn__model_alloc(m, bytes, err)) || !(ff->u2 = attn__model_alloc(m, bytes, err)))
        return err ? err->code : ATTN_E_NOMEM;
    attn__conv2d_wino_weights(&c1, ff->w1, ff->u1);
    attn__conv2d_wino_weights(&c2, ff->w2, ff->u2);
    return ATTN_OK;
}

/* State-dict names: ReversibleSequence wraps each (f, g) pair in a
 * ReversibleBlock of Deterministic(net) modules ("blocks.<i>.f.net."),
 * Sequential keeps the ModuleList pair ("blocks.<i>.0."). */
static attn_status bind_layer(attn_model *m, attn_binder *b, const ait_state *s, int64_t l, int64_t heads,
                              int64_t dh, ait_layer *L, attn_error *err) {
    for (int k = 0; k < 2; k++) {
        char base[96], pre[128], norm[128];
        const char *fg = s->reversible ? (k ? "g.net." : "f.net.") : (k ? "1." : "0.");
        snprintf(base, sizeof base, "layers.blocks.%lld.%s", (long long)(2 * l), fg);
        snprintf(pre, sizeof pre, "%sfn.fn.", base);
        snprintf(norm, sizeof norm, "%sfn.norm.", base);
        attn_status st = attn__axial_sa_bind(b, pre, norm, s->dim, heads, dh, &L->attn[k]);
        if (st) return st;
        snprintf(base, sizeof base, "layers.blocks.%lld.%s", (long long)(2 * l + 1), fg);
        if ((st = bind_ff(m, b, base, s->dim, &L->ff[k], err))) return st;
    }
    return ATTN_OK;
}

static attn_status ait_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    ait_state *s = state;
    attn_error *err = cfg->err;
    int64_t heads, dh, di, pshape[AXIAL_MAX_POS];
    bool dh_null;
    int np;
    attn_status st;
    if ((st = attn__cfg_check_keys(cfg)) || (st = attn__cfg_int(cfg, "dim", &s->dim, NULL)) ||
        (st = attn__cfg_int(cfg, "depth", &s->depth, NULL)) ||
        (st = attn__cfg_int(cfg, "heads", &heads, NULL)) ||
        (st = attn__cfg_int(cfg, "dim_heads", &dh, &dh_null)) ||
        (st = attn__cfg_int(cfg, "dim_index", &di, NULL)) ||
        (st = attn__cfg_bool(cfg, "reversible", &s->reversible)) ||
        (st = attn__cfg_int_list(cfg, "axial_pos_emb_shape", pshape, AXIAL_MAX_POS, &np)))
        return st;
    /* No divisibility assert here (unlike AxialAttention): the head size is
     * dim // heads, which only fails when it is 0. */
    if (dh_null) dh = s->dim / heads;
    s->heads = heads;
    if (dh == 0)
        return attn__err(err, ATTN_E_CONFIG,
                         "axial_image_transformer: dim // heads = %lld // %lld is 0; "
                         "use fewer heads or set dim_heads",
                         (long long)s->dim, (long long)heads);
    /* dim_index 0 or -4 would make three axes out of the batch dim, which
     * the reference cannot pair into (f, g) blocks. */
    if (attn__axial_axes(4, di, &s->emb, s->axes) != 2)
        return attn__err(err, ATTN_E_CONFIG,
                         "axial_image_transformer: dim_index %lld must be one of 1, 2, 3, -1, -2, -3",
                         (long long)di);
    s->has_pos = np >= 0;
    if (s->has_pos &&
        (st = attn__axial_pos_init(&s->pos, b, "pos_emb.", s->dim, pshape, np, di,
                                   "axial_image_transformer: dim_index for axial_pos_emb_shape", err)))
        return st;
    size_t bytes;
    if (!attn__mul((size_t)s->depth, sizeof(ait_layer), &bytes))
        return attn__err(err, ATTN_E_OVERFLOW, "axial_image_transformer: depth too large");
    s->layers = attn__model_alloc(m, bytes, err);
    if (!s->layers) return err ? err->code : ATTN_E_NOMEM;
    for (int64_t l = 0; l < s->depth; l++)
        if ((st = bind_layer(m, b, s, l, heads, dh, &s->layers[l], err))) return st;

    /* Convolutions want channels at dim 1, attention wants them at
     * dim_index.  With a positional embedding x may broadcast, so only the
     * broadcast result is checked (in forward). */
    int64_t shape[4] = {-1, -1, -1, -1};
    if (!s->has_pos) shape[1] = shape[s->emb] = s->dim;
    const char *dims = s->emb == 1 ? "B,dim,H,W" : s->emb == 2 ? "B,dim,dim,W" : "B,dim,H,dim";
    if ((st = attn__model_add_input(m, "x", ATTN_F32, true, dims, 4, shape))) return st;
    attn__model_set_output(m, dims, 4, shape);
    return ATTN_OK;
}

/* ---- the feed-forward ----
 *
 * Both convolutions run as Winograd F(2×2, 3×3) (kernels/conv2d.h) on a
 * zero-padded input: the norm writes its output into the interior of a
 * padded buffer Ap (B images of C planes hp × wp), the first convolution
 * (with bias and leaky ReLU) writes into the interior of a second one, Hp
 * (4C planes), and the second adds its result to dst.  The borders are
 * zeroed once per forward and never written.  The units of work are image
 * rows for the norm and blocks of `rows` tile rows (about FF_TILES tiles,
 * fixed by the shape: the bits depend on it) for the convolutions; each
 * step runs as one task per thread over a contiguous range of units, so
 * that a thread mostly reads what it wrote in the step before (the caller
 * takes the first task, a helper the next) instead of fetching it from
 * another core's cache. */
#define FF_TILES 32

typedef struct ff_job {
    const ait_ff *ff;
    attn_conv2d c1, c2;
    size_t B, C, H, W, HW;
    size_t wp, plane;       /* the padded planes */
    size_t rows, blocks, th; /* tile rows per block, blocks per image, tile rows */
    size_t tasks;           /* of each step: the thread count, at most the blocks */
    size_t work;            /* floats of Winograd scratch per task */
    const float *src;
    float *dst, *Ap, *Hp, *scratch;
} ff_job;

/* Units [lo, hi) of task t of n over `units`. */
static void task_units(size_t t, size_t n, size_t units, size_t *lo, size_t *hi) {
    *lo = t * units / n;
    *hi = (t + 1) * units / n;
}

static attn_status ff_norm_task(void *arg, size_t task, int worker) {
    (void)worker;
    const ff_job *j = arg;
    size_t lo, hi;
    task_units(task, j->tasks, j->B * j->H, &lo, &hi);
    for (size_t u = lo; u < hi; u++) {
        size_t b = u / j->H, r = u % j->H;
        attn__chan_layernorm(j->src + b * j->C * j->HW + r * j->W, j->HW, j->C, j->W, j->ff->g, j->ff->b, 1e-5f,
                             j->Ap + b * j->C * j->plane + (r + 1) * j->wp + 1, j->plane);
    }
    return ATTN_OK;
}

/* conv (1 or 2) of the blocks of task `task`. */
static attn_status ff_conv(const ff_job *j, int which, size_t task) {
    const attn_conv2d *c = which == 1 ? &j->c1 : &j->c2;
    size_t lo, hi;
    task_units(task, j->tasks, j->B * j->blocks, &lo, &hi);
    for (size_t u = lo; u < hi; u++) {
        size_t b = u / j->blocks, ty0 = u % j->blocks * j->rows;
        size_t ty1 = ty0 + j->rows < j->th ? ty0 + j->rows : j->th;
        const float *in = (which == 1 ? j->Ap : j->Hp) + b * c->c_in * j->plane;
        attn_conv2d_out o;
        if (which == 1)
            o = (attn_conv2d_out){.y = j->Hp + b * c->c_out * j->plane + j->wp + 1, .ys = j->plane, .yr = j->wp,
                                  .bias = j->ff->b1, .leaky = 1, .slope = 0.01f};
        else
            o = (attn_conv2d_out){.y = j->dst + b * j->C * j->HW, .ys = j->HW, .yr = j->W, .bias = j->ff->b2,
                                  .accumulate = 1};
        ATTN_TRY(attn__conv2d_wino(c, in, j->plane, which == 1 ? j->ff->u1 : j->ff->u2, &o, ty0, ty1,
                                   j->scratch + task * j->work));
    }
    return ATTN_OK;
}

static attn_status ff_conv1_task(void *arg, size_t task, int worker) {
    (void)worker;
    return ff_conv(arg, 1, task);
}

static attn_status ff_conv2_task(void *arg, size_t task, int worker) {
    (void)worker;
    return ff_conv(arg, 2, task);
}

/* dst += ff(src); src and dst (B, C, H, W) may be the same buffer: src is
 * only read by the norm, which finishes before the last conv writes dst. */
static attn_status ff_apply(ff_job *j, attn_ctx *ctx, const ait_ff *ff, const float *src,
                            float *dst) {
    j->ff = ff;
    j->src = src;
    j->dst = dst;
    /* one count of tasks for the three steps (a norm task may get no rows);
     * the plan sized the scratch for as many */
    j->tasks = (size_t)attn__workers(ctx, j->B * j->blocks);
    attn_status st = attn__parallel_for(ctx, j->tasks, ff_norm_task, j);
    if (!st) st = attn__parallel_for(ctx, j->tasks, ff_conv1_task, j);
    if (!st) st = attn__parallel_for(ctx, j->tasks, ff_conv2_task, j);
    return st;
}

/* ---- forward ---- */

typedef struct ait_run {
    const ait_state *s;
    attn_ctx *ctx;
    const int64_t *shape;
    ff_job ff;
    void *attn_ws; /* the axial attentions' scratch */
    float *map[2];  /* per axis: (depth, rest, heads, T, T) weights, or NULL */
    size_t map_layer[2]; /* floats of one layer's map */
    int64_t layer;
    attn_error *err;
} ait_run;

/* dst += function k (f or g) of block `blk` (0 the attention pair, 1 the
 * feed-forward pair) of layer L, applied to src. */
static attn_status run_fn(ait_run *r, const ait_layer *L, int blk, int k, const float *src,
                          float *dst) {
    if (blk == 0)
        return attn__axial_apply(&L->attn[k], r->ctx, 4, r->shape, r->s->emb, r->s->axes[k], src,
                                 dst, true, r->attn_ws,
                                 r->map[k] ? r->map[k] + (size_t)r->layer * r->map_layer[k] : NULL, r->err);
    attn_status st = ff_apply(&r->ff, r->ctx, &L->ff[k], src, dst);
    if (st == ATTN_E_CANCELLED) return attn__err(r->err, st, "axial_image_transformer: cancelled");
    if (st) return attn__err(r->err, st, "axial_image_transformer: feed-forward failed%s", attn__fail_detail(st));
    return st;
}

/* The output shape (x's, or x + pos_emb's) and the feed-forward's job of a
 * forward on `threads`, with its workspace: the padded norm output Ap and
 * hidden Hp, the Winograd scratch of each task, the reversible pair's x2,
 * and the axial attentions' scratch (one at a time, so the largest). */
typedef struct ait_plan {
    const attn_tensor *x;
    int64_t shape[ATTN_MAX_RANK];
    size_t numel;
    ff_job ff;
    size_t Ap, Hp, wino, x2, attn, bytes;
    size_t Ap_bytes, Hp_bytes;
} ait_plan;

static attn_status plan_make(const attn_model *m, const ait_state *s, const attn_tensor_set *in,
                             int threads, ait_plan *p, attn_error *err) {
    attn_status st;
    char buf[96];
    int rank;
    *p = (ait_plan){0};
    if ((st = attn__input(m, in, "x", &p->x, err))) return st;
    if (s->has_pos) {
        if ((st = attn__axial_pos_shape(&s->pos, p->x, &rank, p->shape, err))) return st;
    } else {
        rank = p->x->rank;
        memcpy(p->shape, p->x->shape, (size_t)rank * sizeof *p->shape);
    }
    const int64_t *sh = p->shape;
    if (rank != 4 || sh[1] != s->dim || sh[s->emb] != s->dim)
        return attn__err(err, ATTN_E_SHAPE,
                         "axial_image_transformer: x%s must be 4-D with dim=%lld channels at dims 1 "
                         "and %d, got %s",
                         s->has_pos ? " + pos_emb" : "", (long long)s->dim, s->emb,
                         attn_shape_str(rank, sh, buf, sizeof buf));
    if ((st = attn_shape_numel(4, sh, sizeof(float), &p->numel, err))) return st;
    size_t B = (size_t)sh[0], C = (size_t)sh[1], H = (size_t)sh[2], W = (size_t)sh[3], HW = H * W;
    ff_job *j = &p->ff;
    j->B = B;
    j->C = C;
    j->H = H;
    j->W = W;
    j->HW = HW;
    j->c1 = (attn_conv2d){.c_in = C, .c_out = 4 * C, .h_in = H, .w_in = W, .k_h = 3, .k_w = 3,
                          .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1,
                          .dil_w = 1};
    j->c2 = j->c1;
    j->c2.c_in = 4 * C;
    j->c2.c_out = C;
    size_t img1, img2, ap, hp;
    if (!attn__conv2d_prepare(&j->c1, NULL) || !attn__conv2d_prepare(&j->c2, NULL) ||
        !attn__conv2d_padded_size(&j->c1, &j->plane, &img1) || !attn__conv2d_padded_size(&j->c2, &j->plane, &img2) ||
        !attn__mul(img1, B, &ap) || !attn__add(ap, attn__conv2d_padded_slack(&j->c1), &ap) ||
        !attn__mul(img2, B, &hp) || !attn__add(hp, attn__conv2d_padded_slack(&j->c2), &hp))
        return attn__err(err, ATTN_E_OVERFLOW, "axial_image_transformer: scratch size overflows");
    j->wp = W + 2;
    size_t tw = attn__conv2d_wino_tiles_w(&j->c1), w1, w2;
    j->th = attn__conv2d_wino_tiles_h(&j->c1);
    j->rows = (FF_TILES + tw - 1) / tw;
    if (j->rows > j->th) j->rows = j->th;
    j->blocks = (j->th + j->rows - 1) / j->rows;
    if (!attn__conv2d_wino_work(&j->c1, j->rows, &w1) || !attn__conv2d_wino_work(&j->c2, j->rows, &w2))
        return attn__err(err, ATTN_E_OVERFLOW, "axial_image_transformer: scratch size overflows");
    j->work = w1 > w2 ? w1 : w2;
    size_t tasks = (size_t)attn__workers_of(threads, B * j->blocks);
    size_t attn = 0;
    for (int64_t l = 0; l < s->depth; l++)
        for (int k = 0; k < 2; k++) {
            size_t b;
            if ((st = attn__axial_scratch(&s->layers[l].attn[k], 4, sh, s->emb, s->axes[k], threads,
                                          &b, err)))
                return st;
            if (b > attn) attn = b;
        }
    attn_ws_layout y = {0};
    if (s->depth > 0) {
        p->Ap_bytes = ap * sizeof(float);
        p->Hp_bytes = hp * sizeof(float);
        p->Ap = attn__ws_region(&y, ap, sizeof(float));
        p->Hp = attn__ws_region(&y, hp, sizeof(float));
        p->wino = attn__ws_region(&y, tasks, j->work * sizeof(float));
        if (s->reversible) p->x2 = attn__ws_region(&y, p->numel, sizeof(float));
        p->attn = attn__ws_region(&y, attn, 1);
    }
    return attn__ws_size(&y, "axial_image_transformer", &p->bytes, err);
}

static attn_status ait_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                               int threads, attn_plan *out, attn_error *err) {
    ait_plan p;
    attn_status st = plan_make(m, state, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 4, .ws_bytes = p.bytes};
    memcpy(out->shape, p.shape, 4 * sizeof *p.shape);
    return ATTN_OK;
}

/* Shapes: x (B,C,H,W) F32 with dim channels at dim_index (1, 2 or 3; the
 * convolutions read dim 1 as channels, as the reference does); with
 * axial_pos_emb_shape, x broadcast against the embedding.  -> out of x's
 * (broadcast) shape, F32, written in full into the caller's `out`.  x is borrowed and
 * only read; the second stream, the norm and hidden buffers and the
 * per-worker scratch are in the workspace `ws` (declared by the plan; nothing is allocated here). */
static void ait_map_shape(const ait_state *s, const int64_t *shape, int k, int *rank, int64_t *ms) {
    const axial_sa sa = {.heads = s->heads};
    ms[0] = s->depth;
    attn__axial_map_shape(&sa, 4, shape, s->emb, s->axes[k], rank, ms + 1);
    (*rank)++;
}

/* maps[1 + k] (or NULL): axis k's weights of every layer. */
static attn_status ait_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                    const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                    attn_error *err) {
    const ait_state *s = state;
    ait_plan p;
    attn_status st = plan_make(m, s, in, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    /* out holds x after the positional embedding, then the running stream
     * (x1 of the reversible pair). */
    float *x1 = out, *x2 = NULL;
    if (s->has_pos) {
        if ((st = attn__axial_pos_apply_ctx(&s->pos, ctx, p.x, x1, err))) return st;
    } else {
        memcpy(x1, p.x->data, p.x->nbytes);
    }
    ait_run r = {.s = s, .ctx = ctx, .shape = p.shape, .ff = p.ff, .err = err};
    for (int k = 0; k < 2 && maps && s->depth > 0; k++) {
        int rank;
        int64_t ms[ATTN_MAX_RANK];
        r.map[k] = maps[1 + k];
        ait_map_shape(s, p.shape, k, &rank, ms);
        r.map_layer[k] = 1;
        for (int d = 1; d < rank; d++) r.map_layer[k] *= (size_t)ms[d]; /* the caller's tensor exists */
    }
    if (s->depth > 0) {
        r.ff.Ap = attn__ws_at(ws, p.Ap);
        r.ff.Hp = attn__ws_at(ws, p.Hp);
        r.ff.scratch = attn__ws_at(ws, p.wino);
        /* the padded buffers' borders and slack stay zero from here on */
        memset(r.ff.Ap, 0, p.Ap_bytes);
        memset(r.ff.Hp, 0, p.Hp_bytes);
        r.attn_ws = attn__ws_at(ws, p.attn);
        if (s->reversible) {
            x2 = attn__ws_at(ws, p.x2);
            memcpy(x2, x1, p.numel * sizeof *x1);
        }
    }
    for (int64_t l = 0; l < s->depth && !st; l++) {
        const ait_layer *L = &s->layers[l];
        r.layer = l;
        for (int blk = 0; blk < 2 && !st; blk++) {
            if (s->reversible) { /* y1 = x1 + f(x2); y2 = x2 + g(y1) */
                if (!(st = run_fn(&r, L, blk, 0, x2, x1))) st = run_fn(&r, L, blk, 1, x1, x2);
            } else { /* x = x + f(x); x = x + g(x) */
                if (!(st = run_fn(&r, L, blk, 0, x1, x1))) st = run_fn(&r, L, blk, 1, x1, x1);
            }
        }
    }
    /* torch.stack(x.chunk(2, dim=1)).mean(dim=0): (x1 + x2) / 2 */
    if (!st && x2)
        for (size_t i = 0; i < p.numel; i++) x1[i] = (x1[i] + x2[i]) / 2.0f;
    return st;
}

static attn_status ait_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                               const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return ait_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention maps: per axis, every layer's along a leading depth axis ---- */

static attn_status ait_maps_declare(attn_model *m, const void *state) {
    const ait_state *s = state;
    static const char *const names[4] = {"B", "C", "A1", "A2"};
    const char *np[4];
    for (int d = 0, k = 0; d < 4; d++) np[d] = d == s->emb ? "dim" : d == 0 ? "B" : names[2 + k++];
    for (int k = 0; k < 2; k++) {
        char name[32], dims[64], rest[56], doc[160];
        attn__axial_map_dims(4, np, s->emb, s->axes[k], rest, sizeof rest);
        snprintf(name, sizeof name, "attention_axis%d", k + 1);
        snprintf(dims, sizeof dims, "depth,%s", rest);
        snprintf(doc, sizeof doc, "softmax weights along axis A%d (x's dim %d) of every layer, per head "
                 "(layer l: its input after the layers before)", k + 1, s->axes[k]);
        attn_status st = attn__model_add_output(m, name, dims, doc);
        if (st) return st;
    }
    return ATTN_OK;
}

static attn_status ait_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                  const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const ait_state *s = state;
    ait_plan p;
    attn_status st = plan_make(m, s, in, 1, &p, err);
    if (st) return st;
    ait_map_shape(s, p.shape, (int)i - 1, rank, shape);
    return ATTN_OK;
}

static const attn_out_decl ait_outputs[] = {
    {"attention_axis<k>", "depth,<x's other dims>,heads,A<k>,A<k>",
     "k = 1, 2: softmax weights along image axis A<k> of every layer, per head"},
    {0},
};

static const attn_maps_ops ait_maps = {.outputs = ait_outputs, .declare = ait_maps_declare, .shape = ait_maps_shape, .forward = ait_forward_maps};

const attn_mech attn_mech_axial_image_transformer = {
    .info =
        {
            .name = "axial_image_transformer",
            .aliases = (const char *const[]){"AxialImageTransformer", NULL},
            .reference = "AxialImageTransformer in axial_attention "
                         "(lucidrains/axial-attention 0.6.1)",
            .summary = "image transformer of axial attention and 3x3-conv feed-forwards, "
                       "reversible or plain residual",
            .params = ait_params,
            .has_weights = 1,
            .is_inner = 0,
        },
    .state_size = sizeof(ait_state),
    .init = ait_init,
    .plan = ait_plan_fn,
    .forward = ait_forward,
    .maps = &ait_maps,
};
