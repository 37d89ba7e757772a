/*
 * parallel.c — the call context and the parallel-for.
 *
 * One forward may use ctx->threads threads: the calling thread plus
 * threads-1 short-lived pthreads that pull task indices from an atomic
 * counter.  OpenBLAS is pinned to one thread per call (once, at the first
 * context), so parallelism comes only from here and the thread count stays a
 * per-call parameter: a server can give one big request every core and many
 * small ones one core each without oversubscribing.
 */
#include "attn_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <cblas.h>

struct attn_ctx {
    int threads;
    const volatile int *cancel;
};

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }

attn_ctx *attn_ctx_new(int threads) {
    pthread_once(&blas_once, blas_single_thread);
    attn_ctx *c = calloc(1, sizeof *c);
    if (c) c->threads = threads < 1 ? 1 : threads;
    return c;
}
void attn_ctx_free(attn_ctx *c) { free(c); }
int attn_ctx_threads(const attn_ctx *c) { return c ? c->threads : 1; }
void attn_ctx_set_threads(attn_ctx *c, int threads) {
    if (c) c->threads = threads < 1 ? 1 : threads;
}
void attn_ctx_set_cancel(attn_ctx *c, const volatile int *flag) {
    if (c) c->cancel = flag;
}

bool attn__cancelled(const attn_ctx *ctx) {
    return ctx && ctx->cancel && __atomic_load_n(ctx->cancel, __ATOMIC_RELAXED) != 0;
}

int attn__workers(const attn_ctx *ctx, size_t n) {
    size_t t = (size_t)attn_ctx_threads(ctx);
    if (t > 256) t = 256;
    return (int)(n < t ? (n ? n : 1) : t);
}

typedef struct pf_job {
    attn_ctx *ctx;
    size_t n;
    attn_task_fn fn;
    void *arg;
    atomic_size_t next;
    atomic_int status; /* first failure wins */
} pf_job;

typedef struct pf_worker {
    pf_job *job;
    int index;
} pf_worker;

static void run_worker(pf_job *j, int worker) {
    for (;;) {
        if (atomic_load_explicit(&j->status, memory_order_relaxed) != ATTN_OK) return;
        if (attn__cancelled(j->ctx)) {
            int expect = ATTN_OK;
            atomic_compare_exchange_strong(&j->status, &expect, ATTN_E_CANCELLED);
            return;
        }
        size_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n) return;
        attn_status st = j->fn(j->arg, t, worker);
        if (st != ATTN_OK) {
            int expect = ATTN_OK;
            atomic_compare_exchange_strong(&j->status, &expect, st);
            return;
        }
    }
}

static void *thread_main(void *p) {
    pf_worker *w = p;
    run_worker(w->job, w->index);
    return NULL;
}

attn_status attn__parallel_for(attn_ctx *ctx, size_t n, attn_task_fn fn, void *arg) {
    if (n == 0) return attn__cancelled(ctx) ? ATTN_E_CANCELLED : ATTN_OK;
    pthread_once(&blas_once, blas_single_thread);
    pf_job job = {.ctx = ctx, .n = n, .fn = fn, .arg = arg};
    atomic_init(&job.next, 0);
    atomic_init(&job.status, ATTN_OK);
    int workers = attn__workers(ctx, n);
    pthread_t tids[256];
    pf_worker ws[256];
    int started = 0;
    for (int i = 1; i < workers; i++) {
        ws[i].job = &job;
        ws[i].index = i;
        if (pthread_create(&tids[i], NULL, thread_main, &ws[i]) != 0) break; /* run with fewer */
        started = i;
    }
    run_worker(&job, 0);
    for (int i = 1; i <= started; i++) pthread_join(tids[i], NULL);
    return (attn_status)atomic_load(&job.status);
}
