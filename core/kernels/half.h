/*
 * half.h — float32 <-> FP16 (IEEE binary16) and BF16 (bfloat16) for the
 * wire: the server decodes 2-byte tensors into float32 and encodes float32
 * outputs back.  Computation never happens in 16 bits.
 *
 * Rounding: float32 -> FP16 and float32 -> BF16 round to nearest, ties to
 * even; values beyond the format's range become infinities (FP16's largest
 * finite value is 65504).  NaN stays NaN: FP16 keeps the top ten payload
 * bits and sets the quiet bit, BF16 keeps the top seven and sets the quiet
 * bit.  FP16 -> float32 is exact (a signalling NaN comes back quiet, as the
 * F16C instruction does); BF16 -> float32 appends two zero bytes to any bit
 * pattern (Triton's clients do the same).
 *
 * attn__f16_to_f32 etc. run the kernel variant core/cpu.c picked (F16C or
 * AVX-512 where the CPU has them, kernels/half.c); the _ref functions
 * (kernels/half_ref.c) are the plain scalar definitions the tests compare
 * every variant against.  in and out must not overlap.
 */
#ifndef ATTN_HALF_H
#define ATTN_HALF_H

#include <stddef.h>
#include <stdint.h>

void attn__f16_to_f32(const uint16_t *in, float *out, size_t n);
void attn__f32_to_f16(const float *in, uint16_t *out, size_t n);
void attn__bf16_to_f32(const uint16_t *in, float *out, size_t n);
void attn__f32_to_bf16(const float *in, uint16_t *out, size_t n);

void attn__f16_to_f32_ref(const uint16_t *in, float *out, size_t n);
void attn__f32_to_f16_ref(const float *in, uint16_t *out, size_t n);
void attn__bf16_to_f32_ref(const uint16_t *in, float *out, size_t n);
void attn__f32_to_bf16_ref(const float *in, uint16_t *out, size_t n);

/* One value, by the reference definitions. */
float attn__f16_value(uint16_t h);
uint16_t attn__f16_of(float f);
uint16_t attn__bf16_of(float f);

#endif
