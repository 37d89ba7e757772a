/*
 * linear_rows.c — torch.nn.Linear over many rows on the call's threads.
 *
 * Shapes: x (rows, in) · W (out, in)ᵀ + b (out) -> y (rows, out), all
 * contiguous.  The rows are cut into chunks of LINEAR_ROWS, doubled (up to
 * LINEAR_ROWS_MAX) while that still leaves LINEAR_CHUNKS of them; one task
 * each.  The cut depends on the row count only, never on the thread count,
 * so neither does any row's arithmetic; a chunk is large enough that
 * re-packing W for each one costs a few percent of its product (sgemm packs
 * W per call: 3 MiB per chunk for linear_self's stacked projections at dim
 * 512; 512-row chunks took its 4096-token forward from 104-107 to 98-100 ms
 * on 1 thread); and it is a power of two, so the power-of-two lengths that
 * sequences mostly have split into equal tasks for 2, 4 or 8 threads (240
 * rows left 4096 as 17 chunks and a sliver: 9 and 8 on 2 threads, 6% of a
 * projection-bound forward).
 */
#include "attn_internal.h"
#include "kernels/kernels.h"

#define LINEAR_ROWS 256

#define LINEAR_ROWS_MAX 1024
#define LINEAR_CHUNKS 8

typedef struct linear_job {
    const float *x, *W, *b;
    size_t rows, in, out, chunk;
    float *y;
} linear_job;

static attn_status linear_task(void *arg, size_t t, int worker) {
    (void)worker;
    const linear_job *j = arg;
    size_t r0 = t * j->chunk, n = j->rows - r0 < j->chunk ? j->rows - r0 : j->chunk;
    return attn__linear(j->x + r0 * j->in, n, j->in, j->W, j->b, j->out, j->y + r0 * j->out);
}

attn_status attn__linear_rows(attn_ctx *ctx, const float *x, size_t rows, size_t in, const float *W,
                              const float *b, size_t out, float *y) {
    linear_job j = {.x = x, .W = W, .b = b, .rows = rows, .in = in, .out = out, .y = y, .chunk = LINEAR_ROWS};
    while (j.chunk < LINEAR_ROWS_MAX && rows / (2 * j.chunk) >= LINEAR_CHUNKS) j.chunk *= 2;
    return attn__parallel_for(ctx, (rows + j.chunk - 1) / j.chunk, linear_task, &j);
}
