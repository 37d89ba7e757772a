/*
 * safetensors.c — read and write the safetensors format.
 *
 * Layout: u64 little-endian header length n, n bytes of JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data section.  Offsets are relative to the data section.
 * Nothing in a file is trusted: every offset is checked against the file,
 * every byte count against shape × dtype, and tensors may not overlap.
 */
#include "attn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)64 << 20) /* 64 MiB of JSON is already absurd */
#define ST_MAX_TENSORS 65536

typedef struct st_entry {
    const char *name;
    attn_dtype dtype;
    int rank;
    int64_t shape[ATTN_MAX_RANK];
    uint64_t begin, end;
} st_entry;

static int cmp_begin(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static attn_status parse_entry(const char *name, json_t *v, uint64_t data_len, st_entry *e,
                               attn_error *err) {
    if (!json_is_object(v))
        return attn__err(err, ATTN_E_FORMAT, "safetensors: entry '%.64s' is not an object", name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2)
        return attn__err(err, ATTN_E_FORMAT,
                         "safetensors: entry '%.64s' needs dtype, shape and data_offsets[2]", name);
    if (attn_dtype_parse(json_string_value(dt), &e->dtype))
        return attn__err(err, ATTN_E_DTYPE, "safetensors: tensor '%.64s' has unsupported dtype %.16s",
                         name, json_string_value(dt));
    size_t rank = json_array_size(sh);
    if (rank > ATTN_MAX_RANK)
        return attn__err(err, ATTN_E_SHAPE, "safetensors: tensor '%.64s' has rank %zu > %d", name,
                         rank, ATTN_MAX_RANK);
    e->rank = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return attn__err(err, ATTN_E_SHAPE,
                             "safetensors: tensor '%.64s' has a bad dimension %zu", name, i);
        e->shape[i] = json_integer_value(d);
    }
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        return attn__err(err, ATTN_E_FORMAT, "safetensors: tensor '%.64s' has bad data_offsets",
                         name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end > data_len)
        return attn__err(err, ATTN_E_FORMAT,
                         "safetensors: tensor '%.64s' ends at %llu, past the data section (%llu bytes)",
                         name, (unsigned long long)e->end, (unsigned long long)data_len);
    size_t numel;
    attn_status st = attn_shape_numel(e->rank, e->shape, attn_dtype_size(e->dtype), &numel, err);
    if (st) return st;
    if ((uint64_t)numel * attn_dtype_size(e->dtype) != e->end - e->begin)
        return attn__err(err, ATTN_E_FORMAT,
                         "safetensors: tensor '%.64s' has %llu bytes but its shape needs %llu", name,
                         (unsigned long long)(e->end - e->begin),
                         (unsigned long long)numel * attn_dtype_size(e->dtype));
    e->name = name;
    return ATTN_OK;
}

/* Parses buf[0..len).  copy != 0: tensors get their own memory; otherwise
 * views into buf, except misaligned ones, which are copied. */
static attn_status parse(const unsigned char *buf, size_t len, int copy, attn_tensor_set **out,
                         attn_error *err) {
    attn_status st = ATTN_OK;
    json_t *root = NULL;
    st_entry *ents = NULL;
    attn_tensor_set *set = NULL;

    if (len < 8) return attn__err(err, ATTN_E_FORMAT, "safetensors: file of %zu bytes is too short", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER || hlen > len - 8)
        return attn__err(err, ATTN_E_FORMAT,
                         "safetensors: header length %llu does not fit the file (%zu bytes)",
                         (unsigned long long)hlen, len);
    json_error_t jerr;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = attn__err(err, ATTN_E_FORMAT, "safetensors: header is not valid JSON: %.120s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        st = attn__err(err, ATTN_E_FORMAT, "safetensors: header is not a JSON object");
        goto out;
    }
    size_t n = json_object_size(root);
    if (n > ST_MAX_TENSORS) {
        st = attn__err(err, ATTN_E_FORMAT, "safetensors: %zu entries is over the limit", n);
        goto out;
    }
    ents = calloc(n ? n : 1, sizeof *ents);
    if (!ents) {
        st = attn__err(err, ATTN_E_NOMEM, "out of memory");
        goto out;
    }
    uint64_t data_len = len - 8 - hlen;
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        st = parse_entry(key, val, data_len, &ents[k], err);
        if (st) goto out;
        k++;
    }
    qsort(ents, k, sizeof *ents, cmp_begin);
    for (size_t i = 1; i < k; i++)
        if (ents[i].begin < ents[i - 1].end) {
            st = attn__err(err, ATTN_E_FORMAT, "safetensors: tensors '%.64s' and '%.64s' overlap",
                           ents[i - 1].name, ents[i].name);
            goto out;
        }
    set = attn_tensor_set_new();
    if (!set) {
        st = attn__err(err, ATTN_E_NOMEM, "out of memory");
        goto out;
    }
    const unsigned char *data = buf + 8 + hlen;
    for (size_t i = 0; i < k; i++) {
        const st_entry *e = &ents[i];
        attn_tensor *t = NULL;
        const unsigned char *p = data + e->begin;
        size_t nb = (size_t)(e->end - e->begin);
        if (copy || ((uintptr_t)p % attn_dtype_size(e->dtype)) != 0) {
            st = attn_tensor_new(e->dtype, e->rank, e->shape, &t, err);
            if (st) goto out;
            if (nb) memcpy(t->data, p, nb);
        } else {
            st = attn_tensor_view(e->dtype, e->rank, e->shape, (void *)p, nb, &t, err);
            if (st) goto out;
        }
        if (t->dtype == ATTN_BOOL) {
            const unsigned char *b = t->data;
            for (size_t j = 0; j < nb; j++)
                if (b[j] > 1) {
                    st = attn__err(err, ATTN_E_FORMAT, "safetensors: BOOL tensor '%.64s' holds %u",
                                   e->name, b[j]);
                    attn_tensor_free(t);
                    goto out;
                }
        }
        st = attn_tensor_set_add(set, e->name, t, err);
        if (st) goto out;
    }
    *out = set;
    set = NULL;
out:
    attn_tensor_set_free(set);
    free(ents);
    json_decref(root);
    return st;
}

attn_status attn_safetensors_read_mem(const void *buf, size_t len, attn_tensor_set **out,
                                      attn_error *err) {
    if (!buf || !out) return attn__err(err, ATTN_E_INVALID, "safetensors: NULL argument");
    return parse(buf, len, 1, out, err);
}

attn_status attn_safetensors_read_file(const char *path, attn_tensor_set **out, attn_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return attn__err(err, ATTN_E_IO, "%.160s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return attn__err(err, ATTN_E_IO, "%.160s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        close(fd);
        return attn__err(err, ATTN_E_FORMAT, "safetensors: %.160s is too short (%zu bytes)", path, len);
    }
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return attn__err(err, ATTN_E_IO, "%.160s: mmap: %s", path, strerror(errno));
    attn_tensor_set *set = NULL;
    attn_status st = parse(p, len, 0, &set, err);
    if (st) {
        munmap(p, len);
        return st;
    }
    attn__tensor_set_own_backing(set, p, len, 1);
    *out = set;
    return ATTN_OK;
}

/* ---- writer ---- */

typedef struct { const char *name; const attn_tensor *t; } st_item;

static int cmp_item(const void *a, const void *b) {
    const st_item *x = a, *y = b;
    size_t ax = attn_dtype_size(x->t->dtype), ay = attn_dtype_size(y->t->dtype);
    if (ax != ay) return ax > ay ? -1 : 1; /* widest first keeps every tensor aligned */
    return strcmp(x->name, y->name);
}

attn_status attn_safetensors_write_mem(const attn_tensor_set *s, void **out, size_t *len,
                                       attn_error *err) {
    attn_status st = ATTN_OK;
    size_t n = attn_tensor_set_count(s);
    st_item *items = calloc(n ? n : 1, sizeof *items);
    json_t *hdr = json_object();
    char *text = NULL;
    unsigned char *buf = NULL;
    if (!items || !hdr) {
        st = attn__err(err, ATTN_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].name = attn_tensor_set_name(s, i);
        items[i].t = attn_tensor_set_at(s, i);
    }
    qsort(items, n, sizeof *items, cmp_item);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const attn_tensor *t = items[i].t;
        json_t *shape = json_array();
        for (int d = 0; d < t->rank; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", attn_dtype_name(t->dtype), "shape",
                              shape, "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
        if (!e || json_object_set_new(hdr, items[i].name, e)) {
            st = attn__err(err, ATTN_E_NOMEM, "out of memory");
            goto out;
        }
        off += t->nbytes;
    }
    text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        st = attn__err(err, ATTN_E_NOMEM, "out of memory");
        goto out;
    }
    size_t hlen = strlen(text), padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + off;
    buf = malloc(total);
    if (!buf) {
        st = attn__err(err, ATTN_E_NOMEM, "out of memory (%zu bytes)", total);
        goto out;
    }
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, text, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    unsigned char *p = buf + 8 + padded;
    for (size_t i = 0; i < n; i++) {
        if (items[i].t->nbytes) memcpy(p, items[i].t->data, items[i].t->nbytes);
        p += items[i].t->nbytes;
    }
    *out = buf;
    *len = total;
    buf = NULL;
out:
    free(buf);
    free(text);
    json_decref(hdr);
    free(items);
    return st;
}

attn_status attn_safetensors_write_file(const attn_tensor_set *s, const char *path,
                                        attn_error *err) {
    void *buf = NULL;
    size_t len = 0;
    attn_status st = attn_safetensors_write_mem(s, &buf, &len, err);
    if (st) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(buf);
        return attn__err(err, ATTN_E_NOMEM, "out of memory");
    }
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = attn__err(err, ATTN_E_IO, "%.160s: %s", path, strerror(errno));
        goto out;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; outputs are ordinary files */
    const unsigned char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = attn__err(err, ATTN_E_IO, "%.160s: write: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        st = attn__err(err, ATTN_E_IO, "%.160s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        st = attn__err(err, ATTN_E_IO, "%.160s: rename: %s", path, strerror(errno));
        unlink(tmp);
    }
out:
    free(tmp);
    free(buf);
    return st;
}
