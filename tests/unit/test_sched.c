/* test_sched.c — the job queue (server/sched.c) with its own loop and no
 * HTTP: the queue bound (503 beyond max_queue), a client that left (499,
 * while running or still queued), the deadline (504), shutdown (503), and
 * that the answer callback and then finish are each called exactly once
 * with the same status; a short job run on the caller's thread.  Links server/sched.o and the few server objects it
 * needs (see the Makefile); the pool has one thread (UV_THREADPOOL_SIZE), so
 * a blocking job keeps the others queued. */
#include "test_util.h"

#include <stdatomic.h>
#include <time.h>

#include "../../server/sched.h"

static uv_loop_t loop;

typedef struct tjob {
    svc_job base; /* first: the callbacks get a svc_job * */
    int block;    /* run waits until cancelled or released */
    atomic_int release, started, gone_now;
    int order;    /* events seen, to check account < answer < finish */
    int accounted, answers, finishes;
    int answer_status, reply_status, finish_status;
    char msg[SVC_ERR_MSG];
} tjob;

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void run(svc_job *base, attn_ctx *ctx) {
    (void)ctx;
    tjob *j = (tjob *)base;
    atomic_store(&j->started, 1);
    uint64_t limit = svc_now_us() + 5000000u;
    while (j->block && !atomic_load(&j->release) && !__atomic_load_n(&base->cancel, __ATOMIC_RELAXED) &&
           svc_now_us() < limit)
        sleep_ms(1);
    svc_reply_empty(&base->reply, 200);
}

static void account(svc_job *base) {
    tjob *j = (tjob *)base;
    j->accounted = ++j->order;
}

static void answer(svc_job *base, int status, svc_reply *rep) {
    tjob *j = (tjob *)base;
    j->answers++;
    ++j->order;
    j->answer_status = status;
    j->reply_status = rep->status;
    snprintf(j->msg, sizeof j->msg, "%s", rep->err.msg);
    svc_reply_clear(rep); /* the callback owns *rep */
}

static int gone(svc_job *base) { return atomic_load(&((tjob *)base)->gone_now); }

static void finish(svc_job *base, int status) {
    tjob *j = (tjob *)base;
    assert_int_equal(j->answers, 1); /* the answer went out first */
    j->finishes++;
    ++j->order;
    j->finish_status = status;
    svc_reply_clear(&base->reply);
}

static void job_init(tjob *j, int block) {
    memset(j, 0, sizeof *j);
    svc_reply_init(&j->base.reply);
    j->base.run = run;
    j->base.finish = finish;
    j->base.account = account;
    j->block = block;
}

/* What svc_req_submit does, without a connection. */
static void submit(tjob *j) {
    svc_err e = {0};
    assert_int_equal(svc_sched_reserve(&e), 0);
    j->base.answer = answer;
    j->base.gone = gone;
    j->base.owner = j;
    svc_sched_submit(&j->base);
}

/* Runs the loop until *flag is set (at most 5 s). */
static void pump_until(atomic_int *flag) {
    uint64_t limit = svc_now_us() + 5000000u;
    while (!atomic_load(flag) && svc_now_us() < limit) uv_run(&loop, UV_RUN_NOWAIT), sleep_ms(1);
    assert_true(atomic_load(flag));
}

static void pump_finished(tjob *j) {
    uint64_t limit = svc_now_us() + 5000000u;
    while (!j->finishes && svc_now_us() < limit) uv_run(&loop, UV_RUN_NOWAIT), sleep_ms(1);
    assert_int_equal(j->finishes, 1);
}

/* Every job ends with one answer and one finish, both with `status`. */
static void assert_ended(const tjob *j, int status) {
    assert_int_equal(j->answers, 1);
    assert_int_equal(j->finishes, 1);
    assert_int_equal(j->answer_status, status);
    assert_int_equal(j->reply_status, status);
    assert_int_equal(j->finish_status, status);
    assert_int_equal(j->base.status, status);
}

static void completes(void **st) {
    (void)st;
    tjob j;
    job_init(&j, 0);
    submit(&j);
    pump_finished(&j);
    assert_ended(&j, 200);
    assert_int_equal(j.accounted, 1); /* account, then answer, then finish */
    assert_int_equal(j.order, 3);
    assert_true(j.base.threads >= 1);
    assert_true(j.base.t_submit <= j.base.t_start && j.base.t_start <= j.base.t_end);
    assert_int_equal(svc_sched_active(), 0);
    assert_int_equal(svc_sched_pending(), 0);
}

/* One job holds the pool's thread, max_queue (2) more wait; the next is
 * refused with 503 and the queue's size in the message. */
static void queue_bound(void **st) {
    (void)st;
    tjob a, b, c;
    job_init(&a, 1);
    job_init(&b, 0);
    job_init(&c, 0);
    submit(&a);
    pump_until(&a.started);
    submit(&b);
    submit(&c);
    assert_int_equal(svc_sched_pending(), 2);
    svc_err e = {0};
    assert_int_equal(svc_sched_reserve(&e), 503);
    assert_int_equal(e.status, 503);
    assert_string_equal(e.msg, "server busy: 2 requests are already queued");
    atomic_store(&a.release, 1);
    pump_finished(&a);
    pump_finished(&b);
    pump_finished(&c);
    assert_ended(&a, 200);
    assert_ended(&b, 200);
    assert_ended(&c, 200);
    assert_int_equal(svc_sched_pending(), 0);
    assert_int_equal(svc_sched_reserve(&e), 0); /* room again: take the slot back with a job */
    tjob d;
    job_init(&d, 0);
    d.base.answer = answer;
    d.base.gone = gone;
    d.base.owner = &d;
    svc_sched_submit(&d.base);
    pump_finished(&d);
    assert_ended(&d, 200);
}

/* The client leaves: a running job is told to stop, a queued one never
 * runs; both are answered 499. */
static void cancel(void **st) {
    (void)st;
    tjob a, b;
    job_init(&a, 1);
    job_init(&b, 0);
    submit(&a);
    pump_until(&a.started);
    submit(&b);
    atomic_store(&b.gone_now, 1);
    pump_finished(&b);
    assert_ended(&b, 499);
    assert_int_equal(atomic_load(&b.started), 0);
    assert_int_equal(b.accounted, 0); /* only a job's own reply is accounted */
    assert_non_null(strstr(b.msg, "the client closed the connection"));
    atomic_store(&a.gone_now, 1);
    pump_finished(&a);
    assert_ended(&a, 499);
    assert_int_equal(a.base.cancel, 1);
    assert_int_equal(svc_sched_active(), 0);
}

/* At the deadline the answer is 504 at once; finish follows (with 504)
 * when the job's thread has let go of it. */
static void deadline(void **st) {
    (void)st;
    tjob a;
    job_init(&a, 1);
    a.base.deadline_us = svc_now_us() + 30000u;
    submit(&a);
    pump_finished(&a);
    assert_ended(&a, 504);
    assert_int_equal(a.base.cancel, 1);
    assert_true(a.base.t_end >= a.base.deadline_us);
    assert_non_null(strstr(a.msg, "request timed out after"));
    assert_int_equal(a.accounted, 0);
}

/* A short job runs on the caller's thread: a core is claimed only while
 * nothing waits and one is free (cores = 2 here); account, answer and
 * finish all come before svc_sched_run_here returns, with one thread, and
 * the core is given back. */
static void run_here(void **st) {
    (void)st;
    tjob a;
    job_init(&a, 0);
    assert_int_equal(svc_sched_claim_here(), 1);
    assert_int_equal(svc_sched_active(), 1);
    a.base.answer = answer;
    svc_sched_run_here(&a.base);
    assert_ended(&a, 200);
    assert_int_equal(a.order, 3);
    assert_int_equal(a.accounted, 1);
    assert_int_equal(a.base.threads, 1);
    assert_int_equal(atomic_load(&a.started), 1);
    assert_int_equal(svc_sched_active(), 0);
    /* One compute thread (--threads 1): no second claim while one is out. */
    assert_int_equal(svc_sched_claim_here(), 1);
    assert_int_equal(svc_sched_claim_here(), 0);
    tjob b;
    job_init(&b, 0);
    b.base.answer = answer;
    svc_sched_run_here(&b.base);
    assert_ended(&b, 200);
    /* A job on the pool's one thread: nothing beside it; one waiting for
     * the pool: nothing runs past it. */
    tjob d, e;
    job_init(&d, 1);
    job_init(&e, 0);
    submit(&d);
    pump_until(&d.started);
    assert_int_equal(svc_sched_pending(), 0);
    assert_int_equal(svc_sched_claim_here(), 0);
    submit(&e); /* waits: the pool has one thread */
    assert_int_equal(svc_sched_pending(), 1);
    assert_int_equal(svc_sched_claim_here(), 0);
    atomic_store(&d.release, 1);
    pump_finished(&d);
    pump_finished(&e);
    assert_int_equal(svc_sched_claim_here(), 1); /* free again */
    tjob f;
    job_init(&f, 0);
    f.base.answer = answer;
    svc_sched_run_here(&f.base);
    assert_ended(&f, 200);
}

/* Shutdown: every job still unanswered gets 503, and nothing more is
 * accepted.  Last: the scheduler stays closed. */
static void abort_all(void **st) {
    (void)st;
    tjob a, b;
    job_init(&a, 1);
    job_init(&b, 0);
    submit(&a);
    pump_until(&a.started);
    submit(&b);
    svc_sched_abort_all("the server is shutting down");
    assert_int_equal(a.answers, 1);
    assert_int_equal(b.answers, 1);
    assert_string_equal(a.msg, "the server is shutting down");
    pump_finished(&a);
    pump_finished(&b);
    assert_ended(&a, 503);
    assert_ended(&b, 503);
    assert_int_equal(atomic_load(&b.started), 0);
    svc_err e = {0};
    assert_int_equal(svc_sched_reserve(&e), 503);
    assert_int_equal(svc_sched_claim_here(), 0); /* nor anything on the caller's thread */
}

static int setup(void **st) {
    (void)st;
    setenv("UV_THREADPOOL_SIZE", "1", 1); /* before the pool starts */
    svc_cfg = svc_config_defaults();
    svc_cfg.cores = 2;
    svc_cfg.threads = 1; /* as the pool */
    svc_cfg.call_threads = 1;
    svc_cfg.max_queue = 2;
    svc_cfg.timeout_s = 0.1; /* the deadline tick every 12 ms */
    if (uv_loop_init(&loop) != 0) return -1;
    svc_err e = {0};
    return svc_sched_init(&loop, &e);
}

static int teardown(void **st) {
    (void)st;
    svc_sched_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(completes), cmocka_unit_test(queue_bound), cmocka_unit_test(cancel),
        cmocka_unit_test(deadline),  cmocka_unit_test(run_here), cmocka_unit_test(abort_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
