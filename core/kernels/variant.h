/*
 * variant.h — the symbol names of a source that the Makefile builds once per
 * instruction-set variant (VARIANT_SRC: -DATTN_VARIANT=avx512|avx2|generic
 * plus that variant's -m flags).  ATTN_V(attn__softmax_row) is
 * attn__softmax_row_avx512 in the AVX-512 object; core/cpu.c picks one
 * variant's functions at run time and defines the plain names.
 */
#ifndef ATTN_VARIANT_H
#define ATTN_VARIANT_H

#ifndef ATTN_VARIANT
#error "built once per variant: the Makefile passes -DATTN_VARIANT=avx512|avx2|generic"
#endif

#define ATTN_V_CAT2(a, b) a##_##b
#define ATTN_V_CAT(a, b) ATTN_V_CAT2(a, b)
#define ATTN_V(name) ATTN_V_CAT(name, ATTN_VARIANT)

#endif
