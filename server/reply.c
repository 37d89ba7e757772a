/*
 * reply.c — building replies, and the one table that maps a library status
 * to an HTTP status.
 */
#include "svc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svc_reply_init(svc_reply *r) {
    memset(r, 0, sizeof *r);
    r->header_len = -1;
}

void svc_reply_clear(svc_reply *r) {
    free(r->body);
    attn_tensor_free(r->tail);
    svc_reply_init(r);
}

void svc_reply_empty(svc_reply *r, int status) {
    svc_reply_clear(r);
    r->status = status;
    r->ctype = "text/plain";
}

void svc_reply_error(svc_reply *r, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    svc_reply_clear(r);
    svc_buf b = {0};
    svc_buf_puts(&b, "{\"error\":");
    svc_buf_json_str(&b, msg);
    svc_buf_puts(&b, "}");
    r->status = status;
    r->ctype = "application/json";
    r->body = svc_buf_take(&b, &r->len);
    if (!r->body) r->status = 503; /* out of memory: the body is empty */
    if (status == 503) r->retry_after = svc_cfg.retry_after_s;
}

void svc_reply_json(svc_reply *r, int status, void *obj) {
    json_t *o = obj;
    svc_reply_clear(r);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(o);
    if (!s) {
        svc_reply_error(r, 503, "out of memory");
        return;
    }
    r->status = status;
    r->ctype = "application/json";
    r->body = s;
    r->len = strlen(s);
}

/* Client mistakes are 400, a missing thing 404, a lack of memory 503 (try
 * again later: it is transient, not the client's fault), a cancelled call 504
 * (only our deadline cancels), and our own bugs 500. */
int svc_http_status(attn_status s) {
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
