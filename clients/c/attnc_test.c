/*
 * attnc_test.c — libattnc against a live attnd (driven by clients/c/test.sh).
 *
 *   attnc_test gen DIR          write the test inputs into DIR
 *   attnc_test print FILE NAME  print tensor NAME of a safetensors file, one value a line
 *   attnc_test api URL DIR      run the API checks against the server at URL; DIR holds
 *                               gen's inputs, `attn run`'s outputs and the model folders
 *   attnc_test seq URL DIR      the sequence checks (gen's seq_*.safetensors in DIR)
 *   attnc_test seqlimits URL DIR  413 and 503 against a server started with
 *                               --max-sequences 1 --max-sequence-tokens 4
 *
 * Every check prints "ok" or "not ok" with its name; the last line counts them.
 */
#include "attn.h"
#include "attnc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int cond, const char *name, const attnc_error *e) {
    if (cond) {
        passed++;
        printf("ok %d - %s\n", passed + failed, name);
    } else {
        failed++;
        printf("not ok %d - %s%s%s (status %d, http %ld)\n", passed + failed, name,
               e && e->msg[0] ? ": " : "", e ? e->msg : "", e ? (int)e->code : 0, e ? e->http_status : 0L);
    }
}

/* ---- fixtures ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float urand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int add(attn_tensor_set *s, const char *name, attn_dtype dt, int rank, const int64_t *shape,
               const void *src) {
    attn_tensor *t = NULL;
    attn_error e = {0};
    if (attn_tensor_new(dt, rank, shape, &t, &e) || attn_tensor_set_add(s, name, t, &e)) {
        fprintf(stderr, "gen: %s: %s\n", name, e.msg);
        return -1;
    }
    if (src) memcpy(t->data, src, t->nbytes);
    else
        for (size_t i = 0; i < t->numel; i++) ((float *)t->data)[i] = urand();
    return 0;
}

static int write_set(attn_tensor_set *s, const char *dir, const char *file) {
    char path[4096];
    attn_error e = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = attn_safetensors_write_file(s, path, &e) ? -1 : 0;
    if (rc) fprintf(stderr, "gen: %s: %s\n", path, e.msg);
    attn_tensor_set_free(s);
    return rc;
}

/* full_in: every wire dtype but INT32 (FP32 data, a BOOL mask, INT64
 * lengths), shaped so that no query row is fully masked (no NaN).
 * readme_in: the README example's tensors. */
static int gen(const char *dir) {
    enum { N = 2, L = 16, S = 16, H = 2, E = 8, D = 4 };
    attn_tensor_set *s = attn_tensor_set_new();
    unsigned char mask[L * S];
    for (int i = 0; i < L; i++)
        for (int j = 0; j < S; j++) mask[i * S + j] = j <= i;
    int64_t lengths[N] = {S, 12};
    if (!s || add(s, "queries", ATTN_F32, 4, (int64_t[]){N, L, H, E}, NULL) ||
        add(s, "keys", ATTN_F32, 4, (int64_t[]){N, S, H, E}, NULL) ||
        add(s, "values", ATTN_F32, 4, (int64_t[]){N, S, H, D}, NULL) ||
        add(s, "attn_mask", ATTN_BOOL, 2, (int64_t[]){L, S}, mask) ||
        add(s, "key_lengths", ATTN_I64, 1, (int64_t[]){N}, lengths) || write_set(s, dir, "full_in.safetensors"))
        return 1;
    /* seq_in: a self sequence (N=2, L=9, H=2, E=8, D=4); seq_mask_in: the same
     * with a causal mask (the one-shot reference); cross_in: queries L=6 and a
     * memory of S=7 keys and values. */
    {
        enum { SN = 2, SL = 9, SH = 2, SE = 8, SD = 4, CL = 6, CS = 7 };
        static float sq[SN * SL * SH * SE], sk[SN * SL * SH * SE], sv[SN * SL * SH * SD];
        static unsigned char smask[SL * SL];
        for (size_t i = 0; i < sizeof sq / sizeof *sq; i++) sq[i] = urand(), sk[i] = urand();
        for (size_t i = 0; i < sizeof sv / sizeof *sv; i++) sv[i] = urand();
        for (int i = 0; i < SL; i++)
            for (int j = 0; j < SL; j++) smask[i * SL + j] = j <= i;
        int64_t qs[] = {SN, SL, SH, SE}, vs[] = {SN, SL, SH, SD};
        for (int with_mask = 0; with_mask < 2; with_mask++) {
            s = attn_tensor_set_new();
            if (!s || add(s, "queries", ATTN_F32, 4, qs, sq) || add(s, "keys", ATTN_F32, 4, qs, sk) ||
                add(s, "values", ATTN_F32, 4, vs, sv) ||
                (with_mask && add(s, "attn_mask", ATTN_BOOL, 2, (int64_t[]){SL, SL}, smask)) ||
                write_set(s, dir, with_mask ? "seq_mask_in.safetensors" : "seq_in.safetensors"))
                return 1;
        }
        s = attn_tensor_set_new();
        if (!s || add(s, "queries", ATTN_F32, 4, (int64_t[]){SN, CL, SH, SE}, NULL) ||
            add(s, "keys", ATTN_F32, 4, (int64_t[]){SN, CS, SH, SE}, NULL) ||
            add(s, "values", ATTN_F32, 4, (int64_t[]){SN, CS, SH, SD}, NULL) || write_set(s, dir, "cross_in.safetensors"))
            return 1;
    }
    float q[] = {1, 0, 0, 1}, k[] = {1, 0, 0, 1}, v[] = {10, 20};
    s = attn_tensor_set_new();
    if (!s || add(s, "queries", ATTN_F32, 4, (int64_t[]){1, 2, 1, 2}, q) ||
        add(s, "keys", ATTN_F32, 4, (int64_t[]){1, 2, 1, 2}, k) ||
        add(s, "values", ATTN_F32, 4, (int64_t[]){1, 2, 1, 1}, v) || write_set(s, dir, "readme_in.safetensors"))
        return 1;
    return 0;
}

static int print(const char *file, const char *name) {
    attn_tensor_set *s = NULL;
    attn_error e = {0};
    if (attn_safetensors_read_file(file, &s, &e)) {
        fprintf(stderr, "print: %s\n", e.msg);
        return 1;
    }
    const attn_tensor *t = attn_tensor_set_get(s, name);
    int rc = !t || t->dtype != ATTN_F32;
    for (size_t i = 0; !rc && i < t->numel; i++) printf("%.9g\n", ((const float *)t->data)[i]);
    attn_tensor_set_free(s);
    return rc;
}

/* ---- API checks ---- */

typedef struct inputs {
    attn_tensor_set *set;
    attnc_tensor t[8];
    size_t n;
} inputs;

static int load_inputs(const char *dir, const char *file, inputs *in) {
    char path[4096];
    attn_error e = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    memset(in, 0, sizeof *in);
    if (attn_safetensors_read_file(path, &in->set, &e)) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        return -1;
    }
    static const attnc_dtype wire[] = {[ATTN_F32] = ATTNC_FP32, [ATTN_BOOL] = ATTNC_BOOL,
                                       [ATTN_I32] = ATTNC_INT32, [ATTN_I64] = ATTNC_INT64};
    for (size_t i = 0; i < attn_tensor_set_count(in->set) && i < 8; i++) {
        const attn_tensor *t = attn_tensor_set_at(in->set, i);
        attnc_tensor *w = &in->t[in->n++];
        w->name = attn_tensor_set_name(in->set, i);
        w->dtype = wire[t->dtype];
        w->rank = t->rank;
        memcpy(w->shape, t->shape, sizeof w->shape);
        w->data = t->data;
        w->nbytes = t->nbytes;
    }
    return 0;
}

/* Index of input `name` (inputs are in the file's order: sorted names). */
static size_t at(const inputs *in, const char *name) {
    for (size_t i = 0; i < in->n; i++)
        if (!strcmp(in->t[i].name, name)) return i;
    fprintf(stderr, "no input %s\n", name);
    exit(2);
}

/* 1 when r's "output" equals tensor "output" of dir/file bit for bit. */
static int same_as_file(const attnc_result *r, const char *dir, const char *file) {
    char path[4096];
    attn_tensor_set *s = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (attn_safetensors_read_file(path, &s, NULL)) return 0;
    const attn_tensor *want = attn_tensor_set_get(s, "output");
    const attnc_tensor *got = attnc_result_find(r, "output");
    int same = want && got && got->dtype == ATTNC_FP32 && want->dtype == ATTN_F32 && got->rank == want->rank &&
               !memcmp(got->shape, want->shape, sizeof(int64_t) * (size_t)got->rank) &&
               got->nbytes == want->nbytes && !memcmp(got->data, want->data, got->nbytes);
    attn_tensor_set_free(s);
    return same;
}

static int same_results(const attnc_result *a, const attnc_result *b) {
    const attnc_tensor *x = attnc_result_find(a, "output"), *y = attnc_result_find(b, "output");
    return x && y && x->nbytes == y->nbytes && x->rank == y->rank && !memcmp(x->data, y->data, x->nbytes);
}

static int has_model(attnc_client *c, const char *name, const char *state) {
    attnc_model_list *l = NULL;
    int found = 0;
    if (attnc_models(c, 0, &l, NULL)) return 0;
    for (size_t i = 0; i < attnc_model_list_count(l); i++) {
        const attnc_model_entry *m = attnc_model_list_at(l, i);
        if (!strcmp(m->name, name) && !strcmp(m->state, state)) found = 1;
    }
    attnc_model_list_free(l);
    return found;
}

/* The FP32 inputs of `in` as 16-bit (dt) tensors in bits[] (and, widened
 * back, as FP32 in vals[]): the other inputs unchanged. */
static void half_inputs(const inputs *in, attnc_dtype dt, attnc_tensor *t16, attnc_tensor *t32, uint16_t **bits,
                        float **vals) {
    for (size_t i = 0; i < in->n; i++) {
        t16[i] = t32[i] = in->t[i];
        bits[i] = NULL;
        vals[i] = NULL;
        if (in->t[i].dtype != ATTNC_FP32) continue;
        size_t n = in->t[i].nbytes / 4;
        bits[i] = malloc(2 * n + 2);
        vals[i] = malloc(4 * n + 4);
        if (dt == ATTNC_FP16) {
            attnc_f32_to_f16(in->t[i].data, bits[i], n);
            attnc_f16_to_f32(bits[i], vals[i], n);
        } else {
            attnc_f32_to_bf16(in->t[i].data, bits[i], n);
            attnc_bf16_to_f32(bits[i], vals[i], n);
        }
        t16[i].dtype = dt;
        t16[i].data = bits[i];
        t16[i].nbytes = 2 * n;
        t32[i].data = vals[i];
    }
}

/* FP16 / BF16 inputs and outputs, and compressed bodies, against the FP32 path. */
static void wire_checks(attnc_client *c, const char *dir, const inputs *full) {
    (void)dir;
    attnc_error e = {0};
    attnc_result *ref = NULL, *a = NULL, *b = NULL;
    check(attnc_infer(c, "full", full->t, full->n, NULL, &ref, &e) == ATTNC_OK, "wire: FP32 reference", &e);
    const attnc_tensor *ro = attnc_result_find(ref, "output");
    if (!ro) return;
    size_t n = ro->nbytes / 4;
    for (int k = 0; k < 2; k++) {
        attnc_dtype dt = k ? ATTNC_BF16 : ATTNC_FP16;
        const char *name = attnc_dtype_name(dt);
        attnc_tensor t16[8], t32[8];
        uint16_t *bits[8];
        float *vals[8];
        half_inputs(full, dt, t16, t32, bits, vals);
        for (int json = 0; json < 2; json++) {
            attnc_infer_opts o = {.json = json};
            char what[160];
            snprintf(what, sizeof what, "%s inputs (%s) equal FP32 inputs of the rounded values", name, json ? "JSON" : "binary");
            check(attnc_infer(c, "full", t16, full->n, &o, &a, &e) == ATTNC_OK &&
                      attnc_infer(c, "full", t32, full->n, &o, &b, &e) == ATTNC_OK && same_results(a, b) &&
                      !same_results(a, ref),
                  what, &e);
            attnc_result_free(a);
            attnc_result_free(b);
            a = b = NULL;
            o.output_datatype = name;
            snprintf(what, sizeof what, "output_datatype %s (%s): the reference rounded to nearest even", name,
                     json ? "JSON" : "binary");
            uint16_t *want = malloc(2 * n + 2);
            if (dt == ATTNC_FP16) attnc_f32_to_f16(ro->data, want, n);
            else attnc_f32_to_bf16(ro->data, want, n);
            const attnc_tensor *got = NULL;
            check(attnc_infer(c, "full", full->t, full->n, &o, &a, &e) == ATTNC_OK && attnc_result_count(a) == 1 &&
                      (got = attnc_result_find(a, "output")) && got->dtype == dt && got->nbytes == 2 * n &&
                      !memcmp(got->data, want, 2 * n),
                  what, &e);
            free(want);
            attnc_result_free(a);
            a = NULL;
        }
        for (size_t i = 0; i < full->n; i++) {
            free(bits[i]);
            free(vals[i]);
        }
    }
    /* float16 conversions against known patterns */
    float f[6] = {1.0f, -2.0f, 65504.0f, 65520.0f, 5.9604645e-8f, 1.0009765625f + 0.00048828125f};
    uint16_t h[6], bf[2];
    attnc_f32_to_f16(f, h, 6);
    check(h[0] == 0x3c00 && h[1] == 0xc000 && h[2] == 0x7bff && h[3] == 0x7c00 && h[4] == 0x0001 && h[5] == 0x3c02,
          "attnc_f32_to_f16 rounds to nearest even", NULL);
    float g[2] = {1.00390625f, 1.01171875f};
    attnc_f32_to_bf16(g, bf, 2);
    check(bf[0] == 0x3f80 && bf[1] == 0x3f82, "attnc_f32_to_bf16: ties to even", NULL);
    /* compression */
    static const char *const algos[] = {NULL, "gzip", "deflate"};
    for (int rq = 0; rq < 3; rq++)
        for (int rs = 0; rs < 3; rs++)
            for (int json = 0; json < 2; json++) {
                if (!rq && !rs) continue;
                attnc_infer_opts o = {.json = json, .request_compression_algorithm = algos[rq],
                                      .response_compression_algorithm = algos[rs]};
                char what[160];
                snprintf(what, sizeof what, "request %s, response %s (%s): the same result", algos[rq] ? algos[rq] : "plain",
                         algos[rs] ? algos[rs] : "plain", json ? "JSON" : "binary");
                check(attnc_infer(c, "full", full->t, full->n, &o, &a, &e) == ATTNC_OK && same_results(a, ref), what, &e);
                attnc_result_free(a);
                a = NULL;
            }
    check(attnc_client_set_compression(c, "gzip", "gzip", &e) == ATTNC_OK &&
              attnc_infer(c, "full", full->t, full->n, NULL, &a, &e) == ATTNC_OK && same_results(a, ref),
          "attnc_client_set_compression gzip both ways", &e);
    attnc_result_free(a);
    a = NULL;
    check(attnc_client_set_compression(c, "br", NULL, &e) == ATTNC_E_INVALID, "compression br is refused", NULL);
    attnc_infer_opts bad = {.request_compression_algorithm = "zstd"};
    check(attnc_infer(c, "full", full->t, full->n, &bad, &a, &e) == ATTNC_E_INVALID && !a, "per-call zstd is refused", NULL);
    attnc_infer_opts badt = {.output_datatype = "INT8"};
    check(attnc_infer(c, "full", full->t, full->n, &badt, &a, &e) == ATTNC_E_INVALID && !a, "output_datatype INT8 is refused", NULL);
    attnc_client_set_compression(c, NULL, NULL, NULL);
    attnc_result_free(ref);
}

static void api(const char *url, const char *dir) {
    attnc_error e = {0};
    attnc_client *c = NULL, *dead = NULL;
    attnc_result *r = NULL, *r2 = NULL;
    char path[4096];
    inputs full, ls;
    int yes = 0;

    check(attnc_client_new("ftp://127.0.0.1/", &dead, &e) == ATTNC_E_INVALID && !dead,
          "client_new refuses a non-HTTP URL", NULL);
    if (attnc_client_new(url, &c, &e)) {
        check(0, "client_new", &e);
        return;
    }
    check(attnc_client_set_api_key(c, "a\nb", &e) == ATTNC_E_INVALID, "set_api_key refuses a newline", NULL);
    check(attnc_server_live(c, &yes, &e) == ATTNC_OK && yes, "server live", &e);
    check(attnc_server_ready(c, &yes, &e) == ATTNC_OK && yes, "server ready", &e);

    char *meta = NULL;
    check(attnc_server_metadata(c, &meta, &e) == ATTNC_OK && strstr(meta, "\"name\"") &&
              strstr(meta, "binary_tensor_data"),
          "server metadata names the binary tensor data extension", &e);
    free(meta);
    meta = NULL;
    check(attnc_model_metadata(c, "ls", &meta, &e) == ATTNC_OK && strstr(meta, "\"inputs\""),
          "model metadata has inputs", &e);
    free(meta);
    check(has_model(c, "ls", "READY"), "repository index lists ls as READY", NULL);
    check(attnc_model_ready(c, "ls", &yes, &e) == ATTNC_OK && yes, "model ls ready", &e);
    attnc_status st = attnc_model_ready(c, "no_such_model", &yes, &e);
    check((st == ATTNC_OK || st == ATTNC_E_NOT_FOUND) && !yes, "model_ready of an unknown model: no", &e);

    if (load_inputs(dir, "full_in.safetensors", &full) || load_inputs(dir, "ls_in.safetensors", &ls)) {
        check(0, "fixtures", NULL);
        attnc_client_free(c);
        return;
    }

    /* Inference, binary and JSON, against `attn run` bit for bit. */
    attnc_infer_opts opts = {.id = "req-7"};
    check(attnc_infer(c, "full", full.t, full.n, &opts, &r, &e) == ATTNC_OK &&
              same_as_file(r, dir, "full_ref.safetensors"),
          "infer full (binary): bit for bit equal to attn run", &e);
    check(r && !strcmp(attnc_result_id(r), "req-7") && !strcmp(attnc_result_model_name(r), "full"),
          "the response echoes the id and names the model", NULL);
    opts.json = 1;
    check(attnc_infer(c, "full", full.t, full.n, &opts, &r2, &e) == ATTNC_OK && same_results(r, r2),
          "infer full (JSON): bit for bit equal to binary", &e);
    attnc_result_free(r2);
    r2 = NULL;
    const char *names[] = {"output"};
    attnc_infer_opts named = {.outputs = names, .n_outputs = 1};
    check(attnc_infer(c, "full", full.t, full.n, &named, &r2, &e) == ATTNC_OK && same_results(r, r2) &&
              attnc_result_count(r2) == 1,
          "infer full asking for output by name", &e);
    attnc_result_free(r2);
    r2 = NULL;
    attnc_result_free(r);
    r = NULL;
    check(attnc_infer(c, "ls", ls.t, ls.n, NULL, &r, &e) == ATTNC_OK && same_as_file(r, dir, "ls_ref.safetensors"),
          "infer ls (weights from the repository): equal to attn run", &e);
    attnc_result_free(r);
    r = NULL;

    wire_checks(c, dir, &full);

    /* Per-request config of a built-in model. */
    attnc_infer_opts temp = {.parameters_json = "{\"softmax_temp\": 0.25}"};
    check(attnc_infer(c, "full", full.t, full.n, &temp, &r, &e) == ATTNC_OK &&
              same_as_file(r, dir, "full_temp_ref.safetensors"),
          "infer full with parameters softmax_temp: equal to attn run of that config", &e);
    attnc_result_free(r);
    r = NULL;
    attnc_infer_opts badp = {.parameters_json = "[1,2"};
    check(attnc_infer(c, "full", full.t, full.n, &badp, &r, &e) == ATTNC_E_INVALID && !r,
          "malformed parameters are refused before sending", &e);

    /* The server's errors, with its message. */
    check(attnc_infer(c, "no_such_model", full.t, full.n, NULL, &r, &e) == ATTNC_E_NOT_FOUND &&
              e.http_status == 404 && !strstr(e.msg, "HTTP 404") && !r,
          "infer on an unknown model: not found, with the server's message", &e);
    attnc_tensor bad[8];
    size_t q = at(&full, "queries"), k = at(&full, "keys");
    memcpy(bad, full.t, sizeof bad);
    bad[k].shape[3] = 4; /* keys' E no longer matches queries' */
    bad[k].nbytes /= 2;
    check(attnc_infer(c, "full", bad, full.n, NULL, &r, &e) == ATTNC_E_BAD_REQUEST && e.http_status == 400 &&
              !strstr(e.msg, "HTTP 400") && !r,
          "infer with mismatched shapes: bad request, with the server's message", &e);
    st = attnc_infer(c, "a/../../v2", full.t, full.n, NULL, &r, &e);
    check((st == ATTNC_E_NOT_FOUND || st == ATTNC_E_BAD_REQUEST) && !r, "a model name cannot reach another endpoint", &e);

    /* Checked before sending: a client of a dead port still says INVALID. */
    if (attnc_client_new("http://127.0.0.1:1", &dead, &e) == ATTNC_OK) {
        memcpy(bad, full.t, sizeof bad);
        bad[q].nbytes -= 4;
        check(attnc_infer(dead, "full", bad, full.n, NULL, &r, &e) == ATTNC_E_INVALID,
              "a byte count that does not match the shape is refused locally", &e);
        memcpy(bad, full.t, sizeof bad);
        bad[q].rank = 9;
        check(attnc_infer(dead, "full", bad, full.n, NULL, &r, &e) == ATTNC_E_INVALID, "rank 9 is refused locally", &e);
        memcpy(bad, full.t, sizeof bad);
        bad[q].shape[0] = -1;
        check(attnc_infer(dead, "full", bad, full.n, NULL, &r, &e) == ATTNC_E_INVALID,
              "a negative dimension is refused locally", &e);
        float *nan_q = malloc(full.t[q].nbytes);
        memcpy(bad, full.t, sizeof bad);
        if (nan_q) {
            memcpy(nan_q, full.t[q].data, full.t[q].nbytes);
            nan_q[5] = NAN;
            bad[q].data = nan_q;
        }
        attnc_infer_opts js = {.json = 1};
        check(nan_q && attnc_infer(dead, "full", bad, full.n, &js, &r, &e) == ATTNC_E_INVALID &&
                  strstr(e.msg, "NaN"),
              "NaN cannot go as JSON", &e);
        free(nan_q);
        check(attnc_server_live(dead, &yes, &e) == ATTNC_E_TRANSPORT && !yes && e.http_status == 0,
              "an unreachable server is a transport error", &e);
        attnc_client_free(dead);
    }

    /* A response over the limit is cut, not buffered. */
    attnc_client_set_max_response(c, 100);
    check(attnc_infer(c, "full", full.t, full.n, NULL, &r, &e) == ATTNC_E_TOO_LARGE && !r,
          "a response larger than max_response is refused", &e);
    attnc_client_set_max_response(c, (size_t)1 << 30);

    /* The repository: load from a folder, serve, reload broken, unload. */
    snprintf(path, sizeof path, "%s/repo/ls", dir);
    check(attnc_load_dir(c, "ls_api", path, &e) == ATTNC_OK, "load_dir ls_api", &e);
    check(has_model(c, "ls_api", "READY"), "the index lists ls_api as READY", NULL);
    check(attnc_infer(c, "ls_api", ls.t, ls.n, NULL, &r, &e) == ATTNC_OK &&
              same_as_file(r, dir, "ls_ref.safetensors"),
          "infer ls_api: equal to attn run", &e);
    attnc_result_free(r);
    r = NULL;
    check(attnc_load(c, "ls_api", "{\"type\": \"linear_self\", \"config\": {\"dim\": 16, \"heads\": 2}}", "xx", 2,
                     &e) == ATTNC_E_BAD_REQUEST && e.msg[0],
          "loading broken weights is a bad request", &e);
    check(attnc_infer(c, "ls_api", ls.t, ls.n, NULL, &r, &e) == ATTNC_OK &&
              same_as_file(r, dir, "ls_ref.safetensors"),
          "after a failed load the previous version still serves", &e);
    attnc_result_free(r);
    r = NULL;
    check(attnc_load(c, "ls_api", "not json", NULL, 0, &e) == ATTNC_E_INVALID, "a config that is not JSON is refused locally", &e);
    check(attnc_load_dir(c, "x", "/nonexistent", &e) == ATTNC_E_IO, "load_dir of a missing folder: i/o error", &e);
    check(attnc_unload(c, "ls_api", &e) == ATTNC_OK, "unload ls_api", &e);
    check(attnc_infer(c, "ls_api", ls.t, ls.n, NULL, &r, &e) == ATTNC_E_NOT_FOUND && !r,
          "infer after unload: not found", &e);

    attn_tensor_set_free(full.set);
    attn_tensor_set_free(ls.set);
    attnc_client_free(c);
}

/* ---- sequences ---- */

/* Rows [t, t+T) along axis 1 of w into p (data in buf, big enough). */
static void slice1(const attnc_tensor *w, int64_t t, int64_t T, attnc_tensor *p, unsigned char *buf) {
    size_t row = w->nbytes / (size_t)w->shape[0] / (size_t)w->shape[1];
    *p = *w;
    p->shape[1] = T;
    for (int64_t b = 0; b < w->shape[0]; b++)
        memcpy(buf + (size_t)(b * T) * row, (const unsigned char *)w->data + (size_t)(b * w->shape[1] + t) * row,
               (size_t)T * row);
    p->data = buf;
    p->nbytes = row * (size_t)w->shape[0] * (size_t)T;
}

/* The queries/keys/values of `in` (no masks) for tokens [t, t+T). */
static size_t tokens(const inputs *in, int64_t t, int64_t T, attnc_tensor *p, unsigned char bufs[][4096]) {
    static const char *const names[] = {"queries", "keys", "values"};
    for (int i = 0; i < 3; i++) slice1(&in->t[at(in, names[i])], t, T, &p[i], bufs[i]);
    return 3;
}

/* Appends output rows of r (N, T, H, D) at token t into acc (N, L, H, D). */
static int gather(const attnc_result *r, float *acc, int64_t L, int64_t t) {
    const attnc_tensor *o = attnc_result_find(r, "output");
    if (!o || o->rank != 4 || o->dtype != ATTNC_FP32) return -1;
    size_t row = (size_t)(o->shape[2] * o->shape[3]);
    for (int64_t b = 0; b < o->shape[0]; b++)
        memcpy(acc + (size_t)(b * L + t) * row, (const float *)o->data + (size_t)(b * o->shape[1]) * row,
               (size_t)o->shape[1] * row * 4);
    return 0;
}

static float max_diff(const float *a, const attnc_result *r) {
    const attnc_tensor *o = attnc_result_find(r, "output");
    float m = o ? 0 : INFINITY;
    for (size_t i = 0; o && i < o->nbytes / 4; i++) {
        float d = fabsf(a[i] - ((const float *)o->data)[i]);
        if (!(d <= m)) m = d; /* NaN wins */
    }
    return m;
}

static void seq_checks(const char *url, const char *dir) {
    attnc_error e = {0};
    attnc_client *c = NULL;
    inputs sin, smask, cin;
    unsigned char bufs[3][4096];
    attnc_tensor p[3];
    char name[200];
    if (attnc_client_new(url, &c, &e)) {
        check(0, "client_new", &e);
        return;
    }
    if (load_inputs(dir, "seq_in.safetensors", &sin) || load_inputs(dir, "seq_mask_in.safetensors", &smask) ||
        load_inputs(dir, "cross_in.safetensors", &cin)) {
        check(0, "load the sequence inputs", NULL);
        attnc_client_free(c);
        return;
    }
    const int64_t L = sin.t[at(&sin, "queries")].shape[1];
    const size_t out_n = (size_t)(2 * L * 2 * 4);
    float acc[2 * 16 * 2 * 4], acc2[2 * 16 * 2 * 4];

    /* a prefill of 4, then single tokens, against one causal infer */
    static const struct {
        const char *model, *config, *ref_params;
        int masked;
    } cases[] = {{"full", NULL, NULL, 1},
                 {"causal_linear", "{\"query_dimensions\": 8}", "{\"query_dimensions\": 8}", 0}};
    for (size_t k = 0; k < 2; k++) {
        attnc_result *ref = NULL, *r = NULL;
        attnc_infer_opts ro = {.parameters_json = cases[k].ref_params};
        const inputs *ri = cases[k].masked ? &smask : &sin;
        snprintf(name, sizeof name, "%s: one causal infer of the whole sequence", cases[k].model);
        check(attnc_infer(c, cases[k].model, ri->t, ri->n, &ro, &ref, &e) == ATTNC_OK, name, &e);
        attnc_seq *s = NULL;
        attnc_seq_opts so = {.config_json = cases[k].config};
        check(attnc_seq_new(c, cases[k].model, &so, &s, &e) == ATTNC_OK && !attnc_seq_started(s) &&
                  strlen(attnc_seq_id(s)) > 0 && strspn(attnc_seq_id(s), "0123456789") == strlen(attnc_seq_id(s)),
              "seq_new: a random integer id, not started", &e);
        int ok = s != NULL, lengths = 1, ids = 1;
        for (int64_t t = 0; ok && t < L;) {
            int64_t T = t ? 1 : 4;
            size_t m = tokens(&sin, t, T, p, bufs);
            ok = attnc_seq_step(s, p, m, t + T == L, NULL, &r, &e) == ATTNC_OK && !gather(r, acc, L, t);
            lengths = lengths && attnc_seq_length(s) == t + T;
            char want[64];
            snprintf(want, sizeof want, "\"sequence_id\":%s", attnc_seq_id(s));
            ids = ids && strstr(attnc_result_parameters(r), want);
            attnc_result_free(r);
            r = NULL;
            t += T;
        }
        snprintf(name, sizeof name, "%s: prefill 4 then single tokens, max |diff| %g <= 1e-5", cases[k].model,
                 ok ? (double)max_diff(acc, ref) : -1.0);
        check(ok && max_diff(acc, ref) <= 1e-5f, name, &e);
        snprintf(name, sizeof name, "%s: the replies carry the id and the length", cases[k].model);
        check(ok && lengths && ids && attnc_seq_ended(s), name, NULL);
        /* ended: the next step is 404 with the reason */
        size_t m = tokens(&sin, 0, 1, p, bufs);
        snprintf(name, sizeof name, "%s: a step after the end: 404 saying it ended by sequence_end", cases[k].model);
        check(attnc_seq_step(s, p, m, 0, NULL, &r, &e) == ATTNC_E_NOT_FOUND && e.http_status == 404 && !r &&
                  strstr(e.msg, "sequence_end"),
              name, &e);
        attnc_seq_free(s);

        /* export after 5 tokens, restore under a new id, continue both */
        attnc_seq *a = NULL, *b = NULL;
        void *state = NULL;
        size_t state_len = 0;
        ok = attnc_seq_new(c, cases[k].model, &so, &a, &e) == ATTNC_OK;
        for (int64_t t = 0; ok && t < 5; t++) {
            m = tokens(&sin, t, 1, p, bufs);
            ok = attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_OK && !gather(r, acc, L, t);
            attnc_result_free(r);
            r = NULL;
        }
        snprintf(name, sizeof name, "%s: export after 5 tokens", cases[k].model);
        check(ok && attnc_seq_export(a, &state, &state_len, &e) == ATTNC_OK && state_len > 8, name, &e);
        char bid[64];
        snprintf(bid, sizeof bid, "restored-%s-%s", cases[k].model, attnc_seq_id(a));
        for (char *q = bid; *q; q++)
            if (*q == '_') *q = '.';
        snprintf(name, sizeof name, "%s: restore under a new id", cases[k].model);
        check(state && attnc_seq_restore(c, cases[k].model, bid, state, state_len, &b, &e) == ATTNC_OK &&
                  attnc_seq_length(b) == 5 && attnc_seq_started(b),
              name, &e);
        snprintf(name, sizeof name, "%s: restore onto a live id: conflict (409)", cases[k].model);
        check(state && attnc_seq_restore(c, cases[k].model, bid, state, state_len, &s, &e) == ATTNC_E_CONFLICT &&
                  e.http_status == 409 && !s,
              name, &e);
        char *list = NULL;
        snprintf(name, sizeof name, "%s: the list holds both", cases[k].model);
        check(attnc_seq_list(c, cases[k].model, &list, &e) == ATTNC_OK && strstr(list, bid) &&
                  strstr(list, attnc_seq_id(a)),
              name, &e);
        free(list);
        memcpy(acc2, acc, sizeof acc);
        int same = b != NULL;
        for (int64_t t = 5; ok && same && t < L; t++) {
            attnc_result *rb = NULL;
            m = tokens(&sin, t, 1, p, bufs);
            ok = attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_OK && !gather(r, acc, L, t) &&
                 attnc_seq_step(b, p, m, 0, NULL, &rb, &e) == ATTNC_OK && !gather(rb, acc2, L, t);
            same = ok && same_results(r, rb);
            attnc_result_free(r);
            attnc_result_free(rb);
            r = NULL;
        }
        snprintf(name, sizeof name, "%s: the restored sequence continues bit for bit, and both match the causal infer",
                 cases[k].model);
        check(ok && same && !memcmp(acc, acc2, out_n * 4) && max_diff(acc, ref) <= 1e-5f, name, &e);
        snprintf(name, sizeof name, "%s: seq_end (DELETE) both", cases[k].model);
        check(attnc_seq_end(a, &e) == ATTNC_OK && attnc_seq_ended(a) && b && attnc_seq_end(b, &e) == ATTNC_OK, name, &e);
        m = tokens(&sin, 0, 1, p, bufs);
        snprintf(name, sizeof name, "%s: a step after DELETE: 404 saying deleted", cases[k].model);
        check(attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_E_NOT_FOUND && strstr(e.msg, "delete"), name, &e);
        free(state);
        attnc_seq_free(a);
        attnc_seq_free(b);
        attnc_result_free(ref);

        /* a stale copy: the server's sequence goes back to 2 tokens while the
         * object counts 3; its next step is refused (409), nothing applied */
        if (k == 0) {
            attnc_seq *st = NULL, *back = NULL;
            void *old = NULL;
            size_t old_len = 0;
            ok = attnc_seq_new(c, cases[k].model, &so, &st, &e) == ATTNC_OK;
            for (int64_t t = 0; ok && t < 3; t++) {
                m = tokens(&sin, t, 1, p, bufs);
                ok = attnc_seq_step(st, p, m, 0, NULL, &r, &e) == ATTNC_OK;
                attnc_result_free(r);
                r = NULL;
                if (ok && t == 1) ok = attnc_seq_export(st, &old, &old_len, &e) == ATTNC_OK;
            }
            ok = ok && attnc_seq_delete(c, cases[k].model, attnc_seq_id(st), &e) == ATTNC_OK &&
                 attnc_seq_restore(c, cases[k].model, attnc_seq_id(st), old, old_len, &back, &e) == ATTNC_OK &&
                 attnc_seq_length(back) == 2 && attnc_seq_length(st) == 3;
            check(ok, "stale copy: export at 2 tokens, step to 3, restore the export", &e);
            m = tokens(&sin, 3, 1, p, bufs);
            check(attnc_seq_step(st, p, m, 0, NULL, &r, &e) == ATTNC_E_CONFLICT && e.http_status == 409 && !r &&
                      strstr(e.msg, "stale"),
                  "stale copy: the next step is refused with 409 (attnd_expect_length)", &e);
            check(back && attnc_seq_end(back, &e) == ATTNC_OK, "stale copy: end it", &e);
            free(old);
            attnc_seq_free(st);
            attnc_seq_free(back);
        }
    }

    /* cross on full: the start carries the memory, later steps only queries */
    {
        attnc_result *ref = NULL, *r = NULL;
        check(attnc_infer(c, "full", cin.t, cin.n, NULL, &ref, &e) == ATTNC_OK, "cross: one infer", &e);
        attnc_seq *s = NULL;
        attnc_seq_opts so = {.kind = "cross", .id = "cross.c-client"};
        const attnc_tensor *qw = &cin.t[at(&cin, "queries")];
        const int64_t CL = qw->shape[1];
        int ok = attnc_seq_new(c, "full", &so, &s, &e) == ATTNC_OK;
        for (int64_t t = 0; ok && t < CL;) {
            int64_t T = t ? 1 : 2;
            attnc_tensor in[3];
            size_t m = 1;
            slice1(qw, t, T, &in[0], bufs[0]);
            if (!t) {
                in[1] = cin.t[at(&cin, "keys")];
                in[2] = cin.t[at(&cin, "values")];
                m = 3;
            }
            ok = attnc_seq_step(s, in, m, t + T == CL, NULL, &r, &e) == ATTNC_OK && !gather(r, acc, CL, t);
            attnc_result_free(r);
            r = NULL;
            t += T;
        }
        snprintf(name, sizeof name, "cross on full: equals one infer, max |diff| %g <= 1e-5",
                 ok ? (double)max_diff(acc, ref) : -1.0);
        check(ok && max_diff(acc, ref) <= 1e-5f, name, &e);
        attnc_seq_free(s);
        attnc_result_free(ref);
    }

    /* errors */
    {
        attnc_result *r = NULL;
        attnc_seq *a = NULL, *b = NULL;
        attnc_seq_opts so = {.id = "dup-c-client"};
        size_t m = tokens(&sin, 0, 1, p, bufs);
        check(attnc_seq_new(c, "full", &so, &a, &e) == ATTNC_OK && attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_OK,
              "start dup-c-client", &e);
        attnc_result_free(r);
        r = NULL;
        check(attnc_seq_new(c, "full", &so, &b, &e) == ATTNC_OK &&
                  attnc_seq_step(b, p, m, 0, NULL, &r, &e) == ATTNC_E_CONFLICT && e.http_status == 409 &&
                  strstr(e.msg, "live"),
              "a second start on a live id: conflict (409)", &e);
        check(attnc_seq_delete(c, "full", "dup-c-client", &e) == ATTNC_OK, "seq_delete by id", &e);
        check(attnc_seq_delete(c, "full", "dup-c-client", &e) == ATTNC_E_NOT_FOUND, "seq_delete again: 404", &e);
        attnc_seq_free(a);
        attnc_seq_free(b);
        a = NULL;
        check(attnc_seq_new(c, "exact_topk", NULL, &a, &e) == ATTNC_OK &&
                  attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_E_BAD_REQUEST && e.http_status == 400 &&
                  strstr(e.msg, "types that have them"),
              "a model without sequences (exact_topk): 400 naming the types that have them", &e);
        attnc_seq_free(a);
        a = NULL;
        attnc_seq_opts bad = {.id = "has space"};
        check(attnc_seq_new(c, "full", &bad, &a, &e) == ATTNC_E_INVALID && !a, "a bad string id is refused locally", &e);
        bad = (attnc_seq_opts){.kind = "sideways"};
        check(attnc_seq_new(c, "full", &bad, &a, &e) == ATTNC_E_INVALID && !a, "a bad kind is refused locally", &e);
        bad = (attnc_seq_opts){.config_json = "[1]"};
        check(attnc_seq_new(c, "full", &bad, &a, &e) == ATTNC_E_INVALID && !a, "a config that is not an object is refused", &e);
        void *state = NULL;
        size_t len = 0;
        so = (attnc_seq_opts){.id = "never-started-here"};
        check(attnc_seq_new(c, "full", &so, &a, &e) == ATTNC_OK && attnc_seq_export(a, &state, &len, &e) == ATTNC_E_NOT_FOUND &&
                  strstr(e.msg, "never started") && !state,
              "export of an unknown id: 404 saying it never started", &e);
        attnc_seq_free(a);
    }
    attn_tensor_set_free(sin.set);
    attn_tensor_set_free(smask.set);
    attn_tensor_set_free(cin.set);
    attnc_client_free(c);
}

static void seq_limit_checks(const char *url, const char *dir) {
    attnc_error e = {0};
    attnc_client *c = NULL;
    inputs sin;
    unsigned char bufs[3][4096];
    attnc_tensor p[3];
    attnc_result *r = NULL;
    if (attnc_client_new(url, &c, &e) || load_inputs(dir, "seq_in.safetensors", &sin)) {
        check(0, "client and inputs", &e);
        attnc_client_free(c);
        return;
    }
    attnc_client_set_retries(c, 0);
    attnc_seq *a = NULL, *b = NULL;
    size_t m = tokens(&sin, 0, 3, p, bufs);
    check(attnc_seq_new(c, "full", NULL, &a, &e) == ATTNC_OK && attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_OK,
          "limits: 3 tokens", &e);
    attnc_result_free(r);
    r = NULL;
    m = tokens(&sin, 3, 2, p, bufs);
    check(attnc_seq_step(a, p, m, 0, NULL, &r, &e) == ATTNC_E_TOO_LARGE && e.http_status == 413 &&
              strstr(e.msg, "max-sequence-tokens"),
          "limits: 2 more than --max-sequence-tokens 4 allows: 413", &e);
    m = tokens(&sin, 0, 1, p, bufs);
    check(attnc_seq_new(c, "full", NULL, &b, &e) == ATTNC_OK &&
              attnc_seq_step(b, p, m, 0, NULL, &r, &e) == ATTNC_E_UNAVAILABLE && e.http_status == 503 &&
              e.retry_after >= 0 && strstr(e.msg, "max-sequences"),
          "limits: a second sequence with --max-sequences 1: 503 with Retry-After", &e);
    check(attnc_seq_end(a, &e) == ATTNC_OK, "limits: end the first", &e);
    check(attnc_seq_step(b, p, m, 1, NULL, &r, &e) == ATTNC_OK && attnc_seq_ended(b), "limits: then the second starts", &e);
    attnc_result_free(r);
    attnc_seq_free(a);
    attnc_seq_free(b);
    attn_tensor_set_free(sin.set);
    attnc_client_free(c);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "gen")) return gen(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "print")) return print(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "api")) {
        api(argv[2], argv[3]);
        printf("attnc: %d passed, %d failed\n", passed, failed);
        return failed || !passed;
    }
    if (argc == 4 && (!strcmp(argv[1], "seq") || !strcmp(argv[1], "seqlimits"))) {
        if (!strcmp(argv[1], "seq")) seq_checks(argv[2], argv[3]);
        else seq_limit_checks(argv[2], argv[3]);
        printf("attnc %s: %d passed, %d failed\n", argv[1], passed, failed);
        return failed || !passed;
    }
    fprintf(stderr, "usage: attnc_test gen DIR | print FILE NAME | api URL DIR | seq URL DIR | seqlimits URL DIR\n");
    return 2;
}
