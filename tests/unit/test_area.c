/*
 * test_area.c — the `area` and `multi_head_area` mechanisms.
 *
 * The grid test walks the reference's own test grid (8 key modes x 3 value
 * modes x max_area_height/width in {1,2,3} x memory_height in {1,2,4} x
 * top_k_areas in {0,3}, 16 keys, 8 queries) and compares every output with
 * a slow double-precision version written here from the paper's definitions
 * (areas enumerated cell by cell, no integral images).  Keys are quantised
 * to multiples of 1/8 so that the float32 integral images of the library
 * are exact and the area std agrees to rounding with the direct one.  Rows
 * whose k-th and (k+1)-th weights nearly tie are not compared (rounding may
 * legitimately pick either side); the test asserts that they are rare.
 */
#include "test_util.h"

#include <stdbool.h>

#include "kernels/kernels.h"

/* ---- helpers ---- */

/* Uniform in [lo, hi), rounded to a multiple of quant when quant > 0. */
static attn_tensor *rand_tensor(int rank, const int64_t *shape, uint64_t *seed, double lo,
                                double hi, double quant) {
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, rank, shape, &t, NULL), ATTN_OK);
    float *d = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        double x = lo + (hi - lo) * tu_urand(seed);
        d[i] = (float)(quant > 0 ? floor(x / quant) * quant : x);
    }
    return t;
}

static attn_tensor *t3(int64_t a, int64_t b, int64_t c, uint64_t *seed, double lo, double hi,
                       double quant) {
    const int64_t s[3] = {a, b, c};
    return rand_tensor(3, s, seed, lo, hi, quant);
}

/* A set holding q, k, v (stolen). */
static attn_tensor_set *qkv_set(attn_tensor *q, attn_tensor *k, attn_tensor *v) {
    attn_tensor_set *s = attn_tensor_set_new();
    assert_non_null(s);
    tu_add(s, "q", q);
    tu_add(s, "k", k);
    tu_add(s, "v", v);
    return s;
}

static const float *data_of(const attn_tensor_set *s, const char *name) {
    const attn_tensor *t = attn_tensor_set_get(s, name);
    assert_non_null(t);
    return t->data;
}

/* Adds a deterministic random weight under prefix+name; returns its data. */
static const float *add_weight(attn_tensor_set *w, const char *prefix, const char *name, int rank,
                               int64_t d0, int64_t d1, uint64_t *seed, double scale) {
    char full[160];
    const int64_t shape[2] = {d0, d1};
    snprintf(full, sizeof full, "%s%s", prefix, name);
    attn_tensor *t = rand_tensor(rank, shape, seed, -scale, scale, 0);
    tu_add(w, full, t);
    return t->data;
}

/* ---- the slow reference ---- */

static const char *const KEY_MODES[] = {"mean", "max", "sample", "concat", "max_concat",
                                        "sum", "sample_concat", "sample_sum"};
static const char *const VALUE_MODES[] = {"mean", "max", "sum"};

typedef struct ref_area {
    int kqs, H, W, MH, MW, topk;
    const char *kmode, *vmode;
    const float *eh, *ew, *w1, *b1, *w2, *b2; /* learned key modes */
} ref_area;

static bool learned(const char *mode) {
    return strcmp(mode, "concat") == 0 || strcmp(mode, "max_concat") == 0 ||
           strcmp(mode, "sum") == 0 || strcmp(mode, "sample_concat") == 0 ||
           strcmp(mode, "sample_sum") == 0;
}

/* Adds the learned-mode weights of r (when its key mode has them). */
static void ref_weights(ref_area *r, attn_tensor_set *w, const char *prefix, uint64_t *seed) {
    if (!learned(r->kmode)) return;
    int mult = strcmp(r->kmode, "concat") == 0 ? 3 : strstr(r->kmode, "concat") ? 2 : 1;
    r->eh = add_weight(w, prefix, "area_height_embedding.weight", 2, r->MH, r->kqs / 2, seed, 1);
    r->ew = add_weight(w, prefix, "area_width_embedding.weight", 2, r->MW, r->kqs / 2, seed, 1);
    r->w1 = add_weight(w, prefix, "area_key_embedding.0.weight", 2, r->kqs, mult * r->kqs, seed,
                       0.3);
    r->b1 = add_weight(w, prefix, "area_key_embedding.0.bias", 1, r->kqs, 0, seed, 0.3);
    r->w2 = add_weight(w, prefix, "area_key_embedding.2.weight", 2, r->kqs, r->kqs, seed, 0.3);
    r->b2 = add_weight(w, prefix, "area_key_embedding.2.bias", 1, r->kqs, 0, seed, 0.3);
}

static size_t ref_count(const ref_area *r) {
    size_t n = 0;
    for (int h = 1; h <= r->MH; h++)
        for (int w = 1; w <= r->MW; w++) n += (size_t)(r->H - h + 1) * (size_t)(r->W - w + 1);
    return n;
}

/* Mean, max, sum and std (sqrt(|E[x²] - E[x]²| + 1e-6)) of one area of
 * x (H*W, d) at (y0, x0) of size (h, w), straight over its cells. */
static void cell_stats(const ref_area *r, const float *x, size_t d, int y0, int x0, int h, int w,
                       size_t c, double st[4]) {
    double sum = 0, sq = 0, mx = -INFINITY;
    for (int y = y0; y < y0 + h; y++)
        for (int xx = x0; xx < x0 + w; xx++) {
            double val = x[((size_t)y * (size_t)r->W + (size_t)xx) * d + c];
            sum += val;
            sq += val * val;
            mx = val > mx ? val : mx;
        }
    double n = h * w, mean = sum / n;
    st[0] = mean;
    st[1] = mx;
    st[2] = sum;
    st[3] = sqrt(fabs(sq / n - mean * mean) + 1e-6);
}

/* Area keys (A, kw) and values (A, dv); kw is kqs for learned modes, else d. */
static void ref_areas(const ref_area *r, const float *k, size_t d, const float *v, size_t dv,
                      double *keys, double *vals) {
    const size_t C = (size_t)r->kqs, half = C / 2;
    const bool lrn = learned(r->kmode);
    double *feat = malloc(3 * C * sizeof *feat), *hid = malloc(C * sizeof *hid), st[4];
    size_t a = 0;
    for (int h = 1; h <= r->MH; h++)
        for (int w = 1; w <= r->MW; w++)
            for (int y = 0; y + h <= r->H; y++)
                for (int x = 0; x + w <= r->W; x++, a++) {
                    for (size_t c = 0; c < dv; c++) {
                        cell_stats(r, v, dv, y, x, h, w, c, st);
                        vals[a * dv + c] = strcmp(r->vmode, "mean") == 0  ? st[0]
                                           : strcmp(r->vmode, "max") == 0 ? st[1]
                                                                          : st[2];
                    }
                    if (!lrn) {
                        for (size_t c = 0; c < d; c++) {
                            cell_stats(r, k, d, y, x, h, w, c, st);
                            keys[a * d + c] = strcmp(r->kmode, "max") == 0 ? st[1] : st[0];
                        }
                        continue;
                    }
                    size_t F = 0;
                    const bool cat = strstr(r->kmode, "concat") != NULL;
                    for (size_t c = 0; c < C; c++) {
                        cell_stats(r, k, d, y, x, h, w, c, st);
                        double se = c < half ? r->eh[(size_t)(h - 1) * half + c]
                                             : r->ew[(size_t)(w - 1) * half + c - half];
                        if (strcmp(r->kmode, "concat") == 0) {
                            feat[c] = st[0];
                            feat[C + c] = st[3];
                            feat[2 * C + c] = se;
                        } else if (cat) { /* max_concat, sample_concat */
                            feat[c] = strcmp(r->kmode, "max_concat") == 0 ? st[1] : st[0];
                            feat[C + c] = se;
                        } else if (strcmp(r->kmode, "sum") == 0) {
                            feat[c] = se + st[0] + st[3];
                        } else {
                            feat[c] = st[0] + se;
                        }
                    }
                    F = strcmp(r->kmode, "concat") == 0 ? 3 * C : cat ? 2 * C : C;
                    for (size_t o = 0; o < C; o++) {
                        double s = r->b1[o];
                        for (size_t i = 0; i < F; i++) s += r->w1[o * F + i] * feat[i];
                        hid[o] = s > 0 ? s : 0;
                    }
                    for (size_t o = 0; o < C; o++) {
                        double s = r->b2[o];
                        for (size_t i = 0; i < C; i++) s += r->w2[o * C + i] * hid[i];
                        keys[a * C + o] = s;
                    }
                }
    free(feat);
    free(hid);
}

static int cmp_desc(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

/* One batch element: out (nq, dv); ok[i] false when row i's top-k
 * threshold nearly ties (relative gap < 1e-4) and cannot be compared. */
static void ref_forward(const ref_area *r, size_t nq, size_t d, size_t dv, const float *q,
                        const float *k, const float *v, double *out, bool *ok) {
    const size_t A = ref_count(r), kw = learned(r->kmode) ? (size_t)r->kqs : d;
    double *keys = malloc(A * kw * sizeof *keys), *vals = malloc(A * dv * sizeof *vals);
    double *wt = malloc(A * sizeof *wt), *sorted = malloc(A * sizeof *sorted);
    ref_areas(r, k, d, v, dv, keys, vals);
    for (size_t i = 0; i < nq; i++) {
        double mx = -INFINITY, sum = 0;
        for (size_t a = 0; a < A; a++) {
            double s = 0;
            for (size_t c = 0; c < kw; c++) s += q[i * d + c] * keys[a * kw + c];
            wt[a] = s / sqrt((double)r->kqs);
            mx = wt[a] > mx ? wt[a] : mx;
        }
        for (size_t a = 0; a < A; a++) sum += (wt[a] = exp(wt[a] - mx));
        for (size_t a = 0; a < A; a++) wt[a] /= sum;
        ok[i] = true;
        if (r->topk > 0) {
            size_t kk = (size_t)r->topk < A ? (size_t)r->topk : A;
            memcpy(sorted, wt, A * sizeof *wt);
            qsort(sorted, A, sizeof *sorted, cmp_desc);
            double thr = sorted[kk - 1];
            if (kk < A && (thr - sorted[kk]) < 1e-4 * thr) ok[i] = false;
            sum = 0;
            for (size_t a = 0; a < A; a++) sum += (wt[a] = wt[a] >= thr ? wt[a] : 0);
            for (size_t a = 0; a < A; a++) wt[a] /= sum;
        }
        for (size_t c = 0; c < dv; c++) {
            double s = 0;
            for (size_t a = 0; a < A; a++) s += wt[a] * vals[a * dv + c];
            out[i * dv + c] = s;
        }
    }
    free(keys);
    free(vals);
    free(wt);
    free(sorted);
}

static void cfg_json(const ref_area *r, char *buf, size_t cap) {
    snprintf(buf, cap,
             "{\"key_query_size\": %d, \"area_key_mode\": \"%s\", \"area_value_mode\": \"%s\", "
             "\"max_area_height\": %d, \"max_area_width\": %d, \"memory_height\": %d, "
             "\"memory_width\": %d, \"dropout_rate\": 0.2, \"top_k_areas\": %d}",
             r->kqs, r->kmode, r->vmode, r->MH, r->MW, r->H, r->W, r->topk);
}

/* ---- the reference's test grid ---- */

static void test_grid(void **state) {
    (void)state;
    enum { B = 4, NQ = 8, S = 16, D = 32, DV = 64 };
    const int heights[] = {1, 2, 4}, topks[] = {0, 3};
    size_t models = 0, rejected = 0, rows = 0, skipped = 0;
    double *ref = malloc(NQ * DV * sizeof *ref);
    bool ok[NQ];
    uint64_t seed = 12345;
    for (int km = 0; km < 8; km++)
        for (int vm = 0; vm < 3; vm++)
            for (int MH = 1; MH <= 3; MH++)
                for (int MW = 1; MW <= 3; MW++)
                    for (int hi = 0; hi < 3; hi++)
                        for (int ti = 0; ti < 2; ti++) {
                            ref_area r = {.kqs = D, .H = heights[hi], .W = S / heights[hi],
                                          .MH = MH, .MW = MW, .topk = topks[ti],
                                          .kmode = KEY_MODES[km], .vmode = VALUE_MODES[vm]};
                            char cfg[512];
                            cfg_json(&r, cfg, sizeof cfg);
                            attn_tensor_set *w = attn_tensor_set_new();
                            ref_weights(&r, w, "", &seed);
                            attn_model *m;
                            attn_error err;
                            attn_status st = tu_model_try("area", cfg, w, &m, &err);
                            if (MH > r.H || MW > r.W) {
                                /* The reference's test skips these as invalid. */
                                assert_int_equal(st, ATTN_E_CONFIG);
                                assert_non_null(strstr(err.msg, "max_area_"));
                                rejected++;
                                attn_tensor_set_free(w);
                                continue;
                            }
                            if (st) fail_msg("%s: %s", cfg, err.msg);
                            attn_tensor_set *in =
                                qkv_set(t3(B, NQ, D, &seed, -1, 1, 0),
                                        t3(B, S, D, &seed, -2, 2, 0.125),
                                        t3(B, S, DV, &seed, -1, 1, 0));
                            attn_tensor *out = tu_run_ok(m, in, 2);
                            assert_int_equal(out->rank, 3);
                            assert_int_equal(out->shape[0], B);
                            assert_int_equal(out->shape[1], NQ);
                            assert_int_equal(out->shape[2], DV);
                            const float *o = out->data;
                            for (size_t i = 0; i < out->numel; i++) assert_true(isfinite(o[i]));
                            for (int b = 0; b < B; b++) {
                                ref_forward(&r, NQ, D, DV, data_of(in, "q") + b * NQ * D,
                                            data_of(in, "k") + b * S * D,
                                            data_of(in, "v") + b * S * DV, ref, ok);
                                for (int i = 0; i < NQ; i++, rows++) {
                                    if (!ok[i]) {
                                        skipped++;
                                        continue;
                                    }
                                    for (int c = 0; c < DV; c++) {
                                        double e = ref[i * DV + c];
                                        double g = o[((size_t)b * NQ + (size_t)i) * DV + (size_t)c];
                                        if (fabs(g - e) > 1e-4 + 1e-4 * fabs(e))
                                            fail_msg("%s b=%d i=%d c=%d: got %.7g, want %.7g", cfg,
                                                     b, i, c, g, e);
                                    }
                                }
                            }
                            models++;
                            attn_tensor_free(out);
                            attn_tensor_set_free(in);
                            attn_model_free(m);
                            attn_tensor_set_free(w);
                        }
    free(ref);
    /* 8*3*3*2 * (1 + 2 + 3) valid (max_area_height, memory_height) pairs. */
    assert_int_equal(models, 864);
    assert_int_equal(rejected, 1296 - 864);
    assert_true(skipped * 100 < rows); /* near ties are rare: the comparison is real */
}

/* ---- invariants ---- */

/* With 1x1 areas every area is one item: mean/max/sample keys and any value
 * mode give plain softmax(q kᵀ / sqrt(d)) v. */
static void test_unit_areas_are_plain_attention(void **state) {
    (void)state;
    enum { B = 2, NQ = 5, H = 3, W = 4, D = 6, DV = 7 };
    uint64_t seed = 7;
    attn_tensor_set *in =
        qkv_set(t3(B, NQ, D, &seed, -1, 1, 0), t3(B, H * W, D, &seed, -1, 1, 0),
                t3(B, H * W, DV, &seed, -1, 1, 0));
    const float *q = data_of(in, "q"), *k = data_of(in, "k"), *v = data_of(in, "v");
    for (int km = 0; km < 3; km++)
        for (int vm = 0; vm < 3; vm++) {
            char cfg[256];
            snprintf(cfg, sizeof cfg,
                     "{\"key_query_size\": %d, \"area_key_mode\": \"%s\", \"area_value_mode\": "
                     "\"%s\", \"memory_height\": %d, \"memory_width\": %d}",
                     D, KEY_MODES[km], VALUE_MODES[vm], H, W);
            attn_model *m;
            attn_error err;
            assert_int_equal(tu_model_try("area", cfg, NULL, &m, &err), ATTN_OK);
            attn_tensor *out = tu_run_ok(m, in, 1);
            const float *o = out->data;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < NQ; i++) {
                    double p[H * W], mx = -INFINITY, sum = 0;
                    for (int s = 0; s < H * W; s++) {
                        p[s] = 0;
                        for (int c = 0; c < D; c++)
                            p[s] += q[(b * NQ + i) * D + c] * k[(b * H * W + s) * D + c];
                        p[s] /= sqrt((double)D);
                        mx = p[s] > mx ? p[s] : mx;
                    }
                    for (int s = 0; s < H * W; s++) sum += (p[s] = exp(p[s] - mx));
                    for (int c = 0; c < DV; c++) {
                        double e = 0;
                        for (int s = 0; s < H * W; s++)
                            e += p[s] / sum * v[(b * H * W + s) * DV + c];
                        assert_float_equal(o[(b * NQ + i) * DV + c], e, 1e-5);
                    }
                }
            attn_tensor_free(out);
            attn_model_free(m);
        }
    attn_tensor_set_free(in);
}

/* top_k_areas = 1 returns, for every query, the value of one area: the one
 * with the highest logit. */
static void test_top1_is_one_area(void **state) {
    (void)state;
    enum { B = 2, NQ = 6, H = 3, W = 5, D = 8, DV = 4 };
    uint64_t seed = 99;
    for (int vm = 0; vm < 3; vm++) {
        ref_area r = {.kqs = D, .H = H, .W = W, .MH = 2, .MW = 3, .topk = 1, .kmode = "max",
                      .vmode = VALUE_MODES[vm]};
        char cfg[512];
        cfg_json(&r, cfg, sizeof cfg);
        attn_model *m;
        attn_error err;
        assert_int_equal(tu_model_try("area", cfg, NULL, &m, &err), ATTN_OK);
        attn_tensor_set *in =
            qkv_set(t3(B, NQ, D, &seed, -1, 1, 0), t3(B, H * W, D, &seed, -2, 2, 0),
                    t3(B, H * W, DV, &seed, -1, 1, 0));
        attn_tensor *out = tu_run_ok(m, in, 1);
        const size_t A = ref_count(&r);
        double *keys = malloc(A * D * sizeof *keys), *vals = malloc(A * DV * sizeof *vals);
        for (int b = 0; b < B; b++) {
            ref_areas(&r, data_of(in, "k") + b * H * W * D, D, data_of(in, "v") + b * H * W * DV,
                      DV, keys, vals);
            for (int i = 0; i < NQ; i++) {
                const float *qi = data_of(in, "q") + (b * NQ + i) * D;
                const float *oi = (const float *)out->data + (b * NQ + i) * DV;
                size_t best = 0;
                double bestl = -INFINITY;
                for (size_t a = 0; a < A; a++) {
                    double l = 0;
                    for (int c = 0; c < D; c++) l += qi[c] * keys[a * D + (size_t)c];
                    if (l > bestl) bestl = l, best = a;
                }
                for (int c = 0; c < DV; c++) assert_float_equal(oi[c], vals[best * DV + c], 1e-5);
            }
        }
        free(keys);
        free(vals);
        attn_tensor_free(out);
        attn_tensor_set_free(in);
        attn_model_free(m);
    }
}

/* Largest |difference| between the outputs of two configs on the same
 * inputs; *bitwise tells whether they are identical. */
static double config_diff(const char *cfg_a, const char *cfg_b, bool *bitwise) {
    enum { B = 3, NQ = 4, H = 2, W = 6, D = 8, DV = 5 };
    uint64_t seed = 4242;
    attn_tensor_set *in = qkv_set(t3(B, NQ, D, &seed, -1, 1, 0), t3(B, H * W, D, &seed, -1, 1, 0),
                                  t3(B, H * W, DV, &seed, -1, 1, 0));
    attn_model *ma, *mb;
    attn_error err;
    assert_int_equal(tu_model_try("area", cfg_a, NULL, &ma, &err), ATTN_OK);
    assert_int_equal(tu_model_try("area", cfg_b, NULL, &mb, &err), ATTN_OK);
    attn_tensor *a = tu_run_ok(ma, in, 1), *b = tu_run_ok(mb, in, 1);
    assert_int_equal(a->numel, b->numel);
    *bitwise = memcmp(a->data, b->data, a->nbytes) == 0;
    double d = 0;
    for (size_t i = 0; i < a->numel; i++)
        d = fmax(d, fabs(((float *)a->data)[i] - ((float *)b->data)[i]));
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_set_free(in);
    attn_model_free(ma);
    attn_model_free(mb);
    return d;
}

#define GRID "\"key_query_size\": 8, \"memory_height\": 2, \"memory_width\": 6, "

static void test_eval_mode_equivalences(void **state) {
    (void)state;
    bool same;
    /* In eval, 'sample' is the mean with no noise, and dropout is off. */
    config_diff("{" GRID "\"area_key_mode\": \"sample\", \"max_area_width\": 3}",
                "{" GRID "\"area_key_mode\": \"mean\", \"max_area_width\": 3}", &same);
    assert_true(same);
    config_diff("{" GRID "\"max_area_height\": 2, \"dropout_rate\": 0.9}",
                "{" GRID "\"max_area_height\": 2}", &same);
    assert_true(same);
    /* top_k_areas <= 0 means all areas; k >= the area count keeps all. */
    config_diff("{" GRID "\"max_area_width\": 2, \"top_k_areas\": -3}",
                "{" GRID "\"max_area_width\": 2}", &same);
    assert_true(same);
    assert_true(config_diff("{" GRID "\"max_area_width\": 2, \"top_k_areas\": 1000}",
                            "{" GRID "\"max_area_width\": 2}", &same) < 1e-6);
    /* 1x1 areas: the sum, the mean and the max of one value are the value. */
    assert_true(config_diff("{" GRID "\"area_value_mode\": \"max\"}",
                            "{" GRID "\"area_value_mode\": \"mean\"}", &same) < 1e-6);
    /* ...whereas larger areas, or a top-k, do change the output. */
    assert_true(config_diff("{" GRID "\"area_value_mode\": \"max\", \"max_area_width\": 2}",
                            "{" GRID "\"area_value_mode\": \"mean\", \"max_area_width\": 2}",
                            &same) > 1e-3);
    assert_true(config_diff("{" GRID "\"top_k_areas\": 2}", "{" GRID "\"top_k_areas\": 0}", &same) >
                1e-3);
}

/* Keys of large magnitude make E[x²] - E[x]² from float32 integral images
 * pure rounding noise of either sign; the reference takes its absolute
 * value, so the std modes stay finite. */
static void test_std_of_large_keys_is_finite(void **state) {
    (void)state;
    enum { B = 2, NQ = 3, H = 3, W = 7, D = 6, DV = 2 };
    const char *modes[] = {"concat", "sum"};
    for (int mi = 0; mi < 2; mi++) {
        uint64_t seed = 31;
        ref_area r = {.kqs = D, .H = H, .W = W, .MH = 2, .MW = 3, .kmode = modes[mi],
                      .vmode = "mean"};
        char cfg[512];
        cfg_json(&r, cfg, sizeof cfg);
        attn_tensor_set *w = attn_tensor_set_new();
        ref_weights(&r, w, "", &seed);
        attn_model *m;
        attn_error err;
        assert_int_equal(tu_model_try("area", cfg, w, &m, &err), ATTN_OK);
        attn_tensor_set *in = qkv_set(t3(B, NQ, D, &seed, -0.01, 0.01, 0),
                                      t3(B, H * W, D, &seed, 3000, 3001, 0),
                                      t3(B, H * W, DV, &seed, -1, 1, 0));
        attn_tensor *out = tu_run_ok(m, in, 1);
        for (size_t i = 0; i < out->numel; i++) assert_true(isfinite(((float *)out->data)[i]));
        attn_tensor_free(out);
        attn_tensor_set_free(in);
        attn_model_free(m);
        attn_tensor_set_free(w);
    }
}

static void test_threads_agree(void **state) {
    (void)state;
    enum { B = 5, NQ = 3, S = 12, D = 8, DV = 6 };
    uint64_t seed = 5;
    ref_area r = {.kqs = D, .H = 3, .W = 4, .MH = 2, .MW = 2, .topk = 2, .kmode = "concat",
                  .vmode = "max"};
    char cfg[512];
    cfg_json(&r, cfg, sizeof cfg);
    attn_tensor_set *w = attn_tensor_set_new();
    ref_weights(&r, w, "", &seed);
    attn_model *m;
    attn_error err;
    assert_int_equal(tu_model_try("area", cfg, w, &m, &err), ATTN_OK);
    attn_tensor_set *in = qkv_set(t3(B, NQ, D, &seed, -1, 1, 0), t3(B, S, D, &seed, -1, 1, 0),
                                  t3(B, S, DV, &seed, -1, 1, 0));
    attn_tensor *a = tu_run_ok(m, in, 1), *b = tu_run_ok(m, in, 3);
    assert_memory_equal(a->data, b->data, a->nbytes);
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_set_free(in);
    /* One batch element of many queries is split into query blocks across
     * threads; the result must not change either. */
    in = qkv_set(t3(1, 300, D, &seed, -1, 1, 0), t3(1, S, D, &seed, -1, 1, 0),
                 t3(1, S, DV, &seed, -1, 1, 0));
    a = tu_run_ok(m, in, 1);
    b = tu_run_ok(m, in, 2);
    assert_int_equal(a->shape[1], 300);
    assert_memory_equal(a->data, b->data, a->nbytes);
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_set_free(in);
    attn_model_free(m);
    attn_tensor_set_free(w);
}

/* ---- multi_head_area ---- */

/* x (B, N, heads*d) -> out (B*heads, N, d), batch index b*heads + h. */
static void split_heads(const float *x, size_t B, size_t N, size_t heads, size_t d, float *out) {
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < heads; h++)
            for (size_t n = 0; n < N; n++)
                memcpy(out + ((b * heads + h) * N + n) * d, x + (b * N + n) * heads * d + h * d,
                       d * sizeof *out);
}

/* multi_head_area equals: project, split heads (b-major, as the reference's
 * permute + flatten), run the `area` model on the B*heads batch, gather the
 * heads back, project out. */
static void test_multi_head_is_heads_of_area(void **state) {
    (void)state;
    enum { B = 2, NQ = 3, HEADS = 3, KIN = 5, KH = 4, VIN = 6, VH = 3, MH = 2, MW = 3 };
    enum { S = MH * MW, HK = HEADS * KH, HV = HEADS * VH };
    const char *modes[][2] = {{"mean", "sum"}, {"max_concat", "mean"}, {"sample_sum", "max"}};
    for (int mi = 0; mi < 3; mi++)
        for (int topk = 0; topk <= 2; topk += 2) {
            uint64_t seed = 77 + (uint64_t)mi, wseed = 1000 + (uint64_t)mi;
            ref_area r = {.kqs = KH, .H = MH, .W = MW, .MH = 2, .MW = 2, .topk = topk,
                          .kmode = modes[mi][0], .vmode = modes[mi][1]};
            char inner[512], cfg[800];
            cfg_json(&r, inner, sizeof inner);
            snprintf(cfg, sizeof cfg,
                     "{\"area_attention\": %s, \"num_heads\": %d, \"key_query_size\": %d, "
                     "\"key_query_size_hidden\": %d, \"value_size\": %d, "
                     "\"value_size_hidden\": %d}",
                     inner, HEADS, KIN, KH, VIN, VH);
            attn_tensor_set *wm = attn_tensor_set_new(), *wa = attn_tensor_set_new();
            uint64_t s2 = wseed;
            ref_weights(&r, wm, "area_attention.", &wseed);
            ref_weights(&r, wa, "", &s2); /* the same numbers, unprefixed */
            const float *wq = add_weight(wm, "", "query_projection.weight", 2, HK, KIN, &seed, .5);
            const float *bq = add_weight(wm, "", "query_projection.bias", 1, HK, 0, &seed, .5);
            const float *wk = add_weight(wm, "", "key_projection.weight", 2, HK, KIN, &seed, .5);
            const float *bk = add_weight(wm, "", "key_projection.bias", 1, HK, 0, &seed, .5);
            const float *wv = add_weight(wm, "", "value_projection.weight", 2, HV, VIN, &seed, .5);
            const float *bv = add_weight(wm, "", "value_projection.bias", 1, HV, 0, &seed, .5);
            const float *wo = add_weight(wm, "", "output_projection.weight", 2, VIN, HV, &seed, .5);
            const float *bo = add_weight(wm, "", "output_projection.bias", 1, VIN, 0, &seed, .5);
            attn_model *mm, *ma;
            attn_error err;
            if (tu_model_try("multi_head_area", cfg, wm, &mm, &err)) fail_msg("%s", err.msg);
            if (tu_model_try("area", inner, wa, &ma, &err)) fail_msg("%s", err.msg);
            attn_tensor_set *in =
                qkv_set(t3(B, NQ, KIN, &seed, -1, 1, 0), t3(B, S, KIN, &seed, -1, 1, 0),
                        t3(B, S, VIN, &seed, -1, 1, 0));
            attn_tensor *got = tu_run_ok(mm, in, 2);
            assert_int_equal(got->shape[2], VIN);

            float Q[B * NQ * HK], K[B * S * HK], V[B * S * HV];
            attn__linear_reference(data_of(in, "q"), B * NQ, KIN, wq, bq, HK, Q);
            attn__linear_reference(data_of(in, "k"), B * S, KIN, wk, bk, HK, K);
            attn__linear_reference(data_of(in, "v"), B * S, VIN, wv, bv, HV, V);
            attn_tensor *hq = t3(B * HEADS, NQ, KH, &seed, 0, 1, 0);
            attn_tensor *hk = t3(B * HEADS, S, KH, &seed, 0, 1, 0);
            attn_tensor *hv = t3(B * HEADS, S, VH, &seed, 0, 1, 0);
            split_heads(Q, B, NQ, HEADS, KH, hq->data);
            split_heads(K, B, S, HEADS, KH, hk->data);
            split_heads(V, B, S, HEADS, VH, hv->data);
            attn_tensor_set *hin = qkv_set(hq, hk, hv);
            attn_tensor *ho = tu_run_ok(ma, hin, 1);
            float att[B * NQ * HV], want[B * NQ * VIN];
            for (size_t b = 0; b < B; b++)
                for (size_t h = 0; h < HEADS; h++)
                    for (size_t n = 0; n < NQ; n++)
                        memcpy(att + (b * NQ + n) * HV + h * VH,
                               (float *)ho->data + ((b * HEADS + h) * NQ + n) * VH,
                               VH * sizeof(float));
            attn__linear_reference(att, B * NQ, HEADS * VH, wo, bo, VIN, want);
            for (size_t i = 0; i < got->numel; i++)
                assert_float_equal(((float *)got->data)[i], want[i], 1e-5 + 1e-4 * fabs(want[i]));
            attn_tensor_free(got);
            attn_tensor_free(ho);
            attn_tensor_set_free(hin);
            attn_tensor_set_free(in);
            attn_model_free(mm);
            attn_model_free(ma);
            attn_tensor_set_free(wm);
            attn_tensor_set_free(wa);
        }
}

/* A mean/sum multi_head_area: weights for num_heads=2, kqs 4 -> 3, values 5 -> 2. */
static attn_tensor_set *mha_weights(bool with_output_bias) {
    uint64_t seed = 3;
    attn_tensor_set *w = attn_tensor_set_new();
    add_weight(w, "", "query_projection.weight", 2, 6, 4, &seed, 1);
    add_weight(w, "", "query_projection.bias", 1, 6, 0, &seed, 1);
    add_weight(w, "", "key_projection.weight", 2, 6, 4, &seed, 1);
    add_weight(w, "", "key_projection.bias", 1, 6, 0, &seed, 1);
    add_weight(w, "", "value_projection.weight", 2, 4, 5, &seed, 1);
    add_weight(w, "", "value_projection.bias", 1, 4, 0, &seed, 1);
    add_weight(w, "", "output_projection.weight", 2, 5, 4, &seed, 1);
    if (with_output_bias) add_weight(w, "", "output_projection.bias", 1, 5, 0, &seed, 1);
    return w;
}

#define MHA_REST \
    "\"num_heads\": 2, \"key_query_size\": 4, \"key_query_size_hidden\": 3, \"value_size\": 5, " \
    "\"value_size_hidden\": 2}"

static void test_multi_head_errors(void **state) {
    (void)state;
    attn_tensor_set *w = mha_weights(true), *w_nobias = mha_weights(false);
    attn_model *m;
    attn_error err;
    const struct {
        const char *cfg, *needle;
    } bad[] = {
        {"{" MHA_REST, "area_attention"},
        {"{\"area_attention\": 5, " MHA_REST, "area_attention"},
        {"{\"area_attention\": {\"key_query_size\": 3, \"colour\": 1}, " MHA_REST, "colour"},
        {"{\"area_attention\": {\"type\": \"full\", \"key_query_size\": 3}, " MHA_REST, "type"},
        {"{\"area_attention\": {\"key_query_size\": 3, \"max_area_height\": 2}, " MHA_REST,
         "max_area_height"},
        {"{\"area_attention\": {\"key_query_size\": 3}, \"num_heads\": 0, \"key_query_size\": 4, "
         "\"key_query_size_hidden\": 3, \"value_size\": 5, \"value_size_hidden\": 2}",
         "num_heads"},
        {"{\"area_attention\": {\"key_query_size\": 3}, \"num_heads\": 2, \"key_query_size\": 4, "
         "\"value_size\": 5, \"value_size_hidden\": 2}",
         "key_query_size_hidden"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tu_model_try("multi_head_area", bad[i].cfg, w, &m, &err), ATTN_E_CONFIG);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("'%s' not in '%s'", bad[i].needle, err.msg);
    }
    /* A learned key mode needs area_attention.key_query_size == key_query_size_hidden. */
    assert_int_equal(tu_model_try("multi_head_area",
                           "{\"area_attention\": {\"key_query_size\": 4, \"area_key_mode\": "
                           "\"sample_sum\"}, " MHA_REST, w, &m, &err),
                     ATTN_E_CONFIG);
    assert_non_null(strstr(err.msg, "key_query_size_hidden"));
    /* ... and its weights under "area_attention.", not bare. */
    attn_tensor_set *wl = mha_weights(true);
    uint64_t seed = 11;
    ref_area r = {.kqs = 4, .H = 1, .W = 1, .MH = 1, .MW = 1, .kmode = "sample_sum"};
    ref_weights(&r, wl, "", &seed);
    const char *lcfg = "{\"area_attention\": {\"key_query_size\": 4, \"area_key_mode\": "
                       "\"sample_sum\"}, \"num_heads\": 2, \"key_query_size\": 4, "
                       "\"key_query_size_hidden\": 4, \"value_size\": 5, \"value_size_hidden\": 2}";
    assert_int_equal(tu_model_try("multi_head_area", lcfg, wl, &m, &err), ATTN_E_WEIGHTS);
    assert_non_null(strstr(err.msg, "area_attention.area_"));
    attn_tensor_set_free(wl);
    /* Missing projection weight. */
    const char *ok = "{\"area_attention\": {\"key_query_size\": 3, \"memory_width\": 4, "
                     "\"max_area_width\": 2}, " MHA_REST;
    assert_int_equal(tu_model_try("multi_head_area", ok, w_nobias, &m, &err), ATTN_E_WEIGHTS);
    assert_non_null(strstr(err.msg, "output_projection.bias"));
    /* "type": "area" is accepted in the nested config. */
    assert_int_equal(tu_model_try("multi_head_area",
                           "{\"area_attention\": {\"type\": \"area\", \"key_query_size\": 3, "
                           "\"memory_width\": 4}, " MHA_REST, w, &m, &err),
                     ATTN_OK);
    attn_model_free(m);
    assert_int_equal(tu_model_try("multi_head_area", ok, w, &m, &err), ATTN_OK);
    assert_int_equal(attn_model_num_inputs(m), 3);
    assert_int_equal(attn_model_input(m, 1)->shape[1], 4); /* memory_width * memory_height */
    assert_int_equal(attn_model_output(m)->shape[2], 5);
    uint64_t s = 1;
    attn_tensor_set *in = qkv_set(t3(2, 3, 4, &s, 0, 1, 0), t3(2, 5, 4, &s, 0, 1, 0),
                                  t3(2, 4, 5, &s, 0, 1, 0));
    assert_int_equal(tu_run_status(m, in, &err), ATTN_E_SHAPE); /* 5 keys, memory holds 4 */
    attn_tensor_set_free(in);
    in = qkv_set(t3(2, 3, 4, &s, 0, 1, 0), t3(2, 4, 4, &s, 0, 1, 0), t3(2, 4, 3, &s, 0, 1, 0));
    assert_int_equal(tu_run_status(m, in, &err), ATTN_E_SHAPE); /* value_size is 5 */
    attn_tensor_set_free(in);
    in = qkv_set(t3(2, 3, 4, &s, 0, 1, 0), t3(2, 4, 4, &s, 0, 1, 0), t3(2, 4, 5, &s, 0, 1, 0));
    attn_tensor *a = tu_run_ok(m, in, 1), *b = tu_run_ok(m, in, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->shape[2], 5);
    assert_memory_equal(a->data, b->data, a->nbytes);
    attn_tensor_free(a);
    attn_tensor_free(b);
    attn_tensor_set_free(in);
    attn_model_free(m);
    attn_tensor_set_free(w);
    attn_tensor_set_free(w_nobias);
}

/* ---- area: config, weights and input errors ---- */

static void test_area_config_errors(void **state) {
    (void)state;
    const struct {
        const char *cfg, *needle;
    } bad[] = {
        {"{}", "key_query_size"},
        {"{\"key_query_size\": 8, \"bogus\": 1}", "bogus"},
        {"{\"key_query_size\": \"8\"}", "key_query_size"},
        {"{\"key_query_size\": 0}", "key_query_size"},
        {"{\"key_query_size\": 8, \"area_key_mode\": \"median\"}", "area_key_mode"},
        {"{\"key_query_size\": 8, \"area_value_mode\": \"concat\"}", "area_value_mode"},
        {"{\"key_query_size\": 8, \"memory_height\": 2, \"memory_width\": 3, "
         "\"max_area_height\": 3}",
         "max_area_height"},
        {"{\"key_query_size\": 8, \"max_area_width\": 2}", "max_area_width"},
        {"{\"key_query_size\": 8, \"max_area_height\": 0}", "max_area_height"},
        {"{\"key_query_size\": 8, \"memory_width\": 0}", "memory_width"},
        {"{\"key_query_size\": 8, \"dropout_rate\": 1.5}", "dropout_rate"},
        {"{\"key_query_size\": 7, \"area_key_mode\": \"concat\"}", "key_query_size"},
        {"{\"key_query_size\": 5, \"area_key_mode\": \"sum\"}", "key_query_size"},
    };
    attn_model *m;
    attn_error err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tu_model_try("area", bad[i].cfg, NULL, &m, &err), ATTN_E_CONFIG);
        assert_null(m);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("'%s' not in '%s'", bad[i].needle, err.msg);
    }
    /* Odd sizes are fine where no size embedding is involved; null = default. */
    assert_int_equal(tu_model_try("area", "{\"key_query_size\": 7, \"area_key_mode\": \"max\", "
                                   "\"top_k_areas\": null}", NULL, &m, &err),
                     ATTN_OK);
    attn_model_free(m);
    /* The reference class name resolves to the same mechanism. */
    assert_non_null(attn_mech_find("AreaAttention"));
    assert_string_equal(attn_mech_find("AreaAttention")->name, "area");
    assert_string_equal(attn_mech_find("MultiHeadAreaAttention")->name, "multi_head_area");
}

static void test_area_weight_errors(void **state) {
    (void)state;
    const char *cfg = "{\"key_query_size\": 4, \"area_key_mode\": \"max_concat\", "
                      "\"memory_height\": 2, \"memory_width\": 2, \"max_area_height\": 2}";
    attn_model *m;
    attn_error err;
    assert_int_equal(tu_model_try("area", cfg, NULL, &m, &err), ATTN_E_WEIGHTS);
    assert_non_null(strstr(err.msg, "area_"));
    uint64_t seed = 1;
    ref_area r = {.kqs = 4, .H = 2, .W = 2, .MH = 2, .MW = 1, .kmode = "max_concat"};
    attn_tensor_set *w = attn_tensor_set_new();
    ref_weights(&r, w, "", &seed);
    assert_int_equal(tu_model_try("area", cfg, w, &m, &err), ATTN_OK);
    attn_model_free(m);
    /* max_area_height 1 wants a (1, 2) height embedding, not (2, 2). */
    const char *cfg1 = "{\"key_query_size\": 4, \"area_key_mode\": \"max_concat\", "
                       "\"memory_height\": 2, \"memory_width\": 2}";
    assert_int_equal(tu_model_try("area", cfg1, w, &m, &err), ATTN_E_WEIGHTS);
    assert_non_null(strstr(err.msg, "area_height_embedding.weight"));
    /* A parameter-free mode has no use for them. */
    assert_int_equal(tu_model_try("area", "{\"key_query_size\": 4, \"memory_height\": 2, "
                                   "\"memory_width\": 2, \"max_area_height\": 2}", w, &m, &err),
                     ATTN_E_WEIGHTS);
    assert_non_null(strstr(err.msg, "unexpected"));
    attn_tensor_set_free(w);
}

static void test_area_input_errors(void **state) {
    (void)state;
    attn_model *m;
    attn_error err;
    assert_int_equal(tu_model_try("area", "{\"key_query_size\": 4, \"memory_height\": 2, "
                                   "\"memory_width\": 3, \"max_area_width\": 2}", NULL, &m, &err),
                     ATTN_OK);
    assert_int_equal(attn_model_num_inputs(m), 3);
    assert_string_equal(attn_model_input(m, 0)->name, "q");
    assert_string_equal(attn_model_input(m, 1)->name, "k");
    assert_string_equal(attn_model_input(m, 2)->name, "v");
    assert_int_equal(attn_model_input(m, 1)->shape[1], 6);
    assert_int_equal(attn_model_input(m, 1)->shape[2], 4);
    uint64_t s = 9;
    const struct {
        int64_t q[3], k[3], v[3];
        attn_status want;
    } cases[] = {
        {{2, 3, 4}, {2, 5, 4}, {2, 5, 3}, ATTN_E_SHAPE}, /* 5 keys, memory 2x3 */
        {{2, 3, 5}, {2, 6, 4}, {2, 6, 3}, ATTN_E_SHAPE}, /* q width */
        {{2, 3, 4}, {2, 6, 5}, {2, 6, 3}, ATTN_E_SHAPE}, /* k width */
        {{2, 3, 4}, {3, 6, 4}, {2, 6, 3}, ATTN_E_SHAPE}, /* batch */
        {{2, 3, 4}, {2, 6, 4}, {1, 6, 3}, ATTN_E_SHAPE}, /* batch of v */
        {{2, 3, 4}, {2, 6, 4}, {2, 7, 3}, ATTN_E_SHAPE}, /* values */
        {{2, 3, 4}, {2, 6, 4}, {2, 6, 3}, ATTN_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_tensor_set *in = qkv_set(rand_tensor(3, cases[i].q, &s, 0, 1, 0),
                                      rand_tensor(3, cases[i].k, &s, 0, 1, 0),
                                      rand_tensor(3, cases[i].v, &s, 0, 1, 0));
        assert_int_equal(tu_run_status(m, in, &err), cases[i].want);
        if (cases[i].want) assert_true(strlen(err.msg) > 0);
        attn_tensor_set_free(in);
    }
    /* Rank, dtype, a missing input. */
    attn_tensor_set *in = attn_tensor_set_new();
    const int64_t q2[2] = {3, 4};
    assert_int_equal(attn_tensor_set_add(in, "q", rand_tensor(2, q2, &s, 0, 1, 0), NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_add(in, "k", t3(1, 6, 4, &s, 0, 1, 0), NULL), ATTN_OK);
    assert_int_equal(tu_run_status(m, in, &err), ATTN_E_SHAPE);
    attn_tensor_set_free(in);
    in = attn_tensor_set_new();
    assert_int_equal(attn_tensor_set_add(in, "q", t3(1, 3, 4, &s, 0, 1, 0), NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_add(in, "k", t3(1, 6, 4, &s, 0, 1, 0), NULL), ATTN_OK);
    assert_int_equal(tu_run_status(m, in, &err), ATTN_E_INPUT);
    assert_non_null(strstr(err.msg, "'v'"));
    attn_tensor *vi;
    const int64_t vs[3] = {1, 6, 3};
    assert_int_equal(attn_tensor_new(ATTN_I32, 3, vs, &vi, NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_add(in, "v", vi, NULL), ATTN_OK);
    assert_int_equal(tu_run_status(m, in, &err), ATTN_E_DTYPE);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_area_config_errors),
        cmocka_unit_test(test_area_weight_errors),
        cmocka_unit_test(test_area_input_errors),
        cmocka_unit_test(test_unit_areas_are_plain_attention),
        cmocka_unit_test(test_top1_is_one_area),
        cmocka_unit_test(test_eval_mode_equivalences),
        cmocka_unit_test(test_std_of_large_keys_is_finite),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_multi_head_is_heads_of_area),
        cmocka_unit_test(test_multi_head_errors),
    };
    return cmocka_run_group_tests_name("area", tests, NULL, NULL);
}
