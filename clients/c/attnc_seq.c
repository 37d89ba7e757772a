/*
 * attnc_seq.c — sequences (attnd's sequence extension): a step is an
 * ordinary infer with the sequence parameters merged into the request's
 * parameters and the id in the Sequence-Id header; export, restore, delete
 * and list are the /v2/models/{m}/sequences endpoints.
 */
#include "attnc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEQ_ID_MAX 128
#define SEQ_HEADER "Sequence-Id"

struct attnc_seq {
    attnc_client *c; /* borrowed */
    char *model;
    char id[SEQ_ID_MAX + 1];
    int id_is_int;
    uint64_t int_id;
    int cross;
    json_t *config; /* the start's extra parameters, or NULL */
    int started, ended;
    int64_t length;
};

static int id_char(char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == ':' || ch == '~' || ch == '-';
}

/* 0 when s is a string id the server takes. */
static int check_id(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > SEQ_ID_MAX) return -1;
    for (size_t i = 0; i < n; i++)
        if (!id_char(s[i])) return -1;
    return 0;
}

/* A random id in 1 .. 2^63-1: /dev/urandom, else the clock mixed. */
static uint64_t random_id(void) {
    uint64_t x = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &x, sizeof x) != (ssize_t)sizeof x) x = 0;
        close(fd);
    }
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
    }
    x &= INT64_MAX;
    return x ? x : 1;
}

static char *seq_path(attnc_client *c, const char *model, const char *id) {
    char suffix[SEQ_ID_MAX + 16];
    snprintf(suffix, sizeof suffix, "/sequences%s%s", id ? "/" : "", id ? id : ""); /* ids need no escaping */
    return attnc__path(c, "/v2/models/", model, suffix);
}

static attnc_status seq_alloc(attnc_client *c, const char *model, attnc_seq **out, attnc_error *err) {
    *out = NULL;
    if (!c) return attnc__err(err, ATTNC_E_INVALID, 0, "no client");
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    attnc_seq *s = calloc(1, sizeof *s);
    if (!s || !(s->model = strdup(model))) {
        free(s);
        return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    }
    s->c = c;
    *out = s;
    return ATTNC_OK;
}

attnc_status attnc_seq_new(attnc_client *c, const char *model, const attnc_seq_opts *opts, attnc_seq **out,
                           attnc_error *err) {
    static const attnc_seq_opts defaults;
    const attnc_seq_opts *o = opts ? opts : &defaults;
    *out = NULL;
    if (o->id && check_id(o->id))
        return attnc__err(err, ATTNC_E_INVALID, 0, "sequence id '%.140s': ids match [A-Za-z0-9._:~-]{1,128}", o->id);
    if (!o->id && o->int_id > INT64_MAX)
        return attnc__err(err, ATTNC_E_INVALID, 0, "an integer sequence id is at most 2^63-1");
    if (o->kind && strcmp(o->kind, "self") && strcmp(o->kind, "cross"))
        return attnc__err(err, ATTNC_E_INVALID, 0, "sequence kind must be \"self\" or \"cross\"");
    json_t *config = NULL;
    if (o->config_json) {
        json_error_t je;
        config = json_loads(o->config_json, 0, &je);
        if (!json_is_object(config)) {
            json_decref(config);
            return attnc__err(err, ATTNC_E_INVALID, 0, "config must be a JSON object: %s",
                              config ? "not an object" : je.text);
        }
    }
    attnc_seq *s;
    attnc_status st = seq_alloc(c, model, &s, err);
    if (st != ATTNC_OK) {
        json_decref(config);
        return st;
    }
    s->config = config;
    s->cross = o->kind && !strcmp(o->kind, "cross");
    if (o->id) {
        snprintf(s->id, sizeof s->id, "%s", o->id);
    } else {
        s->id_is_int = 1;
        s->int_id = o->int_id ? o->int_id : random_id();
        snprintf(s->id, sizeof s->id, "%" PRIu64, s->int_id);
    }
    *out = s;
    return ATTNC_OK;
}

void attnc_seq_free(attnc_seq *s) {
    if (!s) return;
    json_decref(s->config);
    free(s->model);
    free(s);
}

const char *attnc_seq_id(const attnc_seq *s) { return s ? s->id : ""; }
int64_t attnc_seq_length(const attnc_seq *s) { return s ? s->length : 0; }
int attnc_seq_started(const attnc_seq *s) { return s && s->started; }
int attnc_seq_ended(const attnc_seq *s) { return s && s->ended; }

/* The step's parameters: the caller's, the start's config, the sequence's. */
static attnc_status step_params(const attnc_seq *s, const char *user, int end, char **text, attnc_error *err) {
    *text = NULL;
    json_t *p;
    if (user) {
        json_error_t je;
        p = json_loads(user, 0, &je);
        if (!json_is_object(p)) {
            json_decref(p);
            return attnc__err(err, ATTNC_E_INVALID, 0, "parameters must be a JSON object: %s",
                              p ? "not an object" : je.text);
        }
    } else {
        p = json_object();
    }
    int ok = p != NULL;
    if (ok && !s->started && s->config) ok = !json_object_update(p, s->config);
    if (ok && !s->started) ok = !json_object_set_new(p, "sequence_start", json_true());
    if (ok && !s->started && s->cross) ok = !json_object_set_new(p, "sequence_kind", json_string("cross"));
    if (ok)
        ok = !json_object_set_new(p, "sequence_id",
                                  s->id_is_int ? json_integer((json_int_t)s->int_id) : json_string(s->id));
    /* the length this object counts: a replica with another (a stale copy
     * after a failover) refuses with 409 instead of answering */
    if (ok && s->started) ok = !json_object_set_new(p, "attnd_expect_length", json_integer((json_int_t)s->length));
    if (ok && end) ok = !json_object_set_new(p, "sequence_end", json_true());
    if (ok) ok = (*text = json_dumps(p, JSON_COMPACT)) != NULL;
    json_decref(p);
    return ok ? ATTNC_OK : attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
}

attnc_status attnc_seq_step(attnc_seq *s, const attnc_tensor *inputs, size_t n, int end,
                            const attnc_infer_opts *opts, attnc_result **out, attnc_error *err) {
    static const attnc_infer_opts defaults;
    *out = NULL;
    if (!s) return attnc__err(err, ATTNC_E_INVALID, 0, "no sequence");
    attnc_infer_opts o = opts ? *opts : defaults;
    char *params = NULL, header[SEQ_ID_MAX + 32];
    attnc_status st = step_params(s, o.parameters_json, end, &params, err);
    if (st != ATTNC_OK) return st;
    o.parameters_json = params;
    snprintf(header, sizeof header, SEQ_HEADER ": %s", s->id);
    s->c->cur_header = header;
    st = attnc_infer(s->c, s->model, inputs, n, &o, out, err);
    s->c->cur_header = NULL;
    free(params);
    if (st == ATTNC_E_NOT_FOUND && s->started) s->ended = 1;
    if (st != ATTNC_OK) return st;
    s->started = 1;
    json_t *rp = json_loads(attnc_result_parameters(*out), 0, NULL);
    json_t *len = json_object_get(rp, "sequence_length");
    if (json_is_integer(len)) s->length = json_integer_value(len);
    if (end || json_is_true(json_object_get(rp, "sequence_end"))) s->ended = 1;
    json_decref(rp);
    return ATTNC_OK;
}

/* One request on .../sequences[/{id}]; *res the caller's (attnc__http_free). */
static attnc_status seq_request(attnc_client *c, const char *method, const char *model, const char *id,
                                const void *body, size_t len, attnc_http *res, attnc_error *err) {
    memset(res, 0, sizeof *res);
    if (!c) return attnc__err(err, ATTNC_E_INVALID, 0, "no client");
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    if (id && check_id(id))
        return attnc__err(err, ATTNC_E_INVALID, 0, "sequence id '%.140s': ids match [A-Za-z0-9._:~-]{1,128}", id);
    char *path = seq_path(c, model, id), header[SEQ_ID_MAX + 32];
    if (!path) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    attnc_seg seg = {body, len};
    if (id) {
        snprintf(header, sizeof header, SEQ_HEADER ": %s", id);
        c->cur_header = header;
    }
    attnc_status st = attnc__request(c, method, path, &seg, body ? 1 : 0, -1, res, err);
    c->cur_header = NULL;
    if (st == ATTNC_OK && (res->status < 200 || res->status >= 300)) {
        char what[200];
        snprintf(what, sizeof what, "%s sequence '%s' of '%.40s'", method, id ? id : "*", model);
        st = attnc__http_error(res, what, err);
    }
    free(path);
    return st;
}

attnc_status attnc_seq_end(attnc_seq *s, attnc_error *err) {
    if (!s) return attnc__err(err, ATTNC_E_INVALID, 0, "no sequence");
    if (!s->started || s->ended) {
        s->ended = s->started;
        return ATTNC_OK;
    }
    attnc_status st = attnc_seq_delete(s->c, s->model, s->id, err);
    s->ended = 1;
    return st;
}

attnc_status attnc_seq_delete(attnc_client *c, const char *model, const char *id, attnc_error *err) {
    if (!id) return attnc__err(err, ATTNC_E_INVALID, 0, "no sequence id");
    attnc_http res;
    attnc_status st = seq_request(c, "DELETE", model, id, NULL, 0, &res, err);
    attnc__http_free(&res);
    return st;
}

attnc_status attnc_seq_export(attnc_seq *s, void **data, size_t *len, attnc_error *err) {
    *data = NULL;
    *len = 0;
    if (!s) return attnc__err(err, ATTNC_E_INVALID, 0, "no sequence");
    attnc_http res;
    attnc_status st = seq_request(s->c, "GET", s->model, s->id, NULL, 0, &res, err);
    if (st == ATTNC_OK) {
        *len = res.body.len;
        *data = res.body.p ? res.body.p : malloc(1);
        res.body.p = NULL;
        if (!*data) st = attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    }
    attnc__http_free(&res);
    return st;
}

attnc_status attnc_seq_restore(attnc_client *c, const char *model, const char *id, const void *data,
                               size_t len, attnc_seq **out, attnc_error *err) {
    *out = NULL;
    if (!id) return attnc__err(err, ATTNC_E_INVALID, 0, "no sequence id");
    if (!data || !len) return attnc__err(err, ATTNC_E_INVALID, 0, "no export to restore");
    attnc_http res;
    attnc_status st = seq_request(c, "PUT", model, id, data, len, &res, err);
    json_t *doc = NULL;
    if (st == ATTNC_OK) {
        doc = json_loadb(res.body.p ? res.body.p : "", res.body.len, 0, NULL);
        if (!json_is_object(doc)) st = attnc__err(err, ATTNC_E_PROTOCOL, res.status, "PUT sequence '%s': the answer is not a JSON object", id);
    }
    attnc_seq *s = NULL;
    if (st == ATTNC_OK) st = seq_alloc(c, model, &s, err);
    if (st == ATTNC_OK) {
        snprintf(s->id, sizeof s->id, "%s", id);
        s->started = 1;
        json_t *n = json_object_get(doc, "sequence_length"), *kind = json_object_get(doc, "kind");
        if (json_is_integer(n)) s->length = json_integer_value(n);
        s->cross = json_is_string(kind) && !strcmp(json_string_value(kind), "cross");
        *out = s;
    }
    json_decref(doc);
    attnc__http_free(&res);
    return st;
}

attnc_status attnc_seq_list(attnc_client *c, const char *model, char **json, attnc_error *err) {
    *json = NULL;
    attnc_http res;
    attnc_status st = seq_request(c, "GET", model, NULL, NULL, 0, &res, err);
    if (st == ATTNC_OK) {
        json_t *j = json_loadb(res.body.p ? res.body.p : "", res.body.len, 0, NULL);
        if (!json_is_object(j)) st = attnc__err(err, ATTNC_E_PROTOCOL, res.status, "sequences of '%.100s': not a JSON object", model);
        json_decref(j);
    }
    if (st == ATTNC_OK) {
        *json = res.body.p;
        res.body.p = NULL;
    }
    attnc__http_free(&res);
    return st;
}
