/*
 * clustering.h — the query-grouping machinery of fast-transformers'
 * clustered attentions (hashing/hash_cpu.cpp, clustering/hamming/
 * cluster_cpu.cpp, aggregate_cpu.cpp), and the top-k selection that the
 * improved variants use.  Private to core/mech/clustered.c; kept apart so
 * that each file reads in one sitting.
 */
#ifndef ATTN_MECH_CLUSTERING_H
#define ATTN_MECH_CLUSTERING_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Mask of the `bits` low bits (bits in [1, 64]; 64 is all ones, which a
 * plain 1 << 64 would get wrong). */
static inline uint64_t attn__clu_bitmask(int bits) {
    return bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
}

/* SIMPLE-LSH hashes of L vectors.
 * Shapes: x (L,E) with row stride ldx; planes (bits,E+1), row i is the
 * hyperplane normal in [0,E) and its offset in column E; proj (L,bits)
 * scratch; hash (L).  Bit i of hash[l] is [x_l·planes[i,:E] > planes[i,E]]
 * (strict), bit 63 included.  Fails only as attn__gemm does. */
attn_status attn__clu_hash(const float *x, size_t L, size_t ldx, size_t E, const float *planes,
                           int bits, float *proj, uint64_t *hash);

/* Scratch of attn__clu_kmeans. */
typedef struct attn_clu_work {
    uint64_t *centroids; /* (K) */
    int32_t *bitcnt;     /* (K,bits) */
} attn_clu_work;

/* Lloyd's algorithm in Hamming space, as cluster_cpu.cpp runs it.
 * Shapes: hash (L); init (K) positions in [0,L) whose hashes seed the
 * centroids (they may be padded positions, as in the reference); labels
 * (L) out, K+1 for padded queries l >= ql; counts (K) out, members per
 * cluster.  `iterations` assignment steps with a centroid update between
 * each two; an empty cluster is re-drawn uniformly in [0, 2^bits) from
 * `rng` (the reference uses an unseeded std::mt19937 there). */
void attn__clu_kmeans(const uint64_t *hash, size_t L, size_t ql, const int64_t *init, size_t K,
                      int64_t iterations, int bits, attn_rng *rng, attn_clu_work *w,
                      int32_t *labels, int32_t *counts);

/* Cluster means of the non-padded queries (clustered_aggregate with
 * factors 1/count).  Shapes: x (L,E) row stride ldx; labels (L); counts
 * (K); out (K,E), zero for an empty cluster. */
void attn__clu_means(const float *x, size_t ldx, size_t E, const int32_t *labels, size_t ql,
                     const int32_t *counts, size_t K, float *out);

/* One (value, index) slot of the top-k heap. */
typedef struct attn_clu_slot {
    float v;
    int32_t i;
} attn_clu_slot;

/* Indices of the k largest of row[0..S) into idx (k <= S), in no
 * particular order.  NaN ranks above everything (as torch.topk ranks it);
 * ties go to the lower index.  heap: k slots of scratch. */
void attn__clu_topk(const float *row, size_t S, size_t k, attn_clu_slot *heap, int32_t *idx);

#endif
