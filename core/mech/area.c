/*
 * area.c — AreaAttention (area_attention package): attention over areas of
 * a memory laid out as a (memory_height, memory_width) grid, where an area
 * is any rectangle of at most max_area_height × max_area_width items.
 *
 * Shapes: q (B,Nq,kqs), k (B,S,kqs), v (B,S,D) with S = memory_height ·
 * memory_width -> out (B,Nq,D).  Per batch element: area keys (A,kqs) and
 * area values (A,D) over the A areas, logits = q · keysᵀ / sqrt(kqs),
 * softmax, optional top-k filter and renormalisation, then · values.
 *
 * Area sums (for means, sums and the std of the concat/sum key modes) come
 * from one integral image per tensor, built in float32 exactly as the
 * reference builds it, so that the std of small areas (mostly rounding
 * noise of E[x²] - E[x]²) matches it.  Area maxima come from smaller areas:
 * a running max along rows gives every width, then a running max down the
 * columns gives every height, O(1) per area and feature whatever its size.
 *
 * Eval mode: dropout is ignored and the `sample*` key modes use the area
 * mean without noise, as the reference does when not training.
 */
#include "attn_internal.h"
#include "kernels/kernels.h"
#include "mech/area.h"
#include "workspace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM_MAX 2147483647.0
#define QBLOCK 128 /* queries per block of logits: bounds scratch whatever nq is */

const attn_param attn__area_params[] = {
    {"key_query_size", ATTN_P_INT, NULL, 1, DIM_MAX, NULL, "size of keys and queries"},
    {"area_key_mode", ATTN_P_STRING, "mean", 0, 0,
     "mean|max|sample|concat|max_concat|sum|sample_concat|sample_sum",
     "how an area's key is formed from its items' keys"},
    {"area_value_mode", ATTN_P_STRING, "sum", 0, 0, "mean|max|sum",
     "how an area's value is formed from its items' values"},
    {"max_area_height", ATTN_P_INT, "1", 1, DIM_MAX, NULL,
     "largest area height (<= memory_height)"},
    {"max_area_width", ATTN_P_INT, "1", 1, DIM_MAX, NULL, "largest area width (<= memory_width)"},
    {"memory_height", ATTN_P_INT, "1", 1, DIM_MAX, NULL, "rows of the memory grid"},
    {"memory_width", ATTN_P_INT, "1", 1, DIM_MAX, NULL, "columns of the memory grid"},
    {"dropout_rate", ATTN_P_FLOAT, "0.0", 0, 1, NULL, "accepted and ignored (eval mode)"},
    {"top_k_areas", ATTN_P_INT, "0", -DIM_MAX - 1, DIM_MAX, NULL,
     "attend only to the k highest-weighted areas; <= 0 means all"},
    {0},
};

static const char *const key_modes[] = {"mean", "max", "sample", "concat", "max_concat",
                                        "sum", "sample_concat", "sample_sum"};
static const char *const value_modes[] = {"mean", "max", "sum"};

static int mode_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

bool attn__area_learned(const area_cfg *a) {
    return a->key_mode >= AREA_KEY_CONCAT;
}

static bool key_needs_sum(const area_cfg *a) {
    return a->key_mode != AREA_KEY_MAX && a->key_mode != AREA_KEY_MAX_CONCAT;
}
static bool key_needs_std(const area_cfg *a) {
    return a->key_mode == AREA_KEY_CONCAT || a->key_mode == AREA_KEY_SUM;
}

/* Σ_{j=1..m} (n - j + 1): the positions of the shapes 1..m along a side of
 * n items (m <= n <= 2^31, so no overflow in 64 bits). */
static size_t side_positions(size_t n, size_t m) {
    return m * (n + 1) - m * (m + 1) / 2;
}

/* Number of areas: the shapes (h, w) factor, so the count is the product
 * of the positions along each side. */
static bool count_areas(const area_cfg *a, size_t *out) {
    return attn__mul(side_positions((size_t)a->mem_h, (size_t)a->max_h),
                     side_positions((size_t)a->mem_w, (size_t)a->max_w), out);
}

attn_status attn__area_parse(area_cfg *a, const attn_cfg *cfg) {
    const char *mech = cfg->mech;
    const char *kmode, *vmode;
    double dropout;
    attn_status st;
    memset(a, 0, sizeof *a);
    if ((st = attn__cfg_check_keys(cfg)) ||
        (st = attn__cfg_int(cfg, "key_query_size", &a->kqs, NULL)) ||
        (st = attn__cfg_string(cfg, "area_key_mode", &kmode)) ||
        (st = attn__cfg_string(cfg, "area_value_mode", &vmode)) ||
        (st = attn__cfg_int(cfg, "max_area_height", &a->max_h, NULL)) ||
        (st = attn__cfg_int(cfg, "max_area_width", &a->max_w, NULL)) ||
        (st = attn__cfg_int(cfg, "memory_height", &a->mem_h, NULL)) ||
        (st = attn__cfg_int(cfg, "memory_width", &a->mem_w, NULL)) ||
        (st = attn__cfg_float(cfg, "dropout_rate", &dropout, NULL)) ||
        (st = attn__cfg_int(cfg, "top_k_areas", &a->top_k, NULL)))
        return st;
    a->key_mode = mode_index(kmode, key_modes, 8);
    a->value_mode = mode_index(vmode, value_modes, 3);
    if (a->key_mode < 0 || a->value_mode < 0)
        return attn__err(cfg->err, ATTN_E_CONFIG, "%s: unknown area_key_mode or area_value_mode",
                         mech);
    /* The reference module itself runs with such a config (shapes that do
     * not fit just contribute no areas), but its own tests declare it
     * invalid ("can't be bigger than memory_height"), and so do we. */
    if (a->max_h > a->mem_h)
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "%s: max_area_height=%lld can't be bigger than memory_height=%lld", mech,
                         (long long)a->max_h, (long long)a->mem_h);
    if (a->max_w > a->mem_w)
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "%s: max_area_width=%lld can't be bigger than memory_width=%lld", mech,
                         (long long)a->max_w, (long long)a->mem_w);
    /* The size embedding is key_query_size/2 per side; with an odd size the
     * reference's features no longer fit area_key_embedding (its forward
     * fails), so such a config is refused up front. */
    if (attn__area_learned(a) && a->kqs % 2)
        return attn__err(cfg->err, ATTN_E_CONFIG,
                         "%s: key_query_size=%lld must be even for area_key_mode '%s'", mech,
                         (long long)a->kqs, kmode);
    if (!attn__mul((size_t)a->mem_h, (size_t)a->mem_w, &a->n_mem) || !count_areas(a, &a->n_areas))
        return attn__err(cfg->err, ATTN_E_OVERFLOW, "%s: memory grid %lldx%lld is too large", mech,
                         (long long)a->mem_h, (long long)a->mem_w);
    /* np.power(kqs, 0.5) in double; torch divides the float32 logits by it
     * rounded to float. */
    a->temperature = (float)sqrt((double)a->kqs);
    static const int feat_mult[] = {[AREA_KEY_CONCAT] = 3, [AREA_KEY_MAX_CONCAT] = 2,
                                    [AREA_KEY_SUM] = 1, [AREA_KEY_SAMPLE_CONCAT] = 2,
                                    [AREA_KEY_SAMPLE_SUM] = 1};
    if (attn__area_learned(a)) a->feat = (size_t)feat_mult[a->key_mode] * (size_t)a->kqs;
    return ATTN_OK;
}

attn_status attn__area_bind(area_cfg *a, attn_binder *b, const char *wprefix) {
    attn_status st;
    if (!attn__area_learned(a)) return ATTN_OK;
    char name[160];
    float *p[6];
    const int64_t half = a->kqs / 2;
    const int64_t shapes[6][2] = {{a->max_h, half}, {a->max_w, half}, {a->kqs, (int64_t)a->feat},
                                  {a->kqs, 0},      {a->kqs, a->kqs}, {a->kqs, 0}};
    static const char *const names[6] = {
        "area_height_embedding.weight", "area_width_embedding.weight",
        "area_key_embedding.0.weight",  "area_key_embedding.0.bias",
        "area_key_embedding.2.weight",  "area_key_embedding.2.bias"};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s%s", wprefix, names[i]);
        if ((st = attn__bind(b, name, shapes[i][1] ? 2 : 1, shapes[i], &p[i]))) return st;
    }
    a->h_embed = p[0];
    a->w_embed = p[1];
    a->w1 = p[2];
    a->b1 = p[3];
    a->w2 = p[4];
    a->b2 = p[5];
    return ATTN_OK;
}

/* ---- scratch ---- */

/* Byte offsets of one forward's buffers; SIZE_MAX marks an unused one. */
typedef struct area_layout {
    size_t acc;    /* W·C doubles: cumsum accumulators */
    size_t integ;  /* (H+1)(W+1)·C: the padded integral image */
    size_t rowmax; /* H·W·C: running row maxima */
    size_t kbase;  /* A·dk, learned modes: area mean or max of the keys */
    size_t kstd;   /* A·dk: area std of the keys (concat, sum) */
    size_t kfeat;  /* A·feat: key features (learned modes) */
    size_t khid;   /* A·kqs: hidden layer of area_key_embedding */
    size_t keys;   /* A·kw: the area keys (with_kv only) */
    size_t varea;  /* A·dv: the area values (with_kv only) */
    size_t logits; /* min(nq, QBLOCK)·A */
    size_t total;
} area_layout;

static bool reserve(size_t *total, size_t *off, size_t n1, size_t n2, size_t elem) {
    size_t bytes, end;
    size_t start = (*total + 7) & ~(size_t)7;
    if (start < *total || !attn__mul(n1, n2, &bytes) || !attn__mul(bytes, elem, &bytes) ||
        !attn__add(start, bytes, &end))
        return false;
    *off = start;
    *total = end;
    return true;
}

/* Width of the area keys: kqs for learned modes, else the keys' own dk. */
static size_t key_width(const area_cfg *a, size_t dk) {
    return attn__area_learned(a) ? (size_t)a->kqs : dk;
}

/* Scratch for building the areas of one batch element (plus, when with_kv,
 * room for the keys and values themselves) and for nq queries' logits. */
static bool layout_make(const area_cfg *a, size_t nq, size_t dk, size_t dv, bool with_kv,
                        area_layout *l) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w, A = a->n_areas;
    const bool vsum = a->value_mode != AREA_VALUE_MAX, ksum = key_needs_sum(a);
    size_t csum = 0, cmax = 0;
    if (ksum) csum = dk;
    if (vsum && dv > csum) csum = dv;
    if (!ksum) cmax = dk;
    if (!vsum && dv > cmax) cmax = dv;
    bool ok = true;
    memset(l, 0xff, sizeof *l);
    l->total = 0;
    if (csum) {
        ok = ok && reserve(&l->total, &l->acc, W, csum, sizeof(double));
        ok = ok && reserve(&l->total, &l->integ, (H + 1) * (W + 1), csum, sizeof(float));
    }
    if (cmax) ok = ok && reserve(&l->total, &l->rowmax, H * W, cmax, sizeof(float));
    if (key_needs_std(a)) ok = ok && reserve(&l->total, &l->kstd, A, dk, sizeof(float));
    if (attn__area_learned(a)) {
        ok = ok && reserve(&l->total, &l->kbase, A, dk, sizeof(float));
        ok = ok && reserve(&l->total, &l->kfeat, A, a->feat, sizeof(float));
        ok = ok && reserve(&l->total, &l->khid, A, (size_t)a->kqs, sizeof(float));
    }
    if (with_kv) {
        ok = ok && reserve(&l->total, &l->keys, A, key_width(a, dk), sizeof(float));
        ok = ok && reserve(&l->total, &l->varea, A, dv, sizeof(float));
    }
    if (nq) ok = ok && reserve(&l->total, &l->logits, nq < QBLOCK ? nq : QBLOCK, A, sizeof(float));
    if (ok) l->total = (l->total + 63) & ~(size_t)63;
    return ok;
}

#define BUF(T, base, off) ((off) == SIZE_MAX ? (T *)NULL : (T *)(void *)((base) + (off)))

attn_status attn__area_scratch(const area_cfg *a, size_t nq, size_t dk, size_t dv, size_t *bytes,
                               attn_error *err) {
    area_layout l;
    if (!layout_make(a, nq, dk, dv, true, &l))
        return attn__err(err, ATTN_E_OVERFLOW,
                         "area attention over %zu areas x %zu queries is too large", a->n_areas,
                         nq);
    *bytes = l.total;
    return ATTN_OK;
}

/* ---- area sums (integral images) ---- */

/* Sums over every area of the (H,W,C) grid f (row stride ld), or of its
 * squares.  As in the reference: a float32 cumsum along the width, then
 * along the height (torch accumulates each cumsum in double and rounds every
 * prefix to float), zero padding in front, and each area's sum as
 * (D + A) - (B + C) of its four corners in float32.
 *   integ (H+1, W+1, C), acc W·C doubles, out (A, C). */
static void area_sums(const area_cfg *a, const float *f, size_t ld, size_t C, bool square,
                      float *integ, double *acc, float *out) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w, rs = (W + 1) * C;
    memset(integ, 0, rs * sizeof *integ);
    for (size_t y = 0; y < H; y++) {
        float *row = integ + (y + 1) * rs;
        memset(row, 0, C * sizeof *row);
        for (size_t c = 0; c < C; c++) acc[c] = 0.0;
        for (size_t x = 0; x < W; x++) {
            const float *src = f + (y * W + x) * ld;
            float *dst = row + (x + 1) * C;
            for (size_t c = 0; c < C; c++) {
                float val = src[c];
                if (square) val = val * val; /* rounded to float, as x.square() is */
                acc[c] += val;
                dst[c] = (float)acc[c];
            }
        }
    }
    for (size_t j = 0; j < W * C; j++) acc[j] = 0.0;
    for (size_t y = 0; y < H; y++) {
        float *row = integ + (y + 1) * rs + C;
        for (size_t j = 0; j < W * C; j++) {
            acc[j] += row[j];
            row[j] = (float)acc[j];
        }
    }
    size_t i = 0;
    for (size_t h = 1; h <= (size_t)a->max_h; h++)
        for (size_t w = 1; w <= (size_t)a->max_w; w++)
            for (size_t y = 0; y + h <= H; y++)
                for (size_t x = 0; x + w <= W; x++, i++) {
                    const float *d = integ + (y + h) * rs + (x + w) * C; /* bottom right */
                    const float *g = integ + y * rs + x * C;             /* top left */
                    const float *t = integ + y * rs + (x + w) * C;       /* top right */
                    const float *l = integ + (y + h) * rs + x * C;       /* bottom left */
                    float *o = out + i * C;
                    for (size_t c = 0; c < C; c++) {
                        float pos = d[c] + g[c], neg = t[c] + l[c];
                        o[c] = pos - neg;
                    }
                }
}

/* sums (A,C) -> means in place; when sq (A,C) is given, sq -> std in place:
 * sqrt(|sq/n - mean²| + 1e-6), each step rounded to float as torch does. */
static void area_mean_std(const area_cfg *a, size_t C, float *sums, float *sq) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w;
    size_t i = 0;
    for (size_t h = 1; h <= (size_t)a->max_h; h++)
        for (size_t w = 1; w <= (size_t)a->max_w; w++) {
            const float size = (float)(h * w);
            const size_t n = (H - h + 1) * (W - w + 1);
            for (size_t j = 0; j < n * C; j++) {
                float mean = sums[i * C + j] / size;
                sums[i * C + j] = mean;
                if (!sq) continue;
                float s2n = sq[i * C + j] / size;
                float m2 = mean * mean;
                float var = s2n - m2;
                sq[i * C + j] = sqrtf(fabsf(var) + 1e-6f);
            }
            i += n;
        }
}

/* ---- area maxima ---- */

/* torch.max propagates NaN. */
static inline float max_nan(float x, float y) {
    return (x > y || x != x) ? x : y;
}

/* First area index of shape (h, w): the shapes of heights < h, then those
 * of height h and widths < w. */
static size_t shape_offset(const area_cfg *a, size_t h, size_t w) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w;
    return side_positions(H, h - 1) * side_positions(W, (size_t)a->max_w) +
           (H - h + 1) * side_positions(W, w - 1);
}

/* Max over every area of the (H,W,C) grid f (row stride ld) into out (A,C).
 * rowmax (H,W,C) holds, for the current width w, the max of the w items
 * starting at each (y, x); an area (h, w) is then the max of area (h-1, w)
 * and one more row of rowmax. */
static void area_max(const area_cfg *a, const float *f, size_t ld, size_t C, float *rowmax,
                     float *out) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w;
    for (size_t p = 0; p < H * W; p++) memcpy(rowmax + p * C, f + p * ld, C * sizeof *rowmax);
    for (size_t w = 1; w <= (size_t)a->max_w; w++) {
        const size_t nx = W - w + 1;
        if (w > 1)
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < nx; x++) {
                    float *r = rowmax + (y * W + x) * C;
                    const float *s = f + (y * W + x + w - 1) * ld;
                    for (size_t c = 0; c < C; c++) r[c] = max_nan(r[c], s[c]);
                }
        for (size_t h = 1; h <= (size_t)a->max_h; h++) {
            float *o = out + shape_offset(a, h, w) * C;
            const float *prev = h > 1 ? out + shape_offset(a, h - 1, w) * C : NULL;
            for (size_t y = 0; y + h <= H; y++)
                for (size_t x = 0; x < nx; x++) {
                    const float *r = rowmax + ((y + h - 1) * W + x) * C;
                    float *dst = o + (y * nx + x) * C;
                    if (!prev) {
                        memcpy(dst, r, C * sizeof *dst);
                    } else {
                        const float *pv = prev + (y * nx + x) * C;
                        for (size_t c = 0; c < C; c++) dst[c] = max_nan(pv[c], r[c]);
                    }
                }
        }
    }
}

/* ---- learned keys ---- */

/* torch.relu keeps NaN (attn__relu maps it to 0). */
static void relu_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* Key features (A, feat) of the learned modes from the area base (mean or
 * max, (A,kqs)), std (A,kqs) and the size embedding [height_emb[h-1],
 * width_emb[w-1]] (kqs), concatenated or summed in the reference's order. */
static void area_key_features(const area_cfg *a, const float *base, const float *std,
                              float *feat) {
    const size_t H = (size_t)a->mem_h, W = (size_t)a->mem_w, C = (size_t)a->kqs, half = C / 2;
    const size_t F = a->feat;
    size_t i = 0;
    for (size_t h = 1; h <= (size_t)a->max_h; h++)
        for (size_t w = 1; w <= (size_t)a->max_w; w++) {
            const float *eh = a->h_embed + (h - 1) * half, *ew = a->w_embed + (w - 1) * half;
            const size_t n = (H - h + 1) * (W - w + 1);
            for (size_t j = 0; j < n; j++, i++) {
                const float *m = base + i * C, *s = std ? std + i * C : NULL;
                float *o = feat + i * F;
                switch (a->key_mode) {
                case AREA_KEY_CONCAT: /* [mean, std, size] */
                    memcpy(o, m, C * sizeof *o);
                    memcpy(o + C, s, C * sizeof *o);
                    memcpy(o + 2 * C, eh, half * sizeof *o);
                    memcpy(o + 2 * C + half, ew, half * sizeof *o);
                    break;
                case AREA_KEY_MAX_CONCAT:    /* [max, size] */
                case AREA_KEY_SAMPLE_CONCAT: /* [mean, size] */
                    memcpy(o, m, C * sizeof *o);
                    memcpy(o + C, eh, half * sizeof *o);
                    memcpy(o + C + half, ew, half * sizeof *o);
                    break;
                case AREA_KEY_SUM: /* (size + mean) + std */
                    for (size_t c = 0; c < C; c++) {
                        float t = (c < half ? eh[c] : ew[c - half]) + m[c];
                        o[c] = t + s[c];
                    }
                    break;
                default: /* AREA_KEY_SAMPLE_SUM: mean + size */
                    for (size_t c = 0; c < C; c++) o[c] = m[c] + (c < half ? eh[c] : ew[c - half]);
                    break;
                }
            }
        }
}

/* ---- top-k ---- */

/* Order-preserving map of a float onto uint32 (NaN with the sign bit clear
 * ranks above +inf, as torch.topk ranks NaN first). */
static inline uint32_t float_key(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline float key_float(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The kk-th largest of row[0..n), 1 <= kk <= n: a radix select over the
 * four bytes of float_key, four linear passes and no extra memory. */
static float kth_largest(const float *row, size_t n, size_t kk) {
    uint32_t prefix = 0, mask = 0;
    size_t need = kk;
    for (int shift = 24; shift >= 0; shift -= 8) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++) {
            uint32_t key = float_key(row[i]);
            if ((key & mask) == prefix) cnt[(key >> shift) & 0xffu]++;
        }
        unsigned bin = 255;
        while (bin > 0 && cnt[bin] < need) need -= cnt[bin--];
        prefix |= (uint32_t)bin << shift;
        mask |= 0xffu << shift;
    }
    return key_float(prefix);
}

/* The reference's filter: keep weights >= the k-th largest (ties keep
 * more), then divide by their sum. */
static void top_k_filter(float *row, size_t n, size_t k) {
    const float thr = kth_largest(row, n, k < n ? k : n);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(row[i] >= thr)) row[i] = 0.0f;
        sum += row[i];
    }
    const float s = (float)sum;
    for (size_t i = 0; i < n; i++) row[i] = row[i] / s;
}

/* ---- forward ---- */

/* Area keys (A, kw) and values (A, dv) of one batch element, with the
 * scratch of layout l at base. */
static attn_status area_build(const area_cfg *a, size_t dk, size_t dv, const float *k, size_t ldk,
                              const float *v, size_t ldv, float *keys, float *vals,
                              const area_layout *l, char *base) {
    double *acc = BUF(double, base, l->acc);
    float *integ = BUF(float, base, l->integ), *rowmax = BUF(float, base, l->rowmax);
    float *kstd = BUF(float, base, l->kstd), *kfeat = BUF(float, base, l->kfeat);
    float *khid = BUF(float, base, l->khid);
    /* The pooled keys are the area keys, or the learned modes' input. */
    float *kbase = attn__area_learned(a) ? BUF(float, base, l->kbase) : keys;
    const size_t A = a->n_areas, C = (size_t)a->kqs;

    if (key_needs_sum(a)) {
        area_sums(a, k, ldk, dk, false, integ, acc, kbase);
        if (kstd) area_sums(a, k, ldk, dk, true, integ, acc, kstd);
        area_mean_std(a, dk, kbase, kstd);
    } else {
        area_max(a, k, ldk, dk, rowmax, kbase);
    }
    if (attn__area_learned(a)) {
        area_key_features(a, kbase, kstd, kfeat);
        attn_status st = attn__linear(kfeat, A, a->feat, a->w1, a->b1, C, khid);
        if (st) return st;
        relu_nan(khid, A * C);
        if ((st = attn__linear(khid, A, C, a->w2, a->b2, C, keys))) return st;
    }
    if (a->value_mode == AREA_VALUE_MAX) {
        area_max(a, v, ldv, dv, rowmax, vals);
    } else {
        area_sums(a, v, ldv, dv, false, integ, acc, vals);
        if (a->value_mode == AREA_VALUE_MEAN) area_mean_std(a, dv, vals, NULL);
    }
    return ATTN_OK;
}

/* Queries q (nq, dk) against built areas, QBLOCK queries at a time:
 * logits / temperature, softmax, top-k, then · values into out (nq, dv).
 * wmap (nq, A) or NULL: receives the final weights. */
static attn_status area_attend(const area_cfg *a, size_t nq, size_t dk, size_t dv, const float *q,
                               size_t ldq, const float *keys, const float *vals, float *out, size_t ldo,
                               float *logits, float *wmap) {
    const size_t A = a->n_areas;
    attn_status st;
    for (size_t q0 = 0; q0 < nq; q0 += QBLOCK) {
        const size_t nb = nq - q0 < QBLOCK ? nq - q0 : QBLOCK;
        if ((st = attn__gemm(0, 1, nb, A, dk, 1.0f, q + q0 * ldq, ldq, keys, dk, 0.0f, logits, A))) return st;
        for (size_t r = 0; r < nb; r++) {
            float *row = logits + r * A;
            for (size_t i = 0; i < A; i++) row[i] = row[i] / a->temperature;
            attn__softmax_row(row, A);
            if (a->top_k > 0) top_k_filter(row, A, (size_t)a->top_k);
            if (wmap) memcpy(wmap + (q0 + r) * A, row, A * sizeof *row);
        }
        if ((st = attn__gemm(0, 0, nb, dv, A, 1.0f, logits, A, vals, dv, 0.0f, out + q0 * ldo, ldo))) return st;
    }
    return ATTN_OK;
}

attn_status attn__area_forward(const area_cfg *a, size_t nq, size_t dk, size_t dv, const float *q,
                               size_t ldq, const float *k, size_t ldk, const float *v, size_t ldv,
                               float *out, size_t ldo, void *scratch, float *wmap) {
    area_layout l;
    char *base = scratch;
    (void)layout_make(a, nq, dk, dv, true, &l); /* checked by attn__area_scratch */
    float *keys = BUF(float, base, l.keys), *vals = BUF(float, base, l.varea);
    attn_status st = area_build(a, dk, dv, k, ldk, v, ldv, keys, vals, &l, base);
    return st ? st : area_attend(a, nq, dk, dv, q, ldq, keys, vals, out, ldo, BUF(float, base, l.logits), wmap);
}

/* ---- the `area` mechanism ---- */

typedef struct area_state {
    area_cfg cfg;
} area_state;

static attn_status area_init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    area_state *s = state;
    attn_status st = attn__area_parse(&s->cfg, cfg);
    if (st || (st = attn__area_bind(&s->cfg, b, ""))) return st;
    const int64_t S = (int64_t)s->cfg.n_mem, E = s->cfg.kqs;
    const int64_t qs[3] = {-1, -1, E}, ks[3] = {-1, S, E}, vs[3] = {-1, S, -1};
    if ((st = attn__model_add_input(m, "q", ATTN_F32, true, "B,Nq,key_query_size", 3, qs)) ||
        (st = attn__model_add_input(m, "k", ATTN_F32, true, "B,S,key_query_size", 3, ks)) ||
        (st = attn__model_add_input(m, "v", ATTN_F32, true, "B,S,D", 3, vs)))
        return st;
    attn__model_set_output(m, "B,Nq,D", 3, NULL);
    return ATTN_OK;
}

/* Two ways to spread a batch over ctx's threads: one task per batch element
 * (enough elements, or few queries), or, for a batch smaller than the thread
 * count with many queries, the areas of every element first (a task per
 * element) and then a task per (element, block of QBLOCK queries).  Both
 * do the same arithmetic on the same blocks, so they give the same bits. */
typedef struct area_job {
    const area_cfg *a;
    size_t nq, dk, dv, kw, nblocks;
    const float *q, *k, *v;
    float *out;
    float *wmap;        /* (B, nq, A) weights, or NULL */
    float *keys, *vals; /* split: (B, A, kw) and (B, A, dv) */
    area_layout build;  /* split: scratch of area_build alone */
    char *scratch;
    size_t per_worker;
} area_job;

static attn_status whole_task(void *arg, size_t b, int worker) {
    const area_job *j = arg;
    const size_t S = j->a->n_mem;
    return attn__area_forward(j->a, j->nq, j->dk, j->dv, j->q + b * j->nq * j->dk, j->dk,
                              j->k + b * S * j->dk, j->dk, j->v + b * S * j->dv, j->dv,
                              j->out + b * j->nq * j->dv, j->dv,
                              j->scratch + (size_t)worker * j->per_worker,
                              j->wmap ? j->wmap + b * j->nq * j->a->n_areas : NULL);
}

static attn_status build_task(void *arg, size_t b, int worker) {
    const area_job *j = arg;
    const size_t S = j->a->n_mem, A = j->a->n_areas;
    return area_build(j->a, j->dk, j->dv, j->k + b * S * j->dk, j->dk, j->v + b * S * j->dv, j->dv,
                      j->keys + b * A * j->kw, j->vals + b * A * j->dv, &j->build,
                      j->scratch + (size_t)worker * j->per_worker);
}

static attn_status attend_task(void *arg, size_t t, int worker) {
    const area_job *j = arg;
    const size_t A = j->a->n_areas, b = t / j->nblocks, q0 = (t % j->nblocks) * QBLOCK;
    const size_t nb = j->nq - q0 < QBLOCK ? j->nq - q0 : QBLOCK;
    return area_attend(j->a, nb, j->dk, j->dv, j->q + (b * j->nq + q0) * j->dk, j->dk,
                       j->keys + b * A * j->kw, j->vals + b * A * j->dv,
                       j->out + (b * j->nq + q0) * j->dv, j->dv,
                       (float *)(void *)(j->scratch + (size_t)worker * j->per_worker),
                       j->wmap ? j->wmap + (b * j->nq + q0) * A : NULL);
}

attn_status attn__area_inputs(const attn_model *m, const attn_tensor_set *in, area_inputs *x,
                              attn_error *err) {
    char s1[96], s2[96], s3[96];
    attn_status st;
    if ((st = attn__input(m, in, "q", &x->q, err)) || (st = attn__input(m, in, "k", &x->k, err)) ||
        (st = attn__input(m, in, "v", &x->v, err)))
        return st;
    if (x->k->shape[0] != x->q->shape[0] || x->v->shape[0] != x->q->shape[0])
        return attn__err(err, ATTN_E_SHAPE, "q %s, k %s and v %s must have the same batch size",
                         attn_shape_str(3, x->q->shape, s1, sizeof s1),
                         attn_shape_str(3, x->k->shape, s2, sizeof s2),
                         attn_shape_str(3, x->v->shape, s3, sizeof s3));
    x->B = (size_t)x->q->shape[0];
    x->nq = (size_t)x->q->shape[1];
    return ATTN_OK;
}

/* Sizes the split path; false when it does not fit in size_t. */
static bool split_sizes(area_job *j, size_t B, size_t *kv_floats) {
    size_t per_b, logits;
    if (!layout_make(j->a, 0, j->dk, j->dv, false, &j->build) ||
        !attn__mul(j->a->n_areas, j->kw + j->dv, &per_b) || !attn__mul(per_b, B, kv_floats) ||
        !attn__mul(j->a->n_areas, QBLOCK * sizeof(float), &logits))
        return false;
    j->per_worker = j->build.total > logits ? j->build.total : logits;
    return attn__add(j->per_worker, 63, &j->per_worker) && (j->per_worker &= ~(size_t)63, true);
}

/* The job of a forward on `threads` and its workspace: the split path's
 * area keys and values, then per-worker scratch. */
typedef struct area_plan {
    area_inputs x;
    area_job j;
    bool split;
    size_t tasks, kv, scratch, bytes;
} area_plan;

static attn_status plan_make(const attn_model *m, const area_state *s, const attn_tensor_set *in,
                             int threads, area_plan *p, attn_error *err) {
    attn_status st;
    if ((st = attn__area_inputs(m, in, &p->x, err))) return st;
    area_job *j = &p->j;
    *j = (area_job){.a = &s->cfg, .nq = p->x.nq, .dk = (size_t)s->cfg.kqs,
                    .dv = (size_t)p->x.v->shape[2], .q = p->x.q->data, .k = p->x.k->data,
                    .v = p->x.v->data};
    const size_t B = p->x.B;
    j->kw = key_width(j->a, j->dk);
    j->nblocks = (j->nq + QBLOCK - 1) / QBLOCK;
    p->split = j->nblocks > 1 && attn__workers_of(threads, B) < attn__workers_of(threads, SIZE_MAX);
    size_t kv_floats = 0;
    p->tasks = B;
    if (p->split) {
        if (!attn__mul(B, j->nblocks, &p->tasks) || !split_sizes(j, B, &kv_floats))
            return attn__err(err, ATTN_E_OVERFLOW, "area: %zu areas are too many", j->a->n_areas);
    } else if ((st = attn__area_scratch(j->a, j->nq, j->dk, j->dv, &j->per_worker, err))) {
        return st;
    }
    attn_ws_layout y = {0};
    p->kv = attn__ws_region(&y, kv_floats, sizeof(float));
    p->scratch = attn__ws_region(&y, (size_t)attn__workers_of(threads, p->tasks), j->per_worker);
    return attn__ws_size(&y, "area", &p->bytes, err);
}

static attn_status area_plan_fn(const attn_model *m, const void *state, const attn_tensor_set *in,
                                int threads, attn_plan *out, attn_error *err) {
    area_plan p;
    attn_status st = plan_make(m, state, in, threads, &p, err);
    if (st) return st;
    *out = (attn_plan){.rank = 3, .shape = {p.x.q->shape[0], p.x.q->shape[1], p.x.v->shape[2]},
                       .ws_bytes = p.bytes};
    return ATTN_OK;
}

/* The forward; maps[1] (B, Nq, A) receives the weights, maps[2] the
 * areas' geometry (either may be NULL). */
static attn_status area_forward_maps(const attn_model *m, const void *state, attn_ctx *ctx,
                                     const attn_tensor_set *in, float *out, void *ws, float *const *maps,
                                     attn_error *err) {
    const area_state *s = state;
    area_plan p;
    attn_status st = plan_make(m, state, in, attn_ctx_threads(ctx), &p, err);
    if (st) return st;
    area_job *j = &p.j;
    j->out = out;
    j->wmap = maps ? maps[1] : NULL;
    if (maps && maps[2]) attn__area_geometry(&s->cfg, maps[2]);
    j->scratch = attn__ws_at(ws, p.scratch);
    if (!p.split) return attn__parallel_for(ctx, p.x.B, whole_task, j);
    j->keys = attn__ws_at(ws, p.kv);
    j->vals = j->keys + p.x.B * j->a->n_areas * j->kw;
    st = attn__parallel_for(ctx, p.x.B, build_task, j);
    if (!st) st = attn__parallel_for(ctx, p.tasks, attend_task, j);
    return st;
}

static attn_status area_forward(const attn_model *m, const void *state, attn_ctx *ctx,
                                const attn_tensor_set *in, float *out, void *ws, attn_error *err) {
    return area_forward_maps(m, state, ctx, in, out, ws, NULL, err);
}

/* ---- the attention maps ---- */

void attn__area_geometry(const area_cfg *a, float *geo) {
    size_t i = 0;
    for (int64_t h = 1; h <= a->max_h; h++)
        for (int64_t w = 1; w <= a->max_w; w++)
            for (int64_t t = 0; t + h <= a->mem_h; t++)
                for (int64_t l = 0; l + w <= a->mem_w; l++, i++) {
                    geo[4 * i] = (float)t;
                    geo[4 * i + 1] = (float)l;
                    geo[4 * i + 2] = (float)h;
                    geo[4 * i + 3] = (float)w;
                }
}

static const attn_out_decl area_outputs[] = {
    {"attention", "B,Nq,A",
     "each query's weights over the A areas (after the top-k filter and its renormalisation)"},
    {"attention_areas", "A,4",
     "area a's top row, left column, height and width on the memory grid (row a: top, left, h, w)"},
    {0},
};

static attn_status area_maps_shape(const attn_model *m, const void *state, const attn_tensor_set *in,
                                   const attn_qkv *a, size_t i, int *rank, int64_t *shape, attn_error *err) {
    const area_state *s = state;
    area_inputs x;
    attn_status st = attn__area_inputs(m, in, &x, err);
    if (st) return st;
    if (i == 1) {
        *rank = 3;
        shape[0] = (int64_t)x.B, shape[1] = (int64_t)x.nq, shape[2] = (int64_t)s->cfg.n_areas;
    } else {
        *rank = 2;
        shape[0] = (int64_t)s->cfg.n_areas, shape[1] = 4;
    }
    return ATTN_OK;
}

static const attn_maps_ops area_maps = {
    .outputs = area_outputs, .shape = area_maps_shape, .forward = area_forward_maps};

const attn_mech attn_mech_area = {
    .info = {.name = "area",
             .aliases = (const char *const[]){"area-attention", "AreaAttention", NULL},
             .reference = "AreaAttention in area_attention",
             .summary = "attention over rectangular areas of a 1-D or 2-D memory grid "
                        "(area keys by mean/max/sample/concat/sum, values by mean/max/sum, top-k)",
             .params = attn__area_params,
             .has_weights = 1,
             .is_inner = 0},
    .state_size = sizeof(area_state),
    .init = area_init,
    .plan = area_plan_fn,
    .forward = area_forward,
    .maps = &area_maps,
};
