/*
 * conv2d.c — 2-D convolution as im2col + sgemm (see conv2d.h for shapes).
 *
 * Why im2col: the products are then one cblas_sgemm of (c_out x K) by
 * (K x rows*w_out), K = c_in*k_h*k_w, which is as fast as anything hand
 * written here and sums each output in the same order for every pixel.
 */
#include "kernels/conv2d.h"

#include "attn_internal.h"
#include "kernels/kernels.h"

#include <string.h>

bool attn__conv2d_prepare(attn_conv2d *c, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (!c->c_in || !c->c_out) return *why = "channel counts must be positive", false;
    if (!c->k_h || !c->k_w) return *why = "kernel size must be positive", false;
    if (!c->stride_h || !c->stride_w) return *why = "stride must be positive", false;
    if (!c->dil_h || !c->dil_w) return *why = "dilation must be positive", false;
    size_t ph, pw, eh, ew;
    /* padded input and dilated kernel extents, overflow-checked */
    if (!attn__mul(c->pad_h, 2, &ph) || !attn__add(ph, c->h_in, &ph) ||
        !attn__mul(c->pad_w, 2, &pw) || !attn__add(pw, c->w_in, &pw) ||
        !attn__mul(c->dil_h, c->k_h - 1, &eh) || !attn__mul(c->dil_w, c->k_w - 1, &ew))
        return *why = "sizes overflow", false;
    if (eh >= ph || ew >= pw)
        return *why = "kernel size can't be greater than the padded input size", false;
    c->h_out = (ph - eh - 1) / c->stride_h + 1;
    c->w_out = (pw - ew - 1) / c->stride_w + 1;
    return true;
}

static bool is_pointwise(const attn_conv2d *c) {
    return c->k_h == 1 && c->k_w == 1 && c->stride_h == 1 && c->stride_w == 1 && c->pad_h == 0 &&
           c->pad_w == 0;
}

bool attn__conv2d_workspace(const attn_conv2d *c, size_t rows, size_t *floats) {
    if (is_pointwise(c)) {
        *floats = 0;
        return true;
    }
    size_t n;
    return attn__mul(c->c_in, c->k_h, &n) && attn__mul(n, c->k_w, &n) && attn__mul(n, rows, &n) &&
           attn__mul(n, c->w_out, floats);
}

/* Output columns [lo, hi) whose input column ox*stride + d lies inside
 * [0, w); the others read padding. */
static void valid_range(size_t w_out, size_t stride, long long d, size_t w, size_t *lo,
                        size_t *hi) {
    long long s = (long long)stride, a = d < 0 ? (-d + s - 1) / s : 0;
    long long b = (long long)w - d <= 0 ? 0 : ((long long)w - d + s - 1) / s;
    if (b > (long long)w_out) b = (long long)w_out;
    if (a > b) a = b;
    *lo = (size_t)a;
    *hi = (size_t)b;
}

/* col (K, rows*w_out): col[(ci,ky,kx)][(oy-row0)*w_out + ox] = x[ci][iy][ix]
 * with iy = oy*stride - pad + ky*dil (zero outside the image). */
static void im2col(const attn_conv2d *c, const float *x, float *col, size_t row0, size_t row1) {
    size_t ncol = (row1 - row0) * c->w_out;
    for (size_t ci = 0; ci < c->c_in; ci++) {
        const float *xc = x + ci * c->h_in * c->w_in;
        for (size_t ky = 0; ky < c->k_h; ky++)
            for (size_t kx = 0; kx < c->k_w; kx++) {
                float *dst = col + ((ci * c->k_h + ky) * c->k_w + kx) * ncol;
                /* offsets as signed: a padded position can lie before the image */
                long long dy = (long long)(ky * c->dil_h) - (long long)c->pad_h;
                long long dx = (long long)(kx * c->dil_w) - (long long)c->pad_w;
                size_t lo, hi;
                valid_range(c->w_out, c->stride_w, dx, c->w_in, &lo, &hi);
                for (size_t oy = row0; oy < row1; oy++) {
                    long long iy = (long long)(oy * c->stride_h) + dy;
                    float *d = dst + (oy - row0) * c->w_out;
                    if (iy < 0 || iy >= (long long)c->h_in) {
                        memset(d, 0, c->w_out * sizeof *d);
                        continue;
                    }
                    const float *xr = xc + (long long)iy * (long long)c->w_in + dx;
                    for (size_t ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                    if (c->stride_w == 1)
                        memcpy(d + lo, xr + lo, (hi - lo) * sizeof *d);
                    else
                        for (size_t ox = lo; ox < hi; ox++) d[ox] = xr[ox * c->stride_w];
                    for (size_t ox = hi; ox < c->w_out; ox++) d[ox] = 0.0f;
                }
            }
    }
}

void attn__conv2d_reference(const attn_conv2d *c, const float *x, const float *weight, const float *bias,
                            float *y) {
    for (size_t co = 0; co < c->c_out; co++)
        for (size_t oy = 0; oy < c->h_out; oy++)
            for (size_t ox = 0; ox < c->w_out; ox++) {
                double s = bias ? bias[co] : 0.0;
                for (size_t ci = 0; ci < c->c_in; ci++)
                    for (size_t ky = 0; ky < c->k_h; ky++)
                        for (size_t kx = 0; kx < c->k_w; kx++) {
                            long iy = (long)(oy * c->stride_h + ky * c->dil_h) - (long)c->pad_h;
                            long ix = (long)(ox * c->stride_w + kx * c->dil_w) - (long)c->pad_w;
                            if (iy < 0 || ix < 0 || iy >= (long)c->h_in || ix >= (long)c->w_in)
                                continue;
                            s += (double)x[(ci * c->h_in + (size_t)iy) * c->w_in + (size_t)ix] *
                                 weight[((co * c->c_in + ci) * c->k_h + ky) * c->k_w + kx];
                        }
                y[(co * c->h_out + oy) * c->w_out + ox] = (float)s;
            }
}

attn_status attn__conv2d(const attn_conv2d *c, const float *x, const float *weight, const float *bias,
                         float *y, bool accumulate, float *work, size_t row0, size_t row1) {
    if (row1 <= row0) return ATTN_OK;
    size_t K = c->c_in * c->k_h * c->k_w, plane = c->h_out * c->w_out;
    size_t n = (row1 - row0) * c->w_out;
    const float *B;
    size_t ldb;
    if (is_pointwise(c)) {
        /* the input rows are the columns already; h_out == h_in, w_out == w_in */
        B = x + row0 * c->w_in;
        ldb = c->h_in * c->w_in;
    } else {
        im2col(c, x, work, row0, row1);
        B = work;
        ldb = n;
    }
    float *Y = y + row0 * c->w_out;
    attn_status st = attn__gemm(0, 0, c->c_out, n, K, 1.0f, weight, K, B, ldb, accumulate ? 1.0f : 0.0f, Y, plane);
    if (st) return st;
    if (bias)
        for (size_t co = 0; co < c->c_out; co++) {
            float *yc = Y + co * plane, bv = bias[co];
            for (size_t i = 0; i < n; i++) yc[i] += bv;
        }
    return ATTN_OK;
}

bool attn__conv2d_padded_size(const attn_conv2d *c, size_t *plane, size_t *image) {
    size_t hp, wp;
    return attn__mul(c->pad_h, 2, &hp) && attn__add(hp, c->h_in, &hp) && attn__mul(c->pad_w, 2, &wp) &&
           attn__add(wp, c->w_in, &wp) && attn__mul(hp, wp, plane) && attn__mul(*plane, c->c_in, image);
}

size_t attn__conv2d_padded_slack(const attn_conv2d *c) { return c->w_in + 2 * c->pad_w + 64; }

bool attn__conv2d_wino_ok(const attn_conv2d *c) {
    return c->k_h == 3 && c->k_w == 3 && c->stride_h == 1 && c->stride_w == 1 && c->dil_h == 1 && c->dil_w == 1;
}

size_t attn__conv2d_wino_tiles_w(const attn_conv2d *c) { return (c->w_out + 1) / 2; }
size_t attn__conv2d_wino_tiles_h(const attn_conv2d *c) { return (c->h_out + 1) / 2; }

size_t attn__conv2d_wino_ld(const attn_conv2d *c, size_t rows) {
    return (rows * attn__conv2d_wino_tiles_w(c) + 16 + 15) / 16 * 16;
}

bool attn__conv2d_wino_work(const attn_conv2d *c, size_t rows, size_t *floats) {
    size_t n, ld, ch;
    if (!attn__mul(rows, attn__conv2d_wino_tiles_w(c), &n) || !attn__add(n, 31, &n)) return false;
    ld = n / 16 * 16;
    return attn__add(c->c_in, c->c_out, &ch) && attn__mul(ch, 16, &ch) && attn__mul(ch, ld, floats);
}

/* U[ξ = 4i + j][co][ci] = (G g Gᵀ)[i][j] of the 3×3 g = weight[co][ci]. */
void attn__conv2d_wino_weights(const attn_conv2d *c, const float *weight, float *u) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    size_t pairs = c->c_out * c->c_in;
    for (size_t p = 0; p < pairs; p++) {
        const float *g = weight + p * 9;
        double t[4][3];
        for (int i = 0; i < 4; i++)
            for (int col = 0; col < 3; col++)
                t[i][col] = G[i][0] * g[col] + G[i][1] * g[3 + col] + G[i][2] * g[6 + col];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                u[(size_t)(4 * i + j) * pairs + p] =
                    (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
}
