/*
 * test_seq.c — sequences (attn_seq_*): every causal golden case run in
 * chunks (single tokens, prime sizes, a prefill then single tokens, random)
 * against the reference's output and attn_model_forward's causal result;
 * export / import in the middle continues bit-exactly; cross sequences
 * against the forward over the memory; the errors.
 */
#include "test_util.h"

#include "cpu.h"

#include <dirent.h>
#include <stdbool.h>
#include <jansson.h>

#define CASES "tests/golden/cases"

typedef struct gcase {
    json_t *c;
    attn_model *m;
    attn_tensor_set *io, *w, *in; /* in: the model's inputs (views into io) */
    double rtol, atol;
} gcase;

static attn_tensor *view(const attn_tensor *t) {
    attn_tensor *v = NULL;
    assert_int_equal(attn_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &v, NULL), ATTN_OK);
    return v;
}

static bool load_case(const char *id, gcase *g) {
    char p[1024];
    attn_error e = {0};
    memset(g, 0, sizeof *g);
    snprintf(p, sizeof p, CASES "/%s/case.json", id);
    g->c = json_load_file(p, 0, NULL);
    if (!g->c) return false;
    snprintf(p, sizeof p, CASES "/%s/weights.safetensors", id);
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        assert_int_equal(attn_safetensors_read_file(p, &g->w, &e), ATTN_OK);
    }
    char *cfg = json_dumps(json_object_get(g->c, "config"), JSON_COMPACT);
    if (attn_model_new(json_string_value(json_object_get(g->c, "type")), cfg, g->w, &g->m, &e))
        fail_msg("%s: %s", id, e.msg);
    free(cfg);
    snprintf(p, sizeof p, CASES "/%s/io.safetensors", id);
    assert_int_equal(attn_safetensors_read_file(p, &g->io, &e), ATTN_OK);
    g->in = attn_tensor_set_new();
    json_t *names = json_object_get(g->c, "inputs"), *opt = json_object_get(g->c, "optional_inputs"), *tn;
    size_t k = 0;
    for (size_t i = 0; i < attn_model_num_inputs(g->m) && k < json_array_size(names); i++) {
        const attn_io_spec *s = attn_model_input(g->m, i);
        if (!s->required) continue;
        tu_add(g->in, s->name, view(attn_tensor_set_get(g->io, json_string_value(json_array_get(names, k++)))));
    }
    const char *arg;
    json_object_foreach(opt, arg, tn) tu_add(g->in, arg, view(attn_tensor_set_get(g->io, json_string_value(tn))));
    g->rtol = json_number_value(json_object_get(g->c, "rtol"));
    g->atol = json_number_value(json_object_get(g->c, "atol"));
    return true;
}

static void free_case(gcase *g) {
    attn_tensor_set_free(g->in);
    attn_tensor_set_free(g->io);
    attn_tensor_set_free(g->w);
    attn_model_free(g->m);
    json_decref(g->c);
}

/* Causal: a lower-triangular square attn_mask, or config causal=true. */
static bool is_causal(const gcase *g) {
    /* padding (linear_self's input_mask) has no stream form: the step refuses it */
    if (attn_tensor_set_get(g->in, "input_mask")) return false;
    /* causal, but without a recurrent form (fast-transformers has none for it either) */
    const char *type = json_string_value(json_object_get(g->c, "type"));
    if (type && !strcmp(type, "improved_clustered_causal")) return false;
    json_t *c = json_object_get(json_object_get(g->c, "config"), "causal");
    if (json_is_true(c)) return true;
    const attn_tensor *m = attn_tensor_set_get(g->in, "attn_mask");
    if (!m || m->shape[0] != m->shape[1]) return false;
    const uint8_t *p = m->data;
    for (int64_t l = 0; l < m->shape[0]; l++)
        for (int64_t s = 0; s < m->shape[1]; s++)
            if ((p[l * m->shape[1] + s] != 0) != (s <= l)) return false;
    return true;
}

/* Rows [t0, t0+T) on axis 1 of t (rank >= 2), a new tensor. */
static attn_tensor *slice1(const attn_tensor *t, int64_t t0, int64_t T) {
    int64_t sh[ATTN_MAX_RANK];
    memcpy(sh, t->shape, sizeof sh);
    sh[1] = T;
    attn_tensor *o = NULL;
    assert_int_equal(attn_tensor_new(t->dtype, t->rank, sh, &o, NULL), ATTN_OK);
    size_t inner = attn_dtype_size(t->dtype);
    for (int i = 2; i < t->rank; i++) inner *= (size_t)t->shape[i];
    for (int64_t n = 0; n < t->shape[0]; n++)
        memcpy((char *)o->data + (size_t)n * (size_t)T * inner,
               (const char *)t->data + ((size_t)n * (size_t)t->shape[1] + (size_t)t0) * inner, (size_t)T * inner);
    return o;
}

/* The step inputs: the model's required inputs, rows [t0, t0+T). */
static attn_tensor_set *step_inputs(const attn_model *m, const attn_tensor_set *in, int64_t t0, int64_t T) {
    attn_tensor_set *s = attn_tensor_set_new();
    for (size_t i = 0; i < attn_model_num_inputs(m); i++) {
        const attn_io_spec *sp = attn_model_input(m, i);
        if (sp->required) tu_add(s, sp->name, slice1(attn_tensor_set_get(in, sp->name), t0, T));
    }
    return s;
}

static attn_tensor *step_ok(attn_seq *q, attn_ctx *ctx, const attn_tensor_set *in) {
    attn_tensor *o = NULL;
    attn_error e = {0};
    if (attn_seq_step(q, ctx, in, &o, &e)) fail_msg("step: %s", e.msg);
    return o;
}

/* Copies step output rows into whole (N, L, rest) at t0. */
static void put_rows(attn_tensor *whole, const attn_tensor *part, int64_t t0) {
    size_t inner = 4;
    for (int i = 2; i < whole->rank; i++) inner *= (size_t)whole->shape[i];
    int64_t T = part->shape[1], L = whole->shape[1];
    for (int64_t n = 0; n < whole->shape[0]; n++)
        memcpy((char *)whole->data + ((size_t)n * (size_t)L + (size_t)t0) * inner,
               (const char *)part->data + (size_t)n * (size_t)T * inner, (size_t)T * inner);
}

static attn_seq *roundtrip(const attn_seq *q) {
    attn_tensor_set *st = NULL, *back = NULL;
    attn_error e = {0};
    void *buf;
    size_t len;
    assert_int_equal(attn_seq_export(q, &st, &e), ATTN_OK);
    assert_int_equal(attn_safetensors_write_mem(st, &buf, &len, &e), ATTN_OK);
    assert_int_equal(attn_safetensors_read_mem(buf, len, &back, &e), ATTN_OK);
    attn_seq *r = NULL;
    if (attn_seq_import(attn_seq_model(q), back, &r, &e)) fail_msg("import: %s", e.msg);
    assert_int_equal(attn_seq_length(r), attn_seq_length(q));
    free(buf);
    attn_tensor_set_free(st);
    attn_tensor_set_free(back);
    return r;
}

/* Chunk sizes of scheme k for a sequence of L tokens into sizes[]; count. */
static int chunks(int k, int64_t L, uint64_t *seed, int64_t *sizes) {
    static const int64_t primes[] = {2, 3, 5, 7, 11, 13};
    int n = 0;
    for (int64_t t = 0; t < L; n++) {
        int64_t c = k == 0 ? 1 : k == 1 ? primes[n % 6] : k == 2 ? (n == 0 ? (L > 1 ? L - 2 : 1) : 1)
                                         : k == 3 ? 1 + (int64_t)(tu_next(seed) % 9) : L;
        if (c > L - t) c = L - t;
        sizes[n] = c;
        t += c;
    }
    return n;
}

/* Runs model m as a self sequence over `in` (inputs of the whole causal
 * sequence) in chunks of scheme k; exports/imports at the middle chunk and
 * checks the moved copy gives the same bits.  Returns the whole output. */
static attn_tensor *run_chunked(const attn_model *m, const attn_tensor_set *in, int64_t N, int64_t L,
                                const attn_tensor *shape_of, int k, attn_ctx *ctx) {
    attn_seq *q = NULL, *moved = NULL;
    attn_error e = {0};
    if (attn_seq_new(m, ATTN_SEQ_SELF, N, NULL, ctx, &q, &e)) fail_msg("seq_new: %s", e.msg);
    attn_tensor *whole = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, shape_of->rank, shape_of->shape, &whole, NULL), ATTN_OK);
    int64_t *sizes = calloc((size_t)L + 1, sizeof *sizes), t0 = 0;
    uint64_t seed = 77 + (uint64_t)k;
    int nc = chunks(k, L, &seed, sizes);
    for (int c = 0; c < nc; c++) {
        if (c == nc / 2 && c > 0) moved = roundtrip(q);
        attn_tensor_set *st = step_inputs(m, in, t0, sizes[c]);
        int64_t T;
        assert_int_equal(attn_seq_tokens(q, st, &T, NULL), ATTN_OK);
        assert_int_equal(T, sizes[c]);
        attn_tensor *o = step_ok(q, ctx, st);
        if (moved) {
            attn_tensor *o2 = step_ok(moved, ctx, st);
            assert_int_equal(o->nbytes, o2->nbytes);
            assert_memory_equal(o->data, o2->data, o->nbytes);
            attn_tensor_free(o2);
        }
        put_rows(whole, o, t0);
        attn_tensor_free(o);
        attn_tensor_set_free(st);
        t0 += sizes[c];
        assert_int_equal(attn_seq_length(q), t0);
    }
    assert_true(attn_seq_state_bytes(q) > 0);
    free(sizes);
    attn_seq_free(moved);
    attn_seq_free(q);
    return whole;
}

/* |got - want| <= atol + rtol |want| on the rows of stream n below rows[n]. */
static void check_close(const attn_tensor *got, const attn_tensor *want, const int64_t *rows, double rtol,
                        double atol, const char *what) {
    assert_int_equal(got->numel, want->numel);
    size_t per_row = got->numel / (size_t)(got->shape[0] * got->shape[1]);
    const float *g = got->data, *w = want->data;
    for (int64_t n = 0; n < got->shape[0]; n++)
        for (int64_t l = 0; l < (rows ? rows[n] : got->shape[1]); l++)
            for (size_t i = 0; i < per_row; i++) {
                size_t x = ((size_t)n * (size_t)got->shape[1] + (size_t)l) * per_row + i;
                double d = fabs((double)g[x] - w[x]);
                if (!(d <= atol + rtol * fabs(w[x])))
                    fail_msg("%s: stream %lld row %lld: got %.8g, want %.8g", what, (long long)n, (long long)l, g[x],
                             w[x]);
            }
}

static void test_golden_causal(void **state) {
    DIR *d = opendir(CASES);
    assert_non_null(d);
    struct dirent *de;
    int ran = 0;
    attn_ctx *ctx = attn_ctx_new(2);
    while ((de = readdir(d))) {
        gcase g;
        if (de->d_name[0] == '.' || !load_case(de->d_name, &g)) continue;
        if (!is_causal(&g)) {
            free_case(&g);
            continue;
        }
        if (!(attn_model_seq_kinds(g.m) & ATTN_SEQ_SELF)) fail_msg("%s: causal case without self sequences", de->d_name);
        const attn_tensor *want = attn_tensor_set_get(g.io, json_string_value(json_object_get(g.c, "output")));
        const attn_tensor *first = attn_tensor_set_get(g.in, attn_model_input(g.m, 0)->name);
        attn_tensor *fwd = tu_run_ok(g.m, g.in, 1);
        const attn_tensor *kl = attn_tensor_set_get(g.in, "key_lengths"); /* rows past it are padding */
        for (int k = 0; k < 5; k++) {
            attn_tensor *got = run_chunked(g.m, g.in, first->shape[0], first->shape[1], want, k, ctx);
            char what[256];
            snprintf(what, sizeof what, "%.100s scheme %d vs reference", de->d_name, k);
            check_close(got, want, kl ? kl->data : NULL, g.rtol, g.atol, what);
            snprintf(what, sizeof what, "%.100s scheme %d vs forward", de->d_name, k);
            check_close(got, fwd, kl ? kl->data : NULL, g.rtol, g.atol, what);
            attn_tensor_free(got);
        }
        attn_tensor_free(fwd);
        free_case(&g);
        ran++;
    }
    closedir(d);
    attn_ctx_free(ctx);
    assert_true(ran >= 10);
}

/* Row caches grow past their first capacity, with several streams. */
static void test_full_long(void **state) {
    const int64_t N = 3, L = 70, H = 2, E = 8, D = 16;
    attn_model *m = tu_model("full", NULL);
    attn_tensor_set *in = tu_qkv(5, N, L, L, H, E, D);
    attn_tensor *ref;
    {
        attn_tensor_set *masked = tu_qkv(5, N, L, L, H, E, D);
        tu_add(masked, "attn_mask", tu_tril(L, L, 0));
        ref = tu_run_ok(m, masked, 1);
        attn_tensor_set_free(masked);
    }
    attn_ctx *ctx = attn_ctx_new(3);
    for (int k = 0; k < 5; k++) {
        attn_tensor *got = run_chunked(m, in, N, L, ref, k, ctx);
        check_close(got, ref, NULL, 1e-4, 1e-5, "full long");
        attn_tensor_free(got);
    }
    attn_ctx_free(ctx);
    attn_tensor_free(ref);
    attn_tensor_set_free(in);
    attn_model_free(m);
}

/* Cross: memory at the start, queries in chunks, against the forward. */
static void cross_case(attn_model *m, attn_tensor_set *whole, attn_tensor_set *mem, int64_t N, int64_t L) {
    attn_tensor *ref = tu_run_ok(m, whole, 1);
    attn_seq *q = NULL;
    attn_error e = {0};
    if (attn_seq_new(m, ATTN_SEQ_CROSS, N, mem, NULL, &q, &e)) fail_msg("cross: %s", e.msg);
    attn_tensor *got = NULL;
    assert_int_equal(attn_tensor_new(ATTN_F32, ref->rank, ref->shape, &got, NULL), ATTN_OK);
    const attn_tensor *qs = attn_tensor_set_get(whole, "queries");
    attn_seq *moved = NULL;
    for (int64_t t0 = 0, c = 1; t0 < L; t0 += c, c = c % 4 + 1) {
        if (c > L - t0) c = L - t0;
        if (t0 >= L / 2 && !moved) moved = roundtrip(q);
        attn_tensor_set *st = attn_tensor_set_new();
        tu_add(st, "queries", slice1(qs, t0, c));
        attn_tensor *o = step_ok(q, NULL, st);
        if (moved) {
            attn_tensor *o2 = step_ok(moved, NULL, st);
            assert_memory_equal(o->data, o2->data, o->nbytes);
            attn_tensor_free(o2);
        }
        put_rows(got, o, t0);
        attn_tensor_free(o);
        /* keys in a cross step are refused */
        tu_add(st, "keys", view(attn_tensor_set_get(mem, "keys")));
        assert_int_equal(attn_seq_step(q, NULL, st, &o, &e), ATTN_E_INPUT);
        attn_tensor_set_free(st);
    }
    check_close(got, ref, NULL, 1e-4, 1e-5, "cross");
    attn_tensor_free(got);
    attn_tensor_free(ref);
    attn_seq_free(q);
    attn_seq_free(moved);
}

static void test_cross(void **state) {
    const int64_t N = 2, L = 9, S = 7, H = 2, E = 4, D = 4;
    int64_t kl[2] = {7, 4};
    const char *types[2][2] = {{"full", NULL}, {"linear", "{\"query_dimensions\":4}"}};
    for (int i = 0; i < 2; i++) {
        attn_model *m = tu_model(types[i][0], types[i][1]);
        assert_true(attn_model_seq_kinds(m) & ATTN_SEQ_CROSS);
        attn_tensor_set *whole = tu_qkv(9, N, L, S, H, E, D), *mem = attn_tensor_set_new();
        tu_add(whole, "key_lengths", tu_lengths(N, kl));
        tu_add(mem, "keys", view(attn_tensor_set_get(whole, "keys")));
        tu_add(mem, "values", view(attn_tensor_set_get(whole, "values")));
        tu_add(mem, "key_lengths", tu_lengths(N, kl));
        cross_case(m, whole, mem, N, L);
        attn_tensor_set_free(whole);
        attn_tensor_set_free(mem);
        attn_model_free(m);
    }
    /* attention_layer around full, random weights */
    const int64_t dm = 8, nh = 2;
    uint64_t seed = 3;
    attn_tensor_set *w = attn_tensor_set_new();
    const char *names[] = {"query_projection", "key_projection", "value_projection", "out_projection"};
    for (int i = 0; i < 4; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s.weight", names[i]);
        tu_add(w, nm, tu_randn(&seed, 2, (int64_t[]){dm, dm}));
        snprintf(nm, sizeof nm, "%s.bias", names[i]);
        tu_add(w, nm, tu_randn(&seed, 1, (int64_t[]){dm}));
    }
    attn_model *m = NULL;
    assert_int_equal(attn_model_new("attention_layer", "{\"attention\":{\"type\":\"full\"},\"d_model\":8,\"n_heads\":2}",
                                    w, &m, NULL),
                     ATTN_OK);
    (void)nh;
    attn_tensor_set *whole = attn_tensor_set_new(), *mem = attn_tensor_set_new();
    tu_add(whole, "queries", tu_randn(&seed, 3, (int64_t[]){N, L, dm}));
    tu_add(whole, "keys", tu_randn(&seed, 3, (int64_t[]){N, S, dm}));
    tu_add(whole, "values", tu_randn(&seed, 3, (int64_t[]){N, S, dm}));
    tu_add(whole, "key_lengths", tu_lengths(N, kl));
    tu_add(mem, "keys", view(attn_tensor_set_get(whole, "keys")));
    tu_add(mem, "values", view(attn_tensor_set_get(whole, "values")));
    tu_add(mem, "key_lengths", tu_lengths(N, kl));
    cross_case(m, whole, mem, N, L);
    attn_tensor_set_free(whole);
    attn_tensor_set_free(mem);
    attn_tensor_set_free(w);
    attn_model_free(m);
}

static void test_errors(void **state) {
    attn_error e = {0};
    attn_seq *q = NULL;
    char types[512];
    attn_seq_types(ATTN_SEQ_SELF, types, sizeof types);
    assert_non_null(strstr(types, "full"));
    assert_non_null(strstr(types, "causal_linear"));
    assert_null(strstr(types, "reformer"));
    attn_seq_types(ATTN_SEQ_CROSS, types, sizeof types);
    assert_null(strstr(types, "local"));

    /* a type without a recurrent form, and a config without one */
    attn_model *r = tu_model("reformer", NULL);
    assert_int_equal(attn_model_seq_kinds(r), 0);
    assert_int_equal(attn_seq_new(r, ATTN_SEQ_SELF, 1, NULL, NULL, &q, &e), ATTN_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "full"));
    attn_model_free(r);
    attn_model *loc = tu_model("local", "{\"local_context\":3}");
    assert_int_equal(attn_seq_new(loc, ATTN_SEQ_CROSS, 1, NULL, NULL, &q, &e), ATTN_E_UNSUPPORTED);
    attn_model_free(loc);

    attn_model *m = tu_model("full", NULL);
    /* cross without memory; self with memory; no streams */
    assert_int_equal(attn_seq_new(m, ATTN_SEQ_CROSS, 1, NULL, NULL, &q, &e), ATTN_E_INPUT);
    assert_int_equal(attn_seq_new(m, ATTN_SEQ_SELF, 0, NULL, NULL, &q, &e), ATTN_E_INVALID);
    assert_int_equal(attn_seq_new(m, ATTN_SEQ_SELF, 2, NULL, NULL, &q, &e), ATTN_OK);
    attn_tensor_set *in = tu_qkv(1, 2, 3, 3, 2, 4, 4);
    attn_tensor *o = NULL;
    attn_tensor_free(step_ok(q, NULL, in));
    /* other heads, other N, a mask: refused, nothing changes */
    attn_tensor_set *bad = tu_qkv(1, 2, 1, 1, 3, 4, 4);
    assert_int_equal(attn_seq_step(q, NULL, bad, &o, &e), ATTN_E_SHAPE);
    attn_tensor_set_free(bad);
    bad = tu_qkv(1, 1, 1, 1, 2, 4, 4);
    assert_int_equal(attn_seq_step(q, NULL, bad, &o, &e), ATTN_E_SHAPE);
    attn_tensor_set_free(bad);
    bad = tu_qkv(1, 2, 2, 3, 2, 4, 4); /* keys for another T */
    assert_int_equal(attn_seq_step(q, NULL, bad, &o, &e), ATTN_E_SHAPE);
    attn_tensor_set_free(bad);
    tu_add(in, "attn_mask", tu_tril(3, 3, 0));
    assert_int_equal(attn_seq_step(q, NULL, in, &o, &e), ATTN_E_INPUT);
    assert_non_null(strstr(e.msg, "attn_mask"));
    assert_int_equal(attn_seq_length(q), 3);

    /* import: another config, a tampered tensor, an extra tensor */
    attn_tensor_set *st = NULL;
    assert_int_equal(attn_seq_export(q, &st, &e), ATTN_OK);
    attn_model *m2 = tu_model("full", "{\"softmax_temp\":0.5}");
    attn_seq *q2 = NULL;
    assert_int_equal(attn_seq_import(m2, st, &q2, &e), ATTN_E_INVALID);
    attn_model_free(m2);
    tu_add(st, "extra", tu_lengths(1, (int64_t[]){1}));
    assert_int_equal(attn_seq_import(m, st, &q2, &e), ATTN_E_FORMAT);
    attn_tensor_set_free(st);
    attn_tensor_set *tam = attn_tensor_set_new(), *orig = NULL;
    assert_int_equal(attn_seq_export(q, &orig, &e), ATTN_OK);
    for (size_t i = 0; i < attn_tensor_set_count(orig); i++) {
        const attn_tensor *t = attn_tensor_set_at(orig, i);
        int64_t sh[3] = {t->shape[0], t->rank > 1 ? t->shape[1] : 0, t->rank > 2 ? t->shape[2] : 0};
        if (!strcmp(attn_tensor_set_name(orig, i), "keys")) sh[1]--; /* one row short */
        attn_tensor *c = NULL;
        assert_int_equal(attn_tensor_new(t->dtype, t->rank, sh, &c, NULL), ATTN_OK);
        memcpy(c->data, t->data, c->nbytes);
        tu_add(tam, attn_tensor_set_name(orig, i), c);
    }
    assert_int_equal(attn_seq_import(m, tam, &q2, &e), ATTN_E_FORMAT);
    assert_non_null(strstr(e.msg, "keys"));
    attn_tensor_set_free(tam);
    attn_tensor_set_free(orig);

    /* seq.gemm: the sgemm choice, this process's for a new sequence; kept
     * by an import; an export without it (before 2026-12-07) imports with
     * this process's; out of range or of another shape: refused */
    assert_int_equal(attn_seq_export(q, &orig, &e), ATTN_OK);
    const attn_tensor *g = attn_tensor_set_get(orig, "seq.gemm");
    assert_non_null(g);
    assert_int_equal(*(const int64_t *)g->data, attn__gemm_choice());
    for (int64_t v = -2; v <= 4; v++) {
        attn_tensor_set *c = attn_tensor_set_new();
        for (size_t i = 0; i < attn_tensor_set_count(orig); i++) {
            const char *name = attn_tensor_set_name(orig, i);
            const attn_tensor *t = attn_tensor_set_at(orig, i);
            attn_tensor *x = NULL;
            if (!strcmp(name, "seq.gemm") && v == -1) continue; /* an older export */
            assert_int_equal(attn_tensor_new(t->dtype, t->rank, t->shape, &x, NULL), ATTN_OK);
            memcpy(x->data, t->data, x->nbytes);
            if (!strcmp(name, "seq.gemm")) *(int64_t *)x->data = v;
            tu_add(c, name, x);
        }
        attn_status want = v > 3 || v == -2 ? ATTN_E_FORMAT : ATTN_OK;
        assert_int_equal(attn_seq_import(m, c, &q2, &e), want);
        if (!want) {
            attn_tensor_set *again = NULL;
            assert_int_equal(attn_seq_export(q2, &again, &e), ATTN_OK);
            assert_int_equal(*(const int64_t *)attn_tensor_set_get(again, "seq.gemm")->data,
                             v == -1 ? attn__gemm_choice() : v);
            attn_tensor_set_free(again);
            attn_seq_free(q2);
            q2 = NULL;
        } else {
            assert_non_null(strstr(e.msg, "seq.gemm"));
        }
        attn_tensor_set_free(c);
    }
    attn_tensor_set_free(orig);

    attn_tensor_set_free(in);
    attn_seq_free(q);
    attn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_causal),
        cmocka_unit_test(test_full_long),
        cmocka_unit_test(test_cross),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
