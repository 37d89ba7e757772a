/*
 * gemm.c — libattn's own single-precision matrix product, built once per
 * instruction-set variant (core/cpu.c); attn__gemm uses it where it beats
 * OpenBLAS on the machine at hand (a calibration, or ATTN_GEMM).
 *
 *   C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C
 *   row-major; op(A)(i, p) = ta ? A[p·lda + i] : A[i·lda + p], same for B.
 *
 * Classic three-level blocking (Goto / BLIS): for each NC-wide column block
 * of B and each KC-deep slice, the slice of op(B) is packed into panels of
 * NR columns (kc × NR, row by row); for each MC-tall block of op(A) the
 * slice is packed into panels of MR rows (kc × MR, column by column); a
 * register-blocked microkernel multiplies one MR-row panel by one NR-column
 * panel, 2·MR vector accumulators (AVX-512: MR = 12, NR = 2 vectors of 16;
 * AVX2 and SSE2, with 16 vector registers: MR = 6, NR = 2 vectors of 8 or 4).
 * Edge panels are zero-padded, and their tile is written through a small
 * buffer.  The AVX-512 variant packs with in-register transposes and masked
 * loads; the others pack with plain loops.
 *
 * Rounding: products are accumulated in k order within each KC slice with
 * fused multiply-adds where the variant has them (built with
 * -ffp-contract=fast), so every variant rounds each element the same way
 * but for FMA; results depend on the shapes only, never on the thread count
 * (each call is one thread).  attn__gemm_ref is the plain triple loop the
 * tests compare it with.
 */
#include "cpu.h"
#include "kernels.h"
#include "variant.h"
#include "vec.h"

#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

ATTN_CPU_DECLARE(ATTN_VARIANT)

#define GEMM_VLEN ATTN_VLEN
#if GEMM_VLEN == 16
#define MR 12
#else
#define MR 6
#endif
#define NR (2 * GEMM_VLEN) /* 2 vectors */
#define KC 256
#define MC 96 /* a multiple of MR */
#define NC 2048

typedef attn_vf vf;
#define AI ATTN_AI
#define vload attn_vload
#define vstore attn_vstore
#define vsplat attn_vsplat

#if defined(__AVX512F__)
/* dst[q·ldd + i] = src[i·lds + q] for q < 16 and i < lanes (<= 16); source
 * rows i >= nr read as zeros. */
AI void tr16_copy(const float *src, size_t lds, size_t nr, float *dst, size_t ldd, int lanes) {
    __m512 r[16];
#pragma GCC unroll 16
    for (size_t i = 0; i < 16; i++) r[i] = i < nr ? _mm512_loadu_ps(src + i * lds) : _mm512_setzero_ps();
    attn_tr16(r);
    __mmask16 m = (__mmask16)((1u << lanes) - 1u);
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (size_t)q * ldd, m, r[q]);
}

/* op(B)[p0 .. p0+kc) × [j0 .. j0+nc) into panels of NR columns. */
static void pack_b(int tb, const float *B, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc, float *bp) {
    for (size_t j = 0; j < nc; j += NR) {
        size_t w = nc - j < NR ? nc - j : NR;
        float *dst = bp + j * kc;
        if (!tb) {
            __mmask16 m0 = (__mmask16)(w >= 16 ? 0xFFFFu : (1u << w) - 1u);
            __mmask16 m1 = (__mmask16)(w >= 32 ? 0xFFFFu : w > 16 ? (1u << (w - 16)) - 1u : 0u);
            for (size_t p = 0; p < kc; p++) {
                const float *src = B + (p0 + p) * ldb + j0 + j;
                float *d = dst + p * NR;
                _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
                _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            size_t p = 0;
            for (; p + 16 <= kc; p += 16)
                for (size_t c0 = 0; c0 < NR; c0 += 16) {
                    size_t nr = w > c0 ? (w - c0 < 16 ? w - c0 : 16) : 0;
                    tr16_copy(B + (j0 + j + c0) * ldb + p0 + p, ldb, nr, dst + p * NR + c0, NR, 16);
                }
            for (size_t c = 0; c < NR; c++) {
                const float *src = c < w ? B + (j0 + j + c) * ldb + p0 : NULL;
                for (size_t q = p; q < kc; q++) dst[q * NR + c] = src ? src[q] : 0.0f;
            }
        }
    }
}

/* op(A)[i0 .. i0+mc) × [p0 .. p0+kc) into panels of MR rows. */
static void pack_a(int ta, const float *A, size_t lda, size_t i0, size_t mc, size_t p0, size_t kc, float *ap) {
    for (size_t i = 0; i < mc; i += MR) {
        size_t h = mc - i < MR ? mc - i : MR;
        float *dst = ap + i * kc;
        if (ta) {
            __mmask16 m = (__mmask16)((1u << h) - 1u);
            for (size_t p = 0; p < kc; p++)
                _mm512_mask_storeu_ps(dst + p * MR, (__mmask16)((1u << MR) - 1u), _mm512_maskz_loadu_ps(m, A + (p0 + p) * lda + i0 + i));
        } else {
            size_t p = 0;
            for (; p + 16 <= kc; p += 16) tr16_copy(A + (i0 + i) * lda + p0 + p, lda, h, dst + p * MR, MR, MR);
            for (size_t r = 0; r < MR; r++) {
                const float *src = r < h ? A + (i0 + i + r) * lda + p0 : NULL;
                for (size_t q = p; q < kc; q++) dst[q * MR + r] = src ? src[q] : 0.0f;
            }
        }
    }
}

#else /* no AVX-512: plain packing loops */

/* op(B)[p0 .. p0+kc) × [j0 .. j0+nc) into panels of NR columns. */
static void pack_b(int tb, const float *B, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc, float *bp) {
    for (size_t j = 0; j < nc; j += NR) {
        size_t w = nc - j < NR ? nc - j : NR;
        float *dst = bp + j * kc;
        if (!tb) {
            for (size_t p = 0; p < kc; p++) {
                const float *src = B + (p0 + p) * ldb + j0 + j;
                float *d = dst + p * NR;
                for (size_t c = 0; c < NR; c++) d[c] = c < w ? src[c] : 0.0f;
            }
        } else {
            for (size_t c = 0; c < NR; c++) {
                const float *src = c < w ? B + (j0 + j + c) * ldb + p0 : NULL;
                for (size_t p = 0; p < kc; p++) dst[p * NR + c] = src ? src[p] : 0.0f;
            }
        }
    }
}

/* op(A)[i0 .. i0+mc) × [p0 .. p0+kc) into panels of MR rows. */
static void pack_a(int ta, const float *A, size_t lda, size_t i0, size_t mc, size_t p0, size_t kc, float *ap) {
    for (size_t i = 0; i < mc; i += MR) {
        size_t h = mc - i < MR ? mc - i : MR;
        float *dst = ap + i * kc;
        if (ta) {
            for (size_t p = 0; p < kc; p++) {
                const float *src = A + (p0 + p) * lda + i0 + i;
                for (size_t r = 0; r < MR; r++) dst[p * MR + r] = r < h ? src[r] : 0.0f;
            }
        } else {
            for (size_t r = 0; r < MR; r++) {
                const float *src = r < h ? A + (i0 + i + r) * lda + p0 : NULL;
                for (size_t p = 0; p < kc; p++) dst[p * MR + r] = src ? src[p] : 0.0f;
            }
        }
    }
}

#endif

/* The MR × NR tile: acc = Σ_p a(r, p) · bp[p][..]; then
 * C = alpha·acc + (first ? beta·C : C), with beta == 0 never reading C.
 * a(r, p) is, by kind: A_PACKED a[p·MR + r] (a packed panel), A_ROWS
 * a[r·lda + p] (op(A) = A read in place), A_COLS a[p·lda + r] (op(A) = Aᵀ
 * read in place).  Reading A in place saves its packing; only the last,
 * partial panel of rows is packed (zero rows keep the loads in bounds). */
enum { A_PACKED, A_ROWS, A_COLS };

AI void micro_t(const int kind, const int mr, size_t kc, const float *a, size_t lda, const float *bp, float *C,
                size_t ldc, size_t h, size_t w, float alpha, float beta, int first) {
    vf acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = vsplat(0.0f);
    for (size_t p = 0; p < kc; p++) {
        vf b0 = vload(bp), b1 = vload(bp + GEMM_VLEN);
        bp += NR;
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) {
            float x = kind == A_PACKED ? a[p * MR + (size_t)r]
                      : kind == A_ROWS ? a[(size_t)r * lda + p]
                                       : a[p * lda + (size_t)r];
            vf av = vsplat(x);
            acc[r][0] += av * b0;
            acc[r][1] += av * b1;
        }
    }
    vf va = vsplat(alpha), vb = vsplat(beta);
    if (h == MR && w == NR) {
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            float *c = C + (size_t)r * ldc;
            vf x0 = acc[r][0] * va, x1 = acc[r][1] * va;
            if (!first) {
                x0 += vload(c);
                x1 += vload(c + GEMM_VLEN);
            } else if (beta != 0.0f) {
                x0 += vb * vload(c);
                x1 += vb * vload(c + GEMM_VLEN);
            }
            vstore(c, x0);
            vstore(c + GEMM_VLEN, x1);
        }
        return;
    }
    float tile[MR * NR];
    for (int r = 0; r < mr; r++) {
        vstore(tile + r * NR, acc[r][0] * va);
        vstore(tile + r * NR + GEMM_VLEN, acc[r][1] * va);
    }
    for (size_t r = 0; r < h; r++) {
        float *c = C + r * ldc;
        const float *t = tile + r * NR;
        for (size_t j = 0; j < w; j++)
            c[j] = !first ? c[j] + t[j] : beta != 0.0f ? t[j] + beta * c[j] : t[j];
    }
}

/* The last, partial panel of h rows: a tile of a third, two thirds or all
 * of MR rows (h <= mr). */
static void micro_packed(size_t kc, const float *a, const float *bp, float *C, size_t ldc, size_t h, size_t w,
                         float alpha, float beta, int first) {
    if (h <= MR / 3)
        micro_t(A_PACKED, MR / 3, kc, a, MR, bp, C, ldc, h, w, alpha, beta, first);
    else if (h <= 2 * MR / 3)
        micro_t(A_PACKED, 2 * MR / 3, kc, a, MR, bp, C, ldc, h, w, alpha, beta, first);
    else
        micro_t(A_PACKED, MR, kc, a, MR, bp, C, ldc, h, w, alpha, beta, first);
}
static void micro_rows(size_t kc, const float *a, size_t lda, const float *bp, float *C, size_t ldc, size_t w,
                       float alpha, float beta, int first) {
    micro_t(A_ROWS, MR, kc, a, lda, bp, C, ldc, MR, w, alpha, beta, first);
}
static void micro_cols(size_t kc, const float *a, size_t lda, const float *bp, float *C, size_t ldc, size_t w,
                       float alpha, float beta, int first) {
    micro_t(A_COLS, MR, kc, a, lda, bp, C, ldc, MR, w, alpha, beta, first);
}

int ATTN_V(attn__gemm_own)(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                           size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    size_t ncap = n < NC ? n : NC, kcap = k < KC ? k : KC;
    size_t bfl = (ncap + NR - 1) / NR * NR * kcap, afl = MR * kcap;
    float *buf = aligned_alloc(64, ((bfl + afl) * sizeof(float) + 63) / 64 * 64); /* C11: a multiple of 64 */
    if (!buf) return -1;
    float *bp = buf, *ap = buf + bfl;
    size_t mfull = m / MR * MR; /* rows in whole panels, read in place */
    for (size_t j0 = 0; j0 < n; j0 += NC) {
        size_t nc = n - j0 < NC ? n - j0 : NC;
        for (size_t p0 = 0; p0 < k; p0 += KC) {
            size_t kc = k - p0 < KC ? k - p0 : KC;
            int first = p0 == 0;
            pack_b(tb, B, ldb, p0, kc, j0, nc, bp);
            if (mfull < m) pack_a(ta, A, lda, mfull, m - mfull, p0, kc, ap);
            for (size_t i0 = 0; i0 < m; i0 += MC) {
                size_t mc = m - i0 < MC ? m - i0 : MC;
                for (size_t j = 0; j < nc; j += NR) {
                    size_t w = nc - j < NR ? nc - j : NR;
                    const float *bj = bp + j * kc;
                    for (size_t i = i0; i < i0 + mc; i += MR) {
                        float *c = C + i * ldc + j0 + j;
                        if (i >= mfull)
                            micro_packed(kc, ap, bj, c, ldc, m - mfull, w, alpha, beta, first);
                        else if (!ta)
                            micro_rows(kc, A + i * lda + p0, lda, bj, c, ldc, w, alpha, beta, first);
                        else
                            micro_cols(kc, A + p0 * lda + i, lda, bj, c, ldc, w, alpha, beta, first);
                    }
                }
            }
        }
    }
    free(buf);
    return 0;
}
