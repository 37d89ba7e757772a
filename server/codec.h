/*
 * codec.h — inference requests and responses on the wire (JSON, and the
 * binary tensor data extension), independent of any model.
 *
 * Decoding is two-phase so that nothing large is allocated before the
 * request has been checked against the model: svc_wire_parse reads the
 * header (names, datatypes, shapes, where each tensor's data lies) and
 * enforces the size limits; svc_wire_decode then converts one input's data
 * into a tensor.
 *
 * FP16 and BF16 tensors travel in 2 bytes an element and are float32 from
 * the decoder on: an input sent as FP16 or BF16 becomes an FP32 tensor (so
 * it is accepted wherever the model takes FP32), and an FP32 output can be
 * asked for in either (output parameter `datatype`).  JSON numbers for an
 * FP16 / BF16 input are rounded to that format (nearest, ties to even)
 * before they are widened; binary BF16 accepts every bit pattern.
 */
#ifndef SVC_CODEC_H
#define SVC_CODEC_H

#include <jansson.h>

#include "json_scan.h"
#include "svc.h"

/* A 16-bit float format on the wire; the tensor is FP32. */
typedef enum { SVC_HALF_NONE = 0, SVC_HALF_F16 = 1, SVC_HALF_BF16 = 2 } svc_half;

typedef struct svc_wire_input {
    const char *name;            /* borrowed from the header */
    const char *datatype;        /* as sent */
    attn_dtype dtype;            /* of the decoded tensor (FP32 for FP16 / BF16) */
    svc_half half;               /* the wire format, when FP16 or BF16 */
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    size_t numel;
    const char *text;            /* JSON data array (brackets included) */
    size_t text_len;
    char *text_owned;            /* when jansson held the data (escaped key) */
    const unsigned char *bin;    /* binary data, when binary_data_size was given */
    size_t bin_len;
    int is_binary;
} svc_wire_input;

typedef struct svc_wire_output {
    const char *name;
    int binary;                  /* -1: not said */
    int has_datatype;            /* parameters.datatype given */
    attn_dtype dtype;            /* ... as the tensor type (FP32 for FP16 / BF16) */
    svc_half half;               /* ... FP16 or BF16 */
} svc_wire_output;

typedef struct svc_wire {
    json_t *root;                /* owned */
    const char *id;              /* borrowed; NULL when absent */
    json_t *params;              /* borrowed; NULL when absent */
    svc_wire_input *in;          /* owned array */
    size_t n_in;
    svc_wire_output *out;        /* owned array */
    size_t n_out;
    int binary_output;           /* request parameters.binary_data_output */
} svc_wire;

/* Datatype names of the protocol. */
const char *svc_datatype_name(attn_dtype t);
int svc_datatype_parse(const char *s, attn_dtype *out);
/* Any wire datatype: FP32, FP16, BF16, BOOL, INT32, INT64.  0 or -1. */
int svc_wire_datatype_parse(const char *s, attn_dtype *dtype, svc_half *half);
const char *svc_half_name(svc_half h); /* "FP16", "BF16"; NULL for none */
/* Bytes an element of the input takes on the wire. */
size_t svc_wire_elem_size(const svc_wire_input *in);

/* Parses an inference request.  header_len < 0: the whole body is JSON;
 * otherwise the JSON header is body[0, header_len) and the binary tensor
 * data follows.  `body` must be NUL-terminated at body[len].  Returns 0, or
 * the status (400; 503 out of memory) in *e.  On failure *w is empty. */
int svc_wire_parse(const char *body, size_t len, long header_len, svc_wire *w, svc_err *e);
void svc_wire_free(svc_wire *w);
/* The same checks on a request another front-end has already turned into
 * the protocol's JSON document (gRPC: grpc_infer.c), every input with
 * parameters.binary_data_size; takes root.  The binary inputs' bytes are
 * the caller's to set (in->bin), each exactly in->bin_len long. */
int svc_wire_from_json(json_t *root, svc_wire *w, svc_err *e);

/* Converts one input's data (JSON or binary) into a new tensor of in->dtype.
 * allow_nonfinite: NaN and infinities are accepted (else 400).  Returns 0 or
 * the status in *e. */
int svc_wire_decode(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out, svc_err *e);

/* codec_binary.c: assigns each binary input its bytes of bin[0, bin_len)
 * in input order; the sizes must add up exactly.  0, or 400 in *e. */
int svc_wire_bind_binary(svc_wire *w, const unsigned char *bin, size_t bin_len, svc_err *e);
int svc_wire_decode_binary(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out,
                           svc_err *e);
/* The same, but when the input's bytes are aligned for its dtype the tensor
 * is a view into the body (*viewed = 1, no copy): the body must then outlive
 * the tensor.  Unaligned bytes are copied (*viewed = 0). */
int svc_wire_view_binary(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out, int *viewed,
                         svc_err *e);

/* The response.  `output` is stolen.  With binary set, the data travels
 * after the JSON header (reply->tail, header_len set; converted FP16 / BF16
 * data is in the body after the header); otherwise as JSON numbers,
 * non-finite values as the tokens NaN, Infinity, -Infinity.  An FP16 / BF16
 * output in JSON is the exact value of the 16-bit number, printed as the
 * shortest decimal that reads back as that float32. */
typedef struct svc_wire_result {
    const char *model_name;
    const char *model_version;
    const char *id;              /* echoed when not NULL */
    const char *output_name;
    int binary;
    const char *params_json;     /* the response's "parameters" object (JSON text), or NULL */
    svc_half half;               /* send an FP32 output as FP16 / BF16 */
} svc_wire_result;

void svc_wire_encode(const svc_wire_result *res, attn_tensor *output, svc_reply *reply);

/* Several outputs, in this order: each as JSON data or binary (the binary
 * data after the JSON part, in output order), each in its own datatype.
 * Every outs[i].t is stolen; res->output_name, res->binary and res->half
 * are not used. */
typedef struct svc_wire_out {
    const char *name;
    attn_tensor *t;
    int binary;
    svc_half half;
} svc_wire_out;
void svc_wire_encode_outputs(const svc_wire_result *res, svc_wire_out *outs, size_t n, svc_reply *reply);

#endif
