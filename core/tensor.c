/*
 * tensor.c — dense tensors and named tensor sets.
 *
 * Every size is computed by attn_shape_numel, which rejects negative dims,
 * ranks beyond ATTN_MAX_RANK and products that overflow size_t, int64 or the
 * byte count; nothing else in the library multiplies dims unchecked.
 */
#include "attn_internal.h"
#include "workspace.h"

#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* owns_data: 0 borrowed, else how the tensor's data was allocated */
enum { OWNS_HEAP = 1, OWNS_BLOCK = 2 };

size_t attn_dtype_size(attn_dtype t) {
    switch (t) {
    case ATTN_F32: return 4;
    case ATTN_BOOL: return 1;
    case ATTN_I32: return 4;
    case ATTN_I64: return 8;
    }
    return 0;
}

const char *attn_dtype_name(attn_dtype t) {
    switch (t) {
    case ATTN_F32: return "F32";
    case ATTN_BOOL: return "BOOL";
    case ATTN_I32: return "I32";
    case ATTN_I64: return "I64";
    }
    return "?";
}

attn_status attn_dtype_parse(const char *name, attn_dtype *out) {
    static const attn_dtype all[] = {ATTN_F32, ATTN_BOOL, ATTN_I32, ATTN_I64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (name && strcmp(name, attn_dtype_name(all[i])) == 0) {
            *out = all[i];
            return ATTN_OK;
        }
    return ATTN_E_DTYPE;
}

const char *attn_shape_str(int rank, const int64_t *shape, char *buf, size_t cap) {
    size_t n = 0;
    if (cap == 0) return buf;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < rank && i < ATTN_MAX_RANK && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, rank == 1 ? ",)" : ")");
    return buf;
}

attn_status attn_shape_numel(int rank, const int64_t *shape, size_t elem, size_t *numel,
                             attn_error *err) {
    if (rank < 0 || rank > ATTN_MAX_RANK)
        return attn__err(err, ATTN_E_SHAPE, "rank %d outside [0, %d]", rank, ATTN_MAX_RANK);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return attn__err(err, ATTN_E_SHAPE, "dimension %d is negative (%lld)", i,
                             (long long)shape[i]);
        if (!attn__mul(n, (size_t)shape[i], &n) || n > (size_t)INT64_MAX)
            return attn__err(err, ATTN_E_OVERFLOW, "shape product overflows at dimension %d", i);
    }
    size_t bytes;
    if (elem && (!attn__mul(n, elem, &bytes) || bytes > (size_t)INT64_MAX))
        return attn__err(err, ATTN_E_OVERFLOW, "tensor of %zu elements overflows in bytes", n);
    *numel = n;
    return ATTN_OK;
}

static attn_status tensor_header(attn_dtype dtype, int rank, const int64_t *shape,
                                 attn_tensor **out, attn_error *err) {
    size_t es = attn_dtype_size(dtype);
    if (!es) return attn__err(err, ATTN_E_DTYPE, "unknown dtype %d", (int)dtype);
    size_t numel;
    attn_status st = attn_shape_numel(rank, shape, es, &numel, err);
    if (st) return st;
    attn_tensor *t = calloc(1, sizeof *t);
    if (!t) return attn__err(err, ATTN_E_NOMEM, "out of memory");
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->nbytes = numel * es;
    *out = t;
    return ATTN_OK;
}

static attn_status tensor_alloc(attn_dtype dtype, int rank, const int64_t *shape, bool zero, attn_tensor **out,
                                attn_error *err) {
    attn_tensor *t;
    attn_status st = tensor_header(dtype, rank, shape, &t, err);
    if (st) return st;
    /* Large data from the workspace allocator (OWNS_BLOCK), which keeps
     * freed blocks for the next request's tensors instead of giving their
     * pages back; small data, and all of it under ASAN, from the heap
     * (OWNS_HEAP). */
    if (t->nbytes >= ATTN_WS_MMAP_MIN && !ATTN_UNDER_ASAN) {
        if ((zero ? attn__ws_alloc_zero : attn__ws_alloc)(t->nbytes, &t->data, NULL)) t->data = NULL;
        t->owns_data = OWNS_BLOCK;
    } else {
        t->data = zero ? calloc(t->nbytes ? t->nbytes : 1, 1) : malloc(t->nbytes ? t->nbytes : 1);
        t->owns_data = OWNS_HEAP;
    }
    if (!t->data) {
        size_t nb = t->nbytes;
        free(t);
        return attn__err(err, ATTN_E_NOMEM, "out of memory allocating a %zu-byte tensor", nb);
    }
    *out = t;
    return ATTN_OK;
}

attn_status attn_tensor_new(attn_dtype dtype, int rank, const int64_t *shape, attn_tensor **out,
                            attn_error *err) {
    return tensor_alloc(dtype, rank, shape, true, out, err);
}

attn_status attn__tensor_new_uninit(attn_dtype dtype, int rank, const int64_t *shape, attn_tensor **out,
                                    attn_error *err) {
    return tensor_alloc(dtype, rank, shape, false, out, err);
}

attn_status attn_tensor_view(attn_dtype dtype, int rank, const int64_t *shape, void *data,
                             size_t nbytes, attn_tensor **out, attn_error *err) {
    attn_tensor *t;
    attn_status st = tensor_header(dtype, rank, shape, &t, err);
    if (st) return st;
    if (t->nbytes != nbytes) {
        size_t want = t->nbytes;
        free(t);
        return attn__err(err, ATTN_E_SHAPE, "view of %zu bytes for a tensor of %zu bytes", nbytes,
                         want);
    }
    t->data = data;
    *out = t;
    return ATTN_OK;
}

void attn_tensor_free(attn_tensor *t) {
    if (!t) return;
    if (t->owns_data == OWNS_BLOCK)
        attn__ws_free(t->data, t->nbytes);
    else if (t->owns_data)
        free(t->data);
    free(t);
}

/* ---- tensor sets ---- */

struct attn_tensor_set {
    size_t n, cap;
    char **names;
    attn_tensor **tensors;
    void *backing; /* mmap or heap buffer the views point into */
    size_t backing_len;
    int backing_is_mmap;
};

attn_tensor_set *attn_tensor_set_new(void) { return calloc(1, sizeof(attn_tensor_set)); }

void attn__tensor_set_own_backing(attn_tensor_set *s, void *p, size_t len, int is_mmap) {
    s->backing = p;
    s->backing_len = len;
    s->backing_is_mmap = is_mmap;
}

void attn_tensor_set_free(attn_tensor_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->names[i]);
        attn_tensor_free(s->tensors[i]);
    }
    free(s->names);
    free(s->tensors);
    if (s->backing) {
        if (s->backing_is_mmap)
            munmap(s->backing, s->backing_len);
        else
            free(s->backing);
    }
    free(s);
}

attn_status attn_tensor_set_add(attn_tensor_set *s, const char *name, attn_tensor *t,
                                attn_error *err) {
    attn_status st = ATTN_OK;
    if (!s || !name || !t) {
        st = attn__err(err, ATTN_E_INVALID, "tensor_set_add: NULL argument");
        goto fail;
    }
    if (attn_tensor_set_get(s, name)) {
        st = attn__err(err, ATTN_E_INVALID, "duplicate tensor name '%.64s'", name);
        goto fail;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **nn = realloc(s->names, cap * sizeof *nn);
        if (!nn) goto nomem;
        s->names = nn;
        attn_tensor **nt = realloc(s->tensors, cap * sizeof *nt);
        if (!nt) goto nomem;
        s->tensors = nt;
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) goto nomem;
    s->names[s->n] = copy;
    s->tensors[s->n] = t;
    s->n++;
    return ATTN_OK;
nomem:
    st = attn__err(err, ATTN_E_NOMEM, "out of memory");
fail:
    attn_tensor_free(t);
    return st;
}

const attn_tensor *attn_tensor_set_get(const attn_tensor_set *s, const char *name) {
    if (!s || !name) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->tensors[i];
    return NULL;
}

attn_tensor *attn_tensor_set_take(attn_tensor_set *s, const char *name) {
    if (!s || !name) return NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) != 0) continue;
        attn_tensor *t = s->tensors[i];
        if (!t->owns_data && s->backing) return NULL; /* a view into the set's buffer */
        free(s->names[i]);
        memmove(s->names + i, s->names + i + 1, (s->n - i - 1) * sizeof *s->names);
        memmove(s->tensors + i, s->tensors + i + 1, (s->n - i - 1) * sizeof *s->tensors);
        s->n--;
        return t;
    }
    return NULL;
}

size_t attn_tensor_set_count(const attn_tensor_set *s) { return s ? s->n : 0; }
const char *attn_tensor_set_name(const attn_tensor_set *s, size_t i) {
    return s && i < s->n ? s->names[i] : NULL;
}
const attn_tensor *attn_tensor_set_at(const attn_tensor_set *s, size_t i) {
    return s && i < s->n ? s->tensors[i] : NULL;
}
