/*
 * codec_json.c — the inference request header, JSON tensor data, and the
 * response.
 *
 * Tensor data never becomes jansson values: json_scan.c finds each input's
 * `data` array and this file converts its tokens straight into the tensor's
 * memory.  Data may be flat, or nested exactly as the shape says; anything
 * in between is refused rather than guessed at.
 */
#include "codec.h"

#include <math.h>
#include <stdio.h>

#include "kernels/half.h"
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 64
#define MAX_ID_LEN 256

static const struct {
    const char *name;
    attn_dtype t;
} dtypes[] = {{"FP32", ATTN_F32}, {"BOOL", ATTN_BOOL}, {"INT32", ATTN_I32}, {"INT64", ATTN_I64}};

static const struct {
    const char *name;
    svc_half h;
} halves[] = {{"FP16", SVC_HALF_F16}, {"BF16", SVC_HALF_BF16}};

const char *svc_half_name(svc_half h) {
    for (size_t i = 0; i < sizeof halves / sizeof *halves; i++)
        if (halves[i].h == h) return halves[i].name;
    return NULL;
}

int svc_wire_datatype_parse(const char *s, attn_dtype *dtype, svc_half *half) {
    *half = SVC_HALF_NONE;
    for (size_t i = 0; i < sizeof halves / sizeof *halves; i++)
        if (strcmp(halves[i].name, s) == 0) {
            *dtype = ATTN_F32;
            *half = halves[i].h;
            return 0;
        }
    return svc_datatype_parse(s, dtype);
}

size_t svc_wire_elem_size(const svc_wire_input *in) { return in->half ? 2 : attn_dtype_size(in->dtype); }

const char *svc_datatype_name(attn_dtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].t == t) return dtypes[i].name;
    return "?";
}

int svc_datatype_parse(const char *s, attn_dtype *out) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dtypes[i].name, s) == 0) {
            *out = dtypes[i].t;
            return 0;
        }
    return -1;
}

void svc_wire_free(svc_wire *w) {
    for (size_t i = 0; w->in && i < w->n_in; i++) free(w->in[i].text_owned);
    free(w->in);
    free(w->out);
    json_decref(w->root);
    memset(w, 0, sizeof *w);
}

/* Refuses a key outside `known` (NULL-terminated): a misspelt or
 * unsupported field (Triton's shared-memory parameters, say) gets 400
 * instead of being ignored. */
static int known_keys(json_t *o, const char *const *known, const char *what, const char *name,
                      svc_err *e) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        (void)v;
        const char *const *n = known;
        while (*n && strcmp(*n, k) != 0) n++;
        if (!*n) {
            return svc_fail(e, 400, "%s%s: unknown field '%.64s'", what, name, k);
        }
    }
    return 0;
}

static const char *const request_keys[] = {"id", "parameters", "inputs", "outputs", NULL};
static const char *const input_keys[] = {"name", "shape", "datatype", "parameters", "data", NULL};
static const char *const input_param_keys[] = {"binary_data_size", NULL};
static const char *const output_keys[] = {"name", "parameters", NULL};
static const char *const output_param_keys[] = {"binary_data", "datatype", NULL};

/* A failure of the request (400), or of our memory (503). */
#define BAD(...)                                                                                   \
    do {                                                                                           \
        svc_fail(e, 400, __VA_ARGS__);                                                             \
        goto bad;                                                                                  \
    } while (0)
#define NOMEM()                                                                                    \
    do {                                                                                           \
        svc_fail(e, 503, "out of memory");                                                         \
        goto bad;                                                                                  \
    } while (0)

static int parse_shape(json_t *js, svc_wire_input *in, svc_err *e) {
    if (!json_is_array(js)) BAD("input '%s': shape must be an array of integers", in->name);
    size_t rank = json_array_size(js);
    int max_rank = svc_cfg.max_rank < ATTN_MAX_RANK ? svc_cfg.max_rank : ATTN_MAX_RANK;
    if (rank > (size_t)max_rank)
        BAD("input '%s': rank %zu exceeds the maximum rank %d", in->name, rank, max_rank);
    in->rank = (int)rank;
    for (size_t d = 0; d < rank; d++) {
        json_t *v = json_array_get(js, d);
        if (!json_is_integer(v)) BAD("input '%s': shape must be an array of integers", in->name);
        json_int_t x = json_integer_value(v);
        if (x < 0) BAD("input '%s': negative dimension %lld", in->name, (long long)x);
        if (x > svc_cfg.max_dim)
            BAD("input '%s': dimension %lld exceeds the maximum %lld", in->name, (long long)x,
                (long long)svc_cfg.max_dim);
        in->shape[d] = x;
    }
    attn_error ae;
    if (attn_shape_numel(in->rank, in->shape, attn_dtype_size(in->dtype), &in->numel, &ae) != ATTN_OK)
        BAD("input '%s': %s", in->name, ae.msg);
    if (in->numel > svc_cfg.max_elements) {
        char sb[160];
        BAD("input '%s': shape %s has %zu elements, over the limit of %zu", in->name,
            attn_shape_str(in->rank, in->shape, sb, sizeof sb), in->numel, svc_cfg.max_elements);
    }
    return 0;
bad:
    return e->status;
}

static int parse_input(json_t *ji, size_t idx, const char *body, const svc_span *spans, size_t n_spans,
                       svc_wire_input *in, int has_binary, svc_err *e) {
    if (!json_is_object(ji)) BAD("inputs[%zu] must be an object", idx);
    in->name = json_string_value(json_object_get(ji, "name"));
    if (!in->name || !in->name[0]) BAD("inputs[%zu]: name must be a non-empty string", idx);
    if (strlen(in->name) >= ATTN_NAME_MAX) BAD("inputs[%zu]: name too long", idx);
    in->datatype = json_string_value(json_object_get(ji, "datatype"));
    if (!in->datatype) BAD("input '%s': datatype must be a string", in->name);
    if (svc_wire_datatype_parse(in->datatype, &in->dtype, &in->half) != 0)
        BAD("input '%s': datatype %.32s is not supported (FP32, FP16, BF16, BOOL, INT32, INT64)", in->name,
            in->datatype);
    char label[ATTN_NAME_MAX + 16];
    snprintf(label, sizeof label, "'%s'", in->name);
    if (known_keys(ji, input_keys, "input ", label, e) != 0) return e->status;
    if (parse_shape(json_object_get(ji, "shape"), in, e) != 0) return e->status;
    json_t *params = json_object_get(ji, "parameters");
    json_t *data = json_object_get(ji, "data");
    if (params && !json_is_object(params)) BAD("input '%s': parameters must be an object", in->name);
    if (params && known_keys(params, input_param_keys, "the parameters of input ", label, e) != 0)
        return e->status;
    json_t *bds = params ? json_object_get(params, "binary_data_size") : NULL;
    if (bds) {
        if (!json_is_integer(bds) || json_integer_value(bds) < 0)
            BAD("input '%s': binary_data_size must be a non-negative integer", in->name);
        if (!has_binary)
            BAD("input '%s': binary_data_size needs the Inference-Header-Content-Length header",
                in->name);
        if (data) BAD("input '%s': give either data or binary_data_size, not both", in->name);
        in->is_binary = 1;
        in->bin_len = (size_t)json_integer_value(bds);
        return 0;
    }
    if (!data) BAD("input '%s': no data (and no binary_data_size)", in->name);
    if (!json_is_array(data)) BAD("input '%s': data must be an array", in->name);
    for (size_t s = 0; s < n_spans; s++)
        if (spans[s].input == idx) {
            in->text = body + spans[s].start;
            in->text_len = spans[s].end - spans[s].start;
        }
    if (!in->text) { /* the key was spelled with escapes: jansson holds the data */
        in->text_owned = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!in->text_owned) NOMEM();
        in->text = in->text_owned;
        in->text_len = strlen(in->text_owned);
    }
    /* Every element takes at least two bytes ("1,"): refuse impossible
     * shapes before anything is allocated for them. */
    if (in->numel > in->text_len / 2)
        BAD("input '%s': shape declares %zu elements but data has %s", in->name, in->numel,
            in->text_len <= 2 ? "none" : "fewer");
    return 0;
bad:
    return e->status;
}

static int parse_outputs(json_t *jo, svc_wire *w, svc_err *e) {
    if (!json_is_array(jo)) BAD("outputs must be an array");
    w->n_out = json_array_size(jo);
    if (w->n_out > MAX_INPUTS) BAD("too many outputs requested");
    w->out = calloc(w->n_out ? w->n_out : 1, sizeof *w->out);
    if (!w->out) NOMEM();
    for (size_t i = 0; i < w->n_out; i++) {
        json_t *o = json_array_get(jo, i);
        w->out[i].binary = -1;
        w->out[i].name = json_string_value(json_object_get(o, "name"));
        if (!json_is_object(o) || !w->out[i].name) BAD("outputs[%zu] must be an object with a name", i);
        char label[32];
        snprintf(label, sizeof label, "[%zu]", i);
        if (known_keys(o, output_keys, "outputs", label, e) != 0) return e->status;
        json_t *p = json_object_get(o, "parameters");
        if (p && !json_is_object(p)) BAD("outputs[%zu]: parameters must be an object", i);
        if (p && known_keys(p, output_param_keys, "the parameters of outputs", label, e) != 0)
            return e->status;
        json_t *b = p ? json_object_get(p, "binary_data") : NULL;
        if (b && !json_is_boolean(b)) BAD("outputs[%zu]: binary_data must be true or false", i);
        if (b) w->out[i].binary = json_is_true(b);
        json_t *dt = p ? json_object_get(p, "datatype") : NULL;
        if (dt) {
            const char *ds = json_string_value(dt);
            if (!ds || svc_wire_datatype_parse(ds, &w->out[i].dtype, &w->out[i].half) != 0 ||
                (w->out[i].dtype != ATTN_F32))
                BAD("outputs[%zu]: parameter datatype must be \"FP32\", \"FP16\" or \"BF16\"", i);
            w->out[i].has_datatype = 1;
        }
    }
    return 0;
bad:
    return e->status;
}

static int wire_from_root(svc_wire *w, const char *body, const svc_span *spans, size_t n_spans, int has_binary,
                          svc_err *e);

int svc_wire_parse(const char *body, size_t len, long header_len, svc_wire *w, svc_err *e) {
    svc_span *spans = NULL;
    size_t n_spans = 0;
    memset(w, 0, sizeof *w);
    size_t json_len = len;
    if (header_len >= 0) {
        if ((size_t)header_len > len)
            BAD("Inference-Header-Content-Length %ld exceeds the body (%zu bytes)", header_len, len);
        if (header_len == 0) BAD("a JSON header is required (Inference-Header-Content-Length is 0)");
        json_len = (size_t)header_len;
    }
    int max_data_depth = (svc_cfg.max_rank < ATTN_MAX_RANK ? svc_cfg.max_rank : ATTN_MAX_RANK) + 1;
    if (svc_json_scan(body, json_len, svc_cfg.max_json_depth, max_data_depth, &spans, &n_spans, e) != 0)
        goto bad;
    if (svc_json_load(body, json_len, spans, n_spans, &w->root, e) != 0) goto bad;
    if (wire_from_root(w, body, spans, n_spans, header_len >= 0, e) != 0) goto bad;
    if (header_len >= 0 &&
        svc_wire_bind_binary(w, (const unsigned char *)body + json_len, len - json_len, e) != 0)
        goto bad;
    free(spans);
    return 0;
bad:
    free(spans);
    svc_wire_free(w);
    return e->status;
}

int svc_wire_from_json(json_t *root, svc_wire *w, svc_err *e) {
    memset(w, 0, sizeof *w);
    w->root = root;
    if (!json_is_object(root)) {
        svc_wire_free(w);
        return svc_fail(e, 400, "the request must be an object");
    }
    if (wire_from_root(w, NULL, NULL, 0, 1, e) != 0) {
        svc_wire_free(w);
        return e->status;
    }
    return 0;
}

/* The request description from the parsed document (w->root); the data of
 * JSON inputs lies at spans of body. */
static int wire_from_root(svc_wire *w, const char *body, const svc_span *spans, size_t n_spans, int has_binary,
                          svc_err *e) {
    if (known_keys(w->root, request_keys, "the request", "", e) != 0) goto bad;
    json_t *id = json_object_get(w->root, "id");
    if (id && !json_is_string(id)) BAD("id must be a string");
    if (id && strlen(json_string_value(id)) > MAX_ID_LEN) BAD("id longer than %d bytes", MAX_ID_LEN);
    w->id = id ? json_string_value(id) : NULL;
    w->params = json_object_get(w->root, "parameters");
    if (w->params && !json_is_object(w->params)) BAD("parameters must be an object");
    json_t *bo = w->params ? json_object_get(w->params, "binary_data_output") : NULL;
    if (bo && !json_is_boolean(bo)) BAD("binary_data_output must be true or false");
    w->binary_output = bo && json_is_true(bo);

    json_t *inputs = json_object_get(w->root, "inputs");
    if (!json_is_array(inputs)) BAD("inputs must be an array");
    w->n_in = json_array_size(inputs);
    if (w->n_in > MAX_INPUTS) BAD("too many inputs (%zu)", w->n_in);
    w->in = calloc(w->n_in ? w->n_in : 1, sizeof *w->in);
    if (!w->in) NOMEM();
    for (size_t i = 0; i < w->n_in; i++) {
        if (parse_input(json_array_get(inputs, i), i, body, spans, n_spans, &w->in[i], has_binary, e) != 0)
            goto bad;
        for (size_t j = 0; j < i; j++)
            if (strcmp(w->in[j].name, w->in[i].name) == 0)
                BAD("input '%s' given twice", w->in[i].name);
    }
    json_t *outputs = json_object_get(w->root, "outputs");
    if (outputs && parse_outputs(outputs, w, e) != 0) goto bad;
    return 0;
bad:
    return e->status;
}

/* ---- typed data ---- */

static int ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* A non-finite token: NaN, Infinity, -Infinity, bare or quoted. */
static const char *nonfinite(const char *p, const char *end, float *out) {
    static const struct {
        const char *tok;
        float v;
    } toks[] = {{"NaN", NAN},          {"Infinity", INFINITY},          {"-Infinity", -INFINITY},
                {"\"NaN\"", NAN},      {"\"Infinity\"", INFINITY},      {"\"-Infinity\"", -INFINITY}};
    for (size_t i = 0; i < sizeof toks / sizeof *toks; i++) {
        size_t n = strlen(toks[i].tok);
        if ((size_t)(end - p) >= n && memcmp(p, toks[i].tok, n) == 0) {
            *out = toks[i].v;
            return p + n;
        }
    }
    return NULL;
}

/* A 16-bit value as a double; the infinity next to the largest finite
 * value stands for the overflow threshold's other end (2^16 for FP16, 2^128
 * for BF16), which is what rounding compares against. */
static double half_value(uint16_t h, svc_half kind) {
    float f;
    if (kind == SVC_HALF_F16) f = attn__f16_value(h);
    else {
        uint32_t u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
    }
    if (isinf(f)) return copysign(kind == SVC_HALF_F16 ? 65536.0 : ldexp(1.0, 128), f);
    return f;
}

/* The JSON number token at tok, read as float32 v, rounded to FP16 / BF16
 * (nearest, ties to even) and widened back.  Rounding v is right unless v
 * lies exactly halfway between two 16-bit values while the decimal does
 * not: then the token is read again as a double, which tells the side. */
static float round_half(const char *tok, float v, svc_half kind) {
    uint16_t h = kind == SVC_HALF_F16 ? attn__f16_of(v) : attn__bf16_of(v);
    if (isfinite(v)) {
        double a = half_value(h, kind);
        if (a != v) {
            uint16_t h2 = (uint16_t)(fabs(a) > fabs(v) ? h - 1 : h + 1); /* the neighbour across v */
            double b = half_value(h2, kind);
            if ((double)v * 2 == a + b) {
                double d = strtod(tok, NULL); /* the token ends the number: the body is NUL-terminated */
                if (d != (double)v && fabs(d - b) < fabs(d - a)) h = h2;
            }
        }
    }
    float out;
    if (kind == SVC_HALF_F16) out = attn__f16_value(h);
    else {
        uint32_t u = (uint32_t)h << 16;
        memcpy(&out, &u, 4);
    }
    return out;
}

/* One element at p into slot k of t; returns the end of the token. */
static const char *element(const char *p, const char *end, attn_tensor *t, size_t k, int allow_nf,
                           svc_half half, const char *name, svc_err *e) {
    int ne = 0;
    const char *q;
    switch (t->dtype) {
    case ATTN_F32: {
        float v;
        q = svc_num_f32(p, end, &v, &ne);
        if (!q && ne == SVC_NUM_RANGE && allow_nf) {
            q = svc_num_skip(p, end);
            v = *p == '-' ? -INFINITY : INFINITY;
        }
        if (!q && ne != SVC_NUM_RANGE) q = nonfinite(p, end, &v);
        if (!q) {
            svc_fail(e, 400, "input '%s': element %zu is %s", name, k,
                     ne == SVC_NUM_RANGE ? "out of float32 range" : "not a number");
            return NULL;
        }
        if (half && isfinite(v)) {
            v = round_half(p, v, half);
            if (!allow_nf && !isfinite(v)) {
                svc_fail(e, 400, "input '%s': element %zu is out of %s range", name, k, svc_half_name(half));
                return NULL;
            }
        }
        if (!allow_nf && !isfinite(v)) {
            svc_fail(e, 400,
                     "input '%s': element %zu is not finite (this model does not accept NaN or "
                     "infinities)",
                     name, k);
            return NULL;
        }
        ((float *)t->data)[k] = v;
        return q;
    }
    case ATTN_BOOL: {
        uint8_t b;
        if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0) q = p + 4, b = 1;
        else if ((size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0) q = p + 5, b = 0;
        else if (*p == '0' || *p == '1') q = p + 1, b = (uint8_t)(*p - '0');
        else {
            svc_fail(e, 400, "input '%s': element %zu is not a boolean", name, k);
            return NULL;
        }
        ((uint8_t *)t->data)[k] = b;
        return q;
    }
    case ATTN_I32:
    case ATTN_I64: {
        int64_t v;
        q = svc_num_i64(p, end, &v, &ne);
        if (q && t->dtype == ATTN_I32 && (v < INT32_MIN || v > INT32_MAX)) q = NULL, ne = SVC_NUM_RANGE;
        if (!q) {
            svc_fail(e, 400, "input '%s': element %zu is %s", name, k,
                     ne == SVC_NUM_RANGE ? "out of range" : "not an integer");
            return NULL;
        }
        if (t->dtype == ATTN_I32) ((int32_t *)t->data)[k] = (int32_t)v;
        else ((int64_t *)t->data)[k] = v;
        return q;
    }
    }
    return NULL;
}

int svc_wire_decode(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out, svc_err *e) {
    if (in->is_binary) return svc_wire_decode_binary(in, allow_nonfinite, out, e);
    attn_tensor *t = NULL;
    attn_error ae;
    attn_status s = attn_tensor_new(in->dtype, in->rank, in->shape, &t, &ae);
    if (s != ATTN_OK) {
        char prefix[ATTN_NAME_MAX + 16];
        snprintf(prefix, sizeof prefix, "input '%s': ", in->name);
        return svc_fail_attn(e, s, &ae, 0, prefix);
    }
    const char *p = in->text, *end = in->text + in->text_len;
    size_t k = 0;             /* elements written */
    size_t count[ATTN_MAX_RANK + 2] = {0};
    int depth = 0, leaf_depth = -1, nested = 0;
    int expect_value = 1;     /* after '[' or ',' */
    char sb[160];
    while (p < end) {
        char c = *p;
        if (ws(c)) {
            p++;
            continue;
        }
        if (c == '[') {
            if (!expect_value) BAD("input '%s': malformed data near element %zu", in->name, k);
            if (depth >= 1) {
                count[depth]++;
                nested = 1;
                if (leaf_depth >= 0 && leaf_depth <= depth)
                    BAD("input '%s': data nesting must follow the shape %s", in->name,
                        attn_shape_str(in->rank, in->shape, sb, sizeof sb));
            }
            if (++depth > in->rank + 1 || depth > ATTN_MAX_RANK + 1)
                BAD("input '%s': data nested deeper than the shape %s", in->name,
                    attn_shape_str(in->rank, in->shape, sb, sizeof sb));
            count[depth] = 0;
            p++;
            continue;
        }
        if (c == ']') {
            if (expect_value && count[depth] != 0)
                BAD("input '%s': malformed data near element %zu", in->name, k);
            if (nested && (depth > in->rank || (int64_t)count[depth] != in->shape[depth - 1]))
                BAD("input '%s': nested data does not match the shape %s", in->name,
                    attn_shape_str(in->rank, in->shape, sb, sizeof sb));
            depth--;
            expect_value = 0;
            p++;
            if (depth == 0) break;
            continue;
        }
        if (c == ',') {
            if (expect_value) BAD("input '%s': malformed data near element %zu", in->name, k);
            expect_value = 1;
            p++;
            continue;
        }
        if (!expect_value || depth == 0) BAD("input '%s': malformed data near element %zu", in->name, k);
        if (leaf_depth < 0) leaf_depth = depth;
        if (leaf_depth != depth || (nested && depth != in->rank))
            BAD("input '%s': data nesting must follow the shape %s", in->name,
                attn_shape_str(in->rank, in->shape, sb, sizeof sb));
        if (k >= in->numel)
            BAD("input '%s': data has more than the %zu elements of shape %s", in->name, in->numel,
                attn_shape_str(in->rank, in->shape, sb, sizeof sb));
        p = element(p, end, t, k, allow_nonfinite, in->half, in->name, e);
        if (!p) goto bad;
        k++;
        count[depth]++;
        expect_value = 0;
    }
    if (depth != 0) BAD("input '%s': unterminated data", in->name);
    if (k != in->numel)
        BAD("input '%s': data has %zu elements but shape %s needs %zu", in->name, k,
            attn_shape_str(in->rank, in->shape, sb, sizeof sb), in->numel);
    *out = t;
    return 0;
bad:
    attn_tensor_free(t);
    return e->status;
}

/* ---- response ---- */

static void put_shape(svc_buf *b, const attn_tensor *t) {
    svc_buf_puts(b, "\"shape\":[");
    for (int d = 0; d < t->rank; d++) svc_buf_printf(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    svc_buf_puts(b, "]");
}

/* An FP32 output rounded to FP16 / BF16, in place (the tensor is the
 * reply's own), so that its JSON numbers are the 16-bit values. */
static void round_output(attn_tensor *t, svc_half half) {
    float *f = t->data;
    uint16_t buf[1024];
    for (size_t i = 0; i < t->numel; i += 1024) {
        size_t n = t->numel - i < 1024 ? t->numel - i : 1024;
        if (half == SVC_HALF_F16) {
            attn__f32_to_f16(f + i, buf, n);
            attn__f16_to_f32(buf, f + i, n);
        } else {
            attn__f32_to_bf16(f + i, buf, n);
            attn__bf16_to_f32(buf, f + i, n);
        }
    }
}

static void put_data(svc_buf *b, const attn_tensor *t) {
    size_t room;
    if (__builtin_mul_overflow(t->numel, (size_t)SVC_F32_CHARS + 1, &room) ||
        svc_buf_reserve(b, room + 16) != 0) {
        b->oom = 1;
        return;
    }
    char *o = b->p + b->len;
    *o++ = '[';
    for (size_t i = 0; i < t->numel; i++) {
        if (i) *o++ = ',';
        switch (t->dtype) {
        case ATTN_F32: o += svc_f32_format(o, ((const float *)t->data)[i]); break;
        case ATTN_BOOL:
            o += ((const uint8_t *)t->data)[i] ? (memcpy(o, "true", 4), 4) : (memcpy(o, "false", 5), 5);
            break;
        case ATTN_I32: o += sprintf(o, "%d", ((const int32_t *)t->data)[i]); break;
        case ATTN_I64: o += sprintf(o, "%lld", (long long)((const int64_t *)t->data)[i]); break;
        }
    }
    *o++ = ']';
    b->len = (size_t)(o - b->p);
}

/* Appends t's data converted to `half` (2 bytes an element) to b. */
static void put_half_bytes(svc_buf *b, const attn_tensor *t, svc_half half) {
    size_t nbytes = t->numel * 2; /* less than t->nbytes: no overflow */
    if (svc_buf_reserve(b, nbytes + 1) != 0) return;
    uint16_t *dst = (uint16_t *)(void *)(b->p + b->len); /* used only when 2-byte aligned */
    if ((uintptr_t)dst % 2 == 0) {
        if (half == SVC_HALF_F16) attn__f32_to_f16(t->data, dst, t->numel);
        else attn__f32_to_bf16(t->data, dst, t->numel);
    } else {
        uint16_t tmp[1024];
        for (size_t i = 0; i < t->numel; i += 1024) {
            size_t n = t->numel - i < 1024 ? t->numel - i : 1024;
            if (half == SVC_HALF_F16) attn__f32_to_f16((const float *)t->data + i, tmp, n);
            else attn__f32_to_bf16((const float *)t->data + i, tmp, n);
            memcpy(b->p + b->len + 2 * i, tmp, 2 * n);
        }
    }
    b->len += nbytes;
}

void svc_wire_encode_outputs(const svc_wire_result *res, svc_wire_out *outs, size_t n, svc_reply *reply) {
    svc_buf b = {0};
    svc_reply_clear(reply);
    svc_buf_puts(&b, "{\"model_name\":");
    svc_buf_json_str(&b, res->model_name);
    svc_buf_puts(&b, ",\"model_version\":");
    svc_buf_json_str(&b, res->model_version);
    if (res->id) {
        svc_buf_puts(&b, ",\"id\":");
        svc_buf_json_str(&b, res->id);
    }
    if (res->params_json) {
        svc_buf_puts(&b, ",\"parameters\":");
        svc_buf_puts(&b, res->params_json);
    }
    svc_buf_puts(&b, ",\"outputs\":[");
    /* The binary data follows the JSON part in output order.  The last
     * binary output, when it goes as float32, is sent from its own memory
     * (reply->tail); every other one is copied (or converted) into the body
     * after the JSON part. */
    size_t tail = n;
    int any_binary = 0;
    for (size_t i = 0; i < n; i++) {
        if (outs[i].t->dtype != ATTN_F32) outs[i].half = SVC_HALF_NONE;
        if (outs[i].binary) any_binary = 1, tail = outs[i].half ? n : i;
    }
    for (size_t i = 0; i < n; i++) {
        attn_tensor *t = outs[i].t;
        svc_half half = outs[i].half;
        svc_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        svc_buf_json_str(&b, outs[i].name);
        svc_buf_printf(&b, ",\"datatype\":\"%s\",", half ? svc_half_name(half) : svc_datatype_name(t->dtype));
        put_shape(&b, t);
        if (outs[i].binary) {
            svc_buf_printf(&b, ",\"parameters\":{\"binary_data_size\":%zu}}", half ? t->numel * 2 : t->nbytes);
        } else {
            if (half) round_output(t, half);
            svc_buf_puts(&b, ",\"data\":");
            put_data(&b, t);
            svc_buf_puts(&b, "}");
        }
    }
    svc_buf_puts(&b, "]}");
    size_t header = b.len;
    for (size_t i = 0; i < n; i++) {
        if (!outs[i].binary || i == tail) continue;
        if (outs[i].half) put_half_bytes(&b, outs[i].t, outs[i].half);
        else svc_buf_add(&b, outs[i].t->data, outs[i].t->nbytes);
    }
    reply->body = svc_buf_take(&b, &reply->len);
    for (size_t i = 0; i < n; i++) {
        if (i == tail && reply->body) continue;
        attn_tensor_free(outs[i].t);
        outs[i].t = NULL;
    }
    if (!reply->body) {
        svc_reply_error(reply, 503, "out of memory encoding the response");
        return;
    }
    reply->status = 200;
    if (any_binary) {
        reply->ctype = "application/octet-stream";
        reply->header_len = (long)header;
        if (tail < n) {
            reply->tail = outs[tail].t;
            outs[tail].t = NULL;
        }
    } else {
        reply->ctype = "application/json";
    }
}

void svc_wire_encode(const svc_wire_result *res, attn_tensor *output, svc_reply *reply) {
    svc_wire_out o = {.name = res->output_name, .t = output, .binary = res->binary, .half = res->half};
    svc_wire_encode_outputs(res, &o, 1, reply);
}
