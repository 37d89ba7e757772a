/*
 * clustering.c — hashing, Hamming k-means, cluster means and top-k for the
 * clustered attentions (see clustering.h).  Everything here works on one
 * (batch, head) slice with caller-provided scratch, so the callers can run
 * slices in parallel without allocating.
 */
#include "mech/clustering.h"

#include <math.h>
#include <string.h>

attn_status attn__clu_hash(const float *x, size_t L, size_t ldx, size_t E, const float *planes,
                           int bits, float *proj, uint64_t *hash) {
    /* Shapes: proj (L,bits) = x (L,E) · planes[:, :E]ᵀ.  The reference sums
     * each projection in a plain loop compiled with -ffast-math, so its
     * order is the compiler's; a bit whose projection lies within rounding
     * of the offset may differ, exactly as between two builds of it. */
    size_t B = (size_t)bits;
    ATTN_TRY(attn__gemm(0, 1, L, B, E, 1.0f, x, ldx, planes, E + 1, 0.0f, proj, B));
    for (size_t l = 0; l < L; l++) {
        uint64_t h = 0;
        const float *p = proj + l * B;
        for (size_t i = 0; i < B; i++)
            h |= (uint64_t)(p[i] > planes[i * (E + 1) + E]) << i;
        hash[l] = h;
    }
    return ATTN_OK;
}

/* Label of the nearest centroid (the lowest index wins ties): a kernel per
 * instruction set (kernels/rowops.c), for POPCNT. */
static void assign(const uint64_t *hash, size_t ql, const uint64_t *centroids, size_t K,
                   int32_t *labels) {
    attn__hamming_nearest(hash, ql, centroids, K, labels);
}

/* Bitwise majority of each cluster's members (a tie gives 0); an empty
 * cluster gets a random centroid. */
static void recompute(const uint64_t *hash, size_t ql, const int32_t *labels, size_t K, int bits,
                      attn_rng *rng, attn_clu_work *w, int32_t *members) {
    size_t B = (size_t)bits;
    memset(w->bitcnt, 0, K * B * sizeof *w->bitcnt);
    memset(members, 0, K * sizeof *members);
    for (size_t l = 0; l < ql; l++) {
        size_t c = (size_t)labels[l];
        int32_t *cnt = w->bitcnt + c * B;
        uint64_t h = hash[l];
        for (size_t b = 0; b < B; b++) cnt[b] += ((h >> b) & 1) ? 1 : -1;
        members[c]++;
    }
    for (size_t c = 0; c < K; c++) {
        if (members[c] == 0) {
            w->centroids[c] = attn__rng_u64(rng) & attn__clu_bitmask(bits);
            continue;
        }
        uint64_t v = 0;
        const int32_t *cnt = w->bitcnt + c * B;
        for (size_t b = 0; b < B; b++) v |= (uint64_t)(cnt[b] > 0) << b;
        w->centroids[c] = v;
    }
}

void attn__clu_kmeans(const uint64_t *hash, size_t L, size_t ql, const int64_t *init, size_t K,
                      int64_t iterations, int bits, attn_rng *rng, attn_clu_work *w,
                      int32_t *labels, int32_t *counts) {
    for (size_t k = 0; k < K; k++) w->centroids[k] = hash[init[k]];
    for (size_t l = 0; l < L; l++) labels[l] = (int32_t)K + 1;
    for (int64_t it = 1; it < iterations; it++) {
        assign(hash, ql, w->centroids, K, labels);
        recompute(hash, ql, labels, K, bits, rng, w, counts);
    }
    assign(hash, ql, w->centroids, K, labels);
    memset(counts, 0, K * sizeof *counts);
    for (size_t l = 0; l < ql; l++) counts[labels[l]]++;
}

void attn__clu_means(const float *x, size_t ldx, size_t E, const int32_t *labels, size_t ql,
                     const int32_t *counts, size_t K, float *out) {
    /* As aggregate_cpu.cpp: out[c] += x_l * (1/count_c), member by member. */
    memset(out, 0, K * E * sizeof *out);
    for (size_t l = 0; l < ql; l++) {
        size_t c = (size_t)labels[l];
        float f = 1.0f / (float)counts[c];
        const float *src = x + l * ldx;
        float *dst = out + c * E;
        for (size_t e = 0; e < E; e++) dst[e] += src[e] * f;
    }
}

/* a ranks above b: larger value (NaN largest), then lower index. */
static int above(attn_clu_slot a, attn_clu_slot b) {
    int na = isnan(a.v), nb = isnan(b.v);
    if (na != nb) return na;
    if (!na && a.v != b.v) return a.v > b.v;
    return a.i < b.i;
}

/* Restores the min-heap (root = lowest ranked) below position p. */
static void sift_down(attn_clu_slot *h, size_t n, size_t p) {
    for (;;) {
        size_t lo = p, a = 2 * p + 1, b = a + 1;
        if (a < n && above(h[lo], h[a])) lo = a;
        if (b < n && above(h[lo], h[b])) lo = b;
        if (lo == p) return;
        attn_clu_slot t = h[p];
        h[p] = h[lo];
        h[lo] = t;
        p = lo;
    }
}

void attn__clu_topk(const float *row, size_t S, size_t k, attn_clu_slot *heap, int32_t *idx) {
    if (k == 0) return;
    for (size_t s = 0; s < k; s++) heap[s] = (attn_clu_slot){row[s], (int32_t)s};
    for (size_t p = k / 2; p-- > 0;) sift_down(heap, k, p);
    for (size_t s = k; s < S; s++) {
        attn_clu_slot x = {row[s], (int32_t)s};
        if (above(x, heap[0])) {
            heap[0] = x;
            sift_down(heap, k, 0);
        }
    }
    for (size_t j = 0; j < k; j++) idx[j] = heap[j].i;
}
