/* fuzz_server_grpc.c — libFuzzer target: attnd's gRPC decoders.
 *
 * The first byte picks the half:
 *  - even: the bytes after it are a ModelInferRequest message: budgeted
 *    protobuf-c unpacking, the gRPC codec (server/grpc_infer.c: the request
 *    document through svc_wire_from_json, raw and typed contents bound),
 *    and each input decoded into a tensor.  A decoded tensor is encoded as a
 *    ModelInferResponse, which must unpack again with the tensor's bytes.
 *  - odd: the bytes after it are what a client sends on a connection after
 *    HTTP/2's preface (prepended here): frames through an nghttp2 server
 *    session with the gRPC transport's callbacks (server/grpc.c: headers,
 *    message framing, limits, flow control, dispatch; the RPCs needing the
 *    repository or the scheduler answer with an error).
 * Input: that byte, then the message or the frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "grpc.h"
#include "grpc_pb.h"

static void setup(void) {
    svc_cfg.max_rank = ATTN_MAX_RANK;
    svc_cfg.max_dim = 1 << 20;
    svc_cfg.max_elements = 1 << 20; /* attnd: 16 Mi; smaller keeps the fuzzer's RSS low */
    svc_cfg.max_json_depth = 32;
    svc_cfg.max_body = 1 << 20;
    svc_cfg.max_header = 64 << 10;
    svc_cfg.retry_after_s = 1;
    svc_cfg.allow_nonfinite = 1;
}

static void round_trip(const char *name, attn_tensor *t) {
    attn_tensor *copy = NULL;
    attn_error e;
    if (attn_tensor_new(t->dtype, t->rank, t->shape, &copy, &e) != ATTN_OK) abort();
    if (t->nbytes) memcpy(copy->data, t->data, t->nbytes);
    svc_reply rep;
    svc_reply_init(&rep);
    svc_wire_result res = {.model_name = "m", .model_version = "1"};
    svc_wire_out o = {.name = name, .t = copy, .binary = 1};
    svc_grpc_encode(&res, &o, 1, &rep); /* steals copy */
    if (rep.status != 200) abort();
    size_t tl = rep.tail ? rep.tail->nbytes : 0;
    unsigned char *msg = malloc(rep.len + tl + 1);
    memcpy(msg, rep.body, rep.len);
    if (tl) memcpy(msg + rep.len, rep.tail->data, tl);
    Inference__ModelInferResponse *r = inference__model_infer_response__unpack(NULL, rep.len + tl, msg);
    if (!r || r->n_outputs != 1 || r->n_raw_output_contents != 1 || r->raw_output_contents[0].len != t->nbytes ||
        (t->nbytes && memcmp(r->raw_output_contents[0].data, t->data, t->nbytes) != 0) ||
        r->outputs[0]->n_shape != (size_t)t->rank) {
        fprintf(stderr, "the response does not carry the tensor back\n");
        abort();
    }
    inference__model_infer_response__free_unpacked(r, NULL);
    free(msg);
    svc_reply_clear(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        setup();
        once = 1;
    }
    if (size < 1) return 0;
    if (data[0] & 1) {
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        unsigned char *buf = malloc(size - 1 + 24);
        memcpy(buf, preface, 24);
        memcpy(buf + 24, data + 1, size - 1);
        svc_grpc_fuzz_session(buf, size - 1 + 24);
        free(buf);
        if (svc_grpc_inflight() != 0) abort(); /* every call was answered and freed */
        return 0;
    }
    svc_wire w;
    svc_err e = {0};
    void *keep = NULL;
    if (svc_grpc_decode(data + 1, size - 1, &w, &keep, &e) != 0) {
        if (e.status < 400 || !e.msg[0]) abort(); /* a failure always says what */
        return 0;
    }
    for (size_t i = 0; i < w.n_in; i++) {
        attn_tensor *t = NULL;
        if (svc_wire_decode_binary(&w.in[i], 1, &t, &e) == 0) {
            round_trip(w.in[i].name, t);
            attn_tensor_free(t);
        }
    }
    svc_wire_free(&w);
    svc_grpc_keep_free(keep);
    return 0;
}
