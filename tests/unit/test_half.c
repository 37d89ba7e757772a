/* test_half.c — the FP16 / BF16 conversions (core/kernels/half.h): the
 * reference against independent oracles (the compiler's _Float16, and
 * nearest-even by comparing distances in double), then every kernel
 * variant this CPU executes against the reference, bit for bit: all 65536
 * FP16 and BF16 patterns, every FP16 value, every midpoint between
 * neighbours and the floats beside it, random float32 patterns, and every
 * length up to 70 at unaligned offsets (the vector loops' tails). */
#include "test_util.h"

#include "cpu.h"
#include "kernels/half.h"

#include <float.h>

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The float32 inputs for the float -> 16-bit tests. */
static float *probe_floats(size_t *n_out) {
    size_t cap = 65536 * 4 + (1u << 20) + 64, n = 0;
    float *f = malloc(cap * sizeof *f);
    assert_non_null(f);
    for (uint32_t h = 0; h < 65536; h++) {
        float v = attn__f16_value((uint16_t)h);
        f[n++] = v;
        if ((h & 0x7fffu) < 0x7c00u) { /* finite: the midpoint to the next magnitude, and beside it */
            double a = v, b = attn__f16_value((uint16_t)(h + 1)); /* 0x7bff + 1 = inf: the overflow midpoint 65520 */
            if ((h & 0x7fffu) == 0x7bffu) b = (h & 0x8000u) ? -65536.0 : 65536.0;
            float mid = (float)((a + b) / 2); /* exact: 12 significant bits */
            f[n++] = mid;
            f[n++] = nextafterf(mid, 0.0f);
            f[n++] = nextafterf(mid, mid < 0 ? -INFINITY : INFINITY);
        }
    }
    uint64_t seed = 7;
    for (size_t i = 0; i < (1u << 20); i++) f[n++] = float_of((uint32_t)tu_next(&seed));
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f,
                             -1e-45f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 5.9604645e-8f, 2.9802322e-8f,
                             2.9802326e-8f, 6.1035156e-5f, 3.3895314e38f, 3.3961776e38f};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) f[n++] = special[i];
    f[n++] = float_of(0x7f800001u); /* signalling NaNs */
    f[n++] = float_of(0xff812345u);
    *n_out = n;
    return f;
}

static void reference_matches_the_compiler_float16(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 x;
        uint16_t hh = (uint16_t)h;
        memcpy(&x, &hh, 2);
        float want = (float)x, got = attn__f16_value(hh);
        if (isnan(want)) {
            assert_true(isnan(got));
            assert_int_equal(bits_of(got) >> 31, h >> 15);
            assert_true(bits_of(got) & 0x400000u); /* quiet */
            assert_int_equal((bits_of(got) >> 13) & 0x3ffu, (h & 0x3ffu) | 0x200u);
        } else if (bits_of(want) != bits_of(got)) {
            fail_msg("FP16 %04x: %.9g, the compiler says %.9g", h, (double)got, (double)want);
        }
    }
    size_t n;
    float *f = probe_floats(&n);
    for (size_t i = 0; i < n; i++) {
        _Float16 x = (_Float16)f[i];
        uint16_t want, got = attn__f16_of(f[i]);
        memcpy(&want, &x, 2);
        if (isnan(f[i])) {
            assert_int_equal(got & 0x7e00u, 0x7e00u);
            assert_int_equal(got >> 15, bits_of(f[i]) >> 31);
        } else if (want != got) {
            fail_msg("%a (%08x) -> FP16 %04x, the compiler says %04x", (double)f[i], bits_of(f[i]), got, want);
        }
    }
    free(f);
}

/* BF16 nearest even by distances in double (every float32 and both
 * candidates are exact doubles). */
static uint16_t bf16_oracle(float v) {
    uint32_t x = bits_of(v);
    uint16_t lo = (uint16_t)(x >> 16), hi = (uint16_t)(lo + 1);
    double dv = v, dl = float_of((uint32_t)lo << 16);
    double dh = (hi & 0x7f80u) == 0x7f80u && (lo & 0x7fu) == 0x7fu
                    ? ((x >> 31) ? -1.0 : 1.0) * ldexp(1.0, 128) /* the next one up is infinity: 2^128 for rounding */
                    : (double)float_of((uint32_t)hi << 16);
    double a = fabs(dv - dl), b = fabs(dh - dv);
    if (a < b || (a == b && !(lo & 1))) return lo;
    return hi;
}

static void bf16_reference_rounds_to_nearest_even(void **state) {
    (void)state;
    size_t n;
    float *f = probe_floats(&n);
    for (size_t i = 0; i < n; i++) {
        uint16_t got = attn__bf16_of(f[i]);
        if (isnan(f[i])) {
            assert_int_equal(got, (uint16_t)((bits_of(f[i]) >> 16) | 0x40u));
            continue;
        }
        if ((bits_of(f[i]) & 0x7fffffffu) == 0x7f800000u) {
            assert_int_equal(got, bits_of(f[i]) >> 16);
            continue;
        }
        uint16_t want = bf16_oracle(f[i]);
        if (got != want) fail_msg("%a -> BF16 %04x, want %04x", (double)f[i], got, want);
    }
    /* every BF16 value and its midpoints */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80u) == 0x7f80u) continue;
        float v = float_of(h << 16), mid = float_of((h << 16) | 0x8000u);
        assert_int_equal(attn__bf16_of(v), h);
        assert_int_equal(attn__bf16_of(mid), bf16_oracle(mid));
        assert_int_equal(attn__bf16_of(mid), (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h);
    }
    free(f);
}

static void every_variant_matches_the_reference(void **state) {
    (void)state;
    uint16_t *all = malloc(65536 * 2), *h_ref = NULL, *h_got = NULL;
    float *f_ref = malloc(65536 * 4), *f_got = malloc(65536 * 4);
    assert_non_null(all);
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    size_t n;
    float *f = probe_floats(&n);
    h_ref = malloc(n * 2);
    h_got = malloc(n * 2);
    int ran = 0;
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        ran++;
        attn__f16_to_f32_ref(all, f_ref, 65536);
        k->f16_to_f32(all, f_got, 65536);
        for (uint32_t h = 0; h < 65536; h++)
            if (bits_of(f_ref[h]) != bits_of(f_got[h]))
                fail_msg("%s: FP16 %04x -> %08x, the reference says %08x", k->name, h, bits_of(f_got[h]),
                         bits_of(f_ref[h]));
        attn__bf16_to_f32_ref(all, f_ref, 65536);
        k->bf16_to_f32(all, f_got, 65536);
        for (uint32_t h = 0; h < 65536; h++) {
            assert_int_equal(bits_of(f_got[h]), h << 16);
            assert_int_equal(bits_of(f_ref[h]), h << 16);
        }
        attn__f32_to_f16_ref(f, h_ref, n);
        k->f32_to_f16(f, h_got, n);
        for (size_t i = 0; i < n; i++)
            if (h_ref[i] != h_got[i])
                fail_msg("%s: %a (%08x) -> FP16 %04x, the reference says %04x", k->name, (double)f[i], bits_of(f[i]),
                         h_got[i], h_ref[i]);
        attn__f32_to_bf16_ref(f, h_ref, n);
        k->f32_to_bf16(f, h_got, n);
        for (size_t i = 0; i < n; i++)
            if (h_ref[i] != h_got[i])
                fail_msg("%s: %a (%08x) -> BF16 %04x, the reference says %04x", k->name, (double)f[i], bits_of(f[i]),
                         h_got[i], h_ref[i]);
        /* tails: every length and offset, nothing written past the end */
        for (size_t off = 0; off < 3; off++)
            for (size_t len = 0; len <= 70; len++) {
                uint16_t hb[80];
                float fb[80];
                for (size_t i = 0; i < 80; i++) hb[i] = 0xdead, fb[i] = -7.0f;
                k->f16_to_f32(all + 0x3c00 + off, fb + off, len);
                k->f32_to_f16(f + 100 + off, hb + off, len);
                for (size_t i = 0; i < 80; i++) {
                    int in = i >= off && i < off + len;
                    if (in) {
                        assert_int_equal(bits_of(fb[i]), bits_of(attn__f16_value((uint16_t)(0x3c00 + i))));
                        assert_int_equal(hb[i], attn__f16_of(f[100 + i]));
                    } else {
                        assert_true(fb[i] == -7.0f);
                        assert_int_equal(hb[i], 0xdead);
                    }
                }
            }
    }
    assert_true(ran >= 1);
    free(f);
    free(all);
    free(f_ref);
    free(f_got);
    free(h_ref);
    free(h_got);
}

/* The plain names run the chosen variant and say which one. */
static void the_plain_names_and_cpu_info(void **state) {
    (void)state;
    uint16_t h[3] = {0x3c00, 0xc000, 0x7bff}, back[3];
    float f[3];
    attn__f16_to_f32(h, f, 3);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f);
    attn__f32_to_f16(f, back, 3);
    assert_memory_equal(h, back, sizeof h);
    float g[2] = {1.00390625f, 3.0f}; /* 1 + 2^-8: a BF16 tie, to even (1.0) */
    attn__f32_to_bf16(g, back, 2);
    assert_int_equal(back[0], 0x3f80);
    assert_int_equal(back[1], 0x4040);
    const char *key, *val, *found = NULL;
    for (size_t i = 0; attn_cpu_info(i, &key, &val); i++)
        if (!strcmp(key, "kernel_convert")) found = val;
    assert_non_null(found);
    assert_string_equal(found, attn__kernels()->name);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_matches_the_compiler_float16),
        cmocka_unit_test(bf16_reference_rounds_to_nearest_even),
        cmocka_unit_test(every_variant_matches_the_reference),
        cmocka_unit_test(the_plain_names_and_cpu_info),
    };
    return cmocka_run_group_tests_name("half", tests, NULL, NULL);
}
