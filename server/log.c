/*
 * log.c — request and server log lines.  Plain lines are key=value pairs
 * (values quoted when they contain spaces or quotes); JSON lines are one
 * object each.  Every line is assembled in memory and written with a single
 * write(2), so lines from different threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc.h"

static void stamp(char *out, size_t cap) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* key=value, or key="..." with quotes and backslashes escaped. */
static void plain_kv(svc_buf *b, const char *k, const char *v) {
    if (!v) return;
    svc_buf_printf(b, " %s=", k);
    int quote = v[0] == '\0' || strpbrk(v, " \"\\=\t\n") != NULL;
    if (!quote) {
        svc_buf_puts(b, v);
        return;
    }
    svc_buf_json_str(b, v);
}

static void json_kv(svc_buf *b, const char *k, const char *v) {
    if (!v) return;
    svc_buf_printf(b, ",\"%s\":", k);
    svc_buf_json_str(b, v);
}

static void emit(svc_buf *b) {
    svc_buf_add(b, "\n", 1);
    if (!b->oom) {
        const char *p = b->p;
        size_t n = b->len;
        while (n) {
            ssize_t w = write(2, p, n);
            if (w <= 0) break;
            p += w;
            n -= (size_t)w;
        }
    }
    svc_buf_free(b);
}

void svc_log_request(const svc_log_req *r) {
    char ts[48];
    stamp(ts, sizeof ts);
    svc_buf b = {0};
    if (svc_cfg.log_json) {
        svc_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"info\",\"event\":\"request\"", ts);
        json_kv(&b, "method", r->method);
        json_kv(&b, "path", r->path);
        json_kv(&b, "model", r->model);
        svc_buf_printf(&b, ",\"status\":%d,\"bytes_in\":%zu,\"bytes_out\":%zu,\"us\":%llu", r->status,
                       r->bytes_in, r->bytes_out, (unsigned long long)r->us);
        json_kv(&b, "request_id", r->id);
        json_kv(&b, "error", r->error);
        svc_buf_puts(&b, "}");
    } else {
        svc_buf_printf(&b, "%s INFO request", ts);
        plain_kv(&b, "method", r->method);
        plain_kv(&b, "path", r->path);
        plain_kv(&b, "model", r->model ? r->model : "-");
        svc_buf_printf(&b, " status=%d bytes_in=%zu bytes_out=%zu us=%llu", r->status, r->bytes_in,
                       r->bytes_out, (unsigned long long)r->us);
        plain_kv(&b, "request_id", r->id);
        plain_kv(&b, "error", r->error);
    }
    emit(&b);
}

void svc_log(const char *level, const char *fmt, ...) {
    char ts[48], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stamp(ts, sizeof ts);
    svc_buf b = {0};
    if (svc_cfg.log_json) {
        svc_buf_printf(&b, "{\"ts\":\"%s\",\"level\":", ts);
        svc_buf_json_str(&b, level);
        json_kv(&b, "msg", msg);
        svc_buf_puts(&b, "}");
    } else {
        char up[16];
        size_t i = 0;
        for (; level[i] && i < sizeof up - 1; i++)
            up[i] = (char)(level[i] >= 'a' && level[i] <= 'z' ? level[i] - 32 : level[i]);
        up[i] = '\0';
        svc_buf_printf(&b, "%s %s %s", ts, up, msg);
    }
    emit(&b);
}
