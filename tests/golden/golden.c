/*
 * golden.c — glue between the reference vectors and `attn run`.
 *
 *   golden prep CASE_DIR WORK_DIR   writes WORK_DIR/model/{config.json,weights.safetensors}
 *                                   and WORK_DIR/inputs.safetensors (tensors renamed to the
 *                                   model's input names)
 *   golden cmp  CASE_DIR OUT.safetensors
 *                                   checks |got - expected| <= atol + rtol*|expected| for
 *                                   "output" and every map of case.json's extra_outputs
 *                                   (attn run --output-attention); where an expected map
 *                                   entry is exactly 0 (a masked key) the got one must be too
 *
 * The numerics themselves run through `attn run`, as a user would run them.
 */
#include "attn.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int die(const char *a, const char *b) {
    fprintf(stderr, "golden: %s%s%s\n", a, b ? ": " : "", b ? b : "");
    return 1;
}

static int copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb"), *t = fopen(to, "wb");
    int rc = 0;
    if (!f || !t) rc = -1;
    char buf[65536];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, t) != n) rc = -1;
    if (f) fclose(f);
    if (t && fclose(t)) rc = -1;
    return rc;
}

static int prep(const char *cdir, const char *wdir) {
    char p[8192], mdir[4096];
    json_error_t je;
    snprintf(p, sizeof p, "%s/case.json", cdir);
    json_t *c = json_load_file(p, 0, &je);
    if (!c) return die(p, je.text);
    snprintf(mdir, sizeof mdir, "%s/model", wdir);
    mkdir(wdir, 0755);
    mkdir(mdir, 0755);
    json_t *cfg = json_pack("{s:O, s:O}", "type", json_object_get(c, "type"), "config",
                            json_object_get(c, "config"));
    snprintf(p, sizeof p, "%s/config.json", mdir);
    if (!cfg || json_dump_file(cfg, p, JSON_INDENT(1))) return die("cannot write", p);
    json_decref(cfg);
    char w[4096];
    snprintf(w, sizeof w, "%s/weights.safetensors", cdir);
    struct stat sb;
    if (stat(w, &sb) == 0) {
        snprintf(p, sizeof p, "%s/weights.safetensors", mdir);
        if (copy_file(w, p)) return die("cannot copy", w);
    }
    attn_error e = {0};
    attn_model *m;
    if (attn_model_load_dir(mdir, &m, &e)) return die("model", e.msg);
    attn_tensor_set *io;
    snprintf(p, sizeof p, "%s/io.safetensors", cdir);
    if (attn_safetensors_read_file(p, &io, &e)) return die(p, e.msg);
    attn_tensor_set *in = attn_tensor_set_new();
    json_t *names = json_object_get(c, "inputs"), *opt = json_object_get(c, "optional_inputs");
    size_t k = 0;
    /* Positional inputs map onto the model's required inputs in order. */
    for (size_t i = 0; i < attn_model_num_inputs(m) && k < json_array_size(names); i++) {
        const attn_io_spec *s = attn_model_input(m, i);
        if (!s->required) continue;
        const char *tn = json_string_value(json_array_get(names, k++));
        const attn_tensor *t = attn_tensor_set_get(io, tn);
        attn_tensor *v;
        if (!t) return die("missing tensor in io.safetensors", tn);
        attn_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &v, &e);
        attn_tensor_set_add(in, s->name, v, &e);
    }
    const char *arg;
    json_t *tn;
    json_object_foreach(opt, arg, tn) {
        const attn_tensor *t = attn_tensor_set_get(io, json_string_value(tn));
        attn_tensor *v;
        if (!t) return die("missing tensor in io.safetensors", json_string_value(tn));
        attn_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &v, &e);
        attn_tensor_set_add(in, arg, v, &e);
    }
    snprintf(p, sizeof p, "%s/inputs.safetensors", wdir);
    if (attn_safetensors_write_file(in, p, &e)) return die(p, e.msg);
    attn_tensor_set_free(in);
    attn_tensor_set_free(io);
    attn_model_free(m);
    json_decref(c);
    return 0;
}

/* One output against its expected tensor; `zeros`: expected zeros must be exact. */
static int cmp_tensor(const char *name, const attn_tensor *x, const attn_tensor *y, double rtol, double atol,
                      int zeros) {
    char s1[96], s2[96];
    int same = x->rank == y->rank && x->dtype == ATTN_F32 && y->dtype == ATTN_F32;
    for (int i = 0; same && i < x->rank; i++) same = x->shape[i] == y->shape[i];
    if (!same) {
        fprintf(stderr, "golden: %s: shape %s, expected %s\n", name, attn_shape_str(y->rank, y->shape, s1, sizeof s1),
                attn_shape_str(x->rank, x->shape, s2, sizeof s2));
        return 1;
    }
    const float *ex = x->data, *got = y->data;
    size_t bad = 0, worst_i = 0, nonzero = 0;
    double worst = 0;
    for (size_t i = 0; i < x->numel; i++) {
        double d = fabs((double)got[i] - ex[i]), lim = atol + rtol * fabs(ex[i]);
        int nan_ok = isnan(ex[i]) && isnan(got[i]);
        if (zeros && ex[i] == 0.0f && got[i] != 0.0f) nonzero++;
        if (!nan_ok && !(d <= lim)) {
            bad++;
            if (!(d <= worst)) { worst = d; worst_i = i; }
        }
    }
    if (bad) {
        fprintf(stderr, "golden: %s: %zu/%zu elements off; worst at %zu: got %.8g expected %.8g\n", name, bad,
                x->numel, worst_i, got[worst_i], ex[worst_i]);
        return 1;
    }
    if (nonzero) {
        fprintf(stderr, "golden: %s: %zu entries the reference has exactly 0 are not 0\n", name, nonzero);
        return 1;
    }
    return 0;
}

static int cmp(const char *cdir, const char *outp) {
    char p[4096];
    json_error_t je;
    attn_error e = {0};
    snprintf(p, sizeof p, "%s/case.json", cdir);
    json_t *c = json_load_file(p, 0, &je);
    if (!c) return die(p, je.text);
    double rtol = json_number_value(json_object_get(c, "rtol")),
           atol = json_number_value(json_object_get(c, "atol"));
    attn_tensor_set *io, *out;
    snprintf(p, sizeof p, "%s/io.safetensors", cdir);
    if (attn_safetensors_read_file(p, &io, &e)) return die(p, e.msg);
    if (attn_safetensors_read_file(outp, &out, &e)) return die(outp, e.msg);
    const attn_tensor *x = attn_tensor_set_get(io, json_string_value(json_object_get(c, "output")));
    const attn_tensor *y = attn_tensor_set_get(out, "output");
    if (!x || !y) return die("output tensor missing", NULL);
    if (cmp_tensor("output", x, y, rtol, atol, 0)) return 1;
    const char *name;
    json_t *tn;
    json_object_foreach(json_object_get(c, "extra_outputs"), name, tn) {
        const attn_tensor *xe = attn_tensor_set_get(io, json_string_value(tn)), *ye = attn_tensor_set_get(out, name);
        if (!xe) return die("missing tensor in io.safetensors", json_string_value(tn));
        if (!ye) return die("output missing (run with --output-attention)", name);
        if (cmp_tensor(name, xe, ye, rtol, atol, 1)) return 1;
    }
    attn_tensor_set_free(io);
    attn_tensor_set_free(out);
    json_decref(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "prep")) return prep(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "cmp")) return cmp(argv[2], argv[3]);
    fprintf(stderr, "usage: golden prep CASE_DIR WORK_DIR | golden cmp CASE_DIR OUT.safetensors\n");
    return 2;
}
