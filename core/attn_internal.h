/*
 * attn_internal.h — what the pieces of libattn share and nobody else sees:
 * error formatting, the mechanism vtable, config readers, weight binding,
 * the (queries, keys, values) argument block of the fast-transformers family,
 * the parallel-for, model-owned allocations, and the forward's plan
 * (output shape + workspace size; the layout helpers are in workspace.h).
 */
#ifndef ATTN_INTERNAL_H
#define ATTN_INTERNAL_H

#include "attn.h"

#include <jansson.h>
#include <stdbool.h>

/* 1 in an AddressSanitizer build (gcc and clang): there tensor data stays
 * on the heap, where overruns are caught, instead of in mapped blocks. */
#if defined(__SANITIZE_ADDRESS__)
#define ATTN_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTN_UNDER_ASAN 1
#endif
#endif
#ifndef ATTN_UNDER_ASAN
#define ATTN_UNDER_ASAN 0
#endif

/* ---- errors ---- */

/* Sets err->code / err->msg (printf format) when err != NULL; returns code. */
attn_status attn__err(attn_error *err, attn_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The detail a failure message appends for a task's status: a product too
 * large for BLAS's int is reported as such; other statuses add nothing. */
static inline const char *attn__fail_detail(attn_status st) {
    return st == ATTN_E_OVERFLOW ? ": a matrix product exceeds BLAS's int range (INT_MAX)" : "";
}

/* Checked size arithmetic: false on overflow. */
static inline bool attn__mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool attn__add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- model-owned memory ----
 * Everything a mechanism allocates while building a model (its weights,
 * tables, nested models) is registered with the model and freed with it. */
typedef struct attn_model attn_model;
void *attn__model_alloc(attn_model *m, size_t bytes, attn_error *err); /* zeroed */
/* Hands a nested model to `m`, which frees it with itself. */
attn_status attn__model_adopt(attn_model *m, attn_model *child, attn_error *err);

/* ---- config reading ----
 * A config is a JSON object checked against the mechanism's param table:
 * unknown keys are an error naming the key; getters apply the table's
 * default and bounds, so the table is the single source of both. */
typedef struct attn_cfg {
    const json_t *obj;             /* borrowed */
    const attn_param *params;      /* the mechanism's table */
    const char *mech;              /* for messages */
    attn_error *err;
} attn_cfg;

attn_status attn__cfg_check_keys(const attn_cfg *c);
/* *is_null (may be NULL) reports an explicit or default null. */
attn_status attn__cfg_int(const attn_cfg *c, const char *key, int64_t *out, bool *is_null);
attn_status attn__cfg_float(const attn_cfg *c, const char *key, double *out, bool *is_null);
attn_status attn__cfg_bool(const attn_cfg *c, const char *key, bool *out);
/* Borrowed from the config or the table; *out NULL when null. */
attn_status attn__cfg_string(const attn_cfg *c, const char *key, const char **out);
/* Up to `cap` ints; *n the count; *n = -1 when null. */
attn_status attn__cfg_int_list(const attn_cfg *c, const char *key, int64_t *out, int cap, int *n);
/* Borrowed JSON value (object or null) for ATTN_P_OBJECT keys. */
attn_status attn__cfg_object(const attn_cfg *c, const char *key, const json_t **out);

/* ---- weights ----
 * A binder hands out the weights of a state_dict by name, checks shapes,
 * copies them into model-owned memory, and remembers which were used so
 * that leftovers can be reported. */
typedef struct attn_binder {
    const attn_tensor_set *w; /* borrowed, may be NULL */
    unsigned char *used;      /* one flag per tensor of w */
    char prefix[96];          /* e.g. "inner_attention." */
    attn_model *m;
    attn_error *err;
} attn_binder;

/* Copies weight prefix+name of exactly `shape` (F32) into *out. */
attn_status attn__bind(attn_binder *b, const char *name, int rank, const int64_t *shape,
                       float **out);
/* True when prefix+name exists. */
bool attn__bind_has(const attn_binder *b, const char *name);

/* ---- mechanisms ---- */

/* The argument block of every fast-transformers inner attention.
 * Shapes: q (N,L,H,E), k (N,S,H,E), v (N,S,H,D), out (N,L,H,D), all
 * contiguous row-major.  Masks: attn_mask (L,S) bytes 0/1 or NULL (all
 * visible); query_lengths / key_lengths (N) or NULL (full).  The flags are
 * derived once by attn__qkv_prepare, as fast_transformers.masking derives
 * them. */
typedef struct attn_qkv {
    int64_t N, L, S, H, E, D;
    const float *q, *k, *v;
    const uint8_t *attn_mask;
    const int64_t *query_lengths;
    const int64_t *key_lengths;
    bool mask_all_ones;         /* attn_mask absent or all true */
    bool mask_lower_triangular; /* row i = i+1 leading ones then zeros */
    bool keys_all_ones;         /* key_lengths absent or all == S */
    bool queries_all_ones;      /* query_lengths absent or all == L */
} attn_qkv;

/* Computes the derived mask flags of `a`. */
void attn__qkv_prepare(attn_qkv *a);

/* What a whole-model mechanism's plan reports for given inputs: the output
 * shape and the bytes of workspace its forward needs (0: none). */
typedef struct attn_plan {
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    size_t ws_bytes;
} attn_plan;

/* The workspace contract (workspace.h): `plan` / `workspace_qkv` check the
 * inputs and size the scratch for `threads` threads; the forward then gets
 * `ws`, at least that many bytes, ATTN_WS_ALIGN-aligned, contents undefined,
 * and is called with a ctx of the same thread count.  Forwards write every
 * element of `out` (never zeroed for them) and allocate nothing. */
typedef struct attn_mech {
    attn_mech_info info;
    size_t state_size; /* bytes of per-model state, zeroed before init */
    /* Parse the config, bind weights, declare inputs and output. */
    attn_status (*init)(attn_model *m, void *state, const attn_cfg *cfg, attn_binder *b);
    /* Whole-model mechanisms (NULL for qkv mechanisms, which get the shared
     * input reading of queries/keys/values + masks): check the named inputs,
     * report the output shape and workspace size ... */
    attn_status (*plan)(const attn_model *m, const void *state, const attn_tensor_set *in,
                        int threads, attn_plan *p, attn_error *err);
    /* ... and compute into `out` (the planned shape). */
    attn_status (*forward)(const attn_model *m, const void *state, attn_ctx *ctx,
                           const attn_tensor_set *in, float *out, void *ws, attn_error *err);
    /* Inner-attention workspace for the fast-transformers family; NULL when
     * the forward needs none.  Reads the shapes, masks and lengths of `a`,
     * never q/k/v (a nested caller sizes before it has them). */
    attn_status (*workspace_qkv)(const void *state, const attn_qkv *a, int threads, size_t *bytes,
                                 attn_error *err);
    /* Inner-attention forward for the fast-transformers family. */
    attn_status (*forward_qkv)(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out,
                               void *ws, attn_error *err);
    /* forward_qkv may write `out` over the queries (same bytes, E == D):
     * every output row is written after the last read of its own query row
     * and no other task reads that row. */
    bool out_may_alias_queries;
    /* Recurrent form for sequences (core/seq_internal.h, seq.c); NULL when
     * the mechanism has none. */
    const struct attn_seq_ops *seq;
    /* The attention maps it can return as optional outputs (below); NULL
     * when it forms no weights. */
    const struct attn_maps_ops *maps;
} attn_mech;

/* ---- optional outputs: attention maps (docs/attention-maps.md) ----
 * `maps` arrays are indexed like the model's outputs: maps[i] (i >= 1) is
 * the caller-allocated F32 buffer of output i, of the shape `shape` gave,
 * when it was asked for, else NULL; maps[0] is unused (the primary output
 * is `out`).  A map function writes every element of each buffer it is
 * given.  The ordinary forwards never see any of this, so they cost
 * nothing extra. */
#define ATTN__MAX_OUTPUTS 24 /* outputs per model, the primary one included */

typedef struct attn_out_decl {
    const char *name, *dims, *doc;
} attn_out_decl;

typedef struct attn_maps_ops {
    /* The optional outputs, in order (output 1, 2, ...), terminated by
     * name == NULL.  With `declare` set they are only what `attn list`
     * shows (patterns such as "attention_axis<k>") and `declare` declares
     * the real ones from the config (attn__model_add_output). */
    const attn_out_decl *outputs;
    attn_status (*declare)(attn_model *m, const void *state);
    /* Shape of optional output i for the inputs: `in` the (widened) inputs
     * of a whole-model forward; `a` the argument block of a qkv mechanism
     * (shapes, masks and lengths set; q/k/v may be NULL), `in` then NULL.
     * NULL: every output is the qkv map (N,H,L,S). */
    attn_status (*shape)(const attn_model *m, const void *state, const attn_tensor_set *in, const attn_qkv *a,
                         size_t i, int *rank, int64_t *shape, attn_error *err);
    /* qkv mechanisms: the requested maps of block `a`, computed aside from
     * forward_qkv (which the caller runs for the primary output). */
    attn_status (*qkv)(const attn_model *m, const void *state, attn_ctx *ctx, const attn_qkv *a,
                       float *const *maps, attn_error *err);
    /* whole-model mechanisms: the forward (contract of attn_mech.forward)
     * that also writes the requested maps. */
    attn_status (*forward)(const attn_model *m, const void *state, attn_ctx *ctx, const attn_tensor_set *in,
                           float *out, void *ws, float *const *maps, attn_error *err);
} attn_maps_ops;

/* Declares optional output number attn_model_num_outputs(m) (F32). */
attn_status attn__model_add_output(attn_model *m, const char *name, const char *dims, const char *doc);
/* Declares every optional output of `child` (a nested qkv model) on m,
 * in the same order: attention_layer returns its inner attention's maps. */
attn_status attn__model_add_outputs_of(attn_model *m, const attn_model *child);
/* A nested qkv model's map shape / maps for block `a` (its output i). */
attn_status attn__model_maps_shape(const attn_model *m, const attn_qkv *a, size_t i, int *rank, int64_t *shape,
                                   attn_error *err);
attn_status attn__model_maps_qkv(const attn_model *m, attn_ctx *ctx, const attn_qkv *a, float *const *maps,
                                 attn_error *err);
/* Whether any of maps[1..n) is requested. */
bool attn__maps_any(const attn_model *m, float *const *maps);

/* Shared map pieces (core/maps.c).  The (N,H,L,S) softmax map of `a`:
 * temp·q·k, -inf where attn_mask is false or s >= key_lengths[n], softmax
 * over s (a row with every key masked: NaN, as torch makes it).  With
 * topk > 0 only the topk largest scores of each row stay (exact_topk). */
attn_status attn__maps_softmax_qkv(attn_ctx *ctx, const attn_qkv *a, float temp, size_t topk, float *map,
                                   attn_error *err);
/* The maps of a random mechanism by running its forward again with the
 * same draws (the seed restarts each forward) into a scratch output of
 * tasks·L·D floats, with a workspace of ws_bytes: run(state, ctx, a, out,
 * ws, map, err) is the mechanism's forward that also writes `map`
 * (clustered, reformer).  `what` names it in errors. */
typedef attn_status (*attn_rerun_fn)(const void *state, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                                     float *map, attn_error *err);
attn_status attn__maps_by_rerun(const void *state, attn_ctx *ctx, const attn_qkv *a, size_t tasks, size_t ws_bytes,
                                float *map, attn_rerun_fn run, const char *what, attn_error *err);

const attn_mech *attn__mech_find(const char *name);

/* Declares an input / the output of the model being built. */
attn_status attn__model_add_input(attn_model *m, const char *name, attn_dtype dtype, bool required,
                                  const char *dims, int rank, const int64_t *shape);
void attn__model_set_output(attn_model *m, const char *dims, int rank, const int64_t *shape);
/* Declares the standard fast-transformers inputs. `E`/`D` fix the last dims
 * when > 0.  Used by every qkv mechanism. */
attn_status attn__qkv_declare(attn_model *m, int64_t E, int64_t D);

/* Builds a nested model (the inner attention of attention_layer, the other
 * attention of conditional_full) from a JSON object {"type": ..., ...rest is
 * config}, binding its weights under `prefix`.  The child is adopted by m. */
attn_status attn__model_new_nested(attn_model *m, const json_t *spec, attn_binder *parent,
                                   const char *prefix, attn_model **child, attn_error *err);
/* Reads and checks the optional attn_mask / query_lengths / key_lengths
 * inputs for a block whose N, L, S are set, then derives the flags. */
attn_status attn__qkv_read_masks(const attn_model *m, const attn_tensor_set *in, attn_qkv *a,
                                 attn_error *err);
/* A qkv model's inner workspace for `a` (see workspace_qkv; 0 when it has
 * none), and its inner forward run directly on an argument block with a
 * workspace of that size. */
attn_status attn__model_workspace_qkv(const attn_model *m, const attn_qkv *a, int threads,
                                      size_t *bytes, attn_error *err);
attn_status attn__model_forward_qkv(const attn_model *m, attn_ctx *ctx, const attn_qkv *a,
                                    float *out, void *ws, attn_error *err);
const void *attn__model_state(const attn_model *m);

/* Looks up and validates an input by its spec (dtype, rank, fixed dims);
 * INT32 lengths become INT64 in *tmp (owned by the caller). */
attn_status attn__input(const attn_model *m, const attn_tensor_set *in, const char *name,
                        const attn_tensor **out, attn_error *err);

/* ---- parallel for ----
 * Runs fn(arg, task, worker) for task in [0, n) on up to ctx threads
 * (worker in [0, threads)).  Stops early and returns ATTN_E_CANCELLED when
 * the context's flag is raised; returns the first non-OK status of fn. */
typedef attn_status (*attn_task_fn)(void *arg, size_t task, int worker);
attn_status attn__parallel_for(attn_ctx *ctx, size_t n, attn_task_fn fn, void *arg);
/* How long an idle helper (or a caller waiting for its helpers) spins
 * before it sleeps, in µs: ATTN_SPIN_US (0 .. 1000000, read once; anything
 * else: the default, 100). */
long attn__pool_spin_us(void);
/* torch.nn.Linear (attn__linear) over `rows` rows, split into fixed row
 * chunks run by attn__parallel_for: results do not depend on the thread
 * count.  ATTN_OK or ATTN_E_CANCELLED. */
attn_status attn__linear_rows(attn_ctx *ctx, const float *x, size_t rows, size_t in, const float *W,
                              const float *b, size_t out, float *y);
/* Number of workers attn__parallel_for would use for n tasks; the same
 * count from a thread count alone (for plans). */
int attn__workers(const attn_ctx *ctx, size_t n);
int attn__workers_of(int threads, size_t n);
bool attn__cancelled(const attn_ctx *ctx);

/* Gives a tensor set ownership of the buffer its views point into. */
void attn__tensor_set_own_backing(attn_tensor_set *s, void *p, size_t len, int is_mmap);

/* attn_tensor_new without the zeroing, for outputs whose every element the
 * forward writes. */
attn_status attn__tensor_new_uninit(attn_dtype dtype, int rank, const int64_t *shape, attn_tensor **out,
                                    attn_error *err);

/* Allocates n*size bytes (zeroed) with overflow check; NULL + err. */
void *attn__calloc(size_t n, size_t size, attn_error *err);

#endif
