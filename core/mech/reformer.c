/*
 * reformer.c — fast-transformers' ReformerAttention
 * (docs/reference/fast-transformers-spec.md §3.5): shared-QK LSH attention.
 * Each round hashes the normalised queries with random
 * rotations (argmax over [P, -P]), sorts the positions by hash, cuts them
 * into chunks and lets every chunk attend to itself and the chunk before
 * it; the output is the mean of the rounds.  The keys argument is ignored,
 * as in the reference.
 *
 * The reference draws the planes from the torch RNG; here a `seed` config
 * key drives them, freshly at each forward, so the model is deterministic
 * and immutable.  Hash ties are ordered by position (a stable sort; the
 * reference's unstable argsort leaves that order unspecified).
 */
#include "attn_internal.h"
#include "workspace.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct reformer {
    int64_t chunk, rounds;
    int bits;
    bool masked, temp_null;
    double temp;
    uint64_t seed;
};

static const attn_param reformer_params[] = {
    {"chunk_size", ATTN_P_INT, "32", 1, 1e9, NULL,
     "Positions per chunk; the sequence length must be a multiple of it"},
    {"bits", ATTN_P_INT, "8", 1, 64, NULL,
     "Hash rotations per round (2*bits buckets); default 8 as the constructor (the library's "
     "builder registry defaults to 63)"},
    {"rounds", ATTN_P_INT, "4", 1, 1e6, NULL, "Hashing rounds, averaged"},
    {"masked", ATTN_P_BOOL, "false", 0, 0, NULL,
     "true: a query does not attend to itself (-1e9 on the diagonal)"},
    {"softmax_temp", ATTN_P_FLOAT, "null", 0, 0, NULL, "Softmax temperature; null or 0: 1/sqrt(E)"},
    {"attention_dropout", ATTN_P_FLOAT, "0.1", 0, 1, NULL,
     "Accepted and ignored (inference is eval mode)"},
    {"seed", ATTN_P_INT, "0", 0, 0, NULL,
     "attnd extension: seeds the random rotations of every round (the reference draws them "
     "from the torch RNG)"},
    {0},
};

static attn_status init(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b) {
    struct reformer *s = state;
    attn_status st;
    int64_t bits, seed;
    double dropout;
    if ((st = attn__cfg_check_keys(cfg)) ||
        (st = attn__cfg_int(cfg, "chunk_size", &s->chunk, NULL)) ||
        (st = attn__cfg_int(cfg, "bits", &bits, NULL)) ||
        (st = attn__cfg_int(cfg, "rounds", &s->rounds, NULL)) ||
        (st = attn__cfg_bool(cfg, "masked", &s->masked)) ||
        (st = attn__cfg_float(cfg, "softmax_temp", &s->temp, &s->temp_null)) ||
        (st = attn__cfg_float(cfg, "attention_dropout", &dropout, NULL)) ||
        (st = attn__cfg_int(cfg, "seed", &seed, NULL)))
        return st;
    s->bits = (int)bits;
    s->seed = (uint64_t)seed;
    return attn__qkv_declare(m, 0, 0);
}

/* ---- forward ---- */

/* One worker's scratch (offsets into its copy) and the whole workspace:
 * the rotations of one round, then a copy per worker. */
struct layout {
    size_t kn, proj, hash, order, qs, ks, vs, logits, mrow, res;
    attn_ws_layout w;
    size_t planes, scratch, nplanes, tasks;
    size_t bytes;
};

struct job {
    const struct reformer *s;
    const attn_qkv *a;
    float *out;
    float temp, factor;
    size_t round;
    const float *planes; /* (bits, E) of this round */
    struct layout y;
    char *scratch;       /* workers × y.w.size */
    float *map;          /* (N,H,L,L) weights each query used, summed over rounds, or NULL */
};

/* argmax over [p, -p] (2·bits entries): the first maximum, NaN counting as
 * the maximum as in torch.argmax. */
static int32_t bucket(const float *p, int bits) {
    float best = p[0];
    int32_t arg = 0;
    if (isnan(best)) return 0;
    for (int i = 1; i < 2 * bits; i++) {
        float x = i < bits ? p[i] : -p[i - bits];
        if (isnan(x)) return i;
        if (x > best) {
            best = x;
            arg = i;
        }
    }
    return arg;
}

/* The additive mask of query i on key j (both original positions), as the
 * reference builds it: key padding, then the -1e9 diagonal, then attn_mask. */
static float mask_of(const struct job *jb, size_t kl, size_t i, size_t j) {
    const attn_qkv *a = jb->a;
    float m = j >= kl ? -INFINITY : 0.0f;
    if (jb->s->masked && i == j) m += -1e9f;
    if (!a->mask_all_ones && a->attn_mask && !a->attn_mask[i * (size_t)a->S + j]) m += -INFINITY;
    return m;
}

/* One round on one (n, h) slice.  Shapes inside: q (L,E) row stride
 * H·E, v (L,E) and o (L,E) row stride H·E (D == E); kn, qs, ks, vs (L,E)
 * contiguous; per chunk logits (c,2c) and res (c,E). */
static attn_status slice(void *arg, size_t t, int worker) {
    const struct job *jb = arg;
    const struct reformer *s = jb->s;
    const attn_qkv *a = jb->a;
    size_t L = (size_t)a->L, H = (size_t)a->H, E = (size_t)a->E, c = (size_t)s->chunk;
    size_t B = (size_t)s->bits, n = t / H, h = t % H, ld = H * E, c2 = 2 * c;
    size_t kl = L;
    if (a->key_lengths) {
        int64_t x = a->key_lengths[n];
        kl = (size_t)(x < 0 ? 0 : x > a->L ? a->L : x);
    }
    const float *q = a->q + n * L * ld + h * E;
    const float *v = a->v + n * L * ld + h * E;
    float *o = jb->out + n * L * ld + h * E;
    float *map = jb->map ? jb->map + t * L * L : NULL;

    char *base = jb->scratch + (size_t)worker * jb->y.w.size;
    float *kn = (float *)(base + jb->y.kn), *proj = (float *)(base + jb->y.proj);
    float *qs = (float *)(base + jb->y.qs), *ks = (float *)(base + jb->y.ks);
    float *vs = (float *)(base + jb->y.vs), *logits = (float *)(base + jb->y.logits);
    float *mrow = (float *)(base + jb->y.mrow), *res = (float *)(base + jb->y.res);
    int32_t *hash = (int32_t *)(base + jb->y.hash), *order = (int32_t *)(base + jb->y.order);

    /* Keys are the queries scaled to unit length (no epsilon: a zero query
     * gives NaN, as in the reference), zeroed at padded positions. */
    for (size_t l = 0; l < L; l++) {
        const float *x = q + l * ld;
        float ss = 0.0f;
        for (size_t e = 0; e < E; e++) ss += x[e] * x[e];
        float norm = sqrtf(ss), keep = l < kl ? 1.0f : 0.0f;
        for (size_t e = 0; e < E; e++) kn[l * E + e] = x[e] / norm * keep;
    }

    size_t r = jb->round;
    if (map && r == 0) memset(map, 0, L * L * sizeof *map);
    /* Hash, then a stable counting sort of the positions by bucket. */
    ATTN_TRY(attn__gemm(0, 1, L, B, E, 1.0f, kn, E, jb->planes, E, 0.0f, proj, B));
    size_t start[129] = {0};
    for (size_t l = 0; l < L; l++) {
        hash[l] = bucket(proj + l * B, s->bits);
        start[hash[l] + 1]++;
    }
    for (size_t b = 1; b <= 2 * B; b++) start[b] += start[b - 1];
    for (size_t l = 0; l < L; l++) order[start[hash[l]]++] = (int32_t)l;
    for (size_t p = 0; p < L; p++) {
        size_t l = (size_t)order[p];
        memcpy(qs + p * E, q + l * ld, E * sizeof *qs);
        memcpy(ks + p * E, kn + l * E, E * sizeof *ks);
        memcpy(vs + p * E, v + l * ld, E * sizeof *vs);
    }

    for (size_t b = 0; b < L / c; b++) {
        /* Chunk b attends to [chunk b-1, chunk b]; chunk 0's look-back
         * is c zero keys and values under a -inf mask. */
        const float *qb = qs + b * c * E;
        if (b == 0) {
            for (size_t i = 0; i < c; i++) memset(logits + i * c2, 0, c * sizeof *logits);
            ATTN_TRY(attn__gemm(0, 1, c, c, E, 1.0f, qb, E, ks, E, 0.0f, logits + c, c2));
        } else {
            ATTN_TRY(attn__gemm(0, 1, c, c2, E, 1.0f, qb, E, ks + (b - 1) * c * E, E, 0.0f, logits, c2));
        }
        for (size_t i = 0; i < c; i++) {
            size_t qi = (size_t)order[b * c + i];
            bool all_inf = true;
            for (size_t jj = 0; jj < c2; jj++) {
                if (b == 0 && jj < c) {
                    mrow[jj] = -INFINITY;
                    continue;
                }
                mrow[jj] = mask_of(jb, kl, qi, (size_t)order[b * c + jj - c]);
                all_inf = all_inf && isinf(mrow[jj]);
            }
            /* The reference unmasks a fully masked row (its output
             * there is meaningless, this only avoids NaN). */
            float *row = logits + i * c2;
            for (size_t jj = 0; jj < c2; jj++)
                row[jj] = jb->temp * (row[jj] + (all_inf ? 0.0f : mrow[jj]));
            attn__softmax_row(row, c2);
            if (map) {
                /* this round's share of the weights on the keys it saw;
                 * masked keys exactly 0 (an unmasked all-masked row aside) */
                float *mrow_q = map + qi * L;
                for (size_t jj = b == 0 ? c : 0; jj < c2; jj++)
                    if (all_inf || mrow[jj] != -INFINITY)
                        mrow_q[order[b * c + jj - c]] += jb->factor * row[jj];
            }
        }
        if (b == 0)
            ATTN_TRY(attn__gemm(0, 0, c, E, c, 1.0f, logits + c, c2, vs, E, 0.0f, res, E));
        else
            ATTN_TRY(attn__gemm(0, 0, c, E, c2, 1.0f, logits, c2, vs + (b - 1) * c * E, E, 0.0f, res, E));
        for (size_t i = 0; i < c; i++) {
            float *dst = o + (size_t)order[b * c + i] * ld;
            const float *src = res + i * E;
            for (size_t e = 0; e < E; e++)
                dst[e] = (r == 0 ? 0.0f : dst[e]) + jb->factor * src[e];
        }
    }
    return ATTN_OK;
}

/* Checks the shapes and lays out the workspace of a forward on `threads`. */
static attn_status plan(const struct reformer *s, const attn_qkv *a, int threads, struct layout *y,
                        attn_error *err) {
    if (a->S != a->L)
        return attn__err(err, ATTN_E_SHAPE,
                         "reformer: keys/values must have as many positions as the queries "
                         "(shared-QK attention), got S = %lld and L = %lld",
                         (long long)a->S, (long long)a->L);
    if (a->D != a->E)
        return attn__err(err, ATTN_E_SHAPE,
                         "reformer: values must have the query dimension (D == E), got D = %lld "
                         "and E = %lld",
                         (long long)a->D, (long long)a->E);
    if (a->L % s->chunk != 0)
        return attn__err(err, ATTN_E_SHAPE,
                         "reformer: the sequence length L = %lld is not a multiple of "
                         "chunk_size = %lld",
                         (long long)a->L, (long long)s->chunk);

    size_t L = (size_t)a->L, E = (size_t)a->E, B = (size_t)s->bits, c = (size_t)s->chunk;
    *y = (struct layout){0};
    if (!attn__mul((size_t)a->N, (size_t)a->H, &y->tasks))
        return attn__err(err, ATTN_E_OVERFLOW, "N*H overflows");
    if (y->tasks == 0 || L == 0) return ATTN_OK;
    attn_ws_layout *w = &y->w, all = {0};
    y->kn = attn__ws_region(w, L, E * sizeof(float));
    y->proj = attn__ws_region(w, L, B * sizeof(float));
    y->hash = attn__ws_region(w, L, sizeof(int32_t));
    y->order = attn__ws_region(w, L, sizeof(int32_t));
    y->qs = attn__ws_region(w, L, E * sizeof(float));
    y->ks = attn__ws_region(w, L, E * sizeof(float));
    y->vs = attn__ws_region(w, L, E * sizeof(float));
    y->logits = attn__ws_region(w, c, 2 * c * sizeof(float));
    y->mrow = attn__ws_region(w, c, 2 * sizeof(float));
    y->res = attn__ws_region(w, c, E * sizeof(float));
    y->planes = attn__ws_region(&all, B, E * sizeof(float));
    y->nplanes = B * E; /* fits when the region above did */
    y->scratch = attn__ws_array(&all, (size_t)attn__workers_of(threads, y->tasks), w);
    return attn__ws_size(&all, "reformer", &y->bytes, err);
}

static attn_status workspace_qkv(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                 attn_error *err) {
    struct layout y;
    attn_status st = plan(state, a, threads, &y, err);
    *bytes = st ? 0 : y.bytes;
    return st;
}

/* Shapes: q (N,L,H,E), v (N,L,H,E) F32 (S == L, D == E, L a multiple of
 * chunk_size); k is ignored (shared-QK).  -> out (N,L,H,E), caller-owned,
 * fully written, not aliasing the inputs.  Masks as attn_qkv; the planes and
 * the per-worker scratch are in the workspace `ws` (declared by the plan; nothing is allocated here). */
static attn_status run(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws, float *map,
                       attn_error *err) {
    const struct reformer *s = state;
    struct job j = {.s = s, .a = a, .out = out, .map = map};
    attn_status st = plan(s, a, attn_ctx_threads(ctx), &j.y, err);
    if (st || j.y.tasks == 0 || a->L == 0) return st;
    j.temp = (!s->temp_null && s->temp != 0.0) ? (float)s->temp : (float)(1.0 / sqrt((double)a->E));
    j.factor = (float)(1.0 / (double)s->rounds);
    float *planes = attn__ws_at(ws, j.y.planes);
    j.scratch = attn__ws_at(ws, j.y.scratch);

    /* Rounds run one after the other, each drawing its bits × E rotations
     * from the one stream, so memory does not grow with `rounds`. */
    attn_rng rng;
    attn__rng_seed(&rng, s->seed);
    j.planes = planes;
    for (j.round = 0; j.round < (size_t)s->rounds && !st; j.round++) {
        for (size_t i = 0; i < j.y.nplanes; i++) planes[i] = attn__rng_normal(&rng);
        st = attn__parallel_for(ctx, j.y.tasks, slice, &j);
    }
    if (st)
        attn__err(err, st, "%s%s", st == ATTN_E_CANCELLED ? "cancelled" : "reformer attention failed",
                  attn__fail_detail(st));
    return st;
}

static attn_status forward_qkv(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                               void *ws, attn_error *err) {
    return run(state, ctx, a, out, ws, NULL, err);
}

/* ---- the attention map: the weights each query used ----
 * The forward again with the same rotations (the seed restarts each
 * forward), into a scratch output, adding each round's chunk softmax
 * (times 1/rounds) at the original key positions: out = A V.  Keys a query
 * never shared a chunk window with are 0; masked keys 0, except in a row
 * where every key it saw was masked, which the reference unmasks. */
static attn_status maps_qkv(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                            float *const *maps, attn_error *err) {
    (void)m;
    struct layout y;
    attn_status st = plan(state, a, attn_ctx_threads(ctx), &y, err);
    if (st) return st;
    return attn__maps_by_rerun(state, ctx, a, y.tasks, y.bytes, maps[1], run, "reformer", err);
}

static const attn_out_decl reformer_outputs[] = {
    {"attention", "N,H,L,S",
     "the weights each query used: per round its chunk window's softmax at the keys' positions, averaged over "
     "the rounds; keys outside its windows and masked keys 0"},
    {0},
};
static const attn_maps_ops reformer_maps = {.outputs = reformer_outputs, .qkv = maps_qkv};

static const char *const aliases[] = {NULL};

const attn_mech attn_mech_reformer = {
    .info = {.name = "reformer",
             .aliases = aliases,
             .reference = "ReformerAttention in fast_transformers.attention",
             .summary = "Shared-QK LSH attention: hash, sort, attend within chunk and previous "
                        "chunk, average over rounds (keys are ignored)",
             .params = reformer_params,
             .has_weights = 0,
             .is_inner = 1},
    .state_size = sizeof(struct reformer),
    .init = init,
    .workspace_qkv = workspace_qkv,
    .forward_qkv = forward_qkv,
    .maps = &reformer_maps,
};
