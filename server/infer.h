/*
 * infer.h — the one inference path, shared by every front-end (HTTP's
 * api_infer.c, gRPC's grpc_infer.c): decode -> schedule -> compute ->
 * encode.
 *
 * A front-end says how its request becomes the request description
 * (decode: codec.h's svc_wire), how the result becomes its reply (encode,
 * on the pool thread), and how a job reaches the scheduler with its own
 * answer callbacks (submit).  Everything between — the model lookup, a
 * built-in's config from the parameters, the checks against the model's
 * inputs and outputs, the tensors' decoding and limits, sequence admission
 * (seqcall.h), the deadline, the job, and the per-model metrics — is
 * svc_infer's, whatever the protocol.
 */
#ifndef SVC_INFER_H
#define SVC_INFER_H

#include "codec.h"

struct svc_job;

typedef struct svc_infer_front {
    void *conn;
    /* The request description (any thread; svc_infer frees it). */
    int (*decode)(void *conn, svc_wire *w, svc_err *e);
    /* The reply from the outputs (pool thread; steals every outs[i].t). */
    void (*encode)(const svc_wire_result *res, svc_wire_out *outs, size_t n, svc_reply *reply);
    /* Submits the job with the front-end's answer and gone callbacks. */
    int (*submit)(void *conn, struct svc_job *j, svc_err *e);
    /* The storage the binary inputs point into, when some are read in
     * place: from then on the job owns it (freed with *free_fn). */
    void *(*take_body)(void *conn, void (**free_fn)(void *));
    const char *seq_header;                     /* the Sequence-Id header (or metadata), or NULL */
    void (*set_sequence)(void *conn, const char *id); /* optional: the request is in sequence id */
    uint64_t deadline_us;                       /* the front-end's own deadline (gRPC's grpc-timeout); 0 none */
    int protocol;                               /* svc_protocol (metrics.h): the per-model counters' label */
    /* Optional: answers at once, on the front-end's thread (steals *rep).
     * Given, svc_infer may run a short request right there (api_infer.c,
     * --inline-max-us) and answer through it before returning 0. */
    void (*reply)(void *conn, svc_reply *rep);
} svc_infer_front;

/* Runs one inference request of model `name`.  0: submitted (the answer
 * comes through the job) or, with f->reply, already answered through it.  Otherwise the status in *e, already counted in
 * the model's metrics, nothing held: the front-end answers with *e. */
int svc_infer(const char *name, const svc_infer_front *f, svc_err *e);

#endif
