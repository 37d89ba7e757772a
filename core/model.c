/*
 * model.c — building models (config + weights -> bound mechanism), their
 * input/output declarations, model-owned memory, and the forward entry
 * point with the input checks every mechanism shares.
 */
#include "attn_internal.h"
#include "workspace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INPUTS 16
#define MAX_OUTPUTS ATTN__MAX_OUTPUTS
#define MAX_CONFIG_BYTES (1u << 20)

struct attn_model {
    const attn_mech *mech;
    void *state;
    char *config_json;
    attn_io_spec inputs[MAX_INPUTS];
    size_t n_inputs;
    attn_io_spec outputs[MAX_OUTPUTS]; /* [0]: the primary output */
    size_t n_outputs;
    void **allocs; /* model-owned blocks */
    size_t n_allocs, cap_allocs;
    attn_model **children;
    size_t n_children, cap_children;
};

/* ---- model-owned memory ---- */

static bool grow(void ***arr, size_t *cap, size_t n) {
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 8;
    void **p = realloc(*arr, c * sizeof *p);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

void *attn__model_alloc(attn_model *m, size_t bytes, attn_error *err) {
    if (!grow(&m->allocs, &m->cap_allocs, m->n_allocs)) {
        attn__err(err, ATTN_E_NOMEM, "out of memory");
        return NULL;
    }
    void *p = attn__calloc(1, bytes ? bytes : 1, err);
    if (p) m->allocs[m->n_allocs++] = p;
    return p;
}

attn_status attn__model_adopt(attn_model *m, attn_model *child, attn_error *err) {
    if (!grow((void ***)&m->children, &m->cap_children, m->n_children)) {
        attn_model_free(child);
        return attn__err(err, ATTN_E_NOMEM, "out of memory");
    }
    m->children[m->n_children++] = child;
    return ATTN_OK;
}

void attn_model_free(attn_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_children; i++) attn_model_free(m->children[i]);
    for (size_t i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
    free(m->children);
    free(m->allocs);
    free(m->state);
    free(m->config_json);
    free(m);
}

/* ---- declarations ---- */

static void set_spec(attn_io_spec *s, const char *name, attn_dtype dtype, bool required,
                     const char *dims, int rank, const int64_t *shape) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->dims, sizeof s->dims, "%s", dims ? dims : "");
    s->dtype = dtype;
    s->required = required;
    s->rank = rank < 0 ? 0 : rank > ATTN_MAX_RANK ? ATTN_MAX_RANK : rank;
    for (int i = 0; i < s->rank; i++) s->shape[i] = shape ? shape[i] : -1;
}

attn_status attn__model_add_input(attn_model *m, const char *name, attn_dtype dtype, bool required,
                                  const char *dims, int rank, const int64_t *shape) {
    if (m->n_inputs == MAX_INPUTS) return ATTN_E_INTERNAL;
    set_spec(&m->inputs[m->n_inputs++], name, dtype, required, dims, rank, shape);
    return ATTN_OK;
}

void attn__model_set_output(attn_model *m, const char *dims, int rank, const int64_t *shape) {
    set_spec(&m->outputs[0], "output", ATTN_F32, true, dims, rank, shape);
    snprintf(m->outputs[0].doc, sizeof m->outputs[0].doc, "the result of the reference module's forward");
    if (m->n_outputs == 0) m->n_outputs = 1;
}

attn_status attn__model_add_output(attn_model *m, const char *name, const char *dims, const char *doc) {
    if (m->n_outputs == 0) m->n_outputs = 1;
    if (m->n_outputs == MAX_OUTPUTS) return ATTN_E_INTERNAL;
    int rank = dims && *dims ? 1 : 0;
    for (const char *c = dims; c && *c; c++) rank += *c == ',';
    attn_io_spec *o = &m->outputs[m->n_outputs++];
    set_spec(o, name, ATTN_F32, false, dims, rank, NULL);
    snprintf(o->doc, sizeof o->doc, "%s", doc ? doc : "");
    return ATTN_OK;
}

attn_status attn__model_add_outputs_of(attn_model *m, const attn_model *child) {
    for (size_t i = 1; i < child->n_outputs; i++) {
        const attn_io_spec *o = &child->outputs[i];
        attn_status st = attn__model_add_output(m, o->name, o->dims, o->doc);
        if (st) return st;
    }
    return ATTN_OK;
}

/* Declares the optional outputs of m's mechanism, after its init. */
static attn_status declare_maps(attn_model *m, attn_error *err) {
    const attn_maps_ops *ops = m->mech->maps;
    attn_status st = ATTN_OK;
    if (!ops) return ATTN_OK;
    if (ops->declare) st = ops->declare(m, m->state);
    else
        for (const attn_out_decl *d = ops->outputs; !st && d && d->name; d++)
            st = attn__model_add_output(m, d->name, d->dims, d->doc);
    if (st) return attn__err(err, st, "%s: cannot declare its outputs", m->mech->info.name);
    return ATTN_OK;
}

attn_status attn__qkv_declare(attn_model *m, int64_t E, int64_t D) {
    int64_t qk[4] = {-1, -1, -1, E > 0 ? E : -1}, v[4] = {-1, -1, -1, D > 0 ? D : -1};
    attn_status st = ATTN_OK;
    st = st ? st : attn__model_add_input(m, "queries", ATTN_F32, true, "N,L,H,E", 4, qk);
    st = st ? st : attn__model_add_input(m, "keys", ATTN_F32, true, "N,S,H,E", 4, qk);
    st = st ? st : attn__model_add_input(m, "values", ATTN_F32, true, "N,S,H,D", 4, v);
    st = st ? st : attn__model_add_input(m, "attn_mask", ATTN_BOOL, false, "L,S", 2, NULL);
    st = st ? st : attn__model_add_input(m, "query_lengths", ATTN_I64, false, "N", 1, NULL);
    st = st ? st : attn__model_add_input(m, "key_lengths", ATTN_I64, false, "N", 1, NULL);
    attn__model_set_output(m, "N,L,H,D", 4, v);
    return st;
}

const attn_mech_info *attn_model_mech(const attn_model *m) { return &m->mech->info; }
const char *attn_model_config_json(const attn_model *m) { return m->config_json; }
size_t attn_model_num_inputs(const attn_model *m) { return m->n_inputs; }
const attn_io_spec *attn_model_input(const attn_model *m, size_t i) {
    return i < m->n_inputs ? &m->inputs[i] : NULL;
}
const attn_io_spec *attn_model_output(const attn_model *m) { return &m->outputs[0]; }
size_t attn_model_num_outputs(const attn_model *m) { return m && m->n_outputs ? m->n_outputs : 1; }
const attn_io_spec *attn_model_output_at(const attn_model *m, size_t i) {
    return m && i < attn_model_num_outputs(m) ? &m->outputs[i] : NULL;
}
int attn_model_output_index(const attn_model *m, const char *name) {
    for (size_t i = 0; m && name && i < attn_model_num_outputs(m); i++)
        if (strcmp(m->outputs[i].name, name) == 0) return (int)i;
    return -1;
}
const void *attn__model_state(const attn_model *m) { return m->state; }

/* ---- weights ---- */

static int find_index(const attn_tensor_set *w, const char *name) {
    for (size_t i = 0; i < attn_tensor_set_count(w); i++)
        if (strcmp(attn_tensor_set_name(w, i), name) == 0) return (int)i;
    return -1;
}

bool attn__bind_has(const attn_binder *b, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    return b->w && find_index(b->w, full) >= 0;
}

attn_status attn__bind(attn_binder *b, const char *name, int rank, const int64_t *shape,
                       float **out) {
    char full[256], want[96], got[96];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    attn_shape_str(rank, shape, want, sizeof want);
    int i = b->w ? find_index(b->w, full) : -1;
    if (i < 0)
        return attn__err(b->err, ATTN_E_WEIGHTS, "missing weight '%.96s' of shape %s", full, want);
    const attn_tensor *t = attn_tensor_set_at(b->w, (size_t)i);
    if (t->dtype != ATTN_F32)
        return attn__err(b->err, ATTN_E_WEIGHTS, "weight '%.96s' is %s, expected F32", full,
                         attn_dtype_name(t->dtype));
    bool same = t->rank == rank;
    for (int d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
    if (!same)
        return attn__err(b->err, ATTN_E_WEIGHTS, "weight '%.96s' has shape %s, the config needs %s",
                         full, attn_shape_str(t->rank, t->shape, got, sizeof got), want);
    float *p = attn__model_alloc(b->m, t->nbytes, b->err);
    if (!p) return b->err ? b->err->code : ATTN_E_NOMEM;
    if (t->nbytes) memcpy(p, t->data, t->nbytes);
    b->used[i] = 1;
    *out = p;
    return ATTN_OK;
}

/* ---- building ---- */

static attn_status build(const attn_mech *mech, const json_t *cfg_obj, const attn_tensor_set *w,
                         unsigned char *used, const char *prefix, attn_model **out,
                         attn_error *err) {
    attn_status st;
    attn_model *m = calloc(1, sizeof *m);
    if (!m) return attn__err(err, ATTN_E_NOMEM, "out of memory");
    m->mech = mech;
    m->state = attn__calloc(1, mech->state_size ? mech->state_size : 1, err);
    if (!m->state) {
        st = ATTN_E_NOMEM;
        goto fail;
    }
    json_t *empty = NULL;
    if (!cfg_obj) cfg_obj = empty = json_object();
    /* 15 digits: the echo reads "0.1", not "0.10000000000000001"; the model
     * itself was built from the exact values. */
    m->config_json = json_dumps(cfg_obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    attn_cfg cfg = {.obj = cfg_obj, .params = mech->info.params, .mech = mech->info.name, .err = err};
    attn_binder b = {.w = w, .used = used, .m = m, .err = err};
    snprintf(b.prefix, sizeof b.prefix, "%s", prefix ? prefix : "");
    st = m->config_json ? attn__cfg_check_keys(&cfg) : attn__err(err, ATTN_E_NOMEM, "out of memory");
    if (!st) st = mech->init(m, m->state, &cfg, &b);
    if (!st) st = declare_maps(m, err);
    json_decref(empty);
    if (st) goto fail;
    if (!(mech->plan && mech->forward) && !mech->forward_qkv) {
        st = attn__err(err, ATTN_E_INTERNAL, "%s: mechanism has no forward", mech->info.name);
        goto fail;
    }
    *out = m;
    return ATTN_OK;
fail:
    attn_model_free(m);
    return st;
}

static attn_status check_leftovers(const attn_mech *mech, const attn_tensor_set *w,
                                   const unsigned char *used, attn_error *err) {
    for (size_t i = 0; i < attn_tensor_set_count(w); i++)
        if (!used[i]) {
            char s[96];
            const attn_tensor *t = attn_tensor_set_at(w, i);
            return attn__err(err, ATTN_E_WEIGHTS, "%s: unexpected weight '%.96s' of shape %s",
                             mech->info.name, attn_tensor_set_name(w, i),
                             attn_shape_str(t->rank, t->shape, s, sizeof s));
        }
    return ATTN_OK;
}

static attn_status model_new_json(const char *type, const json_t *cfg, const attn_tensor_set *w,
                                  attn_model **out, attn_error *err) {
    attn_status cst = attn_cpu_check(err); /* a refused ATTN_CPU / ATTN_GEMM */
    if (cst) return cst;
    const attn_mech *mech = attn__mech_find(type);
    if (!mech)
        return attn__err(err, ATTN_E_NOTFOUND, "unknown attention type '%.64s'", type ? type : "");
    if (cfg && !json_is_object(cfg))
        return attn__err(err, ATTN_E_CONFIG, "%s: config must be a JSON object", mech->info.name);
    unsigned char *used = attn__calloc(attn_tensor_set_count(w) + 1, 1, err);
    if (!used) return ATTN_E_NOMEM;
    attn_model *m = NULL;
    attn_status st = build(mech, cfg, w, used, "", &m, err);
    if (!st) st = check_leftovers(mech, w, used, err);
    free(used);
    if (st) {
        attn_model_free(m);
        return st;
    }
    *out = m;
    return ATTN_OK;
}

attn_status attn_model_new(const char *type, const char *config_json,
                           const attn_tensor_set *weights, attn_model **out, attn_error *err) {
    if (!out) return attn__err(err, ATTN_E_INVALID, "model_new: NULL out");
    json_t *cfg = NULL;
    if (config_json) {
        json_error_t je;
        cfg = json_loads(config_json, JSON_REJECT_DUPLICATES, &je);
        if (!cfg) return attn__err(err, ATTN_E_CONFIG, "config is not valid JSON: %.120s", je.text);
    }
    attn_status st = model_new_json(type, cfg, weights, out, err);
    json_decref(cfg);
    return st;
}

attn_status attn__model_new_nested(attn_model *m, const json_t *spec, attn_binder *parent,
                                   const char *prefix, attn_model **child, attn_error *err) {
    const char *type = NULL;
    json_t *cfg = NULL;
    if (json_is_string(spec)) {
        type = json_string_value(spec);
    } else if (json_is_object(spec) && json_is_string(json_object_get(spec, "type"))) {
        type = json_string_value(json_object_get(spec, "type"));
        cfg = json_deep_copy(spec);
        if (!cfg) return attn__err(err, ATTN_E_NOMEM, "out of memory");
        json_object_del(cfg, "type");
    } else {
        return attn__err(err, ATTN_E_CONFIG, "a nested attention must be a type name or an object with \"type\"");
    }
    const attn_mech *mech = attn__mech_find(type);
    attn_status st;
    if (!mech) {
        st = attn__err(err, ATTN_E_CONFIG, "unknown nested attention type '%.64s'", type);
    } else if (!mech->info.is_inner) {
        st = attn__err(err, ATTN_E_CONFIG, "'%s' cannot be used as an inner attention", mech->info.name);
    } else if (!mech->forward_qkv) {
        st = attn__err(err, ATTN_E_INTERNAL, "'%s' is marked inner but has no forward_qkv", mech->info.name);
    } else {
        char full[192];
        snprintf(full, sizeof full, "%s%s", parent->prefix, prefix ? prefix : "");
        st = build(mech, cfg, parent->w, parent->used, full, child, err);
        if (!st) st = attn__model_adopt(m, *child, err);
    }
    json_decref(cfg);
    return st;
}

static attn_status read_small_file(const char *path, char **out, attn_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return attn__err(err, ATTN_E_IO, "%.200s: %s", path, strerror(errno));
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    if (!buf) {
        fclose(f);
        return attn__err(err, ATTN_E_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_CONFIG_BYTES) {
        free(buf);
        return attn__err(err, ATTN_E_IO, "%.200s: %s", path, bad ? "read error" : "larger than 1 MiB");
    }
    buf[n] = 0;
    *out = buf;
    return ATTN_OK;
}

attn_status attn_model_from_config(const char *text, size_t len, const attn_tensor_set *weights, attn_model **out,
                                   attn_error *err) {
    if (!text || !out) return attn__err(err, ATTN_E_INVALID, "model_from_config: NULL argument");
    *out = NULL;
    if (len > MAX_CONFIG_BYTES) return attn__err(err, ATTN_E_CONFIG, "config.json is larger than 1 MiB");
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return attn__err(err, ATTN_E_CONFIG, "config.json: invalid JSON: %.100s", je.text);
    attn_status st;
    json_t *type = json_object_get(root, "type"), *cfg = json_object_get(root, "config");
    if (!json_is_object(root) || !json_is_string(type)) {
        st = attn__err(err, ATTN_E_CONFIG, "config.json: expected {\"type\": ..., \"config\": {...}}");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        /* allow_nonfinite is attnd's (its input policy), read there, not here. */
        if (strcmp(k, "type") && strcmp(k, "config") && strcmp(k, "allow_nonfinite")) {
            st = attn__err(err, ATTN_E_CONFIG, "config.json: unknown key '%.48s' (type, config, allow_nonfinite)", k);
            goto out;
        }
    }
    if (cfg && !json_is_object(cfg) && !json_is_null(cfg)) {
        st = attn__err(err, ATTN_E_CONFIG, "config.json: \"config\" must be an object");
        goto out;
    }
    if (!attn__mech_find(json_string_value(type))) {
        st = attn__err(err, ATTN_E_CONFIG, "config.json: unknown type '%.64s'", json_string_value(type));
        goto out;
    }
    st = model_new_json(json_string_value(type), json_is_object(cfg) ? cfg : NULL, weights, out, err);
out:
    json_decref(root);
    return st;
}

attn_status attn_model_load_dir(const char *dir, attn_model **out, attn_error *err) {
    char path[4096];
    char *text = NULL;
    attn_tensor_set *w = NULL;
    attn_status st;
    if (!dir || !out) return attn__err(err, ATTN_E_INVALID, "load_dir: NULL argument");
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return attn__err(err, ATTN_E_INVALID, "path too long");
    if ((st = read_small_file(path, &text, err))) return st;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    struct stat sb;
    if (stat(path, &sb) == 0 && (st = attn_safetensors_read_file(path, &w, err))) {
        free(text);
        return st;
    }
    st = attn_model_from_config(text, strlen(text), w, out, err);
    if (st && err && strncmp(err->msg, "config.json", 11) == 0) { /* name the folder */
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%.120s/%.130s", dir, err->msg);
        memcpy(err->msg, m, sizeof m);
    }
    attn_tensor_set_free(w);
    free(text);
    return st;
}

/* ---- input descriptions (before the data exists) ---- */

static const attn_io_spec *find_input_spec(const attn_model *m, const char *name) {
    for (size_t i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0) return &m->inputs[i];
    return NULL;
}

attn_status attn_model_check_input(const attn_model *m, const char *name, attn_dtype dtype, int rank,
                                   const int64_t *shape, attn_error *err) {
    if (!m || !name || (rank > 0 && !shape)) return attn__err(err, ATTN_E_INVALID, "check_input: NULL argument");
    const attn_io_spec *s = find_input_spec(m, name);
    if (!s) {
        char names[256];
        size_t o = 0;
        names[0] = 0;
        for (size_t i = 0; i < m->n_inputs && o < sizeof names; i++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", m->inputs[i].name);
        return attn__err(err, ATTN_E_NOTFOUND, "%s has no input '%.64s' (inputs: %s)", m->mech->info.name, name, names);
    }
    /* INT32 is accepted for INT64 inputs (the forward widens it). */
    if (dtype != s->dtype && !(s->dtype == ATTN_I64 && dtype == ATTN_I32))
        return attn__err(err, ATTN_E_DTYPE, "input '%s': datatype %s, but the model takes %s", name, attn_dtype_name(dtype),
                         attn_dtype_name(s->dtype));
    int fits = rank == s->rank;
    for (int d = 0; fits && d < s->rank; d++)
        if (s->shape[d] >= 0 && s->shape[d] != shape[d]) fits = 0;
    if (!fits) {
        char got[96], want[96];
        return attn__err(err, ATTN_E_SHAPE, "input '%s': shape %s does not fit (%s) = %s (-1: any)", name,
                         attn_shape_str(rank < 0 ? 0 : rank, shape, got, sizeof got), s->dims,
                         attn_shape_str(s->rank, s->shape, want, sizeof want));
    }
    return ATTN_OK;
}

const attn_io_spec *attn_model_missing_input(const attn_model *m, const char *const *names, size_t n) {
    for (size_t i = 0; m && i < m->n_inputs; i++) {
        if (!m->inputs[i].required) continue;
        size_t j = 0;
        while (j < n && strcmp(names[j], m->inputs[i].name) != 0) j++;
        if (j == n) return &m->inputs[i];
    }
    return NULL;
}

/* ---- forward ---- */

attn_status attn__input(const attn_model *m, const attn_tensor_set *in, const char *name,
                        const attn_tensor **out, attn_error *err) {
    const attn_io_spec *s = NULL;
    for (size_t i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0) s = &m->inputs[i];
    if (!s) return attn__err(err, ATTN_E_INTERNAL, "%s: undeclared input '%s'", m->mech->info.name, name);
    const attn_tensor *t = attn_tensor_set_get(in, name);
    *out = t;
    if (!t) {
        if (s->required) return attn__err(err, ATTN_E_INPUT, "missing input '%s' (%s)", name, s->dims);
        return ATTN_OK;
    }
    if (t->dtype != s->dtype)
        return attn__err(err, ATTN_E_DTYPE, "input '%s' must be %s, got %s", name,
                         attn_dtype_name(s->dtype), attn_dtype_name(t->dtype));
    char got[96];
    if (t->rank != s->rank)
        return attn__err(err, ATTN_E_SHAPE, "input '%s' must have rank %d (%s), got shape %s", name,
                         s->rank, s->dims, attn_shape_str(t->rank, t->shape, got, sizeof got));
    for (int i = 0; i < s->rank; i++) {
        if (s->shape[i] >= 0 && t->shape[i] != s->shape[i])
            return attn__err(err, ATTN_E_SHAPE, "input '%s' (%s): dimension %d must be %lld, got shape %s",
                             name, s->dims, i, (long long)s->shape[i],
                             attn_shape_str(t->rank, t->shape, got, sizeof got));
        if (t->shape[i] == 0)
            return attn__err(err, ATTN_E_SHAPE, "input '%s' (%s) has an empty dimension: %s", name,
                             s->dims, attn_shape_str(t->rank, t->shape, got, sizeof got));
    }
    return ATTN_OK;
}

/* Whether p[0 .. n) are all zero: 32 bytes (four words) at a time (a causal mask's
 * upper half is read once per forward, so this is on the hot path). */
static bool bytes_all_zero(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, sizeof w);
        if (w[0] | w[1] | w[2] | w[3]) return false;
    }
    for (; i < n; i++)
        if (p[i]) return false;
    return true;
}

void attn__qkv_prepare(attn_qkv *a) {
    a->mask_all_ones = true;
    a->mask_lower_triangular = false;
    /* memchr for the zero bytes: these scans are a forward's only serial
     * pass over the (L, S) mask, so they go at memory speed */
    if (a->attn_mask) a->mask_all_ones = !memchr(a->attn_mask, 0, (size_t)a->L * (size_t)a->S);
    /* lower_triangular as fast_transformers.masking defines it: every row is a
     * prefix of ones and row i has exactly i+1 of them (needs S >= L). */
    if (!a->attn_mask) {
        a->mask_lower_triangular = a->L == 1 && a->S == 1; /* the all-ones (L,S) mask */
    } else if (a->S >= a->L) {
        bool ok = true;
        const size_t S = (size_t)a->S;
        for (size_t i = 0; i < (size_t)a->L && ok; i++) {
            const uint8_t *row = a->attn_mask + i * S;
            ok = !memchr(row, 0, i + 1) && bytes_all_zero(row + i + 1, S - i - 1);
        }
        a->mask_lower_triangular = ok;
    }
    a->keys_all_ones = true;
    if (a->key_lengths)
        for (int64_t n = 0; n < a->N; n++) a->keys_all_ones &= a->key_lengths[n] == a->S;
    a->queries_all_ones = true;
    if (a->query_lengths)
        for (int64_t n = 0; n < a->N; n++) a->queries_all_ones &= a->query_lengths[n] == a->L;
}

static attn_status check_lengths(const attn_tensor *t, const char *name, int64_t N, int64_t max,
                                 const char *maxname, attn_error *err) {
    if (!t) return ATTN_OK;
    if (t->shape[0] != N)
        return attn__err(err, ATTN_E_SHAPE, "input '%s' must have shape (N,) with N=%lld, got (%lld,)",
                         name, (long long)N, (long long)t->shape[0]);
    const int64_t *v = t->data;
    for (int64_t n = 0; n < N; n++)
        if (v[n] < 0 || v[n] > max)
            return attn__err(err, ATTN_E_INPUT, "input '%s'[%lld] = %lld is outside [0, %s=%lld]", name,
                             (long long)n, (long long)v[n], maxname, (long long)max);
    return ATTN_OK;
}

attn_status attn__qkv_read_masks(const attn_model *m, const attn_tensor_set *in, attn_qkv *a,
                                attn_error *err) {
    const attn_tensor *mask, *ql, *kl;
    attn_status st;
    char s1[96];
    if ((st = attn__input(m, in, "attn_mask", &mask, err)) ||
        (st = attn__input(m, in, "query_lengths", &ql, err)) ||
        (st = attn__input(m, in, "key_lengths", &kl, err)))
        return st;
    if (mask && (mask->shape[0] != a->L || mask->shape[1] != a->S))
        return attn__err(err, ATTN_E_SHAPE, "attn_mask must be (L,S) = (%lld,%lld), got %s", (long long)a->L,
                         (long long)a->S, attn_shape_str(2, mask->shape, s1, sizeof s1));
    if ((st = check_lengths(ql, "query_lengths", a->N, a->L, "L", err)) ||
        (st = check_lengths(kl, "key_lengths", a->N, a->S, "S", err)))
        return st;
    a->attn_mask = mask ? mask->data : NULL;
    a->query_lengths = ql ? ql->data : NULL;
    a->key_lengths = kl ? kl->data : NULL;
    attn__qkv_prepare(a);
    return ATTN_OK;
}

static bool same_shape(const attn_tensor *t, int rank, const int64_t *shape) {
    if (t->dtype != ATTN_F32 || t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->shape[i] != shape[i]) return false;
    return true;
}

static attn_status into_shape_err(const attn_tensor *t, int rank, const int64_t *shape, attn_error *err) {
    char s1[96], s2[96];
    return attn__err(err, ATTN_E_SHAPE, "output tensor is %s %s; the output is FP32 %s", attn_dtype_name(t->dtype),
                     attn_shape_str(t->rank, t->shape, s1, sizeof s1), attn_shape_str(rank, shape, s2, sizeof s2));
}

/* The shared input reading of qkv mechanisms: queries, keys, values and
 * the masks into an argument block. */
static attn_status qkv_read(const attn_model *m, const attn_tensor_set *in, attn_qkv *a,
                            attn_error *err) {
    const attn_tensor *q, *k, *v;
    attn_status st;
    if ((st = attn__input(m, in, "queries", &q, err)) || (st = attn__input(m, in, "keys", &k, err)) ||
        (st = attn__input(m, in, "values", &v, err)))
        return st;
    *a = (attn_qkv){.N = q->shape[0], .L = q->shape[1], .H = q->shape[2], .E = q->shape[3],
                    .S = k->shape[1], .D = v->shape[3], .q = q->data, .k = k->data, .v = v->data};
    char s1[96], s2[96];
    if (k->shape[0] != a->N || k->shape[2] != a->H || k->shape[3] != a->E)
        return attn__err(err, ATTN_E_SHAPE, "keys %s must be (N,S,H,E) matching queries %s",
                         attn_shape_str(4, k->shape, s1, sizeof s1), attn_shape_str(4, q->shape, s2, sizeof s2));
    if (v->shape[0] != a->N || v->shape[1] != a->S || v->shape[2] != a->H)
        return attn__err(err, ATTN_E_SHAPE, "values %s must be (N,S,H,D) matching keys %s",
                         attn_shape_str(4, v->shape, s1, sizeof s1), attn_shape_str(4, k->shape, s2, sizeof s2));
    return attn__qkv_read_masks(m, in, a, err);
}

attn_status attn__model_workspace_qkv(const attn_model *m, const attn_qkv *a, int threads,
                                      size_t *bytes, attn_error *err) {
    *bytes = 0;
    if (!m->mech->forward_qkv)
        return attn__err(err, ATTN_E_INTERNAL, "%s is not an inner attention", m->mech->info.name);
    return m->mech->workspace_qkv ? m->mech->workspace_qkv(m->state, a, threads, bytes, err) : ATTN_OK;
}

attn_status attn__model_forward_qkv(const attn_model *m, attn_ctx *ctx, const attn_qkv *a,
                                    float *out, void *ws, attn_error *err) {
    if (!m->mech->forward_qkv)
        return attn__err(err, ATTN_E_INTERNAL, "%s is not an inner attention", m->mech->info.name);
    return m->mech->forward_qkv(m->state, ctx, a, out, ws, err);
}

/* INT32 tensors given for INT64 inputs are widened into a shadow set of
 * views plus converted copies, so mechanisms only ever see INT64. */
static attn_status widen_inputs(const attn_model *m, const attn_tensor_set *in, attn_tensor_set **shadow,
                                attn_error *err) {
    *shadow = NULL;
    bool need = false;
    for (size_t i = 0; i < m->n_inputs; i++) {
        const attn_tensor *t = attn_tensor_set_get(in, m->inputs[i].name);
        need |= t && m->inputs[i].dtype == ATTN_I64 && t->dtype == ATTN_I32;
    }
    if (!need) return ATTN_OK;
    attn_tensor_set *s = attn_tensor_set_new();
    if (!s) return attn__err(err, ATTN_E_NOMEM, "out of memory");
    attn_status st = ATTN_OK;
    for (size_t i = 0; i < m->n_inputs && !st; i++) {
        const attn_tensor *t = attn_tensor_set_get(in, m->inputs[i].name);
        if (!t) continue;
        attn_tensor *c;
        if (m->inputs[i].dtype == ATTN_I64 && t->dtype == ATTN_I32) {
            st = attn_tensor_new(ATTN_I64, t->rank, t->shape, &c, err);
            if (!st)
                for (size_t j = 0; j < t->numel; j++) ((int64_t *)c->data)[j] = ((const int32_t *)t->data)[j];
        } else {
            st = attn_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &c, err);
        }
        if (!st) st = attn_tensor_set_add(s, m->inputs[i].name, c, err);
    }
    if (st) {
        attn_tensor_set_free(s);
        return st;
    }
    *shadow = s;
    return ATTN_OK;
}

/* One forward, planned: the (widened) inputs, the output shape and
 * workspace size for the call's threads, and for qkv mechanisms the
 * argument block. */
typedef struct fwd {
    attn_tensor_set *shadow; /* owned: widened INT32 lengths, or NULL */
    const attn_tensor_set *in;
    attn_plan p;
    attn_qkv a;
} fwd;

static attn_status fwd_plan(const attn_model *m, const attn_tensor_set *inputs, int threads, fwd *f,
                            attn_error *err) {
    memset(f, 0, sizeof *f);
    attn_status st = widen_inputs(m, inputs, &f->shadow, err);
    if (st) return st;
    f->in = f->shadow ? f->shadow : inputs;
    if (m->mech->plan) return m->mech->plan(m, m->state, f->in, threads, &f->p, err);
    if ((st = qkv_read(m, f->in, &f->a, err))) return st;
    f->p.rank = 4;
    memcpy(f->p.shape, (int64_t[]){f->a.N, f->a.L, f->a.H, f->a.D}, 4 * sizeof(int64_t));
    return attn__model_workspace_qkv(m, &f->a, threads, &f->p.ws_bytes, err);
}

static attn_status fwd_run(const attn_model *m, attn_ctx *ctx, const fwd *f, float *out, void *ws,
                           attn_error *err) {
    if (m->mech->forward) return m->mech->forward(m, m->state, ctx, f->in, out, ws, err);
    return m->mech->forward_qkv(m->state, ctx, &f->a, out, ws, err);
}

/* The status every public forward ends with: cancellation wins, and err
 * always names the status returned. */
static attn_status fwd_end(fwd *f, attn_ctx *ctx, attn_status st, attn_error *err) {
    attn_tensor_set_free(f->shadow);
    if (!st && attn__cancelled(ctx)) st = attn__err(err, ATTN_E_CANCELLED, "cancelled");
    if (st && err && err->code != st) attn__err(err, st, "%s%s", attn_status_str(st), attn__fail_detail(st));
    return st;
}

static bool overlaps(const void *p, size_t n, const void *q, size_t k) {
    uintptr_t a0 = (uintptr_t)p, b0 = (uintptr_t)q;
    return n && k && a0 < b0 + k && b0 < a0 + n;
}

/* Does t's memory overlap any tensor of the set? */
static bool overlaps_any(const void *p, size_t n, const attn_tensor_set *in) {
    for (size_t i = 0; i < attn_tensor_set_count(in); i++) {
        const attn_tensor *u = attn_tensor_set_at(in, i);
        if (overlaps(p, n, u->data, u->nbytes)) return true;
    }
    return false;
}

attn_status attn_model_workspace_size(const attn_model *m, const attn_tensor_set *inputs, int threads,
                                      size_t *bytes, attn_error *err) {
    if (!m || !inputs || !bytes) return attn__err(err, ATTN_E_INVALID, "workspace_size: NULL argument");
    fwd f;
    attn_status st = fwd_plan(m, inputs, threads < 1 ? 1 : threads, &f, err);
    *bytes = st ? 0 : f.p.ws_bytes;
    return fwd_end(&f, NULL, st, err);
}

attn_status attn_model_forward(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                               attn_tensor **output, attn_error *err) {
    if (!m || !inputs || !output) return attn__err(err, ATTN_E_INVALID, "forward: NULL argument");
    *output = NULL;
    fwd f;
    attn_tensor *o = NULL;
    void *ws = NULL;
    attn_status st = fwd_plan(m, inputs, attn_ctx_threads(ctx), &f, err);
    if (!st) st = attn__tensor_new_uninit(ATTN_F32, f.p.rank, f.p.shape, &o, err);
    if (!st) st = attn__ws_alloc(f.p.ws_bytes, &ws, err);
    if (!st) st = fwd_run(m, ctx, &f, o->data, ws, err);
    attn__ws_free(ws, f.p.ws_bytes);
    st = fwd_end(&f, ctx, st, err);
    if (st) attn_tensor_free(o);
    else *output = o;
    return st;
}

/* forward_into and forward_ws: into the caller's tensor, with the caller's
 * workspace when `user_ws`.  The one case computed aside and copied is an
 * output overlapping an input, unless the mechanism writes over its
 * queries safely (out_may_alias_queries) and they are exactly the output. */
static attn_status forward_into(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                attn_tensor *output, bool user_ws, void *ws, size_t ws_bytes,
                                attn_error *err) {
    if (!m || !inputs || !output) return attn__err(err, ATTN_E_INVALID, "forward: NULL argument");
    fwd f;
    void *own_ws = NULL, *aside = NULL;
    attn_status st = fwd_plan(m, inputs, attn_ctx_threads(ctx), &f, err);
    if (st) goto out;
    if (!same_shape(output, f.p.rank, f.p.shape)) {
        st = into_shape_err(output, f.p.rank, f.p.shape, err);
        goto out;
    }
    if (user_ws) {
        if (ws_bytes < f.p.ws_bytes)
            st = attn__err(err, ATTN_E_INVALID, "workspace of %zu bytes is smaller than the %zu this forward needs",
                           ws_bytes, f.p.ws_bytes);
        else if (ws_bytes && (!ws || (uintptr_t)ws % ATTN_WS_ALIGN))
            st = attn__err(err, ATTN_E_INVALID, "workspace must be %d-byte aligned", ATTN_WS_ALIGN);
        else if (overlaps(ws, ws_bytes, output->data, output->nbytes) || overlaps_any(ws, ws_bytes, f.in))
            st = attn__err(err, ATTN_E_INVALID, "workspace overlaps the output or an input");
        if (st) goto out;
    } else if ((st = attn__ws_alloc(f.p.ws_bytes, &own_ws, err))) {
        goto out;
    } else {
        ws = own_ws;
    }
    const attn_tensor *q = m->mech->forward ? NULL : attn_tensor_set_get(f.in, "queries");
    bool in_place = q && m->mech->out_may_alias_queries && output->data == q->data && f.a.E == f.a.D;
    float *dst = output->data;
    if (!in_place && overlaps_any(output->data, output->nbytes, f.in)) {
        if ((st = attn__ws_alloc(output->nbytes, &aside, err))) goto out;
        dst = aside;
    }
    st = fwd_run(m, ctx, &f, dst, ws, err);
    if (!st && aside) memcpy(output->data, aside, output->nbytes);
out:
    attn__ws_free(aside, output->nbytes);
    attn__ws_free(own_ws, f.p.ws_bytes);
    return fwd_end(&f, ctx, st, err);
}

attn_status attn_model_forward_into(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                    attn_tensor *output, attn_error *err) {
    return forward_into(m, ctx, inputs, output, false, NULL, 0, err);
}

attn_status attn_model_forward_ws(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                  attn_tensor *output, void *ws, size_t ws_bytes, attn_error *err) {
    return forward_into(m, ctx, inputs, output, true, ws, ws_bytes, err);
}

/* ---- optional outputs (the attention maps) ---- */

/* "output, attention, attention_areas" into buf. */
static const char *output_list(const attn_model *m, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < attn_model_num_outputs(m) && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", m->outputs[i].name);
    return buf;
}

static bool is_attention_family(const char *name) {
    return strcmp(name, "attention") == 0 || strncmp(name, "attention_", 10) == 0;
}

/* sel[i] = 1 for every optional output i that `names` selects. */
static attn_status select_outputs(const attn_model *m, const char *const *names, size_t n, unsigned char *sel,
                                  attn_error *err) {
    memset(sel, 0, MAX_OUTPUTS);
    if (n && !names) return attn__err(err, ATTN_E_INVALID, "outputs: NULL names");
    for (size_t k = 0; k < n; k++) {
        const char *name = names[k];
        if (!name) return attn__err(err, ATTN_E_INVALID, "outputs: NULL name");
        bool hit = false;
        for (size_t i = 0; i < attn_model_num_outputs(m); i++) {
            bool all = i > 0 && strcmp(name, "attention") == 0 && is_attention_family(m->outputs[i].name);
            if (all || strcmp(m->outputs[i].name, name) == 0) sel[i] = 1, hit = true;
        }
        if (!hit) {
            char list[512];
            return attn__err(err, ATTN_E_NOTFOUND, "%s has no output '%.48s'; its outputs: %s", m->mech->info.name,
                             name, output_list(m, list, sizeof list));
        }
    }
    sel[0] = 0; /* always computed, never counted */
    return ATTN_OK;
}

static void qkv_map_shape(const attn_qkv *a, int *rank, int64_t *shape) {
    *rank = 4;
    shape[0] = a->N, shape[1] = a->H, shape[2] = a->L, shape[3] = a->S;
}

attn_status attn__model_maps_shape(const attn_model *m, const attn_qkv *a, size_t i, int *rank, int64_t *shape,
                                   attn_error *err) {
    const attn_maps_ops *ops = m->mech->maps;
    if (!ops || i == 0 || i >= attn_model_num_outputs(m))
        return attn__err(err, ATTN_E_INTERNAL, "%s: no optional output %zu", m->mech->info.name, i);
    if (ops->shape) return ops->shape(m, m->state, NULL, a, i, rank, shape, err);
    qkv_map_shape(a, rank, shape);
    return ATTN_OK;
}

attn_status attn__model_maps_qkv(const attn_model *m, attn_ctx *ctx, const attn_qkv *a, float *const *maps,
                                 attn_error *err) {
    const attn_maps_ops *ops = m->mech->maps;
    if (!ops || !ops->qkv) return attn__err(err, ATTN_E_INTERNAL, "%s forms no attention maps", m->mech->info.name);
    return ops->qkv(m, m->state, ctx, a, maps, err);
}

bool attn__maps_any(const attn_model *m, float *const *maps) {
    for (size_t i = 1; maps && i < attn_model_num_outputs(m); i++)
        if (maps[i]) return true;
    return false;
}

/* Output i's shape for a planned forward f. */
static attn_status output_shape(const attn_model *m, const fwd *f, size_t i, int *rank, int64_t *shape,
                                attn_error *err) {
    if (i == 0) {
        *rank = f->p.rank;
        memcpy(shape, f->p.shape, sizeof f->p.shape);
        return ATTN_OK;
    }
    const attn_maps_ops *ops = m->mech->maps;
    if (!ops) return attn__err(err, ATTN_E_INTERNAL, "%s: no optional output %zu", m->mech->info.name, i);
    if (m->mech->forward) {
        if (!ops->shape || !ops->forward)
            return attn__err(err, ATTN_E_INTERNAL, "%s: map functions missing", m->mech->info.name);
        return ops->shape(m, m->state, f->in, NULL, i, rank, shape, err);
    }
    return attn__model_maps_shape(m, &f->a, i, rank, shape, err);
}

attn_status attn_model_output_shape(const attn_model *m, const attn_tensor_set *inputs, const char *name,
                                    int *rank, int64_t shape[ATTN_MAX_RANK], size_t *numel, attn_error *err) {
    if (!m || !inputs || !name || !rank || !shape)
        return attn__err(err, ATTN_E_INVALID, "output_shape: NULL argument");
    int idx = attn_model_output_index(m, name);
    if (idx < 0) {
        char list[512];
        return attn__err(err, ATTN_E_NOTFOUND, "%s has no output '%.48s'; its outputs: %s", m->mech->info.name, name,
                         output_list(m, list, sizeof list));
    }
    fwd f;
    size_t n = 0;
    attn_status st = fwd_plan(m, inputs, 1, &f, err);
    if (!st) st = output_shape(m, &f, (size_t)idx, rank, shape, err);
    if (!st) st = attn_shape_numel(*rank, shape, sizeof(float), &n, err);
    if (numel) *numel = st ? 0 : n;
    return fwd_end(&f, NULL, st, err);
}

attn_status attn_model_output_elements(const attn_model *m, const attn_tensor_set *inputs,
                                       const char *const *names, size_t n_names, size_t *numel, attn_error *err) {
    if (!m || !inputs || !numel) return attn__err(err, ATTN_E_INVALID, "output_elements: NULL argument");
    *numel = 0;
    unsigned char sel[MAX_OUTPUTS];
    attn_status st = select_outputs(m, names, n_names, sel, err);
    if (st) return st;
    fwd f;
    size_t total = 0;
    st = fwd_plan(m, inputs, 1, &f, err);
    for (size_t i = 1; !st && i < attn_model_num_outputs(m); i++) {
        if (!sel[i]) continue;
        int rank;
        int64_t shape[ATTN_MAX_RANK];
        size_t n;
        if (!(st = output_shape(m, &f, i, &rank, shape, err)) &&
            !(st = attn_shape_numel(rank, shape, sizeof(float), &n, err)) && !attn__add(total, n, &total))
            st = attn__err(err, ATTN_E_OVERFLOW, "%s: the selected outputs have more than SIZE_MAX elements",
                           m->mech->info.name);
    }
    if (!st) *numel = total;
    return fwd_end(&f, NULL, st, err);
}

attn_status attn_model_forward_outputs(const attn_model *m, attn_ctx *ctx, const attn_tensor_set *inputs,
                                       const char *const *names, size_t n_names, attn_tensor_set **out,
                                       attn_error *err) {
    if (!m || !inputs || !out) return attn__err(err, ATTN_E_INVALID, "forward: NULL argument");
    *out = NULL;
    unsigned char sel[MAX_OUTPUTS];
    attn_status st = select_outputs(m, names, n_names, sel, err);
    if (st) return st;
    const size_t n_out = attn_model_num_outputs(m);
    attn_tensor *t[MAX_OUTPUTS] = {0};
    float *maps[MAX_OUTPUTS] = {0};
    bool any = false;
    void *ws = NULL;
    fwd f;
    attn_tensor_set *res = NULL;
    st = fwd_plan(m, inputs, attn_ctx_threads(ctx), &f, err);
    for (size_t i = 0; !st && i < n_out; i++) {
        if (i && !sel[i]) continue;
        int rank;
        int64_t shape[ATTN_MAX_RANK];
        if (!(st = output_shape(m, &f, i, &rank, shape, err)) &&
            !(st = attn__tensor_new_uninit(ATTN_F32, rank, shape, &t[i], err)) && i)
            maps[i] = t[i]->data, any = true;
    }
    if (!st) st = attn__ws_alloc(f.p.ws_bytes, &ws, err);
    if (!st) {
        if (!any)
            st = fwd_run(m, ctx, &f, t[0]->data, ws, err);
        else if (m->mech->forward)
            st = m->mech->maps->forward(m, m->state, ctx, f.in, t[0]->data, ws, maps, err);
        else if (!(st = fwd_run(m, ctx, &f, t[0]->data, ws, err)))
            st = attn__model_maps_qkv(m, ctx, &f.a, maps, err);
    }
    attn__ws_free(ws, f.p.ws_bytes);
    st = fwd_end(&f, ctx, st, err);
    if (!st && !(res = attn_tensor_set_new())) st = attn__err(err, ATTN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n_out; i++) {
        if (!t[i]) continue;
        if (st) attn_tensor_free(t[i]);
        else st = attn_tensor_set_add(res, m->outputs[i].name, t[i], err); /* steals t[i] */
    }
    if (st) {
        attn_tensor_set_free(res);
        return st;
    }
    *out = res;
    return ATTN_OK;
}
