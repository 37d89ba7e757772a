/* fuzz_server_num.c — libFuzzer target: attnd's float32 number codec
 * (server/json_num.c), differentially.
 *   - A token svc_num_f32 accepts is a JSON number, and its value is the
 *     correctly rounded float32, which glibc's strtof also gives.
 *   - svc_num_i64 agrees with strtoll on integer tokens.
 *   - Any float32 (the first four bytes as bits) prints as a decimal that
 *     reads back as the same bits, in at most SVC_F32_CHARS bytes (plus
 *     perhaps a NUL).
 * Input: a number token (bytes after it are ignored by the parser). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_num.h"
#include "svc.h"

/* Every fuzz_server_* target links all of server/ but main.c, which owns these. */
/* JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t json_number_len(const char *p, const char *end) {
    const char *q = p;
    if (q < end && *q == '-') q++;
    if (q >= end) return 0;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < end && *q >= '0' && *q <= '9') q++;
    else return 0;
    if (q < end && *q == '.') {
        const char *d = ++q;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q == d) return 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        const char *d = q;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q == d) return 0;
    }
    return (size_t)(q - p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *end = s + size;
    size_t want = json_number_len(s, end);

    float f;
    int err = 0;
    const char *q = svc_num_f32(s, end, &f, &err);
    const char *sk = svc_num_skip(s, end);
    if ((sk ? (size_t)(sk - s) : 0) != want) {
        fprintf(stderr, "svc_num_skip: %zu bytes, the grammar says %zu\n", sk ? (size_t)(sk - s) : 0, want);
        abort();
    }
    if (q) {
        if ((size_t)(q - s) != want) abort();
        char tok[4100];
        memcpy(tok, s, want);
        tok[want] = '\0';
        errno = 0;
        float r = strtof(tok, NULL);
        if (memcmp(&r, &f, sizeof f) != 0) {
            fprintf(stderr, "'%s': svc_num_f32 %a, strtof %a\n", tok, f, r);
            abort();
        }
        if (!isfinite(f)) abort(); /* out of range is an error, not infinity */
    } else if (want && err == SVC_NUM_RANGE) {
        char tok[4100];
        memcpy(tok, s, want);
        tok[want] = '\0';
        float r = strtof(tok, NULL);
        if (isfinite(r)) {
            fprintf(stderr, "'%s': refused as out of range, strtof gives %a\n", tok, r);
            abort();
        }
    } else if (want) {
        fprintf(stderr, "'%.*s': a valid number refused (err %d)\n", (int)want, s, err);
        abort();
    }

    int64_t iv;
    const char *qi = svc_num_i64(s, end, &iv, &err);
    if (qi) {
        char tok[4100];
        size_t n = (size_t)(qi - s);
        memcpy(tok, s, n);
        tok[n] = '\0';
        errno = 0;
        long long r = strtoll(tok, NULL, 10);
        if (errno || r != iv || n != want) {
            fprintf(stderr, "'%s': svc_num_i64 %lld, strtoll %lld\n", tok, (long long)iv, r);
            abort();
        }
    }

    if (size >= 4) {
        uint32_t bits;
        memcpy(&bits, data, 4);
        float v;
        memcpy(&v, &bits, 4);
        char out[SVC_F32_CHARS + 8];
        memset(out, 0x55, sizeof out);
        size_t n = svc_f32_format(out, v);
        if (n == 0 || n > SVC_F32_CHARS) abort();
        /* The text may be followed by a NUL (sprintf), never by more. */
        if (out[n + 1] != 0x55) abort();
        out[n] = '\0';
        if (isfinite(v)) {
            float back;
            const char *e = svc_num_f32(out, out + n, &back, &err);
            if (!e || (size_t)(e - out) != n || memcmp(&back, &v, 4) != 0) {
                fprintf(stderr, "%a printed as '%s', read back as %a\n", v, out, e ? back : NAN);
                abort();
            }
        }
    }
    free(s);
    return 0;
}
