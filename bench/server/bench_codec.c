/*
 * bench_codec.c — attnd's wire codec alone, in MB/s (issue 6, server part).
 *
 *   bench_codec [--elements N] [--min-ms MS] [--seed S]
 *
 * Links the server's codec objects (codec_json.c, codec_binary.c,
 * json_scan.c, json_num.c, buf.c, reply.c, ...) and times, on one FP32
 * tensor of N elements (default 1 Mi = 4 MiB) of standard-normal values:
 *
 *   json_decode    svc_wire_parse + svc_wire_decode of a request whose data
 *                  is the shortest round-trip text attnd itself writes
 *   json_decode17  the same data written with 17 significant digits (what
 *                  Python's json.dumps of numpy float32 -> float gives)
 *   json_encode    svc_wire_encode of the tensor as a JSON response
 *   bin_decode     svc_wire_parse + svc_wire_decode of a binary request
 *                  (Inference-Header-Content-Length), one copy into the tensor
 *
 * Each is repeated until --min-ms have passed; the median and the best
 * repetition are printed as `name key=value ...` lines.  MB/s are given on
 * the JSON text (text_mbs) and on the tensor's 4-byte floats (tensor_mbs);
 * 1 MB = 1e6 bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

/* svc_cfg, svc_ready and svc_draining live in server/config.o, linked in. */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float nrand(void) { /* Box-Muller */
    return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()));
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_codec: %s: %s\n", what, err);
    exit(1);
}

#define MAXREP 4096
typedef struct {
    double t[MAXREP];
    int n;
} samples;

static void report(const char *name, samples *s, size_t text_bytes, size_t tensor_bytes) {
    qsort(s->t, (size_t)s->n, sizeof *s->t, cmp_d);
    double med = s->n % 2 ? s->t[s->n / 2] : 0.5 * (s->t[s->n / 2 - 1] + s->t[s->n / 2]);
    double best = s->t[0];
    printf("%s reps=%d median_ms=%.3f best_ms=%.3f text_bytes=%zu tensor_bytes=%zu", name, s->n,
           med * 1e3, best * 1e3, text_bytes, tensor_bytes);
    if (text_bytes)
        printf(" text_mbs=%.1f text_mbs_best=%.1f", text_bytes / med / 1e6, text_bytes / best / 1e6);
    printf(" tensor_mbs=%.1f tensor_mbs_best=%.1f\n", tensor_bytes / med / 1e6,
           tensor_bytes / best / 1e6);
    fflush(stdout);
}

/* One request body: {"inputs":[{"name":"x","shape":[n],"datatype":"FP32","data":<data>}]} */
static char *json_request(const char *data, size_t data_len, size_t n, size_t *len) {
    char head[256];
    int h = snprintf(head, sizeof head,
                     "{\"inputs\":[{\"name\":\"x\",\"shape\":[%zu],\"datatype\":\"FP32\",\"data\":", n);
    const char *tail = "}]}";
    *len = (size_t)h + data_len + strlen(tail);
    char *b = malloc(*len + 1);
    if (!b) die("malloc", "out of memory");
    memcpy(b, head, (size_t)h);
    memcpy(b + h, data, data_len);
    memcpy(b + h + data_len, tail, strlen(tail) + 1);
    return b;
}

static void time_decode(const char *name, const char *body, size_t len, long hlen, size_t text_bytes,
                        size_t tensor_bytes, double min_s, const attn_tensor *ref) {
    samples s = {.n = 0};
    svc_err err = {0};
    double t_end = now_s() + min_s;
    for (int i = -1; i < MAXREP; i++) {
        double t0 = now_s();
        svc_wire w;
        attn_tensor *t = NULL;
        if (svc_wire_parse(body, len, hlen, &w, &err) != 0) die("parse", err.msg);
        if (svc_wire_decode(&w.in[0], 0, &t, &err) != 0) die("decode", err.msg);
        svc_wire_free(&w);
        double dt = now_s() - t0;
        if (i < 0 && memcmp(t->data, ref->data, ref->nbytes) != 0) die(name, "decoded tensor differs");
        attn_tensor_free(t);
        if (i >= 0) s.t[s.n++] = dt;
        if (i >= 4 && now_s() > t_end) break;
    }
    report(name, &s, text_bytes, tensor_bytes);
}

int main(int argc, char **argv) {
    size_t n = 1 << 20;
    double min_ms = 1500;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--elements") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc) min_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng = strtoull(argv[++i], NULL, 10) | 1;
        else {
            fprintf(stderr, "usage: bench_codec [--elements N] [--min-ms MS] [--seed S]\n");
            return 2;
        }
    }
    svc_cfg.max_rank = ATTN_MAX_RANK;
    svc_cfg.max_dim = INT64_MAX / 2;
    svc_cfg.max_elements = SIZE_MAX / 16;
    svc_cfg.max_json_depth = 32;
    svc_cfg.max_body = SIZE_MAX / 2;
    double min_s = min_ms / 1e3;

    int64_t shape[1] = {(int64_t)n};
    attn_tensor *ref = NULL;
    attn_error e = {0};
    if (attn_tensor_new(ATTN_F32, 1, shape, &ref, &e)) die("tensor", e.msg);
    float *x = ref->data;
    for (size_t i = 0; i < n; i++) x[i] = nrand();
    size_t tbytes = ref->nbytes;

    /* ---- encode: each repetition gets its own copy (svc_wire_encode steals it) ---- */
    svc_wire_result res = {.model_name = "full", .model_version = "1", .output_name = "output"};
    samples s = {.n = 0};
    char *data = NULL; /* the "data":[...] text of the first response */
    size_t data_len = 0;
    double t_end = now_s() + min_s;
    for (int i = -1; i < MAXREP; i++) {
        attn_tensor *t = NULL;
        if (attn_tensor_new(ATTN_F32, 1, shape, &t, &e)) die("tensor", e.msg);
        memcpy(t->data, ref->data, tbytes);
        svc_reply r;
        svc_reply_init(&r);
        double t0 = now_s();
        svc_wire_encode(&res, t, &r);
        double dt = now_s() - t0;
        if (r.status != 200) die("encode", r.body ? r.body : "?");
        if (!data) {
            char *a = strstr(r.body, "\"data\":");
            char *z = r.len >= 4 ? r.body + r.len - 4 : NULL; /* ...]}]} */
            if (!a || !z || *z != ']' || strcmp(z, "]}]}")) die("encode", "no data array in the response");
            a += 7;
            data_len = (size_t)(z - a) + 1;
            data = malloc(data_len + 1);
            memcpy(data, a, data_len);
            data[data_len] = 0;
        }
        svc_reply_clear(&r);
        if (i >= 0) s.t[s.n++] = dt;
        if (i >= 4 && now_s() > t_end) break;
    }
    report("json_encode", &s, data_len, tbytes);

    /* ---- JSON decode, shortest text ---- */
    size_t len;
    char *body = json_request(data, data_len, n, &len);
    time_decode("json_decode", body, len, -1, data_len, tbytes, min_s, ref);
    free(body);

    /* ---- JSON decode, 17 significant digits ---- */
    {
        size_t cap = n * 26 + 16, k = 0;
        char *d17 = malloc(cap);
        d17[k++] = '[';
        for (size_t i = 0; i < n; i++)
            k += (size_t)snprintf(d17 + k, cap - k, i ? ",%.17g" : "%.17g", (double)x[i]);
        d17[k++] = ']';
        d17[k] = 0;
        body = json_request(d17, k, n, &len);
        time_decode("json_decode17", body, len, -1, k, tbytes, min_s, ref);
        free(body);
        free(d17);
    }

    /* ---- binary decode ---- */
    {
        char head[256];
        int h = snprintf(head, sizeof head,
                         "{\"inputs\":[{\"name\":\"x\",\"shape\":[%zu],\"datatype\":\"FP32\","
                         "\"parameters\":{\"binary_data_size\":%zu}}]}",
                         n, tbytes);
        len = (size_t)h + tbytes;
        body = malloc(len + 1);
        memcpy(body, head, (size_t)h);
        memcpy(body + h, ref->data, tbytes);
        body[len] = 0;
        time_decode("bin_decode", body, len, h, 0, tbytes, min_s, ref);
        free(body);
    }
    free(data);
    attn_tensor_free(ref);
    return 0;
}
