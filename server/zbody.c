/*
 * zbody.c — gzip and deflate bodies with zlib (zbody.h).
 *
 * "deflate" is the zlib format (RFC 1950), as HTTP defines it and as
 * Triton's clients send it; a raw deflate stream (RFC 1951), which some
 * clients send under the same name, is recognised by its first two bytes
 * failing the zlib header check.  gzip may be several members in a row
 * (RFC 1952), as `cat a.gz b.gz` makes.
 */
#include "zbody.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define OUT_CHUNK 16384

struct svc_zin {
    z_stream zs;
    svc_enc enc;
    int started;   /* inflateInit2 done */
    int ended;     /* Z_STREAM_END seen, no byte after it yet */
    int fed;       /* any compressed byte arrived */
    unsigned char head[2];
    int n_head;    /* deflate: bytes kept until the format is known */
};

static int token_is(const char *p, size_t n, const char *word) { return strlen(word) == n && strncasecmp(p, word, n) == 0; }

static void trim(const char **p, size_t *n) {
    while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

int svc_z_content_encoding(const char *v, svc_enc *out) {
    *out = SVC_ENC_IDENTITY;
    if (!v) return 0;
    size_t n = strlen(v);
    trim(&v, &n);
    if (token_is(v, n, "gzip") || token_is(v, n, "x-gzip")) *out = SVC_ENC_GZIP;
    else if (token_is(v, n, "deflate")) *out = SVC_ENC_DEFLATE;
    else if (!token_is(v, n, "identity") && n) return -1;
    return 0;
}

/* The q of one Accept-Encoding element's parameters ("; q=0.5"): 1 by default. */
static double q_of(const char *p, size_t n) {
    double q = 1.0;
    while (n) {
        const char *semi = memchr(p, ';', n);
        if (!semi) break;
        n -= (size_t)(semi + 1 - p);
        p = semi + 1;
        const char *s = p;
        size_t m = n;
        const char *next = memchr(s, ';', m);
        if (next) m = (size_t)(next - s);
        trim(&s, &m);
        if (m >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
            char buf[16];
            size_t k = m - 2 < sizeof buf - 1 ? m - 2 : sizeof buf - 1;
            memcpy(buf, s + 2, k);
            buf[k] = '\0';
            char *end;
            q = strtod(buf, &end);
            if (end == buf || q < 0 || q != q) q = 0;
        }
    }
    return q;
}

svc_enc svc_z_accept(const char *v) {
    if (!v) return SVC_ENC_IDENTITY;
    double gz = -1, df = -1, star = -1; /* -1: not named */
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *name = p;
        size_t nn = strcspn(p, ",;");
        trim(&name, &nn);
        double q = q_of(p, n);
        if (token_is(name, nn, "gzip") || token_is(name, nn, "x-gzip")) gz = q;
        else if (token_is(name, nn, "deflate")) df = q;
        else if (token_is(name, nn, "*")) star = q;
        p += n;
        if (*p == ',') p++;
    }
    if (gz < 0) gz = star;
    if (df < 0) df = star;
    if (gz > 0 && gz >= df) return SVC_ENC_GZIP;
    if (df > 0) return SVC_ENC_DEFLATE;
    return SVC_ENC_IDENTITY;
}

const char *svc_z_name(svc_enc e) { return e == SVC_ENC_GZIP ? "gzip" : e == SVC_ENC_DEFLATE ? "deflate" : NULL; }

svc_zin *svc_z_in_new(svc_enc enc) {
    svc_zin *z = calloc(1, sizeof *z);
    if (z) z->enc = enc;
    return z;
}

void svc_z_in_free(svc_zin *z) {
    if (!z) return;
    if (z->started) inflateEnd(&z->zs);
    free(z);
}

static int start(svc_zin *z, int window_bits, svc_err *e) {
    if (inflateInit2(&z->zs, window_bits) != Z_OK) return svc_fail(e, 503, "out of memory for the inflater");
    z->started = 1;
    return 0;
}

/* Inflates zs's pending input into the sink, until zlib needs more. */
static int pump(svc_zin *z, svc_z_sink sink, void *cls, svc_err *e) {
    char out[OUT_CHUNK];
    for (;;) {
        if (z->ended) {
            if (z->zs.avail_in == 0) return 0;
            if (z->enc != SVC_ENC_GZIP)
                return svc_fail(e, 400, "Content-Encoding deflate: data after the end of the compressed stream");
            if (inflateReset(&z->zs) != Z_OK) return svc_fail(e, 400, "Content-Encoding gzip: cannot restart");
            z->ended = 0; /* the next gzip member */
        }
        z->zs.next_out = (Bytef *)out;
        z->zs.avail_out = sizeof out;
        int rc = inflate(&z->zs, Z_NO_FLUSH);
        size_t got = sizeof out - z->zs.avail_out;
        if (got) {
            int st = sink(cls, out, got);
            if (st) return st;
        }
        if (rc == Z_STREAM_END) z->ended = 1;
        else if (rc == Z_OK) {
            if (z->zs.avail_in == 0 && z->zs.avail_out != 0) return 0; /* everything out: wait for input */
        } else if (rc == Z_BUF_ERROR) {
            return 0; /* no progress without more input */
        } else if (rc == Z_MEM_ERROR) {
            return svc_fail(e, 503, "out of memory inflating the body");
        } else {
            return svc_fail(e, 400, "Content-Encoding %s: the body is not a valid %s stream (%s)", svc_z_name(z->enc),
                            z->enc == SVC_ENC_GZIP ? "gzip" : "zlib/deflate", z->zs.msg ? z->zs.msg : "corrupt data");
        }
    }
}

int svc_z_in_feed(svc_zin *z, const char *data, size_t n, svc_z_sink sink, void *cls, svc_err *e) {
    if (!n) return 0;
    z->fed = 1;
    if (!z->started && z->enc == SVC_ENC_GZIP && start(z, 16 + MAX_WBITS, e)) return e->status;
    if (!z->started) { /* deflate: zlib or raw, by the first two bytes */
        while (z->n_head < 2 && n) z->head[z->n_head++] = (unsigned char)*data++, n--;
        if (z->n_head < 2) return 0;
        unsigned h = (unsigned)z->head[0] << 8 | z->head[1];
        int zlib = (z->head[0] & 0x0f) == Z_DEFLATED && (z->head[0] >> 4) <= 7 && h % 31 == 0;
        if (start(z, zlib ? MAX_WBITS : -MAX_WBITS, e)) return e->status;
        z->zs.next_in = z->head;
        z->zs.avail_in = 2;
        int st = pump(z, sink, cls, e);
        if (st) return st;
    }
    while (n) { /* avail_in is a uInt */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        z->zs.next_in = (Bytef *)(uintptr_t)data;
        z->zs.avail_in = k;
        int st = pump(z, sink, cls, e);
        if (st) return st;
        data += k;
        n -= k;
    }
    return 0;
}

int svc_z_in_end(svc_zin *z, svc_err *e) {
    if (!z->fed || z->ended) return 0;
    return svc_fail(e, 400, "Content-Encoding %s: the compressed body ends before its stream does (truncated)",
                    svc_z_name(z->enc));
}

char *svc_z_compress(svc_enc enc, int level, const void *a, size_t na, const void *b, size_t nb, size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, enc == SVC_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)(na + nb)) + 64, len = 0;
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    const void *src[2] = {a, b};
    size_t nsrc[2] = {na, nb};
    int rc = Z_OK;
    for (int i = 0; i < 2 && rc == Z_OK; i++) {
        const unsigned char *p = src[i];
        size_t left = nsrc[i];
        do {
            uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)p;
            zs.avail_in = k;
            int flush = i == 1 && k == left ? Z_FINISH : Z_NO_FLUSH;
            do {
                if (cap - len < 64) { /* deflateBound holds for one call; grow regardless */
                    char *q = realloc(out, cap * 2);
                    if (!q) {
                        rc = Z_MEM_ERROR;
                        break;
                    }
                    out = q;
                    cap *= 2;
                }
                size_t room = cap - len > (1u << 30) ? (1u << 30) : cap - len;
                zs.next_out = (Bytef *)out + len;
                zs.avail_out = (uInt)room;
                rc = deflate(&zs, flush);
                len += room - zs.avail_out;
            } while (rc == Z_OK && (zs.avail_in > 0 || (flush == Z_FINISH)));
            p += k;
            left -= k;
        } while (left && rc == Z_OK);
    }
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *out_len = len;
    return out;
}
