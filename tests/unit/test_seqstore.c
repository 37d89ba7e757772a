/* test_seqstore.c — the table of live sequences (server/seqstore.c) with
 * fake states and no model or socket: start / find / 409 / 404 with the
 * reason it ended, the count and byte limits (503, and eviction of idle
 * sequences only: never one with a request in hand), the idle sweep, turn
 * order across threads, an admit that fails (the open is undone), abandon,
 * the list, the counters, and that every state is freed exactly once.
 * Links server/seqstore.o and the few server objects it needs (Makefile). */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../../server/seqstore.h"

static atomic_int freed;
static void free_state(void *p) {
    atomic_fetch_add(&freed, 1);
    free(p);
}

#define S 1000000ull /* a second in us */

static void setup(size_t max_live, size_t max_bytes) {
    svc_seq_limits l = {.max_live = max_live, .max_bytes = max_bytes, .idle_s = 10, .max_len = 100,
                        .evict_idle_s = 2, .record = 4};
    svc_err e = {0};
    assert_int_equal(svc_seqs_init(&l, &e), 0);
    atomic_store(&freed, 0);
}

/* Opens (start or not) with no turn and no admit. */
static int open1(const char *model, const char *id, int start, uint64_t now, svc_seq_entry **s, svc_err *e) {
    return svc_seqs_open(model, id, start, now, NULL, NULL, NULL, s, e);
}

/* A started sequence with a state of `bytes`, closed (idle) at `now`. */
static void started(const char *id, size_t bytes, uint64_t now) {
    svc_seq_entry *s;
    svc_err e = {0};
    assert_int_equal(open1("m", id, 1, now, &s, &e), 0);
    svc_seqs_set_state(s, malloc(8), free_state);
    svc_seqs_update(s, bytes, 1);
    svc_seqs_close(s, NULL, now);
}

static void start_find_end(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s, *t;
    assert_int_equal(open1("m", "a", 0, 0, &s, &e), 404);
    assert_non_null(strstr(e.msg, "never started"));
    started("a", 100, 1 * S);
    assert_int_equal(open1("m", "a", 1, 2 * S, &s, &e), 409);
    assert_null(s);
    assert_int_equal(open1("other", "a", 0, 2 * S, &s, &e), 404); /* ids are per model */
    assert_int_equal(open1("m", "a", 0, 2 * S, &t, &e), 0);
    assert_string_equal(svc_seqs_id(t), "a");
    assert_int_equal(svc_seqs_length(t), 1);
    svc_seqs_update(t, 300, 7);
    svc_seq_stats q = svc_seqs_stats();
    assert_int_equal(q.live, 1);
    assert_int_equal(q.bytes, 300);
    assert_int_equal(q.tokens, 7);
    svc_seqs_end(t, SVC_SEQ_END_FLAG);
    assert_int_equal(svc_seqs_live(t), 0);
    assert_int_equal(atomic_load(&freed), 0); /* still held */
    assert_int_equal(open1("m", "a", 0, 2 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "sequence_end"));
    assert_non_null(strstr(e.msg, "after 7 tokens"));
    svc_seqs_close(t, NULL, 3 * S);
    assert_int_equal(atomic_load(&freed), 1);
    q = svc_seqs_stats();
    assert_int_equal(q.live, 0);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.ends[SVC_SEQ_END_FLAG], 1);
    assert_int_equal(q.started, 1);
    /* the id is free again */
    started("a", 10, 4 * S);
    assert_int_equal(svc_seqs_end_id("m", "a", SVC_SEQ_END_DELETED, &e), 0);
    assert_int_equal(atomic_load(&freed), 2);
    assert_int_equal(svc_seqs_end_id("m", "a", SVC_SEQ_END_DELETED, &e), 404);
    assert_non_null(strstr(e.msg, "deleted"));
    assert_int_equal(svc_seqs_shutdown(), 0);
}

static void count_limit_and_eviction(void **st) {
    (void)st;
    setup(2, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s, *held;
    started("a", 1, 1 * S);
    started("b", 1, 2 * S);
    /* full, nothing idle for 2 s at t=3 s: "a" is idle 2 s -> evicted first (LRU) */
    assert_int_equal(open1("m", "c", 1, 3 * S, &s, &e), 0);
    svc_seqs_close(s, NULL, 3 * S);
    assert_int_equal(open1("m", "a", 0, 3 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "evicted"));
    assert_int_equal(svc_seqs_stats().ends[SVC_SEQ_END_EVICTED], 1);
    /* b (idle since 2 s) and c (since 3 s); at 3.5 s none has been idle for 2 s */
    assert_int_equal(open1("m", "d", 1, 3 * S + S / 2, &s, &e), 503);
    assert_non_null(strstr(e.msg, "--max-sequences"));
    /* a held sequence is never evicted, however long idle */
    assert_int_equal(open1("m", "b", 0, 3 * S + S / 2, &held, &e), 0);
    assert_int_equal(open1("m", "d", 1, 5 * S + S / 2, &s, &e), 0); /* evicts c, not b */
    svc_seqs_close(s, NULL, 5 * S + S / 2);
    assert_true(svc_seqs_live(held));
    assert_int_equal(open1("m", "c", 0, 6 * S, &s, &e), 404);
    assert_int_equal(open1("m", "e", 1, 100 * S, &s, &e), 0); /* d evicted; b still held */
    assert_true(svc_seqs_live(held));
    svc_seqs_close(s, NULL, 100 * S);
    svc_seqs_close(held, NULL, 100 * S);
    assert_int_equal(svc_seqs_shutdown(), 2);
    assert_int_equal(atomic_load(&freed), 2); /* a and b had states; c, d, e none */
}

static void byte_budget(void **st) {
    (void)st;
    setup(100, 1000);
    svc_err e = {0};
    svc_seq_entry *s;
    started("a", 600, 1 * S);
    started("b", 500, 2 * S);
    /* 1100 >= 1000: a start must evict; "a" has been idle for 2 s at t=3 s */
    assert_int_equal(open1("m", "c", 1, 3 * S, &s, &e), 0);
    assert_int_equal(svc_seqs_stats().bytes, 500);
    /* a step's room check: under budget */
    assert_int_equal(svc_seqs_room(s, 3 * S, &e), 0);
    svc_seqs_update(s, 600, 2);
    /* now 1100 again; b idle only 1 s: no room, and the step's own sequence is never the victim */
    assert_int_equal(svc_seqs_room(s, 3 * S, &e), 503);
    assert_non_null(strstr(e.msg, "--sequence-memory"));
    assert_int_equal(svc_seqs_room(s, 4 * S, &e), 0); /* b idle 2 s: evicted */
    assert_int_equal(svc_seqs_stats().bytes, 600);
    svc_seqs_close(s, NULL, 4 * S);
    assert_int_equal(svc_seqs_shutdown(), 1);
}

static void idle_sweep(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s, *held;
    started("a", 1, 1 * S);
    started("b", 1, 5 * S);
    assert_int_equal(open1("m", "b", 0, 5 * S, &held, &e), 0);
    assert_int_equal(svc_seqs_sweep(10 * S), 0);       /* a: idle 9 s < 10 s */
    assert_int_equal(svc_seqs_sweep(11 * S), 1);       /* a expires */
    assert_int_equal(svc_seqs_sweep(100 * S), 0);      /* b is held */
    assert_int_equal(open1("m", "a", 0, 12 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "idle timeout"));
    assert_non_null(strstr(e.msg, "restore it"));
    svc_seqs_close(held, NULL, 100 * S);
    assert_int_equal(svc_seqs_sweep(109 * S), 0);
    assert_int_equal(svc_seqs_sweep(110 * S), 1);
    assert_int_equal(svc_seqs_stats().ends[SVC_SEQ_END_IDLE], 2);
    assert_int_equal(atomic_load(&freed), 2);
    assert_int_equal(svc_seqs_shutdown(), 0);
}

static void record_is_bounded(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s;
    char id[16];
    for (int i = 0; i < 6; i++) { /* record holds 4 */
        snprintf(id, sizeof id, "x%d", i);
        started(id, 1, 1 * S);
        assert_int_equal(svc_seqs_end_id("m", id, SVC_SEQ_END_DELETED, &e), 0);
    }
    assert_int_equal(open1("m", "x5", 0, 2 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "deleted"));
    assert_int_equal(open1("m", "x2", 0, 2 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "deleted"));
    assert_int_equal(open1("m", "x1", 0, 2 * S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "never started"));
    assert_int_equal(svc_seqs_shutdown(), 0);
}

static int admit_status;
static int admitted;
static int admit(void *arg, svc_err *e) {
    (void)arg;
    admitted++;
    return admit_status ? svc_fail(e, admit_status, "queue full") : 0;
}

static void failed_admit_and_abandon(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s;
    svc_seq_turn t1;
    admit_status = 503;
    assert_int_equal(svc_seqs_open("m", "a", 1, S, &t1, admit, NULL, &s, &e), 503);
    assert_null(s);
    assert_int_equal(admitted, 1);
    assert_int_equal(t1.queued, 0);
    assert_int_equal(svc_seqs_stats().live, 0);
    assert_int_equal(svc_seqs_stats().started, 0);
    assert_int_equal(open1("m", "a", 0, S, &s, &e), 404); /* the start was undone */
    admit_status = 0;
    assert_int_equal(svc_seqs_open("m", "a", 1, S, &t1, admit, NULL, &s, &e), 0);
    /* its start failed: abandon leaves no record, the id is free */
    svc_seqs_abandon(s);
    svc_seqs_close(s, &t1, S);
    assert_int_equal(open1("m", "a", 0, S, &s, &e), 404);
    assert_non_null(strstr(e.msg, "never started"));
    assert_int_equal(svc_seqs_stats().started, 0);
    assert_int_equal(svc_seqs_shutdown(), 0);
}

static void turned_off(void **st) {
    (void)st;
    setup(0, 1 << 20);
    svc_err e = {0};
    svc_seq_entry *s;
    assert_int_equal(open1("m", "a", 1, S, &s, &e), 400);
    assert_non_null(strstr(e.msg, "--max-sequences 0"));
    svc_seqs_shutdown();
}

/* Turns: threads opened in order 0..N-1 run strictly in that order even
 * when they start waiting in reverse. */
#define NT 6
typedef struct worker {
    svc_seq_entry *s;
    svc_seq_turn turn;
    int idx;
    pthread_t th;
} worker;
static int order[NT], n_order;
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *p) {
    worker *w = p;
    struct timespec ts = {0, (NT - w->idx) * 3000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(svc_seqs_wait_turn(w->s, &w->turn, NULL), 0);
    pthread_mutex_lock(&order_mu);
    order[n_order++] = w->idx;
    pthread_mutex_unlock(&order_mu);
    svc_seqs_close(w->s, &w->turn, S);
    return NULL;
}

static void turn_order(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    started("a", 1, S);
    worker w[NT];
    n_order = 0;
    for (int i = 0; i < NT; i++) {
        w[i].idx = i;
        assert_int_equal(svc_seqs_open("m", "a", 0, S, &w[i].turn, NULL, NULL, &w[i].s, &e), 0);
    }
    for (int i = 0; i < NT; i++) pthread_create(&w[i].th, NULL, work, &w[i]);
    for (int i = 0; i < NT; i++) pthread_join(w[i].th, NULL);
    assert_int_equal(n_order, NT);
    for (int i = 0; i < NT; i++) assert_int_equal(order[i], i);
    assert_int_equal(svc_seqs_shutdown(), 1);
}

/* A cancelled waiter returns at once and, once closed, lets the next run. */
static void cancelled_turn(void **st) {
    (void)st;
    setup(8, 1 << 20);
    svc_err e = {0};
    started("a", 1, S);
    svc_seq_entry *s1, *s2, *s3;
    svc_seq_turn t1, t2, t3;
    assert_int_equal(svc_seqs_open("m", "a", 0, S, &t1, NULL, NULL, &s1, &e), 0);
    assert_int_equal(svc_seqs_open("m", "a", 0, S, &t2, NULL, NULL, &s2, &e), 0);
    assert_int_equal(svc_seqs_open("m", "a", 0, S, &t3, NULL, NULL, &s3, &e), 0);
    volatile int cancel = 1;
    assert_int_equal(svc_seqs_wait_turn(s3, &t3, &cancel), -1);
    svc_seqs_close(s2, &t2, S); /* never ran: leaves from the middle */
    assert_int_equal(svc_seqs_wait_turn(s1, &t1, NULL), 0);
    svc_seqs_close(s1, &t1, S);
    assert_int_equal(svc_seqs_wait_turn(s3, &t3, NULL), 0);
    svc_seqs_close(s3, &t3, S);
    assert_int_equal(svc_seqs_shutdown(), 1);
}

static void listing(void **st) {
    (void)st;
    setup(8, 1 << 20);
    started("a", 11, 1 * S);
    started("b", 22, 2 * S);
    svc_err e = {0};
    svc_seq_entry *s;
    assert_int_equal(svc_seqs_open("n", "c", 1, 2 * S, NULL, NULL, NULL, &s, &e), 0);
    json_t *l = svc_seqs_list("m", 4 * S);
    assert_int_equal(json_array_size(l), 2);
    size_t i;
    json_t *o;
    json_array_foreach(l, i, o) {
        const char *id = json_string_value(json_object_get(o, "id"));
        double idle = json_real_value(json_object_get(o, "idle_s"));
        if (!strcmp(id, "a")) assert_true(idle == 3.0 && json_integer_value(json_object_get(o, "bytes")) == 11);
        else assert_true(!strcmp(id, "b") && idle == 2.0);
        assert_false(json_is_true(json_object_get(o, "busy")));
    }
    json_decref(l);
    l = svc_seqs_list(NULL, 4 * S);
    assert_int_equal(json_array_size(l), 3);
    json_decref(l);
    svc_seqs_close(s, NULL, 2 * S);
    assert_int_equal(svc_seqs_end_all(SVC_SEQ_END_DRAINED), 3);
    assert_int_equal(svc_seqs_stats().ends[SVC_SEQ_END_DRAINED], 3);
    assert_int_equal(atomic_load(&freed), 2);
    assert_int_equal(svc_seqs_shutdown(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_find_end), cmocka_unit_test(count_limit_and_eviction),
        cmocka_unit_test(byte_budget),    cmocka_unit_test(idle_sweep),
        cmocka_unit_test(record_is_bounded), cmocka_unit_test(failed_admit_and_abandon),
        cmocka_unit_test(turned_off),     cmocka_unit_test(turn_order),
        cmocka_unit_test(cancelled_turn), cmocka_unit_test(listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
