/* fuzz_server_binary.c — libFuzzer target: attnd's binary tensor data
 * extension (server/codec_binary.c, through svc_wire_parse with an
 * Inference-Header-Content-Length).  Input: two little-endian bytes give
 * the header length (a length past the body is legal input: it must be
 * refused), the rest is the body: the JSON header, then the raw tensors.
 * Every decoded tensor must hold exactly the bytes it was bound to; an FP16
 * or BF16 one, their float32 values by the reference conversion. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kernels/half.h"

/* t holds the float32 values of the 16-bit input's bytes, bit for bit. */
static int widened_ok(const svc_wire_input *in, const attn_tensor *t) {
    if (t->dtype != ATTN_F32 || t->numel * 2 != in->bin_len) return 0;
    for (size_t i = 0; i < t->numel; i++) {
        uint16_t h;
        memcpy(&h, in->bin + 2 * i, 2);
        float want, got = ((const float *)t->data)[i];
        if (in->half == SVC_HALF_F16) attn__f16_to_f32_ref(&h, &want, 1);
        else attn__bf16_to_f32_ref(&h, &want, 1);
        if (memcmp(&want, &got, 4)) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!svc_cfg.max_rank) {
        svc_cfg.max_rank = ATTN_MAX_RANK;
        svc_cfg.max_dim = 1 << 20;
        svc_cfg.max_elements = 1 << 20;
        svc_cfg.max_json_depth = 32;
        svc_cfg.max_body = 1 << 20;
    }
    if (size < 2 || size > (1 << 20)) return 0;
    long hlen = (long)(data[0] | data[1] << 8);
    size -= 2;
    /* An exact-size copy, so that ASan sees any read past the body (the
     * server's buffer has one more byte, the NUL, which we add too). */
    char *body = malloc(size + 1);
    if (!body) return 0;
    memcpy(body, data + 2, size);
    body[size] = '\0';
    svc_err err = {0};
    svc_wire w;
    if (svc_wire_parse(body, size, hlen, &w, &err) == 0) {
        if ((size_t)hlen > size || hlen == 0) abort(); /* must have been refused */
        size_t off = (size_t)hlen;
        for (size_t i = 0; i < w.n_in; i++) {
            svc_wire_input *in = &w.in[i];
            attn_tensor *t = NULL;
            if (in->is_binary) {
                if (in->bin != (const unsigned char *)body + off) abort(); /* in input order */
                off += in->bin_len;
            }
            if (svc_wire_decode(in, (int)(data[0] & 1), &t, &err) != 0) continue;
            if (in->is_binary && in->half && !widened_ok(in, t)) abort();
            if (in->is_binary && !in->half &&
                (t->nbytes != in->bin_len || (t->nbytes && memcmp(t->data, in->bin, t->nbytes))))
                abort();
            attn_tensor_free(t);
        }
        if (off != size) abort(); /* the sizes add up to the whole tail */
        svc_wire_free(&w);
    } else if (!err.msg[0] || err.status < 400) {
        abort();
    }
    free(body);
    return 0;
}
