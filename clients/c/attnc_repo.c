/*
 * attnc_repo.c — the repository extension: index, load (Triton's
 * convention: the config text and base64 files in the request's
 * parameters) and unload.
 */
#include "attnc_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct attnc_model_list {
    size_t n;
    attnc_model_entry *e; /* every string owned */
};

static void entry_free(attnc_model_entry *e) {
    free((char *)e->name);
    free((char *)e->version);
    free((char *)e->state);
    free((char *)e->reason);
}

void attnc_model_list_free(attnc_model_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) entry_free(&l->e[i]);
    free(l->e);
    free(l);
}

size_t attnc_model_list_count(const attnc_model_list *l) { return l ? l->n : 0; }

const attnc_model_entry *attnc_model_list_at(const attnc_model_list *l, size_t i) {
    return l && i < l->n ? &l->e[i] : NULL;
}

/* A string member, "" when absent; NULL only when out of memory. */
static char *member(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return strdup(json_is_string(v) ? json_string_value(v) : "");
}

/* Posts a small JSON body and checks for a 2xx answer; *res is the caller's. */
static attnc_status post(attnc_client *c, const char *path, const char *body, const char *what,
                         attnc_http *res, attnc_error *err) {
    attnc_seg seg = {body, strlen(body)};
    attnc_status st = attnc__request(c, "POST", path, &seg, 1, -1, res, err);
    if (st == ATTNC_OK && (res->status < 200 || res->status >= 300)) st = attnc__http_error(res, what, err);
    return st;
}

attnc_status attnc_models(attnc_client *c, int ready_only, attnc_model_list **out,
                          attnc_error *err) {
    *out = NULL;
    attnc_http res;
    attnc_status st = post(c, "/v2/repository/index", ready_only ? "{\"ready\":true}" : "{}",
                           "repository index", &res, err);
    if (st != ATTNC_OK) {
        attnc__http_free(&res);
        return st;
    }
    json_error_t je;
    json_t *a = json_loadb(res.body.p ? res.body.p : "", res.body.len, 0, &je);
    attnc_model_list *l = calloc(1, sizeof *l);
    if (!json_is_array(a)) {
        st = attnc__err(err, ATTNC_E_PROTOCOL, res.status, "repository index: the answer is not a JSON array");
    } else if (!l || (json_array_size(a) && !(l->e = calloc(json_array_size(a), sizeof *l->e)))) {
        st = attnc__err(err, ATTNC_E_NOMEM, res.status, "out of memory");
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(a, i, m) {
            if (!json_is_object(m) || !json_is_string(json_object_get(m, "name"))) {
                st = attnc__err(err, ATTNC_E_PROTOCOL, res.status, "repository index: entry %zu has no name", i);
                break;
            }
            attnc_model_entry *e = &l->e[l->n++];
            e->name = member(m, "name");
            e->version = member(m, "version");
            e->state = member(m, "state");
            e->reason = member(m, "reason");
            if (!e->name || !e->version || !e->state || !e->reason) {
                st = attnc__err(err, ATTNC_E_NOMEM, res.status, "out of memory");
                break;
            }
        }
    }
    json_decref(a);
    attnc__http_free(&res);
    if (st != ATTNC_OK) attnc_model_list_free(l);
    else *out = l;
    return st;
}

/* ---- load and unload ---- */

static char *base64(const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1), *q = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = tab[v >> 18];
        *q++ = tab[v >> 12 & 63];
        *q++ = tab[v >> 6 & 63];
        *q++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *q++ = tab[v >> 18];
        *q++ = tab[v >> 12 & 63];
        *q++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return out;
}

static int valid_name(const char *name) { return name && *name && strlen(name) <= 64; }

attnc_status attnc_load(attnc_client *c, const char *name, const char *config_json,
                        const void *weights, size_t weights_len, attnc_error *err) {
    if (!valid_name(name)) return attnc__err(err, ATTNC_E_INVALID, 0, "a model name has 1 to 64 characters");
    if (!config_json) return attnc__err(err, ATTNC_E_INVALID, 0, "no config");
    json_error_t je;
    json_t *cfg = json_loads(config_json, 0, &je);
    int parsed = cfg != NULL, is_obj = json_is_object(cfg);
    json_decref(cfg);
    if (!is_obj)
        return attnc__err(err, ATTNC_E_INVALID, 0, "the config is not a JSON object: %s",
                          parsed ? "another JSON value" : je.text);
    char *b64 = NULL, *body = NULL, *path = NULL;
    json_t *root = NULL;
    attnc_status st = ATTNC_E_NOMEM;
    if (weights && !(b64 = base64(weights, weights_len))) goto oom;
    root = json_pack("{s:{s:s}}", "parameters", "config", config_json);
    if (!root) goto oom;
    if (b64 && json_object_set_new(json_object_get(root, "parameters"), "file:weights.safetensors",
                                   json_string(b64)))
        goto oom;
    if (!(body = json_dumps(root, JSON_COMPACT))) goto oom;
    if (!(path = attnc__path(c, "/v2/repository/models/", name, "/load"))) goto oom;
    char what[100];
    snprintf(what, sizeof what, "load '%s'", name);
    attnc_http res;
    st = post(c, path, body, what, &res, err);
    attnc__http_free(&res);
    goto done;
oom:
    attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory building the load request");
done:
    free(path);
    free(body);
    json_decref(root);
    free(b64);
    return st;
}

attnc_status attnc_load_dir(attnc_client *c, const char *name, const char *dir, attnc_error *err) {
    if (!dir) return attnc__err(err, ATTNC_E_INVALID, 0, "no model folder");
    size_t n = strlen(dir) + sizeof "/weights.safetensors";
    char *path = malloc(n), *config = NULL, *weights = NULL;
    size_t config_len, weights_len = 0;
    if (!path) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    snprintf(path, n, "%s/config.json", dir);
    attnc_status st = attnc__read_file(path, &config, &config_len, err);
    if (st == ATTNC_OK && strlen(config) != config_len)
        st = attnc__err(err, ATTNC_E_INVALID, 0, "%s: contains a NUL byte", path);
    if (st == ATTNC_OK) {
        snprintf(path, n, "%s/weights.safetensors", dir);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            st = attnc__read_file(path, &weights, &weights_len, err);
        } else if (errno != ENOENT) {
            st = attnc__err(err, ATTNC_E_IO, 0, "%s: %s", path, strerror(errno));
        }
    }
    if (st == ATTNC_OK) st = attnc_load(c, name, config, weights, weights_len, err);
    free(weights);
    free(config);
    free(path);
    return st;
}

attnc_status attnc_unload(attnc_client *c, const char *name, attnc_error *err) {
    if (!valid_name(name)) return attnc__err(err, ATTNC_E_INVALID, 0, "a model name has 1 to 64 characters");
    char *path = attnc__path(c, "/v2/repository/models/", name, "/unload");
    if (!path) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    char what[100];
    snprintf(what, sizeof what, "unload '%s'", name);
    attnc_http res;
    attnc_status st = post(c, path, "{}", what, &res, err);
    attnc__http_free(&res);
    free(path);
    return st;
}
