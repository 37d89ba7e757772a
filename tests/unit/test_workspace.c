/*
 * test_workspace.c — the workspace contract (attn_model_workspace_size,
 * attn_model_forward_ws) and attn_model_forward_into, over every golden
 * case plus the parameter-free mechanisms the golden set has no case for:
 *   - the declared size is enough: each forward runs with a block of
 *     exactly that many bytes (an overflow shows under ASAN), filled with
 *     NaN bytes first (a forward that reads scratch it did not write shows
 *     as differing bits);
 *   - one block reused across calls gives identical bits;
 *   - forward_into and forward_ws equal attn_model_forward bit for bit, for
 *     every registered mechanism, into an output filled with NaN;
 *   - an output that is an input (in place for full, computed aside for the
 *     others) gives the same bits;
 *   - a too-small, misaligned or overlapping block is refused, a size past
 *     SIZE_MAX is ATTN_E_OVERFLOW and an allocation that fails ATTN_E_NOMEM;
 *   - a thread keeps up to 4 freed mapped blocks, ATTN_WS_KEEP bytes in
 *     all, and hands each out again (its bytes survive: a fresh mapping is
 *     zeros), one caller at a time, the smallest that is large enough;
 *     tensor data of 1 MiB or more is such a block (attn_tensor_new zeroes
 *     it); ATTN_WS_KEEP=0 keeps none.
 */
#include "test_util.h"

#include "workspace.h"

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <jansson.h>

/* Huge allocations must return NULL, not abort, under ASAN. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

#define CASES "tests/golden/cases"
#define MAX_COVERED 64

static const char *covered[MAX_COVERED];
static size_t n_covered;

static void cover(const char *name) {
    for (size_t i = 0; i < n_covered; i++)
        if (strcmp(covered[i], name) == 0) return;
    assert_true(n_covered < MAX_COVERED);
    covered[n_covered++] = name;
}

static void fill_nan(void *p, size_t n) { memset(p, 0xff, n); }

static attn_tensor *nan_like(const attn_tensor *t) {
    attn_tensor *o = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, t->rank, t->shape, &o, NULL), ATTN_OK);
    fill_nan(o->data, o->nbytes);
    return o;
}

static void assert_same_bits(const attn_tensor *a, const attn_tensor *b, const char *what) {
    assert_int_equal(a->nbytes, b->nbytes);
    if (memcmp(a->data, b->data, a->nbytes) != 0) fail_msg("%s: bits differ", what);
}

/* Every check on one model and input set, with `threads` threads. */
static void check_model(const attn_model *m, const attn_tensor_set *in, int threads, const char *what) {
    attn_ctx *ctx = attn_ctx_new(threads);
    attn_error e = {0};
    attn_tensor *ref = NULL;
    if (attn_model_forward(m, ctx, in, &ref, &e)) fail_msg("%s: forward: %s", what, e.msg);

    size_t bytes = 0;
    if (attn_model_workspace_size(m, in, threads, &bytes, &e)) fail_msg("%s: workspace_size: %s", what, e.msg);
    void *ws = NULL;
    if (bytes) assert_int_equal(posix_memalign(&ws, 64, bytes), 0); /* exactly the declared size */
    if (ws) fill_nan(ws, bytes);

    attn_tensor *o = nan_like(ref);
    if (attn_model_forward_ws(m, ctx, in, o, ws, bytes, &e)) fail_msg("%s: forward_ws: %s", what, e.msg);
    assert_same_bits(ref, o, what);
    fill_nan(o->data, o->nbytes); /* the block now holds the last call's garbage */
    if (attn_model_forward_ws(m, ctx, in, o, ws, bytes, &e)) fail_msg("%s: forward_ws again: %s", what, e.msg);
    assert_same_bits(ref, o, what);

    fill_nan(o->data, o->nbytes);
    if (attn_model_forward_into(m, ctx, in, o, &e)) fail_msg("%s: forward_into: %s", what, e.msg);
    assert_same_bits(ref, o, what);

    if (bytes) {
        assert_int_equal(attn_model_forward_ws(m, ctx, in, o, ws, bytes - 1, &e), ATTN_E_INVALID);
        assert_int_equal(attn_model_forward_ws(m, ctx, in, o, NULL, bytes, &e), ATTN_E_INVALID);
        void *big = NULL;
        assert_int_equal(posix_memalign(&big, 64, bytes + 64), 0);
        assert_int_equal(attn_model_forward_ws(m, ctx, in, o, (char *)big + 1, bytes, &e), ATTN_E_INVALID);
        assert_non_null(strstr(e.msg, "aligned"));
        free(big);
        /* The workspace may not be the output. */
        if (o->nbytes >= 64 && bytes <= o->nbytes && (uintptr_t)o->data % 64 == 0)
            assert_int_equal(attn_model_forward_ws(m, ctx, in, o, o->data, bytes, &e), ATTN_E_INVALID);
    }
    free(ws);
    attn_tensor_free(o);
    attn_tensor_free(ref);
    attn_ctx_free(ctx);
    cover(attn_model_mech(m)->name);
}

/* ---- the golden cases: one model of every mechanism with weights ---- */

static attn_tensor *view_of(const attn_tensor *t) {
    attn_tensor *v = NULL;
    assert_int_equal(attn_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &v, NULL), ATTN_OK);
    return v;
}

/* Builds the case's model and inputs as tests/golden/golden.c does. */
static void load_case(const char *dir, attn_model **m, attn_tensor_set **io, attn_tensor_set **in) {
    char p[1024];
    json_error_t je;
    snprintf(p, sizeof p, "%s/case.json", dir);
    json_t *c = json_load_file(p, 0, &je);
    if (!c) fail_msg("%s: %s", p, je.text);
    attn_error e = {0};
    attn_tensor_set *w = NULL;
    snprintf(p, sizeof p, "%s/weights.safetensors", dir);
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        if (attn_safetensors_read_file(p, &w, &e)) fail_msg("%s: %s", p, e.msg);
    }
    char *cfg = json_dumps(json_object_get(c, "config"), JSON_COMPACT);
    if (attn_model_new(json_string_value(json_object_get(c, "type")), cfg, w, m, &e))
        fail_msg("%s: model: %s", dir, e.msg);
    free(cfg);
    attn_tensor_set_free(w);
    snprintf(p, sizeof p, "%s/io.safetensors", dir);
    if (attn_safetensors_read_file(p, io, &e)) fail_msg("%s: %s", p, e.msg);
    *in = attn_tensor_set_new();
    json_t *names = json_object_get(c, "inputs"), *opt = json_object_get(c, "optional_inputs");
    size_t k = 0;
    for (size_t i = 0; i < attn_model_num_inputs(*m) && k < json_array_size(names); i++) {
        const attn_io_spec *s = attn_model_input(*m, i);
        if (!s->required) continue;
        const attn_tensor *t = attn_tensor_set_get(*io, json_string_value(json_array_get(names, k++)));
        assert_non_null(t);
        tu_add(*in, s->name, view_of(t));
    }
    const char *arg;
    json_t *tn;
    json_object_foreach(opt, arg, tn) {
        const attn_tensor *t = attn_tensor_set_get(*io, json_string_value(tn));
        assert_non_null(t);
        tu_add(*in, arg, view_of(t));
    }
    json_decref(c);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static void test_golden_cases(void **state) {
    (void)state;
    struct dirent **ents;
    int n = scandir(CASES, &ents, NULL, by_name);
    assert_true(n > 0);
    int cases = 0;
    for (int i = 0; i < n; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", CASES, ents[i]->d_name);
        char cj[600];
        snprintf(cj, sizeof cj, "%s/case.json", dir);
        FILE *f = ents[i]->d_name[0] != '.' ? fopen(cj, "rb") : NULL;
        if (f) {
            fclose(f);
            attn_model *m;
            attn_tensor_set *io, *in;
            load_case(dir, &m, &io, &in);
            check_model(m, in, 1, ents[i]->d_name);
            check_model(m, in, 3, ents[i]->d_name);
            attn_tensor_set_free(in);
            attn_tensor_set_free(io);
            attn_model_free(m);
            cases++;
        }
        free(ents[i]);
    }
    free(ents);
    assert_true(cases > 0);
}

/* ---- the parameter-free mechanisms without a golden case ---- */

static void run_qkv(const char *type, const char *cfg, int64_t N, int64_t L, int64_t S, int64_t H,
                    int64_t E, int64_t D, attn_tensor *mask, const int64_t *key_lengths) {
    attn_model *m = tu_model(type, cfg);
    attn_tensor_set *in = tu_qkv(42, N, L, S, H, E, D);
    if (mask) tu_add(in, "attn_mask", mask);
    if (key_lengths) tu_add(in, "key_lengths", tu_lengths(N, key_lengths));
    char what[160];
    snprintf(what, sizeof what, "%s %s", type, cfg);
    check_model(m, in, 1, what);
    check_model(m, in, 4, what);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

static void test_qkv_grid(void **state) {
    (void)state;
    const int64_t kl[2] = {9, 5};
    run_qkv("clustered", "{\"clusters\":3,\"bits\":8}", 2, 12, 9, 2, 6, 5, NULL, NULL);
    run_qkv("clustered", "{\"clusters\":4,\"bits\":63,\"iterations\":3}", 1, 7, 30, 3, 4, 4, NULL, kl);
    run_qkv("improved_clustered", "{\"clusters\":3,\"topk\":5,\"bits\":16}", 2, 12, 9, 2, 6, 5, NULL, kl);
    run_qkv("improved_clustered", "{\"clusters\":2,\"topk\":50}", 1, 5, 7, 1, 3, 2, NULL, NULL);
    run_qkv("improved_clustered_causal", "{\"clusters\":3,\"topk\":4}", 2, 10, 10, 2, 4, 3,
            tu_tril(10, 10, 0), NULL);
    run_qkv("reformer", "{\"chunk_size\":4,\"bits\":4,\"rounds\":2}", 2, 16, 16, 2, 6, 6, NULL, NULL);
    run_qkv("reformer", "{\"chunk_size\":3,\"bits\":2,\"rounds\":3,\"masked\":true}", 1, 9, 9, 3, 4, 4,
            tu_tril(9, 9, 0), (const int64_t[]){7});
    run_qkv("full", "{}", 2, 40, 33, 2, 8, 8, NULL, kl);
    run_qkv("conditional_full", "{\"length_limit\":8,\"other_attention\":{\"type\":\"clustered\",\"clusters\":2}}",
            2, 12, 9, 2, 6, 5, NULL, NULL);
}

static void test_every_mechanism_covered(void **state) {
    (void)state;
    for (size_t i = 0; i < attn_mech_count(); i++) {
        const char *name = attn_mech_at(i)->name;
        bool found = false;
        for (size_t j = 0; j < n_covered && !found; j++) found = strcmp(covered[j], name) == 0;
        if (!found) fail_msg("mechanism %s has no workspace / forward_into check", name);
    }
}

/* ---- outputs that are inputs ---- */

static void test_output_is_input(void **state) {
    (void)state;
    /* full, E == D: in place over the queries. */
    attn_model *m = tu_model("full", "{}");
    attn_tensor_set *in = tu_qkv(7, 2, 20, 20, 2, 4, 4);
    attn_tensor *ref = tu_run_ok(m, in, 2);
    attn_tensor *q = (attn_tensor *)attn_tensor_set_get(in, "queries");
    attn_ctx *ctx = attn_ctx_new(2);
    assert_int_equal(attn_model_forward_into(m, ctx, in, q, NULL), ATTN_OK);
    assert_same_bits(ref, q, "full in place");
    attn_tensor_free(ref);
    attn_tensor_set_free(in);
    attn_model_free(m);

    /* clustered writes rows of other queries: computed aside. */
    m = tu_model("clustered", "{\"clusters\":2,\"bits\":8}");
    in = tu_qkv(8, 1, 9, 9, 2, 3, 3);
    ref = tu_run_ok(m, in, 2);
    q = (attn_tensor *)attn_tensor_set_get(in, "queries");
    assert_int_equal(attn_model_forward_into(m, ctx, in, q, NULL), ATTN_OK);
    assert_same_bits(ref, q, "clustered over its queries");
    attn_tensor_free(ref);
    attn_tensor_set_free(in);
    attn_model_free(m);
    attn_ctx_free(ctx);
}

/* ---- sizes past SIZE_MAX, allocations that fail ---- */

/* queries (1,L,1,1) real; keys and values (1,S,1,1) views of S floats over a
 * one-float buffer: only their shapes are read before the workspace. */
static attn_tensor_set *virtual_qkv(int64_t L, int64_t S, float *one) {
    attn_tensor_set *in = attn_tensor_set_new();
    uint64_t seed = 3;
    tu_add(in, "queries", tu_randn(&seed, 4, (int64_t[]){1, L, 1, 1}));
    for (int i = 0; i < 2; i++) {
        attn_tensor *t = NULL;
        int64_t sh[4] = {1, S, 1, 1};
        assert_int_equal(attn_tensor_view(ATTN_F32, 4, sh, one, (size_t)S * sizeof(float), &t, NULL), ATTN_OK);
        tu_add(in, i ? "values" : "keys", t);
    }
    return in;
}

static void test_overflow_and_nomem(void **state) {
    (void)state;
    float one = 0.0f;
    attn_error e = {0};
    attn_ctx *ctx = attn_ctx_new(1);
    /* qk (clusters, S) floats: 4 * 2^60 * 4 bytes do not fit in size_t. */
    attn_model *m = tu_model("clustered", "{\"clusters\":4,\"bits\":8}");
    attn_tensor_set *in = virtual_qkv(8, (int64_t)1 << 60, &one);
    size_t bytes = 1;
    assert_int_equal(attn_model_workspace_size(m, in, 1, &bytes, &e), ATTN_E_OVERFLOW);
    assert_int_equal(bytes, 0);
    assert_non_null(strstr(e.msg, "overflows"));
    attn_tensor *o = NULL;
    assert_int_equal(attn_model_forward(m, ctx, in, &o, &e), ATTN_E_OVERFLOW);
    assert_null(o);
    attn_tensor_set_free(in);

    /* 2 * 2^45 * 4 bytes = 256 TiB: sized, but no allocator provides it. */
    attn_model_free(m);
    m = tu_model("clustered", "{\"clusters\":2,\"bits\":8}");
    in = virtual_qkv(8, (int64_t)1 << 45, &one);
    assert_int_equal(attn_model_workspace_size(m, in, 1, &bytes, &e), ATTN_OK);
    assert_true(bytes >= ((size_t)1 << 48));
    assert_int_equal(attn_model_forward(m, ctx, in, &o, &e), ATTN_E_NOMEM);
    assert_null(o);
    assert_non_null(strstr(e.msg, "out of memory"));
    attn_tensor *into = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, 4, (int64_t[]){1, 8, 1, 1}, &into, NULL), ATTN_OK);
    assert_int_equal(attn_model_forward_into(m, ctx, in, into, &e), ATTN_E_NOMEM);
    attn_tensor_free(into);
    attn_tensor_set_free(in);
    attn_model_free(m);
    attn_ctx_free(ctx);
}

/* ---- the block a thread keeps (workspace.h) ---- */

#define MiB ((size_t)1 << 20)
static const unsigned char MARK = 0x5a;

/* A block of `bytes` (at least 5 MiB) whose first byte and the one at
 * 4 MiB are then marked. */
static unsigned char *ws_marked(size_t bytes, bool *was_marked) {
    void *p = NULL;
    attn_error e = {0};
    assert_int_equal(attn__ws_alloc(bytes, &p, &e), ATTN_OK);
    unsigned char *b = p;
    if (was_marked) *was_marked = b[0] == MARK && b[4 * MiB] == MARK;
    b[0] = b[4 * MiB] = MARK;
    return b;
}

static void *other_thread(void *arg) {
    bool marked = true;
    unsigned char *b = ws_marked(5 * MiB, &marked);
    *(bool *)arg = marked;
    attn__ws_free(b, 5 * MiB);
    return NULL; /* the thread's kept block goes with it */
}

/* n blocks of `bytes` taken at once, then given back in order; returns
 * how many of them were marked (kept from before). */
static int take_all(int n, size_t bytes, unsigned char **blocks) {
    int marked_n = 0;
    for (int i = 0; i < n; i++) {
        bool marked;
        blocks[i] = ws_marked(bytes, &marked);
        marked_n += marked;
    }
    return marked_n;
}
static void give_all(int n, size_t bytes, unsigned char **blocks) {
    for (int i = 0; i < n; i++) attn__ws_free(blocks[i], bytes);
}

/* Run in a fresh process (test_workspace --kept): no forward has left a
 * block with this thread yet. */
static void kept_body(void **state) {
    (void)state;
    assert_int_equal(attn__ws_keep_max(), ATTN_WS_KEEP_DEFAULT);
    bool marked;
    unsigned char *a = ws_marked(5 * MiB, &marked), *b, *c, *big, *x[6];
    assert_false(marked); /* fresh */
    attn__ws_free(a, 5 * MiB);
    b = ws_marked(5 * MiB, &marked);
    assert_true(marked && b == a); /* kept */
    c = ws_marked(5 * MiB, &marked);
    assert_false(marked); /* the kept one is in use: another block */
    attn__ws_free(c, 5 * MiB);
    attn__ws_free(b, 5 * MiB);
    /* both kept; a larger request finds neither large enough */
    big = ws_marked(9 * MiB, &marked);
    assert_false(marked);
    attn__ws_free(big, 9 * MiB);
    /* the smallest block large enough is handed out: a 5 MiB one, not the 9 */
    b = ws_marked(5 * MiB, &marked);
    assert_true(marked && (b == a || b == c));
    unsigned char *d = ws_marked(9 * MiB, &marked);
    assert_true(marked && d == big);
    attn__ws_free(d, 9 * MiB);
    attn__ws_free(b, 5 * MiB);
    /* one above the limit is not kept, nor does it displace the kept ones */
    d = ws_marked(ATTN_WS_KEEP_DEFAULT + MiB, &marked);
    assert_false(marked);
    attn__ws_free(d, ATTN_WS_KEEP_DEFAULT + MiB);
    assert_int_equal(take_all(3, 5 * MiB, x), 3); /* a, c and the 9 MiB one */
    give_all(3, 5 * MiB, x);
    /* at most 4 blocks are kept: of 6 given back, the 2 given back first go */
    assert_int_equal(take_all(6, 5 * MiB, x), 3);
    give_all(6, 5 * MiB, x);
    assert_int_equal(take_all(6, 5 * MiB, x), 4);
    give_all(6, 5 * MiB, x);
    /* at most ATTN_WS_KEEP bytes (64 MiB): of four blocks of 22 MiB, two */
    size_t s22 = 22 * MiB;
    assert_int_equal(take_all(4, s22, x), 0);
    give_all(4, s22, x);
    assert_int_equal(take_all(4, s22, x), 2);
    give_all(4, s22, x);
    /* another thread has its own */
    pthread_t t;
    bool other = true;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &other), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(other);
    /* tensor data of 1 MiB or more comes from here too: freed, it is kept
     * (not under ASAN, where it stays on the heap) */
    if (ATTN_UNDER_ASAN) return;
    attn_tensor *t1 = NULL, *t2 = NULL;
    assert_int_equal(attn__tensor_new_uninit(ATTN_F32, 1, (int64_t[]){(int64_t)(5 * MiB / 4)}, &t1, NULL), ATTN_OK);
    memset(t1->data, 0x7f, 5 * MiB);
    void *data = t1->data;
    attn_tensor_free(t1);
    /* attn_tensor_new zeroes a kept block */
    assert_int_equal(attn_tensor_new(ATTN_F32, 1, (int64_t[]){(int64_t)(5 * MiB / 4)}, &t2, NULL), ATTN_OK);
    assert_ptr_equal(t2->data, data);
    const unsigned char *z = t2->data;
    size_t nonzero = 0;
    for (size_t i = 0; i < 5 * MiB; i++) nonzero += z[i] != 0;
    assert_int_equal(nonzero, 0);
    attn_tensor_free(t2);
}

/* test_workspace ARG under ATTN_WS_KEEP = keep (NULL: unset): the limit is
 * read once per process. */
static int rerun(const char *arg, const char *keep) { return tu_rerun("ATTN_WS_KEEP", keep, arg, NULL); }

static void test_kept_blocks(void **state) {
    (void)state;
    assert_int_equal(rerun("--kept", NULL), 0);
    /* ATTN_WS_KEEP=0: every block is a fresh mapping */
    assert_int_equal(rerun("--keep-none", "0"), 0);
}

/* test_workspace --keep-none, under ATTN_WS_KEEP=0: exit 0 when nothing is
 * kept. */
static int keep_none(void) {
    if (attn__ws_keep_max() != 0) return 2;
    bool marked;
    unsigned char *a = ws_marked(5 * MiB, &marked);
    attn__ws_free(a, 5 * MiB);
    a = ws_marked(5 * MiB, &marked);
    attn__ws_free(a, 5 * MiB);
    return marked ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--keep-none") == 0) return keep_none();
    if (argc == 2 && strcmp(argv[1], "--kept") == 0) {
        const struct CMUnitTest kept[] = {cmocka_unit_test(kept_body)};
        return cmocka_run_group_tests(kept, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_qkv_grid),
        cmocka_unit_test(test_every_mechanism_covered),
        cmocka_unit_test(test_output_is_input),
        cmocka_unit_test(test_overflow_and_nomem),
        cmocka_unit_test(test_kept_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
