/*
 * grpc.c — the gRPC transport: a plain-text HTTP/2 listener (h2c; TLS is the
 * ingress's job), one nghttp2 server session per connection, gRPC's
 * length-prefixed messages, metadata (grpc-timeout, grpc-encoding,
 * authorization), trailers, and the log line and metrics of every call.
 *
 * Everything here runs on the gRPC thread's own libuv loop (see grpc.h).
 * Sockets are non-blocking and watched with uv_poll: a readable socket is
 * read into nghttp2_session_mem_recv, and nghttp2_session_send collects
 * the frames in the connection's output buffer, written with one send()
 * when the session has nothing more to say (a large DATA frame with an
 * empty buffer goes straight to the socket); what a full socket does not
 * take waits there, and nothing more is generated while it holds more than
 * OUT_HIGH bytes.
 *
 * Limits.  A message is at most --max-body-bytes (RESOURCE_EXHAUSTED, and
 * the stream is reset); the metadata of a stream at most --max-header-bytes;
 * GRPC_MAX_STREAMS concurrent streams per connection (nghttp2 refuses more);
 * the connections count against --max-connections.  Flow control is manual:
 * received bytes are given back to the peer's window only when the message
 * they belong to has been handed on (or dropped), and the connection's
 * window is --max-body-bytes, so a connection never holds more than one
 * body limit of unprocessed request bytes however many streams it opens.
 * nghttp2 itself bounds SETTINGS and PING floods (its outbound ack queue,
 * 32 settings per frame) and rapid stream resets.  A message must arrive
 * within --idle-timeout plus one second per 16 KiB from the moment the
 * stream opened or its previous message was complete (the same receive
 * deadline as HTTP/1.1's); a connection with no stream open for
 * --idle-timeout is closed.
 */
#include "grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "sched.h"
#include "zbody.h"

#define GRPC_MAX_STREAMS 128
#define OUT_HIGH ((size_t)1 << 20)
#define MIN_UPLOAD_RATE (16 * 1024)
#define META_MAX 3
#define STREAM_PENDING_MAX 16 /* calls of one stream waiting: more and its window is not given back */
#define PATH_PREFIX "/inference.GRPCInferenceService/"

static const char *const meta_names[META_MAX] = {"authorization", "sequence-id", "x-request-id"};

typedef struct gconn gconn;
typedef struct gstream gstream;

typedef struct outchunk {
    const unsigned char *p;
    size_t len, off;
    void *own;          /* freed after sending */
    attn_tensor *tensor; /* freed after sending */
    struct outchunk *next;
} outchunk;

struct svc_gcall {
    gstream *st;          /* NULL once the stream is gone */
    svc_gcall *next;
    unsigned char *msg;   /* the request message (owned unless taken) */
    size_t msg_len;
    int submitted;        /* a job owns the answer */
    int answered;
    svc_reply reply;
    atomic_int gone;      /* the stream has closed: the job's gone() */
    char model[SVC_MODEL_NAME_MAX + 1];
    char rpc[32];
    char id[SVC_REQUEST_ID_MAX + 1];
    uint64_t t0;
};

struct gstream {
    gconn *c;
    int32_t id;
    gstream *prev, *next;      /* the connection's streams */
    char path[96];
    const svc_grpc_rpc *rpc;
    char *meta[META_MAX];
    size_t meta_bytes;
    int bad_ct, bad_method, enc_unsupported;
    char encoding[32];
    int enc;                   /* svc_enc of grpc-encoding: how a message with the compressed flag is coded */
    int compressed;            /* the message coming has the compressed flag */
    uint64_t deadline_us;
    /* receiving */
    unsigned char pre[5];
    size_t pre_n;
    unsigned char *msg;
    size_t msg_len, msg_need;
    int in_msg;                /* the prefix is in, the message is coming */
    size_t unconsumed;         /* bytes received and not yet given back to the window */
    uint64_t win_t;            /* the receive window opened */
    size_t win_bytes;
    int remote_done;           /* END_STREAM from the client */
    int refused;               /* answered with an error: the rest of the request is dropped */
    int n_msgs;
    int n_pending;             /* calls not yet sent */
    size_t msg_cap;
    /* calls, in order of arrival */
    svc_gcall *head, *tail;
    /* sending */
    int headers_sent, closing;
    outchunk *out, *out_tail;
    int trailer_code;          /* -1: none queued */
    char trailer_msg[SVC_ERR_MSG];
    int retry_ms;
    int deferred;
};

struct gconn {
    gconn *prev, *next;
    int fd;
    uv_poll_t poll;
    int poll_events;
    nghttp2_session *s;
    unsigned char *out;        /* bytes the socket did not take yet */
    size_t out_len, out_cap, out_off;
    gstream *streams;
    int n_streams;
    uint64_t idle_since;
    int closing;               /* the poll handle is closing */
    int goaway;
    uint64_t linger_since;     /* the session is done: our side is shut, the peer's bytes drained until it closes */
};

static pthread_t thread_;
static int running;
static uv_loop_t gloop;
static uv_poll_t listen_poll;
static int listen_fd = -1;
static int bound_port;
static uv_async_t wake;        /* answers, quiesce and stop */
static uv_timer_t sweep;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
typedef struct answer_item {
    svc_gcall *c;
    svc_reply rep;
    struct answer_item *next;
} answer_item;
static answer_item *answers, *answers_tail;
static int want_quiesce, want_stop;
static int closed_; /* the loop's handles are closing: answers are dropped (under mu) */
static gconn *conns;
static int n_conns;
static atomic_int inflight;
static atomic_uint req_counter;
static unsigned req_seed;

static void conn_close(gconn *c);
static void conn_flush(gconn *c);
static void stream_pump(gstream *st);
static void stream_free(gstream *st);
static void stream_release(gstream *st);

/* ---- status ---- */

int svc_grpc_code_of(int s) {
    switch (s) {
    case 200: return SVC_GRPC_OK;
    case 400: case 415: return SVC_GRPC_INVALID_ARGUMENT;
    case 401: return SVC_GRPC_UNAUTHENTICATED;
    case 403: return SVC_GRPC_PERMISSION_DENIED;
    case 404: return SVC_GRPC_NOT_FOUND;
    case 405: return SVC_GRPC_UNIMPLEMENTED;
    case 409: return SVC_GRPC_ALREADY_EXISTS;
    case 413: return SVC_GRPC_RESOURCE_EXHAUSTED;
    case 499: return SVC_GRPC_CANCELLED;
    case 503: return atomic_load(&svc_draining) ? SVC_GRPC_UNAVAILABLE : SVC_GRPC_RESOURCE_EXHAUSTED;
    case 504: return SVC_GRPC_DEADLINE_EXCEEDED;
    case 500: return SVC_GRPC_INTERNAL;
    default: return s >= 500 ? SVC_GRPC_INTERNAL : SVC_GRPC_UNKNOWN;
    }
}

const char *svc_grpc_code_name(int code) {
    static const char *const n[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
    return code >= 0 && code <= 16 ? n[code] : "UNKNOWN";
}

/* grpc-timeout: 1-8 digits and a unit (H M S m u n); 0 when absent or bad. */
static uint64_t parse_timeout_us(const char *v, size_t n) {
    if (n < 2 || n > 9) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') return 0;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[n - 1]) {
    case 'H': return x * 3600000000ull;
    case 'M': return x * 60000000ull;
    case 'S': return x * 1000000ull;
    case 'm': return x * 1000ull;
    case 'u': return x;
    case 'n': return x / 1000 ? x / 1000 : 1;
    default: return 0;
    }
}

/* grpc-message: percent-encoded outside printable ASCII. */
static void pct_encode(const char *s, char *out, size_t cap) {
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') out[o++] = (char)ch;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

/* ---- calls ---- */

const char *svc_gcall_metadata(svc_gcall *c, const char *name) {
    if (!c->st) return NULL;
    for (int i = 0; i < META_MAX; i++)
        if (strcmp(meta_names[i], name) == 0) return c->st->meta[i];
    return NULL;
}
uint64_t svc_gcall_deadline_us(svc_gcall *c) { return c->st ? c->st->deadline_us : 0; }
void svc_gcall_set_model(svc_gcall *c, const char *name) { snprintf(c->model, sizeof c->model, "%s", name); }
void *svc_gcall_take_message(svc_gcall *c) {
    void *m = c->msg;
    c->msg = NULL;
    return m;
}

static void call_free(svc_gcall *c) {
    svc_reply_clear(&c->reply);
    free(c->msg);
    free(c);
}

void svc_gcall_reply(svc_gcall *c, svc_reply *rep) {
    svc_reply_clear(&c->reply);
    c->reply = *rep;
    svc_reply_init(rep);
    c->answered = 1;
    /* The stream is pumped by whoever dispatched the call (on_message). */
}

/* Main loop thread: the job's answer. */
static void job_answer(svc_job *j, int status, svc_reply *rep) {
    (void)status;
    answer_item *a = malloc(sizeof *a);
    svc_gcall *c = j->owner;
    if (!a) { /* cannot queue: the call keeps waiting for its stream's end; never lose it silently */
        svc_log("error", "grpc: out of memory passing an answer on");
        return;
    }
    a->c = c;
    a->rep = *rep;
    svc_reply_init(rep);
    a->next = NULL;
    pthread_mutex_lock(&mu);
    if (closed_) { /* the listener has stopped: every stream is gone */
        pthread_mutex_unlock(&mu);
        svc_reply_clear(&a->rep);
        atomic_fetch_sub(&inflight, 1);
        call_free(c);
        free(a);
        return;
    }
    if (answers_tail) answers_tail->next = a;
    else answers = a;
    answers_tail = a;
    uv_async_send(&wake); /* under mu: the handle cannot be closing */
    pthread_mutex_unlock(&mu);
}

static int job_gone(svc_job *j) { return atomic_load(&((svc_gcall *)j->owner)->gone); }

int svc_gcall_submit(svc_gcall *c, struct svc_job *j, svc_err *e) {
    if (svc_sched_reserve(e) != 0) return e->status;
    c->submitted = 1;
    j->answer = job_answer;
    j->gone = job_gone;
    j->owner = c;
    svc_sched_submit(j);
    return 0;
}

/* The log line and the metrics of an answered call. */
static void call_log(svc_gcall *c, size_t bytes_out) {
    int code = c->reply.status == 200 ? SVC_GRPC_OK : svc_grpc_code_of(c->reply.status);
    char path[128];
    snprintf(path, sizeof path, "%s%s", PATH_PREFIX, c->rpc);
    svc_log_req line = {
        .method = "GRPC",
        .path = path,
        .model = c->model[0] ? c->model : NULL,
        .id = c->id,
        .status = c->reply.status ? c->reply.status : 500,
        .bytes_in = c->msg_len,
        .bytes_out = bytes_out,
        .us = svc_now_us() - c->t0,
        .error = c->reply.err.status ? c->reply.err.msg : NULL,
    };
    svc_log_request(&line);
    svc_metrics_grpc(code);
}

/* ---- sending ---- */

static void out_push(gstream *st, const void *p, size_t len, void *own, attn_tensor *t) {
    outchunk *o = calloc(1, sizeof *o);
    if (!o) { /* cannot send it: end the stream rather than send a torn message */
        free(own);
        attn_tensor_free(t);
        nghttp2_submit_rst_stream(st->c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    o->p = p;
    o->len = len;
    o->own = own;
    o->tensor = t;
    if (st->out_tail) st->out_tail->next = o;
    else st->out = o;
    st->out_tail = o;
}

static void out_free_all(gstream *st) {
    while (st->out) {
        outchunk *o = st->out;
        st->out = o->next;
        free(o->own);
        attn_tensor_free(o->tensor);
        free(o);
    }
    st->out_tail = NULL;
}

static ssize_t data_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user) {
    (void)user;
    gstream *st = src->ptr;
    size_t n = 0;
    while (n < len && st->out) {
        outchunk *o = st->out;
        size_t k = o->len - o->off;
        if (k > len - n) k = len - n;
        memcpy(buf + n, o->p + o->off, k);
        n += k;
        o->off += k;
        if (o->off == o->len) {
            st->out = o->next;
            if (!st->out) st->out_tail = NULL;
            free(o->own);
            attn_tensor_free(o->tensor);
            free(o);
        }
    }
    if (n) return (ssize_t)n;
    if (st->trailer_code >= 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        char code[8], msg[3 * SVC_ERR_MSG + 1], retry[16];
        snprintf(code, sizeof code, "%d", st->trailer_code);
        pct_encode(st->trailer_msg, msg, sizeof msg);
        snprintf(retry, sizeof retry, "%d", st->retry_ms);
        nghttp2_nv nv[3] = {
            {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, strlen(msg), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-retry-pushback-ms", (uint8_t *)retry, 22, strlen(retry), NGHTTP2_NV_FLAG_NONE},
        };
        size_t nn = st->trailer_code == 0 ? 1 : st->retry_ms > 0 ? 3 : 2;
        nghttp2_submit_trailer(s, sid, nv, nn);
        st->trailer_code = -1;
        st->closing = 1;
        return 0;
    }
    st->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

/* Sends the response headers the first time there is something to send. */
static void stream_start_response(gstream *st) {
    if (st->headers_sent) {
        if (st->deferred) {
            st->deferred = 0;
            nghttp2_session_resume_data(st->c->s, st->id);
        }
        return;
    }
    st->headers_sent = 1;
    nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                       NV("grpc-accept-encoding", "identity,deflate,gzip")};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = data_read};
    nghttp2_submit_response(st->c->s, st->id, nv, sizeof nv / sizeof *nv, &dp);
}

/* Queues one gRPC message: the 5-byte prefix, then body (and tail). */
static size_t queue_message(gstream *st, char *body, size_t len, attn_tensor *tail, const void *wrap, size_t wrap_len) {
    size_t tl = tail ? tail->nbytes : 0;
    size_t total = wrap_len + len + tl;
    unsigned char *pre = malloc(5 + wrap_len);
    if (!pre) {
        free(body);
        attn_tensor_free(tail);
        nghttp2_submit_rst_stream(st->c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    pre[0] = 0;
    pre[1] = (unsigned char)(total >> 24);
    pre[2] = (unsigned char)(total >> 16);
    pre[3] = (unsigned char)(total >> 8);
    pre[4] = (unsigned char)total;
    if (wrap_len) memcpy(pre + 5, wrap, wrap_len);
    out_push(st, pre, 5 + wrap_len, pre, NULL);
    if (len) out_push(st, body, len, body, NULL);
    else free(body);
    if (tl) out_push(st, tail->data, tl, NULL, tail);
    else attn_tensor_free(tail);
    return 5 + total;
}

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Trailers-only (an error before any message), or trailers after the
 * messages. */
static void stream_finish(gstream *st, int code, const char *msg, int retry_s) {
    if (st->closing || st->trailer_code >= 0) return;
    if (!st->headers_sent) {
        char cs[8], m[3 * SVC_ERR_MSG + 1], retry[16];
        snprintf(cs, sizeof cs, "%d", code);
        pct_encode(msg ? msg : "", m, sizeof m);
        snprintf(retry, sizeof retry, "%d", retry_s * 1000);
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                           NV("grpc-accept-encoding", "identity,deflate,gzip"), NV("grpc-status", cs),
                           NV("grpc-message", m), NV("grpc-retry-pushback-ms", retry)};
        size_t n = code == 0 ? 4 : retry_s > 0 ? 6 : 5;
        st->headers_sent = 1;
        st->closing = 1;
        nghttp2_submit_response(st->c->s, st->id, nv, n, NULL);
        return;
    }
    st->trailer_code = code;
    snprintf(st->trailer_msg, sizeof st->trailer_msg, "%s", msg ? msg : "");
    st->retry_ms = retry_s * 1000;
    stream_start_response(st);
}

/* The log line and metrics of a request refused before it became a call
 * (routing, auth, framing, limits). */
static void refusal_log(gstream *st, int code, const char *msg) {
    static const int http_of[17] = {200, 499, 500, 400, 504, 404, 409, 403, 413, 400, 409, 400, 405, 500, 503, 500, 401};
    char id[SVC_REQUEST_ID_MAX + 1];
    const char *rid = st->meta[2];
    if (rid && svc_valid_request_id(rid)) snprintf(id, sizeof id, "%s", rid);
    else snprintf(id, sizeof id, "%08x%08x", req_seed, atomic_fetch_add(&req_counter, 1));
    svc_log_req line = {.method = "GRPC", .path = st->path[0] ? st->path : "-", .id = id,
                        .status = http_of[code > 0 && code <= 16 ? code : 2], .bytes_in = st->win_bytes,
                        .us = svc_now_us() - st->win_t, .error = msg};
    svc_log_request(&line);
    svc_metrics_grpc(code);
}

/* Refuses the rest of a stream's request with a status: no more calls are
 * taken from it. */
static void stream_refuse(gstream *st, int code, const char *msg, int retry_s) {
    if (st->refused) return;
    st->refused = 1;
    refusal_log(st, code, msg);
    if (!st->head) stream_finish(st, code, msg, retry_s);
    else if (st->trailer_code < 0) { /* after the pending answers */
        st->trailer_code = -2 - code;
        snprintf(st->trailer_msg, sizeof st->trailer_msg, "%s", msg);
        st->retry_ms = retry_s * 1000;
    }
}

/* Sends the answers at the head of the stream's queue, in order. */
static void stream_pump(gstream *st) {
    int streaming = st->rpc && st->rpc->streaming;
    while (st->head && st->head->answered) {
        svc_gcall *c = st->head;
        st->head = c->next;
        if (!st->head) st->tail = NULL;
        svc_reply *r = &c->reply;
        size_t out = 0;
        if (!streaming) {
            if (r->status == 200) {
                stream_start_response(st);
                out = queue_message(st, r->body, r->len, r->tail, NULL, 0);
                r->body = NULL;
                r->tail = NULL;
                stream_finish(st, 0, NULL, 0);
            } else {
                stream_finish(st, svc_grpc_code_of(r->status), r->err.msg, r->retry_after);
            }
        } else {
            /* ModelStreamInferResponse: error_message (1) or infer_response (2). */
            unsigned char wrap[16];
            size_t wl;
            stream_start_response(st);
            if (r->status == 200) {
                size_t n = r->len + (r->tail ? r->tail->nbytes : 0);
                wrap[0] = 0x12;
                wl = 1 + put_varint(wrap + 1, n);
                out = queue_message(st, r->body, r->len, r->tail, wrap, wl);
                r->body = NULL;
                r->tail = NULL;
            } else {
                char text[SVC_ERR_MSG + 64];
                snprintf(text, sizeof text, "%s (%s)", r->err.msg, svc_grpc_code_name(svc_grpc_code_of(r->status)));
                size_t n = strlen(text);
                char *b = malloc(n ? n : 1);
                if (b) memcpy(b, text, n);
                wrap[0] = 0x0a;
                wl = 1 + put_varint(wrap + 1, n);
                out = b ? queue_message(st, b, n, NULL, wrap, wl) : 0;
            }
        }
        call_log(c, out);
        atomic_fetch_sub(&inflight, 1);
        call_free(c);
        st->n_pending--;
    }
    stream_release(st);
    if (!st->head && st->trailer_code <= -2) {
        int code = -2 - st->trailer_code;
        st->trailer_code = -1;
        stream_finish(st, code, st->trailer_msg, st->retry_ms / 1000);
    }
    if (streaming && !st->head && st->remote_done && !st->in_msg) stream_finish(st, 0, NULL, 0);
    if (!streaming && !st->head && st->remote_done && st->n_msgs == 0 && !st->refused)
        stream_finish(st, SVC_GRPC_INVALID_ARGUMENT, "a unary call carries exactly one request message", 0);
}

/* ---- receiving ---- */

static gstream *stream_of(gconn *c, int32_t id) {
    return nghttp2_session_get_stream_user_data(c->s, id);
}

static void give_back(gstream *st, size_t n) {
    if (n > st->unconsumed) n = st->unconsumed;
    st->unconsumed -= n;
    if (n) nghttp2_session_consume(st->c->s, st->id, n);
}

/* The window held back while the stream had too many calls waiting. */
static void stream_release(gstream *st) {
    if (st->n_pending < STREAM_PENDING_MAX && !st->in_msg && !st->pre_n) give_back(st, st->unconsumed);
}

static void dispatch(gstream *st) {
    svc_gcall *c = calloc(1, sizeof *c);
    if (!c) {
        free(st->msg);
        st->msg = NULL;
        stream_refuse(st, SVC_GRPC_RESOURCE_EXHAUSTED, "out of memory", svc_cfg.retry_after_s);
        return;
    }
    c->st = st;
    c->msg = st->msg;
    c->msg_len = st->msg_len;
    c->t0 = svc_now_us();
    st->msg = NULL;
    snprintf(c->rpc, sizeof c->rpc, "%s", st->rpc->name);
    svc_reply_init(&c->reply);
    const char *rid = st->meta[2];
    if (rid && svc_valid_request_id(rid)) snprintf(c->id, sizeof c->id, "%s", rid);
    else snprintf(c->id, sizeof c->id, "%08x%08x", req_seed, atomic_fetch_add(&req_counter, 1));
    if (st->tail) st->tail->next = c;
    else st->head = c;
    st->tail = c;
    atomic_fetch_add(&inflight, 1);
    int refuse = st->c->fd < 0 && st->rpc->auth != SVC_AUTH_NONE; /* fuzzing: no repository, no scheduler */
    if (refuse || (st->rpc->streaming && st->c->goaway && atomic_load(&svc_draining))) {
        /* After the drain's GOAWAY a stream takes no new work (UNAVAILABLE: retry elsewhere). */
        svc_reply rep;
        svc_reply_init(&rep);
        svc_reply_error(&rep, 503, "%s", refuse ? "not while fuzzing" : "the server is shutting down; send it to another replica");
        svc_gcall_reply(c, &rep);
    } else {
        st->rpc->handler(c, c->msg ? c->msg : (const unsigned char *)"", c->msg_len);
    }
    stream_pump(st);
}

/* A compressed message (grpc-encoding deflate or gzip) inflated in place of
 * the received bytes, under the same limit as a plain one (--max-body-bytes:
 * a bomb stops there).  0, or the stream is refused. */
typedef struct inflated {
    unsigned char *p;
    size_t len, cap;
} inflated;

static int inflated_sink(void *cls, const char *data, size_t n) {
    inflated *o = cls;
    if (n > svc_cfg.max_body - o->len) return 413;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 65536;
        while (cap < o->len + n + 1) cap *= 2;
        if (cap > svc_cfg.max_body + 1) cap = svc_cfg.max_body + 1;
        unsigned char *q = realloc(o->p, cap);
        if (!q) return 503;
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, data, n);
    o->len += n;
    return 0;
}

static int inflate_message(gstream *st) {
    svc_err e = {0};
    inflated o = {0};
    svc_zin *z = svc_z_in_new((svc_enc)st->enc);
    int rc = z ? svc_z_in_feed(z, (const char *)st->msg, st->msg_len, inflated_sink, &o, &e) : 503;
    if (rc == 0 && st->msg_len == 0) rc = svc_fail(&e, 400, "an empty compressed message");
    if (rc == 0) rc = svc_z_in_end(z, &e);
    svc_z_in_free(z);
    free(st->msg);
    st->msg = NULL;
    st->compressed = 0;
    if (rc == 0 && !o.p && !(o.p = malloc(1))) rc = 503;
    if (rc != 0) {
        free(o.p);
        char msg[SVC_ERR_MSG + 64];
        if (rc == 413)
            snprintf(msg, sizeof msg, "inflated request message exceeds the limit of %zu bytes", svc_cfg.max_body);
        else if (rc == 503)
            snprintf(msg, sizeof msg, "out of memory for the inflated message");
        else
            snprintf(msg, sizeof msg, "grpc-encoding %s: %s", st->encoding, e.msg);
        stream_refuse(st, rc == 400 ? SVC_GRPC_INTERNAL : SVC_GRPC_RESOURCE_EXHAUSTED, msg,
                      rc == 503 ? svc_cfg.retry_after_s : 0);
        return -1;
    }
    o.p[o.len] = 0;
    st->msg = o.p;
    st->msg_len = st->msg_need = o.len;
    st->msg_cap = o.cap ? o.cap : 1;
    return 0;
}

/* Request bytes of a stream: the 5-byte prefix, then the message. */
static void on_bytes(gstream *st, const uint8_t *p, size_t n) {
    st->win_bytes += n;
    while (n) {
        if (st->refused) { /* dropped: give the window back at once */
            give_back(st, n);
            return;
        }
        if (!st->in_msg) {
            size_t k = 5 - st->pre_n < n ? 5 - st->pre_n : n;
            memcpy(st->pre + st->pre_n, p, k);
            st->pre_n += k;
            p += k;
            n -= k;
            if (st->pre_n < 5) return;
            st->pre_n = 0;
            uint64_t len = (uint64_t)st->pre[1] << 24 | (uint64_t)st->pre[2] << 16 | (uint64_t)st->pre[3] << 8 | st->pre[4];
            char msg[160];
            if (st->pre[0] > 1) {
                stream_refuse(st, SVC_GRPC_INTERNAL, "bad message prefix (compressed flag > 1)", 0);
                continue;
            }
            if (st->pre[0] == 1 && st->enc == SVC_ENC_IDENTITY) { /* the gRPC spec: a protocol error */
                snprintf(msg, sizeof msg, "a compressed message, but grpc-encoding is %s (attnd accepts deflate and gzip)",
                         st->encoding[0] ? st->encoding : "absent");
                stream_refuse(st, SVC_GRPC_INTERNAL, msg, 0);
                continue;
            }
            st->compressed = st->pre[0] == 1;
            if (len > svc_cfg.max_body) {
                snprintf(msg, sizeof msg, "request message of %llu bytes exceeds the limit of %zu bytes",
                         (unsigned long long)len, svc_cfg.max_body);
                stream_refuse(st, SVC_GRPC_RESOURCE_EXHAUSTED, msg, 0);
                continue;
            }
            if (!st->rpc->streaming && st->n_msgs) {
                stream_refuse(st, SVC_GRPC_INVALID_ARGUMENT, "a unary call carries exactly one request message", 0);
                continue;
            }
            st->msg_cap = len < 65536 ? (size_t)len + 1 : 65537;
            st->msg = malloc(st->msg_cap);
            if (!st->msg) {
                stream_refuse(st, SVC_GRPC_RESOURCE_EXHAUSTED, "out of memory for the message", svc_cfg.retry_after_s);
                continue;
            }
            st->msg_need = (size_t)len;
            st->msg_len = 0;
            st->in_msg = 1;
        }
        size_t k = st->msg_need - st->msg_len < n ? st->msg_need - st->msg_len : n;
        if (st->msg_len + k + 1 > st->msg_cap) { /* grows as it arrives: memory follows the bytes received */
            size_t cap = st->msg_cap;
            while (cap < st->msg_len + k + 1) cap = cap > st->msg_need / 2 ? st->msg_need + 1 : cap * 2;
            unsigned char *q = realloc(st->msg, cap);
            if (!q) {
                free(st->msg);
                st->msg = NULL;
                st->in_msg = 0;
                stream_refuse(st, SVC_GRPC_RESOURCE_EXHAUSTED, "out of memory for the message", svc_cfg.retry_after_s);
                continue;
            }
            st->msg = q;
            st->msg_cap = cap;
        }
        memcpy(st->msg + st->msg_len, p, k);
        st->msg_len += k;
        p += k;
        n -= k;
        if (st->msg_len < st->msg_need) return;
        st->msg[st->msg_len] = 0;
        st->in_msg = 0;
        if (st->compressed && inflate_message(st) != 0) continue; /* refused */
        st->n_msgs++;
        st->n_pending++;
        if (st->n_pending < STREAM_PENDING_MAX) give_back(st, st->unconsumed);
        st->win_t = svc_now_us();
        st->win_bytes = 0;
        dispatch(st);
    }
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user) {
    gconn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    gstream *st = calloc(1, sizeof *st);
    if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->c = c;
    st->id = f->hd.stream_id;
    st->trailer_code = -1;
    st->win_t = svc_now_us();
    st->next = c->streams;
    if (c->streams) c->streams->prev = st;
    c->streams = st;
    c->n_streams++;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
    (void)flags;
    gconn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    gstream *st = stream_of(c, f->hd.stream_id);
    if (!st) return 0;
    st->meta_bytes += nlen + vlen + 32;
    if (st->meta_bytes > svc_cfg.max_header) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers from the client: ignored */
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS(":path")) {
        snprintf(st->path, sizeof st->path, "%.*s", (int)(vlen < sizeof st->path ? vlen : sizeof st->path - 1), value);
    } else if (IS(":method")) {
        st->bad_method = !(vlen == 4 && memcmp(value, "POST", 4) == 0);
    } else if (IS("content-type")) {
        st->bad_ct = !(vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 && (vlen == 16 || value[16] == '+' || value[16] == ';'));
    } else if (IS("grpc-timeout")) {
        uint64_t us = parse_timeout_us((const char *)value, vlen);
        if (us) st->deadline_us = svc_now_us() + us;
    } else if (IS("grpc-encoding")) {
        snprintf(st->encoding, sizeof st->encoding, "%.*s", (int)(vlen < 31 ? vlen : 31), value);
        svc_enc enc = SVC_ENC_IDENTITY;
        st->enc_unsupported = svc_z_content_encoding(st->encoding, &enc) != 0 || vlen > 31;
        st->enc = (int)enc;
    } else {
        for (int i = 0; i < META_MAX; i++) {
            if (strlen(meta_names[i]) == nlen && memcmp(meta_names[i], name, nlen) == 0 && !st->meta[i]) {
                st->meta[i] = strndup((const char *)value, vlen);
            }
        }
    }
#undef IS
    return 0;
}

/* The request's headers are in: route, check, authenticate. */
static void on_request_headers(gstream *st) {
    svc_err e = {0};
    if (st->bad_method || st->bad_ct) {
        /* Not gRPC: HTTP's own answer. */
        nghttp2_nv nv[] = {NV(":status", st->bad_method ? "405" : "415"), NV("content-type", "text/plain")};
        st->headers_sent = st->closing = st->refused = 1;
        nghttp2_submit_response(st->c->s, st->id, nv, 2, NULL);
        return;
    }
    size_t pn = strlen(PATH_PREFIX), n;
    const svc_grpc_rpc *rpcs = svc_grpc_rpcs(&n);
    if (strncmp(st->path, PATH_PREFIX, pn) == 0)
        for (size_t i = 0; i < n; i++)
            if (strcmp(st->path + pn, rpcs[i].name) == 0) st->rpc = &rpcs[i];
    char msg[200];
    if (!st->rpc) {
        snprintf(msg, sizeof msg, "unknown method %.120s", st->path);
        stream_refuse(st, SVC_GRPC_UNIMPLEMENTED, msg, 0);
        return;
    }
    if (st->c->goaway) {
        stream_refuse(st, SVC_GRPC_UNAVAILABLE, "the server is shutting down", 0);
        return;
    }
    if (svc_auth_check((svc_auth_class)st->rpc->auth, st->meta[0], &e) != 0) {
        stream_refuse(st, SVC_GRPC_UNAUTHENTICATED, e.msg, 0);
        return;
    }
    if (st->enc_unsupported) {
        snprintf(msg, sizeof msg, "grpc-encoding %s is not supported (attnd accepts identity, deflate, gzip)", st->encoding);
        stream_refuse(st, SVC_GRPC_UNIMPLEMENTED, msg, 0);
        return;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user) {
    (void)s;
    gconn *c = user;
    gstream *st = f->hd.stream_id ? stream_of(c, f->hd.stream_id) : NULL;
    if (!st) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) on_request_headers(st);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        st->remote_done = 1;
        if (st->in_msg || st->pre_n) {
            free(st->msg);
            st->msg = NULL;
            st->in_msg = 0;
            st->pre_n = 0;
            stream_refuse(st, SVC_GRPC_INTERNAL, "the stream ended inside a message", 0);
        }
        if (!st->refused || !st->head) stream_pump(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *user) {
    (void)flags;
    gconn *c = user;
    gstream *st = stream_of(c, sid);
    if (!st) {
        nghttp2_session_consume(s, sid, len);
        return 0;
    }
    st->unconsumed += len;
    if (!st->rpc && !st->refused) { /* data before a valid request: cannot happen after on_request_headers */
        give_back(st, len);
        return 0;
    }
    on_bytes(st, data, len);
    return 0;
}

static void stream_free(gstream *st) {
    gconn *c = st->c;
    if (st->prev) st->prev->next = st->next;
    else c->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    c->n_streams--;
    if (!c->n_streams) c->idle_since = svc_now_us();
    /* Calls still computing are detached: their answers are dropped when
     * they come.  The job's gone() tells the scheduler the client left. */
    for (svc_gcall *k = st->head; k;) {
        svc_gcall *next = k->next;
        k->st = NULL;
        atomic_store(&k->gone, 1);
        if (!k->submitted || k->answered) { /* not waiting for a job */
            if (!k->reply.status) svc_reply_error(&k->reply, 499, "the client closed the stream");
            call_log(k, 0);
            atomic_fetch_sub(&inflight, 1);
            call_free(k);
        }
        k = next;
    }
    for (int i = 0; i < META_MAX; i++) free(st->meta[i]);
    free(st->msg);
    out_free_all(st);
    free(st);
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t err, void *user) {
    (void)err;
    gconn *c = user;
    gstream *st = stream_of(c, sid);
    if (!st) return 0;
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    stream_free(st);
    return 0;
}

/* nghttp2's frames go into the connection's buffer; conn_flush writes it
 * with one send() once the session has nothing more to say (or the buffer
 * passed OUT_HIGH).  A send per frame — HEADERS, DATA and the trailers of
 * every answer — cost a syscall and a loopback wake-up each. */
static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user) {
    (void)s;
    (void)flags;
    gconn *c = user;
    if (c->fd < 0) return (ssize_t)len; /* svc_grpc_fuzz_session: no socket */
    if (c->out_len - c->out_off > OUT_HIGH) return NGHTTP2_ERR_WOULDBLOCK;
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    size_t done = 0;
    if (c->out_len == 0 && len >= 16384) { /* a large DATA frame with nothing before it: straight out */
        ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (w > 0) done = (size_t)w;
        if (done == len) return (ssize_t)len;
        data += done;
        len -= done;
    }
    if (c->out_cap - c->out_len < len) {
        if (c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap - c->out_len < len) cap *= 2;
        unsigned char *p = realloc(c->out, cap);
        if (!p) return NGHTTP2_ERR_CALLBACK_FAILURE;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return (ssize_t)(len + done);
}

/* ---- connections ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(gconn *c) {
    if (c->closing) return;
    int ev = 0;
    if (nghttp2_session_want_read(c->s)) ev |= UV_READABLE;
    if (c->out_len > c->out_off || nghttp2_session_want_write(c->s)) ev |= UV_WRITABLE;
    if (!ev) {
        /* The session is over (GOAWAY, or the peer's).  Closing now with the
         * peer's last frames (WINDOW_UPDATE, SETTINGS ACK) unread would make
         * the kernel send a reset, which can destroy our last answers before
         * the peer reads them: shut our side and drain until the peer closes
         * (the sweep gives it 2 s). */
        if (!c->linger_since) {
            c->linger_since = svc_now_us();
            shutdown(c->fd, SHUT_WR);
        }
        ev = UV_READABLE;
    }
    if (ev != c->poll_events) {
        c->poll_events = ev;
        uv_poll_start(&c->poll, ev, on_poll);
    }
}

static void conn_flush(gconn *c) {
    if (c->closing) return;
    for (;;) {
        if (c->out_len - c->out_off <= OUT_HIGH && nghttp2_session_send(c->s) != 0) {
            conn_close(c);
            return;
        }
        if (c->out_len == c->out_off) break; /* all said */
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break; /* the socket is full: wait for writable */
            if (errno == EINTR) continue;
            conn_close(c);
            return;
        }
        c->out_off += (size_t)w;
        if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
        else break; /* a partial write: the socket is full */
    }
    poll_update(c);
}

static void on_closed(uv_handle_t *h) {
    gconn *c = h->data;
    close(c->fd);
    free(c->out);
    free(c);
}

static void conn_close(gconn *c) {
    if (c->closing) return;
    c->closing = 1;
    while (c->streams) stream_free(c->streams); /* nghttp2_session_del calls no callback */
    nghttp2_session_del(c->s);
    c->s = NULL;
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    n_conns--;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    gconn *c = h->data;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->linger_since) {
        unsigned char drop[16384];
        ssize_t n;
        while ((n = recv(c->fd, drop, sizeof drop, 0)) > 0) {
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) conn_close(c);
        return;
    }
    if (events & UV_READABLE) {
        unsigned char buf[65536];
        for (int rounds = 0; rounds < 16 && !c->closing; rounds++) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n == 0) {
                conn_close(c);
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                conn_close(c);
                return;
            }
            ssize_t r = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
            if (r < 0) { /* a protocol error (nghttp2 has queued its GOAWAY), or a flood of SETTINGS / PINGs */
                nghttp2_session_terminate_session(c->s, r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                                 : NGHTTP2_PROTOCOL_ERROR);
                break;
            }
            if (c->out_len - c->out_off > OUT_HIGH) break; /* let the peer read first */
        }
    }
    conn_flush(c);
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static int setup_nghttp2(void);

static void on_accept(uv_poll_t *h, int status, int events) {
    (void)h;
    (void)events;
    if (status < 0) return;
    for (int k = 0; k < 64; k++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (n_conns >= svc_cfg.max_connections || want_quiesce) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        gconn *c = calloc(1, sizeof *c);
        if (!c || nghttp2_session_server_new2(&c->s, callbacks, c, options) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->idle_since = svc_now_us();
        uint32_t win = svc_cfg.max_body > 0x7fffffff ? 0x7fffffff : (uint32_t)svc_cfg.max_body;
        if (win < 65535) win = 65535;
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GRPC_MAX_STREAMS},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, win},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)svc_cfg.max_header},
        };
        nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, (int32_t)win);
        uv_poll_init(&gloop, &c->poll, fd);
        c->poll.data = c;
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        n_conns++;
        conn_flush(c);
    }
}

/* ---- the loop's own work: answers, drain, sweeps ---- */

static void goaway_all(void) {
    for (gconn *c = conns; c; c = c->next) {
        if (c->goaway) continue;
        c->goaway = 1;
        nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->s),
                              NGHTTP2_NO_ERROR, (const uint8_t *)"draining", 8);
    }
}

static void on_wake(uv_async_t *h) {
    (void)h;
    pthread_mutex_lock(&mu);
    answer_item *a = answers;
    answers = answers_tail = NULL;
    int q = want_quiesce, stop = want_stop;
    pthread_mutex_unlock(&mu);
    while (a) {
        answer_item *next = a->next;
        svc_gcall *c = a->c;
        svc_gcall_reply(c, &a->rep);
        if (c->st) {
            gconn *cn = c->st->c;
            stream_pump(c->st);
            conn_flush(cn);
        } else { /* its stream is gone */
            call_log(c, 0);
            atomic_fetch_sub(&inflight, 1);
            call_free(c);
        }
        free(a);
        a = next;
    }
    if (q && listen_fd >= 0) {
        uv_poll_stop(&listen_poll);
        uv_close((uv_handle_t *)&listen_poll, NULL);
        close(listen_fd);
        listen_fd = -1;
        goaway_all();
        for (gconn *c = conns; c; c = c->next) conn_flush(c);
    }
    if (stop) {
        pthread_mutex_lock(&mu);
        closed_ = 1;
        a = answers; /* came in since the swap above: their streams are closing now */
        answers = answers_tail = NULL;
        pthread_mutex_unlock(&mu);
        while (a) {
            answer_item *next = a->next;
            svc_reply_clear(&a->rep);
            if (a->c->st) { /* still queued on its stream: stream_free logs and frees it */
                svc_reply_error(&a->c->reply, 503, "the server is shutting down");
                a->c->answered = 1;
            } else {
                atomic_fetch_sub(&inflight, 1);
                call_free(a->c);
            }
            free(a);
            a = next;
        }
        while (conns) conn_close(conns);
        if (listen_fd >= 0) {
            uv_poll_stop(&listen_poll);
            uv_close((uv_handle_t *)&listen_poll, NULL);
            close(listen_fd);
            listen_fd = -1;
        }
        uv_timer_stop(&sweep);
        uv_close((uv_handle_t *)&sweep, NULL);
        uv_close((uv_handle_t *)&wake, NULL);
    }
}

/* The receive deadline of every stream, the idle time of every connection. */
static void on_sweep(uv_timer_t *t) {
    (void)t;
    uint64_t now = svc_now_us(), base = (uint64_t)svc_cfg.idle_timeout_s * 1000000u;
    for (gconn *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->linger_since) {
            if (now - c->linger_since > 2000000u) conn_close(c);
            continue;
        }
        if (svc_cfg.idle_timeout_s <= 0) continue;
        if (!c->n_streams && now - c->idle_since > base) {
            if (!c->goaway) {
                c->goaway = 1;
                nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->s),
                                      NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
                conn_flush(c);
            } else if (now - c->idle_since > base + 1000000u) {
                conn_close(c);
            }
            continue;
        }
        int any = 0;
        for (gstream *st = c->streams; st; st = st->next) {
            if (st->head || st->refused || st->remote_done || st->closing) continue;
            uint64_t allowed = base + (uint64_t)(st->win_bytes / MIN_UPLOAD_RATE) * 1000000u;
            if (now - st->win_t <= allowed) continue;
            char msg[160];
            snprintf(msg, sizeof msg, "the request message did not arrive within the receive deadline (--idle-timeout %d s, then %d KiB/s)",
                     svc_cfg.idle_timeout_s, MIN_UPLOAD_RATE / 1024);
            stream_refuse(st, SVC_GRPC_DEADLINE_EXCEEDED, msg, 0);
            nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
            any = 1;
        }
        if (any) conn_flush(c);
    }
}

static void *thread_main(void *arg) {
    (void)arg;
    uv_run(&gloop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- life cycle ---- */

int svc_grpc_start(svc_err *e) {
    if (svc_cfg.grpc_port < 0) return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, svc_cfg.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)svc_cfg.grpc_port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, svc_cfg.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)svc_cfg.grpc_port);
        sl = sizeof *a6;
    } else {
        return svc_fail(e, 500, "--host %s is not an IPv4 or IPv6 address", svc_cfg.host);
    }
    listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (listen_fd >= 0) setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&ss, sl) != 0 || listen(listen_fd, 256) != 0) {
        int err = errno;
        if (listen_fd >= 0) close(listen_fd);
        listen_fd = -1;
        return svc_fail(e, 500, "grpc: cannot listen on %s:%d: %s", svc_cfg.host, svc_cfg.grpc_port, strerror(err));
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    getsockname(listen_fd, (struct sockaddr *)&got, &gl);
    bound_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                : ((struct sockaddr_in6 *)&got)->sin6_port);
    req_seed = (unsigned)getpid() * 40503u ^ (unsigned)svc_now_us() ^ 0x9e3779b9u;
    if (setup_nghttp2() != 0) return svc_fail(e, 500, "grpc: cannot set up nghttp2");
    if (uv_loop_init(&gloop) != 0) return svc_fail(e, 500, "grpc: cannot start its event loop");
    uv_async_init(&gloop, &wake, on_wake);
    uv_timer_init(&gloop, &sweep);
    uv_timer_start(&sweep, on_sweep, 250, 250);
    uv_poll_init(&gloop, &listen_poll, listen_fd);
    uv_poll_start(&listen_poll, UV_READABLE, on_accept);
    if (pthread_create(&thread_, NULL, thread_main, NULL) != 0) {
        return svc_fail(e, 500, "grpc: cannot start its thread");
    }
    running = 1;
    return 0;
}

static int setup_nghttp2(void) {
    if (callbacks) return 0;
    if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&options) != 0) return -1;
    nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_max_outbound_ack(options, 1000);
    nghttp2_option_set_max_settings(options, 32);
    nghttp2_option_set_stream_reset_rate_limit(options, 1000, 33);
    return 0;
}

int svc_grpc_fuzz_session(const uint8_t *data, size_t n) {
    if (setup_nghttp2() != 0) return -1;
    gconn c = {.fd = -1};
    if (nghttp2_session_server_new2(&c.s, callbacks, &c, options) != 0) return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GRPC_MAX_STREAMS},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    nghttp2_submit_settings(c.s, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c.s, NGHTTP2_FLAG_NONE, 0, 1 << 20);
    /* in pieces, as a socket would deliver it, sending what the session has to say between them */
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        size_t k = n - off < 4096 ? n - off : 4096;
        if (nghttp2_session_mem_recv(c.s, data + off, k) < 0) rc = 1;
        if (nghttp2_session_send(c.s) != 0) rc = 1;
        off += k;
    }
    while (c.streams) stream_free(c.streams);
    nghttp2_session_del(c.s);
    return rc;
}

int svc_grpc_port(void) { return running ? bound_port : 0; }

void svc_grpc_quiesce(void) {
    if (!running) return;
    pthread_mutex_lock(&mu);
    want_quiesce = 1;
    pthread_mutex_unlock(&mu);
    uv_async_send(&wake);
}

void svc_grpc_stop(void) {
    if (!running) return;
    pthread_mutex_lock(&mu);
    want_stop = 1;
    pthread_mutex_unlock(&mu);
    uv_async_send(&wake);
    pthread_join(thread_, NULL);
    running = 0;
    uv_loop_close(&gloop);
    pthread_mutex_lock(&mu);
    answer_item *a = answers; /* answers that came after the stop: their streams are gone */
    answers = answers_tail = NULL;
    pthread_mutex_unlock(&mu);
    while (a) {
        answer_item *next = a->next;
        svc_reply_clear(&a->rep);
        atomic_fetch_sub(&inflight, 1);
        call_free(a->c);
        free(a);
        a = next;
    }
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_option_del(options);
}

int svc_grpc_inflight(void) { return atomic_load(&inflight); }
