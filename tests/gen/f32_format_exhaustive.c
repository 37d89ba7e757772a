/*
 * f32_format_exhaustive.c — checks svc_f32_format (server/json_num.c) on all
 * 2^32 float32 bit patterns against glibc's snprintf/strtof.  A one-off tool,
 * not part of `make test` (about an hour of CPU).
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE tests/gen/f32_format_exhaustive.c \
 *      server/json_num.c -lpthread -lm -o build/f32_format_exhaustive
 *   nice build/f32_format_exhaustive [THREADS [FIRST LAST]]   (bits FIRST..LAST, hex)
 *
 * With -DWITH_OLD and an object whose printer is called old_f32_format (say
 * the previous json_num.c built with -Dsvc_f32_format=old_f32_format
 * -Dsvc_num_f32=old_num_f32 -Dsvc_num_i64=old_num_i64 -Dsvc_num_skip=old_num_skip)
 * it also counts the floats whose text changed.
 *
 * For every finite v, with T = svc_f32_format(v) of n significant digits:
 *   1. T is at most SVC_F32_CHARS bytes and is laid out exactly as ref_emit
 *      (the layout of the previous printer, kept below) lays out its digits;
 *   2. strtof(T) and svc_num_f32(T) give v's bits back;
 *   3. shortest: no decimal of n - 1 significant digits reads back as v.  Such
 *      a decimal in v's rounding interval would put the one just below v or
 *      the one just above v there; both are among N - 1u, N, N + 1u (N =
 *      snprintf("%.*e", n - 2, v), u its last digit's unit) and, when N is
 *      1.000...eX, 9.99...9e(X-1) with n - 1 nines; none may read back as v;
 *   4. nearest: N = snprintf("%.*e", n - 1, v) is the nearest n-digit decimal
 *      (glibc rounds exactly, ties to even).  If N reads back as v, T must be
 *      N.  If not (counted as "nearest_not_rt"), T must be the neighbour of v
 *      on N's other side: N - 1u, N + 1u or 9.99...9e(X-1).
 * Also NaN, Infinity, -Infinity, 0 and -0.0 exactly.  Prints the counts and
 * the first mismatches; exits 1 on any mismatch.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/json_num.h"

#ifdef WITH_OLD
size_t old_f32_format(char *out, float v);
#endif

static char *put_int(char *o, long long x);

/* The previous printer's layout: digits d (no trailing zeros) times 10^k. */
static size_t ref_emit(char *out, int neg, uint64_t d, int k) {
    char dig[24];
    int n = 0;
    while (d) {
        dig[n++] = (char)('0' + d % 10);
        d /= 10;
    }
    int e = k + n - 1;
    char *o = out;
    if (neg) *o++ = '-';
    if (e >= -5 && e < 9) {
        if (e < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = -1; i > e; i--) *o++ = '0';
            for (int i = n - 1; i >= 0; i--) *o++ = dig[i];
        } else {
            for (int i = n - 1; i >= 0; i--) {
                *o++ = dig[i];
                if (n - 1 - i == e && i > 0) *o++ = '.';
            }
            for (int i = n - 1; i < e; i++) *o++ = '0';
        }
    } else {
        *o++ = dig[n - 1];
        if (n > 1) {
            *o++ = '.';
            for (int i = n - 2; i >= 0; i--) *o++ = dig[i];
        }
        *o++ = 'e';
        o = put_int(o, e);
    }
    *o = 0;
    return (size_t)(o - out);
}

/* Nearest p-digit decimal of v: mantissa m (p digits) and exponent x of its
 * leading digit. */
static void nearest(float v, int p, uint64_t *m, int *x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*e", p - 1, fabs((double)v));
    uint64_t a = 0;
    const char *s = buf;
    for (; *s != 'e'; s++)
        if (*s != '.') a = a * 10 + (uint64_t)(*s - '0');
    *m = a;
    *x = atoi(s + 1);
}

/* "[-]<u>" at o (no snprintf: it would dominate the run time). */
static char *put_int(char *o, long long x) {
    char t[24];
    int n = 0;
    unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;
    if (x < 0) *o++ = '-';
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) *o++ = t[--n];
    return o;
}

static int reads_back(float v, uint64_t m, int e) { /* value m * 10^e */
    char buf[48], *o = buf;
    if (signbit(v)) *o++ = '-';
    o = put_int(o, (long long)m);
    *o++ = 'e';
    o = put_int(o, e);
    *o = 0;
    float r = strtof(buf, NULL);
    return memcmp(&r, &v, 4) == 0;
}

static const uint64_t pow10u[12] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                    100000000, 1000000000, 10000000000ull, 100000000000ull};

typedef struct {
    uint64_t checked, nearest_not_rt, bad, changed_vs_old;
    uint64_t ndigits[10];
} counts;

static atomic_ullong next_chunk;
static uint64_t first_bits, last_bits; /* inclusive */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
#define CHUNK (1ull << 20)

static void fail(counts *c, uint32_t bits, const char *what, const char *text) {
    if (c->bad++ < 20) {
        float v;
        memcpy(&v, &bits, 4);
        pthread_mutex_lock(&print_lock);
        printf("MISMATCH %08x (%.9g): %s: '%s'\n", bits, (double)v, what, text);
        fflush(stdout);
        pthread_mutex_unlock(&print_lock);
    }
}

static void check_one(counts *c, uint32_t bits) {
    float v;
    memcpy(&v, &bits, 4);
    char out[SVC_F32_CHARS + 8];
    memset(out, 0x55, sizeof out);
    size_t len = svc_f32_format(out, v);
    if (len == 0 || len > SVC_F32_CHARS || (unsigned char)out[len + 1] != 0x55) {
        out[sizeof out - 1] = 0;
        fail(c, bits, "length or write past the text", out);
        return;
    }
    out[len] = 0;
    c->checked++;
#ifdef WITH_OLD
    {
        char o2[SVC_F32_CHARS + 8];
        size_t l2 = old_f32_format(o2, v);
        if (l2 != len || memcmp(o2, out, len) != 0) {
            o2[l2] = 0;
            if (c->changed_vs_old++ < 20) {
                pthread_mutex_lock(&print_lock);
                printf("changed %08x: old '%s' new '%s'\n", bits, o2, out);
                pthread_mutex_unlock(&print_lock);
            }
        }
    }
#endif
    if (isnan(v)) {
        if (strcmp(out, "NaN")) fail(c, bits, "NaN", out);
        return;
    }
    if (isinf(v)) {
        if (strcmp(out, v < 0 ? "-Infinity" : "Infinity")) fail(c, bits, "infinity", out);
        return;
    }
    if (v == 0) {
        if (strcmp(out, signbit(v) ? "-0.0" : "0")) fail(c, bits, "zero", out);
        return;
    }

    /* round trip */
    float r = strtof(out, NULL);
    if (memcmp(&r, &v, 4) != 0) {
        fail(c, bits, "strtof does not read it back", out);
        return;
    }
    int err = 0;
    const char *end = svc_num_f32(out, out + len, &r, &err);
    if (!end || end != out + len || memcmp(&r, &v, 4) != 0) {
        fail(c, bits, "svc_num_f32 does not read it back", out);
        return;
    }

    /* the digits and exponent of the text */
    uint64_t dgt = 0;
    int n = 0, lead = 0, point = -1, nd = 0, e10 = 0;
    const char *s = out + (out[0] == '-');
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') {
            point = nd;
            continue;
        }
        nd++;
        if (!lead && *s == '0') continue;
        if (!lead) lead = nd; /* position of the leading significant digit */
        dgt = dgt * 10 + (uint64_t)(*s - '0');
        n++;
    }
    if (*s == 'e') e10 = atoi(s + 1);
    if (point < 0) point = nd;
    /* value = dgt * 10^(e10 + point - nd) */
    int k = e10 + point - nd;
    while (dgt % 10 == 0) { /* trailing zeros of an integer are not significant */
        dgt /= 10;
        k++;
        n--;
    }
    if (n < 1 || n > 9) {
        fail(c, bits, "digit count", out);
        return;
    }
    c->ndigits[n]++;
    char lay[48];
    ref_emit(lay, v < 0, dgt, k);
    if (strcmp(lay, out)) {
        fail(c, bits, "layout differs from the previous printer's", out);
        return;
    }
    int x = k + n - 1; /* exponent of the leading digit */

    /* shortest */
    if (n >= 2) {
        int p = n - 1;
        uint64_t m;
        int xm;
        nearest(v, p, &m, &xm);
        int u = xm - p + 1;
        if (reads_back(v, m - 1, u) || reads_back(v, m, u) || reads_back(v, m + 1, u) ||
            (m == pow10u[p - 1] && reads_back(v, pow10u[p] - 1, u - 1))) {
            fail(c, bits, "a shorter decimal reads back", out);
            return;
        }
    }

    /* nearest */
    uint64_t m;
    int xm;
    nearest(v, n, &m, &xm);
    if (reads_back(v, m, xm - n + 1)) {
        if (m != dgt || xm != x) fail(c, bits, "not the nearest shortest", out);
    } else {
        c->nearest_not_rt++;
        int ok = (x == xm && (dgt == m - 1 || dgt == m + 1)) ||
                 (m == pow10u[n - 1] && x == xm - 1 && dgt == pow10u[n] - 1) ||
                 (m + 1 == pow10u[n] && x == xm + 1 && dgt == 1); /* 9.99 + 1u = 10.00 */
        if (!ok) fail(c, bits, "nearest does not read back and T is not its neighbour", out);
    }
}

static void *worker(void *arg) {
    counts *c = arg;
    uint64_t nchunks = (last_bits - first_bits) / CHUNK + 1;
    for (;;) {
        uint64_t i = atomic_fetch_add(&next_chunk, 1);
        if (i >= nchunks) break;
        uint64_t a = first_bits + i * CHUNK, b = a + CHUNK - 1;
        if (b > last_bits) b = last_bits;
        for (uint64_t bits = a; bits <= b; bits++) check_one(c, (uint32_t)bits);
        if (i % 256 == 255) {
            pthread_mutex_lock(&print_lock);
            fprintf(stderr, "  %llu / %llu chunks\n", (unsigned long long)i + 1, (unsigned long long)nchunks);
            pthread_mutex_unlock(&print_lock);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    first_bits = argc > 3 ? strtoull(argv[2], NULL, 16) : 0;
    last_bits = argc > 3 ? strtoull(argv[3], NULL, 16) : 0xffffffffull;
    if (threads < 1 || threads > 64 || last_bits > 0xffffffffull || first_bits > last_bits) {
        fprintf(stderr, "usage: f32_format_exhaustive [THREADS [FIRST LAST]]\n");
        return 2;
    }
    pthread_t th[64];
    counts cs[64];
    memset(cs, 0, sizeof cs);
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, &cs[t]);
    counts tot;
    memset(&tot, 0, sizeof tot);
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        tot.checked += cs[t].checked;
        tot.nearest_not_rt += cs[t].nearest_not_rt;
        tot.bad += cs[t].bad;
        tot.changed_vs_old += cs[t].changed_vs_old;
        for (int i = 0; i < 10; i++) tot.ndigits[i] += cs[t].ndigits[i];
    }
    printf("bits %08llx..%08llx: checked=%llu mismatches=%llu nearest_not_rt=%llu", (unsigned long long)first_bits,
           (unsigned long long)last_bits, (unsigned long long)tot.checked, (unsigned long long)tot.bad,
           (unsigned long long)tot.nearest_not_rt);
#ifdef WITH_OLD
    printf(" changed_vs_old=%llu", (unsigned long long)tot.changed_vs_old);
#endif
    printf("\ndigits:");
    for (int i = 1; i < 10; i++) printf(" %d:%llu", i, (unsigned long long)tot.ndigits[i]);
    printf("\n");
    return tot.bad != 0;
}
