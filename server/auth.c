/*
 * auth.c — optional bearer tokens.
 *
 * --api-key-file guards inference and metadata; --admin-key-file guards the
 * repository endpoints (an admin token is accepted everywhere).  With only
 * an api key set, the repository needs it too, so that turning on auth never
 * leaves the admin endpoints open.  Health, model readiness and /metrics stay
 * open for probes and scrapers.  Each non-empty line of a key file is one
 * accepted token (so keys can be rotated); tokens are compared in constant
 * time, every token every time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "log.h"

#define MAX_TOKENS 16
#define MAX_TOKEN_LEN 512

typedef struct keyset {
    char *tok[MAX_TOKENS];
    size_t len[MAX_TOKENS];
    int n;
} keyset;

static keyset api_keys, admin_keys;

static int load(const char *path, keyset *k, svc_err *e) {
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        return svc_fail(e, 500, "cannot read key file %s", path);
    }
    char line[MAX_TOKEN_LEN + 2];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            fclose(f);
            return svc_fail(e, 500, "%s: token longer than %d bytes", path, MAX_TOKEN_LEN);
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++, n--;
        if (n == 0 || *s == '#') continue;
        if (k->n == MAX_TOKENS) {
            fclose(f);
            return svc_fail(e, 500, "%s: more than %d tokens", path, MAX_TOKENS);
        }
        k->tok[k->n] = strdup(s);
        k->len[k->n] = n;
        if (!k->tok[k->n]) {
            fclose(f);
            return svc_fail(e, 503, "out of memory");
        }
        k->n++;
    }
    fclose(f);
    if (k->n == 0) {
        return svc_fail(e, 500, "key file %s holds no token", path);
    }
    return 0;
}

int svc_auth_init(svc_err *e) {
    int st = load(svc_cfg.api_key_file, &api_keys, e);
    return st ? st : load(svc_cfg.admin_key_file, &admin_keys, e);
}

void svc_auth_shutdown(void) {
    for (int i = 0; i < api_keys.n; i++) free(api_keys.tok[i]);
    for (int i = 0; i < admin_keys.n; i++) free(admin_keys.tok[i]);
    memset(&api_keys, 0, sizeof api_keys);
    memset(&admin_keys, 0, sizeof admin_keys);
}

/* Time depends only on the stored token's length, not on where a guess
 * goes wrong. */
static int same(const char *want, size_t wn, const char *got, size_t gn) {
    volatile unsigned char d = (unsigned char)(wn != gn);
    for (size_t i = 0; i < wn; i++) d |= (unsigned char)(want[i] ^ (i < gn ? got[i] : 0));
    return d == 0;
}

static int match(const keyset *k, const char *got, size_t gn) {
    int ok = 0;
    for (int i = 0; i < k->n; i++) ok |= same(k->tok[i], k->len[i], got, gn);
    return ok;
}

static bool granted(svc_auth_class cls, const char *authz) {
    if (cls == SVC_AUTH_NONE) return true;
    const keyset *need = cls == SVC_AUTH_ADMIN ? (admin_keys.n ? &admin_keys : &api_keys) : &api_keys;
    if (need->n == 0) return true; /* no key configured for this class */
    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) return false;
    const char *tok = authz + 7;
    while (*tok == ' ') tok++;
    size_t n = strlen(tok);
    if (n > MAX_TOKEN_LEN) return false;
    return match(need, tok, n) | (cls == SVC_AUTH_API && match(&admin_keys, tok, n));
}

int svc_auth_check(svc_auth_class cls, const char *authz, svc_err *e) {
    return granted(cls, authz) ? 0 : svc_fail(e, 401, "missing or invalid bearer token");
}
