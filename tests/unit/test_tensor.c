/* test_tensor.c — shapes, overflow checks, tensors and tensor sets. */
#include "test_util.h"

#include <unistd.h>

static void shape_numel_ok(void **st) {
    (void)st;
    int64_t s[3] = {2, 3, 4};
    size_t n = 0;
    assert_int_equal(attn_shape_numel(3, s, 4, &n, NULL), ATTN_OK);
    assert_int_equal(n, 24);
    assert_int_equal(attn_shape_numel(0, s, 4, &n, NULL), ATTN_OK); /* a scalar */
    assert_int_equal(n, 1);
}

static void shape_rejects_bad(void **st) {
    (void)st;
    attn_error e = {0};
    size_t n;
    int64_t neg[2] = {2, -1};
    assert_int_equal(attn_shape_numel(2, neg, 4, &n, &e), ATTN_E_SHAPE);
    assert_non_null(strstr(e.msg, "negative"));
    int64_t big[3] = {INT64_MAX / 2, 4, 1};
    assert_int_equal(attn_shape_numel(3, big, 4, &n, &e), ATTN_E_OVERFLOW);
    int64_t wrap[4] = {1LL << 32, 1LL << 32, 1LL << 2, 1};
    assert_int_equal(attn_shape_numel(4, wrap, 1, &n, &e), ATTN_E_OVERFLOW);
    int64_t bytes[1] = {INT64_MAX / 2};
    assert_int_equal(attn_shape_numel(1, bytes, 8, &n, &e), ATTN_E_OVERFLOW);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(attn_shape_numel(9, nine, 4, &n, &e), ATTN_E_SHAPE);
    assert_int_equal(attn_shape_numel(-1, nine, 4, &n, &e), ATTN_E_SHAPE);
}

static void tensor_new_zeroed(void **st) {
    (void)st;
    int64_t s[2] = {3, 5};
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_new(ATTN_I64, 2, s, &t, NULL), ATTN_OK);
    assert_int_equal(t->numel, 15);
    assert_int_equal(t->nbytes, 120);
    for (size_t i = 0; i < 15; i++) assert_int_equal(((int64_t *)t->data)[i], 0);
    attn_tensor_free(t);
    attn_tensor_free(NULL);
}

static void tensor_view_checks_bytes(void **st) {
    (void)st;
    float buf[6];
    int64_t s[2] = {2, 3};
    attn_tensor *t = NULL;
    assert_int_equal(attn_tensor_view(ATTN_F32, 2, s, buf, sizeof buf, &t, NULL), ATTN_OK);
    assert_ptr_equal(t->data, buf);
    assert_int_equal(t->owns_data, 0);
    attn_tensor_free(t); /* must not free buf */
    assert_int_equal(attn_tensor_view(ATTN_F32, 2, s, buf, 20, &t, NULL), ATTN_E_SHAPE);
}

static void dtype_names(void **st) {
    (void)st;
    attn_dtype d;
    assert_int_equal(attn_dtype_parse("I64", &d), ATTN_OK);
    assert_int_equal(d, ATTN_I64);
    assert_int_equal(attn_dtype_parse("F16", &d), ATTN_E_DTYPE);
    assert_int_equal(attn_dtype_parse(NULL, &d), ATTN_E_DTYPE);
    assert_string_equal(attn_dtype_name(ATTN_BOOL), "BOOL");
    assert_int_equal(attn_dtype_size(ATTN_I32), 4);
}

static void set_add_get(void **st) {
    (void)st;
    attn_tensor_set *s = attn_tensor_set_new();
    int64_t sh[1] = {4};
    attn_tensor *a, *b;
    assert_int_equal(attn_tensor_new(ATTN_F32, 1, sh, &a, NULL), ATTN_OK);
    assert_int_equal(attn_tensor_new(ATTN_F32, 1, sh, &b, NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_add(s, "a", a, NULL), ATTN_OK);
    attn_error e = {0};
    assert_int_equal(attn_tensor_set_add(s, "a", b, &e), ATTN_E_INVALID); /* steals b even on failure */
    assert_non_null(strstr(e.msg, "duplicate"));
    assert_ptr_equal(attn_tensor_set_get(s, "a"), a);
    assert_null(attn_tensor_set_get(s, "b"));
    assert_int_equal(attn_tensor_set_count(s), 1);
    assert_string_equal(attn_tensor_set_name(s, 0), "a");
    assert_null(attn_tensor_set_name(s, 1));
    attn_tensor_set_free(s);
}

static void set_take(void **st) {
    (void)st;
    attn_tensor_set *s = attn_tensor_set_new();
    int64_t sh[1] = {2};
    const char *names[3] = {"x", "y", "z"};
    attn_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(attn_tensor_new(ATTN_F32, 1, sh, &t[i], NULL), ATTN_OK);
        assert_int_equal(attn_tensor_set_add(s, names[i], t[i], NULL), ATTN_OK);
    }
    assert_null(attn_tensor_set_take(s, "w"));
    attn_tensor *y = attn_tensor_set_take(s, "y");
    assert_ptr_equal(y, t[1]);
    assert_int_equal(attn_tensor_set_count(s), 2);
    assert_string_equal(attn_tensor_set_name(s, 1), "z");
    assert_null(attn_tensor_set_get(s, "y"));
    assert_int_equal(attn_tensor_set_add(s, "y", y, NULL), ATTN_OK); /* the name is free again */
    attn_tensor *x = attn_tensor_set_take(s, "x");
    attn_tensor_set_free(s);
    attn_tensor_free(x); /* owned by the caller: freed once, after the set */
    /* a view into a file's mapping cannot leave its set */
    attn_tensor_set *f = attn_tensor_set_new();
    attn_tensor *w;
    assert_int_equal(attn_tensor_new(ATTN_F32, 1, sh, &w, NULL), ATTN_OK);
    assert_int_equal(attn_tensor_set_add(f, "w", w, NULL), ATTN_OK);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(attn_safetensors_write_mem(f, &buf, &len, NULL), ATTN_OK);
    attn_tensor_set_free(f);
    char path[] = "/tmp/attn-take-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
    close(fd);
    free(buf);
    assert_int_equal(attn_safetensors_read_file(path, &f, NULL), ATTN_OK);
    unlink(path);
    assert_null(attn_tensor_set_take(f, "w"));
    assert_non_null(attn_tensor_set_get(f, "w"));
    attn_tensor_set_free(f);
}

static void shape_str(void **st) {
    (void)st;
    char buf[64];
    int64_t s[3] = {1, 22, 333};
    assert_string_equal(attn_shape_str(3, s, buf, sizeof buf), "(1,22,333)");
    assert_string_equal(attn_shape_str(1, s, buf, sizeof buf), "(1,)");
    assert_string_equal(attn_status_str(ATTN_E_SHAPE), "bad shape");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_numel_ok),   cmocka_unit_test(shape_rejects_bad),
        cmocka_unit_test(tensor_new_zeroed), cmocka_unit_test(tensor_view_checks_bytes),
        cmocka_unit_test(dtype_names),      cmocka_unit_test(set_add_get),
        cmocka_unit_test(shape_str),        cmocka_unit_test(set_take),
    };
    return cmocka_run_group_tests_name("tensor", tests, NULL, NULL);
}
