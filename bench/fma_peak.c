/*
 * fma_peak.c — the machine's FMA peak for one kernel variant: a loop of
 * independent fused multiply-adds on registers only (no loads, no stores),
 * in the variant's vector width.  bench/Makefile builds it once per variant
 * with the same -m flags as the library's variant objects
 * (-DATTN_VARIANT=avx512|avx2|generic) and bench_core's `fma` command calls
 * the variants this CPU executes, in the same run as the `full` timings.
 *
 * NACC accumulators hide the FMA latency (4-5 cycles on current x86 at two
 * FMAs per cycle needs at least 10 chains); they fit the register file
 * together with the two operands (32 registers with AVX-512, 16 without).
 */
#include "kernels/variant.h"
#include "kernels/vec.h"

#include <stddef.h>

#if ATTN_VLEN == 16
#define NACC 24
#else
#define NACC 12
#endif

typedef attn_vf vf;

/* Runs iters × NACC vector FMAs; returns their flop count (2 per lane).
 * *sink receives a lane of the result so that nothing is optimised away. */
double ATTN_V(attn_bench_fma_loop)(long iters, float *sink) {
    vf acc[NACC];
    vf a = attn_vsplat(0.999999f), b = attn_vsplat(1e-7f);
#pragma GCC unroll 24
    for (int i = 0; i < NACC; i++) acc[i] = attn_vsplat((float)i * 1e-3f);
    for (long it = 0; it < iters; it++) {
        /* keep a and b in registers, opaque to the optimiser */
        __asm__ volatile("" : "+x"(a), "+x"(b));
#pragma GCC unroll 24
        for (int i = 0; i < NACC; i++) acc[i] = acc[i] * a + b;
    }
    vf s = acc[0];
#pragma GCC unroll 24
    for (int i = 1; i < NACC; i++) s += acc[i];
    *sink = s[0];
    return 2.0 * ATTN_VLEN * NACC * (double)iters;
}
