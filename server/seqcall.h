/*
 * seqcall.h — an inference request that belongs to a sequence (Triton's
 * sequence extension): its parameters, its place in the sequence's queue,
 * and the step it runs.  api_infer.c calls these; api_seq.c holds them and
 * the /sequences endpoints.  Nothing here names a mechanism: what has a
 * recurrent form, and how, is libattn's (attn_seq_*).
 *
 * Protocol.  Request parameters sequence_id (an integer, or a string
 * matching [A-Za-z0-9._:~-]{1,128}; 0 and "" mean "not in a sequence"),
 * sequence_start, sequence_end (booleans) and, on a start, sequence_kind
 * ("self", the default, or "cross"); attnd's own attnd_expect_length (the
 * tokens the client counts before this request: a replica holding another
 * length, a stale copy after a failover, answers 409).  The id may also come in the
 * Sequence-Id header (for load balancers); when both are given they must be
 * the same text.  An integer id and its decimal string name one sequence.
 */
#ifndef SVC_SEQCALL_H
#define SVC_SEQCALL_H

#include <jansson.h>

#include "repo.h"
#include "seqstore.h"

typedef struct svc_seq_call {
    int on;                          /* the request is in a sequence */
    char id[SVC_SEQ_ID_MAX + 1];
    int id_is_int;                   /* echoed as a number */
    int start, end;
    attn_seq_kind kind;              /* self unless a start says cross */
    svc_seq_entry *entry;            /* held from admit to close */
    svc_seq_turn turn;
    int64_t length;                  /* tokens after the step, for the reply */
    int64_t expect;                  /* attnd_expect_length: the length the client counts before the step; -1 none */
    const attn_model *model;         /* the sequence's model, after the step */
} svc_seq_call;

/* Reads the sequence parameters of a request (params may be NULL; header
 * is the Sequence-Id header or NULL).  0 (c->on says whether it is in a
 * sequence), or 400 in *e. */
int svc_seq_parse(json_t *params, const char *header, svc_seq_call *c, svc_err *e);
/* 0 when model m (named `name`) has sequences of c's kind, else 400 naming
 * the types that do. */
int svc_seq_check_model(const svc_seq_call *c, const attn_model *m, const char *name, svc_err *e);
/* Opens the sequence for this request (svc_seqs_open) and, under the
 * store's lock, calls submit(arg, e): the step then runs in the order of
 * arrival.  0, or the status in *e (nothing held then). */
int svc_seq_admit(svc_seq_call *c, const char *model, int (*submit)(void *arg, svc_err *e), void *arg,
                  svc_err *e);
/* From inside admit's submit only: no earlier request of the sequence is
 * waiting or running (this one's step can start at once). */
int svc_seq_first_in_line(const svc_seq_call *c);
/* Pool thread: waits for the turn and runs the step.  A start builds the
 * sequence from `am` and takes *own (a per-request model, may be NULL) and
 * a reference to m; later steps use the sequence's own model.  0 and *out
 * owned, or the status in *e. */
int svc_seq_run(svc_seq_call *c, svc_model *m, const attn_model *am, attn_model **own, attn_ctx *ctx,
                const attn_tensor_set *inputs, const volatile int *cancel, attn_tensor **out, svc_err *e);
/* Releases what admit took (any thread, once; a no-op when nothing is held). */
void svc_seq_close(svc_seq_call *c);
/* The reply's "parameters" object: {"sequence_id": ..., "sequence_length": n
 * [, "sequence_end": true]}; NUL-terminated into buf. */
void svc_seq_reply_params(const svc_seq_call *c, char *buf, size_t cap);

#endif
