/*
 * grpc_api.c — the RPCs of GRPCInferenceService (proto/grpc/grpc_service.proto):
 * the table the transport routes by, and every handler but inference's
 * (grpc_infer.c).  Each does what its REST endpoint does, from the same
 * functions (api.c's metadata documents, repo.c's index, load and unload),
 * and only the messages differ.
 *
 * Messages are unpacked by protobuf-c with a budgeted allocator
 * (svc_pb_unpack): a message may not take more than 4 times its bytes plus
 * 1 MiB of memory, so that a message of many tiny nested messages cannot
 * turn one body limit into gigabytes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "grpc.h"
#include "grpc_pb.h"
#include "repo.h"
#include "sched.h"

/* ---- messages ---- */

typedef struct pb_budget {
    ProtobufCAllocator a;
    size_t used, limit;
    int over;
} pb_budget;

static void *pb_alloc(void *data, size_t n) {
    pb_budget *b = data;
    if (n > b->limit - b->used || n > SIZE_MAX - 16) {
        b->over = 1;
        return NULL;
    }
    size_t *h = malloc(n + 16);
    if (!h) {
        b->over = 1;
        return NULL;
    }
    h[0] = n;
    b->used += n;
    return (char *)h + 16;
}

static void pb_free(void *data, void *p) {
    if (!p) return;
    pb_budget *b = data;
    size_t *h = (size_t *)((char *)p - 16);
    b->used -= h[0];
    free(h);
}

struct svc_pb_msg {
    pb_budget budget;
    ProtobufCMessage *m;
};

svc_pb_msg *svc_pb_unpack(const ProtobufCMessageDescriptor *d, const unsigned char *p, size_t n, void **msg,
                          svc_err *e) {
    svc_pb_msg *h = calloc(1, sizeof *h);
    if (!h) {
        svc_fail(e, 503, "out of memory");
        return NULL;
    }
    h->budget = (pb_budget){.a = {pb_alloc, pb_free, NULL}, .limit = (n > SIZE_MAX / 8 ? SIZE_MAX / 2 : 4 * n) + (1u << 20)};
    h->budget.a.allocator_data = &h->budget;
    h->m = protobuf_c_message_unpack(d, &h->budget.a, n, p);
    if (!h->m) {
        if (h->budget.over) svc_fail(e, 413, "the %s message would take more than %zu bytes of memory", d->short_name, h->budget.limit);
        else svc_fail(e, 400, "the request is not a valid %s message", d->short_name);
        free(h);
        return NULL;
    }
    *msg = h->m;
    return h;
}

void svc_pb_free(svc_pb_msg *h) {
    if (!h) return;
    protobuf_c_message_free_unpacked(h->m, &h->budget.a);
    free(h);
}

void svc_pb_reply(svc_reply *rep, const ProtobufCMessage *m) {
    svc_reply_clear(rep);
    size_t n = protobuf_c_message_get_packed_size(m);
    rep->body = malloc(n ? n : 1);
    if (!rep->body) {
        svc_reply_error(rep, 503, "out of memory");
        return;
    }
    rep->len = protobuf_c_message_pack(m, (uint8_t *)rep->body);
    rep->status = 200;
    rep->ctype = "application/grpc";
}

static void answer_msg(svc_gcall *c, const ProtobufCMessage *m) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_pb_reply(&rep, m);
    svc_gcall_reply(c, &rep);
}

static void answer_fail(svc_gcall *c, const svc_err *e) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_fail(&rep, e);
    svc_gcall_reply(c, &rep);
}

#define UNPACK(type, lower, var)                                                                   \
    svc_err e = {0};                                                                               \
    Inference__##type *var = NULL;                                                                 \
    svc_pb_msg *h_ = svc_pb_unpack(&inference__##lower##__descriptor, msg, len, (void **)&var, &e); \
    if (!h_) {                                                                                     \
        answer_fail(c, &e);                                                                        \
        return;                                                                                    \
    }

/* The model name and version of a request: 404 for a version but 1 (as
 * /v2/models/{m}/versions/2), `bad` for a name that is not one. */
int svc_grpc_model_arg(const char *name, const char *version, int bad, svc_err *e) {
    if (!svc_valid_model_name(name, strlen(name))) {
        return bad == 400 ? svc_fail(e, 400, "model names match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
                          : svc_fail(e, 404, "unknown model '%.64s'", name);
    }
    if (version && version[0] && strcmp(version, "1") != 0)
        return svc_fail(e, 404, "model '%s' has no version '%.32s' (only 1)", name, version);
    return 0;
}

/* ---- health ---- */

static void rpc_server_live(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ServerLiveRequest, server_live_request, req);
    Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    r.live = 1;
    answer_msg(c, &r.base);
    svc_pb_free(h_);
}

static void rpc_server_ready(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ServerReadyRequest, server_ready_request, req);
    Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
    r.ready = atomic_load(&svc_ready) && !atomic_load(&svc_draining);
    answer_msg(c, &r.base);
    svc_pb_free(h_);
}

static void rpc_model_ready(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ModelReadyRequest, model_ready_request, req);
    Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
    svc_gcall_set_model(c, req->name);
    if (svc_grpc_model_arg(req->name, req->version, 404, &e) == 0) {
        svc_model *m = svc_repo_get(req->name);
        r.ready = m && (m->m || m->builtin) && !atomic_load(&svc_draining);
        svc_model_unref(m);
        answer_msg(c, &r.base);
    } else if (e.status == 404 && strstr(e.msg, "version")) {
        answer_fail(c, &e);
    } else { /* REST answers 400 (false) for an unknown model */
        answer_msg(c, &r.base);
    }
    svc_pb_free(h_);
}

/* ---- metadata ---- */

static void rpc_server_metadata(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ServerMetadataRequest, server_metadata_request, req);
    json_t *o = svc_api_server_meta_json();
    json_t *ext = json_object_get(o, "extensions");
    Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    char *names[16];
    r.name = (char *)json_string_value(json_object_get(o, "name"));
    r.version = (char *)json_string_value(json_object_get(o, "version"));
    for (size_t i = 0; i < json_array_size(ext) && i < 16; i++) names[r.n_extensions++] = (char *)json_string_value(json_array_get(ext, i));
    r.extensions = names;
    if (!o || !r.name || !r.version) {
        svc_fail(&e, 503, "out of memory");
        answer_fail(c, &e);
    } else {
        answer_msg(c, &r.base);
    }
    json_decref(o);
    svc_pb_free(h_);
}

#define MAX_IO 64

static size_t tensor_meta(json_t *arr, Inference__ModelMetadataResponse__TensorMetadata *t,
                          Inference__ModelMetadataResponse__TensorMetadata **tp, int64_t (*shapes)[ATTN_MAX_RANK]) {
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < MAX_IO; i++, n++) {
        json_t *io = json_array_get(arr, i), *shape = json_object_get(io, "shape");
        inference__model_metadata_response__tensor_metadata__init(&t[n]);
        t[n].name = (char *)json_string_value(json_object_get(io, "name"));
        t[n].datatype = (char *)json_string_value(json_object_get(io, "datatype"));
        for (size_t d = 0; d < json_array_size(shape) && d < ATTN_MAX_RANK; d++)
            shapes[n][t[n].n_shape++] = json_integer_value(json_array_get(shape, d));
        t[n].shape = shapes[n];
        tp[n] = &t[n];
    }
    return n;
}

static void rpc_model_metadata(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ModelMetadataRequest, model_metadata_request, req);
    svc_gcall_set_model(c, req->name);
    json_t *o = NULL;
    if (svc_grpc_model_arg(req->name, req->version, 404, &e) != 0 || !(o = svc_api_model_meta_json(req->name, &e))) {
        answer_fail(c, &e);
        svc_pb_free(h_);
        return;
    }
    static Inference__ModelMetadataResponse__TensorMetadata ti[MAX_IO], to[MAX_IO]; /* gRPC thread only */
    Inference__ModelMetadataResponse__TensorMetadata *tip[MAX_IO], *top[MAX_IO];
    static int64_t si[MAX_IO][ATTN_MAX_RANK], so[MAX_IO][ATTN_MAX_RANK];
    Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    char *versions[1] = {"1"};
    r.name = (char *)json_string_value(json_object_get(o, "name"));
    r.platform = (char *)json_string_value(json_object_get(o, "platform"));
    r.versions = versions;
    r.n_versions = 1;
    r.n_inputs = tensor_meta(json_object_get(o, "inputs"), ti, tip, si);
    r.inputs = tip;
    r.n_outputs = tensor_meta(json_object_get(o, "outputs"), to, top, so);
    r.outputs = top;
    answer_msg(c, &r.base);
    json_decref(o);
    svc_pb_free(h_);
}

/* ModelConfig: Triton's model configuration from the same metadata (a
 * model takes no batching of its own: max_batch_size 0, dims as in the
 * metadata, -1 where any size goes). */
static Inference__DataType data_type(const char *dt) {
    static const struct {
        const char *name;
        Inference__DataType t;
    } map[] = {{"BOOL", INFERENCE__DATA_TYPE__TYPE_BOOL},   {"UINT8", INFERENCE__DATA_TYPE__TYPE_UINT8},
               {"UINT16", INFERENCE__DATA_TYPE__TYPE_UINT16}, {"UINT32", INFERENCE__DATA_TYPE__TYPE_UINT32},
               {"UINT64", INFERENCE__DATA_TYPE__TYPE_UINT64}, {"INT8", INFERENCE__DATA_TYPE__TYPE_INT8},
               {"INT16", INFERENCE__DATA_TYPE__TYPE_INT16},   {"INT32", INFERENCE__DATA_TYPE__TYPE_INT32},
               {"INT64", INFERENCE__DATA_TYPE__TYPE_INT64},   {"FP16", INFERENCE__DATA_TYPE__TYPE_FP16},
               {"FP32", INFERENCE__DATA_TYPE__TYPE_FP32},     {"FP64", INFERENCE__DATA_TYPE__TYPE_FP64},
               {"BYTES", INFERENCE__DATA_TYPE__TYPE_STRING},  {"BF16", INFERENCE__DATA_TYPE__TYPE_BF16}};
    for (size_t i = 0; dt && i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].name, dt) == 0) return map[i].t;
    return INFERENCE__DATA_TYPE__TYPE_INVALID;
}

static void rpc_model_config(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(ModelConfigRequest, model_config_request, req);
    svc_gcall_set_model(c, req->name);
    json_t *o = NULL;
    if (svc_grpc_model_arg(req->name, req->version, 404, &e) != 0 || !(o = svc_api_model_meta_json(req->name, &e))) {
        answer_fail(c, &e);
        svc_pb_free(h_);
        return;
    }
    static Inference__ModelInput in[MAX_IO]; /* gRPC thread only */
    static Inference__ModelOutput out[MAX_IO];
    static int64_t si[MAX_IO][ATTN_MAX_RANK], so[MAX_IO][ATTN_MAX_RANK];
    Inference__ModelInput *inp[MAX_IO];
    Inference__ModelOutput *outp[MAX_IO];
    Inference__ModelConfig cfg = INFERENCE__MODEL_CONFIG__INIT;
    Inference__ModelConfigResponse r = INFERENCE__MODEL_CONFIG_RESPONSE__INIT;
    cfg.name = (char *)json_string_value(json_object_get(o, "name"));
    cfg.platform = (char *)json_string_value(json_object_get(o, "platform"));
    cfg.backend = "attnd";
    json_t *ins = json_object_get(o, "inputs"), *outs = json_object_get(o, "outputs");
    for (size_t i = 0; i < json_array_size(ins) && cfg.n_input < MAX_IO; i++) {
        json_t *io = json_array_get(ins, i), *shape = json_object_get(io, "shape");
        Inference__ModelInput *t = &in[cfg.n_input];
        inference__model_input__init(t);
        t->name = (char *)json_string_value(json_object_get(io, "name"));
        t->data_type = data_type(json_string_value(json_object_get(io, "datatype")));
        for (size_t d = 0; d < json_array_size(shape) && d < ATTN_MAX_RANK; d++)
            si[cfg.n_input][t->n_dims++] = json_integer_value(json_array_get(shape, d));
        t->dims = si[cfg.n_input];
        t->optional = json_is_true(json_object_get(io, "optional"));
        inp[cfg.n_input++] = t;
    }
    for (size_t i = 0; i < json_array_size(outs) && cfg.n_output < MAX_IO; i++) {
        json_t *io = json_array_get(outs, i), *shape = json_object_get(io, "shape");
        Inference__ModelOutput *t = &out[cfg.n_output];
        inference__model_output__init(t);
        t->name = (char *)json_string_value(json_object_get(io, "name"));
        t->data_type = data_type(json_string_value(json_object_get(io, "datatype")));
        for (size_t d = 0; d < json_array_size(shape) && d < ATTN_MAX_RANK; d++)
            so[cfg.n_output][t->n_dims++] = json_integer_value(json_array_get(shape, d));
        t->dims = so[cfg.n_output];
        outp[cfg.n_output++] = t;
    }
    cfg.input = inp;
    cfg.output = outp;
    r.config = &cfg;
    answer_msg(c, &r.base);
    json_decref(o);
    svc_pb_free(h_);
}

/* ---- the repository ---- */

static void rpc_repo_index(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(RepositoryIndexRequest, repository_index_request, req);
    json_t *idx = svc_repo_index(req->ready);
    size_t n = json_array_size(idx);
    Inference__RepositoryIndexResponse r = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
    Inference__RepositoryIndexResponse__ModelIndex *mi = calloc(n ? n : 1, sizeof *mi);
    Inference__RepositoryIndexResponse__ModelIndex **mp = calloc(n ? n : 1, sizeof *mp);
    if (!idx || !mi || !mp) {
        svc_fail(&e, 503, "out of memory");
        answer_fail(c, &e);
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(idx, i);
            inference__repository_index_response__model_index__init(&mi[i]);
            const char *s;
#define FIELD(f) mi[i].f = (char *)((s = json_string_value(json_object_get(m, #f))) ? s : "")
            FIELD(name);
            FIELD(version);
            FIELD(state);
            FIELD(reason);
#undef FIELD
            mp[i] = &mi[i];
        }
        r.n_models = n;
        r.models = mp;
        answer_msg(c, &r.base);
    }
    free(mi);
    free(mp);
    json_decref(idx);
    svc_pb_free(h_);
}

static int is_weights_key(const char *k) {
    return strcmp(k, "file:weights.safetensors") == 0 || strcmp(k, "file:1/weights.safetensors") == 0;
}

static void keep_pb(void *p) { svc_pb_free(p); }

static void rpc_repo_load(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(RepositoryModelLoadRequest, repository_model_load_request, req);
    svc_gcall_set_model(c, req->model_name);
    char *config = NULL;
    const ProtobufCBinaryData *weights = NULL;
    if (svc_grpc_model_arg(req->model_name, NULL, 400, &e) || svc_repo_control_check(&e)) goto fail;
    for (size_t i = 0; i < req->n_parameters; i++) {
        const char *k = req->parameters[i]->key;
        Inference__ModelRepositoryParameter *v = req->parameters[i]->value;
        int kind = v ? (int)v->parameter_choice_case : 0;
        if (strcmp(k, "config") == 0) {
            if (kind != INFERENCE__MODEL_REPOSITORY_PARAMETER__PARAMETER_CHOICE_STRING_PARAM || config) {
                svc_fail(&e, 400, "parameters.config must be config.json's text (string_param), once");
                goto fail;
            }
            if (!(config = strdup(v->string_param))) {
                svc_fail(&e, 503, "out of memory");
                goto fail;
            }
        } else if (is_weights_key(k)) {
            if (kind != INFERENCE__MODEL_REPOSITORY_PARAMETER__PARAMETER_CHOICE_BYTES_PARAM || weights) {
                svc_fail(&e, 400, "parameters[\"%s\"] must be the safetensors file's bytes (bytes_param), once", k);
                goto fail;
            }
            weights = &v->bytes_param;
        } else if (strncmp(k, "file:", 5) == 0) {
            svc_fail(&e, 400, "unsupported file '%.64s' (only weights.safetensors)", k + 5);
            goto fail;
        } else {
            svc_fail(&e, 400, "parameter '%.64s' is not known (config, file:weights.safetensors)", k);
            goto fail;
        }
    }
    if (weights && !config) {
        svc_fail(&e, 400, "weights need parameters.config (config.json) with them");
        goto fail;
    }
    svc_job *j = svc_api_load_job(req->model_name, config, weights ? weights->data : NULL, weights ? weights->len : 0,
                                  h_, keep_pb);
    config = NULL;
    if (!j) {
        svc_fail(&e, 503, "out of memory");
        answer_fail(c, &e);
        return; /* h_ is freed */
    }
    if (svc_gcall_submit(c, j, &e) == 0) return; /* the load's reply is empty: see grpc_load_reply */
    answer_fail(c, &e);
    j->finish(j, e.status);
    return;
fail:
    free(config);
    answer_fail(c, &e);
    svc_pb_free(h_);
}

static void rpc_repo_unload(svc_gcall *c, const unsigned char *msg, size_t len) {
    UNPACK(RepositoryModelUnloadRequest, repository_model_unload_request, req);
    svc_gcall_set_model(c, req->model_name);
    if (svc_grpc_model_arg(req->model_name, NULL, 400, &e) || svc_repo_control_check(&e) ||
        svc_repo_unload(req->model_name, &e)) {
        answer_fail(c, &e);
    } else {
        Inference__RepositoryModelUnloadResponse r = INFERENCE__REPOSITORY_MODEL_UNLOAD_RESPONSE__INIT;
        answer_msg(c, &r.base);
    }
    svc_pb_free(h_);
}

/* The one list of the RPCs attnd serves (docs/server.md, proto/README.md). */
static const svc_grpc_rpc rpcs[] = {
    /* name                     handler              auth            streaming */
    {"ServerLive",            rpc_server_live,     SVC_AUTH_NONE,  0},
    {"ServerReady",           rpc_server_ready,    SVC_AUTH_NONE,  0},
    {"ModelReady",            rpc_model_ready,     SVC_AUTH_NONE,  0},
    {"ServerMetadata",        rpc_server_metadata, SVC_AUTH_API,   0},
    {"ModelMetadata",         rpc_model_metadata,  SVC_AUTH_API,   0},
    {"ModelConfig",           rpc_model_config,    SVC_AUTH_API,   0},
    {"ModelInfer",            svc_grpc_infer,      SVC_AUTH_API,   0},
    {"ModelStreamInfer",      svc_grpc_infer,      SVC_AUTH_API,   1},
    {"RepositoryIndex",       rpc_repo_index,      SVC_AUTH_ADMIN, 0},
    {"RepositoryModelLoad",   rpc_repo_load,       SVC_AUTH_ADMIN, 0},
    {"RepositoryModelUnload", rpc_repo_unload,     SVC_AUTH_ADMIN, 0},
};

const svc_grpc_rpc *svc_grpc_rpcs(size_t *n) {
    *n = sizeof rpcs / sizeof *rpcs;
    return rpcs;
}
