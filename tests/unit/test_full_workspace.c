/*
 * test_full_workspace.c — full's workspace contract (core/workspace.h):
 *   - attn_model_workspace_size reports what the path that runs declares
 *     (the fused kernel's, with or without its head-by-head copy, or the
 *     blocked path's), and a forward with a block of exactly that size,
 *     NaN-filled, gives the bits of attn_model_forward and the plain
 *     reference's values: causal, random and key_lengths masks, both paths,
 *     1 and 3 threads, the variant in use (ATTN_CPU picks another);
 *   - attn_model_forward_ws allocates nothing: this binary is linked with
 *     the archive's calls to malloc, calloc, realloc, aligned_alloc,
 *     posix_memalign and mmap wrapped (Makefile: -Wl,--wrap=...), and the
 *     wrappers count the calls made while a forward runs.  attn_model_forward
 *     (its own workspace) is counted too, so the counter is seen to work.
 * ATTN_GEMM=openblas is set first: libattn's own sgemm (kernels/gemm.c)
 * packs into a buffer it allocates per product, which is not full's scratch.
 */
#include "test_util.h"

#include "cpu.h"
#include "mech/full.h"

#include <stdatomic.h>
#include <sys/mman.h>

/* ---- the counting allocator ---- */

static atomic_int armed;
static atomic_long counted;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);

static void count(void) {
    if (atomic_load(&armed)) atomic_fetch_add(&counted, 1);
}
void *__wrap_malloc(size_t n) {
    count();
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s) {
    count();
    return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n) {
    count();
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    count();
    return __real_aligned_alloc(a, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    count();
    return __real_posix_memalign(p, a, n);
}
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    count();
    return __real_mmap(addr, len, prot, flags, fd, off);
}

static void arm(void) {
    atomic_store(&counted, 0);
    atomic_store(&armed, 1);
}
static long disarm(void) {
    atomic_store(&armed, 0);
    return atomic_load(&counted);
}

/* ---- one shape ---- */

enum { PLAIN, CAUSAL, RANDOM, LENGTHS };

typedef struct shape {
    int64_t N, L, S, H, E, D;
    int mask;
} shape;

static attn_tensor_set *inputs(const shape *x, attn_qkv *a) {
    attn_tensor_set *in = tu_qkv((uint64_t)(x->L * 131 + x->S * 7 + x->D), x->N, x->L, x->S, x->H, x->E, x->D);
    if (x->mask == CAUSAL) tu_add(in, "attn_mask", tu_tril(x->L, x->S, 0));
    if (x->mask == RANDOM) {
        attn_tensor *mt = tu_tril(x->L, x->S, x->S);
        uint64_t seed = 5;
        uint8_t *mb = mt->data;
        for (int64_t i = 0; i < x->L * x->S; i++) mb[i] = tu_rand(&seed) > -0.6f;
        tu_add(in, "attn_mask", mt);
    }
    if (x->mask == LENGTHS) {
        int64_t kl[4] = {x->S, x->S / 2 + 1, 1, x->S};
        tu_add(in, "key_lengths", tu_lengths(x->N, kl));
    }
    const attn_tensor *tm = attn_tensor_set_get(in, "attn_mask"), *tk = attn_tensor_set_get(in, "key_lengths");
    *a = (attn_qkv){.N = x->N, .L = x->L, .S = x->S, .H = x->H, .E = x->E, .D = x->D,
                    .q = attn_tensor_set_get(in, "queries")->data, .k = attn_tensor_set_get(in, "keys")->data,
                    .v = attn_tensor_set_get(in, "values")->data, .attn_mask = tm ? tm->data : NULL,
                    .key_lengths = tk ? tk->data : NULL};
    attn__qkv_prepare(a);
    return in;
}

static int fused_runs, blas_runs;

/* The declared size, a forward with exactly that many NaN-filled bytes and
 * no allocation, against attn_model_forward and the reference. */
static void check(const shape *x, int threads) {
    attn_qkv a;
    attn_tensor_set *in = inputs(x, &a);
    attn_model *m = tu_model("full", NULL);
    attn_ctx *ctx = attn_ctx_new(threads);
    attn_error e = {0};
    char what[160];
    snprintf(what, sizeof what, "N=%lld L=%lld S=%lld H=%lld E=%lld D=%lld mask=%d threads=%d", (long long)x->N,
             (long long)x->L, (long long)x->S, (long long)x->H, (long long)x->E, (long long)x->D, x->mask, threads);

    /* the size the model reports is the running path's */
    bool fused = a.L >= 8 && attn__full_fused_ok(&a);
    size_t bytes = 0, path = 0;
    if (attn_model_workspace_size(m, in, threads, &bytes, &e)) fail_msg("%s: workspace_size: %s", what, e.msg);
    if (fused) assert_int_equal(attn__full_fused_ws(&a, threads, &path, &e), ATTN_OK);
    else assert_int_equal(attn__full_blas_ws(&a, threads, &path, &e), ATTN_OK);
    if (bytes != path || bytes == 0) fail_msg("%s: workspace_size %zu, the %s path declares %zu", what, bytes,
                                              fused ? "fused" : "blocked", path);
    fused ? fused_runs++ : blas_runs++;

    attn_tensor *ref = NULL;
    arm();
    assert_int_equal(attn_model_forward(m, ctx, in, &ref, &e), ATTN_OK);
    if (disarm() < 2) fail_msg("%s: attn_model_forward allocated its output and workspace unseen", what);

    void *ws = NULL;
    assert_int_equal(posix_memalign(&ws, 64, bytes), 0);
    memset(ws, 0xff, bytes);
    attn_tensor *o = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, 4, ref->shape, &o, NULL), ATTN_OK);
    memset(o->data, 0xff, o->nbytes);
    arm();
    attn_status st = attn_model_forward_ws(m, ctx, in, o, ws, bytes, &e);
    long n = disarm();
    if (st) fail_msg("%s: forward_ws: %s", what, e.msg);
    if (n) fail_msg("%s: forward_ws made %ld allocations", what, n);
    if (memcmp(o->data, ref->data, o->nbytes)) fail_msg("%s: forward_ws bits differ from forward", what);

    float *want = calloc(o->numel, sizeof *want);
    assert_int_equal(attn__full_reference(0.0f, &a, want, &e), ATTN_OK);
    const float *got = o->data;
    for (size_t i = 0; i < o->numel; i++) {
        if (isnan(want[i]) != isnan(got[i])) fail_msg("%s: NaN at %zu differs", what, i);
        if (!isnan(want[i]) && !(fabsf(got[i] - want[i]) < 2e-5f))
            fail_msg("%s: %zu: %g, reference %g", what, i, got[i], want[i]);
    }
    /* one byte short is refused before anything runs */
    assert_int_equal(attn_model_forward_ws(m, ctx, in, o, ws, bytes - 1, &e), ATTN_E_INVALID);

    free(want);
    free(ws);
    attn_tensor_free(o);
    attn_tensor_free(ref);
    attn_ctx_free(ctx);
    attn_model_free(m);
    attn_tensor_set_free(in);
}

static void exact_workspace_no_allocation(void **state) {
    (void)state;
    static const shape shapes[] = {
        /* fused (D a multiple of every variant's vector width, L >= 8) */
        {2, 97, 200, 2, 64, 64, PLAIN},
        {1, 300, 300, 3, 64, 64, CAUSAL}, /* causal: key blocks skipped */
        {2, 130, 257, 2, 32, 48, RANDOM},
        {3, 200, 600, 2, 16, 32, LENGTHS},
        {1, 1030, 1030, 2, 64, 64, CAUSAL},
        /* blocked sgemm: D not a multiple of any vector width, or L < 8 */
        {2, 300, 1100, 2, 16, 5, PLAIN},
        {2, 300, 1100, 2, 16, 5, CAUSAL},
        {4, 129, 700, 1, 8, 7, RANDOM},
        {4, 64, 64, 2, 8, 3, LENGTHS},
        {2, 5, 33, 3, 64, 64, CAUSAL},
        {1, 1, 1, 1, 4, 3, PLAIN},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check(&shapes[i], 1);
        check(&shapes[i], 3);
    }
    assert_true(fused_runs >= 10 && blas_runs >= 10);
}

/* The fused kernel's head-by-head copy of Q, K and V is part of the
 * declared workspace (it was allocated aside before): forced on it makes the
 * size larger by at least the copy than packing per key block or reading in
 * place (ATTN_FUSED_HEAD_COPY=1 / 0 / inplace), and every layout runs with
 * its size; at this size the default is in place. */
static void head_copy_is_declared(void **state) {
    (void)state;
    const shape x = {2, 200, 300, 4, 64, 64, CAUSAL};
    attn_qkv a;
    attn_tensor_set *in = inputs(&x, &a);
    attn_model *m = tu_model("full", NULL);
    attn_error e = {0};
    size_t with = 0, without = 0;
    setenv("ATTN_FUSED_HEAD_COPY", "1", 1); /* at this size K and V would be read in place */
    assert_int_equal(attn_model_workspace_size(m, in, 2, &with, &e), ATTN_OK);
    check(&x, 2); /* with the copy */
    setenv("ATTN_FUSED_HEAD_COPY", "0", 1);
    assert_int_equal(attn_model_workspace_size(m, in, 2, &without, &e), ATTN_OK);
    size_t kv = (size_t)(x.N * x.H * x.S * (x.E + x.D)) * sizeof(float);
    if (!(without > 0 && with >= without + kv)) fail_msg("with the copy %zu, without %zu (K and V: %zu)", with, without, kv);
    check(&x, 2); /* without the copy: packed per key block */
    setenv("ATTN_FUSED_HEAD_COPY", "inplace", 1);
    size_t inplace = 0;
    assert_int_equal(attn_model_workspace_size(m, in, 2, &inplace, &e), ATTN_OK);
    assert_true(inplace == without);
    check(&x, 2); /* read in place */
    unsetenv("ATTN_FUSED_HEAD_COPY");
    size_t dflt = 0;
    assert_int_equal(attn_model_workspace_size(m, in, 2, &dflt, &e), ATTN_OK);
    assert_true(dflt == inplace); /* 300 × 128 floats a head: in place by default */
    attn_model_free(m);
    attn_tensor_set_free(in);
}

/* Memory stays linear in L: past the copy's bound (64 MiB of Q, K and V)
 * the size is the per-worker blocks alone, whatever L is; below, the copy
 * grows with L, never with L². */
static void workspace_is_linear_in_L(void **state) {
    (void)state;
    size_t prev = 0;
    for (int64_t L = 1024; L <= 65536; L *= 2) {
        attn_qkv a = {.N = 1, .L = L, .S = L, .H = 8, .E = 64, .D = 64};
        attn__qkv_prepare(&a);
        size_t b = 0;
        attn_error e = {0};
        assert_int_equal(attn__full_workspace(&a, 2, &b, &e), ATTN_OK);
        size_t copy = (size_t)(2 * L * 8 * 64 + 8 * 64 * ((L + 95) / 96) * 96) * sizeof(float);
        bool inplace = (size_t)L * 128 * sizeof(float) <= ((size_t)512 << 10); /* one head's K and V */
        if (inplace) assert_true(b < ((size_t)4 << 20));
        else if (copy <= ((size_t)64 << 20)) assert_true(b >= copy && b < copy + ((size_t)4 << 20));
        else assert_true(b < ((size_t)4 << 20)); /* per-worker blocks only */
        if (prev && !inplace && copy <= ((size_t)64 << 20) && L > 2048) assert_true(b <= 2 * prev + 4096);
        prev = b;
    }
}

int main(void) {
    setenv("ATTN_GEMM", "openblas", 1); /* before the first product: see the header */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_workspace_no_allocation),
        cmocka_unit_test(head_copy_is_declared),
        cmocka_unit_test(workspace_is_linear_in_L),
    };
    return cmocka_run_group_tests_name("full_workspace", tests, NULL, NULL);
}
