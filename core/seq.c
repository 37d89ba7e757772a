/*
 * seq.c — sequences (attn.h, "sequences"): the state store of
 * seq_internal.h (buffers, growth, bytes), the qkv input checks every
 * fast-transformers mechanism shares, and export / import.  The
 * mechanisms' recurrent arithmetic lives with each mechanism; which types
 * have it is read from their vtables, never listed here.
 */
#include "seq_internal.h"
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_FORMAT 1
#define META_LEN (6 + ATTN__SEQ_MAX_DIMS) /* version, kind, N, len, laid_out, ndims, dims */

static const attn_mech *mech_of(const attn_model *m) { return attn__mech_find(attn_model_mech(m)->name); }

static const char *kind_name(attn_seq_kind k) { return k == ATTN_SEQ_CROSS ? "cross" : "self"; }

/* ---- support ---- */

unsigned attn__seq_model_kinds(const attn_model *m, const char **why) {
    const attn_mech *mech = mech_of(m);
    if (why) *why = NULL;
    if (!mech || !mech->seq || !mech->seq->kinds) return 0;
    const char *w = NULL;
    unsigned k = mech->seq->kinds(m, attn__model_state(m), &w);
    if (why) *why = w;
    return k;
}

unsigned attn_model_seq_kinds(const attn_model *m) { return m ? attn__seq_model_kinds(m, NULL) : 0; }

unsigned attn_mech_seq_kinds(const attn_mech_info *info) {
    const attn_mech *m = info ? attn__mech_find(info->name) : NULL;
    /* Static support: with a NULL model the hook answers for "some config". */
    return m && m->seq && m->seq->kinds ? m->seq->kinds(NULL, NULL, NULL) : 0;
}

size_t attn_seq_types(attn_seq_kind kind, char *buf, size_t cap) {
    size_t need = 0;
    if (buf && cap) buf[0] = 0;
    for (size_t i = 0; i < attn_mech_count(); i++) {
        const attn_mech *m = attn__mech_find(attn_mech_at(i)->name);
        /* Static support: with a NULL model the hook answers for "some config". */
        if (!m || !m->seq || !m->seq->kinds || !(m->seq->kinds(NULL, NULL, NULL) & (unsigned)kind)) continue;
        int n = snprintf(buf && need < cap ? buf + need : NULL, buf && need < cap ? cap - need : 0, "%s%s",
                         need ? ", " : "", m->info.name);
        need += n > 0 ? (size_t)n : 0;
    }
    return need;
}

/* ---- the state store ---- */

attn_status attn__seq_buf_add(attn_seq *s, const char *name, attn_dtype dtype, bool rows, size_t width,
                              attn_error *err) {
    if (s->nbufs == ATTN__SEQ_MAX_BUFS) return attn__err(err, ATTN_E_INTERNAL, "sequence: too many buffers");
    attn__seq_buf *b = &s->bufs[s->nbufs];
    *b = (attn__seq_buf){.name = name, .dtype = dtype, .rows = rows, .width = width};
    if (!rows) {
        size_t n;
        if (!attn__mul((size_t)s->N, width, &n))
            return attn__err(err, ATTN_E_OVERFLOW, "sequence: buffer %s overflows", name);
        b->data = attn__calloc(n ? n : 1, attn_dtype_size(dtype), err);
        if (!b->data) return err ? err->code : ATTN_E_NOMEM;
    }
    s->nbufs++;
    return ATTN_OK;
}

/* Grows every row buffer to hold `need` rows per stream. */
static attn_status reserve(attn_seq *s, int64_t need, attn_error *err) {
    for (int i = 0; i < s->nbufs; i++) {
        attn__seq_buf *b = &s->bufs[i];
        if (!b->rows || b->cap >= (size_t)need) continue;
        size_t cap = b->cap ? b->cap : 16, es = attn_dtype_size(b->dtype), bytes, row = b->width * es;
        while (cap < (size_t)need)
            if (!attn__mul(cap, 2, &cap)) return attn__err(err, ATTN_E_OVERFLOW, "sequence: too long");
        if (!attn__mul(cap, row, &bytes) || !attn__mul(bytes, (size_t)s->N, &bytes))
            return attn__err(err, ATTN_E_OVERFLOW, "sequence: cache %s overflows at %zu tokens", b->name, cap);
        unsigned char *p = realloc(b->data, bytes ? bytes : 1);
        if (!p) return attn__err(err, ATTN_E_NOMEM, "out of memory (%zu bytes of %s cache)", bytes, b->name);
        /* Streams move from the last to the first (stream 0 stays). */
        for (int64_t n = s->N - 1; n > 0; n--)
            memmove(p + (size_t)n * cap * row, p + (size_t)n * b->cap * row, (size_t)s->len * row);
        b->data = p;
        b->cap = cap;
    }
    return ATTN_OK;
}

attn_status attn__seq_layout(attn_seq *s, attn_error *err) {
    attn_status st = s->ops->layout ? s->ops->layout(s, err) : ATTN_OK;
    if (!st) s->laid_out = true;
    return st;
}

attn_status attn__seq_begin(attn_seq *s, int ndims, const int64_t *dims, int64_t T, attn_error *err) {
    attn_status st;
    if (s->broken) return attn__err(err, ATTN_E_INVALID, "sequence is broken by an earlier failed step");
    if (T < 1) return attn__err(err, ATTN_E_SHAPE, "a step needs at least one token");
    if (ndims > ATTN__SEQ_MAX_DIMS) return attn__err(err, ATTN_E_INTERNAL, "sequence: too many dims");
    if (!s->laid_out) {
        s->ndims = ndims;
        if (ndims) memcpy(s->dims, dims, (size_t)ndims * sizeof *dims);
        if ((st = attn__seq_layout(s, err))) return st;
    } else {
        /* Cross sequences were laid out with one more dim (the memory's S). */
        bool same = ndims <= s->ndims;
        for (int i = 0; same && i < ndims; i++) same = dims[i] == s->dims[i];
        if (!same) {
            char got[96], want[96];
            return attn__err(err, ATTN_E_SHAPE, "new tokens have shape %s per token where the sequence has %s",
                             attn_shape_str(ndims, dims, got, sizeof got),
                             attn_shape_str(ndims < s->ndims ? ndims : s->ndims, s->dims, want, sizeof want));
        }
    }
    int64_t need;
    if (__builtin_add_overflow(s->len, T, &need)) return attn__err(err, ATTN_E_OVERFLOW, "sequence: too long");
    return reserve(s, need, err);
}

attn_status attn__seq_commit(attn_seq *s, attn_status st, int64_t T) {
    if (st)
        s->broken = true;
    else
        s->len += T;
    return st;
}

static attn_status seq_alloc(const attn_model *m, attn_seq_kind kind, int64_t N, attn_seq **out,
                             attn_error *err) {
    const char *why;
    unsigned kinds = attn__seq_model_kinds(m, &why);
    if (kind != ATTN_SEQ_SELF && kind != ATTN_SEQ_CROSS)
        return attn__err(err, ATTN_E_INVALID, "sequence kind must be ATTN_SEQ_SELF or ATTN_SEQ_CROSS");
    if (!(kinds & (unsigned)kind)) {
        char types[512];
        attn_seq_types(kind, types, sizeof types);
        return attn__err(err, ATTN_E_UNSUPPORTED, "%s has no %s sequences%s%s; types that have them: %.200s",
                         attn_model_mech(m)->name, kind_name(kind), why ? ": " : "", why ? why : "", types);
    }
    if (N < 1) return attn__err(err, ATTN_E_INVALID, "a sequence needs at least one stream (got %lld)", (long long)N);
    attn_seq *s = calloc(1, sizeof *s);
    if (!s) return attn__err(err, ATTN_E_NOMEM, "out of memory");
    s->model = m;
    s->ops = mech_of(m)->seq;
    s->mstate = attn__model_state(m);
    s->kind = kind;
    s->N = N;
    s->gemm = attn__gemm_choice();
    *out = s;
    return ATTN_OK;
}

attn_status attn__seq_child(attn_seq *s, const attn_model *inner, attn_error *err) {
    return seq_alloc(inner, s->kind, s->N, &s->child, err);
}

void attn_seq_free(attn_seq *s) {
    if (!s) return;
    attn_seq_free(s->child);
    for (int i = 0; i < s->nbufs; i++) free(s->bufs[i].data);
    free(s);
}

int64_t attn_seq_length(const attn_seq *s) { return s ? s->len : 0; }
int64_t attn_seq_streams(const attn_seq *s) { return s ? s->N : 0; }
attn_seq_kind attn_seq_kind_of(const attn_seq *s) { return s ? s->kind : ATTN_SEQ_SELF; }
const attn_model *attn_seq_model(const attn_seq *s) { return s ? s->model : NULL; }

size_t attn_seq_state_bytes(const attn_seq *s) {
    if (!s) return 0;
    size_t tot = sizeof *s + attn_seq_state_bytes(s->child);
    for (int i = 0; i < s->nbufs; i++) {
        const attn__seq_buf *b = &s->bufs[i];
        tot += (size_t)s->N * (b->rows ? b->cap : 1) * b->width * attn_dtype_size(b->dtype);
    }
    return tot;
}

attn_status attn__seq_refuse(const attn_tensor_set *in, const char *name, const char *why, attn_error *err) {
    if (in && attn_tensor_set_get(in, name))
        return attn__err(err, ATTN_E_INPUT, "input '%s' cannot be applied to a sequence: %s", name, why);
    return ATTN_OK;
}

/* ---- qkv mechanisms ---- */

attn_status attn__seq_qkv_step(attn_seq *s, attn_ctx *ctx, const attn_qkv *a, float *out, attn_error *err) {
    int64_t dims[3] = {a->H, a->E, a->D};
    /* Cross steps carry no values: D is the memory's. */
    if (s->kind == ATTN_SEQ_CROSS && s->laid_out) dims[2] = s->dims[2];
    attn_status st = attn__seq_begin(s, s->kind == ATTN_SEQ_CROSS ? 2 : 3, dims, a->L, err);
    if (st) return st;
    if (s->kind == ATTN_SEQ_CROSS && !s->laid_out)
        return attn__err(err, ATTN_E_INTERNAL, "cross sequence without memory");
    return attn__seq_commit(s, s->ops->step_qkv(s, ctx, a, out, err), a->L);
}

attn_status attn__seq_qkv_start(attn_seq *s, attn_ctx *ctx, const attn_qkv *mem, attn_error *err) {
    s->ndims = 4;
    s->dims[0] = mem->H, s->dims[1] = mem->E, s->dims[2] = mem->D, s->dims[3] = mem->S;
    attn_status st = attn__seq_layout(s, err);
    if (!st) st = s->ops->start_qkv(s, ctx, mem, err);
    if (st) s->broken = true;
    return st;
}

static const char *const self_refused[] = {"attn_mask", "query_lengths", "key_lengths", NULL};
static const char *const cross_refused[] = {"keys", "values", "attn_mask", "query_lengths", "key_lengths", NULL};

static attn_status check_n(const attn_tensor *t, const char *name, int64_t N, attn_error *err) {
    if (t->shape[0] != N)
        return attn__err(err, ATTN_E_SHAPE, "input '%s' has N=%lld; the sequence has %lld streams", name,
                         (long long)t->shape[0], (long long)N);
    return ATTN_OK;
}

static attn_status qkv_step(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *in, attn_tensor **out,
                            attn_error *err) {
    const attn_model *m = s->model;
    const attn_tensor *q, *k = NULL, *v = NULL;
    attn_status st;
    const char *const *refused = s->kind == ATTN_SEQ_CROSS ? cross_refused : self_refused;
    for (int i = 0; refused[i]; i++)
        if ((st = attn__seq_refuse(in, refused[i],
                                   s->kind == ATTN_SEQ_CROSS ? "a cross sequence takes keys, values and key_lengths "
                                                               "once, at its start; steps carry only queries"
                                                             : "a self sequence is causal by construction and its "
                                                               "streams advance together",
                                   err)))
            return st;
    if ((st = attn__input(m, in, "queries", &q, err)) || (st = check_n(q, "queries", s->N, err))) return st;
    attn_qkv a = {.N = s->N, .L = q->shape[1], .S = q->shape[1], .H = q->shape[2], .E = q->shape[3],
                  .D = s->kind == ATTN_SEQ_CROSS && s->laid_out ? s->dims[2] : 0, .q = q->data};
    if (s->kind == ATTN_SEQ_SELF) {
        if ((st = attn__input(m, in, "keys", &k, err)) || (st = attn__input(m, in, "values", &v, err)) ||
            (st = check_n(k, "keys", s->N, err)) || (st = check_n(v, "values", s->N, err)))
            return st;
        char s1[96], s2[96];
        if (k->shape[1] != a.L || k->shape[2] != a.H || k->shape[3] != a.E || v->shape[1] != a.L ||
            v->shape[2] != a.H)
            return attn__err(err, ATTN_E_SHAPE,
                             "a self step needs keys (N,T,H,E) and values (N,T,H,D) for the queries' T tokens: "
                             "queries %s, keys %s",
                             attn_shape_str(4, q->shape, s1, sizeof s1), attn_shape_str(4, k->shape, s2, sizeof s2));
        a.D = v->shape[3];
        a.k = k->data;
        a.v = v->data;
    }
    attn__qkv_prepare(&a);
    attn_tensor *o;
    int64_t oshape[4] = {a.N, a.L, a.H, a.D};
    if ((st = attn__tensor_new_uninit(ATTN_F32, 4, oshape, &o, err))) return st;
    if ((st = attn__seq_qkv_step(s, ctx, &a, o->data, err))) {
        attn_tensor_free(o);
        return st;
    }
    *out = o;
    return ATTN_OK;
}

/* key_lengths of a cross memory: I64 or I32 (N,), each in [0, S]; into kl[N]. */
static attn_status memory_lengths(const attn_tensor_set *mem, int64_t N, int64_t S, int64_t **kl,
                                  attn_error *err) {
    const attn_tensor *t = attn_tensor_set_get(mem, "key_lengths");
    *kl = NULL;
    if (!t) return ATTN_OK;
    if ((t->dtype != ATTN_I64 && t->dtype != ATTN_I32) || t->rank != 1 || t->shape[0] != N)
        return attn__err(err, ATTN_E_SHAPE, "key_lengths must be I64 or I32 of shape (N,) with N=%lld", (long long)N);
    int64_t *v = attn__calloc((size_t)N, sizeof *v, err);
    if (!v) return ATTN_E_NOMEM;
    for (int64_t n = 0; n < N; n++) {
        v[n] = t->dtype == ATTN_I64 ? ((const int64_t *)t->data)[n] : ((const int32_t *)t->data)[n];
        if (v[n] < 0 || v[n] > S) {
            attn__err(err, ATTN_E_INPUT, "key_lengths[%lld] = %lld is outside [0, S=%lld]", (long long)n,
                      (long long)v[n], (long long)S);
            free(v);
            return ATTN_E_INPUT;
        }
    }
    *kl = v;
    return ATTN_OK;
}

attn_status attn__seq_memory_lengths(const attn_tensor_set *mem, int64_t N, int64_t S, int64_t **kl,
                                     attn_error *err) {
    return memory_lengths(mem, N, S, kl, err);
}

static attn_status qkv_start(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *mem, attn_error *err) {
    const attn_model *m = s->model;
    const attn_tensor *k, *v;
    attn_status st;
    if ((st = attn__input(m, mem, "keys", &k, err)) || (st = attn__input(m, mem, "values", &v, err)) ||
        (st = check_n(k, "keys", s->N, err)) || (st = check_n(v, "values", s->N, err)))
        return st;
    if (v->shape[1] != k->shape[1] || v->shape[2] != k->shape[2])
        return attn__err(err, ATTN_E_SHAPE, "memory values must be (N,S,H,D) with the keys' S and H");
    attn_qkv a = {.N = s->N, .S = k->shape[1], .H = k->shape[2], .E = k->shape[3], .D = v->shape[3],
                  .k = k->data, .v = v->data};
    int64_t *kl;
    if ((st = memory_lengths(mem, s->N, a.S, &kl, err))) return st;
    a.key_lengths = kl;
    attn__qkv_prepare(&a);
    st = attn__seq_qkv_start(s, ctx, &a, err);
    free(kl);
    return st;
}

/* ---- public entry points ---- */

attn_status attn_seq_new(const attn_model *m, attn_seq_kind kind, int64_t n_streams,
                         const attn_tensor_set *memory, attn_ctx *ctx, attn_seq **out, attn_error *err) {
    if (!m || !out) return attn__err(err, ATTN_E_INVALID, "seq_new: NULL argument");
    attn_seq *s;
    attn_status st = seq_alloc(m, kind, n_streams, &s, err);
    if (st) return st;
    if (kind == ATTN_SEQ_CROSS) {
        if (!memory) {
            st = attn__err(err, ATTN_E_INPUT, "a cross sequence needs its memory (keys, values) at the start");
        } else {
            bool qkv = !mech_of(m)->forward;
            int pin = attn__gemm_pin();
            attn__gemm_set_pin(s->gemm);
            st = qkv ? qkv_start(s, ctx, memory, err)
                     : s->ops->start ? s->ops->start(s, ctx, memory, err)
                                     : attn__err(err, ATTN_E_INTERNAL, "cross sequence without a start");
            attn__gemm_set_pin(pin);
        }
    } else if (memory) {
        st = attn__err(err, ATTN_E_INPUT, "a self sequence takes no memory");
    }
    if (st) {
        attn_seq_free(s);
        return st;
    }
    *out = s;
    return ATTN_OK;
}

attn_status attn_model_seq_tokens(const attn_model *m, const attn_tensor_set *inputs, int64_t *T,
                                  attn_error *err) {
    if (!m || !inputs || !T) return attn__err(err, ATTN_E_INVALID, "seq_tokens: NULL argument");
    const attn_io_spec *first = attn_model_input(m, 0);
    const attn_tensor *t = first ? attn_tensor_set_get(inputs, first->name) : NULL;
    if (!t) return attn__err(err, ATTN_E_INPUT, "missing input '%s'", first ? first->name : "");
    if (t->rank < 2) return attn__err(err, ATTN_E_SHAPE, "input '%s' has no sequence axis", first->name);
    *T = t->shape[1];
    return ATTN_OK;
}

attn_status attn_seq_tokens(const attn_seq *s, const attn_tensor_set *inputs, int64_t *T, attn_error *err) {
    if (!s) return attn__err(err, ATTN_E_INVALID, "seq_tokens: NULL argument");
    return attn_model_seq_tokens(s->model, inputs, T, err);
}

int attn_seq_broken(const attn_seq *s) { return s ? s->broken : 1; }

/* The inputs a cross sequence's start takes as its memory. */
static const char *const memory_inputs[] = {"keys", "values", "key_lengths", NULL};

static bool is_memory_input(const char *name) {
    for (int i = 0; memory_inputs[i]; i++)
        if (strcmp(memory_inputs[i], name) == 0) return true;
    return false;
}

attn_status attn_seq_open(const attn_model *m, attn_seq_kind kind, attn_ctx *ctx, const attn_tensor_set *inputs,
                          attn_seq **seq, attn_tensor **out, attn_error *err) {
    if (!m || !inputs || !seq || !out) return attn__err(err, ATTN_E_INVALID, "seq_open: NULL argument");
    *seq = NULL;
    *out = NULL;
    const attn_io_spec *first = attn_model_input(m, 0);
    const attn_tensor *t = first ? attn_tensor_set_get(inputs, first->name) : NULL;
    if (!t) return attn__err(err, ATTN_E_INPUT, "missing input '%s'", first ? first->name : "");
    if (t->rank < 2) return attn__err(err, ATTN_E_SHAPE, "input '%s' has no sequence axis", first->name);
    attn_seq *s = NULL;
    attn_tensor_set *rest = NULL;
    attn_status st;
    if (kind != ATTN_SEQ_CROSS) {
        if ((st = attn_seq_new(m, kind, t->shape[0], NULL, ctx, &s, err))) return st;
        st = attn_seq_step(s, ctx, inputs, out, err);
    } else {
        if ((st = attn_seq_new(m, kind, t->shape[0], inputs, ctx, &s, err))) return st;
        /* The first step sees the other inputs, as views. */
        if (!(rest = attn_tensor_set_new())) {
            st = attn__err(err, ATTN_E_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < attn_tensor_set_count(inputs); i++) {
            const char *name = attn_tensor_set_name(inputs, i);
            const attn_tensor *x = attn_tensor_set_at(inputs, i);
            attn_tensor *v;
            if (is_memory_input(name)) continue;
            if ((st = attn_tensor_view(x->dtype, x->rank, x->shape, x->data, x->nbytes, &v, err)) ||
                (st = attn_tensor_set_add(rest, name, v, err)))
                goto done;
        }
        st = attn_seq_step(s, ctx, rest, out, err);
    }
done:
    attn_tensor_set_free(rest);
    if (st) {
        attn_seq_free(s);
        return st;
    }
    *seq = s;
    return ATTN_OK;
}

attn_status attn_seq_step(attn_seq *s, attn_ctx *ctx, const attn_tensor_set *inputs, attn_tensor **out,
                          attn_error *err) {
    if (!s || !inputs || !out) return attn__err(err, ATTN_E_INVALID, "seq_step: NULL argument");
    if (s->broken) return attn__err(err, ATTN_E_INVALID, "sequence is broken by an earlier failed step");
    *out = NULL;
    int pin = attn__gemm_pin();
    attn__gemm_set_pin(s->gemm);
    attn_status st = mech_of(s->model)->forward ? s->ops->step(s, ctx, inputs, out, err)
                                                : qkv_step(s, ctx, inputs, out, err);
    attn__gemm_set_pin(pin);
    if (!st && attn__cancelled(ctx)) {
        s->broken = true;
        attn_tensor_free(*out);
        *out = NULL;
        st = attn__err(err, ATTN_E_CANCELLED, "cancelled");
    }
    if (st && err && err->code != st) attn__err(err, st, "%s", attn_status_str(st));
    return st;
}

/* ---- export / import ---- */

static uint64_t fnv(uint64_t h, const char *p) {
    for (; p && *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void fingerprint(const attn_model *m, int64_t out[2]) {
    out[0] = (int64_t)fnv(14695981039346656037ULL, attn_model_mech(m)->name);
    out[1] = (int64_t)fnv(14695981039346656037ULL, attn_model_config_json(m));
}

static attn_status add_i64(attn_tensor_set *set, const char *name, const int64_t *v, int64_t n, attn_error *err) {
    attn_tensor *t;
    attn_status st = attn_tensor_new(ATTN_I64, 1, &n, &t, err);
    if (st) return st;
    memcpy(t->data, v, (size_t)n * sizeof *v);
    return attn_tensor_set_add(set, name, t, err);
}

static attn_status export_into(const attn_seq *s, const char *prefix, attn_tensor_set *set, attn_error *err) {
    char name[160];
    attn_status st;
    if (s->broken) return attn__err(err, ATTN_E_INVALID, "a broken sequence cannot be exported");
    int64_t meta[META_LEN] = {SEQ_FORMAT, s->kind, s->N, s->len, s->laid_out, s->ndims}, fp[2];
    memcpy(meta + 6, s->dims, sizeof s->dims);
    fingerprint(s->model, fp);
    snprintf(name, sizeof name, "%sseq.meta", prefix);
    if ((st = add_i64(set, name, meta, META_LEN, err))) return st;
    snprintf(name, sizeof name, "%sseq.model", prefix);
    if ((st = add_i64(set, name, fp, 2, err))) return st;
    for (int i = 0; i < s->nbufs; i++) {
        const attn__seq_buf *b = &s->bufs[i];
        int64_t shape[3] = {s->N, b->rows ? s->len : (int64_t)b->width, (int64_t)b->width};
        int rank = b->rows ? 3 : 2;
        attn_tensor *t;
        if ((st = attn_tensor_new(b->dtype, rank, shape, &t, err))) return st;
        size_t row = (b->rows ? (size_t)s->len : 1) * b->width * attn_dtype_size(b->dtype);
        for (int64_t n = 0; n < s->N; n++) memcpy((unsigned char *)t->data + (size_t)n * row, attn__seq_stream(s, i, n), row);
        snprintf(name, sizeof name, "%s%s", prefix, b->name);
        if ((st = attn_tensor_set_add(set, name, t, err))) return st;
    }
    if (s->child) {
        snprintf(name, sizeof name, "%sinner.", prefix);
        return export_into(s->child, name, set, err);
    }
    return ATTN_OK;
}

attn_status attn_seq_export(const attn_seq *s, attn_tensor_set **state, attn_error *err) {
    if (!s || !state) return attn__err(err, ATTN_E_INVALID, "seq_export: NULL argument");
    attn_tensor_set *set = attn_tensor_set_new();
    if (!set) return attn__err(err, ATTN_E_NOMEM, "out of memory");
    const int64_t gemm = s->gemm;
    attn_status st = export_into(s, "", set, err);
    if (!st) st = add_i64(set, "seq.gemm", &gemm, 1, err);
    if (st) {
        attn_tensor_set_free(set);
        return st;
    }
    *state = set;
    return ATTN_OK;
}

static const attn_tensor *get_exact(const attn_tensor_set *set, const char *name, attn_dtype dt, int rank,
                                    const int64_t *shape, size_t *used, attn_error *err) {
    const attn_tensor *t = attn_tensor_set_get(set, name);
    char want[96], got[96];
    attn_shape_str(rank, shape, want, sizeof want);
    if (!t) {
        attn__err(err, ATTN_E_FORMAT, "sequence state: missing tensor '%.100s' %s %s", name, attn_dtype_name(dt), want);
        return NULL;
    }
    bool same = t->dtype == dt && t->rank == rank;
    for (int i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
    if (!same) {
        attn__err(err, ATTN_E_FORMAT, "sequence state: tensor '%.100s' is %s %s, expected %s %s", name,
                  attn_dtype_name(t->dtype), attn_shape_str(t->rank, t->shape, got, sizeof got), attn_dtype_name(dt),
                  want);
        return NULL;
    }
    (*used)++;
    return t;
}

static attn_status import_into(attn_seq *s, const char *prefix, const attn_tensor_set *set, size_t *used,
                               attn_error *err) {
    char name[160];
    int64_t n_meta = META_LEN, n_fp = 2, fp[2];
    attn_status st;
    snprintf(name, sizeof name, "%sseq.meta", prefix);
    const attn_tensor *tm = get_exact(set, name, ATTN_I64, 1, &n_meta, used, err);
    if (!tm) return ATTN_E_FORMAT;
    snprintf(name, sizeof name, "%sseq.model", prefix);
    const attn_tensor *tf = get_exact(set, name, ATTN_I64, 1, &n_fp, used, err);
    if (!tf) return ATTN_E_FORMAT;
    const int64_t *meta = tm->data;
    fingerprint(s->model, fp);
    if (memcmp(tf->data, fp, sizeof fp))
        return attn__err(err, ATTN_E_INVALID, "sequence state was exported from a model of another type or config "
                                              "(this model: %s %.120s)",
                         attn_model_mech(s->model)->name, attn_model_config_json(s->model));
    if (meta[0] != SEQ_FORMAT || meta[1] != s->kind || meta[2] != s->N || meta[3] < 0 || meta[4] < 0 ||
        meta[4] > 1 || meta[5] < 0 || meta[5] > ATTN__SEQ_MAX_DIMS || (!meta[4] && meta[3]))
        return attn__err(err, ATTN_E_FORMAT, "sequence state: bad %s (format %lld, kind %lld, streams %lld, length %lld)",
                         name, (long long)meta[0], (long long)meta[1], (long long)meta[2], (long long)meta[3]);
    s->ndims = (int)meta[5];
    for (int i = 0; i < ATTN__SEQ_MAX_DIMS; i++) {
        s->dims[i] = meta[6 + i];
        if (s->dims[i] < 0 || (i >= s->ndims && s->dims[i]))
            return attn__err(err, ATTN_E_FORMAT, "sequence state: bad dims in %sseq.meta", prefix);
    }
    if (!meta[4]) return ATTN_OK;
    if ((st = attn__seq_layout(s, err)) || (st = reserve(s, meta[3], err))) return st;
    s->len = meta[3];
    for (int i = 0; i < s->nbufs; i++) {
        const attn__seq_buf *b = &s->bufs[i];
        int64_t shape[3] = {s->N, b->rows ? s->len : (int64_t)b->width, (int64_t)b->width};
        snprintf(name, sizeof name, "%s%s", prefix, b->name);
        const attn_tensor *t = get_exact(set, name, b->dtype, b->rows ? 3 : 2, shape, used, err);
        if (!t) return ATTN_E_FORMAT;
        size_t row = (b->rows ? (size_t)s->len : 1) * b->width * attn_dtype_size(b->dtype);
        for (int64_t n = 0; n < s->N; n++)
            memcpy(attn__seq_stream(s, i, n), (const unsigned char *)t->data + (size_t)n * row, row);
    }
    if (s->child) {
        snprintf(name, sizeof name, "%sinner.", prefix);
        return import_into(s->child, name, set, used, err);
    }
    return ATTN_OK;
}

attn_status attn_seq_import(const attn_model *m, const attn_tensor_set *state, attn_seq **out, attn_error *err) {
    if (!m || !state || !out) return attn__err(err, ATTN_E_INVALID, "seq_import: NULL argument");
    const attn_tensor *tm = attn_tensor_set_get(state, "seq.meta");
    if (!tm || tm->dtype != ATTN_I64 || tm->rank != 1 || tm->shape[0] != META_LEN)
        return attn__err(err, ATTN_E_FORMAT, "not a sequence state: no I64 (%d,) tensor 'seq.meta'", META_LEN);
    const int64_t *meta = tm->data;
    attn_seq *s;
    attn_status st = seq_alloc(m, (attn_seq_kind)meta[1], meta[2], &s, err);
    if (st) return st;
    size_t used = 0;
    st = import_into(s, "", state, &used, err);
    /* the sgemm choice it was computed with (absent from exports before
     * 2026-12-07: this process's, as before) */
    if (!st && attn_tensor_set_get(state, "seq.gemm")) {
        int64_t one = 1;
        const attn_tensor *tg = get_exact(state, "seq.gemm", ATTN_I64, 1, &one, &used, err);
        const int64_t g = tg ? *(const int64_t *)tg->data : 0;
        if (!tg)
            st = ATTN_E_FORMAT;
        else if (g < 0 || g > 3)
            st = attn__err(err, ATTN_E_FORMAT, "sequence state: bad seq.gemm %lld (0 to 3)", (long long)g);
        else
            s->gemm = (int)g; /* a child (attention_layer's inner) steps under its parent's pin */
    }
    if (!st && used != attn_tensor_set_count(state))
        st = attn__err(err, ATTN_E_FORMAT, "sequence state has %zu tensors this model's sequences do not have",
                       attn_tensor_set_count(state) - used);
    if (st) {
        attn_seq_free(s);
        return st;
    }
    *out = s;
    return ATTN_OK;
}
