/*
 * attnctl.c — attnd from the command line, over libattnc.  Tensors come
 * from and go to safetensors files (read and written by libattn).
 *
 * Exit status: 0 done; 1 the server refused, is not ready, or cannot be
 * reached; 2 bad usage or a bad local file.  Errors are one line on stderr.
 */
#include "attn.h"
#include "attnc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: attnctl [--url URL] [--api-key-file FILE] [--timeout SECONDS] COMMAND ...\n"
    "  health                 print liveness and readiness; exit 0 when ready\n"
    "  models                 the repository index: NAME<TAB>STATE<TAB>REASON per model\n"
    "  metadata [MODEL]       server (or model) metadata, JSON\n"
    "  infer [--json] [--id ID] [--parameters JSON] [--datatype FP16|BF16]\n"
    "        [--output-datatype FP16|BF16] [--compression gzip|deflate] MODEL IN.safetensors OUT.safetensors\n"
    "                         every tensor of IN is an input; every output goes to OUT\n"
    "                         (binary tensor data unless --json); --datatype sends the F32\n"
    "                         inputs in 16 bits, --output-datatype asks for the outputs in\n"
    "                         16 bits (written to OUT as F32), --compression compresses the\n"
    "                         request and asks for a compressed reply\n"
    "  stream [--chunk N] [--prefill N] [--config JSON] [--id ID] [--cross] [--keep]\n"
    "        MODEL IN.safetensors [OUT.safetensors | --out OUT.safetensors]\n"
    "                         send IN through a sequence (streaming session) along axis 1,\n"
    "                         N tokens a request (default 1; the first request --prefill N),\n"
    "                         and write the concatenated outputs to OUT; --config: the\n"
    "                         start's parameters (a built-in model's config); --cross: the\n"
    "                         start carries every tensor, later requests only 'queries';\n"
    "                         the last request ends the sequence (--keep: it stays live)\n"
    "  load NAME DIR          upload DIR/config.json and DIR/weights.safetensors as NAME\n"
    "  unload NAME\n"
    "URL defaults to $ATTNCTL_URL, else http://127.0.0.1:8000; FILE to $ATTNCTL_API_KEY_FILE.\n"
    "Exit status: 0 done, 1 refused / not ready / unreachable, 2 bad usage or local input.\n";

static int usage(void) {
    fputs(USAGE, stderr);
    return 2;
}

/* 1 for anything the server (or the network) said, 2 for local trouble. */
static int fail(const attnc_error *e) {
    fprintf(stderr, "attnctl: %s\n", e->msg[0] ? e->msg : attnc_status_str(e->code));
    switch (e->code) {
    case ATTNC_E_INVALID:
    case ATTNC_E_IO:
    case ATTNC_E_NOMEM: return 2;
    default: return 1;
    }
}

/* libattn's file messages already name the file: `what` is for the others. */
static int fail_local(const char *what, const attn_error *e) {
    const char *m = e->msg[0] ? e->msg : attn_status_str(e->code);
    if (what && !strstr(m, what)) fprintf(stderr, "attnctl: %s: %s\n", what, m);
    else fprintf(stderr, "attnctl: %s\n", m);
    return 2;
}

/* The key is the file's first line that is neither blank nor a comment
 * (attnd's key files hold one token a line, '#' starting a comment). */
static int read_key(const char *path, char *key, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    int found = 0;
    while (!found && fgets(key, (int)cap, f)) {
        size_t n = strlen(key);
        while (n && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ' || key[n - 1] == '\t'))
            key[--n] = 0;
        size_t lead = strspn(key, " \t");
        memmove(key, key + lead, n - lead + 1);
        found = key[0] && key[0] != '#';
    }
    fclose(f);
    if (!found) {
        fprintf(stderr, "attnctl: %s: no key in the file\n", path);
        return -1;
    }
    return 0;
}

static int cmd_health(attnc_client *c) {
    attnc_error e = {0};
    int live = 0, ready = 0;
    if (attnc_server_live(c, &live, &e) || attnc_server_ready(c, &ready, &e)) return fail(&e);
    printf("live: %s\nready: %s\n", live ? "yes" : "no", ready ? "yes" : "no");
    return ready ? 0 : 1;
}

static int cmd_models(attnc_client *c) {
    attnc_error e = {0};
    attnc_model_list *l = NULL;
    if (attnc_models(c, 0, &l, &e)) return fail(&e);
    for (size_t i = 0; i < attnc_model_list_count(l); i++) {
        const attnc_model_entry *m = attnc_model_list_at(l, i);
        printf("%s\t%s\t%s\n", m->name, m->state, m->reason);
    }
    attnc_model_list_free(l);
    return 0;
}

static int cmd_metadata(attnc_client *c, const char *model) {
    attnc_error e = {0};
    char *json = NULL;
    attnc_status st = model ? attnc_model_metadata(c, model, &json, &e) : attnc_server_metadata(c, &json, &e);
    if (st) return fail(&e);
    printf("%s\n", json);
    free(json);
    return 0;
}

static int to_wire(attn_dtype t, attnc_dtype *out) {
    switch (t) {
    case ATTN_F32: *out = ATTNC_FP32; return 0;
    case ATTN_BOOL: *out = ATTNC_BOOL; return 0;
    case ATTN_I32: *out = ATTNC_INT32; return 0;
    case ATTN_I64: *out = ATTNC_INT64; return 0;
    }
    return -1;
}

static const attn_dtype FROM_WIRE[] = {ATTN_F32, ATTN_BOOL, ATTN_I32, ATTN_I64};

/* 16-bit float outputs widened to F32 for the safetensors file: one
 * malloc'd block per output, freed with the set's owner. */
typedef struct widened {
    float *p[64];
    size_t n;
} widened;

/* Writes every output of r to `path` (the tensors are views into r). */
static int write_outputs(const attnc_result *r, const char *path) {
    attn_error ae = {0};
    widened w = {{0}, 0};
    attn_tensor_set *set = attn_tensor_set_new();
    if (!set) {
        fprintf(stderr, "attnctl: out of memory\n");
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < attnc_result_count(r); i++) {
        const attnc_tensor *t = attnc_result_output(r, i);
        attn_tensor *v = NULL;
        const void *data = t->data;
        size_t nbytes = t->nbytes;
        attn_dtype dt = ATTN_F32;
        if (t->dtype == ATTNC_FP16 || t->dtype == ATTNC_BF16) {
            size_t n = t->nbytes / 2;
            float *f = w.n < 64 ? malloc(4 * n + 4) : NULL;
            if (!f) {
                fprintf(stderr, "attnctl: out of memory\n");
                rc = 2;
                break;
            }
            w.p[w.n++] = f;
            if (t->dtype == ATTNC_FP16) attnc_f16_to_f32(t->data, f, n);
            else attnc_bf16_to_f32(t->data, f, n);
            data = f;
            nbytes = 4 * n;
        } else if ((unsigned)t->dtype < sizeof FROM_WIRE / sizeof *FROM_WIRE) {
            dt = FROM_WIRE[t->dtype];
        } else {
            fprintf(stderr, "attnctl: output '%s': datatype %s cannot be written\n", t->name, attnc_dtype_name(t->dtype));
            rc = 2;
            break;
        }
        if (attn_tensor_view(dt, t->rank, t->shape, (void *)data, nbytes, &v, &ae) ||
            attn_tensor_set_add(set, t->name, v, &ae))
            rc = fail_local(t->name, &ae);
    }
    if (!rc && attn_safetensors_write_file(set, path, &ae)) rc = fail_local(path, &ae);
    attn_tensor_set_free(set);
    for (size_t k = 0; k < w.n; k++) free(w.p[k]);
    return rc;
}

static int half_name(const char *s, attnc_dtype *out) {
    if (!strcmp(s, "FP16")) *out = ATTNC_FP16;
    else if (!strcmp(s, "BF16")) *out = ATTNC_BF16;
    else if (!strcmp(s, "FP32")) *out = ATTNC_FP32;
    else return -1;
    return 0;
}

static int cmd_infer(attnc_client *c, int argc, char **argv) {
    attnc_infer_opts o = {0};
    attnc_dtype in_dt = ATTNC_FP32, out_dt;
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--json")) o.json = 1;
        else if (!strcmp(argv[i], "--id") && i + 1 < argc) o.id = argv[++i];
        else if (!strcmp(argv[i], "--parameters") && i + 1 < argc) o.parameters_json = argv[++i];
        else if (!strcmp(argv[i], "--datatype") && i + 1 < argc && !half_name(argv[i + 1], &in_dt)) i++;
        else if (!strcmp(argv[i], "--output-datatype") && i + 1 < argc && !half_name(argv[i + 1], &out_dt))
            o.output_datatype = argv[++i];
        else if (!strcmp(argv[i], "--compression") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "gzip") || !strcmp(argv[i + 1], "deflate")))
            o.request_compression_algorithm = o.response_compression_algorithm = argv[++i];
        else return usage();
    }
    if (argc - i != 3) return usage();
    const char *model = argv[i], *in = argv[i + 1], *out = argv[i + 2];
    attn_error ae = {0};
    attn_tensor_set *set = NULL;
    if (attn_safetensors_read_file(in, &set, &ae)) return fail_local(in, &ae);
    size_t n = attn_tensor_set_count(set);
    attnc_tensor *ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        attn_tensor_set_free(set);
        fprintf(stderr, "attnctl: out of memory\n");
        return 2;
    }
    int rc = 0;
    uint16_t **bits = calloc(n ? n : 1, sizeof *bits);
    if (!bits) rc = 2;
    for (size_t k = 0; !rc && k < n; k++) {
        const attn_tensor *t = attn_tensor_set_at(set, k);
        ts[k].name = attn_tensor_set_name(set, k);
        ts[k].rank = t->rank;
        memcpy(ts[k].shape, t->shape, sizeof ts[k].shape);
        ts[k].data = t->data;
        ts[k].nbytes = t->nbytes;
        if (to_wire(t->dtype, &ts[k].dtype)) {
            fprintf(stderr, "attnctl: %s: tensor '%s' has an unsupported dtype\n", in, ts[k].name);
            rc = 2;
        } else if (ts[k].dtype == ATTNC_FP32 && in_dt != ATTNC_FP32) { /* sent in 16 bits */
            size_t m = t->nbytes / 4;
            if (!(bits[k] = malloc(2 * m + 2))) {
                rc = 2;
                break;
            }
            if (in_dt == ATTNC_FP16) attnc_f32_to_f16(t->data, bits[k], m);
            else attnc_f32_to_bf16(t->data, bits[k], m);
            ts[k].dtype = in_dt;
            ts[k].data = bits[k];
            ts[k].nbytes = 2 * m;
        }
    }
    if (rc == 2 && !bits) fprintf(stderr, "attnctl: out of memory\n");
    attnc_result *r = NULL;
    attnc_error e = {0};
    if (!rc && attnc_infer(c, model, ts, n, &o, &r, &e)) rc = fail(&e);
    if (!rc) rc = write_outputs(r, out);
    attnc_result_free(r);
    for (size_t k = 0; bits && k < n; k++) free(bits[k]);
    free(bits);
    free(ts);
    attn_tensor_set_free(set);
    return rc;
}

/* ---- stream: one sequence, chunk by chunk along axis 1 ---- */

/* One output accumulated over the steps: (d0, L, rest...) */
typedef struct stream_out {
    char *name;
    attnc_dtype dtype;
    int rank;
    int64_t shape[ATTNC_MAX_RANK];
    size_t row;  /* bytes of one token of one batch entry: product(shape[2:]) * elem */
    unsigned char *data;
} stream_out;

static int parse_count(const char *s, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < 1 || v > 1L << 30) return -1;
    *out = v;
    return 0;
}

/* Adds the rows [t, t+T) of step result r to the outputs (created on the first step). */
static int stream_gather(const attnc_result *r, stream_out **outs, size_t *n_outs, int64_t L, int64_t t, int64_t T) {
    size_t n = attnc_result_count(r);
    if (!*outs) {
        if (!(*outs = calloc(n ? n : 1, sizeof **outs))) goto oom;
        *n_outs = n;
        for (size_t i = 0; i < n; i++) {
            const attnc_tensor *o = attnc_result_output(r, i);
            stream_out *so = &(*outs)[i];
            if (!(so->name = strdup(o->name))) goto oom;
            if (o->rank < 2) {
                fprintf(stderr, "attnctl: output '%s' has rank %d: nothing to concatenate along axis 1\n", o->name, o->rank);
                return 1;
            }
            so->dtype = o->dtype;
            so->rank = o->rank;
            memcpy(so->shape, o->shape, sizeof so->shape);
            so->shape[1] = L;
            size_t per = o->shape[0] && o->shape[1] ? o->nbytes / (size_t)o->shape[0] / (size_t)o->shape[1] : 0;
            so->row = per;
            size_t total;
            if (__builtin_mul_overflow(per, (size_t)L, &total) ||
                __builtin_mul_overflow(total, (size_t)o->shape[0], &total)) {
                fprintf(stderr, "attnctl: output '%s' is too large\n", o->name);
                return 1;
            }
            if (!(so->data = malloc(total ? total : 1))) goto oom;
        }
    }
    if (n != *n_outs) {
        fprintf(stderr, "attnctl: step at token %lld returned %zu outputs, the first %zu\n", (long long)t, n, *n_outs);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const attnc_tensor *o = attnc_result_output(r, i);
        stream_out *so = &(*outs)[i];
        int same = o->rank == so->rank && o->dtype == so->dtype && !strcmp(o->name, so->name) && o->shape[1] == T;
        for (int d = 0; same && d < o->rank; d++) same = d == 1 || o->shape[d] == so->shape[d];
        if (!same) {
            fprintf(stderr, "attnctl: output '%s' of the step at token %lld is not %lld rows shaped like the first\n",
                    o->name, (long long)t, (long long)T);
            return 1;
        }
        for (int64_t b = 0; b < so->shape[0]; b++)
            memcpy(so->data + ((size_t)b * (size_t)L + (size_t)t) * so->row,
                   (const unsigned char *)o->data + (size_t)b * (size_t)T * so->row, (size_t)T * so->row);
    }
    return 0;
oom:
    fprintf(stderr, "attnctl: out of memory\n");
    return 2;
}

static int stream_write(const stream_out *outs, size_t n, const char *path) {
    attn_error ae = {0};
    attn_tensor_set *set = attn_tensor_set_new();
    if (!set) {
        fprintf(stderr, "attnctl: out of memory\n");
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        const stream_out *so = &outs[i];
        attn_tensor *v = NULL;
        if ((unsigned)so->dtype >= sizeof FROM_WIRE / sizeof *FROM_WIRE) {
            fprintf(stderr, "attnctl: output '%s': datatype %s cannot be written\n", so->name, attnc_dtype_name(so->dtype));
            rc = 2;
            break;
        }
        size_t nbytes = so->row * (size_t)so->shape[0] * (size_t)so->shape[1];
        if (attn_tensor_view(FROM_WIRE[so->dtype], so->rank, so->shape, so->data, nbytes, &v, &ae) ||
            attn_tensor_set_add(set, so->name, v, &ae))
            rc = fail_local(so->name, &ae);
    }
    if (!rc && attn_safetensors_write_file(set, path, &ae)) rc = fail_local(path, &ae);
    attn_tensor_set_free(set);
    return rc;
}

static int cmd_stream(attnc_client *c, int argc, char **argv) {
    attnc_seq_opts so = {0};
    long chunk = 1, prefill = 0;
    int keep = 0;
    const char *pos[3] = {NULL, NULL, NULL}, *out = NULL;
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || a[1] != '-') {
            if (npos == 3) return usage();
            pos[npos++] = a;
        } else if (!strcmp(a, "--cross")) {
            so.kind = "cross";
        } else if (!strcmp(a, "--keep")) {
            keep = 1;
        } else if (!v) {
            return usage();
        } else if (!strcmp(a, "--chunk")) {
            if (parse_count(v, &chunk)) return usage();
            i++;
        } else if (!strcmp(a, "--prefill")) {
            if (parse_count(v, &prefill)) return usage();
            i++;
        } else if (!strcmp(a, "--config") || !strcmp(a, "--parameters")) {
            so.config_json = argv[++i];
        } else if (!strcmp(a, "--id")) {
            so.id = argv[++i];
        } else if (!strcmp(a, "--out")) {
            out = argv[++i];
        } else {
            return usage();
        }
    }
    if (npos == 3 && !out) out = pos[2];
    else if (npos != 2 || !out) return usage();
    const char *model = pos[0], *in = pos[1];
    if (!prefill) prefill = chunk;
    int cross = so.kind != NULL;

    attn_error ae = {0};
    attn_tensor_set *set = NULL;
    if (attn_safetensors_read_file(in, &set, &ae)) return fail_local(in, &ae);
    size_t n = attn_tensor_set_count(set);
    int rc = 0;
    int64_t L = -1;
    attnc_tensor *whole = calloc(n ? n : 1, sizeof *whole), *part = calloc(n ? n : 1, sizeof *part);
    unsigned char **bufs = calloc(n ? n : 1, sizeof *bufs);
    size_t *rows = calloc(n ? n : 1, sizeof *rows);
    int *chunked = calloc(n ? n : 1, sizeof *chunked);
    if (!whole || !part || !bufs || !rows || !chunked) {
        fprintf(stderr, "attnctl: out of memory\n");
        rc = 2;
    }
    for (size_t k = 0; !rc && k < n; k++) {
        const attn_tensor *t = attn_tensor_set_at(set, k);
        attnc_tensor *w = &whole[k];
        w->name = attn_tensor_set_name(set, k);
        w->rank = t->rank;
        memcpy(w->shape, t->shape, sizeof w->shape);
        w->data = t->data;
        w->nbytes = t->nbytes;
        if (to_wire(t->dtype, &w->dtype)) {
            fprintf(stderr, "attnctl: %s: tensor '%s' has an unsupported dtype\n", in, w->name);
            rc = 2;
            break;
        }
        chunked[k] = !cross || !strcmp(w->name, "queries");
        if (!chunked[k]) continue;
        if (t->rank < 2 || t->shape[1] < 1 || (L >= 0 && t->shape[1] != L)) {
            fprintf(stderr, "attnctl: %s: tensor '%s' is not (N, L, ...) with the same L as the others%s\n", in,
                    w->name, cross ? "" : " (masks and lengths do not go in a sequence)");
            rc = 2;
            break;
        }
        L = t->shape[1];
        rows[k] = t->shape[0] ? t->nbytes / (size_t)t->shape[0] / (size_t)L : 0;
        if (!(bufs[k] = malloc(rows[k] * (size_t)t->shape[0] * (size_t)(prefill > chunk ? prefill : chunk) + 1))) {
            fprintf(stderr, "attnctl: out of memory\n");
            rc = 2;
        }
    }
    if (!rc && L < 0) {
        fprintf(stderr, "attnctl: %s: no tensor to stream%s\n", in, cross ? " (--cross streams 'queries')" : "");
        rc = 2;
    }
    attnc_seq *seq = NULL;
    attnc_error e = {0};
    if (!rc && attnc_seq_new(c, model, &so, &seq, &e)) rc = fail(&e);
    stream_out *outs = NULL;
    size_t n_outs = 0, requests = 0;
    for (int64_t t = 0; !rc && t < L;) {
        int64_t T = t ? chunk : prefill;
        if (T > L - t) T = L - t;
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            if (!chunked[k]) {
                if (!t) part[m++] = whole[k]; /* the memory of a cross sequence: once */
                continue;
            }
            attnc_tensor *p = &part[m++];
            *p = whole[k];
            p->shape[1] = T;
            for (int64_t b = 0; b < whole[k].shape[0]; b++)
                memcpy(bufs[k] + (size_t)b * (size_t)T * rows[k],
                       (const unsigned char *)whole[k].data + ((size_t)b * (size_t)L + (size_t)t) * rows[k],
                       (size_t)T * rows[k]);
            p->data = bufs[k];
            p->nbytes = rows[k] * (size_t)whole[k].shape[0] * (size_t)T;
        }
        attnc_result *r = NULL;
        int last = t + T == L;
        if (attnc_seq_step(seq, part, m, last && !keep, NULL, &r, &e)) {
            fprintf(stderr, "attnctl: sequence %s, step at token %lld of %lld: %s\n", attnc_seq_id(seq), (long long)t,
                    (long long)L, e.msg[0] ? e.msg : attnc_status_str(e.code));
            rc = e.code == ATTNC_E_INVALID || e.code == ATTNC_E_IO || e.code == ATTNC_E_NOMEM ? 2 : 1;
        } else {
            rc = stream_gather(r, &outs, &n_outs, L, t, T);
            requests++;
        }
        attnc_result_free(r);
        t += T;
    }
    if (rc && seq && attnc_seq_started(seq) && !attnc_seq_ended(seq)) {
        attnc_error e2 = {0};
        attnc_seq_end(seq, &e2); /* do not leave it holding the server's memory */
    }
    if (!rc) rc = stream_write(outs, n_outs, out);
    if (!rc)
        printf("sequence %s: %lld tokens in %zu requests%s\n", attnc_seq_id(seq), (long long)attnc_seq_length(seq),
               requests, keep ? " (still live)" : "");
    for (size_t i = 0; outs && i < n_outs; i++) {
        free(outs[i].name);
        free(outs[i].data);
    }
    free(outs);
    attnc_seq_free(seq);
    for (size_t k = 0; bufs && k < n; k++) free(bufs[k]);
    free(bufs);
    free(rows);
    free(chunked);
    free(part);
    free(whole);
    attn_tensor_set_free(set);
    return rc;
}

int main(int argc, char **argv) {
    const char *url = getenv("ATTNCTL_URL"), *key_file = getenv("ATTNCTL_API_KEY_FILE");
    double timeout = 60;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!v) return usage();
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--api-key-file")) key_file = v;
        else if (!strcmp(a, "--timeout")) {
            char *end;
            timeout = strtod(v, &end);
            if (*end || !(timeout >= 0 && timeout < 1e6)) return usage();
        } else {
            return usage();
        }
    }
    if (i >= argc) return usage();
    if (!url || !*url) url = "http://127.0.0.1:8000";
    const char *cmd = argv[i++];
    int nargs = argc - i;
    char **args = argv + i;

    attnc_error e = {0};
    attnc_client *c = NULL;
    if (attnc_client_new(url, &c, &e)) return fail(&e);
    int rc = 0;
    if (key_file && *key_file) {
        char key[4096];
        if (read_key(key_file, key, sizeof key)) rc = 2;
        else if (attnc_client_set_api_key(c, key, &e)) rc = fail(&e);
    }
    attnc_client_set_timeout(c, (long)(timeout * 1000));
    if (rc) {
    } else if (!strcmp(cmd, "health") && nargs == 0) {
        rc = cmd_health(c);
    } else if (!strcmp(cmd, "models") && nargs == 0) {
        rc = cmd_models(c);
    } else if (!strcmp(cmd, "metadata") && nargs <= 1) {
        rc = cmd_metadata(c, nargs ? args[0] : NULL);
    } else if (!strcmp(cmd, "infer")) {
        rc = cmd_infer(c, nargs, args);
    } else if (!strcmp(cmd, "stream")) {
        rc = cmd_stream(c, nargs, args);
    } else if (!strcmp(cmd, "load") && nargs == 2) {
        if (attnc_load_dir(c, args[0], args[1], &e)) rc = fail(&e);
    } else if (!strcmp(cmd, "unload") && nargs == 1) {
        if (attnc_unload(c, args[0], &e)) rc = fail(&e);
    } else {
        rc = usage();
    }
    attnc_client_free(c);
    return rc;
}
