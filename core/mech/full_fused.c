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
 * query — so K is read in place by broadcasts, V is read in place as
 * vectors, and the softmax's max and sum become vertical vector
 * operations, one lane per query.  Nothing is packed but the block's
 * queries.
 *
 * Shapes, per (n, h) and block of nq <= BQ queries starting at l0
 * (qp = nq rounded up to VLEN):
 *   qt  (E, qp)    the block's queries, transposed, zero-padded columns
 *   pt  (BK, qp)   scores of up to BK keys, row = key, column = query
 *   o   (nq, D)    unnormalised output
 *   m, l (qp)      running max and running sum per query
 * For each key block [s0, s0 + nk):
 *   pt = temp · K[s0 .. s0+nk) qt              qk_tile: MRK keys × 2 vectors
 *   masked entries -> -inf;  m' = max(m, column max of pt);  c = exp(m - m')
 *   pt = exp(pt - m');  l = c·l + column sums of pt
 *   o = c·o + ptᵀ V[s0 .. s0+nk)               pv_tile: MRV queries × NV vectors
 * and finally out = o / l (NaN where l is 0: a query that sees no key).
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
#include "mech/full.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define VLEN ATTN_VLEN
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

#ifndef FUSED_BQ
#define FUSED_BQ 96 /* queries per task */
#endif
#ifndef FUSED_BK
#define FUSED_BK 256 /* keys per block */
#endif

ATTN_CPU_DECLARE(ATTN_VARIANT)

typedef attn_vf vf;
#define AI ATTN_AI
#define vload attn_vload
#define vstore attn_vstore
#define vsplat attn_vsplat

/* Lane-wise selects (C has no vector ?:): the comparison's all-ones lanes
 * pick a. */
typedef int32_t vi __attribute__((vector_size(VLEN * sizeof(int32_t))));
AI vf vselect(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/* max(a, b) as `a > b ? a : b`: a NaN a is skipped */
AI vf vmax(vf a, vf b) { return vselect(a > b, a, b); }

int ATTN_V(attn__full_fused_ok)(const attn_qkv *a) { return a->D > 0 && a->D % VLEN == 0 && a->E > 0; }

/* pt[r][0 .. nv·VLEN) = temp · Σ_e k[r][e] qt[e][..] for r < mr, and
 * cmax[..] = max(cmax[..], column maxima of those rows).  k rows are ldk
 * apart, qt rows ldq apart.  diag: the causal mask applies, the tile's
 * first key and first query being kidx and qidx (global indices): scores of
 * keys after the query are -inf. */
AI void qk_tile(const int mr, const int nv, size_t E, const float *qt, size_t ldq, const float *k,
                size_t ldk, float temp, float *pt, size_t ldp, float *cmax, bool diag, ptrdiff_t kidx,
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
                vf sc = acc[r][x] * temp;
                sc = vselect(qi >= vsplat(0.0f), sc, ninf);
                vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, sc);
                mx[x] = vmax(sc, mx[x]);
            }
    } else {
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
            for (int x = 0; x < nv; x++) {
                vf sc = acc[r][x] * temp;
                vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, sc);
                mx[x] = vmax(sc, mx[x]);
            }
    }
#pragma GCC unroll 4
    for (int x = 0; x < nv; x++) vstore(cmax + (size_t)x * VLEN, mx[x]);
}

/* o[r][0 .. nv·VLEN) = c[r] · o[r][..] + Σ_s pt[s][r] v[s][..] for r < mr. */
AI void pv_tile(const int mr, const int nv, size_t nk, const float *pt, size_t ldp, const float *v,
                size_t ldv, const float *c, float *o, size_t ldo) {
    vf acc[MRV][NVMAX];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        vf cr = vsplat(c[r]);
#pragma GCC unroll 4
        for (int x = 0; x < nv; x++) acc[r][x] = vload(o + (size_t)r * ldo + (size_t)x * VLEN) * cr;
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
AI void qk_rows(const int mr, size_t E, size_t qp, const float *qt, const float *ks, size_t ldk, float temp,
                float *p, float *cmax, bool causal, ptrdiff_t kidx, ptrdiff_t l0) {
    size_t i = 0;
    for (; i + NRV * VLEN <= qp; i += NRV * VLEN) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + NRV * VLEN - 1)
            qk_tile_masked(mr, NRV, p + i, qp);
        else
            qk_tile(mr, NRV, E, qt + i, qp, ks, ldk, temp, p + i, qp, cmax + i,
                    causal && kidx + mr - 1 > qidx, kidx, qidx);
    }
#if NRV > 2
    if (i + 2 * VLEN <= qp) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + 2 * VLEN - 1)
            qk_tile_masked(mr, 2, p + i, qp);
        else
            qk_tile(mr, 2, E, qt + i, qp, ks, ldk, temp, p + i, qp, cmax + i, causal && kidx + mr - 1 > qidx,
                    kidx, qidx);
        i += 2 * VLEN;
    }
#endif
    for (; i < qp; i += VLEN) {
        ptrdiff_t qidx = l0 + (ptrdiff_t)i;
        if (causal && kidx > qidx + VLEN - 1)
            qk_tile_masked(mr, 1, p + i, qp);
        else
            qk_tile(mr, 1, E, qt + i, qp, ks, ldk, temp, p + i, qp, cmax + i, causal && kidx + mr - 1 > qidx,
                    kidx, qidx);
    }
}

/* Scores of keys [0, nk) (k rows ldk apart) for qp query columns, and the
 * running column maxima cmax.  causal: key s0 + s is visible to query
 * l0 + i when s0 + s <= l0 + i. */
static void qk_block(size_t E, size_t nk, size_t qp, const float *qt, const float *k, size_t ldk, float temp,
                     float *pt, float *cmax, bool causal, size_t s0, size_t l0) {
    size_t s = 0;
    for (; s + MRK <= nk; s += MRK)
        qk_rows(MRK, E, qp, qt, k + s * ldk, ldk, temp, pt + s * qp, cmax, causal, (ptrdiff_t)(s0 + s),
                (ptrdiff_t)l0);
    for (; s < nk; s++)
        qk_rows(1, E, qp, qt, k + s * ldk, ldk, temp, pt + s * qp, cmax, causal, (ptrdiff_t)(s0 + s),
                (ptrdiff_t)l0);
}

/* One chunk of nv vectors of D for every query of the block.  causal: key
 * s0 + s is visible to query l0 + r when s0 + s <= l0 + r, so a group of
 * queries stops at its last query's key (the scores after it are 0). */
AI void pv_chunk(const int nv, size_t nq, size_t nk, const float *pt, size_t qp, const float *v,
                 size_t ldv, const float *c, float *o, size_t D, bool causal, size_t s0, size_t l0) {
    size_t r = 0;
    for (; r + MRV <= nq; r += MRV) {
        size_t n = nk;
        if (causal && l0 + r + MRV - s0 < n) n = l0 + r + MRV - s0;
        pv_tile(MRV, nv, n, pt + r, qp, v, ldv, c + r, o + r * D, D);
    }
    for (; r < nq; r++) {
        size_t n = nk;
        if (causal && l0 + r + 1 - s0 < n) n = l0 + r + 1 - s0;
        pv_tile(1, nv, n, pt + r, qp, v, ldv, c + r, o + r * D, D);
    }
}

static void pv_block(size_t nq, size_t nk, size_t D, const float *pt, size_t qp, const float *v,
                     size_t ldv, const float *c, float *o, bool causal, size_t s0, size_t l0) {
    for (size_t d0 = 0; d0 < D; d0 += NVMAX * VLEN) {
        size_t nv = (D - d0) / VLEN;
        if (nv >= NVMAX)
            pv_chunk(NVMAX, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0);
#if NVMAX > 2
        else if (nv == 3)
            pv_chunk(3, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0);
#endif
        else if (nv == 2)
            pv_chunk(2, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0);
        else
            pv_chunk(1, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D, causal, s0, l0);
    }
}

typedef struct fused_job {
    const attn_qkv *a;
    float temp;
    float *out;
    size_t qblocks, nh;
    size_t bq, bk, qp_max; /* queries per task, keys per block, bq rounded up to VLEN */
    bool causal;           /* the lower-triangular mask: computed, not read */
    float *scratch;
    size_t per_worker; /* floats */
} fused_job;

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
    size_t l0 = qb * j->bq, nq = L - l0 < j->bq ? L - l0 : j->bq;
    size_t qp = (nq + VLEN - 1) / VLEN * VLEN;
    float *qt = j->scratch + (size_t)worker * j->per_worker;
    float *pt = qt + E * j->qp_max, *o = pt + j->bk * j->qp_max, *m = o + j->bq * D;
    float *l = m + j->qp_max, *c = l + j->qp_max, *msub = c + j->qp_max;
    float *kp = msub + j->qp_max, *vp = kp + j->bk * E;
    const float *q = a->q + ((n * L + l0) * H + h) * E;
    const float *k = a->k + (n * S * H + h) * E;
    const float *v = a->v + (n * S * H + h) * D;

    size_t klen = S;
    if (a->key_lengths) {
        int64_t kl = a->key_lengths[n];
        klen = kl < 0 ? 0 : (size_t)kl < S ? (size_t)kl : S;
    }
    /* A causal mask hides every key after the block's last query. */
    if (a->attn_mask && a->mask_lower_triangular && klen > l0 + nq) klen = l0 + nq;
    const bool causal = j->causal;
    const bool masked = a->attn_mask && !a->mask_all_ones && !causal;

    /* qt = the block's queries transposed; rows of q read whole */
    for (size_t i = 0; i < nq; i++) {
        const float *qi = q + i * H * E;
        for (size_t e = 0; e < E; e++) qt[e * qp + i] = qi[e];
    }
    for (size_t e = 0; e < E; e++)
        for (size_t i = nq; i < qp; i++) qt[e * qp + i] = 0.0f;
    memset(o, 0, nq * D * sizeof *o);
    for (size_t i = 0; i < qp; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }

    for (size_t s0 = 0; s0 < klen; s0 += j->bk) {
        size_t nk = klen - s0 < j->bk ? klen - s0 : j->bk;
        /* The block's keys and values packed: rows E (D) apart instead of the
         * input's H·E, so that the rows the tiles read at once do not
         * compete for the same cache sets. */
        for (size_t s = 0; s < nk; s++) {
            memcpy(kp + s * E, k + (s0 + s) * H * E, E * sizeof *kp);
            memcpy(vp + s * D, v + (s0 + s) * H * D, D * sizeof *vp);
        }
        /* Only the blocks the diagonal crosses need the causal mask. */
        bool diag = causal && s0 + nk - 1 > l0;
        /* c = the new running max m' (column maxima of the scores and m;
         * NaN scores are skipped here and poison the sum) */
        for (size_t i = 0; i < qp; i++) c[i] = m[i];
        qk_block(E, nk, qp, qt, kp, E, j->temp, pt, c, diag, s0, l0);
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
        /* subtract 0 where no key is visible yet so that exp(-inf - m') is
         * 0, not NaN. */
#pragma omp simd
        for (size_t i = 0; i < qp; i++) {
            float mn = c[i];
            msub[i] = mn == -INFINITY ? 0.0f : mn;
            float scale = fast_exp(m[i] - msub[i]); /* 0 when m is -inf */
            m[i] = mn;
            l[i] *= scale;
            c[i] = scale;
        }
        for (size_t s = 0; s < nk; s++) {
            float *p = pt + s * qp;
#pragma omp simd
            for (size_t i = 0; i < qp; i++) {
                float x = fast_exp(p[i] - msub[i]);
                p[i] = x;
                l[i] += x;
            }
        }
        pv_block(nq, nk, D, pt, qp, vp, D, c, o, diag, s0, l0);
    }

    float *out = j->out + ((n * L + l0) * H + h) * D;
    for (size_t i = 0; i < nq; i++) {
        float inv = l[i] > 0.0f ? 1.0f / l[i] : NAN; /* no visible key: NaN, as torch */
        const float *oi = o + i * D;
        float *dst = out + i * H * D;
        for (size_t d = 0; d < D; d++) dst[d] = oi[d] * inv;
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

attn_status ATTN_V(attn__full_fused)(float temp, attn_ctx *ctx, const attn_qkv *a, float *out,
                                     attn_error *err) {
    if (!ATTN_V(attn__full_fused_ok)(a)) return attn__err(err, ATTN_E_INVALID, "full: fused kernel needs D %% %d == 0", VLEN);
    fused_job j = {.a = a, .temp = temp, .out = out};
    size_t L = (size_t)a->L, S = (size_t)a->S, E = (size_t)a->E, D = (size_t)a->D;
    size_t bq = block_env("ATTN_FUSED_BQ", FUSED_BQ), bk = block_env("ATTN_FUSED_BK", FUSED_BK);
    j.bq = L < bq ? L : bq;
    j.bk = S < bk ? S : bk;
    if (j.bq == 0 || (size_t)a->N * (size_t)a->H == 0) return ATTN_OK;
    if (j.bk == 0) j.bk = 1;
    j.causal = a->attn_mask && a->mask_lower_triangular && !a->mask_all_ones;
    j.nh = (size_t)a->N * (size_t)a->H;
    j.qp_max = (j.bq + VLEN - 1) / VLEN * VLEN;
    j.qblocks = (L + j.bq - 1) / j.bq;
    size_t tasks;
    if (!attn__mul(j.nh, j.qblocks, &tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "full: too many tasks");
    /* qt (E·qp) + pt (bk·qp) + o (bq·D) + m, l, c, msub (4·qp) + kp (bk·E)
     * + vp (bk·D), all small: E and D are bounded by the tensor limits, bk
     * and qp by the block sizes. */
    size_t per = 0, t, kv;
    if (!attn__mul(E + j.bk + 4, j.qp_max, &per) || !attn__mul(j.bq, D, &t) || per + t < per ||
        !attn__mul(j.bk, E + D, &kv) || per + t + kv < per + t)
        return attn__err(err, ATTN_E_OVERFLOW, "full: scratch size overflows");
    /* keep every worker's slice a whole number of cache lines apart */
    j.per_worker = (per + t + kv + 15) / 16 * 16;
    int workers = attn__workers(ctx, tasks);
    size_t bytes;
    if (!attn__mul((size_t)workers, j.per_worker * sizeof(float), &bytes))
        return attn__err(err, ATTN_E_OVERFLOW, "full: scratch size overflows");
    j.scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!j.scratch) return attn__err(err, ATTN_E_NOMEM, "out of memory (%zu bytes of scratch)", bytes);
    attn_status st = attn__parallel_for(ctx, tasks, fused_task, &j);
    free(j.scratch);
    if (st == ATTN_E_CANCELLED) attn__err(err, st, "cancelled");
    return st;
}
