/*
 * sched.h — compute jobs on the libuv thread pool.
 *
 * The scheduler knows jobs and callbacks only: the submitter (http.c's
 * svc_req_submit) reserves a queue slot (refused at once when the queue is
 * full: 503), gets ready to wait and submits a job carrying its own answer
 * callback (and, optionally, a test for a client that left).  The loop
 * thread hands the job to the pool, watches its deadline and, when the job
 * ends, passes its reply to the answer callback.  At the deadline the answer
 * is 504 at once; the job is told to stop (attn_ctx_set_cancel) and is freed
 * whenever its thread lets go of it.
 *
 * A short job may instead run on the submitter's own thread
 * (svc_sched_claim_here, svc_sched_run_here): no hand-off to the pool and
 * back, one thread, a core taken from the same count.
 *
 * Threads per call: the pool has svc_cfg.threads threads and the machine
 * svc_cfg.cores cores.  A starting job takes the cores that are free minus
 * one for each job still waiting (at least 1, at most call_threads), and
 * returns them when it ends: one request alone gets every core, many
 * requests get one each, and the sum never exceeds the cores when the pool
 * is no larger than the machine.  A job may cap its own share (max_threads):
 * for a tiny request, starting threads costs more than they save.
 */
#ifndef SVC_SCHED_H
#define SVC_SCHED_H

#include <uv.h>

#include "svc.h"

struct svc_stats;

typedef struct svc_job svc_job;
struct svc_job {
    /* Set by the creator. */
    void (*run)(svc_job *j, attn_ctx *ctx);       /* pool thread: fill j->reply */
    /* Loop thread, once, last (libuv style: always called, with a status):
     * the HTTP status the client got (the job's reply, or 504 at the
     * deadline, 499 when the client left, 503 at shutdown); account and
     * free the job. */
    void (*finish)(svc_job *j, int status);
    void (*account)(svc_job *j);                  /* optional, loop thread: record metrics just
                                                     before the reply goes out, so that a client
                                                     that reads /metrics next sees its request */
    svc_reply reply;
    uint64_t deadline_us;                         /* 0: no deadline */
    int max_threads;                              /* 0: no cap of its own */
    struct svc_stats *stats;                      /* optional per-model counters */
    /* Set by the submitter: where the answer goes. */
    /* Loop thread, exactly once, before finish (libuv style: always called,
     * with the status; rep->status is the same): the job's reply, or 504 at
     * the deadline, 499 when the client left, 503 at shutdown.  Steals *rep. */
    void (*answer)(svc_job *j, int status, svc_reply *rep);
    int (*gone)(svc_job *j);                      /* optional, loop thread: the client has left */
    void *owner;                                  /* the submitter's (http.c: its svc_req) */
    /* Set by the scheduler. */
    uint64_t t_submit, t_start, t_end;            /* svc_now_us() */
    int threads;                                  /* given to run() */
    int status;                                   /* HTTP status the client got (finish's argument) */
    volatile int cancel;
    /* Private. */
    uv_work_t work;
    int answered;                                 /* answer() was called */
    svc_job *prev, *next;
};

int svc_sched_init(uv_loop_t *loop, svc_err *e); /* 0, or 500 in *e */
/* Any thread.  0: a slot is reserved for one submit; 503 in *e: the queue
 * is full or the scheduler is shutting down. */
int svc_sched_reserve(svc_err *e);
/* Any thread, after a successful reserve, with answer (and owner) set. */
void svc_sched_submit(svc_job *j);
/* Any thread, instead of reserve + submit, for a job expected to be short
 * (a few hundred microseconds: the hand-offs to the pool and back cost
 * about as much).  1: the scheduler is open, no job waits for a thread, a
 * core is free and fewer jobs compute than the pool has threads; that core is now the caller's, who must call
 * svc_sched_run_here next.  0: nothing is claimed; reserve and submit. */
int svc_sched_claim_here(void);
/* Runs j on the calling thread on the core claimed, with one thread and no
 * deadline watch (it is short), then calls account, answer and finish here,
 * in that order, with the job's status: finish frees the job. */
void svc_sched_run_here(svc_job *j);
int svc_sched_pending(void);  /* waiting for a thread (metrics) */
int svc_sched_active(void);   /* submitted and not yet finished */
/* Loop thread: answer every unanswered job with 503 and cancel the jobs. */
void svc_sched_abort_all(const char *why);
void svc_sched_close(void);   /* loop thread: close the handles */

#endif
