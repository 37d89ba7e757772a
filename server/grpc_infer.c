/*
 * grpc_infer.c — ModelInfer, and each message of ModelStreamInfer: the gRPC
 * codec on the shared inference path (infer.h).
 *
 * Decoding turns a ModelInferRequest into the protocol's request document
 * (the one REST's JSON body is: id, parameters, inputs with their name,
 * datatype and shape, outputs with their parameters) and hands it to
 * svc_wire_from_json, so that both front-ends take every check, limit and
 * error message from one place.  Each input's data is then bound: its entry
 * of raw_input_contents (little-endian bytes, as the binary extension's),
 * or its typed contents (fp32_contents, int_contents, int64_contents,
 * bool_contents) read in place as the same bytes.  FP16 and BF16 travel
 * only as raw contents, as the protocol says.
 *
 * The reply is a ModelInferResponse: every output in raw_output_contents
 * (the default), or in typed contents when the request's parameter
 * binary_data_output is false (FP16 / BF16 outputs always raw, and then
 * every output is).  raw_output_contents is the message's last field, so
 * the last output's bytes are sent from the tensor itself (reply->tail)
 * after the packed rest: no copy of the largest part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_pb.h"
#include "infer.h"
#include "kernels/half.h"
#include "metrics.h"

typedef struct grpc_req {
    svc_gcall *c;
    svc_pb_msg *h;
    Inference__ModelInferRequest *req;
    unsigned char **owned;      /* converted typed contents (BOOL) */
    size_t n_owned;
} grpc_req;

static void grpc_req_free(void *p) {
    grpc_req *g = p;
    if (!g) return;
    svc_pb_free(g->h);
    for (size_t i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    free(g);
}

/* An InferParameter as the JSON value REST would carry. */
static json_t *param_json(const Inference__InferParameter *p, const char *key, svc_err *e) {
    switch (p ? p->parameter_choice_case : 0) {
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM: return json_boolean(p->bool_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM: return json_integer(p->int64_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM: return json_string(p->string_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM: return json_real(p->double_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM:
        if (p->uint64_param > INT64_MAX) break;
        return json_integer((json_int_t)p->uint64_param);
    default: break;
    }
    svc_fail(e, 400, "parameter '%.64s' has no value (or a uint64 beyond int64)", key);
    return NULL;
}

typedef Inference__ModelInferRequest__ParametersEntry entry_t;

/* A parameter map as a JSON object (NULL and no error when empty). */
static int params_json(void *const *entries, size_t n, json_t **out, svc_err *e) {
    *out = NULL;
    if (!n) return 0;
    json_t *o = json_object();
    if (!o) return svc_fail(e, 503, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const entry_t *en = entries[i]; /* every map entry has key, value first */
        json_t *v = param_json(en->value, en->key, e);
        if (!v) {
            json_decref(o);
            return e->status;
        }
        if (json_object_get(o, en->key)) {
            json_decref(v);
            json_decref(o);
            return svc_fail(e, 400, "parameter '%.64s' is given twice", en->key);
        }
        json_object_set_new(o, en->key, v);
    }
    *out = o;
    return 0;
}

/* The bytes of typed contents that match the datatype, and how many
 * values they hold; 400 for contents of another type. */
static int typed_bytes(grpc_req *g, const Inference__ModelInferRequest__InferInputTensor *t,
                       const svc_wire_input *in, const unsigned char **p, size_t *count, svc_err *e) {
    const Inference__InferTensorContents *c = t->contents;
    size_t n[8] = {c->n_bool_contents, c->n_int_contents, c->n_int64_contents, c->n_uint_contents,
                   c->n_uint64_contents, c->n_fp32_contents, c->n_fp64_contents, c->n_bytes_contents};
    static const char *const field[8] = {"bool_contents", "int_contents", "int64_contents", "uint_contents",
                                         "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"};
    int want;
    if (in->half) return svc_fail(e, 400, "input '%s': %s data travels in raw_input_contents (it has no typed contents)",
                                  in->name, in->datatype);
    switch (in->dtype) {
    case ATTN_F32: want = 5; break;
    case ATTN_I32: want = 1; break;
    case ATTN_I64: want = 2; break;
    case ATTN_BOOL: want = 0; break;
    default: return svc_fail(e, 400, "input '%s': datatype %s has no typed contents", in->name, in->datatype);
    }
    for (int k = 0; k < 8; k++)
        if (k != want && n[k])
            return svc_fail(e, 400, "input '%s': contents.%s given for datatype %s (use %s)", in->name, field[k],
                            in->datatype, field[want]);
    *count = n[want];
    if (want == 5) *p = (const unsigned char *)c->fp32_contents;
    else if (want == 1) *p = (const unsigned char *)c->int_contents;
    else if (want == 2) *p = (const unsigned char *)c->int64_contents;
    else { /* protobuf-c's booleans are ints: one byte each on the wire */
        unsigned char *b = malloc(n[0] ? n[0] : 1), **o = realloc(g->owned, (g->n_owned + 1) * sizeof *o);
        if (!b || !o) {
            free(b);
            if (o) g->owned = o;
            return svc_fail(e, 503, "out of memory");
        }
        g->owned = o;
        g->owned[g->n_owned++] = b;
        for (size_t i = 0; i < n[0]; i++) b[i] = c->bool_contents[i] ? 1 : 0;
        *p = b;
    }
    return 0;
}

static int grpc_decode(void *conn, svc_wire *w, svc_err *e) {
    grpc_req *g = conn;
    const Inference__ModelInferRequest *r = g->req;
    json_t *root = json_object(), *inputs = json_array(), *outputs = NULL, *params = NULL;
    if (!root || !inputs) {
        json_decref(root);
        json_decref(inputs);
        return svc_fail(e, 503, "out of memory");
    }
    json_object_set_new(root, "inputs", inputs);
    if (r->id[0]) json_object_set_new(root, "id", json_string(r->id));
    if (params_json((void *const *)r->parameters, r->n_parameters, &params, e)) goto bad;
    int explicit_binary = params && json_object_get(params, "binary_data_output");
    if (params) json_object_set_new(root, "parameters", params);
    if (r->n_raw_input_contents && r->n_raw_input_contents != r->n_inputs) {
        svc_fail(e, 400, "raw_input_contents has %zu entries for %zu inputs (one per input, in order)",
                 r->n_raw_input_contents, r->n_inputs);
        goto bad;
    }
    for (size_t i = 0; i < r->n_inputs; i++) {
        const Inference__ModelInferRequest__InferInputTensor *t = r->inputs[i];
        json_t *in = json_object(), *shape = json_array(), *ip = NULL;
        if (!in || !shape) {
            json_decref(in);
            json_decref(shape);
            svc_fail(e, 503, "out of memory");
            goto bad;
        }
        json_array_append_new(inputs, in);
        json_object_set_new(in, "name", json_string(t->name));
        json_object_set_new(in, "datatype", json_string(t->datatype));
        for (size_t d = 0; d < t->n_shape; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(in, "shape", shape);
        if (params_json((void *const *)t->parameters, t->n_parameters, &ip, e)) goto bad;
        if (!ip && !(ip = json_object())) {
            svc_fail(e, 503, "out of memory");
            goto bad;
        }
        json_object_set_new(in, "parameters", ip);
        json_object_set_new(ip, "binary_data_size", json_integer(0)); /* the bytes are bound below */
    }
    if (r->n_outputs) {
        outputs = json_array();
        json_object_set_new(root, "outputs", outputs);
        for (size_t i = 0; outputs && i < r->n_outputs; i++) {
            json_t *o = json_object(), *op = NULL;
            json_array_append_new(outputs, o);
            json_object_set_new(o, "name", json_string(r->outputs[i]->name));
            if (params_json((void *const *)r->outputs[i]->parameters, r->outputs[i]->n_parameters, &op, e)) goto bad;
            if (op) json_object_set_new(o, "parameters", op);
        }
    }
    if (svc_wire_from_json(root, w, e) != 0) return e->status; /* took root */
    /* gRPC's fast path is raw contents: the default unless the request says otherwise. */
    if (!explicit_binary) w->binary_output = 1;
    for (size_t i = 0; i < w->n_in; i++) {
        svc_wire_input *in = &w->in[i];
        const Inference__ModelInferRequest__InferInputTensor *t = r->inputs[i];
        const unsigned char *p = NULL;
        size_t bytes, count = 0, esz = svc_wire_elem_size(in);
        if (r->n_raw_input_contents) {
            if (t->contents) {
                svc_fail(e, 400, "input '%s': give raw_input_contents or contents, not both", in->name);
                goto bad_wire;
            }
            p = r->raw_input_contents[i].data;
            bytes = r->raw_input_contents[i].len;
            if (bytes != in->numel * esz) { /* numel is bounded by max_elements: no overflow */
                svc_fail(e, 400, "input '%s': raw_input_contents holds %zu bytes, but %s of %zu elements takes %zu",
                         in->name, bytes, in->datatype, in->numel, in->numel * esz);
                goto bad_wire;
            }
        } else {
            if (!t->contents) {
                svc_fail(e, 400, "input '%s': no data (contents or raw_input_contents)", in->name);
                goto bad_wire;
            }
            if (typed_bytes(g, t, in, &p, &count, e)) goto bad_wire;
            if (count != in->numel) {
                svc_fail(e, 400, "input '%s': contents hold %zu values for a shape of %zu elements", in->name, count,
                         in->numel);
                goto bad_wire;
            }
            bytes = in->numel * esz;
        }
        in->bin = p ? p : (const unsigned char *)"";
        in->bin_len = bytes;
    }
    return 0;
bad:
    json_decref(root);
    return e->status;
bad_wire:
    svc_wire_free(w);
    return e->status;
}

/* ---- the reply ---- */

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* The response parameters (sequence_id, sequence_length, sequence_end) from
 * the JSON object the shared path makes. */
static size_t reply_params(const char *text, json_t **holder, Inference__ModelInferResponse__ParametersEntry *ent,
                           Inference__InferParameter *val, Inference__ModelInferResponse__ParametersEntry **ep,
                           size_t cap) {
    *holder = text ? json_loads(text, 0, NULL) : NULL;
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(*holder, k, v) {
        if (n == cap) break;
        inference__model_infer_response__parameters_entry__init(&ent[n]);
        inference__infer_parameter__init(&val[n]);
        ent[n].key = (char *)k;
        ent[n].value = &val[n];
        if (json_is_boolean(v)) {
            val[n].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM;
            val[n].bool_param = json_is_true(v);
        } else if (json_is_integer(v)) {
            val[n].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
            val[n].int64_param = json_integer_value(v);
        } else if (json_is_string(v)) {
            val[n].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
            val[n].string_param = (char *)json_string_value(v);
        } else {
            continue;
        }
        ep[n] = &ent[n];
        n++;
    }
    return n;
}

#define MAX_OUT 64

void svc_grpc_encode(const svc_wire_result *res, svc_wire_out *outs, size_t n, svc_reply *reply) {
    svc_reply_clear(reply);
    if (n > MAX_OUT) n = MAX_OUT; /* the shared path asks for at most 4 * 16 */
    int raw = 0;
    for (size_t i = 0; i < n; i++) {
        if (outs[i].t->dtype != ATTN_F32) outs[i].half = SVC_HALF_NONE;
        raw |= outs[i].binary || outs[i].half;
    }
    Inference__ModelInferResponse r = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse__InferOutputTensor ot[MAX_OUT], *otp[MAX_OUT];
    Inference__InferTensorContents tc[MAX_OUT];
    Inference__ModelInferResponse__ParametersEntry pe[4], *pep[4];
    Inference__InferParameter pv[4];
    json_t *pj = NULL;
    unsigned char *bools[MAX_OUT] = {0};
    r.model_name = (char *)res->model_name;
    r.model_version = (char *)res->model_version;
    if (res->id) r.id = (char *)res->id;
    r.n_parameters = reply_params(res->params_json, &pj, pe, pv, pep, 4);
    r.parameters = pep;
    for (size_t i = 0; i < n; i++) {
        attn_tensor *t = outs[i].t;
        inference__model_infer_response__infer_output_tensor__init(&ot[i]);
        ot[i].name = (char *)outs[i].name;
        ot[i].datatype = (char *)(outs[i].half ? svc_half_name(outs[i].half) : svc_datatype_name(t->dtype));
        ot[i].n_shape = (size_t)t->rank;
        ot[i].shape = t->shape;
        if (!raw) {
            inference__infer_tensor_contents__init(&tc[i]);
            switch (t->dtype) {
            case ATTN_F32: tc[i].n_fp32_contents = t->numel, tc[i].fp32_contents = t->data; break;
            case ATTN_I32: tc[i].n_int_contents = t->numel, tc[i].int_contents = t->data; break;
            case ATTN_I64: tc[i].n_int64_contents = t->numel, tc[i].int64_contents = t->data; break;
            case ATTN_BOOL: /* protobuf-c's booleans are ints */
                if (!(bools[i] = malloc(t->numel * sizeof(protobuf_c_boolean) + 1))) goto oom;
                for (size_t k = 0; k < t->numel; k++) ((protobuf_c_boolean *)(void *)bools[i])[k] = ((uint8_t *)t->data)[k];
                tc[i].n_bool_contents = t->numel;
                tc[i].bool_contents = (protobuf_c_boolean *)(void *)bools[i];
                break;
            }
            ot[i].contents = &tc[i];
        }
        otp[i] = &ot[i];
    }
    r.n_outputs = n;
    r.outputs = otp;
    /* Packed: fields 1-5, then raw_output_contents (6) by hand, the last
     * FP32/int one from its tensor. */
    size_t head = protobuf_c_message_get_packed_size(&r.base), extra = 0;
    size_t tail = n;
    if (raw) {
        for (size_t i = 0; i < n; i++) {
            size_t b = outs[i].half ? outs[i].t->numel * 2 : outs[i].t->nbytes;
            extra += 11 + b;
            if (!outs[i].half) tail = i;
        }
        if (tail + 1 != n) tail = n; /* only the message's very end can be the tail */
    }
    char *body = malloc(head + extra + 1);
    if (!body) goto oom;
    size_t len = protobuf_c_message_pack(&r.base, (uint8_t *)body);
    for (size_t i = 0; raw && i < n; i++) {
        attn_tensor *t = outs[i].t;
        size_t b = outs[i].half ? t->numel * 2 : t->nbytes;
        body[len++] = 0x32;
        len += put_varint((unsigned char *)body + len, b);
        if (i == tail) break;
        if (!outs[i].half) {
            memcpy(body + len, t->data, b);
        } else {
            uint16_t tmp[1024];
            for (size_t k = 0; k < t->numel; k += 1024) {
                size_t m = t->numel - k < 1024 ? t->numel - k : 1024;
                if (outs[i].half == SVC_HALF_F16) attn__f32_to_f16((const float *)t->data + k, tmp, m);
                else attn__f32_to_bf16((const float *)t->data + k, tmp, m);
                memcpy(body + len + 2 * k, tmp, 2 * m);
            }
        }
        len += b;
    }
    reply->body = body;
    reply->len = len;
    reply->status = 200;
    reply->ctype = "application/grpc";
    if (tail < n) {
        reply->tail = outs[tail].t;
        outs[tail].t = NULL;
    }
    goto out;
oom:
    svc_reply_error(reply, 503, "out of memory encoding the response");
out:
    for (size_t i = 0; i < n; i++) {
        attn_tensor_free(outs[i].t);
        outs[i].t = NULL;
        free(bools[i]);
    }
    json_decref(pj);
}

int svc_grpc_decode(const unsigned char *msg, size_t len, svc_wire *w, void **keep, svc_err *e) {
    *keep = NULL;
    memset(w, 0, sizeof *w);
    grpc_req *g = calloc(1, sizeof *g);
    if (!g) return svc_fail(e, 503, "out of memory");
    if (!(g->h = svc_pb_unpack(&inference__model_infer_request__descriptor, msg, len, (void **)&g->req, e)) ||
        grpc_decode(g, w, e) != 0) {
        grpc_req_free(g);
        return e->status;
    }
    *keep = g;
    return 0;
}

void svc_grpc_keep_free(void *keep) { grpc_req_free(keep); }

/* ---- the call ---- */

/* The front-end's side of one call: the message, and whether a job took it. */
typedef struct grpc_ctx {
    grpc_req *g;
    svc_gcall *c;  /* g->c, for after g went with the job */
    int taken;
} grpc_ctx;

static int grpc_decode_ctx(void *conn, svc_wire *w, svc_err *e) { return grpc_decode(((grpc_ctx *)conn)->g, w, e); }

static int grpc_submit(void *conn, struct svc_job *j, svc_err *e) {
    return svc_gcall_submit(((grpc_ctx *)conn)->g->c, j, e);
}

/* A short request computed on this thread (svc_infer's inline path). */
static void grpc_reply(void *conn, svc_reply *rep) { svc_gcall_reply(((grpc_ctx *)conn)->c, rep); }

static void *grpc_take(void *conn, void (**free_fn)(void *)) {
    grpc_ctx *x = conn;
    *free_fn = grpc_req_free;
    x->taken = 1; /* the job's from now on (freed with it, on success or failure) */
    return x->g;
}

void svc_grpc_infer(svc_gcall *c, const unsigned char *msg, size_t len) {
    svc_err e = {0};
    grpc_req *g = calloc(1, sizeof *g);
    svc_reply rep;
    svc_reply_init(&rep);
    if (!g) {
        svc_fail(&e, 503, "out of memory");
        goto fail;
    }
    g->c = c;
    if (!(g->h = svc_pb_unpack(&inference__model_infer_request__descriptor, msg, len, (void **)&g->req, &e))) goto fail;
    svc_gcall_set_model(c, g->req->model_name);
    if (svc_grpc_model_arg(g->req->model_name, g->req->model_version, 404, &e)) goto fail;
    grpc_ctx x = {g, c, 0};
    svc_infer_front f = {.conn = &x, .decode = grpc_decode_ctx, .encode = svc_grpc_encode, .submit = grpc_submit,
                         .take_body = grpc_take, .seq_header = svc_gcall_metadata(c, "sequence-id"),
                         .deadline_us = svc_gcall_deadline_us(c), .reply = grpc_reply,
                         .protocol = SVC_PROTO_GRPC};
    char name[SVC_MODEL_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", g->req->model_name);
    int st = svc_infer(name, &f, &e);
    if (x.taken) g = NULL; /* the job's (and maybe already freed) */
    if (st == 0) {
        grpc_req_free(g);
        return;
    }
fail:
    grpc_req_free(g);
    svc_reply_fail(&rep, &e);
    svc_gcall_reply(c, &rep);
}
