/*
 * http.c — libmicrohttpd glue: accepting requests, limits, routing and
 * authentication before the body is read, body accumulation, suspend and
 * resume, responses, and the log line and metrics of every request.
 *
 * Limits that libmicrohttpd enforces for us: header size (the per-connection
 * memory pool, --max-header-bytes), chunk-size lines (parsed inside that
 * pool), connection count and idle time.  The body limit is ours: a declared
 * Content-Length over it gets 413 before any of the body is stored; a
 * chunked body is counted as it arrives, and when it passes the limit it
 * gets 413 at once (libmicrohttpd 0.9.75 cannot queue a response in the
 * middle of an upload, so the status line is written to the socket
 * directly).
 *
 * An answer given before the body has been read (401, 404, 413, 415, ...)
 * waits until the client has sent that body, which is read and dropped, up
 * to DRAIN_MAX bytes past the limit: most clients read nothing before they
 * have sent everything, and closing on a client still sending makes it see
 * a reset instead of the answer.  A client that sends Expect: 100-continue
 * gets the answer at once instead of the go-ahead.
 *
 * Two things libmicrohttpd does not do: bound the time a request may take
 * to arrive (its timeout only counts idle time, so a byte a second would
 * hold a connection forever), and notice that a client whose request is
 * computing has gone.  Each connection is tracked for both (see "the
 * receive deadline" below).
 *
 * Compressed bodies (zbody.c): a request with Content-Encoding gzip or
 * deflate is inflated as it arrives into the same buffer a plain body uses,
 * so --max-body-bytes bounds the inflated size (413 mid-stream, as for a
 * chunked body) as well as the bytes on the wire; a corrupt or truncated
 * stream gets 400, any other coding 415.  A reply of at least
 * --compress-min-bytes is compressed when the request's Accept-Encoding
 * allows gzip or deflate; every reply says Vary: Accept-Encoding.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "sched.h"
#include "zbody.h"

/* Bytes of an unwanted body read and dropped past --max-body-bytes before
 * the connection is closed on the client (see above). */
#define DRAIN_MAX ((size_t)64 << 20)

/* A request must arrive within --idle-timeout seconds plus one second for
 * every MIN_UPLOAD_RATE bytes of its body. */
#define MIN_UPLOAD_RATE (16 * 1024)

enum {
    ST_READING,
    ST_DISCARDING, /* answered; reading and dropping the body before the answer goes out */
    ST_DRAINING,   /* the 413 went out on the socket; dropping the body, then close */
    ST_SUSPENDED,
    ST_RESUMED,
    ST_ANSWERED
};

struct conn_track;

struct svc_req {
    struct MHD_Connection *conn;
    MHD_socket fd;
    struct conn_track *track;        /* the connection's; NULL if it could not be tracked */
    size_t dropped;                  /* body bytes read and dropped (ST_DISCARDING, ST_DRAINING) */
    char method[16];
    char path[256];                  /* for the log: truncated */
    char id[SVC_REQUEST_ID_MAX + 1];
    char model[SVC_MODEL_NAME_MAX + 1];
    char seq_id[SVC_SEQ_ID_MAX + 1]; /* sent back in the Sequence-Id header; "" none */
    svc_route route;
    uint64_t t0;
    char *body;                      /* body_pad bytes into its allocation */
    size_t len, cap, body_pad;
    svc_zin *zin;                    /* Content-Encoding gzip or deflate: inflates into body */
    size_t raw_in;                   /* compressed body bytes received */
    int state;
    int submitted;                   /* a job owns the answer (HTTP thread only) */
    svc_reply reply;                 /* waiting to be queued */
    int have_reply;
    int status;                      /* sent */
    size_t bytes_out;
    char error[200];                 /* for the log */
};

static struct MHD_Daemon *daemon_;
static atomic_int inflight;
static atomic_uint req_counter;
static unsigned req_seed;

/* ---- the receive deadline, and clients that leave ---- */

/* One per TCP connection, from libmicrohttpd's connection notifications.
 * A receive window opens when the connection opens, when a request line
 * arrives and when an answer has gone out; it closes when the whole
 * request is in (busy).  The loop thread's sweep shuts down a connection
 * whose window has been open longer than allowed; libmicrohttpd then sees
 * the end of the stream and closes it on its own thread.  Guarded by
 * track_mu; libmicrohttpd reports CLOSED before it closes the socket, so
 * a tracked fd is always the connection's own. */
typedef struct conn_track {
    MHD_socket fd;
    uint64_t t;        /* the window opened (svc_now_us) */
    size_t body;       /* body bytes received in the window */
    int busy;          /* the request is in: no deadline until it is answered */
    int cut;
    struct conn_track *prev, *next;
} conn_track;

static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;
static conn_track *tracks;

static conn_track *track_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void track_window(conn_track *t) {
    if (!t) return;
    pthread_mutex_lock(&track_mu);
    t->t = svc_now_us();
    t->body = 0;
    t->busy = 0;
    pthread_mutex_unlock(&track_mu);
}

static void track_body(conn_track *t, size_t n) {
    if (!t) return;
    pthread_mutex_lock(&track_mu);
    t->body += n;
    pthread_mutex_unlock(&track_mu);
}

static void track_busy(conn_track *t) {
    if (!t) return;
    pthread_mutex_lock(&track_mu);
    t->busy = 1;
    pthread_mutex_unlock(&track_mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = ci ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t) return; /* untracked: libmicrohttpd's idle timeout still applies */
        t->fd = ci->connect_fd;
        t->t = svc_now_us();
        pthread_mutex_lock(&track_mu);
        t->next = tracks;
        if (tracks) tracks->prev = t;
        tracks = t;
        pthread_mutex_unlock(&track_mu);
        return;
    }
    conn_track *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&track_mu);
    if (t->prev) t->prev->next = t->next;
    else tracks = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&track_mu);
    free(t);
    *socket_context = NULL;
}

/* Called when a request line has arrived: its window starts now. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)cls;
    (void)uri;
    track_window(track_of(c));
    return NULL;
}

void svc_http_sweep(void) {
    if (svc_cfg.idle_timeout_s <= 0) return;
    uint64_t now = svc_now_us(), base = (uint64_t)svc_cfg.idle_timeout_s * 1000000u;
    unsigned cut = 0;
    pthread_mutex_lock(&track_mu);
    for (conn_track *t = tracks; t; t = t->next) {
        if (t->busy || t->cut) continue;
        uint64_t allowed = base + (uint64_t)(t->body / MIN_UPLOAD_RATE) * 1000000u;
        if (now - t->t <= allowed) continue;
        shutdown(t->fd, SHUT_RDWR);
        t->cut = 1;
        cut++;
    }
    pthread_mutex_unlock(&track_mu);
    if (cut) {
        svc_log("warn", "closed %u connection%s still sending a request after the receive deadline "
                        "(--idle-timeout %d s, then %d KiB/s)",
                cut, cut == 1 ? "" : "s", svc_cfg.idle_timeout_s, MIN_UPLOAD_RATE / 1024);
    }
}

/* The job's gone callback: the client of a suspended request has closed
 * its side (or reset). */
static int client_gone(svc_job *j) {
    const svc_req *r = j->owner;
    struct pollfd p = {.fd = r->fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ---- request ids ---- */

bool svc_valid_request_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > SVC_REQUEST_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-_.:", c)))
            return 0;
    }
    return 1;
}

/* ---- responses ---- */

typedef struct iov_owner {
    char *body;
    attn_tensor *tail;
} iov_owner;

static void free_iov_owner(void *cls) {
    iov_owner *o = cls;
    free(o->body);
    attn_tensor_free(o->tail);
    free(o);
}

/* Up to this size a reply with a tail is sent from one buffer: libmicrohttpd
 * writes a buffer's headers and body with one sendmsg, but an iovec
 * response's headers alone first, a second segment (and wake-up) for the
 * client for every small binary reply. */
#define SMALL_REPLY (64u << 10)

static struct MHD_Response *make_response(svc_reply *rep) {
    struct MHD_Response *resp = NULL;
    if (rep->tail && rep->tail->nbytes && rep->len + rep->tail->nbytes <= SMALL_REPLY) {
        char *b = realloc(rep->body, rep->len + rep->tail->nbytes);
        if (b) {
            memcpy(b + rep->len, rep->tail->data, rep->tail->nbytes);
            rep->body = b;
            rep->len += rep->tail->nbytes;
            attn_tensor_free(rep->tail);
            rep->tail = NULL;
        } /* else: out of memory; send it in two parts as below */
    }
    if (rep->tail && rep->tail->nbytes) {
        iov_owner *o = malloc(sizeof *o);
        if (!o) return NULL;
        struct MHD_IoVec iov[2] = {{rep->body, rep->len}, {rep->tail->data, rep->tail->nbytes}};
        o->body = rep->body;
        o->tail = rep->tail;
        resp = MHD_create_response_from_iovec(iov, 2, free_iov_owner, o);
        if (!resp) {
            free(o);
            return NULL;
        }
    } else {
        resp = MHD_create_response_from_buffer(rep->len, rep->body ? rep->body : (char *)"",
                                               rep->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) return NULL;
        attn_tensor_free(rep->tail);
    }
    rep->body = NULL; /* owned by the response now */
    rep->tail = NULL;
    return resp;
}

/* Replaces the reply's body (and tail) by its compressed form when the
 * client accepts one and it is worth it; the coding's name, or NULL. */
static const char *compress_reply(svc_req *r, svc_reply *rep, size_t total) {
    if (svc_cfg.compress_level <= 0 || total == 0 || total < svc_cfg.compress_min) return NULL;
    if (svc_cfg.compress_max && total > svc_cfg.compress_max) return NULL; /* see --compress-max-bytes */
    svc_enc enc = svc_z_accept(svc_req_header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    if (enc == SVC_ENC_IDENTITY) return NULL;
    size_t zl;
    char *z = svc_z_compress(enc, svc_cfg.compress_level, rep->body, rep->len, rep->tail ? rep->tail->data : NULL,
                             rep->tail ? rep->tail->nbytes : 0, &zl);
    if (!z) return NULL; /* out of memory: send it as it is */
    if (zl >= total) {
        free(z);
        return NULL;
    }
    free(rep->body);
    attn_tensor_free(rep->tail);
    rep->tail = NULL;
    rep->body = z;
    rep->len = zl;
    return svc_z_name(enc);
}

static enum MHD_Result queue_reply(svc_req *r) {
    svc_reply *rep = &r->reply;
    size_t total = rep->len + (rep->tail ? rep->tail->nbytes : 0);
    const char *coding = compress_reply(r, rep, total);
    if (coding) total = rep->len;
    int status = rep->status ? rep->status : 500;
    if (rep->err.status) snprintf(r->error, sizeof r->error, "%.*s", (int)sizeof r->error - 1, rep->err.msg);
    long header_len = rep->header_len;
    int retry = rep->retry_after, challenge = rep->auth_challenge;
    const char *ctype = rep->ctype;
    char allow[sizeof rep->allow];
    memcpy(allow, rep->allow, sizeof allow);
    struct MHD_Response *resp = make_response(rep);
    svc_reply_clear(rep);
    r->have_reply = 0;
    r->state = ST_ANSWERED;
    if (!resp) return MHD_NO;
    char num[32];
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (coding) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, coding);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (header_len >= 0) {
        snprintf(num, sizeof num, "%ld", header_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", num);
    }
    if (retry > 0) {
        snprintf(num, sizeof num, "%d", retry);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (challenge) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (allow[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->seq_id[0]) MHD_add_response_header(resp, SVC_SEQ_HEADER, r->seq_id);
    if (atomic_load(&svc_draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result q = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->bytes_out = total;
    return q;
}

void svc_req_reply(svc_req *r, svc_reply *rep) {
    svc_reply_clear(&r->reply);
    r->reply = *rep;
    svc_reply_init(rep);
    r->have_reply = 1;
}

/* The job's answer callback (loop thread): answer the suspended request
 * and resume it; steals *rep, whose status is the one given. */
static void complete(svc_job *j, int status, svc_reply *rep) {
    (void)status;
    svc_req *r = j->owner;
    svc_reply_clear(&r->reply);
    r->reply = *rep;
    svc_reply_init(rep);
    r->have_reply = 1;
    r->state = ST_RESUMED;
    MHD_resume_connection(r->conn);
}

int svc_req_submit(svc_req *r, struct svc_job *j, svc_err *e) {
    if (svc_sched_reserve(e) != 0) return e->status;
    r->submitted = 1;
    r->state = ST_SUSPENDED;
    j->answer = complete;
    j->gone = client_gone;
    j->owner = r;
    MHD_suspend_connection(r->conn);
    svc_sched_submit(j);
    return 0;
}

const char *svc_req_header(svc_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *svc_req_body(svc_req *r, size_t *len) {
    *len = r->len;
    return r->body;
}
static void body_free(svc_req *r) {
    if (r->body) free(r->body - r->body_pad);
    r->body = NULL;
    r->body_pad = 0;
}
void *svc_req_take_body_block(svc_req *r) {
    void *b = r->body ? r->body - r->body_pad : NULL;
    r->body = NULL;
    r->body_pad = 0;
    return b;
}
const char *svc_req_model(svc_req *r) { return r->route.model; }
const char *svc_req_id(svc_req *r) { return r->id; }
void svc_req_set_model(svc_req *r, const char *name) {
    snprintf(r->model, sizeof r->model, "%s", name);
}

void svc_req_set_sequence(svc_req *r, const char *id) { snprintf(r->seq_id, sizeof r->seq_id, "%s", id); }
const char *svc_req_arg(svc_req *r) { return r->route.arg; }

/* ---- the access handler ---- */

/* A chunked body passed the limit: say 413 on the socket, then read and
 * drop the rest of the body (ST_DRAINING) and close. */
static enum MHD_Result refuse_midstream(svc_req *r) {
    char msg[400], body[200];
    const char *what = r->zin ? "inflated request body" : "request body";
    int bn = snprintf(body, sizeof body, "{\"error\":\"%s exceeds the limit of %zu bytes\"}", what,
                      svc_cfg.max_body);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
                     bn, r->id, body);
    if (n > 0 && (size_t)n < sizeof msg) {
        ssize_t w = send(r->fd, msg, (size_t)n, MSG_NOSIGNAL);
        (void)w; /* best effort: the connection closes either way */
    }
    r->status = 413;
    r->bytes_out = (size_t)(n > 0 ? n : 0);
    snprintf(r->error, sizeof r->error, "%s exceeds the limit of %zu bytes", what, svc_cfg.max_body);
    body_free(r);
    r->dropped = r->zin ? 0 : r->len; /* a compressed body counts in raw_in */
    r->len = r->cap = 0;
    r->state = ST_DRAINING;
    return MHD_YES;
}

/* Media types a request body may carry: JSON, the binary extension, and
 * what `curl -d` and plain-text tools send. */
static int body_type_ok(const char *ct) {
    static const char *const ok[] = {"application/json", "application/octet-stream",
                                     "application/x-www-form-urlencoded", "text/plain"};
    if (!ct) return 1;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0) return 1;
    return 0;
}

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) ++*(int *)cls;
    return MHD_YES;
}

/* Routing, auth and the framing checks, before any of the body is read.
 * An answer given here is queued by the caller (or, when a body follows,
 * after the body: see the top of the file). */
static void first_call(svc_req *r, const char *url, const char *method) {
    svc_reply rep;
    svc_reply_init(&rep);
    const char *rid = svc_req_header(r, "X-Request-Id");
    if (rid && svc_valid_request_id(rid)) snprintf(r->id, sizeof r->id, "%s", rid);
    else snprintf(r->id, sizeof r->id, "%08x%08x", req_seed, atomic_fetch_add(&req_counter, 1));
    const char *cl = svc_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = svc_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    int n_cl = 0;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_length, &n_cl);
    if (n_cl > 1 || (cl && te)) {
        /* Two framings: a proxy in front may have read another one (request smuggling). */
        svc_reply_error(&rep, 400, "%s", n_cl > 1 ? "more than one Content-Length"
                                                  : "both Content-Length and Transfer-Encoding");
        svc_req_reply(r, &rep);
        return;
    }
    if (svc_api_match(method, url, &r->route, &rep) != 0) {
        svc_req_reply(r, &rep);
        return;
    }
    if (r->route.model[0]) svc_req_set_model(r, r->route.model);
    svc_err e;
    if (svc_auth_check(r->route.auth, svc_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION), &e) != 0) {
        svc_reply_fail(&rep, &e);
        rep.auth_challenge = 1;
        svc_req_reply(r, &rep);
        return;
    }
    const char *ct = svc_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if ((strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) && !body_type_ok(ct)) {
        svc_reply_error(&rep, 415, "Content-Type %.60s is not accepted (application/json, or "
                                   "application/octet-stream for binary tensors)", ct);
        svc_req_reply(r, &rep);
        return;
    }
    svc_enc enc;
    const char *ce = svc_req_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (svc_z_content_encoding(ce, &enc) != 0) {
        svc_reply_error(&rep, 415, "Content-Encoding %.60s is not supported (gzip, deflate or identity, one of them)",
                        ce);
        svc_req_reply(r, &rep);
        return;
    }
    if (enc != SVC_ENC_IDENTITY && !(r->zin = svc_z_in_new(enc))) {
        svc_reply_error(&rep, 503, "out of memory");
        svc_req_reply(r, &rep);
        return;
    }
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > svc_cfg.max_body) {
            svc_reply_error(&rep, 413, "request body of %llu bytes exceeds the limit of %zu bytes", n,
                            svc_cfg.max_body);
            svc_req_reply(r, &rep);
            return;
        }
        if (*end == '\0' && n > 0 && !r->zin) { /* one allocation for a declared body */
            /* With the binary extension, place the body so that the tensor
             * bytes after its JSON header start 64-byte aligned: then they
             * can be used in place (api_infer.c). */
            const char *hl = svc_req_header(r, "Inference-Header-Content-Length");
            unsigned long long h = hl ? strtoull(hl, NULL, 10) : 0;
            size_t pad = h && h <= n ? (size_t)((64 - h % 64) % 64) : 0;
            char *base = aligned_alloc(64, ((size_t)n + 1 + pad + 63) / 64 * 64);
            r->body = base ? base + pad : NULL;
            r->body_pad = base ? pad : 0;
            if (!r->body) {
                svc_reply_error(&rep, 503, "out of memory for a %llu-byte body", n);
                svc_req_reply(r, &rep);
                return;
            }
            r->cap = (size_t)n;
        }
    }
}

/* An answer is ready before the body: send it now, or after the body has
 * been read and dropped.  The body is waited for when one follows, the
 * client did not ask for 100-continue (then it sends no body unless told
 * to), and the declared length is within DRAIN_MAX of the limit. */
static enum MHD_Result answer_early(svc_req *r) {
    const char *cl = svc_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = svc_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *expect = svc_req_header(r, MHD_HTTP_HEADER_EXPECT);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    int body_follows = te != NULL || n > 0;
    if (!body_follows || (expect && strcasecmp(expect, "100-continue") == 0) ||
        n > svc_cfg.max_body + DRAIN_MAX)
        return queue_reply(r);
    body_free(r); /* first_call may have allocated it */
    r->cap = 0;
    r->state = ST_DISCARDING;
    return MHD_YES;
}

static int append(svc_req *r, const char *data, size_t n) {
    if (n > svc_cfg.max_body - r->len) return 413;
    if (n > r->cap - r->len) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap - r->len < n) cap = cap > svc_cfg.max_body / 2 ? svc_cfg.max_body : cap * 2;
        if (r->body_pad) { /* a declared body does not grow; keep realloc valid regardless */
            memmove(r->body - r->body_pad, r->body, r->len);
            r->body -= r->body_pad;
            r->body_pad = 0;
        }
        char *p = realloc(r->body, cap + 1);
        if (!p) return 503;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

static int sink_append(void *cls, const char *data, size_t n) { return append(cls, data, n); }

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **con_cls) {
    (void)cls;
    (void)version;
    svc_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->conn = c;
        r->t0 = svc_now_us();
        svc_reply_init(&r->reply);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        atomic_fetch_add(&inflight, 1);
        svc_metrics_inflight(1);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
        r->track = track_of(c);
        first_call(r, url, method);
        return r->have_reply ? answer_early(r) : MHD_YES;
    }
    if (r->state == ST_RESUMED) return queue_reply(r);
    if (r->state == ST_DISCARDING || r->state == ST_DRAINING) {
        if (*size) {
            track_body(r->track, *size);
            r->dropped += *size;
            *size = 0;
            /* A body past every bound: close on it (the client may see a reset). */
            return r->dropped > svc_cfg.max_body + DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        /* The body is in: give the answer, or close after the 413 already sent. */
        return r->state == ST_DISCARDING ? queue_reply(r) : MHD_NO;
    }
    if (r->state != ST_READING) {
        *size = 0; /* answered already: whatever still arrives is dropped */
        return MHD_YES;
    }
    if (*size && r->zin) {
        track_body(r->track, *size);
        r->raw_in += *size;
        svc_err e = {0};
        int st = svc_z_in_feed(r->zin, data, *size, sink_append, r, &e);
        *size = 0;
        if (st == 413) return refuse_midstream(r);
        if (st) { /* a corrupt stream: answer once the rest has been read and dropped */
            svc_reply rep;
            svc_reply_init(&rep);
            if (!e.status) svc_fail(&e, 503, "out of memory for the body");
            svc_reply_fail(&rep, &e);
            svc_req_reply(r, &rep);
            body_free(r);
            r->dropped = 0; /* raw_in counts what came */
            r->len = r->cap = 0;
            r->state = ST_DISCARDING;
        }
        return MHD_YES;
    }
    if (*size) {
        track_body(r->track, *size);
        int st = append(r, data, *size);
        if (st == 413) return refuse_midstream(r);
        if (st) return MHD_NO; /* out of memory mid-body: drop the connection */
        *size = 0;
        return MHD_YES;
    }
    track_busy(r->track);
    if (r->zin) {
        svc_err e = {0};
        if (svc_z_in_end(r->zin, &e) != 0) {
            svc_reply rep;
            svc_reply_init(&rep);
            svc_reply_fail(&rep, &e);
            svc_req_reply(r, &rep);
            return queue_reply(r);
        }
    }
    if (!r->body) {
        r->body = malloc(1);
        if (!r->body) return MHD_NO;
    }
    r->body[r->len] = '\0';
    r->route.handler(r);
    /* After a submit the job may already have answered on the loop thread:
     * that reply is queued when libmicrohttpd resumes us, never from here. */
    if (r->submitted) return MHD_YES;
    return r->have_reply ? queue_reply(r) : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode how) {
    (void)cls;
    track_window(track_of(c));
    svc_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->status == 0) r->status = how == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;
    svc_log_req line = {
        .method = r->method,
        .path = r->path,
        .model = r->model[0] ? r->model : NULL,
        .id = r->id,
        .status = r->status,
        .bytes_in = (r->zin ? r->raw_in : r->len) + r->dropped,
        .bytes_out = how == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->status == 413 ? r->bytes_out : 0,
        .us = svc_now_us() - r->t0,
        .error = r->error[0] ? r->error : NULL,
    };
    svc_log_request(&line);
    svc_metrics_http(r->status);
    svc_reply_clear(&r->reply);
    body_free(r);
    svc_z_in_free(r->zin);
    free(r);
    svc_metrics_inflight(-1);
    atomic_fetch_sub(&inflight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    /* Our own way of closing an over-long chunked upload; not news. */
    if (strstr(msg, "Application reported internal error")) return;
    svc_log("warn", "http: %s", msg);
}

/* ---- life cycle ---- */

int svc_http_start(svc_err *e) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, svc_cfg.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)svc_cfg.port);
    } else if (inet_pton(AF_INET6, svc_cfg.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)svc_cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        return svc_fail(e, 500, "--host %s is not an IPv4 or IPv6 address", svc_cfg.host);
    }
    req_seed = (unsigned)getpid() * 2654435761u ^ (unsigned)svc_now_us();
    unsigned pool = svc_cfg.http_threads > 1 ? (unsigned)svc_cfg.http_threads : 0;
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)svc_cfg.port, NULL, NULL, on_access, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)svc_cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)svc_cfg.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, svc_cfg.max_header,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        NULL, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_END);
    if (!daemon_) {
        return svc_fail(e, 500, "cannot listen on %s:%d", svc_cfg.host, svc_cfg.port);
    }
    return 0;
}

int svc_http_port(void) {
    const union MHD_DaemonInfo *info = daemon_ ? MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info ? info->port : svc_cfg.port;
}

void svc_http_quiesce(void) {
    if (!daemon_) return;
    MHD_socket s = MHD_quiesce_daemon(daemon_);
    if (s != MHD_INVALID_SOCKET) close(s);
}

void svc_http_stop(void) {
    if (daemon_) MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}

int svc_http_inflight(void) { return atomic_load(&inflight); }
