/*
 * attn.h — the public API of libattn, the attention core of attnd.
 *
 * libattn computes the attention mechanisms of five public PyTorch libraries
 * (fast-transformers, area-attention, axial-attention, compositional-attention,
 * linear-attention-transformer) in float32 on the CPU, exactly as the reference
 * modules do in eval() mode.  It does no networking and no wire protocol; it
 * parses JSON text only for mechanism configs and safetensors headers.
 *
 * Conventions
 *   - Every fallible function returns attn_status (ATTN_OK == 0, errors < 0)
 *     and, when `err` is not NULL, fills err->msg with one human-readable line.
 *   - Ownership is stated on every function: "owned" = caller frees with the
 *     matching _free, "borrowed" = valid while its owner lives, "steals" = the
 *     callee takes ownership even on failure.
 *   - Tensors are dense, row-major (last dimension fastest), at most
 *     ATTN_MAX_RANK dimensions, every size product overflow-checked.
 *   - Models are immutable after creation: attn_model_forward may be called
 *     concurrently from many threads on the same model.
 */
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public API: libattn.so is built with -fvisibility=hidden and
 * exports exactly the functions declared with ATTN_API below. */
#if defined(__GNUC__) || defined(__clang__)
#define ATTN_API __attribute__((visibility("default")))
#else
#define ATTN_API
#endif

#define ATTN_VERSION "0.1.0"
#define ATTN_MAX_RANK 8
#define ATTN_NAME_MAX 128

/* ---- status codes ---------------------------------------------------------
 * One X-macro list yields the enum and attn_status_str(). */
#define ATTN_STATUS_MAP(X)                                                   \
    X(OK, 0, "ok")                                                           \
    X(E_INVALID, -1, "invalid argument")                                     \
    X(E_SHAPE, -2, "bad shape")                                              \
    X(E_DTYPE, -3, "bad dtype")                                              \
    X(E_CONFIG, -4, "bad config")                                            \
    X(E_WEIGHTS, -5, "bad weights")                                          \
    X(E_INPUT, -6, "bad input")                                              \
    X(E_UNSUPPORTED, -7, "unsupported by the reference")                     \
    X(E_OVERFLOW, -8, "size overflow")                                       \
    X(E_NOMEM, -9, "out of memory")                                          \
    X(E_IO, -10, "i/o error")                                                \
    X(E_FORMAT, -11, "bad file format")                                      \
    X(E_NOTFOUND, -12, "not found")                                          \
    X(E_CANCELLED, -13, "cancelled")                                         \
    X(E_INTERNAL, -14, "internal error")

typedef enum {
#define ATTN_X_ENUM(name, val, str) ATTN_##name = val,
    ATTN_STATUS_MAP(ATTN_X_ENUM)
#undef ATTN_X_ENUM
} attn_status;

/* Static string for a status code ("unknown status" for others). */
ATTN_API const char *attn_status_str(attn_status s);

/* Caller-provided error detail (jansson style).  May be NULL everywhere. */
typedef struct attn_error {
    attn_status code;
    char msg[256];
} attn_error;

/* ---- tensors -------------------------------------------------------------- */

typedef enum { ATTN_F32 = 0, ATTN_BOOL = 1, ATTN_I32 = 2, ATTN_I64 = 3 } attn_dtype;

/* Bytes per element (F32 4, BOOL 1 (0 or 1), I32 4, I64 8). */
ATTN_API size_t attn_dtype_size(attn_dtype t);
/* safetensors names: "F32", "BOOL", "I32", "I64". */
ATTN_API const char *attn_dtype_name(attn_dtype t);
/* Parse a safetensors dtype name; ATTN_E_DTYPE for any other. */
ATTN_API attn_status attn_dtype_parse(const char *name, attn_dtype *out);

/* A dense tensor.  `data` is owned by the tensor when owns_data != 0
 * (allocated by attn_tensor_new), otherwise borrowed from someone else
 * (a view, e.g. into an mmapped safetensors file). */
typedef struct attn_tensor {
    attn_dtype dtype;
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    size_t numel;
    size_t nbytes;
    void *data;
    int owns_data;
} attn_tensor;

/* numel = product of shape[0..rank); rejects rank outside [0, ATTN_MAX_RANK],
 * negative dims, and products (also in bytes of `elem` each) over SIZE_MAX
 * or INT64_MAX.  `elem` may be 0 to skip the byte check. */
ATTN_API attn_status attn_shape_numel(int rank, const int64_t *shape, size_t elem, size_t *numel,
                                      attn_error *err);

/* New zero-filled tensor; *out owned (attn_tensor_free). */
ATTN_API attn_status attn_tensor_new(attn_dtype dtype, int rank, const int64_t *shape, attn_tensor **out,
                                     attn_error *err);
/* New tensor header over borrowed `data` (nbytes must match); *out owned,
 * data not. */
ATTN_API attn_status attn_tensor_view(attn_dtype dtype, int rank, const int64_t *shape, void *data,
                                      size_t nbytes, attn_tensor **out, attn_error *err);
ATTN_API void attn_tensor_free(attn_tensor *t);
/* "(2,3,4)" into buf. */
ATTN_API const char *attn_shape_str(int rank, const int64_t *shape, char *buf, size_t cap);

/* ---- named tensor sets (inputs, weights, safetensors files) ----------------
 * A set owns the tensors added to it and, optionally, a backing buffer
 * (mmap or heap) that views point into. */
typedef struct attn_tensor_set attn_tensor_set;

ATTN_API attn_tensor_set *attn_tensor_set_new(void); /* owned; NULL when out of memory */
ATTN_API void attn_tensor_set_free(attn_tensor_set *s);
/* Adds `t` under a copy of `name`; steals t.  Duplicate names: ATTN_E_INVALID. */
ATTN_API attn_status attn_tensor_set_add(attn_tensor_set *s, const char *name, attn_tensor *t,
                                         attn_error *err);
/* Borrowed; NULL when absent. */
ATTN_API const attn_tensor *attn_tensor_set_get(const attn_tensor_set *s, const char *name);
/* Removes `name` from the set and returns it, now owned by the caller
 * (attn_tensor_free); NULL when absent or when it is a view into the set's
 * backing buffer (a mapped file: it cannot outlive the set). */
ATTN_API attn_tensor *attn_tensor_set_take(attn_tensor_set *s, const char *name);
ATTN_API size_t attn_tensor_set_count(const attn_tensor_set *s);
ATTN_API const char *attn_tensor_set_name(const attn_tensor_set *s, size_t i);  /* borrowed */
ATTN_API const attn_tensor *attn_tensor_set_at(const attn_tensor_set *s, size_t i); /* borrowed */

/* ---- safetensors ----------------------------------------------------------
 * Readers validate everything: header length, header JSON (depth and size
 * bounded), dtypes, shapes, that data_offsets match shape*dtype, lie inside
 * the data section, and do not overlap.  Unknown dtypes (F16, ...) are
 * rejected with a message naming the tensor. */

/* mmap `path`; tensors are views into the mapping, which the set owns. */
ATTN_API attn_status attn_safetensors_read_file(const char *path, attn_tensor_set **out, attn_error *err);
/* Parse `len` bytes at `buf`; the data is copied, buf stays the caller's. */
ATTN_API attn_status attn_safetensors_read_mem(const void *buf, size_t len, attn_tensor_set **out,
                                               attn_error *err);
/* Serialise a set (names sorted, 8-byte aligned data) to heap memory;
 * *out owned (free()). */
ATTN_API attn_status attn_safetensors_write_mem(const attn_tensor_set *s, void **out, size_t *len,
                                                attn_error *err);
/* Write to `path` atomically (temp file in the same directory + rename). */
ATTN_API attn_status attn_safetensors_write_file(const attn_tensor_set *s, const char *path,
                                                 attn_error *err);

/* ---- mechanisms (the registry) --------------------------------------------- */

typedef enum {
    ATTN_P_INT,
    ATTN_P_FLOAT,
    ATTN_P_BOOL,
    ATTN_P_STRING,
    ATTN_P_INT_LIST,
    ATTN_P_OBJECT /* a nested mechanism or feature-map config */
} attn_param_type;

/* One config key of a mechanism.  `def` is the default as JSON text
 * ("null" where the reference default is None), or NULL when required;
 * for ATTN_P_STRING keys it is the bare string ("mean") or "null". */
typedef struct attn_param {
    const char *key;
    attn_param_type type;
    const char *def;
    double min, max; /* inclusive bounds for INT/FLOAT/INT_LIST items */
    const char *choices; /* "a|b|c" for STRING, else NULL */
    const char *doc;
} attn_param;

/* What one input or output of a model looks like.  shape[i] == -1: free.
 * Inputs: `required` 0 marks an optional input.  Outputs: `required` 1 is
 * the primary output (index 0, always computed), 0 an optional output
 * computed only on request (attn_model_forward_outputs). */
typedef struct attn_io_spec {
    char name[32];
    attn_dtype dtype;
    int required;
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    char dims[64]; /* symbolic, e.g. "N,L,H,E" */
    char doc[160]; /* outputs: one line on what it holds; inputs: "" */
} attn_io_spec;

/* Public description of a registered mechanism (borrowed, static). */
typedef struct attn_mech_info {
    const char *name;            /* canonical type name */
    const char *const *aliases;  /* NULL-terminated; the reference's hyphenated names */
    const char *reference;       /* the reference class */
    const char *summary;
    const attn_param *params;    /* terminated by key == NULL */
    int has_weights;             /* 0: parameter-free, served as a built-in model */
    int is_inner;                /* 1: usable as attention_layer's inner attention */
} attn_mech_info;

ATTN_API size_t attn_mech_count(void);
ATTN_API const attn_mech_info *attn_mech_at(size_t i);
/* By canonical name or alias; NULL when unknown. */
ATTN_API const attn_mech_info *attn_mech_find(const char *name);
/* The i-th optional output (attention map) models of this type declare,
 * as static strings: its name, dims and a one-line meaning.  Where the
 * names depend on the config (axial: one per axis) the entry is a pattern
 * ("attention_axis<k>").  Returns 0 past the end (and for types that form
 * no weights). */
ATTN_API int attn_mech_output_doc(const attn_mech_info *m, size_t i, const char **name, const char **dims,
                                  const char **doc);

/* ---- CPU kernels ---------------------------------------------------------------
 * The hot kernels exist in several instruction-set variants (AVX-512,
 * AVX2 + FMA, generic SSE2); the best one this CPU executes is picked at
 * first use.  ATTN_CPU=avx512|avx2|generic forces one and ATTN_GEMM=
 * attn|openblas the matrix product (default: a short calibration).
 * attn_cpu_check: ATTN_E_INVALID with a message when either asks for
 * something unknown or that this CPU cannot execute; building a model then
 * fails with the same error (the kernels themselves never run an
 * instruction the CPU lacks). */
ATTN_API attn_status attn_cpu_check(attn_error *err);
/* The i-th (key, value) of what the selection saw and chose: "cpu",
 * "cpu_features", "kernel_variants" (those this CPU executes),
 * "kernel_selection", "kernel_full", "kernel_softmax", "kernel_gemm",
 * "gemm_choice", "kernel_convert" (the FP16 / BF16 conversions).  Static
 * strings; returns 0 past the end. */
ATTN_API int attn_cpu_info(size_t i, const char **key, const char **value);
/* CPUs this process may use: its affinity mask, capped by the cgroup (v2
 * cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us) CPU quota, rounded up;
 * at least 1.  ATTN_CGROUP_ROOT replaces /sys/fs/cgroup, ATTN_CGROUP_SELF
 * /proc/self/cgroup (for tests).  Read anew on every call. */
ATTN_API int attn_cpu_count(void);

/* ---- call context -------------------------------------------------------------
 * Per-call settings: how many threads one forward may use, and an optional
 * cancellation flag polled between work items (ATTN_E_CANCELLED). */
typedef struct attn_ctx attn_ctx;
ATTN_API attn_ctx *attn_ctx_new(int threads); /* owned; threads < 1 means 1 */
ATTN_API void attn_ctx_free(attn_ctx *c);
ATTN_API int attn_ctx_threads(const attn_ctx *c);
ATTN_API void attn_ctx_set_threads(attn_ctx *c, int threads);
/* `flag` is borrowed and read atomically; non-zero cancels.  NULL clears. */
ATTN_API void attn_ctx_set_cancel(attn_ctx *c, const volatile int *flag);

/* ---- models ---------------------------------------------------------------------
 * A model is a mechanism with its config parsed and its weights bound.
 * Weights are copied: the set passed in may be freed right after. */
typedef struct attn_model attn_model;

/* `config_json`: the mechanism's config object as JSON text (NULL = "{}").
 * `weights`: borrowed, may be NULL for parameter-free types.  Every weight
 * the reference state_dict has must be present with its exact shape; extra
 * weights are an error.  *out owned. */
ATTN_API attn_status attn_model_new(const char *type, const char *config_json,
                                    const attn_tensor_set *weights, attn_model **out, attn_error *err);
/* Load a model folder: config.json = {"type": ..., "config": {...}} and an
 * optional weights.safetensors.  *out owned. */
/* A model from a config.json's text ({"type": ..., "config": {...}}; the
 * key "allow_nonfinite" is allowed and left to the caller, any other is
 * ATTN_E_CONFIG) and its weights (borrowed, may be NULL).  *out owned. */
ATTN_API attn_status attn_model_from_config(const char *config_json, size_t len, const attn_tensor_set *weights,
                                            attn_model **out, attn_error *err);
ATTN_API attn_status attn_model_load_dir(const char *dir, attn_model **out, attn_error *err);
ATTN_API void attn_model_free(attn_model *m);

ATTN_API const attn_mech_info *attn_model_mech(const attn_model *m);
/* The config as given, normalised to compact JSON text (borrowed). */
ATTN_API const char *attn_model_config_json(const attn_model *m);
ATTN_API size_t attn_model_num_inputs(const attn_model *m);
/* An input's description against m before its data exists (a server checks
 * a request with it before decoding anything): `name` is one of m's inputs,
 * `dtype` its dtype (I32 is accepted where I64 is declared), and the rank
 * and every fixed dimension fit.  ATTN_E_NOTFOUND (the message lists the
 * inputs), ATTN_E_DTYPE or ATTN_E_SHAPE. */
ATTN_API attn_status attn_model_check_input(const attn_model *m, const char *name, attn_dtype dtype, int rank,
                                            const int64_t *shape, attn_error *err);
/* The first required input of m that names[0..n) lacks (borrowed), or NULL. */
ATTN_API const attn_io_spec *attn_model_missing_input(const attn_model *m, const char *const *names, size_t n);
ATTN_API const attn_io_spec *attn_model_input(const attn_model *m, size_t i);
ATTN_API const attn_io_spec *attn_model_output(const attn_model *m);

/* ---- outputs: the primary one and the optional attention maps ----------------
 * Every model declares its outputs: index 0 is the primary output, named
 * "output" (the same spec attn_model_output returns); indexes >= 1 are
 * optional outputs that only attn_model_forward_outputs computes, when
 * asked.  For mechanisms that form attention weights they are the maps
 * (docs/attention-maps.md): "attention" (fast-transformers types:
 * (N,H,L,S), the reference's own layout), or a family of outputs named
 * "attention_<what>" where a type forms several maps (area geometry,
 * per-axis maps, retrieval weights).  A type that forms no weights has
 * only output 0.  Names and specs are borrowed from the model.
 *
 * Selecting outputs by name (`names`, `n_names` below): each name is an
 * output's exact name ("output" is accepted and always implied), except
 * that "attention" selects every optional output whose name is
 * "attention" or starts with "attention_".  Any other name fails with
 * ATTN_E_NOTFOUND and a message listing the model's outputs. */
ATTN_API size_t attn_model_num_outputs(const attn_model *m); /* >= 1 */
/* Output i (0 = primary), NULL past the end. */
ATTN_API const attn_io_spec *attn_model_output_at(const attn_model *m, size_t i);
/* Index of the output named exactly `name`, or -1. */
ATTN_API int attn_model_output_index(const attn_model *m, const char *name);

/* The shape output `name` (exact name) would have for `inputs` (borrowed,
 * checked as a forward checks them; only shapes, masks and lengths are
 * read).  *rank and shape[0..*rank) are written; *numel (may be NULL) gets
 * the element count, ATTN_E_OVERFLOW when it (in bytes) does not fit in
 * size_t.  Errors as attn_model_forward's for bad inputs; a type may also
 * refuse a map it cannot form for these inputs (ATTN_E_UNSUPPORTED, e.g.
 * conditional_full past its length limit with an other attention that
 * forms no weights). */
ATTN_API attn_status attn_model_output_shape(const attn_model *m, const attn_tensor_set *inputs, const char *name,
                                             int *rank, int64_t shape[ATTN_MAX_RANK], size_t *numel,
                                             attn_error *err);
/* The total number of elements of the optional outputs that `names`
 * selects (the primary output not counted) for `inputs`, without
 * computing anything: lets a caller refuse a request whose maps would be
 * too large.  Overflow-checked (ATTN_E_OVERFLOW); errors as above. */
ATTN_API attn_status attn_model_output_elements(const attn_model *m, const attn_tensor_set *inputs,
                                                const char *const *names, size_t n_names, size_t *numel,
                                                attn_error *err);
/* The forward that also computes the optional outputs `names` selects.
 * *out (owned, attn_tensor_set_free) holds "output" — bit-identical to
 * attn_model_forward's — and one F32 tensor per selected output under its
 * name.  n_names == 0 (names may then be NULL) gives just "output".
 * Masked positions of a map are exactly 0; rows sum to 1 where the
 * reference's do (docs/attention-maps.md says where they do not). */
ATTN_API attn_status attn_model_forward_outputs(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                                const char *const *names, size_t n_names, attn_tensor_set **out,
                                                attn_error *err);

/* Run the model.  Inputs are looked up by name in `inputs` (borrowed; extra
 * tensors ignored); INT32 lengths are accepted where INT64 is specified.
 * *output is owned by the caller (attn_tensor_free). */
ATTN_API attn_status attn_model_forward(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                        attn_tensor **output, attn_error *err);

/* The same, into a caller-owned FP32 tensor `output` that must have exactly
 * the output's shape (ATTN_E_SHAPE otherwise; it is then left unchanged).
 * Every mechanism writes the result straight into `output`.  `output` may
 * share memory with the inputs: for `full` with E == D the output can be
 * the queries tensor itself, and the forward then overwrites the queries in
 * place and needs no output buffer at all (a long sequence in three
 * tensors' memory instead of four).  Any other overlap with an input is the
 * one case computed aside (in a temporary) and copied in, as the forward
 * still reads the inputs while it writes.  After a failure other than
 * ATTN_E_SHAPE (cancellation, say) `output` — and so the queries, when they
 * are the output — may hold part of the result. */
ATTN_API attn_status attn_model_forward_into(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                             attn_tensor *output, attn_error *err);

/* ---- sequences (autoregressive decoding) -------------------------------------
 * A sequence is the recurrent state of one model over N streams that
 * advance together (fast-transformers' recurrent modules): the key/value
 * cache of softmax attention, the running sums of linear attention, and so
 * on.  Each step takes T >= 1 new tokens per stream on the sequence axis
 * (axis 1 of the model's first input: queries or x) and returns exactly
 * the T new rows of the causal forward over everything the sequence has
 * received, so any split into steps gives the causal forward's output
 * (within float rounding).  docs/sequences.md lists what each type keeps
 * and which inputs a step accepts.
 *
 *   ATTN_SEQ_SELF   every step carries the model's usual inputs for the new
 *                   tokens (queries, keys, values; or x).  Causal by
 *                   construction: attn_mask, query_lengths and key_lengths
 *                   (mask, input_mask) are refused, never ignored.
 *   ATTN_SEQ_CROSS  the memory (keys, values, optional key_lengths) is given
 *                   once to attn_seq_new and stored (projected, for
 *                   attention_layer); every step carries only queries.
 *
 * A sequence borrows its model (which must outlive it) and is not
 * thread-safe: apply steps one at a time.  Different sequences of one model
 * may step concurrently. */
typedef enum { ATTN_SEQ_SELF = 1, ATTN_SEQ_CROSS = 2 } attn_seq_kind;
typedef struct attn_seq attn_seq;

/* The kinds (ATTN_SEQ_SELF | ATTN_SEQ_CROSS bits) model m supports; 0 when
 * none.  Depends on the config (compositional needs causal=true, an
 * attention_layer inherits its inner attention's kinds). */
ATTN_API unsigned attn_model_seq_kinds(const attn_model *m);
/* The kinds some config of this type supports (a model's own may be fewer:
 * attn_model_seq_kinds). */
ATTN_API unsigned attn_mech_seq_kinds(const attn_mech_info *info);
/* The registered types that support `kind` with some config, as
 * "full, linear, ..." into buf (always NUL-terminated when cap > 0);
 * returns the length the full list needs (snprintf style). */
ATTN_API size_t attn_seq_types(attn_seq_kind kind, char *buf, size_t cap);

/* New sequence of `kind` over n_streams (>= 1) streams of model m
 * (borrowed).  `memory` (borrowed, read during the call only): NULL for
 * self sequences; for cross sequences the model's keys and values with
 * N = n_streams, and optionally key_lengths (I64 or I32).  `ctx` may be
 * NULL (one thread).  A type without the kind: ATTN_E_UNSUPPORTED with a
 * message naming the types that have it.  *out owned (attn_seq_free). */
ATTN_API attn_status attn_seq_new(const attn_model *m, attn_seq_kind kind, int64_t n_streams,
                         const attn_tensor_set *memory, attn_ctx *ctx, attn_seq **out, attn_error *err);
ATTN_API void attn_seq_free(attn_seq *s);

/* Appends the T new tokens in `inputs` (borrowed; tensors the model does
 * not declare are ignored, as in attn_model_forward) and writes their
 * output rows to *out (owned, the model's output shape with T on the
 * sequence axis).  Bad inputs (shape, dtype, N, a refused mask) leave the
 * sequence unchanged.  A failure after the inputs were accepted (out of
 * memory, cancellation) leaves it broken: later steps and exports fail
 * with ATTN_E_INVALID; free it. */
ATTN_API attn_status attn_seq_step(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *inputs, attn_tensor **out,
                          attn_error *err);
/* T, the tokens a step with `inputs` would append (axis 1 of the model's
 * first input), without stepping: lets a caller refuse a step that would
 * pass its longest length (attn_seq_length + T). */
ATTN_API attn_status attn_seq_tokens(const attn_seq *s, const attn_tensor_set *inputs, int64_t *T, attn_error *err);
/* The same for a sequence of model m not yet started (T of its first step). */
ATTN_API attn_status attn_model_seq_tokens(const attn_model *m, const attn_tensor_set *inputs, int64_t *T,
                                           attn_error *err);
/* A sequence started by its first request, as a server receives it: N is
 * axis 0 of the model's first input; a self sequence then takes `inputs` as
 * its first step; a cross sequence takes keys, values and key_lengths from
 * `inputs` as its memory and the other inputs as its first step.  *seq and
 * *out owned; on failure both NULL and nothing is kept. */
ATTN_API attn_status attn_seq_open(const attn_model *m, attn_seq_kind kind, attn_ctx *ctx,
                                   const attn_tensor_set *inputs, attn_seq **seq, attn_tensor **out,
                                   attn_error *err);
/* 1 when a step failed after its inputs were accepted (the state cannot be
 * trusted: later steps and exports fail), else 0. */
ATTN_API int attn_seq_broken(const attn_seq *s);

/* Tokens received so far (0 for a new sequence; cross memory not counted). */
ATTN_API int64_t attn_seq_length(const attn_seq *s);
ATTN_API int64_t attn_seq_streams(const attn_seq *s);
ATTN_API attn_seq_kind attn_seq_kind_of(const attn_seq *s);
ATTN_API const attn_model *attn_seq_model(const attn_seq *s); /* borrowed */
/* Bytes of state allocated now (caches with their spare capacity, sums,
 * stored memory), the sequence object included. */
ATTN_API size_t attn_seq_state_bytes(const attn_seq *s);

/* The complete state as a tensor set (write it with attn_safetensors_write_*):
 * "seq.meta" and "seq.model" (I64: format version, kind, streams, length,
 * shape; a fingerprint of the model's type and config) and the mechanism's
 * buffers (F32; I64 for integers and for the bits of double sums).
 * *state owned.  A broken sequence: ATTN_E_INVALID. */
ATTN_API attn_status attn_seq_export(const attn_seq *s, attn_tensor_set **state, attn_error *err);
/* A sequence of model m (borrowed) from an export, on any process with the
 * same model type and config: it continues bit-exactly as the exported one
 * would when the process runs the same kernel variant (attn_cpu_info's
 * kernel_full; the sgemm choice travels in the export as seq.gemm), within
 * rounding on another.  Every tensor is checked (fingerprint, dtypes,
 * shapes, extras); `state` is borrowed (copied).  *out owned. */
ATTN_API attn_status attn_seq_import(const attn_model *m, const attn_tensor_set *state, attn_seq **out,
                            attn_error *err);

/* ---- workspace ------------------------------------------------------------------
 * A forward's scratch memory.  attn_model_forward and _forward_into allocate
 * it per call; a caller that runs many forwards can size it once and pass
 * its own block instead (no allocation in the call at all).
 *
 * attn_model_workspace_size: the bytes one forward of `m` over these inputs
 * needs when run with `threads` threads (0: none).  It checks the inputs
 * as the forward does (same errors; ATTN_E_OVERFLOW when the size does not
 * fit in size_t) and reads only their shapes, masks and lengths.
 *
 * attn_model_forward_ws: attn_model_forward_into with the caller's
 * workspace `ws` of `ws_bytes` bytes: borrowed for the call, 64-byte
 * aligned (aligned_alloc(64, n)), at least attn_model_workspace_size for
 * the same inputs and attn_ctx_threads(ctx), and overlapping neither the
 * inputs nor `output` (ATTN_E_INVALID otherwise, before any work).  Its
 * contents need no initialisation and are garbage afterwards; one block may
 * be reused by any later call, of any model, that it is large enough for,
 * but never by two calls at the same time.  `ws` may be NULL when the size
 * is 0.  Results are bit-identical to attn_model_forward. */
ATTN_API attn_status attn_model_workspace_size(const attn_model *m, const attn_tensor_set *inputs, int threads,
                                      size_t *bytes, attn_error *err);
ATTN_API attn_status attn_model_forward_ws(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                  attn_tensor *output, void *ws, size_t ws_bytes, attn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ATTN_H */
