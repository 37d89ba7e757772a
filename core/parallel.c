/*
 * parallel.c — the call context and the parallel-for.
 *
 * One forward may use ctx->threads threads: the calling thread plus up to
 * threads-1 helpers from a shared, persistent pool, all pulling task
 * indices from an atomic counter.  OpenBLAS is pinned to one thread per call (once, at the first
 * context), so parallelism comes only from here and the thread count stays a
 * per-call parameter: a server can give one big request every core and many
 * small ones one core each without oversubscribing.
 */
#include "attn_internal.h"
#include "cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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

int attn__workers_of(int threads, size_t n) {
    size_t t = threads < 1 ? 1 : (size_t)threads;
    if (t > 256) t = 256;
    return (int)(n < t ? (n ? n : 1) : t);
}

int attn__workers(const attn_ctx *ctx, size_t n) { return attn__workers_of(attn_ctx_threads(ctx), n); }

typedef struct pf_job {
    attn_ctx *ctx;
    size_t n;
    attn_task_fn fn;
    void *arg;
    atomic_size_t next;
    atomic_int status; /* first failure wins */
    int gemm_pin;      /* the caller's (cpu.h): its helpers compute with the same sgemm */
    /* Guarded by pool_mu: */
    int slots;  /* helpers wanted (workers - 1) */
    int joined; /* helpers that took an index */
    atomic_int active; /* helpers still running (changed under pool_mu; read outside it to spin) */
    int closed; /* the caller finished: no more helpers may join */
    pthread_cond_t done;
    struct pf_job *next_job;
} pf_job;

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

/* ---- the shared helper pool ----
 * Threads are created on demand (up to the largest worker count any call
 * asked for, capped) and then kept: starting threads per call cost more
 * than a small request's compute.  A call never waits for a helper to
 * become free — the caller works through the tasks itself and helpers that
 * are idle join in — so concurrent calls share the pool without deadlock,
 * and which thread runs a task never changes its arithmetic.
 *
 * Waking a sleeping thread costs tens of microseconds (more across cores
 * of a VM), and one forward runs many parallel loops with short serial
 * steps between them.  So an idle helper spins for up to ATTN_SPIN_US
 * (default 100 µs; 0 = never) watching pool_gen, which every new job bumps,
 * before it sleeps; and a caller whose helpers are still busy spins as long
 * on their count before it waits.  A job is announced with a broadcast only
 * when some helper sleeps. */
#define POOL_MAX 255
#define SPIN_US_DEFAULT 100

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pf_job *queue_head;
static int pool_size;
static int pool_sleepers;  /* helpers in pthread_cond_wait (pool_mu) */
static atomic_uint pool_gen; /* bumped, under pool_mu, by every queued job */

static pthread_once_t spin_once = PTHREAD_ONCE_INIT;
static long spin_ns;
static void read_spin(void) {
    const char *e = getenv("ATTN_SPIN_US");
    char *end;
    long us = SPIN_US_DEFAULT;
    if (e && *e) {
        long v = strtol(e, &end, 10);
        if (*end == '\0' && v >= 0 && v <= 1000000) us = v; /* anything else: the default */
    }
    spin_ns = us * 1000;
}

long attn__pool_spin_us(void) {
    pthread_once(&spin_once, read_spin);
    return spin_ns / 1000;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until *gen differs from `seen` (returns true) or spin_ns pass. */
static bool spin_gen(unsigned seen) {
    if (spin_ns <= 0) return false;
    long long end = now_ns() + spin_ns;
    for (;;) {
        for (int i = 0; i < 32; i++) {
            if (atomic_load_explicit(&pool_gen, memory_order_acquire) != seen) return true;
            cpu_relax();
        }
        if (now_ns() >= end) return false;
    }
}

/* Spins until the job's helpers are done (returns true) or spin_ns pass. */
static bool spin_done(pf_job *j) {
    if (spin_ns <= 0) return false;
    long long end = now_ns() + spin_ns;
    for (;;) {
        for (int i = 0; i < 32; i++) {
            if (atomic_load_explicit(&j->active, memory_order_acquire) == 0) return true;
            cpu_relax();
        }
        if (now_ns() >= end) return false;
    }
}

static void unlink_job(pf_job *j) {
    for (pf_job **p = &queue_head; *p; p = &(*p)->next_job)
        if (*p == j) {
            *p = j->next_job;
            return;
        }
}

static void *pool_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        pf_job *j = queue_head;
        while (j && (j->closed || j->joined >= j->slots)) j = j->next_job;
        if (!j) {
            unsigned seen = atomic_load_explicit(&pool_gen, memory_order_relaxed);
            pthread_mutex_unlock(&pool_mu);
            bool woke = spin_gen(seen);
            pthread_mutex_lock(&pool_mu);
            /* pool_gen changes only under pool_mu: unchanged here means no
             * job came, and none can come unseen before the wait */
            if (woke || atomic_load_explicit(&pool_gen, memory_order_relaxed) != seen) continue;
            pool_sleepers++;
            pthread_cond_wait(&pool_cv, &pool_mu);
            pool_sleepers--;
            continue;
        }
        int index = ++j->joined;
        atomic_fetch_add_explicit(&j->active, 1, memory_order_relaxed);
        if (j->joined >= j->slots) unlink_job(j);
        pthread_mutex_unlock(&pool_mu);
        attn__gemm_set_pin(j->gemm_pin);
        run_worker(j, index);
        attn__gemm_set_pin(-1);
        pthread_mutex_lock(&pool_mu);
        /* the caller may return once it sees 0 and takes pool_mu: j is not
         * touched after the unlock */
        if (atomic_fetch_sub_explicit(&j->active, 1, memory_order_release) == 1 && j->closed)
            pthread_cond_signal(&j->done);
    }
    return NULL;
}

/* Called with pool_mu held. */
static void grow_pool(int want) {
    if (want > POOL_MAX) want = POOL_MAX;
    while (pool_size < want) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &at, pool_main, NULL);
        pthread_attr_destroy(&at);
        if (rc != 0) return; /* run with the helpers we have */
        pool_size++;
    }
}

attn_status attn__parallel_for(attn_ctx *ctx, size_t n, attn_task_fn fn, void *arg) {
    if (n == 0) return attn__cancelled(ctx) ? ATTN_E_CANCELLED : ATTN_OK;
    pthread_once(&blas_once, blas_single_thread);
    pf_job job = {.ctx = ctx, .n = n, .fn = fn, .arg = arg, .gemm_pin = attn__gemm_pin()};
    atomic_init(&job.next, 0);
    atomic_init(&job.status, ATTN_OK);
    atomic_init(&job.active, 0);
    int workers = attn__workers(ctx, n);
    if (workers <= 1) {
        run_worker(&job, 0);
        return (attn_status)atomic_load(&job.status);
    }
    pthread_once(&spin_once, read_spin);
    pthread_cond_init(&job.done, NULL);
    job.slots = workers - 1;
    pthread_mutex_lock(&pool_mu);
    grow_pool(workers - 1);
    job.next_job = queue_head;
    queue_head = &job;
    atomic_fetch_add_explicit(&pool_gen, 1, memory_order_release);
    if (pool_sleepers) pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);

    run_worker(&job, 0);

    pthread_mutex_lock(&pool_mu);
    job.closed = 1;
    unlink_job(&job);
    if (atomic_load_explicit(&job.active, memory_order_acquire) > 0) {
        pthread_mutex_unlock(&pool_mu);
        spin_done(&job);
        pthread_mutex_lock(&pool_mu); /* the helpers' last unlock: j is theirs no more */
    }
    while (atomic_load_explicit(&job.active, memory_order_acquire) > 0) pthread_cond_wait(&job.done, &pool_mu);
    pthread_mutex_unlock(&pool_mu);
    pthread_cond_destroy(&job.done);
    return (attn_status)atomic_load(&job.status);
}
