/* test_auth.c — bearer tokens (server/auth.c) without a socket: key files
 * (comments, blanks, spaces, rotation with several tokens; a missing file,
 * one with no token, a token too long, too many tokens), the scopes (no key:
 * open; api key: inference and metadata; admin key: the repository, and it
 * also works everywhere; only an api key: the repository takes it), the
 * header forms (scheme case, spaces, a prefix or suffix of a token), and
 * that a refusal is 401 with a message.  Links auth.o and the few server
 * objects it needs (Makefile). */
#include "test_util.h"

#include <unistd.h>

#include "../../server/api.h"

static char *key_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/attnd-keys-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return strdup(path);
}

static int grants(svc_auth_class c, const char *authz) {
    svc_err e = {0};
    int st = svc_auth_check(c, authz, &e);
    if (st) {
        assert_int_equal(st, 401);
        assert_int_equal(e.status, 401);
        assert_non_null(strstr(e.msg, "bearer token"));
    }
    return st == 0;
}

static void start(const char *api, const char *admin) {
    svc_cfg = svc_config_defaults();
    char *a = api ? key_file(api) : NULL, *d = admin ? key_file(admin) : NULL;
    svc_cfg.api_key_file = a;
    svc_cfg.admin_key_file = d;
    svc_err e = {0};
    assert_int_equal(svc_auth_init(&e), 0);
    if (a) unlink(a), free(a);
    if (d) unlink(d), free(d);
}

static void open_without_keys(void **st) {
    (void)st;
    start(NULL, NULL);
    assert_true(grants(SVC_AUTH_API, NULL));
    assert_true(grants(SVC_AUTH_ADMIN, NULL));
    assert_true(grants(SVC_AUTH_NONE, "garbage"));
    svc_auth_shutdown();
}

static void api_key_only(void **st) {
    (void)st;
    start("# rotated keys\n\n  tok-one  \ntok-two\r\n", NULL);
    assert_true(grants(SVC_AUTH_NONE, NULL));
    assert_false(grants(SVC_AUTH_API, NULL));
    assert_true(grants(SVC_AUTH_API, "Bearer tok-one"));
    assert_true(grants(SVC_AUTH_API, "bearer tok-two"));    /* the scheme is case-insensitive */
    assert_true(grants(SVC_AUTH_API, "Bearer   tok-two")); /* spaces before the token */
    assert_false(grants(SVC_AUTH_API, "Bearer tok-on"));    /* a prefix */
    assert_false(grants(SVC_AUTH_API, "Bearer tok-onex"));  /* a suffix */
    assert_false(grants(SVC_AUTH_API, "Basic tok-one"));
    assert_false(grants(SVC_AUTH_API, "Bearer "));
    assert_false(grants(SVC_AUTH_API, "Bearer # rotated keys")); /* comments are not tokens */
    assert_true(grants(SVC_AUTH_ADMIN, "Bearer tok-one"));  /* no admin key: the api key does */
    svc_auth_shutdown();
}

static void admin_key(void **st) {
    (void)st;
    start("api-tok\n", "admin-tok\n");
    assert_true(grants(SVC_AUTH_API, "Bearer api-tok"));
    assert_true(grants(SVC_AUTH_API, "Bearer admin-tok")); /* admin works everywhere */
    assert_false(grants(SVC_AUTH_ADMIN, "Bearer api-tok"));
    assert_true(grants(SVC_AUTH_ADMIN, "Bearer admin-tok"));
    svc_auth_shutdown();
    start(NULL, "admin-tok\n"); /* only an admin key: inference stays open */
    assert_true(grants(SVC_AUTH_API, NULL));
    assert_false(grants(SVC_AUTH_ADMIN, NULL));
    svc_auth_shutdown();
}

static void bad_key_files(void **st) {
    (void)st;
    svc_err e = {0};
    svc_cfg = svc_config_defaults();
    svc_cfg.api_key_file = "/nonexistent/keys";
    assert_int_equal(svc_auth_init(&e), 500);
    assert_non_null(strstr(e.msg, "cannot read key file"));
    svc_auth_shutdown();
    char *p = key_file("# only a comment\n\n");
    svc_cfg.api_key_file = p;
    assert_int_equal(svc_auth_init(&e), 500);
    assert_non_null(strstr(e.msg, "holds no token"));
    svc_auth_shutdown();
    unlink(p), free(p);
    char long_tok[700];
    memset(long_tok, 'a', sizeof long_tok - 2);
    long_tok[sizeof long_tok - 2] = '\n';
    long_tok[sizeof long_tok - 1] = 0;
    p = key_file(long_tok);
    svc_cfg.api_key_file = p;
    assert_int_equal(svc_auth_init(&e), 500);
    assert_non_null(strstr(e.msg, "longer than"));
    svc_auth_shutdown();
    unlink(p), free(p);
    char many[400] = "";
    for (int i = 0; i < 20; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "t%d\n", i);
    p = key_file(many);
    svc_cfg.api_key_file = p;
    assert_int_equal(svc_auth_init(&e), 500);
    assert_non_null(strstr(e.msg, "more than"));
    svc_auth_shutdown();
    unlink(p), free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_without_keys),
        cmocka_unit_test(api_key_only),
        cmocka_unit_test(admin_key),
        cmocka_unit_test(bad_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
