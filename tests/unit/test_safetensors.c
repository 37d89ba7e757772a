/* test_safetensors.c — round trips and hostile files. */
#include "test_util.h"

#include <stdio.h>
#include <unistd.h>

/* Builds a file image: 8-byte length, header text, then `data_len` bytes. */
static unsigned char *image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)(i & 1);
    return b;
}

static attn_status parse(const char *header, size_t data_len, attn_error *e) {
    size_t len;
    unsigned char *b = image(header, data_len, &len);
    attn_tensor_set *s = NULL;
    attn_status st = attn_safetensors_read_mem(b, len, &s, e);
    attn_tensor_set_free(s);
    free(b);
    return st;
}

static void roundtrip_mem_and_file(void **state) {
    (void)state;
    uint64_t seed = 7;
    attn_tensor_set *s = attn_tensor_set_new();
    int64_t a[3] = {2, 3, 5}, b[1] = {3}, c[2] = {3, 3};
    tu_add(s, "zeta", tu_randn(&seed, 3, a));
    attn_tensor *l = tu_lengths(3, (int64_t[]){1, 2, 3});
    tu_add(s, "alpha", l);
    attn_tensor *m = tu_tril(3, 3, 0);
    tu_add(s, "mask", m);
    (void)b;
    (void)c;
    void *buf;
    size_t len;
    assert_int_equal(attn_safetensors_write_mem(s, &buf, &len, NULL), ATTN_OK);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | ((unsigned char *)buf)[i];
    assert_int_equal(hlen % 8, 0); /* header padded so the data stays aligned */
    attn_tensor_set *r = NULL;
    assert_int_equal(attn_safetensors_read_mem(buf, len, &r, NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_count(r), 3);
    const attn_tensor *z = attn_tensor_set_get(r, "zeta");
    assert_non_null(z);
    assert_int_equal(z->rank, 3);
    assert_memory_equal(z->data, attn_tensor_set_get(s, "zeta")->data, z->nbytes);
    assert_memory_equal(attn_tensor_set_get(r, "alpha")->data, l->data, l->nbytes);
    assert_memory_equal(attn_tensor_set_get(r, "mask")->data, m->data, m->nbytes);
    char path[] = "/tmp/attn_test_stXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(attn_safetensors_write_file(s, path, NULL), ATTN_OK);
    attn_tensor_set *f = NULL;
    assert_int_equal(attn_safetensors_read_file(path, &f, NULL), ATTN_OK);
    assert_memory_equal(attn_tensor_set_get(f, "zeta")->data, z->data, z->nbytes);
    assert_int_equal(attn_tensor_set_get(f, "zeta")->owns_data, 0); /* a view into the mapping */
    attn_tensor_set_free(f);
    unlink(path);
    attn_tensor_set_free(r);
    attn_tensor_set_free(s);
    free(buf);
}

static void valid_minimal(void **state) {
    (void)state;
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL), ATTN_OK);
    assert_int_equal(parse("{\"__metadata__\":{\"a\":\"b\"}}", 0, NULL), ATTN_OK);
    /* a misaligned F32 tensor is copied, not viewed */
    assert_int_equal(parse("{\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
                           "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}",
                           5, NULL),
                     ATTN_OK);
}

static void hostile_files(void **state) {
    (void)state;
    attn_error e = {0};
    attn_tensor_set *s = NULL;
    unsigned char tiny[4] = {0};
    assert_int_equal(attn_safetensors_read_mem(tiny, sizeof tiny, &s, &e), ATTN_E_FORMAT);
    /* header length larger than the file */
    unsigned char lie[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    assert_int_equal(attn_safetensors_read_mem(lie, sizeof lie, &s, &e), ATTN_E_FORMAT);
    assert_int_equal(parse("{not json", 0, &e), ATTN_E_FORMAT);
    assert_int_equal(parse("[1,2]", 0, &e), ATTN_E_FORMAT);
    assert_int_equal(parse("{\"x\":1}", 0, &e), ATTN_E_FORMAT);
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, &e), ATTN_E_DTYPE);
    assert_non_null(strstr(e.msg, "x"));
    /* offsets past the data section */
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, &e), ATTN_E_FORMAT);
    /* size disagrees with shape */
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, &e), ATTN_E_FORMAT);
    /* overlap */
    assert_int_equal(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                           12, &e),
                     ATTN_E_FORMAT);
    assert_non_null(strstr(e.msg, "overlap"));
    /* negative / non-integer dims, reversed offsets, huge shapes */
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, &e), ATTN_E_SHAPE);
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, &e), ATTN_E_SHAPE);
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, &e), ATTN_E_FORMAT);
    assert_int_not_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                               "\"data_offsets\":[0,0]}}",
                               0, &e),
                         ATTN_OK);
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, &e),
                     ATTN_E_SHAPE);
    /* duplicate keys, BOOL out of range */
    assert_int_equal(parse("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                           8, &e),
                     ATTN_E_FORMAT);
    size_t len;
    unsigned char *b = image("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, &len);
    b[len - 1] = 7;
    assert_int_equal(attn_safetensors_read_mem(b, len, &s, &e), ATTN_E_FORMAT);
    free(b);
}

static void truncated_everywhere(void **state) {
    (void)state;
    attn_tensor_set *s = attn_tensor_set_new();
    uint64_t seed = 1;
    int64_t sh[2] = {4, 4};
    tu_add(s, "w", tu_randn(&seed, 2, sh));
    void *buf;
    size_t len;
    assert_int_equal(attn_safetensors_write_mem(s, &buf, &len, NULL), ATTN_OK);
    /* Every proper prefix must be rejected without reading past it. */
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        attn_tensor_set *r = NULL;
        assert_int_not_equal(attn_safetensors_read_mem(p, cut, &r, NULL), ATTN_OK);
        assert_null(r);
        free(p);
    }
    free(buf);
    attn_tensor_set_free(s);
}

static void missing_file(void **state) {
    (void)state;
    attn_error e = {0};
    attn_tensor_set *s = NULL;
    assert_int_equal(attn_safetensors_read_file("/nonexistent/x.safetensors", &s, &e), ATTN_E_IO);
    assert_int_equal(attn_safetensors_read_file("/tmp", &s, &e), ATTN_E_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_mem_and_file), cmocka_unit_test(valid_minimal),
        cmocka_unit_test(hostile_files),          cmocka_unit_test(truncated_everywhere),
        cmocka_unit_test(missing_file),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
