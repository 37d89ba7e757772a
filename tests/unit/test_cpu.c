/* test_cpu.c — run-time kernel selection (core/cpu.c): the softmax loops of
 * every variant this CPU executes against a double-precision softmax; the
 * choice made from cpuid, ATTN_CPU, ATTN_CPU_HIDE and ATTN_GEMM, each in a
 * child process (the selection is made once per process, so this test's
 * own process never makes it: only attn__kernels_at / _runs are called). */
#include "test_util.h"

#include "cpu.h"
#include "kernels/fast_exp.h"
#include "kernels/kernels.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void softmax_of_every_variant_matches_double(void **state) {
    (void)state;
    static const size_t ns[] = {1, 3, 4, 7, 8, 15, 16, 17, 32, 33, 64, 100, 128, 256, 1000};
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        uint64_t seed = 3;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            size_t n = ns[t];
            float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
            double mx = -INFINITY, sum = 0.0;
            for (size_t i = 0; i < n; i++) {
                x[i] = y[i] = 20.0f * tu_rand(&seed);
                mx = x[i] > mx ? x[i] : mx;
            }
            x[n / 2] = y[n / 2] = -INFINITY; /* a masked score: exactly 0 */
            for (size_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
            k->softmax_row(y, n);
            for (size_t i = 0; i < n; i++) {
                double want = n == 1 ? NAN : exp((double)x[i] - mx) / sum;
                if (n == 1) assert_true(isnan(y[i])); /* the only score is -inf: NaN, as torch */
                else if (!(fabs(y[i] - want) <= 1e-5 * want + 1e-30))
                    fail_msg("%s n=%zu: softmax[%zu] = %.9g, want %.9g", k->name, n, i, (double)y[i], want);
            }
            for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] / 4.0f : x[i];
            k->elu1(y, n);
            for (size_t i = 0; i < n; i++) {
                double v = x[i] > 0.0f ? x[i] / 4.0 : x[i], want = v > 0 ? v + 1.0 : exp(v);
                if (!(fabs(y[i] - want) <= 1e-6 * want))
                    fail_msg("%s n=%zu: elu1[%zu] = %.9g, want %.9g", k->name, n, i, (double)y[i], want);
            }
            /* softmax_row_d: the same softmax, summed in double */
            for (size_t i = 0; i < n; i++) y[i] = x[i];
            k->softmax_row_d(y, n);
            for (size_t i = 0; i < n; i++) {
                double want = n == 1 ? NAN : exp((double)x[i] - mx) / sum;
                if (n == 1) assert_true(isnan(y[i]));
                else if (!(fabs(y[i] - want) <= 1e-5 * want + 1e-30)) /* x - max rounds to float */
                    fail_msg("%s n=%zu: softmax_row_d[%zu] = %.9g, want %.9g", k->name, n, i, (double)y[i], want);
            }
            /* softmax_cols: x as a (n, 3) block of row stride 5, column c
             * shifted by c; the unused columns stay as they were */
            float *blk = malloc(n * 5 * sizeof *blk), cmx[3];
            double csum[3];
            for (size_t r = 0; r < n; r++)
                for (size_t c = 0; c < 5; c++) blk[r * 5 + c] = x[r] == -INFINITY ? -INFINITY : x[r] + (float)c;
            k->softmax_cols(blk, n, 3, 5, 1.0f, cmx, csum);
            for (size_t r = 0; r < n; r++)
                for (size_t c = 0; c < 5; c++) {
                    double got = blk[r * 5 + c];
                    if (c >= 3) {
                        assert_true(x[r] == -INFINITY ? got == -INFINITY : got == (double)(x[r] + (float)c));
                        continue;
                    }
                    double want = n == 1 ? NAN : exp((double)x[r] - mx) / sum;
                    if (n == 1) assert_true(isnan(got));
                    else if (!(fabs(got - want) <= 1e-5 * want + 1e-30))
                        fail_msg("%s n=%zu: softmax_cols[%zu,%zu] = %.9g, want %.9g", k->name, n, r, c, got, want);
                }
            free(blk);
            /* softmax_rows_d and softmax_cols with a scale: softmax(x · 0.5)
             * of x as one row (rows_d: 2 rows of stride n, the same) */
            float *two = malloc(2 * n * sizeof *two);
            double hmx = -INFINITY, hsum = 0.0;
            for (size_t i = 0; i < n; i++) {
                two[i] = two[n + i] = x[i];
                double h = (double)(x[i] * 0.5f);
                hmx = h > hmx ? h : hmx;
            }
            for (size_t i = 0; i < n; i++) hsum += exp((double)(x[i] * 0.5f) - hmx);
            k->softmax_rows_d(two, 2, n, n, 0.5f);
            float *col = malloc(n * sizeof *col);
            for (size_t i = 0; i < n; i++) col[i] = x[i];
            k->softmax_cols(col, n, 1, 1, 0.5f, cmx, csum);
            for (size_t i = 0; i < n; i++) {
                double want = n == 1 ? NAN : exp((double)(x[i] * 0.5f) - hmx) / hsum;
                const float got[3] = {two[i], two[n + i], col[i]};
                for (int g = 0; g < 3; g++) {
                    if (n == 1) assert_true(isnan(got[g]));
                    else if (!(fabs(got[g] - want) <= 1e-5 * want + 1e-30))
                        fail_msg("%s n=%zu: scaled softmax %d [%zu] = %.9g, want %.9g", k->name, n, g, i,
                                 (double)got[g], want);
                }
            }
            free(col);
            free(two);
            free(x);
            free(y);
        }
    }
}

/* softmax_rows_d and softmax_row keep short rows (whole vectors) in
 * registers: rows_d gives the results of scaling and softmax_row_d,
 * non-finite rows included (all -inf: NaN; a +inf: NaN; a NaN: NaN; a -inf
 * among finite: exactly 0), and softmax_row the same special cases. */
static void rows_d_short_rows_agree(void **state) {
    (void)state;
    static const size_t ns[] = {4, 8, 16, 32, 48, 64, 128, 256, 512};
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        uint64_t seed = 5;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            size_t n = ns[t], rows = 5, ld = n + 3;
            float *a = malloc(rows * ld * sizeof *a), *b = malloc(n * sizeof *b);
            for (size_t i = 0; i < rows * ld; i++) a[i] = 8.0f * tu_rand(&seed);
            for (size_t i = 0; i < n; i++) a[i] = -INFINITY; /* row 0 */
            a[ld + n / 3] = INFINITY;                        /* row 1 */
            a[2 * ld + n - 1] = NAN;                         /* row 2 */
            a[3 * ld + 1] = -INFINITY;                       /* row 3 */
            float *orig = malloc(rows * ld * sizeof *orig);
            memcpy(orig, a, rows * ld * sizeof *a);
            k->softmax_rows_d(a, rows, n, ld, 0.75f);
            for (size_t r = 0; r < rows; r++) {
                for (size_t i = 0; i < n; i++) b[i] = orig[r * ld + i] * 0.75f;
                k->softmax_row_d(b, n);
                for (size_t i = 0; i < n; i++) {
                    float got = a[r * ld + i], want = b[i];
                    if (isnan(want) != isnan(got) || (!isnan(want) && !(fabsf(got - want) <= 1e-6f * want + 1e-30f)))
                        fail_msg("%s n=%zu row %zu [%zu]: %.9g, want %.9g", k->name, n, r, i, (double)got, (double)want);
                }
                for (size_t i = n; i < ld; i++) assert_true(a[r * ld + i] == orig[r * ld + i]); /* past the row */
            }
            assert_true(a[3 * ld + 1] == 0.0f);
            /* softmax_row's whole-vector rows: all -inf, a +inf, a NaN give
             * NaN everywhere (torch); a -inf among finite scores exactly 0 */
            for (int kind = 0; kind < 4; kind++) {
                for (size_t i = 0; i < n; i++) b[i] = kind == 0 ? -INFINITY : 8.0f * tu_rand(&seed);
                if (kind == 1) b[n / 2] = INFINITY;
                if (kind == 2) b[n - 1] = NAN;
                if (kind == 3) b[0] = -INFINITY;
                k->softmax_row(b, n);
                double total = 0.0;
                for (size_t i = 0; i < n; i++) {
                    if (kind < 3) assert_true(isnan(b[i]));
                    total += b[i];
                }
                if (kind == 3) {
                    assert_true(b[0] == 0.0f);
                    assert_true(fabs(total - 1.0) <= 1e-5);
                }
            }
            free(a);
            free(b);
            free(orig);
        }
    }
}

/* softmax_cols keeps up to 4 vectors of columns in registers: against
 * double arithmetic column by column, a column of -inf, one with a +inf and
 * one with a NaN all NaN (as torch), the floats past the n columns untouched. */
static void cols_of_whole_vectors_agree(void **state) {
    (void)state;
    static const size_t ns[] = {4, 8, 12, 16, 32, 48, 64, 80, 128};
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        uint64_t seed = 9;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++)
            for (int nonfinite = 0; nonfinite < 2; nonfinite++) {
                size_t n = ns[t], rows = 37, ld = n + 5;
                float *a = malloc(rows * ld * sizeof *a), *orig = malloc(rows * ld * sizeof *orig), mx[128];
                double sum[128];
                for (size_t i = 0; i < rows * ld; i++) a[i] = 8.0f * tu_rand(&seed);
                if (nonfinite) {
                    for (size_t r = 0; r < rows; r++) a[r * ld] = -INFINITY; /* column 0 */
                    a[7 * ld + 1] = INFINITY;                                 /* column 1 */
                    a[3 * ld + 2] = NAN;                                      /* column 2 */
                }
                memcpy(orig, a, rows * ld * sizeof *a);
                k->softmax_cols(a, rows, n, ld, 0.75f, mx, sum);
                for (size_t c = 0; c < n; c++) {
                    double m = -INFINITY, z = 0.0;
                    bool bad = nonfinite && c < 3;
                    for (size_t r = 0; r < rows; r++) {
                        double v = (double)(orig[r * ld + c] * 0.75f);
                        m = v > m ? v : m;
                    }
                    for (size_t r = 0; r < rows; r++) z += exp((double)(orig[r * ld + c] * 0.75f) - m);
                    for (size_t r = 0; r < rows; r++) {
                        float got = a[r * ld + c];
                        if (bad) {
                            if (!isnan(got))
                                fail_msg("%s n=%zu col %zu row %zu: %.9g, want NaN", k->name, n, c, r, (double)got);
                            continue;
                        }
                        double want = exp((double)(orig[r * ld + c] * 0.75f) - m) / z;
                        if (!(fabs(got - want) <= 1e-6 * want + 1e-30))
                            fail_msg("%s n=%zu col %zu row %zu: %.9g, want %.9g", k->name, n, c, r, (double)got, want);
                    }
                }
                for (size_t r = 0; r < rows; r++)
                    for (size_t c = n; c < ld; c++) assert_true(a[r * ld + c] == orig[r * ld + c]);
                free(a);
                free(orig);
            }
    }
}

/* What a child with these environment variables reports: the variant in
 * use, attn_cpu_check's status and message, the gemm choice. */
typedef struct outcome {
    char variant[16];
    int status;
    char msg[256];
    char gemm[32];
} outcome;

/* fast_exp2 (the fused kernel's exponential) against libm's exp2 on every
 * 97th float in [-130, 1], and its ends: 1.2e-7 relative (an ulp) where it is
 * normal, exactly 0 below -126, exact powers of 2 at integers, NaN kept. */
static void fast_exp2_is_accurate(void **state) {
    (void)state;
    double worst = 0;
    float lo = -130.0f, hi = 1.0f;
    uint32_t blo, bhi;
    memcpy(&blo, &lo, 4);
    memcpy(&bhi, &hi, 4);
    /* negative floats: larger bit patterns are more negative */
    for (uint32_t b = blo;; b = b >= 97 ? b - 97 : 0) {
        float x;
        memcpy(&x, &b, 4);
        if (!(x < 0.0f)) break;
        float y = fast_exp2(x);
        if (x < -126.0f) {
            if (y != 0.0f) fail_msg("fast_exp2(%a) = %a, not 0", (double)x, (double)y);
        } else {
            double want = exp2((double)x), err = fabs((double)y - want) / want;
            if (err > worst) worst = err;
        }
        if (b < 97) break;
    }
    for (uint32_t b = 0; b <= bhi; b += 97) {
        float x;
        memcpy(&x, &b, 4);
        double want = exp2((double)x), err = fabs((double)fast_exp2(x) - want) / want;
        if (err > worst) worst = err;
    }
    if (!(worst < 1.2e-7)) fail_msg("fast_exp2: relative error %g", worst);
    for (int k = -126; k <= 127; k++) assert_true(fast_exp2((float)k) == ldexpf(1.0f, k));
    assert_true(fast_exp2(-INFINITY) == 0.0f);
    assert_true(isnan(fast_exp2(NAN)));
    assert_true(fast_exp2(-126.0001f) == 0.0f);
}

/* One chunk of full_exp2_of_every_variant: k's full_exp2 on x[0 .. n),
 * each lane's bits against the scalar tail's (a call of one), and 0 below
 * -126; *worst gets the largest relative error elsewhere. */
static void exp2_chunk(const attn_kernels *k, const float *x, size_t n, double *worst) {
    float y[4096];
    memcpy(y, x, n * sizeof *x);
    k->full_exp2(y, n);
    for (size_t i = 0; i < n; i++) {
        float z = x[i];
        k->full_exp2(&z, 1);
        if (memcmp(&z, &y[i], 4) != 0)
            fail_msg("%s: 2^%a: vector %a, scalar %a", k->name, (double)x[i], (double)y[i], (double)z);
        if (x[i] < -126.0f) {
            if (y[i] != 0.0f) fail_msg("%s: 2^%a = %a, not 0", k->name, (double)x[i], (double)y[i]);
            continue;
        }
        double want = exp2((double)x[i]), err = fabs((double)y[i] - want) / want;
        if (err > *worst) *worst = err;
    }
}

/* Every variant's full_exp2 (the fused kernel's vexp2 and its scalar tail)
 * on every 61st float of [-130, 8]: within an ulp (1.2e-7) of exp2 where
 * the result is normal, exactly 0 below -126, and the vector lanes give the
 * bits the scalar tail gives.  -inf gives 0, NaN stays NaN. */
static void full_exp2_of_every_variant(void **state) {
    (void)state;
    float lo = -130.0f, hi = 8.0f, x[4093]; /* not a whole number of vectors: a tail too */
    uint32_t bneg, bpos;
    memcpy(&bneg, &lo, 4);
    memcpy(&bpos, &hi, 4);
    const size_t cap = sizeof x / sizeof *x;
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        double worst = 0;
        size_t n = 0;
        /* the negative floats from -130 towards -0 (their bit patterns go
         * down), then +0 up to 8 */
        for (uint32_t b = bneg; b > 0x80000000u; b = b - 0x80000000u > 61 ? b - 61 : 0x80000000u) {
            memcpy(&x[n++], &b, 4);
            if (n == cap) exp2_chunk(k, x, n, &worst), n = 0;
        }
        for (uint32_t b = 0; b <= bpos; b += 61) {
            memcpy(&x[n++], &b, 4);
            if (n == cap) exp2_chunk(k, x, n, &worst), n = 0;
        }
        exp2_chunk(k, x, n, &worst);
        if (!(worst < 1.2e-7)) fail_msg("%s: full_exp2's relative error %g", k->name, worst);
        float sp[32];
        for (int i = 0; i < 32; i++) sp[i] = (float)(i - 16);
        sp[3] = -INFINITY;
        sp[5] = NAN;
        sp[7] = -126.0001f;
        k->full_exp2(sp, 32);
        for (int i = 0; i < 32; i++) {
            if (i == 3 || i == 7) assert_true(sp[i] == 0.0f);
            else if (i == 5) assert_true(isnan(sp[i]));
            else assert_true(sp[i] == ldexpf(1.0f, i - 16));
        }
    }
}

/* Every variant's full_exp2_pass (the exponential pass's vexp2_nonpos) on
 * every 61st float of [-130, 0] and on -0, -inf and NaN: vexp2's bits
 * (full_exp2's) on [-126, 0], exactly 0 below -126.5 and for -inf, at most
 * 2^-126 between, NaN for NaN; a tail shorter than a vector too. */
static void full_exp2_pass_of_every_variant(void **state) {
    (void)state;
    enum { CAP = 4093 };
    static float x[CAP], y[CAP], z[CAP];
    float lo = -130.0f;
    uint32_t bneg;
    memcpy(&bneg, &lo, 4);
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        size_t checked = 0;
        uint32_t b = bneg;
        for (bool more = true; more;) {
            size_t n = 0;
            for (; n < CAP && more; n++) {
                memcpy(&x[n], &b, 4);
                if (b - 0x80000000u > 61) b -= 61;
                else more = false; /* the last one: -0 */
                if (!more) x[n] = -0.0f;
            }
            if (!more && n + 3 <= CAP) {
                x[n++] = -INFINITY;
                x[n++] = NAN;
                x[n++] = -126.0f;
            }
            memcpy(y, x, n * sizeof *x);
            memcpy(z, x, n * sizeof *x);
            k->full_exp2_pass(y, n);
            k->full_exp2(z, n);
            for (size_t i = 0; i < n; i++, checked++) {
                float xi = x[i];
                if (isnan(xi)) {
                    if (!isnan(y[i])) fail_msg("%s: 2^NaN = %a", k->name, (double)y[i]);
                } else if (xi >= -126.0f) {
                    if (memcmp(&y[i], &z[i], 4) != 0)
                        fail_msg("%s: 2^%a: pass %a, vexp2 %a", k->name, (double)xi, (double)y[i], (double)z[i]);
                } else if (xi < -126.5f) {
                    if (y[i] != 0.0f) fail_msg("%s: 2^%a = %a, not 0", k->name, (double)xi, (double)y[i]);
                } else if (!(y[i] >= 0.0f && y[i] <= 0x1p-126f)) {
                    fail_msg("%s: 2^%a = %a, above 2^-126", k->name, (double)xi, (double)y[i]);
                }
            }
        }
        assert_true(checked > 100000);
        float t[3] = {-1.0f, -INFINITY, 0.0f}; /* a tail alone */
        k->full_exp2_pass(t, 3);
        assert_true(t[0] == 0.5f && t[1] == 0.0f && t[2] == 1.0f);
    }
}

static outcome in_child(const char *cpu, const char *hide, const char *gemm) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        outcome o = {0};
        unsetenv("ATTN_CPU"); /* the test's own environment (CI forces variants) */
        unsetenv("ATTN_CPU_HIDE");
        unsetenv("ATTN_GEMM");
        if (cpu) setenv("ATTN_CPU", cpu, 1);
        if (hide) setenv("ATTN_CPU_HIDE", hide, 1);
        if (gemm) setenv("ATTN_GEMM", gemm, 1);
        attn_error e = {0};
        o.status = attn_cpu_check(&e);
        snprintf(o.msg, sizeof o.msg, "%s", e.msg);
        snprintf(o.variant, sizeof o.variant, "%s", attn__kernels()->name);
        const char *key, *value;
        for (size_t i = 0; attn_cpu_info(i, &key, &value); i++)
            if (!strcmp(key, "kernel_gemm")) snprintf(o.gemm, sizeof o.gemm, "%s", value);
        /* the kernels in use still run */
        float x[3] = {0.0f, 1.0f, 2.0f};
        attn__softmax_row(x, 3);
        if (!(x[2] > x[1] && x[1] > x[0])) o.status = 99;
        ssize_t w = write(fd[1], &o, sizeof o);
        _exit(w == (ssize_t)sizeof o ? 0 : 1);
    }
    close(fd[1]);
    outcome o;
    assert_int_equal(read(fd[0], &o, sizeof o), (ssize_t)sizeof o);
    close(fd[0]);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    return o;
}

static const attn_kernels *best(void) {
    for (size_t i = 0; attn__kernels_at(i); i++)
        if (attn__kernels_runs(attn__kernels_at(i))) return attn__kernels_at(i);
    return NULL;
}

static void selection_and_forcing(void **state) {
    (void)state;
    const attn_kernels *b = best();
    assert_non_null(b);
    outcome o = in_child(NULL, NULL, NULL);
    assert_int_equal(o.status, ATTN_OK);
    assert_string_equal(o.variant, b->name);
    o = in_child("auto", NULL, NULL);
    assert_string_equal(o.variant, b->name);
    /* each variant this CPU executes, forced */
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        o = in_child(k->name, NULL, NULL);
        assert_int_equal(o.status, ATTN_OK);
        assert_string_equal(o.variant, k->name);
    }
    /* unknown names are refused, and the best variant runs meanwhile */
    o = in_child("avx9000", NULL, NULL);
    assert_int_equal(o.status, ATTN_E_INVALID);
    assert_non_null(strstr(o.msg, "ATTN_CPU=avx9000: unknown"));
    assert_string_equal(o.variant, b->name);
    o = in_child(NULL, NULL, "mkl");
    assert_int_equal(o.status, ATTN_E_INVALID);
    assert_non_null(strstr(o.msg, "ATTN_GEMM=mkl"));
    o = in_child(NULL, NULL, "openblas");
    assert_int_equal(o.status, ATTN_OK);
    assert_string_equal(o.gemm, "openblas");
    o = in_child(NULL, NULL, "attn");
    char want[32];
    snprintf(want, sizeof want, "attn-%s", b->name);
    assert_string_equal(o.gemm, want);
}

/* A CPU without a variant's features (hidden): that variant is refused when
 * forced, never executed, and the next one down is chosen. */
static void a_variant_the_cpu_lacks_is_refused(void **state) {
    (void)state;
    for (size_t vi = 0; attn__kernels_at(vi + 1); vi++) {
        const attn_kernels *k = attn__kernels_at(vi), *next = attn__kernels_at(vi + 1);
        if (!attn__kernels_runs(k)) continue;
        char hide[128];
        snprintf(hide, sizeof hide, "%s", k->needs);
        char *sp = strchr(hide, ' ');
        if (sp) *sp = '\0'; /* its first feature, which the next variant does not need */
        outcome o = in_child(k->name, hide, NULL);
        assert_int_equal(o.status, ATTN_E_INVALID);
        assert_non_null(strstr(o.msg, "this CPU cannot execute it"));
        assert_string_equal(o.variant, next->name);
        o = in_child(NULL, hide, NULL);
        assert_int_equal(o.status, ATTN_OK);
        assert_string_equal(o.variant, next->name);
    }
}

/* A model cannot be built while the selection is refused. */
static void refused_selection_fails_model_new(void **state) {
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("ATTN_CPU", "avx9000", 1);
        unsetenv("ATTN_GEMM");
        attn_model *m = NULL;
        attn_error e = {0};
        attn_status st = attn_model_new("full", NULL, NULL, &m, &e);
        _exit(st == ATTN_E_INVALID && m == NULL && strstr(e.msg, "ATTN_CPU") ? 0 : 1);
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* ---- attn_cpu_count over a fake cgroup folder (ATTN_CGROUP_ROOT) ---- */

static void put(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int affinity(void) {
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

static int min_int(int a, int b) { return a < b ? a : b; }

static void cpu_count_follows_the_cgroup_quota(void **state) {
    (void)state;
    char root[] = "/tmp/attn-cgroup-XXXXXX", v1[64], own[64];
    assert_non_null(mkdtemp(root));
    setenv("ATTN_CGROUP_ROOT", root, 1);
    int aff = affinity();
    assert_int_equal(attn_cpu_count(), aff); /* no quota file at all */
    put(root, "cpu.max", "max 100000\n");
    assert_int_equal(attn_cpu_count(), aff);
    put(root, "cpu.max", "100000 100000\n"); /* 1 CPU */
    assert_int_equal(attn_cpu_count(), 1);
    put(root, "cpu.max", "250000 100000\n"); /* 2.5 CPUs: 3 threads, unless fewer cores */
    assert_int_equal(attn_cpu_count(), min_int(aff, 3));
    put(root, "cpu.max", "max 100000\n");
    /* v1: cpu/cpu.cfs_quota_us over cpu.cfs_period_us */
    snprintf(v1, sizeof v1, "%s/cpu", root);
    assert_int_equal(mkdir(v1, 0700), 0);
    put(v1, "cpu.cfs_quota_us", "-1\n");
    put(v1, "cpu.cfs_period_us", "100000\n");
    assert_int_equal(attn_cpu_count(), aff);
    put(v1, "cpu.cfs_quota_us", "50000\n"); /* half a CPU: one thread */
    assert_int_equal(attn_cpu_count(), 1);
    put(v1, "cpu.cfs_quota_us", "garbage\n");
    assert_int_equal(attn_cpu_count(), aff);
    /* the process's own cgroups below the root (a fake /proc/self/cgroup):
     * the smallest quota on the way up binds */
    char self[96], p[600];
    snprintf(self, sizeof self, "%s/self", root);
    put(root, "self", "1:cpu,cpuacct:/pod\n0::/pod/box\n");
    setenv("ATTN_CGROUP_SELF", self, 1);
    snprintf(own, sizeof own, "%s/pod", root);
    assert_int_equal(mkdir(own, 0700), 0);
    snprintf(p, sizeof p, "%s/pod/box", root);
    assert_int_equal(mkdir(p, 0700), 0);
    put(p, "cpu.max", "300000 100000\n");
    assert_int_equal(attn_cpu_count(), min_int(aff, 3));
    put(own, "cpu.max", "100000 100000\n"); /* the parent's quota binds its child */
    assert_int_equal(attn_cpu_count(), 1);
    put(own, "cpu.max", "max 100000\n");
    assert_int_equal(attn_cpu_count(), min_int(aff, 3));
    snprintf(v1, sizeof v1, "%s/cpu/pod", root); /* v1 below its own mount */
    assert_int_equal(mkdir(v1, 0700), 0);
    put(v1, "cpu.cfs_quota_us", "100000\n");
    put(v1, "cpu.cfs_period_us", "100000\n");
    assert_int_equal(attn_cpu_count(), 1);
    const char *nested[] = {"pod/box/cpu.max", "pod/cpu.max", "cpu/pod/cpu.cfs_quota_us", "cpu/pod/cpu.cfs_period_us",
                            "pod/box", "pod", "cpu/pod", "self"};
    for (size_t i = 0; i < sizeof nested / sizeof *nested; i++) {
        snprintf(p, sizeof p, "%s/%s", root, nested[i]);
        assert_int_equal(remove(p), 0);
    }
    unsetenv("ATTN_CGROUP_SELF");
    snprintf(v1, sizeof v1, "%s/cpu", root);
    const char *files[] = {"cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpu.max"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        unlink(p);
    }
    rmdir(v1);
    rmdir(root);
    unsetenv("ATTN_CGROUP_ROOT");
}

/* kernels/rowops.c of every variant against plain references: the exp sums
 * and the gate in double (fast_exp's 1.2e-7 plus float rounding), the dot
 * product in double, the running max, the positional row sums and the
 * Hamming nearest centroid by plain loops (exactly; ties to the lowest
 * index). */
static uint64_t u64(uint64_t *seed) {
    uint64_t hi = tu_next(seed);
    return hi << 11 ^ tu_next(seed);
}

static void rowops_of_every_variant(void **state) {
    (void)state;
    static const size_t ns[] = {1, 3, 8, 15, 16, 17, 31, 64, 100, 257};
    for (size_t vi = 0; attn__kernels_at(vi); vi++) {
        const attn_kernels *k = attn__kernels_at(vi);
        if (!attn__kernels_runs(k)) continue;
        uint64_t seed = 11;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            size_t n = ns[t];
            float *kk = malloc(n * sizeof *kk), *ms = malloc(n * sizeof *ms), *v = malloc(n * sizeof *v);
            float *sum = malloc(n * sizeof *sum), *acc = malloc(n * sizeof *acc), *o = malloc(n * sizeof *o);
            for (size_t i = 0; i < n; i++) {
                kk[i] = 10.0f * tu_rand(&seed);
                ms[i] = 5.0f + 2.0f * tu_rand(&seed);
                v[i] = tu_rand(&seed);
                sum[i] = 0.5f;
                acc[i] = -0.25f;
            }
            kk[n / 2] = -INFINITY; /* a masked key: adds exactly 0 */
            k->exp_sum_acc(kk, ms, v, sum, acc, n);
            for (size_t i = 0; i < n; i++) {
                double y = exp((double)kk[i] - ms[i]), ws = 0.5 + y, wa = -0.25 + y * v[i];
                if (!(fabs(sum[i] - ws) <= 1e-6 * fabs(ws)) || !(fabs(acc[i] - wa) <= 1e-6 * (fabs(wa) + y)))
                    fail_msg("%s n=%zu: exp_sum_acc[%zu] = %.9g, %.9g; want %.9g, %.9g", k->name, n, i,
                             (double)sum[i], (double)acc[i], ws, wa);
            }
            /* exp_weight_acc: m = kk (one -inf: weight exactly 0, also
             * against an M of -inf, where exp(-inf - -inf) would be NaN) */
            for (size_t i = 0; i < n; i++) sum[i] = 0.5f, acc[i] = -0.25f, o[i] = ms[i];
            o[n / 2] = -INFINITY;
            k->exp_weight_acc(kk, o, v, ms, sum, acc, n);
            for (size_t i = 0; i < n; i++) {
                double w = i == n / 2 ? 0.0 : exp((double)kk[i] - o[i]), ws = 0.5 + w * v[i], wa = -0.25 + w * ms[i];
                if (!(fabs(sum[i] - ws) <= 1e-6 * (fabs(ws) + fabs(w * v[i]))) ||
                    !(fabs(acc[i] - wa) <= 1e-6 * (fabs(wa) + fabs(w * ms[i]))))
                    fail_msg("%s n=%zu: exp_weight_acc[%zu] = %.9g, %.9g; want %.9g, %.9g", k->name, n, i,
                             (double)sum[i], (double)acc[i], ws, wa);
            }
            for (size_t i = 0; i < n; i++) o[i] = i % 4 == 1 ? NAN : v[i];
            k->max_into(o, kk, n);
            for (size_t i = 0; i < n; i++) {
                float want = i % 4 == 1 ? NAN : kk[i] > v[i] ? kk[i] : v[i]; /* NaN m stays: kk > NaN is false */
                if (!(o[i] == want || (isnan(o[i]) && isnan(want))))
                    fail_msg("%s n=%zu: max_into[%zu] = %.9g, want %.9g", k->name, n, i, (double)o[i], (double)want);
            }
            k->gate_div(v, kk, o, n);
            for (size_t i = 0; i < n; i++) {
                double want = v[i] / (1.0 + exp(-(double)kk[i])); /* kk = -inf: 0 */
                if (!(fabs(o[i] - want) <= 1e-6 * fabs(want) + 1e-30))
                    fail_msg("%s n=%zu: gate_div[%zu] = %.9g, want %.9g", k->name, n, i, (double)o[i], want);
                /* and the bits of the scalar fast_exp loop, vector lanes
                 * and tail alike */
                float fw = v[i] / (1.0f + fast_exp(-kk[i]));
                if (memcmp(&fw, &o[i], 4) != 0)
                    fail_msg("%s n=%zu: gate_div[%zu] = %a, the scalar loop %a", k->name, n, i, (double)o[i],
                             (double)fw);
            }
            for (size_t i = 0; i < n; i++) sum[i] = 0.5f, acc[i] = -0.25f;
            k->exp_sum_acc(kk, ms, v, sum, acc, n);
            for (size_t i = 0; i < n; i++) {
                float y = fast_exp(kk[i] - ms[i]), fs = 0.5f + y, fa = -0.25f + y * v[i];
                if (memcmp(&fs, &sum[i], 4) != 0 || memcmp(&fa, &acc[i], 4) != 0)
                    fail_msg("%s n=%zu: exp_sum_acc[%zu] = %a, %a; the scalar loop %a, %a", k->name, n, i,
                             (double)sum[i], (double)acc[i], (double)fs, (double)fa);
            }
            /* axpy, vmul, scale: exactly the plain loops (one rounding per
             * operation, no contraction) */
            for (size_t i = 0; i < n; i++) o[i] = ms[i];
            k->axpy(o, 0.37f, v, n);
            for (size_t i = 0; i < n; i++)
                if (o[i] != ms[i] + 0.37f * v[i])
                    fail_msg("%s n=%zu: axpy[%zu] = %.9g, want %.9g", k->name, n, i, (double)o[i],
                             (double)(ms[i] + 0.37f * v[i]));
            k->vmul(o, v, ms, n);
            for (size_t i = 0; i < n; i++)
                if (o[i] != v[i] * ms[i])
                    fail_msg("%s n=%zu: vmul[%zu] = %.9g, want %.9g", k->name, n, i, (double)o[i], (double)(v[i] * ms[i]));
            k->scale(o, -1.7f, n);
            for (size_t i = 0; i < n; i++)
                if (o[i] != (v[i] * ms[i]) * -1.7f)
                    fail_msg("%s n=%zu: scale[%zu] = %.9g, want %.9g", k->name, n, i, (double)o[i],
                             (double)((v[i] * ms[i]) * -1.7f));
            kk[n / 2] = 1.0f;
            double dw = 0.0, da = 0.0;
            for (size_t i = 0; i < n; i++) dw += (double)kk[i] * v[i], da += fabs((double)kk[i] * v[i]);
            float d = k->dot(kk, v, n);
            if (!(fabs(d - dw) <= 1e-6 * da + 1e-30)) fail_msg("%s n=%zu: dot = %.9g, want %.9g", k->name, n, (double)d, dw);
            free(kk), free(ms), free(v), free(sum), free(acc), free(o);
        }
        /* pos_rows: every stride code for 1 and 2 parameters, exactly the
         * plain sums (the same additions in the same order) */
        for (int np = 1; np <= 2; np++)
            for (unsigned code = 0; code < (np == 1 ? 4u : 8u); code++) {
                const size_t W = 37, rows = 5, xs = 41, s0 = 39, s1 = 43;
                const size_t xw = np == 1 ? code >> 1 : code >> 2, w0 = np == 1 ? code & 1 : (code >> 1) & 1,
                             w1 = code & 1;
                float xb[5 * 41], p0b[5 * 39], p1b[5 * 43], ob[5 * 37];
                for (size_t i = 0; i < sizeof xb / sizeof *xb; i++) xb[i] = tu_rand(&seed);
                for (size_t i = 0; i < sizeof p0b / sizeof *p0b; i++) p0b[i] = tu_rand(&seed);
                for (size_t i = 0; i < sizeof p1b / sizeof *p1b; i++) p1b[i] = tu_rand(&seed);
                k->pos_rows(np, code, ob, xb, p0b, np == 2 ? p1b : NULL, W, rows, xs, s0, s1);
                for (size_t r = 0; r < rows; r++)
                    for (size_t c = 0; c < W; c++) {
                        float want = xb[r * xs + c * xw] + p0b[r * s0 + c * w0];
                        if (np == 2) want += p1b[r * s1 + c * w1];
                        if (ob[r * W + c] != want)
                            fail_msg("%s np=%d code=%u: pos_rows[%zu][%zu] = %.9g, want %.9g", k->name, np, code, r,
                                     c, (double)ob[r * W + c], (double)want);
                    }
            }
        /* 300 hashes of 1..64 bits against 1..37 centroids, with duplicates
         * among the centroids so that ties happen */
        uint64_t hash[300], cent[37];
        int32_t got[300];
        for (size_t K = 1; K <= 37; K += 4) {
            for (int bits = 1; bits <= 64; bits += 9) {
                uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
                for (size_t c = 0; c < K; c++) cent[c] = c % 3 == 2 ? cent[c - 1] : u64(&seed) & mask;
                for (size_t l = 0; l < 300; l++) hash[l] = u64(&seed) & mask;
                k->hamming_nearest(hash, 300, cent, K, got);
                for (size_t l = 0; l < 300; l++) {
                    int best = 99;
                    int32_t arg = -1;
                    for (size_t c = 0; c < K; c++) {
                        int dd = 0;
                        for (uint64_t x = hash[l] ^ cent[c]; x; x >>= 1) dd += (int)(x & 1);
                        if (dd < best) best = dd, arg = (int32_t)c;
                    }
                    if (got[l] != arg)
                        fail_msg("%s K=%zu bits=%d: nearest[%zu] = %d, want %d", k->name, K, bits, l, got[l], arg);
                }
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softmax_of_every_variant_matches_double),
        cmocka_unit_test(rows_d_short_rows_agree),
        cmocka_unit_test(cols_of_whole_vectors_agree),
        cmocka_unit_test(fast_exp2_is_accurate),
        cmocka_unit_test(full_exp2_pass_of_every_variant),
        cmocka_unit_test(full_exp2_of_every_variant),
        cmocka_unit_test(rowops_of_every_variant),
        cmocka_unit_test(selection_and_forcing),
        cmocka_unit_test(a_variant_the_cpu_lacks_is_refused),
        cmocka_unit_test(refused_selection_fails_model_new),
        cmocka_unit_test(cpu_count_follows_the_cgroup_quota),
    };
    return cmocka_run_group_tests_name("cpu", tests, NULL, NULL);
}
