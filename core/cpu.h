/*
 * cpu.h — run-time kernel selection (cpu.c).  The hot kernels are compiled
 * once per instruction-set variant (the Makefile's VARIANT_SRC: the fused
 * full-attention kernel, libattn's sgemm, the softmax loops, the FP16 / BF16
 * conversions), their symbols
 * suffixed with the variant's name; cpu.c fills one table from cpuid at
 * first use (or from ATTN_CPU) and defines the kernels' plain names over it.
 */
#ifndef ATTN_CPU_H
#define ATTN_CPU_H

#include "attn_internal.h"

#include <stddef.h>
#include <stdint.h>

struct attn_conv2d;
struct attn_conv2d_out;

/* The functions every variant object defines, named NAME_<variant>. */
#define ATTN_CPU_DECLARE(v) ATTN_CPU_DECLARE_(v)
#define ATTN_CPU_DECLARE_(v)                                                                              \
    int attn__full_fused_ok_##v(const attn_qkv *a);                                                       \
    attn_status attn__full_fused_ws_##v(const attn_qkv *a, int threads, size_t *bytes, attn_error *err);  \
    attn_status attn__full_fused_##v(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,  \
                                     attn_error *err);                                                    \
    int attn__gemm_own_##v(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,    \
                           size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);     \
    void attn__full_exp2_##v(float *x, size_t n);                                                         \
    void attn__full_exp2_pass_##v(float *x, size_t n);                                                    \
    float attn__exp_sub_sum_##v(float *x, size_t n, float m);                                            \
    void attn__softmax_row_d_##v(float *x, size_t n);                                                     \
    void attn__softmax_rows_d_##v(float *x, size_t rows, size_t n, size_t ld, float scale);              \
    void attn__softmax_cols_##v(float *x, size_t rows, size_t n, size_t ld, float scale, float *mx,      \
                                double *sum);                                                             \
    void attn__softmax_row_##v(float *x, size_t n);                                                       \
    void attn__elu1_##v(float *x, size_t n);                                                              \
    void attn__f16_to_f32_##v(const uint16_t *in, float *out, size_t n);                                 \
    void attn__f32_to_f16_##v(const float *in, uint16_t *out, size_t n);                                 \
    void attn__bf16_to_f32_##v(const uint16_t *in, float *out, size_t n);                                \
    void attn__f32_to_bf16_##v(const float *in, uint16_t *out, size_t n);                                \
    attn_status attn__conv2d_wino_##v(const struct attn_conv2d *c, const float *xp, size_t xs,            \
                                      const float *u, const struct attn_conv2d_out *o, size_t ty0,        \
                                      size_t ty1, float *work);                                           \
    void attn__exp_sum_acc_##v(const float *k, const float *msub, const float *v, float *sum, float *acc, \
                               size_t n);                                                                 \
    void attn__exp_weight_acc_##v(const float *m, const float *M, const float *s, const float *a,         \
                                  float *sum, float *acc, size_t n);                                      \
    void attn__gate_div_##v(const float *x, const float *q, float *o, size_t n);                          \
    void attn__max_into_##v(float *m, const float *x, size_t n);                                          \
    void attn__axpy_##v(float *o, float w, const float *x, size_t n);                                     \
    void attn__vmul_##v(float *o, const float *a, const float *b, size_t n);                              \
    void attn__scale_##v(float *x, float s, size_t n);                                                    \
    float attn__dot_##v(const float *a, const float *b, size_t n);                                        \
    void attn__pos_rows_##v(int np, unsigned code, float *o, const float *x, const float *p0,             \
                            const float *p1, size_t W, size_t rows, size_t xs, size_t s0, size_t s1);     \
    void attn__hamming_nearest_##v(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K,   \
                                   int32_t *labels);

typedef struct attn_kernels {
    const char *name; /* "avx512", "avx2", "generic" */
    const char *needs; /* the CPU features it executes, cpuid names */
    int (*full_fused_ok)(const attn_qkv *a);
    /* the fused kernel's workspace for `a` on `threads` threads, and the
     * kernel run with a block of that size (mech/full.h) */
    attn_status (*full_fused_ws)(const attn_qkv *a, int threads, size_t *bytes, attn_error *err);
    attn_status (*full_fused)(float temp, attn_ctx *ctx, const attn_qkv *a, float *out, void *ws,
                              attn_error *err);
    int (*gemm_own)(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);
    /* x = 2^x in place, as the fused kernel exponentiates its scores
     * (vexp2, fast_exp2 on the tail): for tests */
    void (*full_exp2)(float *x, size_t n);
    /* x = 2^x in place, as the fused kernel's exponential pass does (x a
     * score minus its column's maximum: x <= 0, -inf or NaN; vexp2_nonpos
     * on every vector, a short tail padded to one): for tests */
    void (*full_exp2_pass)(float *x, size_t n);
    float (*exp_sub_sum)(float *x, size_t n, float m);
    void (*softmax_row_d)(float *x, size_t n);
    void (*softmax_rows_d)(float *x, size_t rows, size_t n, size_t ld, float scale);
    void (*softmax_cols)(float *x, size_t rows, size_t n, size_t ld, float scale, float *mx, double *sum);
    void (*softmax_row)(float *x, size_t n);
    void (*elu1)(float *x, size_t n);
    /* kernels/half.h */
    void (*f16_to_f32)(const uint16_t *in, float *out, size_t n);
    void (*f32_to_f16)(const float *in, uint16_t *out, size_t n);
    void (*bf16_to_f32)(const uint16_t *in, float *out, size_t n);
    void (*f32_to_bf16)(const float *in, uint16_t *out, size_t n);
    /* kernels/conv2d.h */
    attn_status (*conv2d_wino)(const struct attn_conv2d *c, const float *xp, size_t xs, const float *u,
                               const struct attn_conv2d_out *o, size_t ty0, size_t ty1, float *work);
    /* kernels/rowops.c (kernels.h) */
    void (*exp_sum_acc)(const float *k, const float *msub, const float *v, float *sum, float *acc, size_t n);
    void (*exp_weight_acc)(const float *m, const float *M, const float *s, const float *a, float *sum, float *acc,
                           size_t n);
    void (*gate_div)(const float *x, const float *q, float *o, size_t n);
    void (*max_into)(float *m, const float *x, size_t n);
    void (*axpy)(float *o, float w, const float *x, size_t n);
    void (*vmul)(float *o, const float *a, const float *b, size_t n);
    void (*scale)(float *x, float s, size_t n);
    float (*dot)(const float *a, const float *b, size_t n);
    void (*pos_rows)(int np, unsigned code, float *o, const float *x, const float *p0, const float *p1, size_t W,
                     size_t rows, size_t xs, size_t s0, size_t s1);
    void (*hamming_nearest)(const uint64_t *hash, size_t n, const uint64_t *centroids, size_t K, int32_t *labels);
} attn_kernels;

/* The variant in use: the best this CPU executes, or ATTN_CPU's when the
 * CPU executes it (attn_cpu_check reports a refused ATTN_CPU). */
const attn_kernels *attn__kernels(void);
/* The i-th variant built into the library, best first; NULL past the end.
 * Tests run every one for which attn__kernels_runs is true. */
const attn_kernels *attn__kernels_at(size_t i);
int attn__kernels_runs(const attn_kernels *k);

/* attn__gemm's choice for an (m × k) · (k × n) product: 1 for libattn's
 * sgemm, 0 for OpenBLAS (ATTN_GEMM, else a calibration once per process,
 * one answer for n·k up to 2^18 and one above), unless the calling thread
 * holds a pin (below). */
int attn__gemm_use_own(size_t n, size_t k);

/* The process's choice for both classes as bits (1: libattn's sgemm up to
 * n·k = 2^18, 2: above), calibrating what was not yet.  The two sgemms
 * round differently, and two processes on one machine can calibrate
 * differently when the two are close, so a sequence keeps the choice it
 * started with (core/seq.c: in its export too) and pins it on the thread
 * for each of its steps; attn__parallel_for hands a caller's pin to the
 * helpers that run its tasks.  pin -1: none. */
int attn__gemm_choice(void);
int attn__gemm_pin(void);
void attn__gemm_set_pin(int pin);

#endif
