/*
 * sched.c — the job queue between the HTTP threads and the libuv pool.
 * Lists and counters are guarded by `mu`; the active list is touched only
 * by the loop thread.
 */
#include "sched.h"

#include <pthread.h>
#include <stdlib.h>

#include "metrics.h"

static uv_loop_t *loop;
static uv_async_t wake;
static uv_timer_t tick;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static svc_job *inbox_head, *inbox_tail; /* submitted, not yet on the pool (mu) */
static int pending;                      /* reserved or queued, not started (mu) */
static int free_cores;                   /* (mu) */
static int running;                      /* jobs computing, on the pool or on a submitter's thread (mu) */
static svc_job *active;                  /* on the pool (loop thread only) */
static atomic_int n_active;
static int closed;                       /* no more jobs (mu) */

static void answer(svc_job *j, svc_reply *rep) {
    j->status = rep->status;
    j->answered = 1;
    j->answer(j, rep->status, rep);
}

static void answer_timeout(svc_job *j) {
    svc_reply r;
    svc_reply_init(&r);
    svc_reply_error(&r, 504, "request timed out after %.3f s (the computation was abandoned)",
                    (double)(j->deadline_us - j->t_submit) / 1e6);
    answer(j, &r);
}

/* The client left while its job waited or ran: the work is abandoned, as
 * at a deadline, and the connection is answered (499, nginx's "client
 * closed request") only so that it can be released. */
static void answer_gone(svc_job *j) {
    svc_reply r;
    svc_reply_init(&r);
    svc_reply_error(&r, 499, "the client closed the connection (the computation was abandoned)");
    answer(j, &r);
}

/* Computes the job on the calling thread with t threads (the cores are
 * already taken from free_cores) and gives them back. */
static void execute(svc_job *j, int t) {
    j->threads = t;
    j->t_start = svc_now_us();
    if (j->stats) {
        atomic_fetch_sub(&j->stats->pending, 1);
        atomic_fetch_add(&j->stats->executing, 1);
        atomic_fetch_add(&j->stats->queue_us, j->t_start - j->t_submit);
    }
    if (!__atomic_load_n(&j->cancel, __ATOMIC_RELAXED)) {
        attn_ctx *ctx = attn_ctx_new(t);
        if (!ctx) {
            svc_reply_error(&j->reply, 503, "out of memory");
        } else {
            attn_ctx_set_cancel(ctx, &j->cancel);
            j->run(j, ctx);
            attn_ctx_free(ctx);
        }
    }
    j->t_end = svc_now_us();
    if (j->stats) atomic_fetch_sub(&j->stats->executing, 1);
    pthread_mutex_lock(&mu);
    free_cores += t;
    running--;
    pthread_mutex_unlock(&mu);
}

static void work_cb(uv_work_t *w) {
    svc_job *j = w->data;
    pthread_mutex_lock(&mu);
    pending--;
    int t = free_cores - pending;
    if (t > svc_cfg.call_threads) t = svc_cfg.call_threads;
    if (j->max_threads > 0 && t > j->max_threads) t = j->max_threads;
    if (t > free_cores) t = free_cores;
    if (t < 1) t = 1;
    free_cores -= t;
    running++;
    pthread_mutex_unlock(&mu);
    execute(j, t);
}

static void after_cb(uv_work_t *w, int status) {
    svc_job *j = w->data;
    if (status == UV_ECANCELED) { /* never started: work_cb did not run */
        pthread_mutex_lock(&mu);
        pending--;
        pthread_mutex_unlock(&mu);
        if (j->stats) atomic_fetch_sub(&j->stats->pending, 1);
        j->t_start = j->t_end = svc_now_us();
    }
    if (j->prev) j->prev->next = j->next;
    else active = j->next;
    if (j->next) j->next->prev = j->prev;
    atomic_fetch_sub(&n_active, 1);
    if (!j->answered) {
        j->status = j->reply.status;
        if (j->account) j->account(j);
        answer(j, &j->reply);
    }
    j->finish(j, j->status);
}

static void wake_cb(uv_async_t *h) {
    (void)h;
    pthread_mutex_lock(&mu);
    svc_job *list = inbox_head;
    inbox_head = inbox_tail = NULL;
    pthread_mutex_unlock(&mu);
    while (list) {
        svc_job *j = list;
        list = j->next;
        j->prev = NULL;
        j->next = active;
        if (active) active->prev = j;
        active = j;
        j->work.data = j;
        int rc = uv_queue_work(loop, &j->work, work_cb, after_cb);
        if (rc != 0) { /* cannot happen with a live loop; answer rather than hang */
            j->work.data = j;
            pthread_mutex_lock(&mu);
            pending++; /* after_cb's ECANCELED path takes it back */
            pthread_mutex_unlock(&mu);
            svc_reply_error(&j->reply, 500, "cannot queue the job");
            after_cb(&j->work, UV_ECANCELED);
        }
    }
}

static void tick_cb(uv_timer_t *h) {
    (void)h;
    uint64_t now = svc_now_us();
    for (svc_job *j = active; j; j = j->next) {
        if (j->answered) continue;
        int late = j->deadline_us && now >= j->deadline_us;
        int gone = !late && j->gone && j->gone(j);
        if (!late && !gone) continue;
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
        uv_cancel((uv_req_t *)&j->work); /* succeeds only while it waits */
        if (late) answer_timeout(j);
        else answer_gone(j);
    }
}

int svc_sched_init(uv_loop_t *l, svc_err *e) {
    loop = l;
    free_cores = svc_cfg.cores;
    if (uv_async_init(loop, &wake, wake_cb) != 0 || uv_timer_init(loop, &tick) != 0)
        return svc_fail(e, 500, "cannot set up the scheduler's event loop handles");
    uint64_t ms = (uint64_t)(svc_cfg.timeout_s * 1000 / 8);
    if (ms < 5) ms = 5;
    if (ms > 100) ms = 100;
    uv_timer_start(&tick, tick_cb, ms, ms);
    uv_unref((uv_handle_t *)&tick); /* the tick alone does not keep the loop alive */
    return 0;
}

int svc_sched_reserve(svc_err *e) {
    int ok = 0;
    pthread_mutex_lock(&mu);
    if (!closed && pending < svc_cfg.max_queue) {
        pending++;
        ok = 1;
    }
    pthread_mutex_unlock(&mu);
    if (ok) return 0;
    return svc_fail(e, 503, "server busy: %d requests are already queued", svc_cfg.max_queue);
}

void svc_sched_submit(svc_job *j) {
    j->answered = 0;
    j->t_submit = svc_now_us();
    j->next = NULL;
    if (j->stats) atomic_fetch_add(&j->stats->pending, 1);
    atomic_fetch_add(&n_active, 1);
    pthread_mutex_lock(&mu);
    if (inbox_tail) inbox_tail->next = j;
    else inbox_head = j;
    inbox_tail = j;
    pthread_mutex_unlock(&mu);
    uv_async_send(&wake);
}

int svc_sched_claim_here(void) {
    int ok = 0;
    pthread_mutex_lock(&mu);
    /* No more jobs compute at once than the pool has threads (--threads). */
    int pool = svc_cfg.threads > 0 ? svc_cfg.threads : svc_cfg.cores;
    if (!closed && pending == 0 && free_cores >= 1 && running < pool) {
        free_cores--;
        running++;
        ok = 1;
    }
    pthread_mutex_unlock(&mu);
    if (ok) atomic_fetch_add(&n_active, 1);
    return ok;
}

void svc_sched_run_here(svc_job *j) {
    j->answered = 0;
    j->t_submit = svc_now_us();
    if (j->stats) atomic_fetch_add(&j->stats->pending, 1); /* execute() moves it to executing */
    execute(j, 1);
    atomic_fetch_sub(&n_active, 1);
    j->status = j->reply.status;
    if (j->account) j->account(j);
    answer(j, &j->reply);
    j->finish(j, j->status);
}

int svc_sched_pending(void) {
    pthread_mutex_lock(&mu);
    int n = pending;
    pthread_mutex_unlock(&mu);
    return n;
}

int svc_sched_active(void) { return atomic_load(&n_active); }

void svc_sched_abort_all(const char *why) {
    pthread_mutex_lock(&mu);
    closed = 1;
    pthread_mutex_unlock(&mu);
    wake_cb(&wake); /* move submitted jobs onto the active list first */
    for (svc_job *j = active; j; j = j->next) {
        if (j->answered) continue;
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
        uv_cancel((uv_req_t *)&j->work);
        svc_reply r;
        svc_reply_init(&r);
        svc_reply_error(&r, 503, "%s", why);
        answer(j, &r);
    }
}

void svc_sched_close(void) {
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&wake, NULL);
}
