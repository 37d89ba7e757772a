/*
 * softmax.c — the exp loops of the softmax and of elu + 1, rounding as
 * torch's CPU kernels do where it matters (max-subtracted softmax).  Built
 * once per instruction-set variant (kernels/variant.h); core/cpu.c defines
 * attn__softmax_row, the double-sum softmaxes (attn__softmax_row_d, _rows_d,
 * _cols), attn__exp_sub_sum and attn__elu1 over the chosen one.
 * The sum's order follows the variant's vector width, so variants agree to
 * rounding, not bit for bit.  Rows of whole vectors (the 32–256-long rows
 * of attention) are worked in registers, one load and one store, with
 * kernels/vec_math.h's vexp (fast_exp lane for lane); the other exp loops
 * too run whole vectors through vexp and their tails through fast_exp.
 */
#include "cpu.h"
#include "kernels.h"
#include "fast_exp.h"
#include "variant.h"
#include "vec_math.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

ATTN_CPU_DECLARE(ATTN_VARIANT)

/* x[i] = fast_exp(x[i] - m[i]) (m per element, or one m when mstep is 0):
 * whole vectors by vexp (the same bits, with max / min clamps instead of
 * the blends GCC makes of the scalar selects), the tail by fast_exp. */
static void exp_sub(float *x, size_t n, const float *m, size_t mstep) {
    size_t i = 0;
    if (mstep)
        for (; i + VLEN <= n; i += VLEN) vstore(x + i, vexp(vload(x + i) - vload(m + i)));
    else
        for (const vf ms = vsplat(*m); i + VLEN <= n; i += VLEN) vstore(x + i, vexp(vload(x + i) - ms));
    for (; i < n; i++) x[i] = fast_exp(x[i] - m[i * mstep]);
}

/* The sum in VLEN lanes, then the lanes in order, then the tail. */
float ATTN_V(attn__exp_sub_sum)(float *x, size_t n, float m) {
    exp_sub(x, n, &m, 0);
    size_t i = 0;
    vf acc = vsplat(0.0f);
    for (; i + VLEN <= n; i += VLEN) acc += vload(x + i);
    float sum = 0.0f;
    for (int l = 0; l < VLEN; l++) sum += acc[l];
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* softmax_row for n = nv whole vectors (nv <= 16) in registers: one load,
 * one store; the sum's order (lanes, then the lanes folded) is its own. */
AI void row_regs(const int nv, float *x) {
    vf v[16];
    vf m = vsplat(-INFINITY);
    vi nan = {0};
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) {
        v[j] = vload(x + (size_t)j * VLEN);
        m = vselect(v[j] > m, v[j], m);
        nan |= v[j] != v[j];
    }
    float mx = m[0];
    bool any = nan[0] != 0;
    for (int i = 1; i < VLEN; i++) {
        mx = m[i] > mx ? m[i] : mx;
        any |= nan[i] != 0;
    }
    if (mx == -INFINITY || mx == INFINITY || any) {
        /* torch: an all -inf row, or one with +inf (inf - inf), is NaN */
        for (int j = 0; j < nv; j++) vstore(x + (size_t)j * VLEN, vsplat(NAN));
        return;
    }
    vf ms = vsplat(mx), acc = vsplat(0.0f);
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) {
        v[j] = vexp(v[j] - ms);
        acc += v[j];
    }
    float sum = 0.0f;
    for (int i = 0; i < VLEN; i++) sum += acc[i];
    const float inv = 1.0f / sum;
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) vstore(x + (size_t)j * VLEN, v[j] * inv);
}

void ATTN_V(attn__softmax_row)(float *x, size_t n) {
    if (n == 0) return;
    switch (n % VLEN ? 0 : n / VLEN) {
    case 1: row_regs(1, x); return;
    case 2: row_regs(2, x); return;
    case 3: row_regs(3, x); return;
    case 4: row_regs(4, x); return;
    case 8: row_regs(8, x); return;
    case 16: row_regs(16, x); return;
    default: break;
    }
    float mx = -INFINITY;
    bool nan = false;
#pragma omp simd reduction(max : mx) reduction(| : nan)
    for (size_t i = 0; i < n; i++) {
        mx = x[i] > mx ? x[i] : mx;
        nan |= x[i] != x[i];
    }
    if (mx == -INFINITY || mx == INFINITY || nan) {
        /* torch: an all -inf row, or one with +inf (inf - inf), is NaN */
        for (size_t i = 0; i < n; i++) x[i] = NAN;
        return;
    }
    float inv = 1.0f / ATTN_V(attn__exp_sub_sum)(x, n, mx);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

/* The column-by-column arithmetic of the strided softmax with libm's expf
 * (rows whose max is not finite: the same NaN or uniform rows as torch). */
static void softmax_strided_expf(float *x, size_t n, size_t stride) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = x[i * stride] > mx ? x[i * stride] : mx;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = expf(x[i * stride] - mx);
        x[i * stride] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) x[i * stride] *= inv;
}

void ATTN_V(attn__softmax_row_d)(float *x, size_t n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (!isfinite(mx)) {
        softmax_strided_expf(x, n, 1);
        return;
    }
    double sum = 0.0;
    /* In chunks that stay in L1: the exponentials, then their double sum. */
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        float *xc = x + i0;
        const size_t w = n - i0 < 256 ? n - i0 : 256;
        exp_sub(xc, w, &mx, 0);
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < w; i++) sum += (double)xc[i];
    }
    const float inv = (float)(1.0 / sum);
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

typedef float vhf __attribute__((vector_size(VLEN / 2 * sizeof(float))));
typedef double vd __attribute__((vector_size(VLEN / 2 * sizeof(double))));

/* A short row of nv vectors held in registers: one load, one store, the
 * arithmetic of the loops above lane for lane (scale, max, fast_exp, the
 * sum in double, the multiply by the float inverse); the sum's order is
 * its own.  false (x untouched) when the max is not finite: the caller's
 * general path gives those rows' NaN or uniform results. */
AI bool row_d_regs(const int nv, float *x, float scale) {
    vf v[16];
    vf m = vsplat(-INFINITY);
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) {
        v[j] = vload(x + (size_t)j * VLEN) * scale;
        vi gt = v[j] > m; /* NaN never wins, as in `x > m ? x : m` */
        m = vselect(gt, v[j], m);
    }
    float mx = m[0];
    for (int i = 1; i < VLEN; i++) mx = m[i] > mx ? m[i] : mx;
    if (!isfinite(mx)) return false;
    vf ms = vsplat(mx);
    vd acc = {0};
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) {
        v[j] = vexp(v[j] - ms);
        vhf lo, hi;
        memcpy(&lo, &v[j], sizeof lo);
        memcpy(&hi, (const char *)&v[j] + sizeof lo, sizeof hi);
        acc += __builtin_convertvector(lo, vd) + __builtin_convertvector(hi, vd);
    }
    double sum = 0.0;
    for (int i = 0; i < VLEN / 2; i++) sum += acc[i];
    const float inv = (float)(1.0 / sum);
#pragma GCC unroll 16
    for (int j = 0; j < nv; j++) vstore(x + (size_t)j * VLEN, v[j] * inv);
    return true;
}

void ATTN_V(attn__softmax_rows_d)(float *x, size_t rows, size_t n, size_t ld, float scale) {
    const size_t nv = n % VLEN == 0 ? n / VLEN : 0;
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        bool done;
        switch (nv) {
        case 1: done = row_d_regs(1, xr, scale); break;
        case 2: done = row_d_regs(2, xr, scale); break;
        case 4: done = row_d_regs(4, xr, scale); break;
        case 8: done = row_d_regs(8, xr, scale); break;
        case 16: done = row_d_regs(16, xr, scale); break;
        default: done = false;
        }
        if (done) continue;
#pragma omp simd
        for (size_t i = 0; i < n; i++) xr[i] *= scale;
        ATTN_V(attn__softmax_row_d)(xr, n);
    }
}

/* softmax_cols for n = nv whole vectors (nv <= 4), the running max and sums
 * in registers: the same arithmetic in the same order as the loops below
 * (each column's sum over the rows in row order), so the same bits.  false
 * (x scaled, nothing else) when a column's max is not finite. */
AI bool cols_regs(const int nv, float *x, size_t rows, size_t ld, float scale) {
    vf m[4];
    vd s[8];
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) m[j] = vsplat(-INFINITY);
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            vf v = vload(xr + (size_t)j * VLEN) * scale;
            vstore(xr + (size_t)j * VLEN, v);
            m[j] = vselect(v > m[j], v, m[j]);
        }
    }
    for (int j = 0; j < nv; j++)
        for (int i = 0; i < VLEN; i++)
            if (!isfinite(m[j][i])) return false;
#pragma GCC unroll 8
    for (int j = 0; j < 2 * nv; j++) s[j] = (vd){0};
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            vf e = vexp(vload(xr + (size_t)j * VLEN) - m[j]);
            vstore(xr + (size_t)j * VLEN, e);
            vhf lo, hi;
            memcpy(&lo, &e, sizeof lo);
            memcpy(&hi, (const char *)&e + sizeof lo, sizeof hi);
            s[2 * j] += __builtin_convertvector(lo, vd);
            s[2 * j + 1] += __builtin_convertvector(hi, vd);
        }
    }
    vf inv[4];
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) {
        vhf lo = __builtin_convertvector((vd){0} + 1.0 / s[2 * j], vhf);
        vhf hi = __builtin_convertvector((vd){0} + 1.0 / s[2 * j + 1], vhf);
        memcpy(&inv[j], &lo, sizeof lo);
        memcpy((char *)&inv[j] + sizeof lo, &hi, sizeof hi);
    }
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) vstore(xr + (size_t)j * VLEN, vload(xr + (size_t)j * VLEN) * inv[j]);
    }
    return true;
}

void ATTN_V(attn__softmax_cols)(float *x, size_t rows, size_t n, size_t ld, float scale, float *mx, double *sum) {
    if (n % VLEN == 0 && n / VLEN >= 1 && n / VLEN <= 4) {
        bool done;
        switch (n / VLEN) {
        case 1: done = cols_regs(1, x, rows, ld, scale); break;
        case 2: done = cols_regs(2, x, rows, ld, scale); break;
        case 3: done = cols_regs(3, x, rows, ld, scale); break;
        default: done = cols_regs(4, x, rows, ld, scale); break;
        }
        if (!done) /* x holds the scaled scores: the columns the expf way */
            for (size_t i = 0; i < n; i++) softmax_strided_expf(x + i, rows, ld);
        return;
    }
    for (size_t i = 0; i < n; i++) mx[i] = -INFINITY, sum[i] = 0.0;
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            xr[i] *= scale;
            mx[i] = xr[i] > mx[i] ? xr[i] : mx[i];
        }
    }
    bool finite = true;
    for (size_t i = 0; i < n; i++) finite &= isfinite(mx[i]) != 0;
    if (!finite) {
        for (size_t i = 0; i < n; i++) softmax_strided_expf(x + i, rows, ld);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        exp_sub(xr, n, mx, 1);
#pragma omp simd
        for (size_t i = 0; i < n; i++) sum[i] += (double)xr[i];
    }
    for (size_t i = 0; i < n; i++) mx[i] = (float)(1.0 / sum[i]);
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
#pragma omp simd
        for (size_t i = 0; i < n; i++) xr[i] *= mx[i];
    }
}

void ATTN_V(attn__elu1)(float *x, size_t n) {
    /* elu(x) + 1 = x + 1 above 0 and exp(x) below: vexp on whole vectors */
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) {
        vf v = vload(x + i);
        vstore(x + i, vselect(v > vsplat(0.0f), v + 1.0f, vexp(v)));
    }
    for (; i < n; i++) x[i] = x[i] > 0.0f ? x[i] + 1.0f : fast_exp(x[i]);
}

