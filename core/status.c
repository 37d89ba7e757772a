/*
 * status.c — status strings, error formatting and checked allocation:
 * the three things every other file of libattn uses.
 */
#include "attn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *attn_status_str(attn_status s) {
    switch (s) {
#define ATTN_X_CASE(name, val, str) \
    case ATTN_##name:               \
        return str;
        ATTN_STATUS_MAP(ATTN_X_CASE)
#undef ATTN_X_CASE
    }
    return "unknown status";
}

attn_status attn__err(attn_error *err, attn_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void *attn__calloc(size_t n, size_t size, attn_error *err) {
    size_t bytes;
    if (!attn__mul(n, size, &bytes)) {
        attn__err(err, ATTN_E_OVERFLOW, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) attn__err(err, ATTN_E_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}
