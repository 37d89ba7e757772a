/*
 * codec_binary.c — the binary tensor data extension: after a JSON header of
 * Inference-Header-Content-Length bytes come the raw tensors, little-endian
 * and row-major, in the order of the inputs that carry binary_data_size.
 * BOOL is one byte per element (0 or 1); FP16 and BF16 two, converted to
 * float32 here (kernels/half.h).
 */
#include "codec.h"

#include "kernels/half.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary tensor extension is little-endian; add byte swapping for this host"
#endif

int svc_wire_bind_binary(svc_wire *w, const unsigned char *bin, size_t bin_len, svc_err *e) {
    size_t off = 0;
    for (size_t i = 0; i < w->n_in; i++) {
        svc_wire_input *in = &w->in[i];
        if (!in->is_binary) continue;
        size_t want;
        if (__builtin_mul_overflow(in->numel, svc_wire_elem_size(in), &want) || want != in->bin_len) {
            return svc_fail(e, 400, "input '%s': binary_data_size %zu does not match %s of shape with %zu elements (%zu bytes)",
                     in->name, in->bin_len, in->datatype, in->numel, want);
        }
        if (in->bin_len > bin_len - off) {
            return svc_fail(e, 400, "input '%s': binary_data_size %zu runs past the end of the body (%zu bytes left)",
                     in->name, in->bin_len, bin_len - off);
        }
        in->bin = bin + off;
        off += in->bin_len;
    }
    if (off != bin_len) {
        return svc_fail(e, 400, "the body has %zu bytes after the JSON header but the inputs' binary_data_size add up to %zu",
                 bin_len, off);
    }
    return 0;
}

/* The checks a decoded binary tensor must pass: BOOL bytes are 0 or 1; FP32
 * values are finite unless the model accepts NaN and infinities. */
static int check_values(const svc_wire_input *in, const attn_tensor *t, int allow_nonfinite, svc_err *e) {
    if (t->dtype == ATTN_BOOL) {
        const uint8_t *b = t->data;
        for (size_t i = 0; i < t->numel; i++)
            if (b[i] > 1) {
                return svc_fail(e, 400, "input '%s': BOOL element %zu is %u, not 0 or 1", in->name, i, b[i]);
            }
    }
    if (t->dtype == ATTN_F32 && !allow_nonfinite) {
        const float *f = t->data;
        int bad = 0;
#pragma omp simd reduction(| : bad)
        for (size_t i = 0; i < t->numel; i++) bad |= !isfinite(f[i]);
        if (bad)
            for (size_t i = 0; i < t->numel; i++)
                if (!isfinite(f[i])) {
                    return svc_fail(e, 400, "input '%s': element %zu is not finite (this model does not accept NaN or infinities)",
                             in->name, i);
                }
    }
    return 0;
}

/* FP16 / BF16 bytes into t's float32 (numel of them): in 2-byte aligned
 * blocks, since the bytes may lie at any offset of the body. */
static void widen(const svc_wire_input *in, attn_tensor *t) {
    void (*conv)(const uint16_t *, float *, size_t) = in->half == SVC_HALF_F16 ? attn__f16_to_f32 : attn__bf16_to_f32;
    if ((uintptr_t)in->bin % 2 == 0) {
        conv((const uint16_t *)(const void *)in->bin, t->data, t->numel);
        return;
    }
    uint16_t tmp[1024];
    for (size_t i = 0; i < t->numel; i += 1024) {
        size_t n = t->numel - i < 1024 ? t->numel - i : 1024;
        memcpy(tmp, in->bin + 2 * i, 2 * n);
        conv(tmp, (float *)t->data + i, n);
    }
}

static int decode(const svc_wire_input *in, int allow_nonfinite, int may_view, attn_tensor **out, int *viewed, svc_err *e) {
    attn_tensor *t = NULL;
    attn_error ae;
    if (in->half) may_view = 0; /* converted, never viewed */
    size_t align = attn_dtype_size(in->dtype);
    int view = may_view && in->bin_len && align && (uintptr_t)in->bin % align == 0;
    attn_status s = view ? attn_tensor_view(in->dtype, in->rank, in->shape, (void *)(uintptr_t)in->bin, in->bin_len,
                                            &t, &ae)
                         : attn_tensor_new(in->dtype, in->rank, in->shape, &t, &ae);
    if (s != ATTN_OK) {
        char prefix[ATTN_NAME_MAX + 16];
        snprintf(prefix, sizeof prefix, "input '%s': ", in->name);
        return svc_fail_attn(e, s, &ae, 0, prefix);
    }
    if (t->numel * svc_wire_elem_size(in) != in->bin_len) { /* bind_binary checked; keep the copy safe regardless */
        attn_tensor_free(t);
        return svc_fail(e, 400, "input '%s': binary size mismatch", in->name);
    }
    if (in->half) widen(in, t);
    else if (!view && in->bin_len) memcpy(t->data, in->bin, in->bin_len);
    int st = check_values(in, t, allow_nonfinite, e);
    if (st) {
        attn_tensor_free(t);
        return st;
    }
    if (viewed) *viewed = view;
    *out = t;
    return 0;
}

int svc_wire_decode_binary(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out,
                           svc_err *e) {
    return decode(in, allow_nonfinite, 0, out, NULL, e);
}

int svc_wire_view_binary(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out, int *viewed,
                         svc_err *e) {
    *viewed = 0;
    return decode(in, allow_nonfinite, 1, out, viewed, e);
}
