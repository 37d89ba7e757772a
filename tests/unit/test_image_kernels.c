/*
 * test_image_kernels.c — the NCHW image kernels (core/kernels/conv2d.c,
 * image_ops.c) against plain loops computed in double: every kernel size,
 * stride, padding and dilation path of conv2d (the pointwise shortcut
 * included), row-split and accumulating calls, the sizes torch refuses, and
 * the reference's channel layer norm (eps added to the std); and Winograd
 * F(2x2, 3x3) (kernels/conv_wino.c) in every variant the CPU runs, in
 * blocks of every size, with bias, leaky ReLU and accumulation into a
 * strided output, writing nothing but real pixels.
 */
#include "test_util.h"

#include <stdbool.h>

#include "cpu.h"
#include "kernels/conv2d.h"
#include "kernels/image_ops.h"

static void test_conv2d_matches_loops(void **state) {
    (void)state;
    attn_conv2d cases[] = {
        {.c_in = 3, .c_out = 5, .h_in = 7, .w_in = 6, .k_h = 3, .k_w = 3, .stride_h = 1,
         .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1},
        {.c_in = 2, .c_out = 4, .h_in = 9, .w_in = 8, .k_h = 3, .k_w = 2, .stride_h = 2,
         .stride_w = 3, .pad_h = 2, .pad_w = 0, .dil_h = 1, .dil_w = 2},
        {.c_in = 4, .c_out = 3, .h_in = 5, .w_in = 5, .k_h = 1, .k_w = 1, .stride_h = 1,
         .stride_w = 1, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1},
        {.c_in = 4, .c_out = 3, .h_in = 5, .w_in = 7, .k_h = 1, .k_w = 1, .stride_h = 2,
         .stride_w = 2, .pad_h = 0, .pad_w = 1, .dil_h = 1, .dil_w = 1},
        {.c_in = 1, .c_out = 2, .h_in = 4, .w_in = 4, .k_h = 4, .k_w = 4, .stride_h = 1,
         .stride_w = 1, .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1},
    };
    const size_t want_h[] = {7, 6, 5, 3, 1}, want_w[] = {6, 2, 5, 5, 1};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        attn_conv2d c = cases[k];
        assert_true(attn__conv2d_prepare(&c, NULL));
        assert_int_equal(c.h_out, want_h[k]);
        assert_int_equal(c.w_out, want_w[k]);
        uint64_t seed = 17 + k;
        size_t nx = c.c_in * c.h_in * c.w_in, nw = c.c_out * c.c_in * c.k_h * c.k_w;
        size_t ny = c.c_out * c.h_out * c.w_out, nwork;
        float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc(c.c_out * 4);
        float *want = malloc(ny * 4), *got = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = tu_gauss(&seed);
        for (size_t i = 0; i < nw; i++) wt[i] = tu_gauss(&seed);
        for (size_t i = 0; i < c.c_out; i++) b[i] = tu_gauss(&seed);
        assert_true(attn__conv2d_workspace(&c, c.h_out, &nwork));
        float *work = malloc((nwork ? nwork : 1) * 4);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            attn__conv2d_reference(&c, x, wt, with_bias ? b : NULL, want);
            /* whole image, then row by row (as threads split it) */
            assert_int_equal(attn__conv2d(&c, x, wt, with_bias ? b : NULL, got, false, work, 0, c.h_out), ATTN_OK);
            for (size_t i = 0; i < ny; i++) assert_true(fabsf(got[i] - want[i]) <= 1e-4f);
            for (size_t i = 0; i < ny; i++) got[i] = 1.0f;
            for (size_t r = 0; r < c.h_out; r++)
                assert_int_equal(attn__conv2d(&c, x, wt, with_bias ? b : NULL, got, true, work, r, r + 1), ATTN_OK);
            for (size_t i = 0; i < ny; i++) assert_true(fabsf(got[i] - (want[i] + 1.0f)) <= 1e-4f);
        }
        free(x);
        free(wt);
        free(b);
        free(want);
        free(got);
        free(work);
    }
    attn_conv2d bad = {.c_in = 1, .c_out = 1, .h_in = 2, .w_in = 2, .k_h = 5, .k_w = 1,
                       .stride_h = 1, .stride_w = 1, .pad_h = 1, .dil_h = 1, .dil_w = 1};
    const char *why = NULL;
    assert_false(attn__conv2d_prepare(&bad, &why));
    assert_non_null(why);
    bad.k_h = 1;
    bad.stride_w = 0;
    assert_false(attn__conv2d_prepare(&bad, &why));
}


/* Winograd F(2x2, 3x3) in variant k against the loops: blocks of every
 * size from one tile row to all, into a strided output with leaky ReLU and
 * accumulation, nothing but real pixels written. */
static void check_wino(const attn_kernels *k, attn_conv2d c, uint64_t seed) {
    assert_true(attn__conv2d_prepare(&c, NULL));
    assert_true(attn__conv2d_wino_ok(&c));
    size_t plane, image;
    assert_true(attn__conv2d_padded_size(&c, &plane, &image));
    size_t xs = plane + 5, wp = c.w_in + 2 * c.pad_w;
    size_t nx = c.c_in * c.h_in * c.w_in, nw = c.c_out * c.c_in * 9, ny = c.c_out * c.h_out * c.w_out;
    size_t npad = c.c_in * xs + attn__conv2d_padded_slack(&c);
    float *x = malloc(nx * 4), *xp = calloc(npad, 4), *wt = malloc(nw * 4), *b = malloc(c.c_out * 4);
    float *u = malloc(16 * c.c_out * c.c_in * 4), *want = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) x[i] = tu_gauss(&seed);
    for (size_t i = 0; i < nw; i++) wt[i] = tu_gauss(&seed);
    for (size_t i = 0; i < c.c_out; i++) b[i] = tu_gauss(&seed);
    for (size_t ci = 0; ci < c.c_in; ci++)
        for (size_t iy = 0; iy < c.h_in; iy++)
            memcpy(xp + ci * xs + (iy + c.pad_h) * wp + c.pad_w, x + (ci * c.h_in + iy) * c.w_in, c.w_in * 4);
    attn__conv2d_reference(&c, x, wt, b, want);
    attn__conv2d_wino_weights(&c, wt, u);
    size_t th = attn__conv2d_wino_tiles_h(&c), work_n;
    assert_true(th == (c.h_out + 1) / 2 && attn__conv2d_wino_tiles_w(&c) == (c.w_out + 1) / 2);
    assert_true(attn__conv2d_wino_work(&c, th, &work_n));
    float *work = malloc(work_n * 4);
    size_t yr = c.w_out + 2, ys = (c.h_out + 1) * yr, n2 = c.c_out * ys;
    float *y2 = malloc(n2 * 4);
    double tol = 2e-6 * (double)(c.c_in * 9);
    for (size_t rows = 1; rows <= th; rows++) {
        for (size_t i = 0; i < n2; i++) y2[i] = 0.5f;
        attn_conv2d_out o = {.y = y2, .ys = ys, .yr = yr, .bias = b, .leaky = 1, .accumulate = 1, .slope = 0.01f};
        for (size_t ty = 0; ty < th; ty += rows)
            assert_int_equal(k->conv2d_wino(&c, xp, xs, u, &o, ty, ty + rows < th ? ty + rows : th, work), ATTN_OK);
        for (size_t co = 0; co < c.c_out; co++)
            for (size_t r = 0; r <= c.h_out; r++)
                for (size_t col = 0; col < yr; col++) {
                    float v = y2[co * ys + r * yr + col];
                    if (r == c.h_out || col >= c.w_out) {
                        assert_true(v == 0.5f);
                        continue;
                    }
                    float z = want[(co * c.h_out + r) * c.w_out + col];
                    double e = 0.5 + (z > 0.0f ? z : z * 0.01f);
                    assert_true(fabs(v - e) <= tol * (1 + fabs(e)));
                }
    }
    /* plain output, no activation: the plain name runs the chosen variant */
    if (k == attn__kernels()) {
        float *got = malloc(ny * 4), *again = malloc(ny * 4);
        attn_conv2d_out o = {.y = got, .ys = c.h_out * c.w_out, .yr = c.w_out, .bias = b};
        assert_int_equal(k->conv2d_wino(&c, xp, xs, u, &o, 0, th, work), ATTN_OK);
        for (size_t i = 0; i < ny; i++) assert_true(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])));
        o.y = again;
        assert_int_equal(attn__conv2d_wino(&c, xp, xs, u, &o, 0, th, work), ATTN_OK);
        assert_memory_equal(got, again, ny * 4);
        free(got);
        free(again);
    }
    free(x);
    free(xp);
    free(wt);
    free(b);
    free(u);
    free(want);
    free(work);
    free(y2);
}

static void test_conv2d_wino(void **state) {
    (void)state;
    attn_conv2d cases[] = {
        {.c_in = 8, .c_out = 32, .h_in = 8, .w_in = 20},  /* even sizes, 'same' padding */
        {.c_in = 32, .c_out = 8, .h_in = 7, .w_in = 9},   /* odd: half tiles at the edges */
        {.c_in = 3, .c_out = 13, .h_in = 5, .w_in = 37},  /* tiles past one vector */
        {.c_in = 2, .c_out = 5, .h_in = 1, .w_in = 1},
        {.c_in = 5, .c_out = 3, .h_in = 6, .w_in = 11, .pad_h = 0, .pad_w = 2},
        {.c_in = 4, .c_out = 6, .h_in = 9, .w_in = 4, .pad_h = 2, .pad_w = 0},
    };
    const int same[] = {1, 1, 1, 1, 0, 0};
    int ran = 0;
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        ran++;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            attn_conv2d c = cases[i];
            c.k_h = c.k_w = 3;
            c.stride_h = c.stride_w = c.dil_h = c.dil_w = 1;
            if (same[i]) c.pad_h = c.pad_w = 1;
            check_wino(k, c, 200 + i);
        }
    }
    assert_true(ran > 0);
    attn_conv2d d = {.c_in = 1, .c_out = 1, .h_in = 5, .w_in = 5, .k_h = 3, .k_w = 3, .stride_h = 1,
                     .stride_w = 1, .dil_h = 2, .dil_w = 1};
    assert_false(attn__conv2d_wino_ok(&d));
    d.dil_h = 1;
    d.k_w = 2;
    assert_false(attn__conv2d_wino_ok(&d));
}

static void test_chan_layernorm(void **state) {
    (void)state;
    size_t C = 5, HW = 7;
    uint64_t seed = 3;
    float x[35], y[35], g[5], b[5];
    /* half the pixels have a tiny spread, where eps on the std and eps
     * inside the square root differ by ~eps/std (0.3%) */
    for (size_t i = 0; i < C * HW; i++)
        x[i] = (i % HW) < HW / 2 ? 0.003f * tu_gauss(&seed) : 2.0f * tu_gauss(&seed) + 1.0f;
    for (size_t i = 0; i < C; i++) {
        g[i] = tu_gauss(&seed);
        b[i] = tu_gauss(&seed);
    }
    attn__chan_layernorm(x, HW, C, HW, g, b, 1e-5f, y, HW);
    for (size_t p = 0; p < HW; p++) {
        double m = 0, v = 0;
        for (size_t c = 0; c < C; c++) m += x[c * HW + p];
        m /= (double)C;
        for (size_t c = 0; c < C; c++) v += (x[c * HW + p] - m) * (x[c * HW + p] - m);
        double sd = sqrt(v / (double)C); /* biased; eps added to the std */
        for (size_t c = 0; c < C; c++) {
            double e = (x[c * HW + p] - m) / (sd + 1e-5) * g[c] + b[c];
            assert_true(fabs(y[c * HW + p] - e) <= 1e-5 * (1 + fabs(e)));
        }
    }
    /* a range of pixels into a strided plane gives the same values */
    float z[5 * 12];
    for (size_t i = 0; i < 60; i++) z[i] = -7.0f;
    attn__chan_layernorm(x + 2, HW, C, 4, g, b, 1e-5f, z + 1, 12);
    for (size_t k = 0; k < C; k++)
        for (size_t i = 0; i < 12; i++)
            assert_true(z[k * 12 + i] == (i >= 1 && i < 5 ? y[k * HW + 2 + i - 1] : -7.0f));
    /* in place gives the same */
    attn__chan_layernorm(x, HW, C, HW, g, b, 1e-5f, x, HW);
    assert_memory_equal(x, y, sizeof x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_matches_loops),
        cmocka_unit_test(test_conv2d_wino),
        cmocka_unit_test(test_chan_layernorm),
    };
    return cmocka_run_group_tests_name("image_kernels", tests, NULL, NULL);
}
