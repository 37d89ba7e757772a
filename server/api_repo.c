/*
 * api_repo.c — the model repository extension.
 *
 * POST /v2/repository/index            body optional: {"ready": true}
 * POST /v2/repository/models/{m}/load  body optional:
 *   {"parameters": {"config": "<config.json text>",
 *                   "file:weights.safetensors": "<base64>"}}   (Triton's load_model)
 *   or, with Inference-Header-Content-Length, that JSON header (config
 *   only) followed by the raw safetensors bytes.
 *   No body: (re)load the folder from the repository.
 * POST /v2/repository/models/{m}/unload
 *
 * A load runs on the pool (base64 decoding, validation and the atomic write
 * can take a while) without a deadline: cutting a load off half way would
 * leave the caller not knowing which version serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json_scan.h"
#include "repo.h"
#include "sched.h"

typedef struct load_job {
    svc_job base;
    char name[SVC_MODEL_NAME_MAX + 1];
    void *body;                 /* the request body's block, owned (config and weights point into it) */
    char *config;               /* owned copy, or NULL: load from the folder */
    size_t config_len;
    const char *b64;            /* base64 weights inside body's JSON (jansson-owned copy) */
    size_t b64_len;
    json_t *root;               /* keeps b64 alive */
    const unsigned char *raw;   /* raw weights after the JSON header */
    size_t raw_len;
    void *keep;                 /* another front-end's message that raw points into */
    void (*keep_free)(void *);
} load_job;

/* The base64 alphabet's values; -1 elsewhere.  Constant: decoding threads
 * share it without any initialisation. */
#define B64_NONE_16 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
static const signed char b64_map[256] = {
    B64_NONE_16, B64_NONE_16,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,          /* '+' '/' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,          /* '0'-'9' */
    -1, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,          /* 'A'-'O' */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,          /* 'P'-'Z' */
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,          /* 'a'-'o' */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,          /* 'p'-'z' */
    B64_NONE_16, B64_NONE_16, B64_NONE_16, B64_NONE_16,
    B64_NONE_16, B64_NONE_16, B64_NONE_16, B64_NONE_16,
};

/* Strict base64 (standard alphabet, '=' padding).  Returns the byte count,
 * or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out) {
    const signed char *map = b64_map;
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 2] == '=') + (s[i + 3] == '=');
        if (pad && i + 4 != n) return -1;
        if (s[i + 3] != '=' && s[i + 2] == '=') return -1;
        int v[4];
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = map[(unsigned char)s[i + k]]) < 0) return -1;
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12;
        if (pad < 2) x |= (unsigned)v[2] << 6;
        if (pad < 1) x |= (unsigned)v[3];
        out[o++] = (unsigned char)(x >> 16);
        if (pad < 2) out[o++] = (unsigned char)(x >> 8);
        if (pad < 1) out[o++] = (unsigned char)x;
    }
    return (long)o;
}

static void load_run(svc_job *base, attn_ctx *ctx) {
    (void)ctx;
    load_job *j = (load_job *)base;
    svc_err e;
    const void *weights = j->raw;
    size_t wlen = j->raw_len;
    unsigned char *decoded = NULL;
    if (j->b64) {
        decoded = malloc(j->b64_len / 4 * 3 + 1);
        long n = decoded ? b64_decode(j->b64, j->b64_len, decoded) : -2;
        if (n < 0) {
            free(decoded);
            if (n == -2) svc_reply_error(&j->base.reply, 503, "out of memory");
            else svc_reply_error(&j->base.reply, 400, "file:weights.safetensors is not valid base64");
            return;
        }
        weights = decoded;
        wlen = (size_t)n;
    }
    int st = svc_repo_load(j->name, j->config, j->config_len, weights, wlen, &e);
    free(decoded);
    if (st == 0) svc_reply_empty(&j->base.reply, 200);
    else svc_reply_error(&j->base.reply, st, "load of '%s' failed, the previous version (if any) keeps serving: %s", j->name, e.msg);
}

/* The load's own log line says how it went (svc_repo_load); the status
 * the client got adds nothing to it. */
static void load_finish(svc_job *base, int status) {
    (void)status;
    load_job *j = (load_job *)base;
    svc_reply_clear(&j->base.reply);
    json_decref(j->root);
    free(j->config);
    free(j->body);
    if (j->keep_free) j->keep_free(j->keep);
    free(j);
}

svc_job *svc_api_load_job(const char *name, char *config, const void *weights, size_t weights_len, void *keep,
                          void (*keep_free)(void *)) {
    load_job *j = calloc(1, sizeof *j);
    if (!j) {
        free(config);
        if (keep_free) keep_free(keep);
        return NULL;
    }
    snprintf(j->name, sizeof j->name, "%s", name);
    j->config = config;
    j->config_len = config ? strlen(config) : 0;
    j->raw = weights;
    j->raw_len = weights_len;
    j->keep = keep;
    j->keep_free = keep_free;
    j->base.run = load_run;
    j->base.finish = load_finish;
    svc_reply_init(&j->base.reply);
    return &j->base;
}

static int is_weights_key(const char *k) {
    return strcmp(k, "file:weights.safetensors") == 0 || strcmp(k, "file:1/weights.safetensors") == 0;
}

/* Fills the job from the request.  0, or the status in *e. */
static int parse_load(svc_req *r, load_job *j, svc_err *e) {
    size_t len;
    const char *body = svc_req_body(r, &len);
    const char *h = svc_req_header(r, "Inference-Header-Content-Length");
    size_t json_len = len;
    if (h) {
        char *end;
        unsigned long long n = strtoull(h, &end, 10);
        if (*end || end == h || n > len) {
            return svc_fail(e, 400, "Inference-Header-Content-Length must be a byte count within the body");
        }
        json_len = (size_t)n;
        j->raw = (const unsigned char *)body + json_len;
        j->raw_len = len - json_len;
    }
    if (json_len == 0) {
        if (j->raw_len) {
            return svc_fail(e, 400, "raw weights need a JSON header with parameters.config");
        }
        return 0; /* reload from the folder */
    }
    if (svc_json_parse(body, json_len, &j->root, e) != 0) return e->status;
    const char *k;
    json_t *v;
    json_object_foreach(j->root, k, v) {
        if (strcmp(k, "parameters") != 0) {
            return svc_fail(e, 400, "the load request: unknown field '%.64s' (only parameters)", k);
        }
    }
    json_t *params = json_object_get(j->root, "parameters");
    if (!params) {
        if (j->raw_len) {
            return svc_fail(e, 400, "raw weights need parameters.config");
        }
        return 0;
    }
    if (!json_is_object(params)) {
        return svc_fail(e, 400, "parameters must be an object");
    }
    json_object_foreach(params, k, v) {
        if (strcmp(k, "config") == 0) {
            if (json_is_string(v)) {
                j->config = strdup(json_string_value(v));
            } else if (json_is_object(v)) {
                j->config = json_dumps(v, JSON_COMPACT);
            } else {
                return svc_fail(e, 400, "parameters.config must be config.json's text (or its object)");
            }
            if (!j->config) {
                return svc_fail(e, 503, "out of memory");
            }
            j->config_len = strlen(j->config);
        } else if (is_weights_key(k)) {
            if (!json_is_string(v)) {
                return svc_fail(e, 400, "parameters[\"%s\"] must be a base64 string", k);
            }
            if (j->raw_len || j->b64) {
                return svc_fail(e, 400, "the weights are given twice");
            }
            j->b64 = json_string_value(v);
            j->b64_len = json_string_length(v);
        } else if (strncmp(k, "file:", 5) == 0) {
            return svc_fail(e, 400, "unsupported file '%.64s' (only weights.safetensors)", k + 5);
        } else {
            return svc_fail(e, 400, "parameter '%.64s' is not known (config, file:weights.safetensors)", k);
        }
    }
    if ((j->b64 || j->raw_len) && !j->config) {
        return svc_fail(e, 400, "weights need parameters.config (config.json) with them");
    }
    if (j->raw_len && !j->raw) j->raw = (const unsigned char *)"";
    return 0;
}

void svc_api_repo_load(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_err e;
    load_job *j = calloc(1, sizeof *j);
    if (!j) {
        svc_reply_error(&rep, 503, "out of memory");
        svc_req_reply(r, &rep);
        return;
    }
    snprintf(j->name, sizeof j->name, "%s", svc_req_model(r));
    if (svc_repo_control_check(&e) == 0 && parse_load(r, j, &e) == 0) {
        /* the job outlives this call: it keeps the body raw points into */
        j->body = svc_req_take_body_block(r);
        j->base.run = load_run;
        j->base.finish = load_finish;
        svc_reply_init(&j->base.reply);
        if (svc_req_submit(r, &j->base, &e) == 0) return;
    }
    svc_reply_fail(&rep, &e);
    svc_req_reply(r, &rep);
    load_finish(&j->base, e.status);
}

void svc_api_repo_unload(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_err e;
    if (svc_repo_control_check(&e) == 0 && svc_repo_unload(svc_req_model(r), &e) == 0) svc_reply_empty(&rep, 200);
    else svc_reply_fail(&rep, &e);
    svc_req_reply(r, &rep);
}

void svc_api_repo_index(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    size_t len;
    const char *body = svc_req_body(r, &len);
    int ready_only = 0;
    if (len) {
        svc_err e = {.msg = "bad value"};
        json_t *o = NULL;
        svc_json_parse(body, len, &o, &e);
        json_t *ready = o ? json_object_get(o, "ready") : NULL;
        if (o && json_object_size(o) > (ready ? 1u : 0u)) svc_fail(&e, 400, "unknown field");
        if (!o || (ready && !json_is_boolean(ready)) || json_object_size(o) > (ready ? 1u : 0u)) {
            svc_reply_error(&rep, 400, "the index takes {\"ready\": true|false}: %s", e.msg);
            json_decref(o);
            svc_req_reply(r, &rep);
            return;
        }
        ready_only = ready && json_is_true(ready);
        json_decref(o);
    }
    svc_reply_json(&rep, 200, svc_repo_index(ready_only));
    svc_req_reply(r, &rep);
}
