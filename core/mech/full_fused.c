/*
 * full_fused.c — FullAttention's fused kernel: both products and the online
 * softmax in one pass over cache-sized blocks, with register-blocked
 * microkernels written in GCC vector extensions.  Built once per
 * instruction-set variant (AVX-512, AVX2 + FMA, generic SSE2: see core/cpu.c),
 * the vector width following the variant.
 *
 * Why not two sgemm calls per block (full.c's BLAS path)?  Each call packs
 * its operands again, and the softmax between them needs row reductions.
 * Here the scores are kept transposed — one row per key, one column per
 * query — so K is read by broadcasts, V as vectors, and the softmax's max
 * and sum become vertical vector operations, one lane per query.
 *
 * Layout.  When one head's keys and values are small (FUSED_INPLACE_MAX:
 * they stay in the core's L2 while its tasks run) and their rows do not
 * alias in the L1 (a row stride of a multiple of 4 KiB puts every row of a
 * tile in one set), or when there is one head (its rows are contiguous),
 * the tasks read K and V where they are.  Otherwise, when it is not large
 * (FUSED_HEAD_COPY_MAX), a first parallel pass reads Q, K and V in order and
 * writes K and V head by head and temp·Q transposed per sub-block, so that
 * the tasks stream each head's keys and values (rows H·E apart span a page
 * per two rows, where the hardware prefetchers stop); otherwise each task
 * packs every key block itself.
 * A task is up to FUSED_NSUB sub-blocks of BQ queries of one (n, h): they
 * share each key block while it is in cache.
 *
 * Shapes, per sub-block of nq <= BQ queries starting at l0 (qp = nq rounded
 * up to VLEN):
 *   qt  (E, qp)    temp·log2(e) · the queries, transposed, zero-padded columns
 *   pt  (BK, qp)   scores of up to BK keys, row = key, column = query
 *   o   (nq, D)    unnormalised output
 *   m, l (qp)      running max and running sum per query
 * For each key block [s0, s0 + nk):
 *   pt = K[s0 .. s0+nk) qt, m' = max(m, column max)   qk_tile: MRK keys × NRV vectors
 *   masked entries -> -inf (then m' again);  c = 2^(m - m')
 *   pt = 2^(pt - m');  l = c·l + column sums of pt
 *   o = c·o + ptᵀ V[s0 .. s0+nk)               pv_tile: MRV queries × NV vectors
 * and in the sub-block's last key block the pv tiles write out = o / l
 * instead of o (NaN where l is 0: a query that sees no key), so that the
 * output's stores, which miss the caches, leave while the products run.
 * The scores are in units of log2 (temp·log2 e folded into the queries), so
 * that the exponentials are powers of 2 and need no reduction by ln 2
 * (fast_exp2: a third fewer multiply-adds than fast_exp, and the same
 * accuracy).
 *
 * Causal (the lower-triangular mask, mask_lower_triangular): computed, never
 * read.  Key blocks after a sub-block's last query are skipped, blocks
 * wholly before its first query are unmasked, and in the blocks the
 * diagonal crosses the qk tiles past it store -inf without products, the
 * tiles it crosses mask by index, and each pv tile stops at its last
 * query's key.  Causal tasks run heaviest (last queries) first so that the
 * threads pulling them finish together.
 *
 * Rounding differs from the BLAS path only in summation order and in
 * fused multiply-adds (this file is built with -ffp-contract=fast); results
 * do not depend on the thread count, since each task owns its queries.
 * Requirements (attn__full_fused_ok): D a multiple of VLEN.
 */
#include "attn_internal.h"
#include "cpu.h"
#include "kernels/fast_exp.h"
#include "kernels/variant.h"
#include "kernels/vec.h"
#include "kernels/vec_math.h"
#include "mech/full.h"
#include "workspace.h"

#if defined(__SSE__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if VLEN == 16
#ifndef FUSED_MRK
#define FUSED_MRK 12 /* keys per qk tile: 12 × 2 accumulators */
#define FUSED_NRV 2
#endif
#define MRK FUSED_MRK
#define NVMAX 4 /* vectors of D per pv tile */
#define MRV 6   /* queries per pv tile: 6 × 4 accumulators */
#else
#define MRK 5 /* 10 accumulators + 2 query vectors + broadcasts: no spill in 16 registers */
#define NVMAX 2
#define MRV 6
#endif
#ifndef FUSED_NRV
#define FUSED_NRV 2 /* query vectors per qk tile */
#endif
#define NRV FUSED_NRV

/* Block sizes (per variant where the tiles differ); ATTN_FUSED_BQ,
 * ATTN_FUSED_BK and ATTN_FUSED_NSUB override them and ATTN_FUSED_HEAD_COPY
 * forces the layout of K and V (0: packed per key block, 1: the pre-pass
 * when within FUSED_HEAD_COPY_MAX, else packed; inplace: read in place),
 * for tests and tuning (results do not depend on BQ, NSUB or the layout; BK
 * sets where the running max is updated, so it changes the rounding). */
#ifndef FUSED_BQ
#define FUSED_BQ 96 /* queries per sub-block */
#endif
#ifndef FUSED_BK
#if VLEN == 16
#define FUSED_BK 256 /* keys per block */
#else
/* AVX2 and SSE2: pv reads the scores once per chunk of D (NVMAX vectors),
 * and a block of 64 keys × FUSED_BQ queries (24 KiB) stays in the L1 for
 * those passes (Zen 4, L=512, pairs: AVX2 0.97, SSE2 0.96 against 256) */
#define FUSED_BK 64
#endif
#endif
#define COPY_ROWS 256 /* rows of one task of the head-by-head copy */
#ifndef FUSED_NSUB
#define FUSED_NSUB 4 /* sub-blocks of FUSED_BQ queries per task */
#endif
#define FUSED_NSUB_MAX 8
#ifndef FUSED_HEAD_COPY_MAX
#define FUSED_HEAD_COPY_MAX ((size_t)64 << 20) /* bytes of the head-by-head copy of Q, K and V */
#endif
#ifndef FUSED_INPLACE_MAX
#define FUSED_INPLACE_MAX ((size_t)512 << 10) /* bytes of one head's K and V read in place */
#endif

ATTN_CPU_DECLARE(ATTN_VARIANT)


int ATTN_V(attn__full_fused_ok)(const attn_qkv *a) { return a->D > 0 && a->D % VLEN == 0 && a->E > 0; }

/* The kernel's exponential over an array (cpu.h's full_exp2): whole
 * vectors by vexp2, the tail by fast_exp2, built as the kernel is. */
void ATTN_V(attn__full_exp2)(float *x, size_t n) {
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) vstore(x + i, vexp2(vload(x + i)));
    for (; i < n; i++) x[i] = fast_exp2(x[i]);
}

/* The exponential pass's 2^x over an array (cpu.h's full_exp2_pass): every
 * vector by vexp2_nonpos, a tail padded with zeros to one vector. */
void ATTN_V(attn__full_exp2_pass)(float *x, size_t n) {
    size_t i = 0;
    for (; i + VLEN <= n; i += VLEN) vstore(x + i, vexp2_nonpos(vload(x + i)));
    if (i < n) {
        float t[VLEN] = {0};
        memcpy(t, x + i, (n - i) * sizeof *t);
        vstore(t, vexp2_nonpos(vload(t)));
        memcpy(x + i, t, (n - i) * sizeof *t);
    }
}

/* pt[r][0 .. nv·VLEN) = Σ_e k[r][e] qt[e][..] for r < mr (qt holds temp·q), and
 * cmax[..] = max(cmax[..], column maxima of those rows).  k rows are ldk
 * apart, qt rows ldq apart.  diag: the causal mask applies, the tile's
 * first key and first query being kidx and qidx (global indices): scores of
 * keys after the query are -inf. */
AI void qk_tile(const int mr, const int nv, size_t E, const float *qt, size_t ldq, const float *k,
                size_t ldk, float *pt, size_t ldp, float *cmax, bool diag, ptrdiff_t kidx,
                ptrdiff_t qidx) {
    vf acc[MRK][NRV];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int x = 0; x < nv; x++) acc[r][x] = vsplat(0.0f);
    for (size_t e = 0; e < E; e++) {
        vf q[NRV];
#pragma GCC unroll 4
        for (int x = 0; x < nv; x++) q[x] = vload(qt + e * ldq + (size_t)x * VLEN);
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) {
            vf kb = vsplat(k[(size_t)r * ldk + e]);
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) acc[r][x] += kb * q[x];
        }
    }
    vf mx[NRV];
#pragma GCC unroll 4
    for (int x = 0; x < nv; x++) mx[x] = vload(cmax + (size_t)x * VLEN);
    if (diag) {
        /* causal: key kidx + r is visible to query column qidx + lane
         * when kidx + r <= qidx + lane */
        vf lane;
        for (int i = 0; i < VLEN; i++) lane[i] = (float)i;

        const vf ninf = vsplat(-INFINITY);
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) {
                vf qi = vsplat((float)(qidx + (ptrdiff_t)x * VLEN - kidx - r)) + lane;
                vf sc = acc[r][x];
                sc = vselect(qi >= vsplat(0.0f), sc, ninf);
                vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, sc);
                mx[x] = vmax(sc, mx[x]);
            }
    } else {
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) {
                vf sc = acc[r][x];
                vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, sc);
                mx[x] = vmax(sc, mx[x]);
            }
    }
#pragma GCC unroll 4
    for (int x = 0; x < nv; x++) vstore(cmax + (size_t)x * VLEN, mx[x]);
}

/* o[r][0 .. nv·VLEN) = c[r] · o[r][..] + Σ_s pt[s][r] v[s][..] for r < mr,
 * o read as 0 in the first key block (first: o is not read); with dst (the
 * last key block), dst[r][..] = inv[r] · that instead (rows ldd apart), so
 * that the output's stores leave during the products. */
AI void pv_tile(const int mr, const int nv, size_t nk, const float *pt, size_t ldp, const float *v,
                size_t ldv, const float *c, float *o, size_t ldo, bool first, const float *inv, float *dst,
                size_t ldd) {
    vf acc[MRV][NVMAX];
    if (first) {
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) acc[r][x] = vsplat(0.0f);
    } else {
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            vf cr = vsplat(c[r]);
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) acc[r][x] = vload(o + (size_t)r * ldo + (size_t)x * VLEN) * cr;
        }
    }
    for (size_t s = 0; s < nk; s++) {
        vf w[NVMAX];
#pragma GCC unroll 4
        for (int x = 0; x < nv; x++) w[x] = vload(v + s * ldv + (size_t)x * VLEN);
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            vf p = vsplat(pt[s * ldp + (size_t)r]);
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) acc[r][x] += p * w[x];
        }
    }
    if (dst) {
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            vf ir = vsplat(inv[r]);
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) vstore(dst + (size_t)r * ldd + (size_t)x * VLEN, acc[r][x] * ir);
        }
        return;
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int x = 0; x < nv; x++) vstore(o + (size_t)r * ldo + (size_t)x * VLEN, acc[r][x]);
}

/* A tile whose every key follows every query of it (causal): -inf scores,
 * no products. */
AI void qk_tile_masked(const int mr, const int nv, float *pt, size_t ldp) {
    const vf ninf = vsplat(-INFINITY);
    for (int r = 0; r < mr; r++)
        for (int x = 0; x < nv; x++) vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, ninf);
}

/* One row group of mr keys (kidx: the first's global index) against every
 * query column group. */
AI void qk_rows(const int mr, size_t E, size_t qp, const float *qt, size_t ldq, const float *ks, size_t ldk,
                float *p, float *cmax, bool causal, ptrdiff_t kidx, ptrdiff_t l0) {
    size_t i = 0;
    for (; i + NRV * VLEN <= qp; i += NRV * VLEN) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + NRV * VLEN - 1)
            qk_tile_masked(mr, NRV, p + i, qp);
        else
            qk_tile(mr, NRV, E, qt + i, ldq, ks, ldk, p + i, qp, cmax + i,
                    causal && kidx + mr - 1 > qidx, kidx, qidx);
    }
#if NRV > 2
    if (i + 2 * VLEN <= qp) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + 2 * VLEN - 1)
            qk_tile_masked(mr, 2, p + i, qp);
        else
            qk_tile(mr, 2, E, qt + i, ldq, ks, ldk, p + i, qp, cmax + i, causal && kidx + mr - 1 > qidx,
                    kidx, qidx);
        i += 2 * VLEN;
    }
#endif
    for (; i < qp; i += VLEN) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + VLEN - 1)
            qk_tile_masked(mr, 1, p + i, qp);
        else
            qk_tile(mr, 1, E, qt + i, ldq, ks, ldk, p + i, qp, cmax + i, causal && kidx + mr - 1 > qidx,
                    kidx, qidx);
    }
}

/* Scores of keys [0, nk) (k rows ldk apart) for qp query columns, and the
 * running column maxima cmax.  causal: key s0 + s is visible to query
 * l0 + i when s0 + s <= l0 + i. */
static void qk_block(size_t E, size_t nk, size_t qp, const float *qt, size_t ldq, const float *k, size_t ldk,
                     float *pt, float *cmax, bool causal, size_t s0, size_t l0) {
    size_t s = 0;
    for (; s + MRK <= nk; s += MRK)
        qk_rows(MRK, E, qp, qt, ldq, k + s * ldk, ldk, pt + s * qp, cmax, causal, (ptrdiff_t)(s0 + s),
                (ptrdiff_t)l0);
    /* The last nk % MRK keys in one tile of that many rows: row by row, each
     * tile would hold only NRV accumulators, a chain of dependent FMAs that
     * runs at the FMA latency, not its throughput (a quarter of the rate on
     * two 512-bit FMA pipes).  FUSED_MRK above 12 leaves the rows above 11
     * to the row-by-row loop. */
    switch (nk - s) {
#define QK_REST(R)                                                                                        \
    case R:                                                                                               \
        qk_rows(R, E, qp, qt, ldq, k + s * ldk, ldk, pt + s * qp, cmax, causal, (ptrdiff_t)(s0 + s),      \
                (ptrdiff_t)l0);                                                                           \
        return;
        QK_REST(1)
        QK_REST(2)
        QK_REST(3)
        QK_REST(4)
#if MRK > 5
        QK_REST(5)
#endif
#if MRK > 6
        QK_REST(6)
#endif
#if MRK > 7
        QK_REST(7)
#endif
#if MRK > 8
        QK_REST(8)
#endif
#if MRK > 9
        QK_REST(9)
#endif
#if MRK > 10
        QK_REST(10)
#endif
#if MRK > 11
        QK_REST(11)
#endif
#undef QK_REST
    default:
        break;
    }
    for (; s < nk; s++)
        qk_rows(1, E, qp, qt, ldq, k + s * ldk, ldk, pt + s * qp, cmax, causal, (ptrdiff_t)(s0 + s),
                (ptrdiff_t)l0);
}

/* One chunk of nv vectors of D for every query of the block.  causal: key
 * s0 + s is visible to query l0 + r when s0 + s <= l0 + r, so a group of
 * queries stops at its last query's key (the scores after it are 0).  The
 * first key block (s0 0) starts from zero, o unread; with out (the block is
 * the queries' last), the normalised rows go there (ldout apart) instead of
 * o. */
AI void pv_chunk(const int nv, size_t nq, size_t nk, const float *pt, size_t qp, const float *v,
                 size_t ldv, const float *c, float *o, size_t D, bool causal, size_t s0, size_t l0,
                 const float *inv, float *out, size_t ldout) {
    size_t r = 0;
    for (; r + MRV <= nq; r += MRV) {
        size_t n = nk;
        if (causal && l0 + r + MRV - s0 < n) n = l0 + r + MRV - s0;
        pv_tile(MRV, nv, n, pt + r, qp, v, ldv, c + r, o + r * D, D, s0 == 0, inv + r,
                out ? out + r * ldout : NULL, ldout);
    }
    for (; r < nq; r++) {
        size_t n = nk;
        if (causal && l0 + r + 1 - s0 < n) n = l0 + r + 1 - s0;
        pv_tile(1, nv, n, pt + r, qp, v, ldv, c + r, o + r * D, D, s0 == 0, inv + r,
                out ? out + r * ldout : NULL, ldout);
    }
}

static void pv_block(size_t nq, size_t nk, size_t D, const float *pt, size_t qp, const float *v,
                     size_t ldv, const float *c, float *o, bool causal, size_t s0, size_t l0,
                     const float *inv, float *out, size_t ldout) {
    for (size_t d0 = 0; d0 < D; d0 += NVMAX * VLEN) {
        size_t nv = (D - d0) / VLEN;
        float *od = out ? out + d0 : NULL;
        if (nv >= NVMAX)
            pv_chunk(NVMAX, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0, inv, od, ldout);
#if NVMAX > 2
        else if (nv == 3)
            pv_chunk(3, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0, inv, od, ldout);
#endif
        else if (nv == 2)
            pv_chunk(2, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0, inv, od, ldout);
        else
            pv_chunk(1, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0, inv, od, ldout);
    }
}

typedef struct fused_job {
    const attn_qkv *a;
    float temp;
    float *out;
    size_t qblocks, nh;
    size_t bq, bk, qp_max; /* queries per sub-block, keys per block, bq rounded up to VLEN */
    float *kh, *vh; /* K and V head by head ((N·H, S, E) and (N·H, S, D)), or NULL */
    bool inplace;   /* without them: K and V read where they are, not packed per block */
    float *qh;      /* with them: temp·Q transposed per sub-block ((N·H, sblocks, E, qp_max)) */
    size_t sblocks;
    size_t nsub;           /* sub-blocks of bq queries per task: they share each packed key block */
    bool causal;           /* the lower-triangular mask: computed, not read */
    float *scratch;
    size_t per_worker, per_sub; /* floats */
} fused_job;

/* One sub-block's queries: transposed queries, output, running max and sum. */
typedef struct qsub {
    const float *qt; /* E rows ldq apart */
    float *o, *m, *l;
    size_t l0, nq, qp, ldq;
    float *out;  /* its rows of the output (H·D apart) */
    bool done;   /* those written (by the last key block's products) */
} qsub;

/* One key block [s0, s0 + nk) (packed: kp, vp) of the task's klen keys
 * against one sub-block; the sub-block's last one writes its output. */
static void sub_block(const fused_job *j, qsub *b, size_t s0, size_t nk, size_t klen, const float *kp,
                      size_t ldk, const float *vp, size_t ldv, float *pt, float *c, float *msub) {
    const attn_qkv *a = j->a;
    const size_t E = (size_t)a->E, D = (size_t)a->D, S = (size_t)a->S, qp = b->qp, nq = b->nq, l0 = b->l0;
    const bool causal = j->causal, masked = a->attn_mask && !a->mask_all_ones && !causal;
    float *m = b->m, *l = b->l;
    if (causal && s0 > l0 + nq - 1) return; /* every key after every query */
    if (causal && s0 + nk > l0 + nq) nk = l0 + nq - s0;
    /* Only the blocks the diagonal crosses need the causal mask. */
    bool diag = causal && s0 + nk - 1 > l0;
    /* c = the new running max m' (column maxima of the scores and m; NaN
     * scores are skipped here and poison the sum) */
    for (size_t i = 0; i < qp; i++) c[i] = m[i];
    qk_block(E, nk, qp, b->qt, b->ldq, kp, ldk, pt, c, diag, s0, l0);
    if (masked) {
        for (size_t i = 0; i < nq; i++) {
            const uint8_t *mrow = a->attn_mask + (l0 + i) * S + s0;
            for (size_t s = 0; s < nk; s++)
                if (!mrow[s]) pt[s * qp + i] = -INFINITY;
        }
        for (size_t i = 0; i < qp; i++) c[i] = m[i];
        for (size_t s = 0; s < nk; s++) {
            const float *p = pt + s * qp;
#pragma omp simd
            for (size_t i = 0; i < qp; i++) c[i] = p[i] > c[i] ? p[i] : c[i];
        }
    }
    /* subtract 0 where no key is visible yet so that exp(-inf - m') is 0,
     * not NaN. */
#pragma omp simd
    for (size_t i = 0; i < qp; i++) {
        float mn = c[i];
        msub[i] = mn == -INFINITY ? 0.0f : mn;
        float scale = fast_exp2(m[i] - msub[i]); /* 0 when m is -inf */
        m[i] = mn;
        l[i] *= scale;
        c[i] = scale;
    }
    /* p = exp(p - m'), l += column sums: a column of vectors at a time, the
     * sums in registers (the same order as row by row) */
    for (size_t i = 0; i < qp; i += VLEN) {
        vf ms = vload(msub + i), acc = vload(l + i);
        float *p = pt + i;
        for (size_t s = 0; s < nk; s++, p += qp) {
            vf x = vexp2_nonpos(vload(p) - ms); /* <= 0: ms is the column's max */
            vstore(p, x);
            acc += x;
        }
        vstore(l + i, acc);
    }
    /* The sub-block's last visible key in this block: l is final, and the
     * products write out = o / l (NaN where l is 0: a query that sees no
     * key, as torch); msub, read above, holds the 1 / l. */
    const size_t kend = causal && l0 + nq < klen ? l0 + nq : klen;
    float *out = NULL;
    if (s0 + nk >= kend) {
        for (size_t i = 0; i < nq; i++) msub[i] = l[i] > 0.0f ? 1.0f / l[i] : NAN;
        out = b->out;
        b->done = true;
    }
    pv_block(nq, nk, D, pt, qp, vp, ldv, c, b->o, diag, s0, l0, msub, out, (size_t)a->H * D);
}

/* Rows [0, n) of a strided input (rows ld apart, w floats) packed w apart. */
static void pack_rows(float *dst, const float *src, size_t n, size_t w, size_t ld) {
    for (size_t s = 0; s < n; s++) memcpy(dst + s * w, src + s * ld, w * sizeof *dst);
}

/* Asks for the rows of a block ahead (into the outer caches), so that
 * packing it does not wait on memory. */
static void prefetch_rows(const float *src, size_t n, size_t w, size_t ld) {
    for (size_t s = 0; s < n; s++)
        for (size_t e = 0; e < w; e += 16) __builtin_prefetch(src + s * ld + e, 0, 2);
}

#if VLEN == 16
typedef __m512 vreg;
#define TRV attn_tr16
#elif VLEN == 8 && defined(__AVX__)
typedef __m256 vreg;
#define TRV attn_tr8
#elif VLEN == 4 && defined(__SSE__)
typedef __m128 vreg;
#define TRV attn_tr4
#endif
#ifdef TRV
#define HAVE_TRV 1
/* dst[e][r] = temp · src[r][e] for e < E and VLEN rows r (src rows lds
 * apart, dst rows ldd apart): VLEN × VLEN blocks transposed in registers,
 * the last E % VLEN columns one by one (the same products either way). */
static void transpose_rowsv(const float *restrict src, size_t lds, float temp, size_t E, float *restrict dst,
                            size_t ldd) {
    size_t e = 0;
    for (; e + VLEN <= E; e += VLEN) {
        vreg x[VLEN];
#pragma GCC unroll 16
        for (int r = 0; r < VLEN; r++) x[r] = (vreg)(vload(src + (size_t)r * lds + e) * temp);
        TRV(x);
#pragma GCC unroll 16
        for (int r = 0; r < VLEN; r++) vstore(dst + (e + (size_t)r) * ldd, (vf)x[r]);
    }
    for (; e < E; e++)
        for (size_t r = 0; r < VLEN; r++) dst[e * ldd + r] = src[r * lds + e] * temp;
}
#else
#define HAVE_TRV 0
#endif

static attn_status fused_task(void *arg, size_t task, int worker) {
    const fused_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, L = (size_t)a->L,
                 S = (size_t)a->S;
    /* Causal: the last query blocks see the most keys; they go first, so
     * that the threads pulling tasks finish together. */
    size_t qb, nh;
    if (j->causal) {
        qb = j->qblocks - 1 - task / j->nh;
        nh = task % j->nh;
    } else {
        qb = task % j->qblocks;
        nh = task / j->qblocks;
    }
    size_t n = nh / H, h = nh % H;
    const size_t tq = j->bq * j->nsub; /* queries per task */
    size_t t0 = qb * tq, tn = L - t0 < tq ? L - t0 : tq;
    float *base = j->scratch + (size_t)worker * j->per_worker;
    float *pt = base, *c = pt + j->bk * j->qp_max, *msub = c + j->qp_max;
    float *kp = msub + j->qp_max, *vp = kp + j->bk * E, *subs = vp + j->bk * D;
    const float *k = a->k + (n * S * H + h) * E;
    const float *v = a->v + (n * S * H + h) * D;

    /* the task's query rows, asked for at once (they are read column by
     * column below, each row's lines otherwise waited for in turn) */
    if (!j->qh) prefetch_rows(a->q + ((n * L + t0) * H + h) * E, tn, E, H * E);
    qsub sb[FUSED_NSUB_MAX];
    size_t ns = (tn + j->bq - 1) / j->bq;
    for (size_t u = 0; u < ns; u++) {
        qsub *b = &sb[u];
        b->l0 = t0 + u * j->bq;
        b->nq = L - b->l0 < j->bq ? L - b->l0 : j->bq;
        b->qp = (b->nq + VLEN - 1) / VLEN * VLEN;
        b->out = j->out + ((n * L + b->l0) * H + h) * D;
        b->done = false;
        float *qt = subs + u * j->per_sub;
        b->o = qt + E * j->qp_max;
        b->m = b->o + j->bq * D;
        b->l = b->m + j->qp_max;
        if (j->qh) { /* transposed beforehand */
            b->qt = j->qh + (nh * j->sblocks + b->l0 / j->bq) * E * j->qp_max;
            b->ldq = j->qp_max;
        } else {
            /* qt = the sub-block's queries transposed and scaled by
             * temp·log2(e) */
            const float *q = a->q + ((n * L + b->l0) * H + h) * E;
            const float temp = j->temp;
            const size_t qp = b->qp;
            size_t i = 0;
#if HAVE_TRV
            for (; i + VLEN <= b->nq; i += VLEN) transpose_rowsv(q + i * H * E, H * E, temp, E, qt + i, qp);
#endif
            for (; i < b->nq; i++) {
                const float *qi = q + i * H * E;
                size_t e = 0;
                for (; e + VLEN <= E; e += VLEN) {
                    vf x = vload(qi + e) * temp;
                    for (int w = 0; w < VLEN; w++) qt[(e + (size_t)w) * qp + i] = x[w];
                }
                for (; e < E; e++) qt[e * qp + i] = qi[e] * temp;
            }
            for (size_t e = 0; e < E; e++)
                for (size_t col = b->nq; col < qp; col++) qt[e * qp + col] = 0.0f;
            b->qt = qt;
            b->ldq = qp;
        }
        for (size_t i = 0; i < b->qp; i++) {
            b->m[i] = -INFINITY;
            b->l[i] = 0.0f;
        }
    }

    size_t klen = S;
    if (a->key_lengths) {
        int64_t kl = a->key_lengths[n];
        klen = kl < 0 ? 0 : (size_t)kl < S ? (size_t)kl : S;
    }
    /* A causal mask hides every key after the task's last query. */
    if (a->attn_mask && a->mask_lower_triangular && klen > t0 + tn) klen = t0 + tn;

    for (size_t s0 = 0; s0 < klen; s0 += j->bk) {
        size_t nk = klen - s0 < j->bk ? klen - s0 : j->bk;
        /* The block's keys and values packed: rows E (D) apart instead of the
         * input's H·E, so that the rows the tiles read at once do not
         * compete for the same cache sets; the next block's rows are asked
         * for meanwhile. */
        if (j->kh) { /* packed per head beforehand */
            const float *kb = j->kh + nh * S * E + s0 * E, *vb = j->vh + nh * S * D + s0 * D;
            /* the next block's keys and values asked for meanwhile, a part
             * before each sub-block (the copy outgrows the caches at large
             * L, and the prefetchers do not run ahead this far) */
            const size_t nn = s0 + nk < klen ? (klen - s0 - nk < j->bk ? klen - s0 - nk : j->bk) : 0;
            for (size_t u = 0; u < ns; u++) {
                const size_t r0 = nn * u / ns, r1 = nn * (u + 1) / ns;
                prefetch_rows(kb + (nk + r0) * E, 1, (r1 - r0) * E, 0);
                prefetch_rows(vb + (nk + r0) * D, 1, (r1 - r0) * D, 0);
                sub_block(j, &sb[u], s0, nk, klen, kb, E, vb, D, pt, c, msub);
            }
            continue;
        }
        if (!j->inplace) {
            pack_rows(kp, k + s0 * H * E, nk, E, H * E);
            pack_rows(vp, v + s0 * H * D, nk, D, H * D);
        }
        if (s0 + nk < klen) {
            size_t nn = klen - s0 - nk < j->bk ? klen - s0 - nk : j->bk;
            prefetch_rows(k + (s0 + nk) * H * E, nn, E, H * E);
            prefetch_rows(v + (s0 + nk) * H * D, nn, D, H * D);
        }
        if (j->inplace)
            for (size_t u = 0; u < ns; u++)
                sub_block(j, &sb[u], s0, nk, klen, k + s0 * H * E, H * E, v + s0 * H * D, H * D, pt, c, msub);
        else
            for (size_t u = 0; u < ns; u++) sub_block(j, &sb[u], s0, nk, klen, kp, E, vp, D, pt, c, msub);
    }

    /* sub-blocks that saw no key block (klen 0): no visible key, NaN, as
     * torch */
    for (size_t u = 0; u < ns; u++) {
        const qsub *b = &sb[u];
        if (b->done) continue;
        for (size_t i = 0; i < b->nq; i++)
            for (size_t d = 0; d < D; d++) b->out[i * H * D + d] = NAN;
    }
    return ATTN_OK;
}

/* Task t of the head-by-head copy: rows [s0, s0 + COPY_ROWS) of batch n, every
 * head; the input is read in order (each row holds every head), so the
 * copy streams. */
static attn_status head_copy_task(void *arg, size_t task, int worker) {
    (void)worker;
    const fused_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, S = (size_t)a->S, L = (size_t)a->L;
    const size_t chunks = (S + COPY_ROWS - 1) / COPY_ROWS;
    if (task >= (size_t)a->N * chunks) {
        /* temp·Q transposed per sub-block: rows [l0, l0 + COPY_ROWS) of batch n */
        const size_t qchunks = (L + COPY_ROWS - 1) / COPY_ROWS, qp = j->qp_max, bq = j->bq;
        task -= (size_t)a->N * chunks;
        size_t n = task / qchunks, l0 = task % qchunks * COPY_ROWS;
        size_t l1 = L - l0 < COPY_ROWS ? L : l0 + COPY_ROWS;
        /* groups of up to 16 rows of one sub-block: their rows are read
         * while in cache, and each line of qt is written whole */
        for (size_t g0 = l0; g0 < l1;) {
            size_t sb = g0 / bq, i0 = g0 % bq, nq = L - sb * bq < bq ? L - sb * bq : bq;
            size_t g1 = g0 + 16;
            if (g1 > l1) g1 = l1;
            if (g1 > sb * bq + nq) g1 = sb * bq + nq;
            const float *qg = a->q + (n * L + g0) * H * E;
            const float temp = j->temp;
            const size_t ng = g1 - g0;
            for (size_t h = 0; h < H; h++) {
                float *restrict dst = j->qh + ((n * H + h) * j->sblocks + sb) * E * qp + i0;
                const float *restrict src = qg + h * E;
                size_t e;
#if HAVE_TRV
                if (ng % VLEN == 0)
                    for (size_t r0 = 0; r0 < ng; r0 += VLEN)
                        transpose_rowsv(src + r0 * H * E, H * E, temp, E, dst + r0, qp);
                else
#endif
                    for (e = 0; e < E; e++)
                        for (size_t r = 0; r < ng; r++) dst[e * qp + r] = src[r * H * E + e] * temp;
                if (g1 == sb * bq + nq) /* the sub-block's last query: zero its padding columns */
                    for (e = 0; e < E; e++)
                        for (size_t c = nq; c < qp; c++) dst[e * qp + c - i0] = 0.0f;
            }
            g0 = g1;
        }
        return ATTN_OK;
    }
    size_t n = task / chunks, s0 = task % chunks * COPY_ROWS;
    size_t s1 = S - s0 < COPY_ROWS ? S : s0 + COPY_ROWS;
    for (size_t s = s0; s < s1; s++) {
        const float *kr = a->k + (n * S + s) * H * E, *vr = a->v + (n * S + s) * H * D;
        for (size_t h = 0; h < H; h++) {
            memcpy(j->kh + ((n * H + h) * S + s) * E, kr + h * E, E * sizeof(float));
            memcpy(j->vh + ((n * H + h) * S + s) * D, vr + h * D, D * sizeof(float));
        }
    }
    return ATTN_OK;
}

/* Block sizes: per variant (the vector width sets the tiles), overridable
 * for tuning by ATTN_FUSED_BQ / ATTN_FUSED_BK. */
static size_t block_env(const char *name, size_t dflt) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    long v = strtol(s, NULL, 10);
    return v >= 1 && v <= 4096 ? (size_t)v : dflt;
}

/* The job of a forward on `threads` threads (blocks, tasks, the head-by-
 * head copy or not) and its workspace: one region of per-worker scratch and,
 * when the copy is taken, one for it.  The one layout that both the size
 * (attn__full_fused_ws) and the forward read, so they cannot drift apart;
 * ATTN_FUSED_* are read here, so set them before sizing.  *tasks is 0 when
 * there is nothing to compute (no query or no head). */
static attn_status fused_layout(const attn_qkv *a, int nthreads, fused_job *j, size_t *tasks,
                                size_t *scratch_off, size_t *copy_off, size_t *bytes, attn_error *err) {
    *j = (fused_job){.a = a};
    *tasks = 0;
    *bytes = 0;
    if (!ATTN_V(attn__full_fused_ok)(a)) return attn__err(err, ATTN_E_INVALID, "full: fused kernel needs D %% %d == 0", VLEN);
    size_t L = (size_t)a->L, S = (size_t)a->S, E = (size_t)a->E, D = (size_t)a->D;
    size_t bq = block_env("ATTN_FUSED_BQ", FUSED_BQ), bk = block_env("ATTN_FUSED_BK", FUSED_BK);
    j->bq = L < bq ? L : bq;
    j->bk = S < bk ? S : bk;
    if (j->bq == 0 || (size_t)a->N * (size_t)a->H == 0) return ATTN_OK;
    if (j->bk == 0) j->bk = 1;
    j->causal = a->attn_mask && a->mask_lower_triangular && !a->mask_all_ones;
    j->nh = (size_t)a->N * (size_t)a->H;
    j->qp_max = (j->bq + VLEN - 1) / VLEN * VLEN;
    size_t sblocks = (L + j->bq - 1) / j->bq;
    /* Sub-blocks per task: as many as leave every thread a few tasks. */
    size_t threads = nthreads < 1 ? 1 : (size_t)nthreads;
    j->nsub = block_env("ATTN_FUSED_NSUB", FUSED_NSUB);
    if (j->nsub > FUSED_NSUB_MAX) j->nsub = FUSED_NSUB_MAX;
    while (j->nsub > 1 && j->nh * ((sblocks + j->nsub - 1) / j->nsub) < 4 * threads) j->nsub--;
    j->qblocks = (sblocks + j->nsub - 1) / j->nsub;
    if (!attn__mul(j->nh, j->qblocks, tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "full: too many tasks");
    /* per worker: pt (bk·qp) + c, msub (2·qp) + kp (bk·E) + vp (bk·D), and
     * per sub-block qt (E·qp) + o (bq·D) + m, l (2·qp), all small: E and D
     * are bounded by the tensor limits, bk and qp by the block sizes. */
    size_t pt_c = 0, kv = 0, sub = 0, t = 0, subs = 0;
    if (!attn__mul(j->bk + 2, j->qp_max, &pt_c) || !attn__mul(j->bk, E + D, &kv) ||
        !attn__mul(E + 2, j->qp_max, &sub) || !attn__mul(j->bq, D, &t) || sub + t < sub)
        return attn__err(err, ATTN_E_OVERFLOW, "full: scratch size overflows");
    j->per_sub = (sub + t + 15) / 16 * 16;
    if (!attn__mul(j->per_sub, j->nsub, &subs) || pt_c + kv < pt_c || pt_c + kv + subs < subs)
        return attn__err(err, ATTN_E_OVERFLOW, "full: scratch size overflows");
    /* keep every worker's slice a whole number of cache lines apart */
    j->per_worker = (pt_c + kv + subs + 15) / 16 * 16;
    attn_ws_layout y = {0};
    *scratch_off = attn__ws_region(&y, (size_t)attn__workers_of(nthreads, *tasks), j->per_worker * sizeof(float));
    /* K and V copied head by head first, and Q transposed per sub-block,
     * when that copy is not large (it doubles the inputs' memory, at most
     * FUSED_HEAD_COPY_MAX): the tasks then read each head's keys and values
     * as sequential streams instead of rows H·E apart (which the hardware
     * prefetchers, stopping at page boundaries, do not follow), and the copy
     * itself reads the inputs in order, on every thread.  Larger inputs pack
     * each key block per task instead. */
    size_t kvn = 0, qn = 0, kvb = 0, head = 0;
    j->sblocks = sblocks;
    const char *hc = getenv("ATTN_FUSED_HEAD_COPY");
    *copy_off = SIZE_MAX;
    /* In place: one head's K and V within FUSED_INPLACE_MAX and row strides
     * that are not multiples of 4 KiB (measured on Zen 4 at H=8, E=D=64,
     * against the pre-pass: L=512 3-13% faster, L=1024 -2 to 6%, L=2048
     * 0 to -6%), or a single head. */
    const size_t HE = (size_t)a->H * E * sizeof(float), HD = (size_t)a->H * D * sizeof(float);
    j->inplace = a->H == 1 || (attn__mul(S, (E + D) * sizeof(float), &head) && head <= FUSED_INPLACE_MAX &&
                               HE % 4096 != 0 && HD % 4096 != 0);
    if (hc && *hc) j->inplace = !strcmp(hc, "inplace");
    if (!j->inplace && attn__mul(j->nh * S, E + D, &kvn) && attn__mul(j->nh * sblocks, E * j->qp_max, &qn) &&
        kvn + qn >= kvn && attn__mul(kvn + qn, sizeof(float), &kvb) && kvb <= FUSED_HEAD_COPY_MAX &&
        !(hc && !strcmp(hc, "0")))
        *copy_off = attn__ws_region(&y, kvb, 1);
    return attn__ws_size(&y, "full", bytes, err);
}

attn_status ATTN_V(attn__full_fused_ws)(const attn_qkv *a, int threads, size_t *bytes, attn_error *err) {
    fused_job j;
    size_t tasks, so, co;
    return fused_layout(a, threads, &j, &tasks, &so, &co, bytes, err);
}

attn_status ATTN_V(attn__full_fused)(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                                     attn_error *err) {
    fused_job j;
    size_t tasks, scratch_off, copy_off, bytes;
    attn_status st = fused_layout(a, attn_ctx_threads(ctx), &j, &tasks, &scratch_off, &copy_off, &bytes, err);
    if (st || tasks == 0) return st;
    /* the scores in units of log2: exp(s·temp) = 2^(s·temp·log2 e) */
    j.temp = (float)((double)temp * 1.4426950408889634);
    j.out = out;
    j.scratch = attn__ws_at(ws, scratch_off);
    if (copy_off != SIZE_MAX) {
        j.kh = attn__ws_at(ws, copy_off);
        j.vh = j.kh + j.nh * (size_t)a->S * (size_t)a->E;
        j.qh = j.vh + j.nh * (size_t)a->S * (size_t)a->D;
        size_t chunks = ((size_t)a->S + COPY_ROWS - 1) / COPY_ROWS,
               qchunks = ((size_t)a->L + COPY_ROWS - 1) / COPY_ROWS;
        st = attn__parallel_for(ctx, (size_t)a->N * (chunks + qchunks), head_copy_task, &j);
    }
    if (!st) st = attn__parallel_for(ctx, tasks, fused_task, &j);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}
