/*
 * clustered.c — fast-transformers' clustered attentions
 * (docs/reference/fast-transformers-spec.md §5): ClusteredAttention,
 * ImprovedClusteredAttention and ImprovedClusteredCausalAttention.  All
 * three hash the queries with
 * random hyperplanes, group them by k-means in Hamming space and attend
 * with the group centroids; they differ in what they do with the centroid
 * attention.  Hashing and clustering live in clustering.c.
 *
 * The reference is random (torch planes, numpy centroid choice, an
 * unseedable re-draw of empty clusters); here one `seed` drives all of it,
 * freshly at each forward, so a model gives the same output for the same
 * input and stays immutable.
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"
#include "mech/clustering.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CLUSTERED, IMPROVED, IMPROVED_CAUSAL };

struct clustered {
    int variant;
    int64_t clusters, iterations, topk;
    int bits;
    bool hash_bias;
    bool temp_null;
    double temp;
    uint64_t seed;
};

#define P_CLUSTERS {"clusters", ATTN_P_INT, NULL, 1, 1e9, NULL, \
    "Number of query clusters C (required; at most the number of queries L)"}
#define P_ITERATIONS {"iterations", ATTN_P_INT, "10", 0, 1e6, NULL, \
    "Lloyd iterations of the Hamming k-means"}
#define P_BITS {"bits", ATTN_P_INT, "32", 1, 64, NULL, \
    "Hash bits; default 32 as the constructor (the library's builder registry defaults to 63)"}
#define P_HASH_BIAS {"hash_bias", ATTN_P_BOOL, "true", 0, 0, NULL, \
    "Random offsets on the hash planes (Hamming ~ L2 distance); false: through the origin (~ cosine)"}
#define P_TOPK {"topk", ATTN_P_INT, "32", 0, 1e9, NULL, \
    "Keys per cluster that each query re-scores exactly"}
#define P_TEMP {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, \
    "Softmax temperature; null or 0: 1/sqrt(E)"}
#define P_DROPOUT {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL, \
    "Accepted and ignored (inference is eval mode)"}
#define P_SEED {"seed", ATTN_P_INT, "0", 0, 0, NULL, \
    "attnd extension: seeds the hash planes, the initial centroids and empty-cluster re-draws " \
    "(the reference draws them from torch, numpy and std::random_device)"}

static const attn_param clustered_params[] = {
    P_CLUSTERS, P_ITERATIONS, P_BITS, P_HASH_BIAS, P_TEMP, P_DROPOUT, P_SEED, {0},
};
static const attn_param improved_params[] = {
    P_CLUSTERS, P_ITERATIONS, P_BITS, P_HASH_BIAS, P_TOPK, P_TEMP, P_DROPOUT, P_SEED, {0},
};

static attn_status init_variant(attn_model *m, struct clustered *s, const attn_cfg *cfg,
                                int variant) {
    attn_status st;
    int64_t bits, seed;
    double dropout;
    bool hash_bias;
    if ((st = attn__cfg_check_keys(cfg)) ||
        (st = attn__cfg_int(cfg, "clusters", &s->clusters, NULL)) ||
        (st = attn__cfg_int(cfg, "iterations", &s->iterations, NULL)) ||
        (st = attn__cfg_int(cfg, "bits", &bits, NULL)) ||
        (st = attn__cfg_bool(cfg, "hash_bias", &hash_bias)) ||
        (st = attn__cfg_float(cfg, "softmax_temp", &s->temp, &s->temp_null)) ||
        (st = attn__cfg_float(cfg, "attention_dropout", &dropout, NULL)) ||
        (st = attn__cfg_int(cfg, "seed", &seed, NULL)))
        return st;
    if (variant != CLUSTERED && (st = attn__cfg_int(cfg, "topk", &s->topk, NULL))) return st;
    s->variant = variant;
    s->bits = (int)bits;
    s->hash_bias = hash_bias;
    s->seed = (uint64_t)seed;
    return attn__qkv_declare(m, 0, 0);
}

static attn_status init_clustered(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return init_variant(m, state, cfg, CLUSTERED);
}
static attn_status init_improved(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return init_variant(m, state, cfg, IMPROVED);
}
static attn_status init_causal(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    return init_variant(m, state, cfg, IMPROVED_CAUSAL);
}

/* ---- forward ---- */

/* One worker's scratch (offsets into its copy) and the whole workspace:
 * the hyperplanes, the initial centroid positions, then a copy per worker. */
struct layout {
    size_t proj, hash, labels, centroids, bitcnt, counts, qc, qk, vc, topk, keep, heap, z, vt;
    attn_ws_layout w;
    size_t planes, perm, scratch, nplanes, tasks;
    size_t k; /* top-k keys actually used */
    size_t bytes;
};

struct job {
    const struct clustered *s;
    const attn_qkv *a;
    float *out;
    float temp;
    size_t K, k;          /* clusters; top-k keys actually used */
    const float *planes;  /* (bits, E+1) */
    const int64_t *init;  /* (K) initial centroid positions */
    uint64_t task_seed;
    struct layout y;
    char *scratch;        /* workers × y.w.size */
    float *map;           /* (N,H,L,S) weights each query used, or NULL (the ordinary forward) */
};

static size_t length_of(const int64_t *lengths, int64_t n, int64_t full) {
    if (!lengths) return (size_t)full;
    int64_t x = lengths[n];
    return (size_t)(x < 0 ? 0 : x > full ? full : x);
}

/* out (D) = Σ_j w[j] · v[idx[j]], summed as the reference's sparse
 * weighted average does, from zero in j order. */
static void gather_average(const float *w, const int32_t *idx, size_t k, const float *v, size_t ldv,
                           size_t D, float *out) {
    memset(out, 0, D * sizeof *out);
    for (size_t j = 0; j < k; j++) {
        const float *row = v + (size_t)idx[j] * ldv;
        attn__axpy(out, w[j], row, D);
    }
}

/* One (n, h) slice.  Shapes inside: q (L,E) row stride H·E, k (S,E),
 * v (S,D) row stride H·D, o (L,D) row stride H·D; the centroid products
 * qk (C,S) and vc (C,D) are contiguous. */
static attn_status slice(void *arg, size_t t, int worker) {
    const struct job *j = arg;
    const struct clustered *s = j->s;
    const attn_qkv *a = j->a;
    size_t L = (size_t)a->L, S = (size_t)a->S, H = (size_t)a->H, E = (size_t)a->E,
           D = (size_t)a->D, K = j->K, kk = j->k, n = t / H, h = t % H;
    size_t ql = length_of(a->query_lengths, (int64_t)n, a->L);
    size_t kl = length_of(a->key_lengths, (int64_t)n, a->S);
    size_t ldq = H * E, ldv = H * D;
    const float *q = a->q + n * L * ldq + h * E;
    const float *k = a->k + n * S * ldq + h * E;
    const float *v = a->v + n * S * ldv + h * D;
    float *o = j->out + n * L * ldv + h * D;
    float *map = j->map ? j->map + t * L * S : NULL;

    char *base = j->scratch + (size_t)worker * j->y.w.size;
    float *proj = (float *)(base + j->y.proj), *qc = (float *)(base + j->y.qc);
    float *qk = (float *)(base + j->y.qk), *vc = (float *)(base + j->y.vc);
    float *keep = (float *)(base + j->y.keep), *z = (float *)(base + j->y.z);
    float *vt = (float *)(base + j->y.vt);
    uint64_t *hash = (uint64_t *)(base + j->y.hash);
    int32_t *labels = (int32_t *)(base + j->y.labels), *counts = (int32_t *)(base + j->y.counts);
    int32_t *topk = (int32_t *)(base + j->y.topk);
    attn_clu_slot *heap = (attn_clu_slot *)(base + j->y.heap);
    attn_clu_work w = {(uint64_t *)(base + j->y.centroids), (int32_t *)(base + j->y.bitcnt)};

    /* A stream per slice keeps results independent of the thread count. */
    attn_rng rng;
    attn__rng_seed(&rng, j->task_seed ^ ((uint64_t)(t + 1) * 0xD1B54A32D192ED03ull));
    ATTN_TRY(attn__clu_hash(q, L, ldq, E, j->planes, s->bits, proj, hash));
    attn__clu_kmeans(hash, L, ql, j->init, K, s->iterations, s->bits, &rng, &w, labels, counts);
    attn__clu_means(q, ldq, E, labels, ql, counts, K, qc);

    /* Centroid logits with the key-padding mask added, as the reference
     * adds key_lengths.additive_matrix (0 / -inf). */
    ATTN_TRY(attn__gemm(0, 1, K, S, E, 1.0f, qc, E, k, ldq, 0.0f, qk, S));
    for (size_t c = 0; c < K && kl < S; c++)
        for (size_t i = kl; i < S; i++) qk[c * S + i] += -INFINITY;

    if (s->variant != CLUSTERED)
        for (size_t c = 0; c < K; c++) attn__clu_topk(qk + c * S, S, kk, heap, topk + c * kk);

    if (s->variant != IMPROVED_CAUSAL) {
        for (size_t c = 0; c < K; c++) {
            float *row = qk + c * S;
            attn__scale(row, j->temp, S);
            if (S) attn__softmax_row(row, S);
            if (s->variant == IMPROVED) {
                /* Drop the top-k keys: what is left is the centroid's
                 * attention on the other keys, and its mass m_c. */
                for (size_t i = 0; i < kk; i++) row[topk[c * kk + i]] = 0.0f;
                float m = 0.0f;
                for (size_t i = 0; i < S; i++) m += row[i];
                keep[c] = 1.0f - m;
            }
        }
        /* clustered: the centroid outputs; improved: their bottom-k part. */
        ATTN_TRY(attn__gemm(0, 0, K, D, S, 1.0f, qk, S, v, ldv, 0.0f, vc, D));
    }

    for (size_t l = 0; l < L; l++) {
        float *dst = o + l * ldv;
        float *mrow = map ? map + l * S : NULL;
        if (l >= ql) { /* padded queries have no cluster: 0, as broadcast leaves them */
            memset(dst, 0, D * sizeof *dst);
            if (mrow) memset(mrow, 0, S * sizeof *mrow);
            continue;
        }
        size_t c = (size_t)labels[l];
        if (mrow) {
            /* The centroid's softmax (improved: its part off the top-k keys,
             * which are 0 there; causal: nothing) — the weights of vc. */
            if (s->variant == IMPROVED_CAUSAL) memset(mrow, 0, S * sizeof *mrow);
            else memcpy(mrow, qk + c * S, S * sizeof *mrow);
        }
        if (s->variant == CLUSTERED) {
            memcpy(dst, vc + c * D, D * sizeof *dst);
            if (mrow)
                for (size_t i = kl; i < S; i++) mrow[i] = 0.0f; /* padded keys exactly 0 */
            continue;
        }
        /* Exact scores of this query on its cluster's top-k keys. */
        const int32_t *idx = topk + c * kk;
        const float *ql_row = q + l * ldq;
        for (size_t i = 0; i < kk; i++) {
            size_t key = (size_t)idx[i];
            float x = attn__dot(ql_row, k + key * ldq, E); /* in vector order, as the variant sums */
            if (s->variant == IMPROVED) {
                if (key >= kl) x = -INFINITY; /* fewer valid keys than k */
            } else if (key > l) {
                x = -1e7f; /* the future, masked as the reference masks it */
            }
            z[i] = j->temp * x;
        }
        if (kk) attn__softmax_row(z, kk);
        if (s->variant == IMPROVED) {
            for (size_t i = 0; i < kk; i++) z[i] *= keep[c];
            gather_average(z, idx, kk, v, ldv, D, vt);
            for (size_t d = 0; d < D; d++) dst[d] = vt[d] + vc[c * D + d];
        } else {
            /* Zero the future weights (the -1e7 leaves a little mass). */
            for (size_t i = 0; i < kk; i++) z[i] *= (size_t)idx[i] > l ? 0.0f : 1.0f;
            gather_average(z, idx, kk, v, ldv, D, dst);
        }
        if (mrow) {
            /* the exact part on the top-k keys (improved: times the mass
             * the centroid gave them) */
            for (size_t i = 0; i < kk; i++) mrow[idx[i]] = z[i];
            if (s->variant == IMPROVED)
                for (size_t i = kl; i < S; i++) mrow[i] = 0.0f;
        }
    }
    return ATTN_OK;
}

static const char *const mask_message[] = {
    [CLUSTERED] = "Clustered attention cannot use an arbitrary attention mask.",
    [IMPROVED] = "Improved-clustered attention cannot use an arbitrary attention mask.",
    [IMPROVED_CAUSAL] = "ImprovedClusteredCausalAttention only supports lower triangular masks",
};

/* Checks the mask and sizes and lays out the workspace of a forward on
 * `threads` (reads only shapes, the mask flags and key_lengths). */
static attn_status plan(const struct clustered *s, const attn_qkv *a, int threads, struct layout *y,
                        attn_error *err) {
    bool mask_ok = s->variant == IMPROVED_CAUSAL ? a->mask_lower_triangular : a->mask_all_ones;
    if (!mask_ok) return attn__err(err, ATTN_E_UNSUPPORTED, "%s", mask_message[s->variant]);
    if (s->clusters > a->L)
        return attn__err(err, ATTN_E_INPUT,
                         "clusters = %lld is larger than the number of queries L = %lld "
                         "(the reference cannot choose that many initial centroids)",
                         (long long)s->clusters, (long long)a->L);

    size_t L = (size_t)a->L, S = (size_t)a->S, E = (size_t)a->E, D = (size_t)a->D;
    size_t K = (size_t)s->clusters, B = (size_t)s->bits;
    *y = (struct layout){0};
    if (!attn__mul((size_t)a->N, (size_t)a->H, &y->tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "N*H overflows");
    if (y->tasks == 0) return ATTN_OK;
    if (s->variant == IMPROVED) {
        y->k = (size_t)(s->topk < a->S ? s->topk : a->S);
    } else if (s->variant == IMPROVED_CAUSAL) {
        /* The reference takes the smallest key length of the batch. */
        int64_t k = s->topk < a->S ? s->topk : a->S;
        for (int64_t n = 0; n < a->N; n++) {
            int64_t kl = (int64_t)length_of(a->key_lengths, n, a->S);
            if (kl < k) k = kl;
        }
        y->k = (size_t)k;
    }
    attn_ws_layout *w = &y->w, all = {0};
    y->proj = attn__ws_region(w, L, B * sizeof(float));
    y->hash = attn__ws_region(w, L, sizeof(uint64_t));
    y->labels = attn__ws_region(w, L, sizeof(int32_t));
    y->centroids = attn__ws_region(w, K, sizeof(uint64_t));
    y->bitcnt = attn__ws_region(w, K, B * sizeof(int32_t));
    y->counts = attn__ws_region(w, K, sizeof(int32_t));
    y->qc = attn__ws_region(w, K, E * sizeof(float));
    y->qk = attn__ws_region(w, K, S * sizeof(float));
    y->vc = attn__ws_region(w, K, D * sizeof(float));
    y->topk = attn__ws_region(w, K, y->k * sizeof(int32_t));
    y->keep = attn__ws_region(w, K, sizeof(float));
    y->heap = attn__ws_region(w, y->k, sizeof(attn_clu_slot));
    y->z = attn__ws_region(w, y->k, sizeof(float));
    y->vt = attn__ws_region(w, D, sizeof(float));
    y->planes = attn__ws_region(&all, B, (E + 1) * sizeof(float));
    y->nplanes = B * (E + 1); /* fits when the region above did */
    y->perm = attn__ws_region(&all, L, sizeof(int64_t));
    y->scratch = attn__ws_array(&all, (size_t)attn__workers_of(threads, y->tasks), w);
    return attn__ws_size(&all, "clustered attention", &y->bytes, err);
}

static attn_status workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                 attn_error *err) {
    struct layout y;
    attn_status st = plan(state, a, threads, &y, err);
    *bytes = st ? 0 : y.bytes;
    return st;
}

/* Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D) F32, clusters <= L.
 * -> out (N,L,H,D), caller-owned, fully written (rows past query_lengths
 * are 0), not aliasing the inputs.  attn_mask must be all ones (clustered,
 * improved_clustered) or lower triangular (improved_clustered_causal); the
 * planes and the per-worker scratch are in the workspace `ws` (declared by the plan; nothing is allocated here). */
static attn_status run(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws, float *map,
                       attn_error *err) {
    const struct clustered *s = state;
    struct job j = {.s = s, .a = a, .out = out, .K = (size_t)s->clusters, .map = map};
    attn_status st = plan(s, a, attn_ctx_threads(ctx), &j.y, err);
    if (st || j.y.tasks == 0) return st;
    size_t L = (size_t)a->L, E = (size_t)a->E, K = j.K, B = (size_t)s->bits;
    j.k = j.y.k;
    j.temp = (!s->temp_null && s->temp != 0.0) ? (float)s->temp : (float)(1.0 / sqrt((double)E));
    float *planes = attn__ws_at(ws, j.y.planes);
    int64_t *perm = attn__ws_at(ws, j.y.perm);
    j.scratch = attn__ws_at(ws, j.y.scratch);

    /* Draw order: planes, then the initial centroid positions (K distinct
     * of L, shared by every (n, h) as numpy's choice is), then the base of
     * the per-slice streams. */
    attn_rng rng;
    attn__rng_seed(&rng, s->seed);
    for (size_t i = 0; i < j.y.nplanes; i++) planes[i] = attn__rng_normal(&rng);
    if (!s->hash_bias)
        for (size_t i = 0; i < B; i++) planes[i * (E + 1) + E] = 0.0f;
    for (size_t i = 0; i < L; i++) perm[i] = (int64_t)i;
    for (size_t i = 0; i < K; i++) {
        size_t r = i + (size_t)(attn__rng_uniform(&rng) * (double)(L - i));
        if (r >= L) r = L - 1;
        int64_t tmp = perm[i];
        perm[i] = perm[r];
        perm[r] = tmp;
    }
    j.task_seed = attn__rng_u64(&rng);
    j.planes = planes;
    j.init = perm;
    st = attn__parallel_for(ctx, j.y.tasks, slice, &j);
    if (st)
        attn__err(err, st, "%s%s", st == ATTN_E_CANCELLED ? "cancelled" : "clustered attention failed",
                  attn__fail_detail(st));
    return st;
}

static attn_status forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                               void *ws, attn_error *err) {
    return run(state, ctx, a, out, ws, NULL, err);
}

/* ---- the attention map: the weights each query used ----
 * The forward is run again with the same draws (the seed restarts each
 * forward), into a scratch output, writing the (N,H,L,S) weights as it
 * goes: out = A V for every query.  clustered: its cluster centroid's
 * softmax over the keys; improved_clustered: the centroid's softmax off its
 * top-k keys plus, on them, the query's own softmax times the mass the
 * centroid gave them; improved_clustered_causal: the query's softmax on its
 * cluster's top-k keys, future ones 0.  Padded queries and keys 0. */

static attn_status maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                            float *const *maps, attn_error *err) {
    (void)m;
    struct layout y;
    attn_status st = plan(state, a, attn_ctx_threads(ctx), &y, err);
    if (st) return st;
    return attn__maps_by_rerun(state, ctx, a, y.tasks, y.bytes, maps[1], run, "clustered", err);
}

static const attn_out_decl clustered_outputs[] = {
    {"attention", "N,H,L,S",
     "the weights each query used: its cluster centroid's softmax over the keys; padded queries and keys 0"},
    {0},
};
static const attn_out_decl improved_outputs[] = {
    {"attention", "N,H,L,S",
     "the weights each query used: the centroid's softmax off the cluster's top-k keys, the query's own "
     "softmax on them times the centroid's mass there; padded queries and keys 0"},
    {0},
};
static const attn_out_decl causal_outputs[] = {
    {"attention", "N,H,L,S",
     "the weights each query used: its softmax over the non-future keys of its cluster's top-k; other keys 0"},
    {0},
};
static const attn_maps_ops clustered_maps = {.outputs = clustered_outputs, .qkv = maps_qkv};
static const attn_maps_ops improved_maps = {.outputs = improved_outputs, .qkv = maps_qkv};
static const attn_maps_ops causal_maps = {.outputs = causal_outputs, .qkv = maps_qkv};

/* ---- registry entries ---- */

static const char *const no_aliases[] = {NULL};
static const char *const improved_aliases[] = {"improved-clustered", NULL};
static const char *const causal_aliases[] = {"causal-improved-clustered",
                                             "improved-clustered-causal", NULL};

const attn_mech attn_mech_clustered = {
    .info = {.name = "clustered",
             .aliases = no_aliases,
             .reference = "ClusteredAttention in fast_transformers.attention",
             .summary = "Queries grouped by LSH + Hamming k-means; each group attends with its "
                        "centroid and shares the result",
             .params = clustered_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(struct clustered),
    .init = init_clustered,
    .workspace_qkv = workspace_qkv,
    .forward_qkv = forward_qkv,
    .maps = &clustered_maps,
};

const attn_mech attn_mech_improved_clustered = {
    .info = {.name = "improved_clustered",
             .aliases = improved_aliases,
             .reference = "ImprovedClusteredAttention in fast_transformers.attention",
             .summary = "Clustered attention where each query re-scores its cluster's top-k keys "
                        "exactly and keeps the centroid's attention on the rest",
             .params = improved_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(struct clustered),
    .init = init_improved,
    .workspace_qkv = workspace_qkv,
    .forward_qkv = forward_qkv,
    .maps = &improved_maps,
};

const attn_mech attn_mech_improved_clustered_causal = {
    .info = {.name = "improved_clustered_causal",
             .aliases = causal_aliases,
             .reference = "ImprovedClusteredCausalAttention in fast_transformers.attention",
             .summary = "Causal improved-clustered attention: softmax over the non-future keys of "
                        "the cluster's top-k (needs a lower-triangular attn_mask)",
             .params = improved_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(struct clustered),
    .init = init_causal,
    .workspace_qkv = workspace_qkv,
    .forward_qkv = forward_qkv,
    .maps = &causal_maps,
};
