/*
 * grpc.h — the gRPC front-end: the Open Inference Protocol's
 * GRPCInferenceService over plain-text HTTP/2 (h2c, libnghttp2), messages in
 * protobuf (protobuf-c, proto/grpc/grpc_service.proto).
 *
 * Threads.  The listener, every connection's nghttp2 session and the RPC
 * handlers run on one thread of their own (its own libuv loop), as
 * libmicrohttpd's threads do for HTTP/1.1: a handler parses, checks and
 * decodes there, and either answers at once (svc_gcall_reply) or hands a job
 * to the scheduler (svc_gcall_submit).  The job's answer callback runs on
 * the main loop thread and passes the reply back through a locked queue and
 * a uv_async.
 *
 * A call is one request message and its answer: a unary RPC has one, a
 * ModelStreamInfer stream one per message it carries, answered in the order
 * they arrived.  A reply is an svc_reply: status 200 and the serialised
 * response message in body (and, optionally, raw bytes in tail that the
 * message's last field ends with), or an error (status and err.msg), which
 * becomes a gRPC status (svc_grpc_code_of).
 */
#ifndef SVC_GRPC_H
#define SVC_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct svc_job;
typedef struct svc_gcall svc_gcall;

/* Life cycle (main thread); all no-ops when --grpc-port is off. */
int svc_grpc_start(svc_err *e); /* 0, or 500 in *e */
int svc_grpc_port(void);       /* the bound port; 0: off */
void svc_grpc_quiesce(void);   /* GOAWAY on every connection, stop accepting */
void svc_grpc_stop(void);      /* close everything, join the thread */
int svc_grpc_inflight(void);   /* calls received and not yet answered */
/* Fuzzing: one connection's bytes (after the client preface's 24 bytes,
 * which it must start with) through a server session and the gRPC framing,
 * without a socket; the RPCs that need the repository or the scheduler are
 * answered with an error.  0, or 1 when the session gave up on them. */
int svc_grpc_fuzz_session(const uint8_t *data, size_t n);

/* gRPC status codes. */
enum {
    SVC_GRPC_OK = 0, SVC_GRPC_CANCELLED = 1, SVC_GRPC_UNKNOWN = 2, SVC_GRPC_INVALID_ARGUMENT = 3,
    SVC_GRPC_DEADLINE_EXCEEDED = 4, SVC_GRPC_NOT_FOUND = 5, SVC_GRPC_ALREADY_EXISTS = 6,
    SVC_GRPC_PERMISSION_DENIED = 7, SVC_GRPC_RESOURCE_EXHAUSTED = 8, SVC_GRPC_FAILED_PRECONDITION = 9,
    SVC_GRPC_ABORTED = 10, SVC_GRPC_OUT_OF_RANGE = 11, SVC_GRPC_UNIMPLEMENTED = 12, SVC_GRPC_INTERNAL = 13,
    SVC_GRPC_UNAVAILABLE = 14, SVC_GRPC_DATA_LOSS = 15, SVC_GRPC_UNAUTHENTICATED = 16
};
/* The one table from the server's (HTTP) status to a gRPC code: 400
 * INVALID_ARGUMENT, 401 UNAUTHENTICATED, 404 NOT_FOUND, 409 ALREADY_EXISTS,
 * 413 and 503 RESOURCE_EXHAUSTED (503 while draining: UNAVAILABLE), 499
 * CANCELLED, 504 DEADLINE_EXCEEDED, ... */
int svc_grpc_code_of(int http_status);
const char *svc_grpc_code_name(int code);

/* ---- for the RPC handlers (grpc_api.c), on the gRPC thread ---- */
typedef void (*svc_grpc_handler)(svc_gcall *c, const unsigned char *msg, size_t len);
typedef struct svc_grpc_rpc {
    const char *name;         /* "ModelInfer": the path is /inference.GRPCInferenceService/<name> */
    svc_grpc_handler handler;
    int auth;                 /* svc_auth_class (api.h) */
    int streaming;            /* many request messages, one reply message each */
} svc_grpc_rpc;
const svc_grpc_rpc *svc_grpc_rpcs(size_t *n);   /* grpc_api.c: the RPC table */

/* Metadata of the call's stream (lower-case names), borrowed; NULL absent.
 * Kept: authorization, sequence-id, x-request-id. */
const char *svc_gcall_metadata(svc_gcall *c, const char *name);
uint64_t svc_gcall_deadline_us(svc_gcall *c);        /* from grpc-timeout (svc_now_us clock); 0: none */
void svc_gcall_set_model(svc_gcall *c, const char *name);   /* for the log line */
/* The request message's buffer, now owned by the caller (free); the msg
 * pointer the handler got stays valid until that free. */
void *svc_gcall_take_message(svc_gcall *c);
void svc_gcall_reply(svc_gcall *c, svc_reply *rep);  /* steals *rep */
/* 0: submitted (the answer comes through the job); 503 in *e. */
int svc_gcall_submit(svc_gcall *c, struct svc_job *j, svc_err *e);

#endif
