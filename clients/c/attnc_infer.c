/*
 * attnc_infer.c — inference requests and responses: the JSON header, the
 * binary tensor data extension (raw bytes after the header, in input
 * order), and JSON data arrays for servers or callers that want them.
 *
 * Nothing in a response is trusted: every output's datatype, shape, byte
 * count and position in the body is checked before it is copied out.
 */
#include "attnc_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct attnc_result {
    char *model_name;
    char *id;
    char *parameters; /* compact JSON text, or NULL */
    size_t n;
    attnc_tensor *t; /* t[i].name and t[i].data are owned (malloc) */
};

static const char *const DTYPE_NAMES[] = {"FP32", "BOOL", "INT32", "INT64", "FP16", "BF16"};
static const size_t DTYPE_SIZES[] = {4, 1, 4, 8, 2, 2};
#define N_DTYPES 6

const char *attnc_dtype_name(attnc_dtype t) {
    return (unsigned)t < N_DTYPES ? DTYPE_NAMES[t] : "?";
}

size_t attnc_dtype_size(attnc_dtype t) { return (unsigned)t < N_DTYPES ? DTYPE_SIZES[t] : 0; }

/* ---- 16-bit floats ---- */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f16_of(float f) {
    uint32_t x = bits_of(f), ax = x & 0x7fffffffu;
    uint16_t s = (uint16_t)((x >> 16) & 0x8000u);
    if (ax > 0x7f800000u) return (uint16_t)(s | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);
    if (ax >= 0x38800000u) {
        uint32_t r = (ax - (112u << 23)) >> 13, rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
        return (uint16_t)(s | r);
    }
    uint32_t e = ax >> 23, shift = 126 - e;
    if (e == 0 || shift > 24) return s;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u, r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(s | r);
}

static float f16_value(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return float_of(s | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e) return float_of(s | ((e + 112) << 23) | (m << 13));
    float v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
    return s ? -v : v;
}

static uint16_t bf16_of(float f) {
    uint32_t x = bits_of(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void attnc_f32_to_f16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_of(in[i]);
}
void attnc_f16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_value(in[i]);
}
void attnc_f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bf16_of(in[i]);
}
void attnc_bf16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_of((uint32_t)in[i] << 16);
}

static int dtype_parse(const char *s, attnc_dtype *out) {
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, DTYPE_NAMES[i])) {
            *out = (attnc_dtype)i;
            return 0;
        }
    return -1;
}

/* numel and bytes of a shape, -1 on a bad dimension or overflow. */
static int shape_size(int rank, const int64_t *shape, size_t elem, size_t *numel, size_t *nbytes) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX) return -1;
        size_t d = (size_t)shape[i];
        if (d && n > SIZE_MAX / d) return -1;
        n *= d;
    }
    if (elem && n > SIZE_MAX / elem) return -1;
    *numel = n;
    *nbytes = n * elem;
    return 0;
}

static attnc_status check_input(const attnc_tensor *t, size_t i, attnc_error *err) {
    if (!t->name || !*t->name) return attnc__err(err, ATTNC_E_INVALID, 0, "input %zu has no name", i);
    if (!attnc_dtype_size(t->dtype))
        return attnc__err(err, ATTNC_E_INVALID, 0, "input '%s': unknown dtype %d", t->name, (int)t->dtype);
    if (t->rank < 0 || t->rank > ATTNC_MAX_RANK)
        return attnc__err(err, ATTNC_E_INVALID, 0, "input '%s': rank %d outside 0..%d", t->name,
                          t->rank, ATTNC_MAX_RANK);
    size_t numel, nbytes;
    if (shape_size(t->rank, t->shape, attnc_dtype_size(t->dtype), &numel, &nbytes))
        return attnc__err(err, ATTNC_E_INVALID, 0, "input '%s': negative dimension or size overflow", t->name);
    if (nbytes != t->nbytes)
        return attnc__err(err, ATTNC_E_INVALID, 0, "input '%s': %zu bytes given, the shape needs %zu",
                          t->name, t->nbytes, nbytes);
    if (nbytes && !t->data) return attnc__err(err, ATTNC_E_INVALID, 0, "input '%s': no data", t->name);
    return ATTNC_OK;
}

/* ---- the request ---- */

static json_t *shape_json(int rank, const int64_t *shape) {
    json_t *a = json_array();
    for (int i = 0; a && i < rank; i++)
        if (json_array_append_new(a, json_integer((json_int_t)shape[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The data of one tensor as a flat JSON array; NULL with *nonfinite set
 * when a float is NaN or infinite (JSON has no such numbers). */
static json_t *data_json(const attnc_tensor *t, int *nonfinite) {
    json_t *a = json_array();
    size_t n = t->nbytes / attnc_dtype_size(t->dtype);
    for (size_t i = 0; a && i < n; i++) {
        json_t *v = NULL;
        switch (t->dtype) {
        case ATTNC_FP32: {
            float f;
            memcpy(&f, (const char *)t->data + 4 * i, 4);
            if (!(v = json_real(f))) *nonfinite = 1;
            break;
        }
        case ATTNC_BOOL: v = json_boolean(((const unsigned char *)t->data)[i] != 0); break;
        case ATTNC_INT32: {
            int32_t x;
            memcpy(&x, (const char *)t->data + 4 * i, 4);
            v = json_integer(x);
            break;
        }
        case ATTNC_INT64: {
            int64_t x;
            memcpy(&x, (const char *)t->data + 8 * i, 8);
            v = json_integer((json_int_t)x);
            break;
        }
        case ATTNC_FP16:
        case ATTNC_BF16: { /* the exact value of the 16-bit number */
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            if (!(v = json_real(t->dtype == ATTNC_FP16 ? f16_value(h) : float_of((uint32_t)h << 16)))) *nonfinite = 1;
            break;
        }
        }
        if (json_array_append_new(a, v)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

#define SET(obj, key, val) (json_object_set_new((obj), (key), (val)) == 0)

static attnc_status build_header(const attnc_tensor *inputs, size_t n, const attnc_infer_opts *o,
                                 char **text, attnc_error *err) {
    *text = NULL;
    json_t *root = json_object(), *params = NULL, *ins = json_array();
    int ok = root && ins, nonfinite = 0;
    if (ok && o->parameters_json) {
        json_error_t je;
        params = json_loads(o->parameters_json, 0, &je);
        if (!json_is_object(params)) {
            json_decref(params);
            json_decref(root);
            json_decref(ins);
            return attnc__err(err, ATTNC_E_INVALID, 0, "parameters must be a JSON object: %s",
                              params ? "not an object" : je.text);
        }
    } else if (ok) {
        params = json_object();
    }
    ok = ok && params && SET(params, "binary_data_output", json_boolean(!o->json));
    if (ok && o->id) ok = SET(root, "id", json_string(o->id));
    if (ok) ok = SET(root, "parameters", params); /* steals params, even on failure */
    else json_decref(params);
    for (size_t i = 0; ok && i < n; i++) {
        const attnc_tensor *t = &inputs[i];
        json_t *in = json_object();
        ok = in && !json_array_append_new(ins, in) && SET(in, "name", json_string(t->name)) &&
             SET(in, "shape", shape_json(t->rank, t->shape)) &&
             SET(in, "datatype", json_string(attnc_dtype_name(t->dtype)));
        if (ok && o->json)
            ok = SET(in, "data", data_json(t, &nonfinite));
        else if (ok)
            ok = SET(in, "parameters", json_pack("{s:I}", "binary_data_size", (json_int_t)t->nbytes));
    }
    if (ok) ok = SET(root, "inputs", ins);
    else json_decref(ins);
    if (ok && o->outputs) {
        json_t *outs = json_array();
        ok = SET(root, "outputs", outs); /* outs stays borrowed from root */
        for (size_t i = 0; ok && i < o->n_outputs; i++) {
            json_t *out = json_object();
            ok = out && !json_array_append_new(outs, out) && o->outputs[i] &&
                 SET(out, "name", json_string(o->outputs[i])) &&
                 SET(out, "parameters", o->output_datatype
                                            ? json_pack("{s:b, s:s}", "binary_data", !o->json, "datatype", o->output_datatype)
                                            : json_pack("{s:b}", "binary_data", !o->json));
        }
    }
    if (ok) ok = (*text = json_dumps(root, JSON_COMPACT)) != NULL;
    json_decref(root);
    if (nonfinite)
        return attnc__err(err, ATTNC_E_INVALID, 0, "JSON cannot carry NaN or infinity: send binary data");
    if (!ok) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory (or a name that is not UTF-8)");
    return ATTNC_OK;
}

/* ---- the response ---- */

void attnc_result_free(attnc_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->t[i].name);
        free((void *)r->t[i].data);
    }
    free(r->t);
    free(r->model_name);
    free(r->id);
    free(r->parameters);
    free(r);
}

size_t attnc_result_count(const attnc_result *r) { return r ? r->n : 0; }

const attnc_tensor *attnc_result_output(const attnc_result *r, size_t i) {
    return r && i < r->n ? &r->t[i] : NULL;
}

const attnc_tensor *attnc_result_find(const attnc_result *r, const char *name) {
    for (size_t i = 0; r && name && i < r->n; i++)
        if (!strcmp(r->t[i].name, name)) return &r->t[i];
    return NULL;
}

const char *attnc_result_model_name(const attnc_result *r) { return r && r->model_name ? r->model_name : ""; }
const char *attnc_result_id(const attnc_result *r) { return r && r->id ? r->id : ""; }
const char *attnc_result_parameters(const attnc_result *r) { return r && r->parameters ? r->parameters : "{}"; }

/* Flattens a (possibly nested) JSON data array into dst; -1 on a wrong
 * element or count. */
static int flatten(json_t *a, attnc_dtype dt, unsigned char *dst, size_t numel, size_t *k, int depth) {
    if (depth > ATTNC_MAX_RANK + 1) return -1;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (json_is_array(v)) {
            if (flatten(v, dt, dst, numel, k, depth + 1)) return -1;
            continue;
        }
        if (*k >= numel) return -1;
        size_t at = *k;
        switch (dt) {
        case ATTNC_FP32: {
            if (!json_is_number(v)) return -1;
            float f = (float)json_number_value(v);
            memcpy(dst + 4 * at, &f, 4);
            break;
        }
        case ATTNC_BOOL:
            if (json_is_boolean(v)) dst[at] = json_is_true(v);
            else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
                dst[at] = (unsigned char)json_integer_value(v);
            else return -1;
            break;
        case ATTNC_INT32: {
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
                return -1;
            int32_t x = (int32_t)json_integer_value(v);
            memcpy(dst + 4 * at, &x, 4);
            break;
        }
        case ATTNC_INT64: {
            if (!json_is_integer(v)) return -1;
            int64_t x = (int64_t)json_integer_value(v);
            memcpy(dst + 8 * at, &x, 8);
            break;
        }
        case ATTNC_FP16:
        case ATTNC_BF16: {
            if (!json_is_number(v)) return -1;
            float f = (float)json_number_value(v);
            uint16_t h = dt == ATTNC_FP16 ? f16_of(f) : bf16_of(f);
            memcpy(dst + 2 * at, &h, 2);
            break;
        }
        }
        (*k)++;
    }
    return 0;
}

static char *dup_or_null(json_t *s) { return json_is_string(s) ? strdup(json_string_value(s)) : NULL; }

#define BAD(...) do { st = attnc__err(err, ATTNC_E_PROTOCOL, res->status, __VA_ARGS__); goto done; } while (0)

static attnc_status decode(const attnc_http *res, attnc_result **out, attnc_error *err) {
    attnc_status st = ATTNC_OK;
    size_t hlen = res->body.len;
    const unsigned char *bin = NULL;
    size_t bin_len = 0, used = 0;
    json_t *root = NULL, *outs;
    json_error_t je = {0};
    attnc_result *r = calloc(1, sizeof *r);
    if (!r) return attnc__err(err, ATTNC_E_NOMEM, res->status, "out of memory");
    if (res->header_len >= 0) {
        if ((size_t)res->header_len > res->body.len)
            BAD("Inference-Header-Content-Length %ld exceeds the body (%zu bytes)", res->header_len, res->body.len);
        hlen = (size_t)res->header_len;
        bin = (const unsigned char *)res->body.p + hlen;
        bin_len = res->body.len - hlen;
    }
    root = json_loadb(res->body.p ? res->body.p : "", hlen, 0, &je);
    if (!json_is_object(root)) BAD("the response header is not a JSON object: %s", root ? "" : je.text);
    outs = json_object_get(root, "outputs");
    if (!json_is_array(outs)) BAD("the response has no outputs array");
    r->model_name = dup_or_null(json_object_get(root, "model_name"));
    r->id = dup_or_null(json_object_get(root, "id"));
    json_t *rp = json_object_get(root, "parameters");
    if (json_is_object(rp) && !(r->parameters = json_dumps(rp, JSON_COMPACT))) BAD("out of memory");
    if (json_array_size(outs) && !(r->t = calloc(json_array_size(outs), sizeof *r->t)))
        BAD("out of memory");
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
        attnc_tensor *t = &r->t[i];
        json_t *name = json_object_get(o, "name"), *dt = json_object_get(o, "datatype"),
               *shape = json_object_get(o, "shape"), *p = json_object_get(o, "parameters"),
               *data = json_object_get(o, "data"),
               *bds = json_is_object(p) ? json_object_get(p, "binary_data_size") : NULL;
        if (!json_is_string(name) || !json_is_string(dt) || !json_is_array(shape))
            BAD("outputs[%zu] needs name, datatype and shape", i);
        if (!(t->name = strdup(json_string_value(name)))) BAD("out of memory");
        r->n++;
        if (dtype_parse(json_string_value(dt), &t->dtype))
            BAD("output '%s': datatype %.16s is not supported", t->name, json_string_value(dt));
        if (json_array_size(shape) > ATTNC_MAX_RANK) BAD("output '%s': rank above %d", t->name, ATTNC_MAX_RANK);
        t->rank = (int)json_array_size(shape);
        for (int d = 0; d < t->rank; d++) {
            json_t *v = json_array_get(shape, (size_t)d);
            if (!json_is_integer(v) || json_integer_value(v) < 0) BAD("output '%s': bad shape", t->name);
            t->shape[d] = json_integer_value(v);
        }
        size_t numel, nbytes;
        if (shape_size(t->rank, t->shape, attnc_dtype_size(t->dtype), &numel, &nbytes))
            BAD("output '%s': shape too large", t->name);
        void *buf = malloc(nbytes ? nbytes : 1);
        if (!buf) BAD("output '%s': out of memory for %zu bytes", t->name, nbytes);
        t->data = buf;
        t->nbytes = nbytes;
        if (bds) {
            if (!bin) BAD("output '%s': binary_data_size without Inference-Header-Content-Length", t->name);
            if (!json_is_integer(bds) || (uint64_t)json_integer_value(bds) != nbytes)
                BAD("output '%s': binary_data_size does not match its shape (%zu bytes)", t->name, nbytes);
            if (nbytes > bin_len - used) BAD("output '%s': binary data runs past the body", t->name);
            if (nbytes) memcpy(buf, bin + used, nbytes);
            used += nbytes;
        } else {
            size_t k = 0;
            if (!json_is_array(data) || flatten(data, t->dtype, buf, numel, &k, 0) || k != numel)
                BAD("output '%s': data missing or not %zu %s values", t->name, numel, json_string_value(dt));
        }
    }
    if (used != bin_len) BAD("%zu bytes of binary data follow the outputs", bin_len - used);
done:
    json_decref(root);
    if (st != ATTNC_OK) attnc_result_free(r);
    else *out = r;
    return st;
}

/* The names of the outputs a request without `outputs` gets (those its
 * metadata does not mark optional): *names (owned, and each name in it)
 * and *n. */
static attnc_status output_names(attnc_client *c, const char *model, char ***names, size_t *n, attnc_error *err) {
    char *meta = NULL;
    *names = NULL;
    *n = 0;
    attnc_status st = attnc_model_metadata(c, model, &meta, err);
    if (st != ATTNC_OK) return st;
    json_t *root = json_loads(meta, 0, NULL), *outs = json_object_get(root, "outputs");
    free(meta);
    size_t all = json_array_size(outs), k = 0;
    char **a = json_is_array(outs) && all ? calloc(all, sizeof *a) : NULL;
    for (size_t i = 0; a && i < all; i++) {
        json_t *o = json_array_get(outs, i);
        if (json_is_true(json_object_get(o, "optional"))) continue;
        const char *s = json_string_value(json_object_get(o, "name"));
        if (!s || !(a[k++] = strdup(s))) {
            for (size_t j = 0; j < k; j++) free(a[j]);
            free(a);
            a = NULL;
        }
    }
    if (a && !k) {
        free(a);
        a = NULL;
    }
    json_decref(root);
    if (!a) return attnc__err(err, ATTNC_E_PROTOCOL, 0, "model '%.100s': bad output names in its metadata", model);
    *names = a;
    *n = k;
    return ATTNC_OK;
}

static attnc_status infer(attnc_client *c, const char *model, const attnc_tensor *inputs, size_t n,
                          const attnc_infer_opts *o, attnc_result **out, attnc_error *err);

attnc_status attnc_infer(attnc_client *c, const char *model, const attnc_tensor *inputs, size_t n,
                         const attnc_infer_opts *opts, attnc_result **out, attnc_error *err) {
    static const attnc_infer_opts defaults;
    attnc_infer_opts o = opts ? *opts : defaults;
    *out = NULL;
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    if (o.output_datatype && strcmp(o.output_datatype, "FP32") && strcmp(o.output_datatype, "FP16") &&
        strcmp(o.output_datatype, "BF16"))
        return attnc__err(err, ATTNC_E_INVALID, 0, "output_datatype must be FP32, FP16 or BF16");
    const char *rq = c->req_coding, *rs = c->accept_coding;
    if ((o.request_compression_algorithm && attnc__coding(o.request_compression_algorithm, &rq)) ||
        (o.response_compression_algorithm && attnc__coding(o.response_compression_algorithm, &rs)))
        return attnc__err(err, ATTNC_E_INVALID, 0, "compression algorithm must be gzip, deflate or none");
    char **names = NULL;
    size_t n_names = 0;
    if (o.output_datatype && !o.outputs) {
        attnc_status st = output_names(c, model, &names, &n_names, err);
        if (st != ATTNC_OK) return st;
        o.outputs = (const char *const *)names;
        o.n_outputs = n_names;
    }
    c->cur_req_coding = rq;
    c->cur_accept_coding = rs;
    attnc_status st = infer(c, model, inputs, n, &o, out, err);
    c->cur_req_coding = c->cur_accept_coding = NULL;
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    return st;
}

static attnc_status infer(attnc_client *c, const char *model, const attnc_tensor *inputs, size_t n,
                          const attnc_infer_opts *o, attnc_result **out, attnc_error *err) {
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    if (n && !inputs) return attnc__err(err, ATTNC_E_INVALID, 0, "no inputs");
    if (n > SIZE_MAX / sizeof(attnc_seg) - 1) return attnc__err(err, ATTNC_E_INVALID, 0, "too many inputs");
    for (size_t i = 0; i < n; i++) {
        attnc_status st = check_input(&inputs[i], i, err);
        if (st != ATTNC_OK) return st;
    }
    for (size_t i = 0; o->outputs && i < o->n_outputs; i++)
        if (!o->outputs[i] || !*o->outputs[i])
            return attnc__err(err, ATTNC_E_INVALID, 0, "output name %zu is empty", i);
    char *header = NULL, *path = NULL;
    attnc_seg *segs = NULL;
    attnc_status st = build_header(inputs, n, o, &header, err);
    if (st != ATTNC_OK) return st;
    path = attnc__path(c, "/v2/models/", model, "/infer");
    segs = calloc(n + 1, sizeof *segs);
    if (!path || !segs) {
        st = attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
        goto done;
    }
    size_t nseg = 0;
    segs[nseg++] = (attnc_seg){header, strlen(header)};
    for (size_t i = 0; !o->json && i < n; i++) segs[nseg++] = (attnc_seg){inputs[i].data, inputs[i].nbytes};
    long hlen = o->json ? -1 : (long)segs[0].len; /* of the inflated body, with compression */
    unsigned char *z = NULL;
    if (c->cur_req_coding) {
        size_t zlen;
        st = attnc__compress(c->cur_req_coding, segs, nseg, &z, &zlen, err);
        if (st != ATTNC_OK) goto done;
        segs[0] = (attnc_seg){z, zlen};
        nseg = 1;
    }
    attnc_http res;
    st = attnc__request(c, "POST", path, segs, nseg, hlen, &res, err);
    free(z);
    if (st == ATTNC_OK) {
        char what[160];
        snprintf(what, sizeof what, "infer '%.100s'", model);
        if (res.status < 200 || res.status >= 300) st = attnc__http_error(&res, what, err);
        else st = decode(&res, out, err);
    }
    attnc__http_free(&res);
done:
    free(segs);
    free(path);
    free(header);
    return st;
}
