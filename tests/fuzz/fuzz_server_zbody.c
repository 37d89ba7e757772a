/* fuzz_server_zbody.c — libFuzzer target: compressed request bodies
 * (server/zbody.c).
 *   - Any byte string fed as gzip or deflate, in pieces of any size, either
 *     inflates completely or fails with 400 / 413; the inflated size never
 *     passes the limit (the sink refuses past it, as http.c's append does).
 *   - What inflates completely equals what zlib's one-shot inflate of the same
 *     bytes makes (for a single zlib or gzip stream).
 *   - Any byte string compressed by svc_z_compress inflates back to itself.
 *   - Accept-Encoding and Content-Encoding parsing never reads past the string.
 * Input: byte 0 picks the coding and the piece size; the rest is the body. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "svc.h"
#include "zbody.h"

#define LIMIT (1u << 20)

typedef struct sink_buf {
    unsigned char *p;
    size_t len;
} sink_buf;

static int sink(void *cls, const char *data, size_t n) {
    sink_buf *b = cls;
    if (n > LIMIT - b->len) return 413;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

/* Feeds body in pieces of `piece` bytes; 0, or the status. */
static int inflate_all(svc_enc enc, const uint8_t *body, size_t n, size_t piece, sink_buf *out) {
    svc_zin *z = svc_z_in_new(enc);
    if (!z) return 503;
    svc_err e = {0};
    int st = 0;
    for (size_t off = 0; !st && off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        st = svc_z_in_feed(z, (const char *)body + off, k, sink, out, &e);
    }
    if (!st) st = svc_z_in_end(z, &e);
    if (st && st != 400 && st != 413 && st != 503) abort();
    if (st == 400 && !e.msg[0]) abort(); /* a failure always says why */
    svc_z_in_free(z);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 16)) return 0;
    svc_enc enc = (data[0] & 1) ? SVC_ENC_GZIP : SVC_ENC_DEFLATE;
    static const size_t pieces[] = {1, 2, 3, 7, 64, 1000, 1u << 20, 5};
    size_t piece = pieces[(data[0] >> 1) & 7];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    sink_buf out = {malloc(LIMIT), 0};
    if (!out.p) return 0;
    int st = inflate_all(enc, body, n, piece, &out);
    if (out.len > LIMIT) abort();

    /* Differential: a single stream that zlib inflates in one go to at most LIMIT bytes. */
    unsigned char *ref = malloc(LIMIT);
    if (ref && n) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        int wb = enc == SVC_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
        int zlib_fmt = enc == SVC_ENC_DEFLATE && n >= 2 && (body[0] & 0x0f) == Z_DEFLATED && (body[0] >> 4) <= 7 &&
                       (((unsigned)body[0] << 8) | body[1]) % 31 == 0;
        if (enc == SVC_ENC_DEFLATE && !zlib_fmt) wb = -MAX_WBITS;
        if (inflateInit2(&zs, wb) == Z_OK) {
            zs.next_in = (Bytef *)(uintptr_t)body;
            zs.avail_in = (uInt)n;
            zs.next_out = ref;
            zs.avail_out = LIMIT;
            int rc = inflate(&zs, Z_FINISH);
            size_t got = LIMIT - zs.avail_out;
            if (rc == Z_STREAM_END && zs.avail_in == 0) {
                /* one complete stream and nothing after it: ours must agree */
                if (st != 0 || out.len != got || memcmp(out.p, ref, got) != 0) abort();
            }
            if (st == 0 && rc == Z_STREAM_END && zs.avail_in == 0 && got != out.len) abort();
            inflateEnd(&zs);
        }
    }
    free(ref);

    /* Round trip: the input itself, compressed by us, inflates back. */
    size_t zl = 0;
    char *z = svc_z_compress(enc, 1 + (data[0] >> 4) % 9, data, size / 2, data + size / 2, size - size / 2, &zl);
    if (z) {
        sink_buf back = {malloc(LIMIT), 0};
        if (back.p) {
            if (inflate_all(enc, (const uint8_t *)z, zl, piece, &back) != 0 || back.len != size ||
                memcmp(back.p, data, size) != 0)
                abort();
            free(back.p);
        }
        free(z);
    }

    /* Header parsing: NUL-terminated copies of the input. */
    char *h = malloc(n + 1);
    if (h) {
        memcpy(h, body, n);
        h[n] = '\0';
        svc_enc e2;
        (void)svc_z_accept(h);
        (void)svc_z_content_encoding(h, &e2);
        free(h);
    }
    free(out.p);
    return 0;
}
