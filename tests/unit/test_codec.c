/* test_codec.c — the wire codec (server/codec_*.c) without a socket: a JSON
 * request's header (names, datatypes, shapes, parameters, outputs asked
 * for) and its decoded data; the binary framing (sizes that must add up);
 * FP16 inputs; unknown keys and bad shapes refused with 400 and a message;
 * and the multi-output response: JSON and binary outputs in order, binary
 * data after the JSON part in output order with the last FP32 one sent from
 * its own memory, FP16 / BF16 outputs at 2 bytes an element.  Links the
 * codec's server objects (Makefile). */
#include "test_util.h"

#include <jansson.h>

#include "../../server/codec.h"

static void setup_cfg(void) {
    svc_cfg = svc_config_defaults();
}

/* The wire borrows its body: the bodies live until the end (free_bodies). */
static char *bodies[32];
static size_t n_bodies;

static int parse(const char *text, long hlen, size_t len, svc_wire *w, svc_err *e) {
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    assert_true(n_bodies < sizeof bodies / sizeof *bodies);
    bodies[n_bodies++] = buf;
    memcpy(buf, text, len);
    buf[len] = 0;
    return svc_wire_parse(buf, len, hlen, w, e);
}

static int free_bodies(void **st) {
    (void)st;
    while (n_bodies) free(bodies[--n_bodies]);
    return 0;
}

static void json_request(void **st) {
    (void)st;
    setup_cfg();
    const char *req = "{\"id\":\"r1\",\"parameters\":{\"sequence_id\":7},\"inputs\":["
                      "{\"name\":\"queries\",\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[1.5,-2]},"
                      "{\"name\":\"m\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]}],"
                      "\"outputs\":[{\"name\":\"attention\",\"parameters\":{\"binary_data\":true,\"datatype\":\"FP16\"}}]}";
    svc_wire w = {0};
    svc_err e = {0};
    assert_int_equal(parse(req, -1, strlen(req), &w, &e), 0);
    assert_string_equal(w.id, "r1");
    assert_int_equal(json_integer_value(json_object_get(w.params, "sequence_id")), 7);
    assert_int_equal(w.n_in, 2);
    assert_string_equal(w.in[0].name, "queries");
    assert_int_equal(w.in[0].rank, 2);
    assert_int_equal(w.in[0].numel, 2);
    assert_int_equal(w.n_out, 1);
    assert_string_equal(w.out[0].name, "attention");
    assert_int_equal(w.out[0].binary, 1);
    assert_int_equal(w.out[0].half, SVC_HALF_F16);
    attn_tensor *t = NULL;
    assert_int_equal(svc_wire_decode(&w.in[0], 0, &t, &e), 0);
    assert_true(((float *)t->data)[0] == 1.5f && ((float *)t->data)[1] == -2.0f);
    attn_tensor_free(t);
    assert_int_equal(svc_wire_decode(&w.in[1], 0, &t, &e), 0);
    assert_int_equal(t->dtype, ATTN_BOOL);
    assert_true(((uint8_t *)t->data)[0] == 1 && ((uint8_t *)t->data)[1] == 0);
    attn_tensor_free(t);
    svc_wire_free(&w);
}

static void refusals(void **st) {
    (void)st;
    setup_cfg();
    static const struct {
        const char *req, *msg;
    } bad[] = {
        {"{\"inputs\":[],\"extra\":1}", "extra"},
        {"{\"inputs\":[{\"name\":\"q\",\"datatype\":\"FP64\",\"shape\":[1],\"data\":[1]}]}", "FP64"},
        {"{\"inputs\":[{\"name\":\"q\",\"datatype\":\"FP32\",\"shape\":[-1],\"data\":[1]}]}", "negative dimension"},
        {"{\"inputs\":[{\"name\":\"q\",\"datatype\":\"FP32\",\"shape\":[3],\"data\":[1]}]}", NULL},
        {"not json", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        svc_wire w = {0};
        svc_err e = {0};
        int s = parse(bad[i].req, -1, strlen(bad[i].req), &w, &e);
        attn_tensor *t = NULL;
        if (s == 0 && w.n_in) s = svc_wire_decode(&w.in[0], 0, &t, &e); /* the data's count is checked there */
        if (s != 400) fail_msg("case %zu: status %d (%s)", i, s, e.msg);
        if (bad[i].msg && !strstr(e.msg, bad[i].msg)) fail_msg("case %zu: message '%s'", i, e.msg);
        attn_tensor_free(t);
        svc_wire_free(&w);
    }
}

static void binary_framing(void **st) {
    (void)st;
    setup_cfg();
    const char *h = "{\"inputs\":[{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[2],\"parameters\":{\"binary_data_size\":8}},"
                    "{\"name\":\"b\",\"datatype\":\"FP16\",\"shape\":[2],\"parameters\":{\"binary_data_size\":4}}]}";
    size_t hl = strlen(h);
    char body[512];
    memcpy(body, h, hl);
    float a[2] = {3.25f, -1};
    uint16_t b[2] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
    memcpy(body + hl, a, 8);
    memcpy(body + hl + 8, b, 4);
    svc_wire w = {0};
    svc_err e = {0};
    assert_int_equal(parse(body, (long)hl, hl + 12, &w, &e), 0);
    attn_tensor *t = NULL;
    assert_int_equal(svc_wire_decode(&w.in[1], 0, &t, &e), 0);
    assert_int_equal(t->dtype, ATTN_F32); /* FP16 on the wire, float32 from the decoder on */
    assert_true(((float *)t->data)[0] == 1.0f && ((float *)t->data)[1] == -2.0f);
    attn_tensor_free(t);
    svc_wire_free(&w);
    /* sizes that do not add up to the bytes after the header */
    memset(&w, 0, sizeof w);
    assert_int_equal(parse(body, (long)hl, hl + 11, &w, &e), 400);
    svc_wire_free(&w);
}

static attn_tensor *vec(int64_t n, float base) {
    attn_tensor *t = NULL;
    int64_t sh[1] = {n};
    assert_int_equal(attn_tensor_new(ATTN_F32, 1, sh, &t, NULL), ATTN_OK);
    for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = base + (float)i;
    return t;
}

static void multi_output_response(void **st) {
    (void)st;
    setup_cfg();
    svc_wire_result res = {.model_name = "m", .model_version = "1", .params_json = "{\"sequence_id\":3}"};
    /* JSON output, then two binary ones: FP16 (converted into the body) and FP32 (the tail) */
    svc_wire_out o[3] = {{"output", vec(2, 1), 0, SVC_HALF_NONE},
                         {"attention", vec(3, 10), 1, SVC_HALF_F16},
                         {"attention_areas", vec(4, 20), 1, SVC_HALF_NONE}};
    svc_reply r;
    svc_reply_init(&r);
    svc_wire_encode_outputs(&res, o, 3, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/octet-stream");
    assert_true(r.header_len > 0 && (size_t)r.header_len == r.len - 3 * 2); /* the FP16 bytes follow the JSON */
    json_t *j = json_loadb(r.body, (size_t)r.header_len, 0, NULL);
    assert_non_null(j);
    json_t *outs = json_object_get(j, "outputs");
    assert_int_equal(json_array_size(outs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(outs, 0), "name")), "output");
    assert_int_equal(json_array_size(json_object_get(json_array_get(outs, 0), "data")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(outs, 1), "datatype")), "FP16");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(outs, 1), "parameters"),
                                                        "binary_data_size")), 6);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(outs, 2), "parameters"),
                                                        "binary_data_size")), 16);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "parameters"), "sequence_id")), 3);
    json_decref(j);
    uint16_t h[3];
    memcpy(h, r.body + r.header_len, 6);
    assert_true(h[0] == 0x4900 && h[1] == 0x4980 && h[2] == 0x4a00); /* 10, 11, 12 in FP16 */
    assert_non_null(r.tail);                                       /* the last FP32 output, not copied */
    assert_true(r.tail->numel == 4 && ((float *)r.tail->data)[3] == 23.0f);
    svc_reply_clear(&r);
    /* all JSON */
    svc_wire_out p[2] = {{"output", vec(1, 5), 0, SVC_HALF_NONE}, {"attention", vec(1, 0.5f), 0, SVC_HALF_BF16}};
    svc_wire_encode_outputs(&res, p, 2, &r);
    assert_string_equal(r.ctype, "application/json");
    assert_null(r.tail);
    assert_non_null(strstr(r.body, "\"datatype\":\"BF16\""));
    svc_reply_clear(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_request),
        cmocka_unit_test(refusals),
        cmocka_unit_test(binary_framing),
        cmocka_unit_test(multi_output_response),
    };
    return cmocka_run_group_tests(tests, NULL, free_bodies);
}
