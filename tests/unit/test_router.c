/* test_router.c — the route table (server/api.c) without a socket: what
 * svc_api_match makes of methods and paths (handler, auth scope, model,
 * and the 404/400/405 answers), that every row is reachable by its own
 * pattern, and that docs/server.md and proto/openapi.yaml list exactly the
 * table's routes (run from the repository's root, as `make unit` does).
 * Links every server object but main.o (see the Makefile). */
#include "test_util.h"

#include <ctype.h>

#include "../../server/api.h"

typedef struct rcase {
    const char *method, *path;
    int status;          /* 0: matched */
    svc_handler handler; /* when matched */
    svc_auth_class auth;
    const char *model;   /* when matched */
    const char *msg;     /* the error message, when not */
    const char *allow;   /* 405's Allow */
} rcase;

#define NOT_FOUND "no such endpoint"
#define BAD_NAME "model names match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
#define NAME65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const rcase cases[] = {
    {"GET", "/v2/health/live", 0, svc_api_live, SVC_AUTH_NONE, "", NULL, NULL},
    {"HEAD", "/v2/health/ready", 0, svc_api_ready, SVC_AUTH_NONE, "", NULL, NULL},
    {"GET", "/v2", 0, svc_api_server_meta, SVC_AUTH_API, "", NULL, NULL},
    {"GET", "/v2/", 0, svc_api_server_meta, SVC_AUTH_API, "", NULL, NULL},
    {"GET", "/v2/models/full", 0, svc_api_model_meta, SVC_AUTH_API, "full", NULL, NULL},
    {"GET", "/v2/models/full/versions/1", 0, svc_api_model_meta, SVC_AUTH_API, "full", NULL, NULL},
    {"GET", "/v2/models/versions", 0, svc_api_model_meta, SVC_AUTH_API, "versions", NULL, NULL},
    {"GET", "/v2/models/full/ready", 0, svc_api_model_ready, SVC_AUTH_NONE, "full", NULL, NULL},
    {"GET", "/v2/models/full/versions/1/ready", 0, svc_api_model_ready, SVC_AUTH_NONE, "full", NULL, NULL},
    {"GET", "/v2/models/full/versions/1/config", 0, svc_api_model_config, SVC_AUTH_API, "full", NULL, NULL},
    {"POST", "/v2/models/a.b-c_1/infer", 0, svc_api_infer, SVC_AUTH_API, "a.b-c_1", NULL, NULL},
    {"POST", "/v2/models/full/versions/1/infer", 0, svc_api_infer, SVC_AUTH_API, "full", NULL, NULL},
    {"POST", "/v2/repository/index", 0, svc_api_repo_index, SVC_AUTH_ADMIN, "", NULL, NULL},
    {"POST", "/v2/repository/models/m1/load", 0, svc_api_repo_load, SVC_AUTH_ADMIN, "m1", NULL, NULL},
    {"POST", "/v2/repository/models/m1/unload", 0, svc_api_repo_unload, SVC_AUTH_ADMIN, "m1", NULL, NULL},
    {"GET", "/metrics", 0, svc_api_metrics, SVC_AUTH_NONE, "", NULL, NULL},
    {"GET", "/v2/models/full/sequences", 0, svc_api_seq_list, SVC_AUTH_ADMIN, "full", NULL, NULL},
    {"GET", "/v2/models/full/sequences/abc", 0, svc_api_seq_get, SVC_AUTH_API, "full", NULL, NULL},
    {"HEAD", "/v2/models/full/sequences/abc", 0, svc_api_seq_get, SVC_AUTH_API, "full", NULL, NULL},
    {"PUT", "/v2/models/full/sequences/a.b:c~d-e_9", 0, svc_api_seq_put, SVC_AUTH_API, "full", NULL, NULL},
    {"DELETE", "/v2/models/full/sequences/42", 0, svc_api_seq_delete, SVC_AUTH_API, "full", NULL, NULL},
    {"POST", "/v2/models/full/sequences/42", 405, NULL, 0, NULL, "POST is not allowed here (use GET, PUT, DELETE)",
     "GET, HEAD, PUT, DELETE"},
    {"PUT", "/v2/models/full/sequences", 405, NULL, 0, NULL, "PUT is not allowed here (use GET)", "GET, HEAD"},
    {"GET", "/v2/models/full/sequences/a%2Fb", 404, NULL, 0, NULL, "sequence ids match [A-Za-z0-9._:~-]{1,128}", NULL},
    {"GET", "/v2/models/full/sequences/a/b", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v2/models/full/versions/1/sequences", 404, NULL, 0, NULL, NOT_FOUND, NULL}, /* sequences are not versioned */
    {"GET", "/metrics/", 0, svc_api_metrics, SVC_AUTH_NONE, "", NULL, NULL},
    /* versions other than 1, before the method is looked at */
    {"GET", "/v2/models/full/versions/2", 404, NULL, 0, NULL, "model 'full' has no version '2' (only 1)", NULL},
    {"GET", "/v2/models/full/versions/2/infer", 404, NULL, 0, NULL, "model 'full' has no version '2' (only 1)",
     NULL},
    /* wrong methods */
    {"GET", "/v2/models/full/infer", 405, NULL, 0, NULL, "GET is not allowed here (use POST)", "POST"},
    {"POST", "/v2/models/full", 405, NULL, 0, NULL, "POST is not allowed here (use GET)", "GET, HEAD"},
    {"GET", "/v2/repository/index", 405, NULL, 0, NULL, "GET is not allowed here (use POST)", "POST"},
    {"DELETE", "/metrics", 405, NULL, 0, NULL, "DELETE is not allowed here (use GET)", "GET, HEAD"},
    {"HEAD", "/v2/repository/models/m1/load", 405, NULL, 0, NULL, "HEAD is not allowed here (use POST)", "POST"},
    /* names: a model's that cannot be one is not found; one to load is a bad request */
    {"GET", "/v2/models/..", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"POST", "/v2/models/.hidden/versions/2/infer", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"POST", "/v2/repository/models/.hidden/load", 400, NULL, 0, NULL, BAD_NAME, NULL},
    {"GET", "/v2/repository/models/.hidden/unload", 400, NULL, 0, NULL, BAD_NAME, NULL},
    {"POST", "/v2/repository/models/" NAME65 "/load", 400, NULL, 0, NULL, BAD_NAME, NULL},
    {"POST", "/v2/repository/models/.hidden/reload", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    /* no such path */
    {"GET", "/", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "v2", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v3", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v2/health", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"POST", "/v2/models//full/infer", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"POST", "/v2/models/full/explain", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v2/models/full/versions", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v2/models/full/versions/1/versions/1", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/v2/a/b/c/d/e/f/g/h", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"POST", "/v2/repository/models/m1", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    /* the explorer page: /ui, /ui/ and /ui/{file}, no auth; the handler looks the name up */
    {"GET", "/ui", 0, svc_api_ui, SVC_AUTH_NONE, "", NULL, NULL},
    {"GET", "/ui/", 0, svc_api_ui, SVC_AUTH_NONE, "", NULL, NULL},
    {"HEAD", "/ui/app.js", 0, svc_api_ui, SVC_AUTH_NONE, "", NULL, NULL},
    {"GET", "/ui/no-such-file.txt", 0, svc_api_ui, SVC_AUTH_NONE, "", NULL, NULL},
    {"POST", "/ui/app.js", 405, NULL, 0, NULL, "POST is not allowed here (use GET)", "GET, HEAD"},
    {"GET", "/ui/a/b", 404, NULL, 0, NULL, NOT_FOUND, NULL},
    {"GET", "/ui/" NAME65 NAME65, 404, NULL, 0, NULL, NOT_FOUND, NULL}, /* longer than any file name */
    {"GET", "/uix", 404, NULL, 0, NULL, NOT_FOUND, NULL},
};

static void matching(void **st) {
    (void)st;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const rcase *c = &cases[i];
        svc_route rt;
        svc_reply rep;
        svc_reply_init(&rep);
        int got = svc_api_match(c->method, c->path, &rt, &rep);
        if (got != c->status) fail_msg("%s %s: %d, not %d", c->method, c->path, got, c->status);
        if (c->status == 0) {
            if (rt.handler != c->handler || rt.auth != c->auth || strcmp(rt.model, c->model) != 0)
                fail_msg("%s %s: another handler, auth %d or model '%s'", c->method, c->path, rt.auth, rt.model);
            assert_int_equal(rep.status, 0); /* no reply made */
        } else {
            assert_int_equal(rep.status, c->status);
            if (strcmp(rep.err.msg, c->msg) != 0) fail_msg("%s %s: '%s'", c->method, c->path, rep.err.msg);
            if ((c->allow == NULL) != (rep.allow[0] == 0) || (c->allow && strcmp(c->allow, rep.allow) != 0))
                fail_msg("%s %s: Allow %s", c->method, c->path, rep.allow[0] ? rep.allow : "(none)");
        }
        svc_reply_clear(&rep);
    }
}

/* {file} hands the segment to the handler, which looks it up; /ui and /ui/
 * give it none (index.html). */
static void ui_file_segment(void **st) {
    (void)st;
    static const struct { const char *path, *arg; } c[] = {
        {"/ui/app.js", "app.js"}, {"/ui/style.css/", "style.css"}, {"/ui", ""}, {"/ui/", ""}, {"/ui/..", ".."}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        svc_route rt;
        svc_reply rep;
        svc_reply_init(&rep);
        assert_int_equal(svc_api_match("GET", c[i].path, &rt, &rep), 0);
        if (strcmp(rt.arg, c[i].arg) != 0) fail_msg("%s: arg '%s', not '%s'", c[i].path, rt.arg, c[i].arg);
        svc_reply_clear(&rep);
    }
}

/* A pattern with {m} -> x and the version token dropped or kept as
 * /versions/1; or, for the documents, {m} -> `m` and [/versions/1] -> `v`. */
static void expand(const char *pat, const char *m, const char *v, char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = pat; *p;) {
        const char *add;
        size_t skip;
        if (strncmp(p, "{m}", 3) == 0) add = m, skip = 3;
        else if (strncmp(p, "{id}", 4) == 0) add = strcmp(m, "x") == 0 ? "id-1" : "{sequence_id}", skip = 4;
        else if (strncmp(p, "{file}", 6) == 0) add = strcmp(m, "x") == 0 ? "app.js" : "{file}", skip = 6;
        else if (strncmp(p, "[/versions/1]", 13) == 0) add = v, skip = 13;
        else add = NULL, skip = 1;
        size_t n = add ? strlen(add) : 1;
        assert_true(o + n < cap);
        memcpy(out + o, add ? add : p, n);
        o += n;
        p += skip;
    }
    out[o] = '\0';
}

/* Each row answers its own pattern (with and without the version), and no
 * two rows have the same method and pattern. */
static void every_row_reachable(void **st) {
    (void)st;
    size_t n;
    const svc_route_def *d = svc_api_routes(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        for (int ver = 0; ver < 2; ver++) {
            char path[256];
            expand(d[i].pattern, "x", ver ? "/versions/1" : "", path, sizeof path);
            svc_route rt;
            svc_reply rep;
            svc_reply_init(&rep);
            int got = svc_api_match(d[i].method, path, &rt, &rep);
            if (got != 0 || rt.handler != d[i].handler || rt.auth != d[i].auth)
                fail_msg("%s %s does not reach its row (%d)", d[i].method, path, got);
            assert_int_equal(!!strstr(d[i].pattern, "{m}"), !!d[i].bad_name);
            svc_reply_clear(&rep);
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(d[k].method, d[i].method) == 0 && strcmp(d[k].pattern, d[i].pattern) == 0)
                fail_msg("%s %s is listed twice", d[i].method, d[i].pattern);
    }
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s (run from the repository's root)", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_true(n < sizeof buf - 1);
    buf[n] = '\0';
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, buf, n + 1);
    return s;
}

/* docs/server.md's endpoint table has one row `| METHOD | `pattern` |` per
 * route, and no other. */
static void documented_in_server_md(void **st) {
    (void)st;
    char *doc = slurp("docs/server.md");
    size_t n;
    const svc_route_def *d = svc_api_routes(&n);
    for (size_t i = 0; i < n; i++) {
        char row[300];
        snprintf(row, sizeof row, "| %s | `%s` |", d[i].method, d[i].pattern);
        if (!strstr(doc, row)) fail_msg("docs/server.md has no row %s", row);
    }
    size_t rows = 0;
    for (const char *p = doc; (p = strstr(p, "\n| ")) != NULL; p++) {
        const char *m = p + 3;
        if (strncmp(m, "GET | `/", 8) == 0 || strncmp(m, "POST | `/", 9) == 0 || strncmp(m, "PUT | `/", 8) == 0 ||
            strncmp(m, "DELETE | `/", 11) == 0)
            rows++;
    }
    assert_int_equal(rows, n);
    free(doc);
}

/* proto/openapi.yaml has each route's path ({m} as {model_name}, the
 * version as /versions/{model_version}) with the route's method, and no
 * other path. */
static void documented_in_openapi(void **st) {
    (void)st;
    char *y = slurp("proto/openapi.yaml");
    size_t n;
    const svc_route_def *d = svc_api_routes(&n);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) {
        int versioned = strstr(d[i].pattern, "[/versions/1]") != NULL;
        for (int ver = 0; ver <= versioned; ver++) {
            char path[256], key[300];
            expand(d[i].pattern, "{model_name}", ver ? "/versions/{model_version}" : "", path, sizeof path);
            snprintf(key, sizeof key, "\n  %s:\n", path);
            const char *at = strstr(y, key);
            if (!at) fail_msg("proto/openapi.yaml has no path %s", path);
            int seen = 0; /* a path with several methods is one path */
            for (size_t k = 0; k < i; k++)
                if (strcmp(d[k].pattern, d[i].pattern) == 0) seen = 1;
            want += !seen;
            const char *body = at + strlen(key) - 1, *next = strstr(body, "\n  /");
            char op[32];
            snprintf(op, sizeof op, "\n    %s:", d[i].method);
            for (char *c = op; *c; c++) *c = (char)tolower((unsigned char)*c);
            const char *hit = strstr(body, op);
            int found = hit && (!next || hit < next);
            if (!found) fail_msg("proto/openapi.yaml: %s has no %s", path, d[i].method);
        }
    }
    const char *paths = strstr(y, "\npaths:\n");
    assert_non_null(paths);
    const char *end = strstr(paths + 1, "\ncomponents:");
    size_t have = 0;
    for (const char *p = paths; (p = strstr(p, "\n  /")) && (!end || p < end); p++) have++;
    assert_int_equal(have, want);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matching),
        cmocka_unit_test(every_row_reachable),
        cmocka_unit_test(ui_file_segment),
        cmocka_unit_test(documented_in_server_md),
        cmocka_unit_test(documented_in_openapi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
