/*
 * test_parallel.c — attn__parallel_for and its helper pool (core/parallel.c):
 * every task runs exactly once, on a worker index below the thread count;
 * the first failure is returned; a raised cancel flag stops the loop; many
 * short loops back to back and loops from several calling threads at once
 * share the pool (helpers spinning between loops, or sleeping with
 * ATTN_SPIN_US=0, which is read once per process, so that case runs this
 * binary again).
 */
#include "test_util.h"

#include "attn_internal.h"
#include "cpu.h"

#include <pthread.h>
#include <stdatomic.h>

#define NTASK 1000

typedef struct count_job {
    atomic_int hits[NTASK];
    int threads;
    atomic_int bad_worker;
    size_t fail_at; /* NTASK: never */
} count_job;

static attn_status count_task(void *arg, size_t task, int worker) {
    count_job *j = arg;
    if (worker < 0 || worker >= j->threads) atomic_store(&j->bad_worker, 1);
    atomic_fetch_add(&j->hits[task], 1);
    return task == j->fail_at ? ATTN_E_SHAPE : ATTN_OK;
}

static void run_counted(int threads, size_t n) {
    attn_ctx *ctx = attn_ctx_new(threads);
    assert_non_null(ctx);
    count_job *j = calloc(1, sizeof *j);
    j->threads = threads;
    j->fail_at = NTASK;
    assert_int_equal(attn__parallel_for(ctx, n, count_task, j), ATTN_OK);
    for (size_t i = 0; i < NTASK; i++) assert_int_equal(atomic_load(&j->hits[i]), i < n ? 1 : 0);
    assert_int_equal(atomic_load(&j->bad_worker), 0);
    free(j);
    attn_ctx_free(ctx);
}

static void loops_body(void **state) {
    (void)state;
    for (int t = 1; t <= 5; t++) {
        run_counted(t, 0);
        run_counted(t, 1);
        run_counted(t, 7);
        run_counted(t, NTASK);
    }
    /* short loops back to back: helpers come back between them */
    for (int i = 0; i < 2000; i++) run_counted(3, 1 + (size_t)i % 9);
}

static void test_loops(void **state) { loops_body(state); }

static void test_first_failure(void **state) {
    (void)state;
    attn_ctx *ctx = attn_ctx_new(4);
    count_job *j = calloc(1, sizeof *j);
    j->threads = 4;
    j->fail_at = 10;
    assert_int_equal(attn__parallel_for(ctx, NTASK, count_task, j), ATTN_E_SHAPE);
    assert_int_equal(atomic_load(&j->hits[10]), 1);
    free(j);
    attn_ctx_free(ctx);
}

static attn_status raise_task(void *arg, size_t task, int worker) {
    (void)worker;
    volatile int *flag = arg;
    if (task == 5) __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
    return ATTN_OK;
}

static void test_cancel(void **state) {
    (void)state;
    attn_ctx *ctx = attn_ctx_new(3);
    volatile int flag = 0;
    attn_ctx_set_cancel(ctx, &flag);
    assert_int_equal(attn__parallel_for(ctx, 100000, raise_task, (void *)&flag), ATTN_E_CANCELLED);
    /* raised before the call: nothing runs, even for n = 0 */
    assert_int_equal(attn__parallel_for(ctx, 0, raise_task, (void *)&flag), ATTN_E_CANCELLED);
    attn_ctx_free(ctx);
}

static void *caller(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) run_counted(2 + i % 3, 50 + (size_t)i % 200);
    return NULL;
}

static void test_concurrent_callers(void **state) {
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
}

/* test_parallel --loops WANT under ATTN_SPIN_US = spin (NULL: unset), WANT
 * the spin it must then report. */
static int rerun(const char *spin, long want) {
    char w[32];
    snprintf(w, sizeof w, "%ld", want);
    return tu_rerun("ATTN_SPIN_US", spin, "--loops", w);
}

/* A caller's sgemm pin (cpu.h) holds on every thread that runs its tasks,
 * and leaves the helpers unpinned after. */
typedef struct pin_job {
    atomic_int seen[64];
} pin_job;

static attn_status pin_task(void *arg, size_t task, int worker) {
    (void)worker;
    pin_job *j = arg;
    /* small and large class of the pinned choice, and the pin itself */
    atomic_store(&j->seen[task], attn__gemm_use_own(0, 0) | attn__gemm_use_own((size_t)1 << 18, 2) << 1 |
                                     (attn__gemm_pin() + 1) << 2);
    for (volatile int spin = 0; spin < 20000; spin++) {
    }
    return ATTN_OK;
}

static void test_gemm_pin_reaches_helpers(void **state) {
    (void)state;
    attn_ctx *ctx = attn_ctx_new(3);
    for (int pin = 0; pin < 4; pin++) {
        pin_job j = {0};
        attn__gemm_set_pin(pin);
        assert_int_equal(attn__parallel_for(ctx, 64, pin_task, &j), ATTN_OK);
        attn__gemm_set_pin(-1);
        for (int t = 0; t < 64; t++) assert_int_equal(atomic_load(&j.seen[t]), pin | (pin + 1) << 2);
    }
    /* unpinned: the process's choice, and the helpers hold no pin of an earlier job */
    pin_job j = {0};
    assert_int_equal(attn__parallel_for(ctx, 64, pin_task, &j), ATTN_OK);
    for (int t = 0; t < 64; t++) assert_int_equal(atomic_load(&j.seen[t]), attn__gemm_choice());
    attn_ctx_free(ctx);
}

static void test_spin_settings(void **state) {
    (void)state;
    assert_int_equal(rerun(NULL, 100), 0);
    assert_int_equal(rerun("0", 0), 0); /* helpers always sleep */
    assert_int_equal(rerun("7", 7), 0);
    assert_int_equal(rerun("-1", 100), 0); /* refused: the default */
    assert_int_equal(rerun("12abc", 100), 0);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--loops") == 0) {
        if (attn__pool_spin_us() != strtol(argv[2], NULL, 10)) return 3;
        const struct CMUnitTest loops[] = {cmocka_unit_test(loops_body), cmocka_unit_test(test_concurrent_callers)};
        return cmocka_run_group_tests(loops, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_first_failure),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_spin_settings),
        cmocka_unit_test(test_gemm_pin_reaches_helpers),
    };
    return cmocka_run_group_tests_name("parallel", tests, NULL, NULL);
}
