/*
 * attnc_internal.h — what the files of libattnc share: the client, a
 * growable buffer, and the one function that performs an HTTP exchange.
 */
#ifndef ATTNC_INTERNAL_H
#define ATTNC_INTERNAL_H

#include <curl/curl.h>

#include "attnc.h"

struct attnc_client {
    CURL *curl;          /* one handle: its connection is kept alive between calls */
    char *url;           /* base URL without a trailing slash */
    char *auth;          /* "Authorization: Bearer <key>" or NULL */
    long timeout_ms;
    int retries;
    size_t max_response;
    const char *req_coding;    /* the client's request compression: "gzip", "deflate", NULL */
    const char *accept_coding; /* the client's response compression */
    /* for the request in flight (set by attnc_infer, NULL otherwise) */
    const char *cur_req_coding, *cur_accept_coding;
    const char *cur_header; /* one extra "Name: value" header (a sequence's Sequence-Id), or NULL */
};


/* ---- growable byte buffer, always NUL-terminated once anything was added ---- */
typedef struct attnc_buf {
    char *p;
    size_t len, cap;
    int oom; /* sticky: an append failed */
} attnc_buf;

void attnc__buf_add(attnc_buf *b, const void *p, size_t n);
void attnc__buf_puts(attnc_buf *b, const char *s);
void attnc__buf_free(attnc_buf *b);

/* ---- one HTTP answer ---- */
typedef struct attnc_http {
    long status;
    attnc_buf body;
    long header_len;  /* Inference-Header-Content-Length; -1 when absent */
    long retry_after; /* seconds; -1 when absent */
    int too_large;    /* the body went past max_response and was cut */
    size_t max;
} attnc_http;

void attnc__http_free(attnc_http *h);

/* A piece of a request body, borrowed. */
typedef struct attnc_seg {
    const void *p;
    size_t len;
} attnc_seg;

/* "gzip" / "deflate" (static strings) or NULL for none/NULL/""; -1 otherwise. */
int attnc__coding(const char *a, const char **out);
/* gzip ("gzip") or zlib ("deflate") of segs into *out (malloc'd). */
attnc_status attnc__compress(const char *coding, const attnc_seg *segs, size_t nseg, unsigned char **out,
                             size_t *out_len, attnc_error *err);

/* One request to c->url + path ("GET", "POST", "PUT" or "DELETE"; PUT's
 * body is application/octet-stream, DELETE has none); the body is the
 * concatenation of segs[0..nseg) (none: empty), sent without copying.
 * header_len >= 0 adds Inference-Header-Content-Length and sends the body
 * as application/octet-stream.  Returns ATTNC_OK whenever an HTTP answer
 * arrived, whatever its status (in res->status); 503s are retried as
 * configured.  *res is initialised here and owned by the caller
 * (attnc__http_free) on every return. */
attnc_status attnc__request(attnc_client *c, const char *method, const char *path,
                            const attnc_seg *segs, size_t nseg, long header_len, attnc_http *res,
                            attnc_error *err);

/* The status and message for a non-2xx answer: the server's {"error": ...}
 * text when present.  `what` names the operation ("infer 'full'"). */
attnc_status attnc__http_error(const attnc_http *res, const char *what, attnc_error *err);

attnc_status attnc__err(attnc_error *err, attnc_status s, long http, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "/v2/models/<escaped model><suffix>"-style paths; owned (free()), NULL
 * when out of memory.  The name is percent-encoded, so no name can reach
 * another endpoint. */
char *attnc__path(attnc_client *c, const char *prefix, const char *name, const char *suffix);

/* Reads a whole file into memory; *out owned (free()), NUL-terminated. */
attnc_status attnc__read_file(const char *path, char **out, size_t *len, attnc_error *err);

#endif
