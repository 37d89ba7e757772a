/*
 * svc.h — what the pieces of attnd share: the configuration (limits), the
 * reply a handler produces, small helpers (clock, growable buffer), and the
 * server-wide flags (ready, draining).
 *
 * Threads.  libmicrohttpd runs the HTTP threads (parse, route, decode,
 * validate); the main thread runs the libuv loop (signals, timers, job
 * completion); libuv's pool runs the compute and the response encoding.
 * Nothing in server/ names a mechanism: everything comes from the registry.
 */
#ifndef SVC_H
#define SVC_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attn.h"

#define SVC_NAME "attnd"
#define SVC_MODEL_NAME_MAX 64
#define SVC_REQUEST_ID_MAX 64
#define SVC_SEQ_ID_MAX 128               /* a sequence id's characters */
#define SVC_SEQ_HEADER "Sequence-Id"     /* the sequence id a load balancer can read */

typedef enum { SVC_CONTROL_EXPLICIT = 0, SVC_CONTROL_NONE = 1, SVC_CONTROL_POLL = 2 } svc_control_mode;

/* ---- configuration: every field has a default, a flag and an ATTND_* variable ---- */
typedef struct svc_config {
    const char *host;        /* listen address */
    int port;
    int grpc_port;           /* the gRPC listener's port; -1: off, 0: any free port */
    const char *repo_dir;    /* model repository; NULL: built-in models only */
    int threads;             /* compute pool threads */
    int http_threads;        /* libmicrohttpd threads (decode, validate) */
    int call_threads;        /* most threads one request may use */
    size_t elems_per_thread; /* a request gets a thread per this many input elements; 0: no cap */
    int inline_max_us;       /* a request expected to take less runs on its front-end's thread; 0: never */
    int cores;               /* threads the machine offers */
    size_t max_body;         /* bytes, 413 beyond */
    size_t max_elements;     /* per tensor */
    int max_rank;
    int64_t max_dim;
    int max_queue;           /* requests waiting for a pool thread; 503 beyond */
    double timeout_s;        /* queue + compute; 504 beyond */
    double drain_timeout_s;
    double shutdown_delay_s; /* not-ready before we stop accepting */
    int idle_timeout_s;      /* connection idle (and slow body) timeout */
    int max_connections;
    size_t max_header;       /* per-connection header memory */
    int max_json_depth;
    int retry_after_s;
    int allow_nonfinite;     /* default for every model */
    size_t compress_min;     /* replies this long or longer are compressed when the client accepts it */
    size_t compress_max;     /* ... and no longer than this (0: no cap) */
    int compress_level;      /* zlib level of compressed replies; 0: never compress */
    const char *api_key_file;
    const char *admin_key_file;
    int log_json;
    int ui;                  /* serve the explorer page at /ui/; -1 until main decides (loopback: on) */
    /* sequences (seqstore.h) */
    size_t max_sequences;    /* live sequences; 0 turns sequences off */
    size_t sequence_memory;  /* bytes of state of all live sequences */
    double sequence_idle_s;  /* a sequence without a request this long ends */
    int64_t max_sequence_tokens;
    double sequence_evict_s; /* an idle sequence may be evicted for room after this long */
    size_t max_attention_elements; /* elements of the attention maps one request may ask for */
    /* the model repository (repo.c, repo_watch.c) */
    svc_control_mode control_mode;
    const char *const *load_models; /* --load-model names (NULL-terminated), NULL: all */
    const char *model_name;         /* the name of a single model folder */
    double poll_s;                  /* poll mode's rescan interval */
} svc_config;

/* config.c owns the globals, so that unit tests and fuzz targets link
 * every server object but main.o. */
extern svc_config svc_cfg; /* written once by main() before any thread starts */
/* The defaults; cores 1, and threads, call_threads, http_threads 0 (main
 * derives them from the cores). */
svc_config svc_config_defaults(void);

/* Server-wide state flags. */
extern atomic_int svc_ready;    /* repository loaded and not draining */
extern atomic_int svc_draining; /* SIGTERM seen */

/* ---- failures: one type for the whole server ----
 * A fallible server function takes an svc_err * (last) and returns 0, or the
 * HTTP status it stored there: the status and the message are filled once,
 * where the failure is known (svc_fail), and the reply body and the log line
 * are both made from that struct (svc_reply_fail).  Predicates (is this a
 * valid name?) return bool instead.  To add a kind of failure, pick its HTTP
 * status where it happens; a library failure takes its status from the one
 * table, svc_status_of (err.c). */
#define SVC_ERR_MSG 512
typedef struct svc_err {
    int status;              /* HTTP status, >= 400 once failed; 0: no failure */
    char msg[SVC_ERR_MSG];
} svc_err;

/* Fills *e and returns status. */
int svc_fail(svc_err *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The one table from library status to HTTP status. */
int svc_status_of(attn_status s);
/* A library failure: status from svc_status_of, unless `status` is not 0
 * (the caller's explicit override, with its reason at the call site);
 * message "<prefix><ae->msg or the status's name>". */
int svc_fail_attn(svc_err *e, attn_status s, const attn_error *ae, int status, const char *prefix);

/* ---- time ---- */
uint64_t svc_now_us(void); /* monotonic */

/* ---- growable byte buffer ---- */
typedef struct svc_buf {
    char *p;
    size_t len, cap;
    int oom; /* sticky: an append failed; the content is incomplete */
} svc_buf;

int svc_buf_reserve(svc_buf *b, size_t extra);  /* 0 ok, -1 (and oom set) */
void svc_buf_add(svc_buf *b, const void *p, size_t n);
void svc_buf_puts(svc_buf *b, const char *s);
void svc_buf_printf(svc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void svc_buf_json_str(svc_buf *b, const char *s); /* a quoted, escaped JSON string */
char *svc_buf_take(svc_buf *b, size_t *len);      /* NUL-terminated, owned; NULL on oom */
void svc_buf_free(svc_buf *b);

/* ---- a response, before it becomes an MHD response ---- */
typedef struct svc_reply {
    int status;
    const char *ctype;       /* static string */
    char *body;              /* owned (free) */
    size_t len;
    attn_tensor *tail;       /* optional raw tensor bytes sent after body (owned) */
    long header_len;         /* Inference-Header-Content-Length; -1 none */
    int retry_after;         /* seconds; 0 none */
    int auth_challenge;      /* add WWW-Authenticate: Bearer */
    char allow[48];          /* the Allow header of a 405; "" none */
    svc_err err;             /* what failed, for the log line (err.status 0: nothing) */
} svc_reply;

void svc_reply_init(svc_reply *r);
void svc_reply_clear(svc_reply *r);
void svc_reply_empty(svc_reply *r, int status);
/* {"error": "<e->msg>"} with e->status; the reply keeps *e for the log. */
void svc_reply_fail(svc_reply *r, const svc_err *e);
/* svc_fail then svc_reply_fail, for a failure found where the reply is made. */
void svc_reply_error(svc_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Steals `obj` (a jansson json_t *) and dumps it compactly. */
void svc_reply_json(svc_reply *r, int status, void *obj);

/* Model names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
bool svc_valid_model_name(const char *s, size_t n);
/* Request ids (X-Request-Id, x-request-id metadata): [A-Za-z0-9._:-]{1,64}. */
bool svc_valid_request_id(const char *s);
/* Sequence ids: [A-Za-z0-9._:~-]{1,128}, safe in a path and a header. */
bool svc_valid_seq_id(const char *s, size_t n);

#endif /* SVC_H */
