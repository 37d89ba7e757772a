/*
 * rowops.c — the element-wise loops of the mechanisms that are not
 * products: AFT's running max, exp-weighted sums (of rows, and of the
 * segments' partial sums) and sigmoid gate, a dot product, the
 * weighted row sums, products and scalings of the sparse and windowed
 * mechanisms (axpy, vmul, scale), a dot
 * product, axial_positional_embedding's row sums, and clustering's Hamming
 * nearest centroid.  Built once per instruction-set
 * variant (kernels/variant.h), like softmax.c: these loops are fast only
 * when vectorised (the exp) or given POPCNT, which a `PORTABLE=1` build's
 * baseline flags do not allow in the mechanisms' own files.  core/cpu.c
 * defines the plain names over the chosen variant.
 *
 * Rounding: the exp is fast_exp lane for lane (vec_math.h's vexp on whole
 * vectors), the same bits in every variant; attn__dot's sum follows the
 * variant's vector width (variants agree to rounding, not bit for bit).
 * No multiply-add is contracted (this file is built without
 * -ffp-contract=fast).
 */
#include "cpu.h"
#include "kernels.h"
#include "fast_exp.h"
#include "variant.h"
#include "vec_math.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

ATTN_CPU_DECLARE(ATTN_VARIANT)

/* The exp loops below run whole vectors through vec_math.h's vexp (fast_exp
 * operation for operation, its clamps as max / min) and the tail through
 * fast_exp: the same bits as the scalar loop, without the blends that the
 * vectorised scalar selects cost. */
void ATTN_V(attn__exp_sum_acc)(const float *k, const float *msub, const float *v, float *sum, float *acc,
                               size_t n) {
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) {
        vf y = vexp(vload(k + i) - vload(msub + i));
        vstore(sum + i, vload(sum + i) + y);
        vstore(acc + i, vload(acc + i) + y * vload(v + i));
    }
    for (; i < n; i++) {
        float y = fast_exp(k[i] - msub[i]);
        sum[i] += y;
        acc[i] += y * v[i];
    }
}

void ATTN_V(attn__exp_weight_acc)(const float *m, const float *M, const float *s, const float *a, float *sum,
                                  float *acc, size_t n) {
    size_t i = 0;
    const vf ninf = vsplat(-INFINITY), zero = vsplat(0.0f);
    for (; i + VLEN <= n; i += VLEN) {
        vf mi = vload(m + i);
        vf w = vselect(mi == ninf, zero, vexp(mi - vload(M + i)));
        vstore(sum + i, vload(sum + i) + w * vload(s + i));
        vstore(acc + i, vload(acc + i) + w * vload(a + i));
    }
    for (; i < n; i++) {
        float w = m[i] == -INFINITY ? 0.0f : fast_exp(m[i] - M[i]);
        sum[i] += w * s[i];
        acc[i] += w * a[i];
    }
}

void ATTN_V(attn__max_into)(float *m, const float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) m[i] = x[i] > m[i] ? x[i] : m[i];
}

void ATTN_V(attn__gate_div)(const float *x, const float *q, float *o, size_t n) {
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) vstore(o + i, vload(x + i) / (vsplat(1.0f) + vexp(-vload(q + i))));
    for (; i < n; i++) o[i] = x[i] / (1.0f + fast_exp(-q[i]));
}

void ATTN_V(attn__axpy)(float *o, float w, const float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) o[i] += w * x[i];
}

void ATTN_V(attn__vmul)(float *o, const float *a, const float *b, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) o[i] = a[i] * b[i];
}

void ATTN_V(attn__scale)(float *x, float s, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

float ATTN_V(attn__dot)(const float *a, const float *b, size_t n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* axial_positional_embedding's rows (kernels.h, attn__pos_rows): each
 * operand's stride inside a row (0 or 1) fixed at compile time, so that a
 * row is one vector loop. */
typedef void (*pos_run_fn)(float *restrict o, const float *restrict x, const float *restrict p0,
                           const float *restrict p1, size_t W, size_t rows, size_t xs, size_t s0,
                           size_t s1);
#define POS_RUN1(XW, P0W)                                                                          \
    static void pos_run1_##XW##P0W(float *restrict o, const float *restrict x,                     \
                                   const float *restrict p0, const float *restrict p1, size_t W,   \
                                   size_t rows, size_t xs, size_t s0, size_t s1) {                 \
        (void)p1, (void)s1;                                                                        \
        for (size_t r = 0; r < rows; r++, o += W, x += xs, p0 += s0) {                             \
            _Pragma("omp simd") for (size_t c = 0; c < W; c++) o[c] = x[c * XW] + p0[c * P0W];    \
        }                                                                                          \
    }
#define POS_RUN2(XW, P0W, P1W)                                                                     \
    static void pos_run2_##XW##P0W##P1W(float *restrict o, const float *restrict x,                \
                                        const float *restrict p0, const float *restrict p1,        \
                                        size_t W, size_t rows, size_t xs, size_t s0, size_t s1) {  \
        for (size_t r = 0; r < rows; r++, o += W, x += xs, p0 += s0, p1 += s1) {                   \
            _Pragma("omp simd") for (size_t c = 0; c < W; c++) o[c] =                              \
                (x[c * XW] + p0[c * P0W]) + p1[c * P1W];                                           \
        }                                                                                          \
    }
POS_RUN1(0, 0) POS_RUN1(0, 1) POS_RUN1(1, 0) POS_RUN1(1, 1)
POS_RUN2(0, 0, 0) POS_RUN2(0, 0, 1) POS_RUN2(0, 1, 0) POS_RUN2(0, 1, 1)
POS_RUN2(1, 0, 0) POS_RUN2(1, 0, 1) POS_RUN2(1, 1, 0) POS_RUN2(1, 1, 1)
static const pos_run_fn pos_run1_fns[4] = {pos_run1_00, pos_run1_01, pos_run1_10, pos_run1_11};
static const pos_run_fn pos_run2_fns[8] = {pos_run2_000, pos_run2_001, pos_run2_010, pos_run2_011,
                                           pos_run2_100, pos_run2_101, pos_run2_110, pos_run2_111};

void ATTN_V(attn__pos_rows)(int n, unsigned code, float *o, const float *x, const float *p0, const float *p1,
                            size_t W, size_t rows, size_t xs, size_t s0, size_t s1) {
    (n == 1 ? pos_run1_fns[code & 3] : pos_run2_fns[code & 7])(o, x, p0, p1, W, rows, xs, s0, s1);
}

void ATTN_V(attn__hamming_nearest)(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K,
                                   int32_t *labels) {
    for (size_t l = 0; l < n; l++) {
        const uint64_t h = hash[l];
        int best = 65;
        int32_t arg = 0;
        for (size_t k = 0; k < K; k++) {
            int d = __builtin_popcountll(h ^ centroids[k]);
            if (d < best) {
                best = d;
                arg = (int32_t)k;
            }
        }
        labels[l] = arg;
    }
}
