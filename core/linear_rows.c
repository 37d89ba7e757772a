/*
 * linear_rows.c — torch.nn.Linear over many rows on the call's threads.
 *
 * Shapes: x (rows, in) · W (out, in)ᵀ + b (out) -> y (rows, out), all
 * contiguous.  The rows are cut into fixed chunks of LINEAR_ROWS, one task
 * each.  The cut never depends on the thread count, so neither does any
 * row's arithmetic; a chunk is large enough that re-packing W for each one
 * costs a few percent of its product; and it is a power of two, so the
 * power-of-two lengths that sequences mostly have split into equal tasks
 * for 2, 4 or 8 threads (240 rows left 4096 as 17 chunks and a sliver: 9
 * and 8 on 2 threads, 6% of a projection-bound forward).
 */
#include "attn_internal.h"
#include "kernels/kernels.h"

#define LINEAR_ROWS 256

typedef struct linear_job {
    const float *x, *W, *b;
    size_t rows, in, out;
    float *y;
} linear_job;

static attn_status linear_task(void *arg, size_t t, int worker) {
    (void)worker;
    const linear_job *j = arg;
    size_t r0 = t * LINEAR_ROWS, n = j->rows - r0 < LINEAR_ROWS ? j->rows - r0 : LINEAR_ROWS;
    return attn__linear(j->x + r0 * j->in, n, j->in, j->W, j->b, j->out, j->y + r0 * j->out);
}

attn_status attn__linear_rows(attn_ctx *ctx, const float *x, size_t rows, size_t in, const float *W,
                              const float *b, size_t out, float *y) {
    linear_job j = {.x = x, .W = W, .b = b, .rows = rows, .in = in, .out = out, .y = y};
    return attn__parallel_for(ctx, (rows + LINEAR_ROWS - 1) / LINEAR_ROWS, linear_task, &j);
}
