/* fuzz_server_json.c — libFuzzer target: attnd's JSON inference request
 * decoder (server/json_scan.c + codec_json.c), called directly: the
 * one-pass scanner, jansson over the document with the data arrays left
 * out, the header checks, and each input's data converted into a tensor.
 * A decoded tensor is encoded as a response and must read back bit for bit
 * (NaN as any NaN).  The same bytes also go through svc_json_parse, the
 * small-document parser of the repository endpoints.
 * Input: the request body. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json_scan.h"

static void setup(void) {
    svc_cfg.max_rank = ATTN_MAX_RANK;
    svc_cfg.max_dim = 1 << 20;
    svc_cfg.max_elements = 1 << 20; /* attnd: 16 Mi; smaller keeps the fuzzer's RSS low */
    svc_cfg.max_json_depth = 32;
    svc_cfg.max_body = 1 << 20;
}

/* The response carries the tensor as JSON numbers: read them back. */
static void round_trip(const svc_wire_input *in, attn_tensor *t) {
    attn_tensor *copy = NULL;
    attn_error e;
    if (attn_tensor_new(t->dtype, t->rank, t->shape, &copy, &e) != ATTN_OK) abort();
    if (t->nbytes) memcpy(copy->data, t->data, t->nbytes);
    svc_reply rep;
    svc_reply_init(&rep);
    svc_wire_result res = {.model_name = "m", .model_version = "1", .id = NULL,
                           .output_name = "output", .binary = 0};
    svc_wire_encode(&res, copy, &rep); /* steals copy */
    if (rep.status != 200) abort();
    /* {"model_name":...,"outputs":[{"name":"output","datatype":..,"shape":[..],"data":[..]}]}
     * is itself a request whose single input is named "output". */
    svc_wire w;
    svc_err err = {0};
    char *body = malloc(rep.len + 1);
    memcpy(body, rep.body, rep.len);
    body[rep.len] = '\0';
    /* Blank out the response-only fields and rename outputs to inputs, each
     * in place (same length), so that no byte moves. */
    static const char head[] = "{\"model_name\":\"m\",\"model_version\":\"1\",";
    if (strncmp(body, head, sizeof head - 1) != 0) abort();
    memset(body + 1, ' ', sizeof head - 2);
    char *o = strstr(body, "\"outputs\"");
    if (!o) abort();
    memcpy(o, "\"inputs\" ", 9);
    if (svc_wire_parse(body, rep.len, -1, &w, &err) != 0 || w.n_in != 1) {
        fprintf(stderr, "response does not parse as a request: %s\n%.*s\n", err.msg, (int)rep.len, rep.body);
        abort();
    }
    attn_tensor *back = NULL;
    if (svc_wire_decode(&w.in[0], 1, &back, &err) != 0) {
        fprintf(stderr, "response data does not decode: %s\n", err.msg);
        abort();
    }
    if (back->nbytes != t->nbytes || back->dtype != t->dtype) abort();
    for (size_t i = 0; i < t->numel; i++) {
        if (t->dtype == ATTN_F32) {
            float a = ((const float *)t->data)[i], b = ((const float *)back->data)[i];
            if (isnan(a) ? !isnan(b) : memcmp(&a, &b, sizeof a) != 0) {
                fprintf(stderr, "input '%s' element %zu: %a came back as %a\n", in->name, i, a, b);
                abort();
            }
        }
    }
    if (t->dtype != ATTN_F32 && t->nbytes && memcmp(back->data, t->data, t->nbytes) != 0) abort();
    attn_tensor_free(back);
    svc_wire_free(&w);
    free(body);
    svc_reply_clear(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!svc_cfg.max_rank) setup();
    if (size > (1 << 20)) return 0;
    char *body = malloc(size + 1); /* the server NUL-terminates every body */
    if (!body) return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    svc_err err = {0};
    svc_wire w;
    if (svc_wire_parse(body, size, -1, &w, &err) == 0) {
        for (size_t i = 0; i < w.n_in; i++) {
            attn_tensor *t = NULL;
            int allow_nf = (int)(size & 1);
            if (svc_wire_decode(&w.in[i], allow_nf, &t, &err) != 0) continue;
            if (t->numel != w.in[i].numel || t->dtype != w.in[i].dtype) abort();
            round_trip(&w.in[i], t);
            attn_tensor_free(t);
        }
        svc_wire_free(&w);
    } else if (!err.msg[0] || err.status < 400) {
        abort(); /* every refusal says why */
    }
    json_t *j = NULL;
    svc_json_parse(body, size, &j, &err);
    json_decref(j);
    free(body);
    return 0;
}
