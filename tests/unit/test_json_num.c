/* test_json_num.c — the server's float32 printer svc_f32_format (shortest
 * round-trip text, nearest among the shortest, attnd's layout) and reading
 * its output back with svc_num_f32.  server/json_num.o is linked in (see the
 * Makefile); tests/gen/f32_format_exhaustive.c checks all 2^32 floats. */
#include "test_util.h"

#include <float.h>

#include "../../server/json_num.h"

/* svc_f32_format into a NUL-terminated string; checks the length bound and
 * that nothing is written past the text but perhaps a NUL. */
static const char *fmt(float v, char *buf) {
    char out[SVC_F32_CHARS + 8];
    memset(out, 0x55, sizeof out);
    size_t n = svc_f32_format(out, v);
    assert_true(n >= 1 && n <= SVC_F32_CHARS);
    assert_int_equal((unsigned char)out[n + 1], 0x55);
    memcpy(buf, out, n);
    buf[n] = '\0';
    return buf;
}

static float from_bits(uint32_t b) {
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* svc_num_f32 and strtof both read text back as exactly v. */
static void assert_reads_back(const char *text, float v) {
    float r = strtof(text, NULL);
    if (!same_bits(r, v)) fail_msg("'%s' reads back as %a, not %a (strtof)", text, (double)r, (double)v);
    int err = -1;
    size_t n = strlen(text);
    const char *end = svc_num_f32(text, text + n, &r, &err);
    if (!end || end != text + n || err != 0 || !same_bits(r, v))
        fail_msg("'%s' reads back as %a, not %a (svc_num_f32)", text, (double)r, (double)v);
}

static void special_values(void **st) {
    (void)st;
    char b[40];
    assert_string_equal(fmt(NAN, b), "NaN");
    assert_string_equal(fmt(-NAN, b), "NaN");
    assert_string_equal(fmt(from_bits(0x7f800001u), b), "NaN"); /* signalling */
    assert_string_equal(fmt(from_bits(0xffffffffu), b), "NaN");
    assert_string_equal(fmt(INFINITY, b), "Infinity");
    assert_string_equal(fmt(-INFINITY, b), "-Infinity");
    assert_string_equal(fmt(0.0f, b), "0");
    assert_string_equal(fmt(-0.0f, b), "-0.0");
    const char *mz = "-0.0";
    float r = 1;
    int err = -1;
    assert_ptr_equal(svc_num_f32(mz, mz + 4, &r, &err), mz + 4);
    assert_true(r == 0 && signbit(r));
}

/* Text for known values: the shortest digits and the layout (plain notation
 * for decimal exponents -5..8, d.ddde<x> otherwise). */
static void known_texts(void **st) {
    (void)st;
    static const struct {
        float v;
        const char *text;
    } cases[] = {
        {1.0f, "1"},
        {-1.0f, "-1"},
        {0.1f, "0.1"},
        {0.3f, "0.3"},
        {1.0f / 3.0f, "0.33333334"},
        {2.5f, "2.5"},
        {-0.75f, "-0.75"},
        {123.456f, "123.456"},
        {100.0f, "100"},
        {16777216.0f, "16777216"},
        {16777217.0f, "16777216"}, /* rounds to 2^24 */
        {8388608.5f, "8388608"},   /* rounds to 2^23 */
        /* the notation switch */
        {1e-5f, "0.00001"},
        {-1e-5f, "-0.00001"},
        {1.234e-5f, "0.00001234"},
        {9.9999e-6f, "9.9999e-6"},
        {9.999999e-6f, "9.999999e-6"},
        {0.0001234f, "0.0001234"},
        {1e-6f, "1e-6"},
        {1.234e-6f, "1.234e-6"},
        {99999999.0f, "100000000"}, /* the float is 1e8 */
        {99999992.0f, "99999990"},
        {123456789.0f, "123456790"},
        {999999000.0f, "999999000"},
        {999999.9f, "999999.9"},
        {1e9f, "1e9"},
        {-1e9f, "-1e9"},
        {1.5e9f, "1.5e9"},
        {4294967296.0f, "4.2949673e9"},
        /* the ends of the range */
        {FLT_MAX, "3.4028235e38"},
        {-FLT_MAX, "-3.4028235e38"},
        {FLT_MIN, "1.1754944e-38"},
        {-FLT_MIN, "-1.1754944e-38"},
        {0x1.fffffcp-127f, "1.1754942e-38"}, /* largest subnormal */
        {0x1p-149f, "1e-45"},                /* smallest subnormal */
        {-0x1p-149f, "-1e-45"},
        {0x1p-148f, "3e-45"},
        {0x1.8p-147f, "8e-45"},
        /* powers of two: the rounding interval is lopsided */
        {0x1p-1f, "0.5"},
        {0x1p-126f * 2, "2.3509887e-38"},
        {0x1p33f, "8.589935e9"},
        {0x1p127f, "1.7014118e38"},
        {0x1p-10f, "0.0009765625"},
        {0x1p-20f, "9.536743e-7"},
    };
    char b[40];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fmt(cases[i].v, b);
        if (strcmp(b, cases[i].text)) fail_msg("%a printed as '%s', expected '%s'", (double)cases[i].v, b, cases[i].text);
        assert_reads_back(b, cases[i].v);
    }
}

/* The float nearest 10^e prints as 1e<e> (plain for -5..8). */
static void powers_of_ten(void **st) {
    (void)st;
    char b[40], want[40], tok[16];
    for (int e = -45; e <= 38; e++) {
        snprintf(tok, sizeof tok, "1e%d", e);
        float v = strtof(tok, NULL);
        if (e >= 0 && e <= 8) {
            want[0] = '1';
            memset(want + 1, '0', (size_t)e);
            want[e + 1] = '\0';
        } else if (e < 0 && e >= -5) {
            strcpy(want, "0.");
            memset(want + 2, '0', (size_t)(-e - 1));
            strcpy(want + 1 - e, "1");
        } else {
            strcpy(want, tok);
        }
        fmt(v, b);
        if (strcmp(b, want)) fail_msg("10^%d printed as '%s', expected '%s'", e, b, want);
        assert_reads_back(b, v);
        fmt(-v, b);
        assert_true(b[0] == '-' && !strcmp(b + 1, want));
    }
}

/* Significand digits of v's nearest p-digit decimal and the exponent of its
 * leading digit, by glibc's correctly rounded printf. */
static uint64_t nearest_digits(float v, int p, int *x) {
    char buf[48];
    snprintf(buf, sizeof buf, "%.*e", p - 1, fabs((double)v));
    uint64_t m = 0;
    const char *s = buf;
    for (; *s != 'e'; s++)
        if (*s != '.') m = m * 10 + (uint64_t)(*s - '0');
    *x = atoi(s + 1);
    return m;
}

static int mantissa_reads_back(float v, uint64_t m, int x, int p) {
    char buf[48];
    snprintf(buf, sizeof buf, "%s%llue%d", signbit(v) ? "-" : "", (unsigned long long)m, x - p + 1);
    return same_bits(strtof(buf, NULL), v);
}

/* Significant digits of a printed finite nonzero value and the exponent of
 * its leading digit. */
static uint64_t text_digits(const char *t, int *n, int *x) {
    uint64_t d = 0;
    int nd = 0, point = -1, sig = 0, e10 = 0;
    const char *s = t + (*t == '-');
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') {
            point = nd;
            continue;
        }
        nd++;
        if (!sig && *s == '0') continue;
        sig++;
        d = d * 10 + (uint64_t)(*s - '0');
    }
    if (*s == 'e') e10 = atoi(s + 1);
    if (point < 0) point = nd;
    int k = e10 + point - nd;
    while (d && d % 10 == 0) {
        d /= 10;
        k++;
        sig--;
    }
    *n = sig;
    *x = k + sig - 1;
    return d;
}

/* One finite nonzero float against the snprintf/strtof reference: the text
 * reads back; it is the nearest decimal of its length n (snprintf's) when
 * that one reads back; the nearest (n-1)-digit decimal does not read back. */
static void check_against_reference(float v) {
    char b[40];
    fmt(v, b);
    assert_reads_back(b, v);
    int n, x;
    uint64_t d = text_digits(b, &n, &x);
    if (n < 1 || n > 9) fail_msg("%a printed as '%s': %d digits", (double)v, b, n);
    int xm;
    uint64_t m = nearest_digits(v, n, &xm);
    if (m != d || xm != x) {
        /* Only right when the nearest does not read back (it can lie below a
         * power of two, outside the narrower lower half of its interval) and
         * the text is the n-digit decimal on the other side of v. */
        uint64_t p10n = 1;
        for (int i = 1; i < n; i++) p10n *= 10;
        int other_side = (x == xm && (d == m + 1 || d == m - 1)) || (m == p10n && x == xm - 1 && d == 10 * p10n - 1);
        if (mantissa_reads_back(v, m, xm, n) || !other_side)
            fail_msg("%a printed as '%s', the nearest %d-digit decimal is %llue%d", (double)v, b, n,
                     (unsigned long long)m, xm - n + 1);
    }
    if (n > 1) {
        m = nearest_digits(v, n - 1, &xm);
        if (mantissa_reads_back(v, m, xm, n - 1))
            fail_msg("%a printed as '%s', but %llue%d also reads back", (double)v, b, (unsigned long long)m, xm - n + 2);
    }
}

static void random_bit_patterns(void **st) {
    (void)st;
    uint64_t s = 0x243F6A8885A308D3ull;
    int checked = 0;
    for (int i = 0; i < 1500000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        float v = from_bits((uint32_t)(s >> 32));
        if (!isfinite(v) || v == 0) continue;
        check_against_reference(v);
        checked++;
    }
    assert_true(checked > 1400000);
}

/* Every float near the places where the digits or the layout change. */
static void neighbourhoods(void **st) {
    (void)st;
    static const float centres[] = {1e-5f, 1e-6f, 1e8f, 1e9f, 1.0f, 10.0f, FLT_MIN, FLT_MAX, 0x1p-149f,
                                    0x1p-100f, 0x1p24f, 0x1p100f, 0.1f, 3.0f};
    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
        uint32_t b0;
        memcpy(&b0, &centres[c], 4);
        for (int64_t j = -2000; j <= 2000; j++) {
            int64_t b = (int64_t)b0 + j;
            if (b < 1 || b >= 0x7f800000) continue;
            check_against_reference(from_bits((uint32_t)b));
            check_against_reference(from_bits((uint32_t)b | 0x80000000u));
        }
    }
    /* Every power of two, where the lower neighbour is closer than the upper. */
    for (uint32_t be = 1; be < 255; be++)
        for (uint32_t b = (be << 23) - 2; b <= (be << 23) + 2; b++) {
            check_against_reference(from_bits(b));
            check_against_reference(from_bits(b | 0x80000000u));
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(special_values),      cmocka_unit_test(known_texts),
        cmocka_unit_test(powers_of_ten),       cmocka_unit_test(random_bit_patterns),
        cmocka_unit_test(neighbourhoods),
    };
    return cmocka_run_group_tests_name("json_num", tests, NULL, NULL);
}
