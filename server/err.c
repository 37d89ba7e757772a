/*
 * err.c — the server's one failure type (svc_err, see svc.h) and the one
 * table that maps a library status to an HTTP status.
 */
#include <stdio.h>

#include "svc.h"

int svc_fail(svc_err *e, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
    return status;
}

int svc_fail_attn(svc_err *e, attn_status s, const attn_error *ae, int status, const char *prefix) {
    const char *m = ae && ae->msg[0] ? ae->msg : attn_status_str(s);
    return svc_fail(e, status ? status : svc_status_of(s), "%s%s", prefix ? prefix : "", m);
}

/* Client mistakes are 400, a missing thing 404, a lack of memory 503 (try
 * again later: it is transient, not the client's fault), a cancelled call 504
 * (only our deadline cancels), and our own bugs 500. */
int svc_status_of(attn_status s) {
    switch (s) {
    case ATTN_OK: return 200;
    case ATTN_E_INVALID:
    case ATTN_E_SHAPE:
    case ATTN_E_DTYPE:
    case ATTN_E_CONFIG:
    case ATTN_E_WEIGHTS:
    case ATTN_E_INPUT:
    case ATTN_E_UNSUPPORTED:
    case ATTN_E_OVERFLOW:
    case ATTN_E_FORMAT: return 400;
    case ATTN_E_NOTFOUND: return 404;
    case ATTN_E_NOMEM: return 503;
    case ATTN_E_CANCELLED: return 504;
    case ATTN_E_IO:
    case ATTN_E_INTERNAL: return 500;
    }
    return 500;
}
