/*
 * reply.c — building replies: empty, an error (from an svc_err), JSON.
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

void svc_reply_fail(svc_reply *r, const svc_err *e) {
    svc_err copy = *e; /* e may be r->err */
    svc_reply_clear(r);
    svc_buf b = {0};
    svc_buf_puts(&b, "{\"error\":");
    svc_buf_json_str(&b, copy.msg);
    svc_buf_puts(&b, "}");
    r->err = copy;
    r->status = copy.status;
    r->ctype = "application/json";
    r->body = svc_buf_take(&b, &r->len);
    if (!r->body) r->status = r->err.status = 503; /* out of memory: the body is empty */
    if (r->status == 503) r->retry_after = svc_cfg.retry_after_s;
}

void svc_reply_error(svc_reply *r, int status, const char *fmt, ...) {
    svc_err e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    e.status = status;
    svc_reply_fail(r, &e);
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
