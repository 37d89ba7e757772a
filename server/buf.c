/*
 * buf.c — a growable byte buffer with JSON string escaping, the monotonic
 * clock, and the model-name rule.  Appends never fail loudly: the first
 * failed allocation sets `oom`, later appends do nothing, and the caller
 * checks once at the end (svc_buf_take returns NULL).
 */
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t svc_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int svc_buf_reserve(svc_buf *b, size_t extra) {
    if (b->oom) return -1;
    if (extra <= b->cap - b->len) return 0;
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need) || need > SIZE_MAX / 2) goto fail;
    need += 1; /* room for the terminating NUL of svc_buf_take */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) goto fail;
    b->p = p;
    b->cap = cap - 1;
    return 0;
fail:
    b->oom = 1;
    return -1;
}

void svc_buf_add(svc_buf *b, const void *p, size_t n) {
    if (n == 0 || svc_buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void svc_buf_puts(svc_buf *b, const char *s) { svc_buf_add(b, s, strlen(s)); }

void svc_buf_printf(svc_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        svc_buf_add(b, small, (size_t)n);
        return;
    }
    if (svc_buf_reserve(b, (size_t)n + 1) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Escapes quote, backslash and control bytes; other bytes (UTF-8) pass. */
void svc_buf_json_str(svc_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    svc_buf_add(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        svc_buf_add(b, run, (size_t)(s - run));
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            svc_buf_add(b, esc, 2);
        } else if (c == '\n') {
            svc_buf_add(b, "\\n", 2);
        } else {
            svc_buf_add(b, esc, 6);
        }
        run = s + 1;
    }
    svc_buf_add(b, run, (size_t)(s - run));
    svc_buf_add(b, "\"", 1);
}

char *svc_buf_take(svc_buf *b, size_t *len) {
    if (svc_buf_reserve(b, 0) != 0 || (!b->p && svc_buf_reserve(b, 1) != 0)) {
        svc_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    p[b->len] = '\0';
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void svc_buf_free(svc_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
