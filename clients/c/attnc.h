/*
 * attnc.h — a small C client for attnd (and any server speaking the Open
 * Inference Protocol REST API, "KServe v2", as Triton does), over libcurl.
 *
 * Conventions (those of libattn):
 *   - Every fallible function returns attnc_status (ATTNC_OK == 0, errors
 *     < 0) and, when `err` is not NULL, fills it: the status, the HTTP status
 *     when the server answered, and one line of text — the server's own
 *     {"error": ...} message when it sent one.  Nothing aborts or exits on
 *     bad input, from the caller or from the server.
 *   - Ownership is stated on every pointer: "owned" = the caller frees it
 *     with the named function, "borrowed" = valid while its owner lives.
 *   - A client holds one connection (kept alive between calls) and is not
 *     thread-safe: use one client per thread.
 *
 * Tensor data is dense, row-major, little-endian; BOOL is one byte (0 or 1)
 * per element; FP16 (IEEE binary16) and BF16 (bfloat16) are the raw 16-bit
 * patterns (attnc_f32_to_f16 and friends convert, rounding to nearest even).  Inference uses the binary tensor data extension by default:
 * inputs and outputs travel as raw bytes after a JSON header, bit for bit.
 */
#ifndef ATTNC_H
#define ATTNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNC_VERSION "0.1.0"
#define ATTNC_MAX_RANK 8

/* ---- status codes ----------------------------------------------------------
 * One X-macro list gives the enum and attnc_status_str().  HTTP statuses map
 * onto the middle block in one table (attnc.c: status_of_http). */
#define ATTNC_STATUS_MAP(X)                                                  \
    X(OK, 0, "ok")                                                           \
    X(E_INVALID, -1, "invalid argument")                                     \
    X(E_NOMEM, -2, "out of memory")                                          \
    X(E_IO, -3, "i/o error")                                                 \
    X(E_TRANSPORT, -4, "cannot reach the server")                            \
    X(E_TIMEOUT, -5, "timed out")                                            \
    X(E_PROTOCOL, -6, "malformed response")                                  \
    X(E_BAD_REQUEST, -7, "bad request (400)")                                \
    X(E_UNAUTHORIZED, -8, "unauthorized (401/403)")                          \
    X(E_NOT_FOUND, -9, "not found (404)")                                    \
    X(E_TOO_LARGE, -10, "too large (413)")                                   \
    X(E_UNAVAILABLE, -11, "unavailable (503)")                               \
    X(E_SERVER, -12, "server error")                                         \
    X(E_HTTP, -13, "unexpected HTTP status")                                \
    X(E_CONFLICT, -14, "conflict (409)")

typedef enum {
#define ATTNC_X_ENUM(name, val, str) ATTNC_##name = val,
    ATTNC_STATUS_MAP(ATTNC_X_ENUM)
#undef ATTNC_X_ENUM
} attnc_status;

/* Static string for a status ("unknown status" for others). */
const char *attnc_status_str(attnc_status s);

/* Caller-provided error detail.  May be NULL everywhere. */
typedef struct attnc_error {
    attnc_status code;
    long http_status; /* 0 when no HTTP answer was received */
    char msg[320];
    long retry_after; /* seconds, from the answer's Retry-After (503); -1 when absent */
} attnc_error;

/* ---- tensors ------------------------------------------------------------------ */

typedef enum {
    ATTNC_FP32 = 0,
    ATTNC_BOOL = 1,
    ATTNC_INT32 = 2,
    ATTNC_INT64 = 3,
    ATTNC_FP16 = 4, /* uint16_t patterns */
    ATTNC_BF16 = 5  /* uint16_t patterns: the top half of a float32 */
} attnc_dtype;

/* Protocol names: "FP32", "BOOL", "INT32", "INT64", "FP16", "BF16". */
const char *attnc_dtype_name(attnc_dtype t);
size_t attnc_dtype_size(attnc_dtype t); /* 4, 1, 4, 8, 2, 2; 0 for others */

/* float32 <-> FP16 / BF16, n values.  To 16 bits: nearest, ties to even;
 * beyond FP16's range an infinity; NaN stays NaN.  From BF16: the bits
 * followed by two zero bytes. */
void attnc_f32_to_f16(const float *in, uint16_t *out, size_t n);
void attnc_f16_to_f32(const uint16_t *in, float *out, size_t n);
void attnc_f32_to_bf16(const float *in, uint16_t *out, size_t n);
void attnc_bf16_to_f32(const uint16_t *in, float *out, size_t n);

/* A tensor on the wire.  As an input every pointer is borrowed from the
 * caller; as an output (attnc_result_output) from the result. */
typedef struct attnc_tensor {
    const char *name;
    attnc_dtype dtype;
    int rank;
    int64_t shape[ATTNC_MAX_RANK];
    const void *data;
    size_t nbytes; /* must equal product(shape) * attnc_dtype_size(dtype) */
} attnc_tensor;

/* ---- the client --------------------------------------------------------------- */

typedef struct attnc_client attnc_client;

/* `url` is the server's base URL ("http://127.0.0.1:8000"), copied; a
 * trailing slash is ignored.  *out owned (attnc_client_free). */
attnc_status attnc_client_new(const char *url, attnc_client **out, attnc_error *err);
void attnc_client_free(attnc_client *c);

/* Sent as "Authorization: Bearer <key>" on every request; NULL clears.
 * Copied.  Keys with control characters are refused. */
attnc_status attnc_client_set_api_key(attnc_client *c, const char *key, attnc_error *err);
/* Whole-request timeout in milliseconds (0: none; the default is 60000). */
void attnc_client_set_timeout(attnc_client *c, long ms);
/* How often a request answered 503 (overloaded, or the replica is
 * draining) is sent again, after the server's Retry-After (at most 5 s) or
 * 100 ms doubling.  Default 2; 0 disables. */
void attnc_client_set_retries(attnc_client *c, int retries);
/* Responses larger than this many bytes fail with ATTNC_E_TOO_LARGE
 * (default 1 GiB). */
void attnc_client_set_max_response(attnc_client *c, size_t bytes);
/* Compression of inference bodies, Triton's options: request_algorithm
 * compresses request bodies (Content-Encoding), response_algorithm asks
 * for compressed replies (Accept-Encoding; libcurl inflates them).  Each
 * "gzip", "deflate" or NULL (none, the default); attnc_infer_opts can
 * override them per call.  Anything else: ATTNC_E_INVALID. */
attnc_status attnc_client_set_compression(attnc_client *c, const char *request_algorithm,
                                          const char *response_algorithm, attnc_error *err);

/* ---- health and metadata ----------------------------------------------------------
 * The protocol's health answers are status codes only: 200 = yes, 4xx/503 =
 * no.  *yes is set whenever the server answered (ATTNC_OK). */
attnc_status attnc_server_live(attnc_client *c, int *yes, attnc_error *err);
attnc_status attnc_server_ready(attnc_client *c, int *yes, attnc_error *err);
attnc_status attnc_model_ready(attnc_client *c, const char *model, int *yes, attnc_error *err);

/* The JSON text of GET /v2 (server metadata) and GET /v2/models/{model};
 * *json owned (free()). */
attnc_status attnc_server_metadata(attnc_client *c, char **json, attnc_error *err);
attnc_status attnc_model_metadata(attnc_client *c, const char *model, char **json,
                                  attnc_error *err);

/* ---- the model repository (repository extension) ------------------------------- */

typedef struct attnc_model_entry {
    const char *name;
    const char *version; /* "" when the server gave none */
    const char *state;   /* "READY", "UNAVAILABLE", ... */
    const char *reason;  /* "" when none */
} attnc_model_entry;

typedef struct attnc_model_list attnc_model_list;

/* POST /v2/repository/index.  ready_only: only the models ready to serve.
 * *out owned (attnc_model_list_free). */
attnc_status attnc_models(attnc_client *c, int ready_only, attnc_model_list **out,
                          attnc_error *err);
size_t attnc_model_list_count(const attnc_model_list *l);
/* Borrowed from the list; NULL when i is out of range. */
const attnc_model_entry *attnc_model_list_at(const attnc_model_list *l, size_t i);
void attnc_model_list_free(attnc_model_list *l);

/* POST /v2/repository/models/{name}/load with Triton's convention:
 * parameters.config = config_json (the text of a model folder's
 * config.json) and parameters["file:weights.safetensors"] = the weights,
 * base64-encoded (weights may be NULL for parameter-free types).
 * config_json and weights are borrowed. */
attnc_status attnc_load(attnc_client *c, const char *name, const char *config_json,
                        const void *weights, size_t weights_len, attnc_error *err);
/* The same from a model folder: dir/config.json and, when present,
 * dir/weights.safetensors. */
attnc_status attnc_load_dir(attnc_client *c, const char *name, const char *dir, attnc_error *err);
/* POST /v2/repository/models/{name}/unload. */
attnc_status attnc_unload(attnc_client *c, const char *name, attnc_error *err);

/* ---- inference ------------------------------------------------------------------ */

typedef struct attnc_infer_opts {
    const char *id;              /* request id, echoed back; NULL: none */
    const char *parameters_json; /* request parameters, a JSON object's text; NULL: none */
    const char *const *outputs;  /* names of the outputs wanted; NULL: all */
    size_t n_outputs;
    int json;                    /* 1: data as JSON numbers instead of binary (finite values only) */
    /* "FP32", "FP16" or "BF16": the outputs' datatype (parameter datatype);
     * NULL: the server's (FP32).  Without `outputs`, every output of the
     * model (from its metadata). */
    const char *output_datatype;
    /* "gzip", "deflate", "none"; NULL: the client's (attnc_client_set_compression). */
    const char *request_compression_algorithm;
    const char *response_compression_algorithm;
} attnc_infer_opts;

typedef struct attnc_result attnc_result;

/* POST /v2/models/{model}/infer.  `inputs` (n of them) and `opts` (may be
 * NULL) are borrowed.  Inputs are checked before anything is sent.
 * *out owned (attnc_result_free). */
attnc_status attnc_infer(attnc_client *c, const char *model, const attnc_tensor *inputs, size_t n,
                         const attnc_infer_opts *opts, attnc_result **out, attnc_error *err);

size_t attnc_result_count(const attnc_result *r);
/* Borrowed from r; NULL when out of range / absent. */
const attnc_tensor *attnc_result_output(const attnc_result *r, size_t i);
const attnc_tensor *attnc_result_find(const attnc_result *r, const char *name);
/* The response's model_name and id; borrowed, "" when absent. */
const char *attnc_result_model_name(const attnc_result *r);
const char *attnc_result_id(const attnc_result *r);
/* The response's "parameters" object as compact JSON text (a sequence step's
 * {"sequence_id", "sequence_length"[, "sequence_end"]}); borrowed, "{}" when absent. */
const char *attnc_result_parameters(const attnc_result *r);
void attnc_result_free(attnc_result *r);

/* ---- sequences (streaming sessions; attnd's sequence extension) ------------------
 * A sequence keeps its state on the server (the key/value cache of full, the
 * running sums of causal_linear, ...); each step sends only the new tokens
 * (axis 1 of every input, T >= 1) and gets exactly those rows of the causal
 * forward over everything sent so far.  A step is POST .../infer with the
 * request parameters sequence_id, sequence_start (first step), sequence_end,
 * sequence_kind (a cross start), and the id in the Sequence-Id header too.
 *
 * Errors (err->http_status, and the server's message in err->msg):
 * ATTNC_E_NOT_FOUND (404: unknown or ended; the message says why: end flag,
 * idle timeout, evicted, deleted, failed, never started here), ATTNC_E_CONFLICT
 * (409: a start or restore on a live id, or a step the server's copy
 * refuses because it holds another length than this object counts — the
 * step sends attnd_expect_length — as a stale copy after a failover), ATTNC_E_TOO_LARGE (413: past
 * --max-sequence-tokens), ATTNC_E_UNAVAILABLE (503: no room; err->retry_after),
 * ATTNC_E_BAD_REQUEST (400: a model without sequences, config on a later step,
 * masks, ...).  503s are retried as attnc_client_set_retries says (the server
 * did not apply the step); nothing else is. */

typedef struct attnc_seq attnc_seq;

typedef struct attnc_seq_opts {
    /* The id: a string matching [A-Za-z0-9._:~-]{1,128} (sent as a JSON
     * string), or NULL for int_id. */
    const char *id;
    /* With id NULL: an integer id (sent as a JSON number); 0: a random
     * 63-bit one. */
    uint64_t int_id;
    const char *kind;        /* "self" (NULL) or "cross": the start carries keys and values */
    const char *config_json; /* a JSON object merged into the start's parameters
                              * (a built-in model's config); NULL: none */
} attnc_seq_opts;

/* A sequence of `model` on c's server; nothing is sent until the first
 * step.  c is borrowed (it must outlive the sequence), opts may be NULL.
 * *out owned (attnc_seq_free). */
attnc_status attnc_seq_new(attnc_client *c, const char *model, const attnc_seq_opts *opts, attnc_seq **out,
                           attnc_error *err);
/* Sends the next tokens; the first step starts the sequence; end != 0 ends
 * it after this step.  opts (may be NULL) as for attnc_infer: its
 * parameters_json is merged into the step's parameters.  *out owned
 * (attnc_result_free). */
attnc_status attnc_seq_step(attnc_seq *s, const attnc_tensor *inputs, size_t n, int end,
                            const attnc_infer_opts *opts, attnc_result **out, attnc_error *err);
/* Ends the sequence now (DELETE), without a step; ATTNC_OK at once when it
 * never started or has ended. */
attnc_status attnc_seq_end(attnc_seq *s, attnc_error *err);
/* GET .../sequences/{id}: the state (safetensors bytes) for
 * attnc_seq_restore; the sequence stays live.  *data owned (free()). */
attnc_status attnc_seq_export(attnc_seq *s, void **data, size_t *len, attnc_error *err);
/* PUT .../sequences/{id} with an export (data borrowed): the live sequence
 * `id` (a string, or an integer's decimal text), continuing exactly where
 * the export was made, on this server or another with the same model
 * config.  *out owned (attnc_seq_free). */
attnc_status attnc_seq_restore(attnc_client *c, const char *model, const char *id, const void *data,
                               size_t len, attnc_seq **out, attnc_error *err);
/* DELETE .../sequences/{id} by id. */
attnc_status attnc_seq_delete(attnc_client *c, const char *model, const char *id, attnc_error *err);
/* GET /v2/models/{model}/sequences (admin scope when the server has admin
 * keys): {"model", "sequences": [{"id", "length", "bytes", "idle_s", ...}]};
 * *json owned (free()). */
attnc_status attnc_seq_list(attnc_client *c, const char *model, char **json, attnc_error *err);

/* The id as text (borrowed), the tokens the server holds after the last
 * step, and whether it has started / ended as far as this object knows. */
const char *attnc_seq_id(const attnc_seq *s);
int64_t attnc_seq_length(const attnc_seq *s);
int attnc_seq_started(const attnc_seq *s);
int attnc_seq_ended(const attnc_seq *s);
/* Frees the object only: a live sequence stays live (attnc_seq_end first). */
void attnc_seq_free(attnc_seq *s);

#ifdef __cplusplus
}
#endif
#endif /* ATTNC_H */
