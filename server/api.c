/*
 * api.c — the route table and the small endpoints: health, server and
 * model metadata, model config, and /metrics.
 */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "metrics.h"
#include "repo.h"

/* The one list of the endpoints (docs/server.md and proto/openapi.yaml
 * describe each; tests/unit/test_router.c checks that they do).  A pattern's
 * segments are literals, {m} (a model name), {id} (a sequence id), {file}
 * (a file name of the explorer page, looked up by its handler) or
 * [/versions/1] (optional; any
 * other version is a 404).  GET routes answer HEAD too.  bad_name: the
 * status for a path whose {m} is not a model name — 404 where the name must
 * be a model's, 400 where a load would create it. */
static const svc_route_def routes[] = {
    /* method  pattern                                   handler               auth            bad_name */
    {"GET",  "/v2/health/live",                        svc_api_live,         SVC_AUTH_NONE,  0},
    {"GET",  "/v2/health/ready",                       svc_api_ready,        SVC_AUTH_NONE,  0},
    {"GET",  "/v2",                                    svc_api_server_meta,  SVC_AUTH_API,   0},
    {"GET",  "/v2/models/{m}[/versions/1]",            svc_api_model_meta,   SVC_AUTH_API,   404},
    {"GET",  "/v2/models/{m}[/versions/1]/ready",      svc_api_model_ready,  SVC_AUTH_NONE,  404},
    {"GET",  "/v2/models/{m}[/versions/1]/config",     svc_api_model_config, SVC_AUTH_API,   404},
    {"POST", "/v2/models/{m}[/versions/1]/infer",      svc_api_infer,        SVC_AUTH_API,   404},
    {"GET",  "/v2/models/{m}/sequences", svc_api_seq_list,     SVC_AUTH_ADMIN, 404},
    {"GET",  "/v2/models/{m}/sequences/{id}", svc_api_seq_get, SVC_AUTH_API,   404},
    {"PUT",  "/v2/models/{m}/sequences/{id}", svc_api_seq_put, SVC_AUTH_API,   404},
    {"DELETE", "/v2/models/{m}/sequences/{id}", svc_api_seq_delete, SVC_AUTH_API, 404},
    {"POST", "/v2/repository/index",                   svc_api_repo_index,   SVC_AUTH_ADMIN, 0},
    {"POST", "/v2/repository/models/{m}/load",         svc_api_repo_load,    SVC_AUTH_ADMIN, 400},
    {"POST", "/v2/repository/models/{m}/unload",       svc_api_repo_unload,  SVC_AUTH_ADMIN, 400},
    {"GET",  "/metrics",                               svc_api_metrics,      SVC_AUTH_NONE,  0},
    {"GET",  "/ui",                                    svc_api_ui,           SVC_AUTH_NONE,  0},
    {"GET",  "/ui/{file}",                             svc_api_ui,           SVC_AUTH_NONE,  0},
};

const svc_route_def *svc_api_routes(size_t *n) {
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

#define MAX_SEGS 8
#define VERSION_TOKEN "[/versions/1]"

typedef struct seg {
    const char *p;
    size_t n;
} seg;

static int seg_is(const seg *s, const char *w) { return s->n == strlen(w) && memcmp(s->p, w, s->n) == 0; }

static int split(const char *path, seg *segs) {
    int n = 0;
    const char *p = path;
    if (*p != '/') return -1;
    while (*p) {
        p++; /* past '/' */
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            if (!e) break; /* one trailing slash is fine */
            return -1;
        }
        if (n == MAX_SEGS) return -1;
        segs[n++] = (seg){p, len};
        p += len;
    }
    return n;
}

/* What a path's segments matched in a pattern. */
typedef struct match {
    const seg *model;   /* {m}, or NULL */
    const seg *arg;     /* {id} or {file}, or NULL */
    int file;           /* arg is a {file} */
    const seg *version; /* the segment after "versions", or NULL */
} match;

/* Whether the n segments s fit the pattern (without checking the name and
 * the version's value).  "versions" and the segment after it are taken at
 * the version token whenever they are there. */
static int fits(const char *pat, const seg *s, int n, match *m) {
    memset(m, 0, sizeof *m);
    int i = 0;
    const char *p = pat;
    while (*p) {
        if (strncmp(p, VERSION_TOKEN, strlen(VERSION_TOKEN)) == 0) {
            p += strlen(VERSION_TOKEN);
            if (i + 1 < n && seg_is(&s[i], "versions")) {
                m->version = &s[i + 1];
                i += 2;
            }
            continue;
        }
        p++; /* past '/' */
        size_t len = strcspn(p, "/[");
        if (i == n) return 0;
        if (len == 3 && memcmp(p, "{m}", 3) == 0) m->model = &s[i];
        else if (len == 4 && memcmp(p, "{id}", 4) == 0) m->arg = &s[i];
        else if (len == 6 && memcmp(p, "{file}", 6) == 0) m->arg = &s[i], m->file = 1;
        else if (s[i].n != len || memcmp(s[i].p, p, len) != 0) return 0;
        i++;
        p += len;
    }
    return i == n;
}

static int is_get(const char *m) { return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0; }

static int method_ok(const svc_route_def *d, const char *method) {
    return strcmp(d->method, "GET") == 0 ? is_get(method) : strcmp(method, d->method) == 0;
}

int svc_api_match(const char *method, const char *path, svc_route *rt, svc_reply *rep) {
    seg s[MAX_SEGS];
    memset(rt, 0, sizeof *rt);
    int n = split(path, s);
    const svc_route_def *d = NULL;
    match m = {0};
    for (size_t i = 0; n >= 0 && i < sizeof routes / sizeof routes[0]; i++) {
        match mi;
        if (!fits(routes[i].pattern, s, n, &mi)) continue;
        if (!d) d = &routes[i], m = mi;
        if (method_ok(&routes[i], method)) {
            d = &routes[i];
            break;
        }
    }
    if (!d) goto notfound;
    if (m.model) {
        if (!svc_valid_model_name(m.model->p, m.model->n)) {
            if (d->bad_name != 400) goto notfound;
            svc_reply_error(rep, 400, "model names match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
            return 400;
        }
        memcpy(rt->model, m.model->p, m.model->n);
    }
    if (m.version && !seg_is(m.version, "1")) {
        svc_reply_error(rep, 404, "model '%s' has no version '%.*s' (only 1)", rt->model,
                        (int)(m.version->n > 32 ? 32 : m.version->n), m.version->p);
        return 404;
    }
    if (m.arg && m.file) {
        if (m.arg->n >= sizeof rt->arg) goto notfound; /* no file has so long a name */
        memcpy(rt->arg, m.arg->p, m.arg->n);
    } else if (m.arg) {
        if (!svc_valid_seq_id(m.arg->p, m.arg->n)) {
            svc_reply_error(rep, 404, "sequence ids match [A-Za-z0-9._:~-]{1,%d}", SVC_SEQ_ID_MAX);
            return 404;
        }
        memcpy(rt->arg, m.arg->p, m.arg->n);
    }
    if (!method_ok(d, method)) {
        /* RFC 9110: a 405 says what is allowed: every method of the routes
         * this path fits. */
        char allow[sizeof rep->allow] = "", use[sizeof rep->allow] = "";
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            match mi;
            if (!fits(routes[i].pattern, s, n, &mi) || strstr(use, routes[i].method)) continue;
            int get = strcmp(routes[i].method, "GET") == 0;
            snprintf(use + strlen(use), sizeof use - strlen(use), "%s%s", use[0] ? ", " : "", routes[i].method);
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                     get ? "GET, HEAD" : routes[i].method);
        }
        svc_reply_error(rep, 405, "%s is not allowed here (use %s)", method, use);
        memcpy(rep->allow, allow, sizeof allow); /* after svc_reply_error, which clears the reply */
        return 405;
    }
    rt->handler = d->handler;
    rt->auth = d->auth;
    return 0;
notfound:
    svc_reply_error(rep, 404, "no such endpoint");
    return 404;
}

/* ---- health ---- */

void svc_api_live(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_empty(&rep, 200);
    svc_req_reply(r, &rep);
}

void svc_api_ready(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_empty(&rep, atomic_load(&svc_ready) && !atomic_load(&svc_draining) ? 200 : 400);
    svc_req_reply(r, &rep);
}

void svc_api_model_ready(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_model *m = svc_repo_get(svc_req_model(r));
    svc_reply_empty(&rep, m && (m->m || m->builtin) && !atomic_load(&svc_draining) ? 200 : 400);
    svc_model_unref(m);
    svc_req_reply(r, &rep);
}

/* ---- metadata ---- */

/* The CPU and the kernel variants libattn chose for it (attn_cpu_info). */
static json_t *cpu_params(void) {
    json_t *p = json_object();
    const char *k, *v;
    for (size_t i = 0; attn_cpu_info(i, &k, &v); i++) json_object_set_new(p, k, json_string(v));
    return p;
}

json_t *svc_api_server_meta_json(void) {
    json_t *o = json_pack(
        "{s:s, s:s, s:[s,s,s,s,s,s], s:{s:I, s:I, s:i, s:I, s:i, s:f, s:i, s:i, s:I, s:i, s:i, s:b}}",
        "name", SVC_NAME, "version", ATTN_VERSION, "extensions", "binary_tensor_data",
        "model_repository", "parameters", "model_configuration", "sequence", "sequence(string_id)", "limits", "max_body_bytes",
        (json_int_t)svc_cfg.max_body, "max_tensor_elements", (json_int_t)svc_cfg.max_elements,
        "max_rank", svc_cfg.max_rank, "max_dim", (json_int_t)svc_cfg.max_dim, "max_queue",
        svc_cfg.max_queue, "request_timeout_s", svc_cfg.timeout_s, "threads", svc_cfg.threads,
        "threads_per_request", svc_cfg.call_threads, "elements_per_thread",
        (json_int_t)svc_cfg.elems_per_thread, "http_threads", svc_cfg.http_threads,
        "max_json_depth", svc_cfg.max_json_depth, "allow_nonfinite", svc_cfg.allow_nonfinite);
    json_t *lim = o ? json_object_get(o, "limits") : NULL;
    if (lim) {
        json_object_set_new(lim, "inline_max_us", json_integer(svc_cfg.inline_max_us));
        json_object_set_new(lim, "max_sequences", json_integer((json_int_t)svc_cfg.max_sequences));
        json_object_set_new(lim, "sequence_memory_bytes", json_integer((json_int_t)svc_cfg.sequence_memory));
        json_object_set_new(lim, "sequence_idle_timeout_s", json_real(svc_cfg.sequence_idle_s));
        json_object_set_new(lim, "max_sequence_tokens", json_integer((json_int_t)svc_cfg.max_sequence_tokens));
        json_object_set_new(lim, "sequence_evict_after_s", json_real(svc_cfg.sequence_evict_s));
        json_object_set_new(lim, "max_attention_elements", json_integer((json_int_t)svc_cfg.max_attention_elements));
        json_object_set_new(lim, "model_control_mode", json_string(svc_repo_mode_name(svc_cfg.control_mode)));
        json_object_set_new(lim, "repository_poll_s", json_real(svc_cfg.poll_s));
        /* compressed bodies (http.c) */
        json_object_set_new(lim, "compress_min_bytes", json_integer((json_int_t)svc_cfg.compress_min));
        json_object_set_new(lim, "compress_max_bytes", json_integer((json_int_t)svc_cfg.compress_max));
        json_object_set_new(lim, "compress_level", json_integer(svc_cfg.compress_level));
        json_object_set_new(lim, "content_encodings", json_pack("[s,s,s]", "gzip", "deflate", "identity"));
    }
    if (o) json_object_set_new(o, "parameters", cpu_params());
    return o;
}

void svc_api_server_meta(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_json(&rep, 200, svc_api_server_meta_json());
    svc_req_reply(r, &rep);
}

/* An input or output; `datatypes` lists what the wire may carry for it:
 * FP16 and BF16 wherever FP32 is (converted), INT32 for INT64 inputs. */
static json_t *io_json(const attn_io_spec *s, int input) {
    json_t *shape = json_array();
    for (int d = 0; d < s->rank; d++) json_array_append_new(shape, json_integer(s->shape[d]));
    json_t *dts = json_pack("[s]", svc_datatype_name(s->dtype));
    if (s->dtype == ATTN_F32) {
        json_array_append_new(dts, json_string("FP16"));
        json_array_append_new(dts, json_string("BF16"));
    }
    if (s->dtype == ATTN_I64 && input) json_array_append_new(dts, json_string("INT32"));
    return json_pack("{s:s, s:s, s:o, s:o, s:s, s:b}", "name", s->name, "datatype",
                     svc_datatype_name(s->dtype), "datatypes", dts, "shape", shape, "dims", s->dims, "optional",
                     !s->required);
}

static const char *param_type(attn_param_type t) {
    switch (t) {
    case ATTN_P_INT: return "int";
    case ATTN_P_FLOAT: return "float";
    case ATTN_P_BOOL: return "bool";
    case ATTN_P_STRING: return "string";
    case ATTN_P_INT_LIST: return "int_list";
    case ATTN_P_OBJECT: return "object";
    }
    return "?";
}

/* The config keys of a mechanism, from its param table. */
static json_t *params_json(const attn_mech_info *info) {
    json_t *a = json_array();
    for (const attn_param *p = info->params; p && p->key; p++) {
        json_t *o = json_pack("{s:s, s:s}", "name", p->key, "type", param_type(p->type));
        json_t *def = p->def ? json_loads(p->def, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(o, "default", def ? def : json_null());
        json_object_set_new(o, "required", json_boolean(p->def == NULL));
        if ((p->type == ATTN_P_INT || p->type == ATTN_P_FLOAT || p->type == ATTN_P_INT_LIST) &&
            (p->min != 0 || p->max != 0)) { /* both 0: unbounded */
            json_object_set_new(o, "min", json_real(p->min));
            json_object_set_new(o, "max", json_real(p->max));
        }
        if (p->choices) json_object_set_new(o, "choices", json_string(p->choices));
        if (p->doc) json_object_set_new(o, "doc", json_string(p->doc));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *svc_api_model_meta_json(const char *name, svc_err *e) {
    svc_model *m = svc_repo_get(name);
    if (!m) {
        svc_fail(e, 404, "unknown model '%s'", name);
        return NULL;
    }
    json_t *o = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:b}", "name", name, "versions",
                          "1", "platform", SVC_NAME, "type", m->mech->name, "reference",
                          m->mech->reference ? m->mech->reference : "", "builtin", m->builtin);
    json_t *inputs = json_array(), *outputs = json_array();
    if (m->m) {
        for (size_t i = 0; i < attn_model_num_inputs(m->m); i++)
            json_array_append_new(inputs, io_json(attn_model_input(m->m, i), 1));
        for (size_t i = 0; i < attn_model_num_outputs(m->m); i++) {
            const attn_io_spec *os = attn_model_output_at(m->m, i);
            json_t *oj = io_json(os, 0);
            if (oj && os->doc[0]) json_object_set_new(oj, "doc", json_string(os->doc));
            json_array_append_new(outputs, oj);
        }
        json_t *cfg = json_loads(attn_model_config_json(m->m), 0, NULL);
        json_object_set_new(o, "config", cfg ? cfg : json_null());
        unsigned k = attn_model_seq_kinds(m->m);
        json_t *kinds = json_array();
        if (k & ATTN_SEQ_SELF) json_array_append_new(kinds, json_string("self"));
        if (k & ATTN_SEQ_CROSS) json_array_append_new(kinds, json_string("cross"));
        json_object_set_new(o, "sequence_kinds", kinds);
    } else {
        json_object_set_new(o, "config", json_null());
        /* what the type supports with some config: the request's decides */
        unsigned k = attn_mech_seq_kinds(m->mech);
        json_t *kinds = json_array();
        if (k & ATTN_SEQ_SELF) json_array_append_new(kinds, json_string("self"));
        if (k & ATTN_SEQ_CROSS) json_array_append_new(kinds, json_string("cross"));
        json_object_set_new(o, "sequence_kinds", kinds);
        json_object_set_new(o, "note", json_sprintf("the defaults are incomplete (%s): pass the "
                                                    "config in the request's parameters",
                                                    m->default_err));
    }
    json_object_set_new(o, "inputs", inputs);
    json_object_set_new(o, "outputs", outputs);
    json_object_set_new(o, "allow_nonfinite", json_boolean(m->allow_nonfinite || svc_cfg.allow_nonfinite));
    if (m->builtin) json_object_set_new(o, "parameters", params_json(m->mech));
    svc_model_unref(m);
    if (!o) svc_fail(e, 503, "out of memory");
    return o;
}

void svc_api_model_meta(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_err e;
    json_t *o = svc_api_model_meta_json(svc_req_model(r), &e);
    if (o) svc_reply_json(&rep, 200, o);
    else svc_reply_fail(&rep, &e);
    svc_req_reply(r, &rep);
}

void svc_api_model_config(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_model *m = svc_repo_get(svc_req_model(r));
    if (!m) {
        svc_reply_error(&rep, 404, "unknown model '%s'", svc_req_model(r));
        svc_req_reply(r, &rep);
        return;
    }
    json_t *cfg = m->m ? json_loads(attn_model_config_json(m->m), 0, NULL) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:o, s:b}", "name", svc_req_model(r), "type", m->mech->name,
                          "config", cfg ? cfg : json_null(), "allow_nonfinite",
                          m->allow_nonfinite || svc_cfg.allow_nonfinite); /* what the server applies */
    if (o) json_object_set_new(o, "weights", m->weights ? json_incref(m->weights) : json_array());
    svc_model_unref(m);
    svc_reply_json(&rep, 200, o);
    svc_req_reply(r, &rep);
}

void svc_api_metrics(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_buf b = {0};
    svc_metrics_render(&b);
    rep.body = svc_buf_take(&b, &rep.len);
    if (!rep.body) {
        svc_reply_error(&rep, 503, "out of memory");
    } else {
        rep.status = 200;
        rep.ctype = "text/plain; version=0.0.4; charset=utf-8";
    }
    svc_req_reply(r, &rep);
}
