/*
 * cpu.c — run-time kernel selection.  The Makefile builds the hot kernels
 * (VARIANT_SRC: mech/full_fused.c, kernels/gemm.c, kernels/softmax.c,
 * kernels/half.c) once
 * per instruction-set variant; this file lists the variants, picks one at
 * first use and defines the kernels' plain names over it, so one binary
 * runs the AVX-512 kernels where the CPU has them and never executes an
 * instruction it lacks.
 *
 *   ATTN_CPU=avx512|avx2|generic   run that variant (auto or unset: the best
 *                                  this CPU executes)
 *   ATTN_GEMM=attn|openblas        attn__gemm's product (auto or unset: a
 *                                  calibration, once per product class)
 *   ATTN_CPU_HIDE=avx512f,...      treat these CPU features as absent (to
 *                                  see what a smaller CPU would run)
 *
 * An ATTN_CPU the CPU cannot execute, or an unknown value, is refused:
 * attn_cpu_check reports it (models are not built, attnd does not start),
 * and the kernels meanwhile run the best variant the CPU has.
 */
#include "cpu.h"

#include "kernels/conv2d.h"
#include "kernels/half.h"
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#define ATTN_X86 1
#include <cpuid.h>
#else
#define ATTN_X86 0
#endif

#if ATTN_X86
ATTN_CPU_DECLARE(avx512)
ATTN_CPU_DECLARE(avx2)
#endif
ATTN_CPU_DECLARE(generic)

#define VARIANT(v, features)                                                                               \
    {#v,                   features,          attn__full_fused_ok_##v, attn__full_fused_ws_##v,           \
     attn__full_fused_##v,                                                                                 \
     attn__gemm_own_##v,   attn__full_exp2_##v,   attn__full_exp2_pass_##v, attn__exp_sub_sum_##v, attn__softmax_row_d_##v, attn__softmax_rows_d_##v,    \
     attn__softmax_cols_##v, attn__softmax_row_##v, attn__elu1_##v,                                      \
     attn__f16_to_f32_##v, attn__f32_to_f16_##v,  attn__bf16_to_f32_##v, attn__f32_to_bf16_##v, \
     attn__conv2d_wino_##v, attn__exp_sum_acc_##v, attn__exp_weight_acc_##v, attn__gate_div_##v, attn__max_into_##v, attn__axpy_##v, attn__vmul_##v, attn__scale_##v, attn__dot_##v, attn__pos_rows_##v,                  \
     attn__hamming_nearest_##v}

/* Best first; `needs` is the cpuid feature list the variant's -m flags allow
 * (Makefile VFLAGS_*), each name as __builtin_cpu_supports spells it. */
static const attn_kernels variants[] = {
#if ATTN_X86
    VARIANT(avx512, "avx512f avx512bw avx512dq avx512vl avx2 fma f16c avx popcnt"),
    VARIANT(avx2, "avx2 fma f16c avx popcnt"),
    VARIANT(generic, "sse2"),
#else
    VARIANT(generic, ""),
#endif
};
#define N_VARIANTS (sizeof variants / sizeof *variants)

/* Every CPU feature any variant needs, in the order `attn info` lists them. */
static const char *const features[] = {"sse2", "popcnt", "avx", "fma", "f16c", "avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"};
#define N_FEATURES (sizeof features / sizeof *features)

static int hidden(const char *f) {
    const char *h = getenv("ATTN_CPU_HIDE");
    if (!h) return 0;
    size_t n = strlen(f);
    for (const char *p = h + strspn(h, ", "); *p; p += strcspn(p, ", "), p += strspn(p, ", "))
        if (strncmp(p, f, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) return 1;
    return 0;
}

static int has_feature(const char *f) {
    if (hidden(f)) return 0;
#if ATTN_X86
    /* __builtin_cpu_supports wants a string literal. */
#define FEATURE(name)                                                                                      \
    if (!strcmp(f, name)) return __builtin_cpu_supports(name) != 0;
    __builtin_cpu_init();
    if (!strcmp(f, "f16c")) { /* clang 14's __builtin_cpu_supports lacks it: cpuid leaf 1, ecx bit 29 */
        unsigned a, b, c, d;
        return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    }
    FEATURE("sse2") FEATURE("popcnt") FEATURE("avx") FEATURE("fma") FEATURE("avx2") FEATURE("avx512f") FEATURE("avx512bw")
    FEATURE("avx512dq") FEATURE("avx512vl")
#undef FEATURE
#endif
    (void)f;
    return 0;
}

const attn_kernels *attn__kernels_at(size_t i) { return i < N_VARIANTS ? &variants[i] : NULL; }

int attn__kernels_runs(const attn_kernels *k) {
    char list[128];
    snprintf(list, sizeof list, "%s", k->needs);
    char *save = NULL;
    for (char *f = strtok_r(list, " ", &save); f; f = strtok_r(NULL, " ", &save))
        if (!has_feature(f)) return 0;
    return 1;
}

/* ---- the selection, made once ---- */

static pthread_once_t pick_once = PTHREAD_ONCE_INIT;
static const attn_kernels *chosen;
static char cpu_error[200], selection[64];

static const attn_kernels *best_runnable(void) {
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (attn__kernels_runs(&variants[i])) return &variants[i];
    return &variants[N_VARIANTS - 1]; /* generic: the build's baseline ISA */
}

static void pick(void) {
    chosen = best_runnable();
    snprintf(selection, sizeof selection, "cpuid");
    const char *env = getenv("ATTN_CPU");
    if (!env || !*env || !strcmp(env, "auto")) return;
    for (size_t i = 0; i < N_VARIANTS; i++) {
        if (strcmp(env, variants[i].name)) continue;
        if (!attn__kernels_runs(&variants[i])) {
            snprintf(cpu_error, sizeof cpu_error, "ATTN_CPU=%.32s: this CPU cannot execute it (it needs %s)", env,
                     variants[i].needs);
            return;
        }
        chosen = &variants[i];
        snprintf(selection, sizeof selection, "ATTN_CPU=%s", variants[i].name);
        return;
    }
    char names[64] = "";
    for (size_t i = 0; i < N_VARIANTS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", variants[i].name);
    snprintf(cpu_error, sizeof cpu_error, "ATTN_CPU=%.32s: unknown kernel variant (built: %s, or auto)", env, names);
}

const attn_kernels *attn__kernels(void) {
    pthread_once(&pick_once, pick);
    return chosen;
}

/* ---- libattn's sgemm or OpenBLAS ----
 * Decided separately for two classes of products, by op(B)'s size n·k: up
 * to GEMM_SMALL_NK (B's panels stay in L2; projections, attention blocks)
 * and above it (where OpenBLAS's deeper blocking tends to win).  Each class
 * is timed on one product x·Wᵀ, both single-threaded (attn_ctx_new pins
 * OpenBLAS to one thread), in interleaved rounds; the best time of each
 * over the rounds after a warm-up counts (the wide vector units and the
 * clock need a few milliseconds to ramp up: the first calls run at half
 * speed).  libattn's sgemm must be at least 5% faster to be chosen, so that
 * a tie picks OpenBLAS every time rather than by noise.  A class is timed
 * at its first product (most processes never make a large one): about
 * 10 ms for the small class, 40 ms for the large. */
#define GEMM_SMALL_NK ((size_t)1 << 18)
typedef struct cal_shape {
    int m, n, k;
    double warm_ms, ms;
} cal_shape;
static const cal_shape cal_shapes[2] = {{192, 256, 256, 5.0, 5.0}, {384, 1024, 1024, 5.0, 0.0}};

static pthread_once_t gemm_once = PTHREAD_ONCE_INIT, class_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};
static int gemm_forced = -1;  /* ATTN_GEMM: 1 attn, 0 openblas, -1 calibrate */
static int gemm_own[2];       /* per class: small, large */
static char gemm_error[120], gemm_why[2][100];

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double time_gemm(int own, const cal_shape *c, const float *A, const float *B, float *C) {
    size_t m = (size_t)c->m, n = (size_t)c->n, k = (size_t)c->k;
    double t0 = seconds();
    /* The calibration shapes are small constants: the int limit cannot fail. */
    if (!own || attn__kernels()->gemm_own(0, 1, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n) != 0)
        (void)!attn__gemm_blas(0, 1, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n);
    return seconds() - t0;
}

/* Best times (seconds) of OpenBLAS [0] and libattn [1] on shape c; -1 when
 * the buffers cannot be allocated. */
static int calibrate_shape(const cal_shape *c, double best[2]) {
    size_t na = (size_t)c->m * c->k, nb = (size_t)c->n * c->k, nc = (size_t)c->m * c->n;
    float *buf = malloc((na + nb + nc) * sizeof *buf);
    if (!buf) return -1;
    float *A = buf, *B = A + na, *C = B + nb;
    for (size_t i = 0; i < na + nb; i++) buf[i] = (float)((i * 2654435761u) % 1024u) / 512.0f - 1.0f;
    best[0] = best[1] = 1e30;
    double start = seconds(), now = start;
    int rounds = 0;
    while (now - start < (c->warm_ms + c->ms) * 1e-3 || rounds < 3) {
        int measured = now - start >= c->warm_ms * 1e-3;
        for (int own = 0; own < 2; own++) {
            double t = time_gemm(own, c, A, B, C);
            if (measured && t < best[own]) best[own] = t;
        }
        rounds += measured;
        now = seconds();
    }
    free(buf);
    return 0;
}

static void calibrate(int cl) {
    attn_ctx_free(attn_ctx_new(1)); /* OpenBLAS on one thread, as in every forward */
    const cal_shape *c = &cal_shapes[cl];
    double best[2];
    if (calibrate_shape(c, best) != 0) {
        snprintf(gemm_why[cl], sizeof gemm_why[cl], "%dx%dx%d: could not allocate, OpenBLAS", c->m, c->n, c->k);
        return;
    }
    gemm_own[cl] = best[1] * 1.05 < best[0];
    snprintf(gemm_why[cl], sizeof gemm_why[cl], "%dx%dx%d: attn %.3f ms, openblas %.3f ms", c->m, c->n, c->k,
             best[1] * 1e3, best[0] * 1e3);
}
static void calibrate_small(void) { calibrate(0); }
static void calibrate_large(void) { calibrate(1); }

static void read_gemm_env(void) {
    const char *env = getenv("ATTN_GEMM");
    if (env && !strcmp(env, "attn")) gemm_forced = 1;
    else if (env && !strcmp(env, "openblas")) gemm_forced = 0;
    else if (env && *env && strcmp(env, "auto"))
        snprintf(gemm_error, sizeof gemm_error, "ATTN_GEMM=%.32s: unknown (attn, openblas or auto)", env);
}

static int process_own(int cl) {
    pthread_once(&gemm_once, read_gemm_env);
    if (gemm_forced >= 0) return gemm_forced;
    pthread_once(&class_once[cl], cl ? calibrate_large : calibrate_small);
    return gemm_own[cl];
}

static _Thread_local int gemm_pin = -1;

int attn__gemm_pin(void) { return gemm_pin; }
void attn__gemm_set_pin(int pin) { gemm_pin = pin >= 0 ? pin & 3 : -1; }
int attn__gemm_choice(void) { return process_own(0) | process_own(1) << 1; }

int attn__gemm_use_own(size_t n, size_t k) {
    int cl = n * k > GEMM_SMALL_NK; /* n, k are bounded by the tensor limits: no overflow */
    return gemm_pin >= 0 ? (gemm_pin >> cl) & 1 : process_own(cl);
}

/* ---- the kernels' plain names ---- */

int attn__full_fused_ok(const attn_qkv *a) { return attn__kernels()->full_fused_ok(a); }
attn_status attn__full_fused_ws(const attn_qkv *a, int threads, size_t *bytes, attn_error *err) {
    return attn__kernels()->full_fused_ws(a, threads, bytes, err);
}
attn_status attn__full_fused(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws, attn_error *err) {
    return attn__kernels()->full_fused(temp, ctx, a, out, ws, err);
}
int attn__gemm_own(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                   const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    return attn__kernels()->gemm_own(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
float attn__exp_sub_sum(float *x, size_t n, float m) { return attn__kernels()->exp_sub_sum(x, n, m); }
void attn__softmax_row_d(float *x, size_t n) { attn__kernels()->softmax_row_d(x, n); }
void attn__softmax_rows_d(float *x, size_t rows, size_t n, size_t ld, float scale) {
    attn__kernels()->softmax_rows_d(x, rows, n, ld, scale);
}
void attn__softmax_cols(float *x, size_t rows, size_t n, size_t ld, float scale, float *mx, double *sum) {
    attn__kernels()->softmax_cols(x, rows, n, ld, scale, mx, sum);
}
void attn__softmax_row(float *x, size_t n) { attn__kernels()->softmax_row(x, n); }
void attn__elu1(float *x, size_t n) { attn__kernels()->elu1(x, n); }
void attn__f16_to_f32(const uint16_t *in, float *out, size_t n) { attn__kernels()->f16_to_f32(in, out, n); }
void attn__f32_to_f16(const float *in, uint16_t *out, size_t n) { attn__kernels()->f32_to_f16(in, out, n); }
void attn__bf16_to_f32(const uint16_t *in, float *out, size_t n) { attn__kernels()->bf16_to_f32(in, out, n); }
void attn__f32_to_bf16(const float *in, uint16_t *out, size_t n) { attn__kernels()->f32_to_bf16(in, out, n); }
attn_status attn__conv2d_wino(const attn_conv2d *c, const float *xp, size_t xs, const float *u,
                              const attn_conv2d_out *o, size_t ty0, size_t ty1, float *work) {
    return attn__kernels()->conv2d_wino(c, xp, xs, u, o, ty0, ty1, work);
}
void attn__exp_sum_acc(const float *k, const float *msub, const float *v, float *sum, float *acc, size_t n) {
    attn__kernels()->exp_sum_acc(k, msub, v, sum, acc, n);
}
void attn__exp_weight_acc(const float *m, const float *M, const float *s, const float *a, float *sum, float *acc,
                          size_t n) {
    attn__kernels()->exp_weight_acc(m, M, s, a, sum, acc, n);
}
void attn__gate_div(const float *x, const float *q, float *o, size_t n) { attn__kernels()->gate_div(x, q, o, n); }
void attn__max_into(float *m, const float *x, size_t n) { attn__kernels()->max_into(m, x, n); }
void attn__axpy(float *o, float w, const float *x, size_t n) { attn__kernels()->axpy(o, w, x, n); }
void attn__vmul(float *o, const float *a, const float *b, size_t n) { attn__kernels()->vmul(o, a, b, n); }
void attn__scale(float *x, float s, size_t n) { attn__kernels()->scale(x, s, n); }
float attn__dot(const float *a, const float *b, size_t n) { return attn__kernels()->dot(a, b, n); }
void attn__pos_rows(int np, unsigned code, float *o, const float *x, const float *p0, const float *p1, size_t W,
                    size_t rows, size_t xs, size_t s0, size_t s1) {
    attn__kernels()->pos_rows(np, code, o, x, p0, p1, W, rows, xs, s0, s1);
}
void attn__hamming_nearest(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K, int32_t *labels) {
    attn__kernels()->hamming_nearest(hash, n, centroids, K, labels);
}

/* ---- public: check and report ---- */

attn_status attn_cpu_check(attn_error *err) {
    attn__kernels();
    pthread_once(&gemm_once, read_gemm_env);
    if (cpu_error[0]) return attn__err(err, ATTN_E_INVALID, "%s", cpu_error);
    if (gemm_error[0]) return attn__err(err, ATTN_E_INVALID, "%s", gemm_error);
    return ATTN_OK;
}

static pthread_once_t info_once = PTHREAD_ONCE_INIT;
static char cpu_model[80], cpu_features[128], runnable[64], gemm_name[96], gemm_choice[220];

static void read_model(void) {
#if ATTN_X86
    unsigned int r[12];
    if ((unsigned int)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char brand[49];
        memcpy(brand, r, 48);
        brand[48] = '\0';
        char *s = brand;
        while (*s == ' ') s++;
        size_t n = strlen(s);
        while (n && s[n - 1] == ' ') s[--n] = '\0';
        if (*s) {
            snprintf(cpu_model, sizeof cpu_model, "%s", s);
            return;
        }
    }
#endif
    snprintf(cpu_model, sizeof cpu_model, "unknown");
}

static void fill_info(void) {
    read_model();
    for (size_t i = 0; i < N_FEATURES; i++)
        if (has_feature(features[i]))
            snprintf(cpu_features + strlen(cpu_features), sizeof cpu_features - strlen(cpu_features), "%s%s",
                     cpu_features[0] ? " " : "", features[i]);
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (attn__kernels_runs(&variants[i]))
            snprintf(runnable + strlen(runnable), sizeof runnable - strlen(runnable), "%s%s", runnable[0] ? " " : "",
                     variants[i].name);
    char own[32];
    snprintf(own, sizeof own, "attn-%s", attn__kernels()->name);
    int small = process_own(0), large = process_own(1);
    if (small == large)
        snprintf(gemm_name, sizeof gemm_name, "%s", small ? own : "openblas");
    else
        snprintf(gemm_name, sizeof gemm_name, "%s up to n*k = 2^18, %s above", small ? own : "openblas",
                 large ? own : "openblas");
    if (gemm_forced >= 0)
        snprintf(gemm_choice, sizeof gemm_choice, "ATTN_GEMM=%s", gemm_forced ? "attn" : "openblas");
    else
        snprintf(gemm_choice, sizeof gemm_choice, "calibrated on %s; %s", gemm_why[0], gemm_why[1]);
}

int attn_cpu_info(size_t i, const char **key, const char **value) {
    pthread_once(&info_once, fill_info);
    const char *v = attn__kernels()->name;
    static const char *const keys[] = {"cpu",         "cpu_features", "kernel_variants", "kernel_selection",
                                       "kernel_full", "kernel_softmax", "kernel_gemm",   "gemm_choice",
                                       "kernel_convert"};
    const char *vals[] = {cpu_model, cpu_features, runnable, selection, v, v, gemm_name, gemm_choice, v};
    if (i >= sizeof keys / sizeof *keys) return 0;
    if (key) *key = keys[i];
    if (value) *value = vals[i];
    return 1;
}
