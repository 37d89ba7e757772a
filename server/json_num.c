/*
 * json_num.c — JSON numbers <-> float32 without a JSON library in the loop.
 *
 * Printing: the shortest decimal that reads back as the same float32.  The
 * nearest p-digit decimal is tried for p = 6..9 (no float has a shorter
 * round-tripping decimal that the 6-digit rounding misses: the 6-digit grid
 * is coarser than a float's rounding interval).  Digits and the round-trip
 * test use double arithmetic that is exact or singly rounded; the few cases
 * that double arithmetic cannot decide exactly (a candidate on the interval's
 * edge, exponents beyond 10^±22) go through snprintf/strtof.
 *
 * Reading: a JSON number token is scanned once; up to 19 significant digits
 * and an exponent within 10^±22 give a double that is at most one rounding
 * (two when the digits exceed 2^53) from the exact value; that double
 * rounds to the correct float32 unless it sits on a float32 rounding
 * midpoint, in which case (and for every other rare case) strtof decides.
 * strtof runs on the token in place: the body is NUL-terminated and a valid
 * JSON number ends where strtof stops.
 */
#include "json_num.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static const uint32_t u10[10] = {1,      10,      100,      1000,      10000,
                                 100000, 1000000, 10000000, 100000000, 1000000000};

/* ---- printing ---- */

/* D * 10^k as a double with one rounding; 0 when |k| > 22. */
static int scaled_value(uint32_t d, int k, double *out) {
    if (k > 22 || k < -22) return 0;
    *out = k >= 0 ? (double)d * p10[k] : (double)d / p10[-k];
    return 1;
}

/* Writes digits d (p digits, no trailing zeros) times 10^k, JSON syntax. */
static size_t emit(char *out, int neg, uint32_t d, int k) {
    char dig[10];
    int n = 0;
    while (d) {
        dig[n++] = (char)('0' + d % 10);
        d /= 10;
    }
    /* dig[n-1] is the leading digit; the value is 0.d... * 10^(k+n) */
    int e = k + n - 1; /* decimal exponent of the leading digit */
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
        o += sprintf(o, "e%d", e);
    }
    return (size_t)(o - out);
}

/* The slow path: nearest p-digit decimal via printf, tested with strtof. */
static size_t fmt_slow(char *out, float v) {
    char tmp[40];
    for (int p = 1; p <= 9; p++) { /* subnormals can be shorter than 6 digits */
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, (double)v);
        if (strtof(tmp, NULL) == v || p == 9) break;
    }
    /* tmp is "[-]d.ddddde[+-]xx": rebuild as digits and exponent */
    const char *s = tmp;
    int neg = *s == '-';
    if (neg) s++;
    uint32_t d = 0;
    int nd = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') continue;
        d = d * 10 + (uint32_t)(*s - '0');
        nd++;
    }
    int e = atoi(s + 1);
    int k = e - (nd - 1);
    while (d && d % 10 == 0) {
        d /= 10;
        k++;
    }
    return emit(out, neg, d, k);
}

size_t svc_f32_format(char *out, float v) {
    if (isnan(v)) return (size_t)(memcpy(out, "NaN", 3), 3);
    if (isinf(v)) {
        if (v < 0) return (size_t)(memcpy(out, "-Infinity", 9), 9);
        return (size_t)(memcpy(out, "Infinity", 8), 8);
    }
    if (v == 0) {
        /* "-0" would read back as the integer 0 in many clients */
        if (signbit(v)) return (size_t)(memcpy(out, "-0.0", 4), 4);
        return (size_t)(memcpy(out, "0", 1), 1);
    }
    int neg = v < 0;
    float a = neg ? -v : v;
    if (a < 1e-12f || a > 1e21f) return fmt_slow(out, v);
    double x = a;
    /* Rounding interval: halfway to each neighbour (exact in double). */
    double lo = (x + (double)nextafterf(a, 0.0f)) * 0.5;
    double hi = (x + (double)nextafterf(a, INFINITY)) * 0.5;
    int e10_est = (int)floor(log10(x));
    for (int p = 6; p <= 9; p++) {
        int e10 = e10_est; /* a round-up at one precision says nothing of the next */
        for (int tries = 0; tries < 3; tries++) {
            int k = e10 - p + 1; /* candidate = d * 10^k */
            if (k > 22 || k < -22) return fmt_slow(out, v);
            double s = k >= 0 ? x / p10[k] : x * p10[-k];
            double r = nearbyint(s);
            if (r >= u10[p]) { /* rounded up to p+1 digits (9.9999 -> 10.000) */
                e10++;
                continue;
            }
            if (r < u10[p - 1]) { /* log10 estimate one too high */
                e10--;
                continue;
            }
            uint32_t d = (uint32_t)r;
            double val;
            if (!scaled_value(d, k, &val)) return fmt_slow(out, v);
            if (val == lo || val == hi) return fmt_slow(out, v); /* tie: let strtof say */
            if (val > lo && val < hi) {
                while (d % 10 == 0) {
                    d /= 10;
                    k++;
                }
                return emit(out, neg, d, k);
            }
            break; /* next precision */
        }
    }
    return fmt_slow(out, v);
}

/* ---- reading ---- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Scans a JSON number at p (p < end).  On success returns the end of the
 * token and fills the digit summary; NULL when it is not a JSON number. */
typedef struct numtok {
    uint64_t w;       /* up to 19 significant digits */
    int exp10;        /* value = w * 10^exp10 (when !inexact) */
    int neg;
    int many;         /* more than 19 significant digits (w truncated) */
    int is_int;       /* no fraction, no exponent */
    int big_exp;      /* exponent too large to track */
} numtok;

static const char *scan_number(const char *p, const char *end, numtok *t) {
    memset(t, 0, sizeof *t);
    t->is_int = 1;
    if (p < end && *p == '-') {
        t->neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p)) return NULL;
    int nd = 0, dropped = 0;
    if (*p == '0') {
        p++;
    } else {
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) {
                t->w = t->w * 10 + (uint64_t)(*p - '0');
                if (t->w) nd++;
            } else {
                dropped++;
                if (*p != '0') t->many = 1;
            }
        }
    }
    int frac = 0;
    if (p < end && *p == '.') {
        t->is_int = 0;
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) {
                t->w = t->w * 10 + (uint64_t)(*p - '0');
                if (t->w) nd++;
                frac++;
            } else if (*p != '0') {
                t->many = 1;
            }
        }
    }
    long e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        t->is_int = 0;
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (e < 100000) e = e * 10 + (*p - '0');
            else t->big_exp = 1;
        }
        if (eneg) e = -e;
    }
    t->exp10 = (int)(e + dropped - frac);
    return p;
}

const char *svc_num_f32(const char *p, const char *end, float *out, int *err) {
    numtok t;
    const char *q = scan_number(p, end, &t);
    *err = SVC_NUM_SYNTAX;
    if (!q) return NULL;
    *err = 0;
    if (t.w == 0 && !t.many) {
        *out = t.neg ? -0.0f : 0.0f;
        return q;
    }
    if (!t.many && !t.big_exp && t.exp10 >= -22 && t.exp10 <= 22) {
        double d = (double)t.w;
        d = t.exp10 >= 0 ? d * p10[t.exp10] : d / p10[-t.exp10];
        if (d >= (double)FLT_MIN && d <= (double)FLT_MAX) {
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            /* The 29 bits a float32 drops: close to half means a midpoint. */
            int64_t low = (int64_t)(bits & ((1u << 29) - 1)) - (1 << 28);
            if (low > 2 || low < -2) {
                float f = (float)d;
                *out = t.neg ? -f : f;
                return q;
            }
        }
    }
    /* Slow and exact.  A value beyond float range is an error, not inf. */
    float f = strtof(p, NULL);
    if (isinf(f)) {
        *err = SVC_NUM_RANGE;
        return NULL;
    }
    *out = f;
    return q;
}

const char *svc_num_i64(const char *p, const char *end, int64_t *out, int *err) {
    numtok t;
    const char *q = scan_number(p, end, &t);
    *err = SVC_NUM_SYNTAX;
    if (!q) return NULL;
    *err = SVC_NUM_NOT_INT;
    if (!t.is_int) return NULL;
    *err = SVC_NUM_RANGE;
    if (t.many || t.exp10 != 0) return NULL; /* more than 19 digits */
    if (t.neg ? t.w > (uint64_t)INT64_MAX + 1 : t.w > (uint64_t)INT64_MAX) return NULL;
    *err = 0;
    *out = t.neg ? (int64_t)(0 - t.w) : (int64_t)t.w;
    return q;
}

const char *svc_num_skip(const char *p, const char *end) {
    numtok t;
    return scan_number(p, end, &t);
}
