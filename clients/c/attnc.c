/*
 * attnc.c — the client object, its one HTTP exchange (libcurl easy handle,
 * kept alive), error mapping, health and metadata calls.
 */
#include "attnc_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

const char *attnc_status_str(attnc_status s) {
    switch (s) {
#define ATTNC_X_STR(name, val, str) case ATTNC_##name: return str;
        ATTNC_STATUS_MAP(ATTNC_X_STR)
#undef ATTNC_X_STR
    }
    return "unknown status";
}

attnc_status attnc__err(attnc_error *err, attnc_status s, long http, const char *fmt, ...) {
    if (err) {
        err->code = s;
        err->http_status = http;
        err->retry_after = -1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* ---- buffer ---- */

void attnc__buf_add(attnc_buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (n >= SIZE_MAX / 2 - b->len) { b->oom = 1; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void attnc__buf_puts(attnc_buf *b, const char *s) { attnc__buf_add(b, s, strlen(s)); }

void attnc__buf_free(attnc_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void attnc__http_free(attnc_http *h) { attnc__buf_free(&h->body); }

/* ---- the client ---- */

attnc_status attnc_client_new(const char *url, attnc_client **out, attnc_error *err) {
    *out = NULL;
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return attnc__err(err, ATTNC_E_INVALID, 0, "url must start with http:// or https://");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return attnc__err(err, ATTNC_E_INVALID, 0, "url contains a space or control character");
    /* Reference-counted by libcurl, and thread-safe in the versions we build with. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return attnc__err(err, ATTNC_E_NOMEM, 0, "curl_global_init failed");
    attnc_client *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(url)) || !(c->curl = curl_easy_init())) {
        if (c) free(c->url);
        free(c);
        curl_global_cleanup();
        return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory creating a client");
    }
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/') c->url[--n] = 0;
    c->timeout_ms = 60000;
    c->retries = 2;
    c->max_response = (size_t)1 << 30;
    *out = c;
    return ATTNC_OK;
}

void attnc_client_free(attnc_client *c) {
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->auth);
    free(c);
    curl_global_cleanup();
}

attnc_status attnc_client_set_api_key(attnc_client *c, const char *key, attnc_error *err) {
    if (key) {
        if (!*key) return attnc__err(err, ATTNC_E_INVALID, 0, "the API key is empty");
        for (const char *p = key; *p; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                return attnc__err(err, ATTNC_E_INVALID, 0, "the API key contains a control character");
    }
    char *auth = NULL;
    if (key) {
        size_t n = strlen(key) + sizeof "Authorization: Bearer ";
        if (!(auth = malloc(n))) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
        snprintf(auth, n, "Authorization: Bearer %s", key);
    }
    free(c->auth);
    c->auth = auth;
    return ATTNC_OK;
}

void attnc_client_set_timeout(attnc_client *c, long ms) { c->timeout_ms = ms > 0 ? ms : 0; }

/* "gzip"/"deflate" as a static string, NULL for none; -1 for anything else. */
int attnc__coding(const char *a, const char **out) {
    *out = NULL;
    if (!a || !*a || !strcmp(a, "none")) return 0;
    if (!strcmp(a, "gzip")) *out = "gzip";
    else if (!strcmp(a, "deflate")) *out = "deflate";
    else return -1;
    return 0;
}

attnc_status attnc_client_set_compression(attnc_client *c, const char *request_algorithm,
                                          const char *response_algorithm, attnc_error *err) {
    const char *rq, *rs;
    if (attnc__coding(request_algorithm, &rq) || attnc__coding(response_algorithm, &rs))
        return attnc__err(err, ATTNC_E_INVALID, 0, "compression algorithm must be gzip, deflate or none");
    c->req_coding = rq;
    c->accept_coding = rs;
    return ATTNC_OK;
}

attnc_status attnc__compress(const char *coding, const attnc_seg *segs, size_t nseg, unsigned char **out,
                             size_t *out_len, attnc_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    *out = NULL;
    if (deflateInit2(&zs, 1, Z_DEFLATED, !strcmp(coding, "gzip") ? 16 + MAX_WBITS : MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory for the compressor");
    size_t total = 0;
    for (size_t i = 0; i < nseg; i++) total += segs[i].len;
    size_t cap = deflateBound(&zs, (uLong)total) + 1024, len = 0;
    unsigned char *buf = malloc(cap);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    for (size_t i = 0; rc == Z_OK && i <= nseg; i++) {
        const unsigned char *p = i < nseg ? segs[i].p : NULL;
        size_t left = i < nseg ? segs[i].len : 0;
        int flush = i == nseg ? Z_FINISH : Z_NO_FLUSH;
        do {
            uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)p;
            zs.avail_in = k;
            do {
                if (cap - len < 1024) {
                    unsigned char *q = realloc(buf, cap * 2);
                    if (!q) {
                        rc = Z_MEM_ERROR;
                        break;
                    }
                    buf = q;
                    cap *= 2;
                }
                size_t room = cap - len > (1u << 30) ? (1u << 30) : cap - len;
                zs.next_out = buf + len;
                zs.avail_out = (uInt)room;
                rc = deflate(&zs, flush);
                len += room - zs.avail_out;
            } while (rc == Z_OK && (zs.avail_in > 0 || flush == Z_FINISH));
            if (p) p += k;
            left -= k;
        } while (left && rc == Z_OK);
    }
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory compressing the request");
    }
    *out = buf;
    *out_len = len;
    return ATTNC_OK;
}
void attnc_client_set_retries(attnc_client *c, int retries) { c->retries = retries > 0 ? retries : 0; }
void attnc_client_set_max_response(attnc_client *c, size_t bytes) { c->max_response = bytes; }

/* ---- one exchange ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    attnc_http *h = ud;
    size_t len = size * n;
    if (len > h->max || h->body.len > h->max - len) {
        h->too_large = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    attnc__buf_add(&h->body, p, len);
    return h->body.oom ? 0 : len;
}

static long header_value(const char *line, size_t len, const char *name) {
    size_t k = strlen(name);
    if (len <= k || strncasecmp(line, name, k) || line[k] != ':') return -2;
    char tmp[32];
    size_t m = len - k - 1;
    if (m >= sizeof tmp) return -1;
    memcpy(tmp, line + k + 1, m);
    tmp[m] = 0;
    char *end;
    errno = 0;
    long v = strtol(tmp, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (errno || *end || end == tmp || v < 0) return -1;
    return v;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    attnc_http *h = ud;
    size_t len = size * n;
    long v;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new answer (after a 100 Continue, say) */
        h->header_len = -1;
        h->retry_after = -1;
    } else if ((v = header_value(p, len, "Inference-Header-Content-Length")) != -2) {
        h->header_len = v;
    } else if ((v = header_value(p, len, "Retry-After")) != -2) {
        h->retry_after = v;
    }
    return len;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Streams the body segments to curl. */
typedef struct body_reader {
    const attnc_seg *segs;
    size_t nseg, i, off;
} body_reader;

static size_t on_read(char *dst, size_t size, size_t n, void *ud) {
    body_reader *r = ud;
    size_t cap = size * n, done = 0;
    while (done < cap && r->i < r->nseg) {
        const attnc_seg *s = &r->segs[r->i];
        size_t k = s->len - r->off;
        if (k > cap - done) k = cap - done;
        if (k) memcpy(dst + done, (const char *)s->p + r->off, k);
        done += k;
        r->off += k;
        if (r->off == s->len) {
            r->i++;
            r->off = 0;
        }
    }
    return done;
}

static int on_seek(void *ud, curl_off_t offset, int origin) {
    body_reader *r = ud;
    if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
    r->i = r->off = 0;
    return CURL_SEEKFUNC_OK;
}

static attnc_status perform(attnc_client *c, const char *method, const char *url,
                            const attnc_seg *segs, size_t nseg, long header_len, attnc_http *res,
                            attnc_error *err) {
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps the connection cache */
    struct curl_slist *hdrs = NULL, *t;
    char hl[80];
    attnc_status st = ATTNC_OK;
    /* "Expect: 100-continue" would cost a round trip on big bodies. */
    const char *fixed[] = {"Expect:", "Accept: application/json, application/octet-stream", NULL};
    for (int i = 0; fixed[i]; i++) {
        if (!(t = curl_slist_append(hdrs, fixed[i]))) goto oom;
        hdrs = t;
    }
    if (c->auth) {
        if (!(t = curl_slist_append(hdrs, c->auth))) goto oom;
        hdrs = t;
    }
    if (c->cur_header) {
        if (!(t = curl_slist_append(hdrs, c->cur_header))) goto oom;
        hdrs = t;
    }
    if (c->cur_req_coding && !strcmp(method, "POST")) {
        char ce[64];
        snprintf(ce, sizeof ce, "Content-Encoding: %s", c->cur_req_coding);
        if (!(t = curl_slist_append(hdrs, ce))) goto oom;
        hdrs = t;
    }
    body_reader reader = {segs, nseg, 0, 0};
    curl_off_t len = 0;
    for (size_t i = 0; i < nseg; i++) len += (curl_off_t)segs[i].len;
    int put = !strcmp(method, "PUT");
    if (!strcmp(method, "POST") || put) {
        if (put) {
            if (!(t = curl_slist_append(hdrs, "Content-Type: application/octet-stream"))) goto oom;
        } else if (header_len >= 0) {
            snprintf(hl, sizeof hl, "Inference-Header-Content-Length: %ld", header_len);
            if (!(t = curl_slist_append(hdrs, hl))) goto oom;
            hdrs = t;
            if (!(t = curl_slist_append(hdrs, "Content-Type: application/octet-stream"))) goto oom;
        } else if (!(t = curl_slist_append(hdrs, "Content-Type: application/json"))) {
            goto oom;
        }
        hdrs = t;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &reader);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &reader);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len);
        if (put) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (!strcmp(method, "DELETE")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "attnc/" ATTNC_VERSION);
    if (c->cur_accept_coding) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, c->cur_accept_coding); /* libcurl inflates */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
    char curl_msg[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
        if (res->body.oom) st = attnc__err(err, ATTNC_E_NOMEM, res->status, "out of memory reading the response");
    } else if (res->too_large) {
        st = attnc__err(err, ATTNC_E_TOO_LARGE, 0, "%s %s: the response is larger than %zu bytes",
                        method, url, c->max_response);
    } else if (res->body.oom) {
        st = attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory reading the response");
    } else {
        st = attnc__err(err, rc == CURLE_OPERATION_TIMEDOUT ? ATTNC_E_TIMEOUT : ATTNC_E_TRANSPORT, 0,
                        "%s %s: %s", method, url, curl_msg[0] ? curl_msg : curl_easy_strerror(rc));
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return st;
oom:
    curl_slist_free_all(hdrs);
    return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory building a request");
}

attnc_status attnc__request(attnc_client *c, const char *method, const char *path,
                            const attnc_seg *segs, size_t nseg, long header_len, attnc_http *res,
                            attnc_error *err) {
    memset(res, 0, sizeof *res);
    attnc_buf url = {0};
    attnc__buf_puts(&url, c->url);
    attnc__buf_puts(&url, path);
    if (url.oom) {
        attnc__buf_free(&url);
        return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    }
    attnc_status st = ATTNC_OK;
    for (int attempt = 0;; attempt++) {
        attnc__http_free(res);
        memset(res, 0, sizeof *res);
        res->header_len = res->retry_after = -1;
        res->max = c->max_response;
        st = perform(c, method, url.p, segs, nseg, header_len, res, err);
        if (st != ATTNC_OK || res->status != 503 || attempt >= c->retries) break;
        long ms = res->retry_after >= 0 ? res->retry_after * 1000 : 100L << attempt;
        sleep_ms(ms > 5000 ? 5000 : ms);
    }
    attnc__buf_free(&url);
    return st;
}

static attnc_status status_of_http(long s) {
    switch (s) {
    case 400: return ATTNC_E_BAD_REQUEST;
    case 401:
    case 403: return ATTNC_E_UNAUTHORIZED;
    case 404: return ATTNC_E_NOT_FOUND;
    case 409: return ATTNC_E_CONFLICT;
    case 413: return ATTNC_E_TOO_LARGE;
    case 503: return ATTNC_E_UNAVAILABLE;
    case 504: return ATTNC_E_TIMEOUT;
    default: return s >= 500 && s < 600 ? ATTNC_E_SERVER : ATTNC_E_HTTP;
    }
}

attnc_status attnc__http_error(const attnc_http *res, const char *what, attnc_error *err) {
    attnc_status s = status_of_http(res->status);
    const char *text = NULL;
    json_t *j = NULL;
    if (res->body.len) {
        j = json_loadb(res->body.p, res->body.len, 0, NULL);
        json_t *e = json_is_object(j) ? json_object_get(j, "error") : NULL;
        if (json_is_string(e)) text = json_string_value(e);
    }
    if (text) attnc__err(err, s, res->status, "%s: %s", what, text);
    else attnc__err(err, s, res->status, "%s: HTTP %ld (%s)", what, res->status, attnc_status_str(s));
    if (err) err->retry_after = res->retry_after;
    json_decref(j);
    return s;
}

char *attnc__path(attnc_client *c, const char *prefix, const char *name, const char *suffix) {
    char *esc = curl_easy_escape(c->curl, name, 0);
    if (!esc) return NULL;
    attnc_buf b = {0};
    attnc__buf_puts(&b, prefix);
    attnc__buf_puts(&b, esc);
    attnc__buf_puts(&b, suffix);
    curl_free(esc);
    if (b.oom) {
        attnc__buf_free(&b);
        return NULL;
    }
    return b.p;
}

attnc_status attnc__read_file(const char *path, char **out, size_t *len, attnc_error *err) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return attnc__err(err, ATTNC_E_IO, 0, "%s: %s", path, strerror(errno));
    attnc_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) attnc__buf_add(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.oom) {
        attnc__buf_free(&b);
        return attnc__err(err, bad ? ATTNC_E_IO : ATTNC_E_NOMEM, 0, "%s: %s", path,
                          bad ? "read error" : "out of memory");
    }
    if (!b.p) attnc__buf_add(&b, "", 0);
    if (b.oom) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    *out = b.p;
    *len = b.len;
    return ATTNC_OK;
}

/* ---- health and metadata ---- */

static attnc_status yes_no(attnc_client *c, const char *path, const char *what, int *yes,
                           attnc_error *err) {
    attnc_http res;
    *yes = 0;
    attnc_status st = attnc__request(c, "GET", path, NULL, 0, -1, &res, err);
    if (st == ATTNC_OK) {
        if (res.status >= 200 && res.status < 300) *yes = 1;
        else if (res.status == 401 || res.status == 403 || res.status == 404 ||
                 (res.status >= 500 && res.status != 503))
            st = attnc__http_error(&res, what, err); /* not an answer to the question */
    }
    attnc__http_free(&res);
    return st;
}

attnc_status attnc_server_live(attnc_client *c, int *yes, attnc_error *err) {
    return yes_no(c, "/v2/health/live", "live", yes, err);
}

attnc_status attnc_server_ready(attnc_client *c, int *yes, attnc_error *err) {
    return yes_no(c, "/v2/health/ready", "ready", yes, err);
}

attnc_status attnc_model_ready(attnc_client *c, const char *model, int *yes, attnc_error *err) {
    *yes = 0;
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    char *path = attnc__path(c, "/v2/models/", model, "/ready");
    if (!path) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    attnc_status st = yes_no(c, path, model, yes, err);
    free(path);
    return st;
}

static attnc_status get_json(attnc_client *c, const char *path, const char *what, char **json,
                             attnc_error *err) {
    attnc_http res;
    *json = NULL;
    attnc_status st = attnc__request(c, "GET", path, NULL, 0, -1, &res, err);
    if (st == ATTNC_OK && (res.status < 200 || res.status >= 300))
        st = attnc__http_error(&res, what, err);
    if (st == ATTNC_OK) {
        json_error_t je;
        json_t *j = json_loadb(res.body.p ? res.body.p : "", res.body.len, 0, &je);
        if (!json_is_object(j)) {
            st = attnc__err(err, ATTNC_E_PROTOCOL, res.status, "%s: the answer is not a JSON object", what);
        } else {
            *json = res.body.p; /* hand the buffer over */
            res.body.p = NULL;
        }
        json_decref(j);
    }
    attnc__http_free(&res);
    return st;
}

attnc_status attnc_server_metadata(attnc_client *c, char **json, attnc_error *err) {
    return get_json(c, "/v2", "server metadata", json, err);
}

attnc_status attnc_model_metadata(attnc_client *c, const char *model, char **json,
                                  attnc_error *err) {
    *json = NULL;
    if (!model || !*model) return attnc__err(err, ATTNC_E_INVALID, 0, "no model name");
    char *path = attnc__path(c, "/v2/models/", model, "");
    if (!path) return attnc__err(err, ATTNC_E_NOMEM, 0, "out of memory");
    attnc_status st = get_json(c, path, model, json, err);
    free(path);
    return st;
}
