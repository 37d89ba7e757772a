/*
 * codec_binary.c — the binary tensor data extension: after a JSON header of
 * Inference-Header-Content-Length bytes come the raw tensors, little-endian
 * and row-major, in the order of the inputs that carry binary_data_size.
 * BOOL is one byte per element (0 or 1).
 */
#include "codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary tensor extension is little-endian; add byte swapping for this host"
#endif

int svc_wire_bind_binary(svc_wire *w, const unsigned char *bin, size_t bin_len, char *err,
                         size_t errcap) {
    size_t off = 0;
    for (size_t i = 0; i < w->n_in; i++) {
        svc_wire_input *in = &w->in[i];
        if (!in->is_binary) continue;
        size_t want;
        if (__builtin_mul_overflow(in->numel, attn_dtype_size(in->dtype), &want) || want != in->bin_len) {
            snprintf(err, errcap, "input '%s': binary_data_size %zu does not match %s of shape with %zu elements (%zu bytes)",
                     in->name, in->bin_len, in->datatype, in->numel, want);
            return 400;
        }
        if (in->bin_len > bin_len - off) {
            snprintf(err, errcap, "input '%s': binary_data_size %zu runs past the end of the body (%zu bytes left)",
                     in->name, in->bin_len, bin_len - off);
            return 400;
        }
        in->bin = bin + off;
        off += in->bin_len;
    }
    if (off != bin_len) {
        snprintf(err, errcap, "the body has %zu bytes after the JSON header but the inputs' binary_data_size add up to %zu",
                 bin_len, off);
        return 400;
    }
    return 0;
}

int svc_wire_decode_binary(const svc_wire_input *in, int allow_nonfinite, attn_tensor **out,
                           char *err, size_t errcap) {
    attn_tensor *t = NULL;
    attn_error ae;
    if (attn_tensor_new(in->dtype, in->rank, in->shape, &t, &ae) != ATTN_OK) {
        snprintf(err, errcap, "input '%s': %s", in->name, ae.msg);
        return ae.code == ATTN_E_NOMEM ? 503 : 400;
    }
    if (t->nbytes != in->bin_len) { /* bind_binary checked; keep the copy safe regardless */
        snprintf(err, errcap, "input '%s': binary size mismatch", in->name);
        attn_tensor_free(t);
        return 400;
    }
    if (in->bin_len) memcpy(t->data, in->bin, in->bin_len);
    if (t->dtype == ATTN_BOOL) {
        const uint8_t *b = t->data;
        for (size_t i = 0; i < t->numel; i++)
            if (b[i] > 1) {
                snprintf(err, errcap, "input '%s': BOOL element %zu is %u, not 0 or 1", in->name, i, b[i]);
                attn_tensor_free(t);
                return 400;
            }
    }
    if (t->dtype == ATTN_F32 && !allow_nonfinite) {
        const float *f = t->data;
        for (size_t i = 0; i < t->numel; i++)
            if (!isfinite(f[i])) {
                snprintf(err, errcap,
                         "input '%s': element %zu is not finite (this model does not accept NaN or infinities)",
                         in->name, i);
                attn_tensor_free(t);
                return 400;
            }
    }
    *out = t;
    return 0;
}
