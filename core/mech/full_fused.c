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
#include <stdlib.h>
#include <string.h>

#define VLEN ATTN_VLEN
#if VLEN == 16
#define MRK 12  /* keys per qk tile: 12 × 2 accumulators */
#define NVMAX 4 /* vectors of D per pv tile */
#define MRV 6   /* queries per pv tile: 6 × 4 accumulators */
#else
#define MRK 5 /* 10 accumulators + 2 query vectors + broadcasts: no spill in 16 registers */
#define NVMAX 2
#define MRV 6
#endif
#define NRV 2 /* query vectors per qk tile */

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

int ATTN_V(attn__full_fused_ok)(const attn_qkv *a) { return a->D > 0 && a->D % VLEN == 0 && a->E > 0; }

/* pt[r][0 .. nv·VLEN) = temp · Σ_e k[r][e] qt[e][..] for r < mr.
 * k rows are ldk apart (the input's H·E), qt rows ldq apart. */
AI void qk_tile(const int mr, const int nv, size_t E, const float *qt, size_t ldq, const float *k,
                size_t ldk, float temp, float *pt, size_t ldp) {
    vf acc[MRK][NRV];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int x = 0; x < nv; x++) acc[r][x] = vsplat(0.0f);
    for (size_t e = 0; e < E; e++) {
        vf q[NRV];
#pragma GCC unroll 2
        for (int x = 0; x < nv; x++) q[x] = vload(qt + e * ldq + (size_t)x * VLEN);
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) {
            vf kb = vsplat(k[(size_t)r * ldk + e]);
#pragma GCC unroll 2
            for (int x = 0; x < nv; x++) acc[r][x] += kb * q[x];
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int x = 0; x < nv; x++) vstore(pt + (size_t)r * ldp + (size_t)x * VLEN, acc[r][x] * temp);
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

/* Scores of keys [0, nk) (k rows ldk apart) for qp query columns. */
static void qk_block(size_t E, size_t nk, size_t qp, const float *qt, const float *k, size_t ldk,
                     float temp, float *pt) {
    size_t s = 0;
    for (; s + MRK <= nk; s += MRK) {
        const float *ks = k + s * ldk;
        float *p = pt + s * qp;
        size_t i = 0;
        for (; i + NRV * VLEN <= qp; i += NRV * VLEN) qk_tile(MRK, NRV, E, qt + i, qp, ks, ldk, temp, p + i, qp);
        for (; i < qp; i += VLEN) qk_tile(MRK, 1, E, qt + i, qp, ks, ldk, temp, p + i, qp);
    }
    for (; s < nk; s++) {
        const float *ks = k + s * ldk;
        float *p = pt + s * qp;
        size_t i = 0;
        for (; i + NRV * VLEN <= qp; i += NRV * VLEN) qk_tile(1, NRV, E, qt + i, qp, ks, ldk, temp, p + i, qp);
        for (; i < qp; i += VLEN) qk_tile(1, 1, E, qt + i, qp, ks, ldk, temp, p + i, qp);
    }
}

/* One chunk of nv vectors of D for every query of the block. */
AI void pv_chunk(const int nv, size_t nq, size_t nk, const float *pt, size_t qp, const float *v,
                 size_t ldv, const float *c, float *o, size_t D) {
    size_t r = 0;
    for (; r + MRV <= nq; r += MRV) pv_tile(MRV, nv, nk, pt + r, qp, v, ldv, c + r, o + r * D, D);
    for (; r < nq; r++) pv_tile(1, nv, nk, pt + r, qp, v, ldv, c + r, o + r * D, D);
}

static void pv_block(size_t nq, size_t nk, size_t D, const float *pt, size_t qp, const float *v,
                     size_t ldv, const float *c, float *o) {
    for (size_t d0 = 0; d0 < D; d0 += NVMAX * VLEN) {
        size_t nv = (D - d0) / VLEN;
        if (nv >= NVMAX)
            pv_chunk(NVMAX, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D);
#if NVMAX > 2
        else if (nv == 3)
            pv_chunk(3, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D);
#endif
        else if (nv == 2)
            pv_chunk(2, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D);
        else
            pv_chunk(1, nq, nk, pt, qp, v + d0, ldv, c, o + d0, D);
    }
}

typedef struct fused_job {
    const attn_qkv *a;
    float temp;
    float *out;
    size_t qblocks;
    size_t bq, bk, qp_max; /* queries per task, keys per block, bq rounded up to VLEN */
    float *scratch;
    size_t per_worker; /* floats */
} fused_job;

static attn_status fused_task(void *arg, size_t task, int worker) {
    const fused_job *j = arg;
    const attn_qkv *a = j->a;
    const size_t H = (size_t)a->H, E = (size_t)a->E, D = (size_t)a->D, L = (size_t)a->L,
                 S = (size_t)a->S;
    size_t qb = task % j->qblocks, nh = task / j->qblocks, n = nh / H, h = nh % H;
    size_t l0 = qb * j->bq, nq = L - l0 < j->bq ? L - l0 : j->bq;
    size_t qp = (nq + VLEN - 1) / VLEN * VLEN;
    float *qt = j->scratch + (size_t)worker * j->per_worker;
    float *pt = qt + E * j->qp_max, *o = pt + j->bk * j->qp_max, *m = o + j->bq * D;
    float *l = m + j->qp_max, *c = l + j->qp_max, *msub = c + j->qp_max;
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
    const bool masked = a->attn_mask && !a->mask_all_ones;

    for (size_t e = 0; e < E; e++) {
        float *row = qt + e * qp;
        for (size_t i = 0; i < nq; i++) row[i] = q[i * H * E + e];
        for (size_t i = nq; i < qp; i++) row[i] = 0.0f;
    }
    memset(o, 0, nq * D * sizeof *o);
    for (size_t i = 0; i < qp; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }

    for (size_t s0 = 0; s0 < klen; s0 += j->bk) {
        size_t nk = klen - s0 < j->bk ? klen - s0 : j->bk;
        qk_block(E, nk, qp, qt, k + s0 * H * E, H * E, j->temp, pt);
        if (masked) {
            for (size_t i = 0; i < nq; i++) {
                const uint8_t *mrow = a->attn_mask + (l0 + i) * S + s0;
                for (size_t s = 0; s < nk; s++)
                    if (!mrow[s]) pt[s * qp + i] = -INFINITY;
            }
        }
        /* Column maxima (NaN scores are skipped here and poison the sum). */
        for (size_t i = 0; i < qp; i++) c[i] = m[i];
        for (size_t s = 0; s < nk; s++) {
            const float *p = pt + s * qp;
#pragma omp simd
            for (size_t i = 0; i < qp; i++) c[i] = p[i] > c[i] ? p[i] : c[i];
        }
        /* c holds the new max m'; subtract 0 where no key is visible yet so
         * that exp(-inf - m') is 0, not NaN. */
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
        pv_block(nq, nk, D, pt, qp, v + s0 * H * D, H * D, c, o);
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

attn_status ATTN_V(attn__full_fused)(float temp, attn_ctx *ctx, const attn_qkv *a, float *out,
                                     attn_error *err) {
    if (!ATTN_V(attn__full_fused_ok)(a)) return attn__err(err, ATTN_E_INVALID, "full: fused kernel needs D %% %d == 0", VLEN);
    fused_job j = {.a = a, .temp = temp, .out = out};
    size_t L = (size_t)a->L, S = (size_t)a->S, E = (size_t)a->E, D = (size_t)a->D;
    j.bq = L < FUSED_BQ ? L : FUSED_BQ;
    j.bk = S < FUSED_BK ? S : FUSED_BK;
    if (j.bq == 0 || (size_t)a->N * (size_t)a->H == 0) return ATTN_OK;
    if (j.bk == 0) j.bk = 1;
    j.qp_max = (j.bq + VLEN - 1) / VLEN * VLEN;
    j.qblocks = (L + j.bq - 1) / j.bq;
    size_t tasks;
    if (!attn__mul((size_t)a->N * (size_t)a->H, j.qblocks, &tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "full: too many tasks");
    /* qt (E·qp) + pt (bk·qp) + o (bq·D) + m, l, c, msub (4·qp), all small:
     * E and D are bounded by the tensor limits, bk and qp by the block sizes. */
    size_t per = 0, t;
    if (!attn__mul(E + j.bk + 4, j.qp_max, &per) || !attn__mul(j.bq, D, &t) || per + t < per)
        return attn__err(err, ATTN_E_OVERFLOW, "full: scratch size overflows");
    /* keep every worker's slice a whole number of cache lines apart */
    j.per_worker = (per + t + 15) / 16 * 16;
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
