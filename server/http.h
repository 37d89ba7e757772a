/*
 * http.h — the libmicrohttpd side: one svc_req per HTTP request, the
 * calls a handler makes on it, and the daemon's life cycle.
 *
 * A handler runs once the body is complete, on an HTTP thread.  It either
 * answers at once (svc_req_reply) or hands a job to the scheduler
 * (svc_req_submit), which suspends the connection and sets the job's
 * callbacks: the scheduler passes the job's answer to the connection and
 * asks whether its client has left.
 */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

#include "svc.h"

typedef struct svc_req svc_req;
struct svc_job;

int svc_http_start(svc_err *e);  /* 0, or 500 in *e */
int svc_http_port(void);         /* the bound port */
void svc_http_quiesce(void);     /* stop accepting connections */
void svc_http_stop(void);
int svc_http_inflight(void);     /* requests received and not yet fully answered */
/* Loop thread, a few times a second: shuts down connections whose request
 * has taken longer to arrive than --idle-timeout plus one second per
 * 16 KiB of body. */
void svc_http_sweep(void);
/* For handlers. */
const char *svc_req_header(svc_req *r, const char *name);   /* borrowed, NULL if absent */
const char *svc_req_body(svc_req *r, size_t *len);          /* NUL-terminated at len */
/* The body's allocation, now owned by the caller (free), with the body left
 * where it is: svc_req_body's pointer stays valid until that free.  The
 * request keeps the body's length for the log. */
void *svc_req_take_body_block(svc_req *r);
const char *svc_req_model(svc_req *r);                      /* {name} from the path, or "" */
const char *svc_req_id(svc_req *r);
void svc_req_set_model(svc_req *r, const char *name);       /* for the log line */
/* Every reply to this request carries the id in the Sequence-Id header. */
void svc_req_set_sequence(svc_req *r, const char *id);
const char *svc_req_arg(svc_req *r);                        /* {id} or {file} from the path, or "" */
void svc_req_reply(svc_req *r, svc_reply *rep);             /* steals *rep */
/* 0: submitted (the connection waits); 503 in *e: the queue is full
 * (nothing done). */
int svc_req_submit(svc_req *r, struct svc_job *j, svc_err *e);

#endif
