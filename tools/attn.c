/*
 * attn.c — the offline runner: run, list and bench models without a server.
 *
 *   attn run   --model DIR --inputs IN.safetensors --output OUT.safetensors [--threads T]
 *   attn list
 *   attn bench --model DIR --inputs IN.safetensors [--threads T] [--repeat R]
 *
 * Any bad input: one line on stderr, exit status 2, nothing written.
 */
#include "attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, const attn_error *e) {
    fprintf(stderr, "attn: %s: %s\n", what, e->msg[0] ? e->msg : attn_status_str(e->code));
    return 2;
}

static int usage(void) {
    fprintf(stderr,
            "usage: attn run   --model DIR --inputs IN.safetensors --output OUT.safetensors [--threads T]\n"
            "       attn list\n"
            "       attn bench --model DIR --inputs IN.safetensors [--threads T] [--repeat R]\n");
    return 2;
}

typedef struct args {
    const char *model, *inputs, *output;
    int threads, repeat;
} args;

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, args *a) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = n > 0 ? (int)n : 1;
    a->repeat = 10;
    for (int i = 2; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "attn: %s needs a value\n", k);
            return -1;
        }
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--inputs")) a->inputs = v;
        else if (!strcmp(k, "--output")) a->output = v;
        else if (!strcmp(k, "--threads")) {
            if (parse_int(v, 1, 256, &a->threads)) { fprintf(stderr, "attn: --threads must be 1..256\n"); return -1; }
        } else if (!strcmp(k, "--repeat")) {
            if (parse_int(v, 1, 1000000, &a->repeat)) { fprintf(stderr, "attn: --repeat must be >= 1\n"); return -1; }
        } else {
            fprintf(stderr, "attn: unknown option %s\n", k);
            return -1;
        }
    }
    return 0;
}

static const char *ptype(attn_param_type t) {
    switch (t) {
    case ATTN_P_INT: return "int";
    case ATTN_P_FLOAT: return "float";
    case ATTN_P_BOOL: return "bool";
    case ATTN_P_STRING: return "string";
    case ATTN_P_INT_LIST: return "int list";
    case ATTN_P_OBJECT: return "object";
    }
    return "?";
}

static int cmd_list(void) {
    for (size_t i = 0; i < attn_mech_count(); i++) {
        const attn_mech_info *m = attn_mech_at(i);
        printf("%s", m->name);
        for (const char *const *al = m->aliases; al && *al; al++) printf(" (alias %s)", *al);
        printf(" — %s%s\n  reference: %s\n", m->summary, m->has_weights ? " [weights]" : " [built-in]",
               m->reference);
        for (const attn_param *p = m->params; p && p->key; p++) {
            printf("  %-24s %-8s ", p->key, ptype(p->type));
            if (!p->def) printf("required");
            else if (p->type == ATTN_P_STRING && strcmp(p->def, "null")) printf("default \"%s\"", p->def);
            else printf("default %s", p->def);
            if (p->choices) printf("  one of %s", p->choices);
            printf("  %s\n", p->doc ? p->doc : "");
        }
    }
    return 0;
}

static int load(const args *a, attn_model **m, attn_tensor_set **in, attn_error *e) {
    if (!a->model || !a->inputs) return usage();
    if (attn_model_load_dir(a->model, m, e)) return fail(a->model, e);
    if (attn_safetensors_read_file(a->inputs, in, e)) {
        attn_model_free(*m);
        return fail(a->inputs, e);
    }
    return 0;
}

static int cmd_run(const args *a) {
    attn_error e = {0};
    attn_model *m = NULL;
    attn_tensor_set *in = NULL, *outs = NULL;
    attn_tensor *out = NULL;
    int rc = 2;
    if (!a->output) return usage();
    if ((rc = load(a, &m, &in, &e))) return rc;
    rc = 2;
    attn_ctx *ctx = attn_ctx_new(a->threads);
    outs = attn_tensor_set_new();
    if (!ctx || !outs) {
        fprintf(stderr, "attn: out of memory\n");
        goto out;
    }
    if (attn_model_forward(m, ctx, in, &out, &e)) {
        rc = fail("forward", &e);
        goto out;
    }
    if (attn_tensor_set_add(outs, "output", out, &e)) {
        rc = fail("output", &e);
        goto out;
    }
    if (attn_safetensors_write_file(outs, a->output, &e)) {
        rc = fail(a->output, &e);
        goto out;
    }
    rc = 0;
out:
    attn_tensor_set_free(outs);
    attn_tensor_set_free(in);
    attn_ctx_free(ctx);
    attn_model_free(m);
    return rc;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int cmd_bench(const args *a) {
    attn_error e = {0};
    attn_model *m = NULL;
    attn_tensor_set *in = NULL;
    int rc;
    if ((rc = load(a, &m, &in, &e))) return rc;
    rc = 2;
    attn_ctx *ctx = attn_ctx_new(a->threads);
    double *t = calloc((size_t)a->repeat, sizeof *t);
    if (!ctx || !t) {
        fprintf(stderr, "attn: out of memory\n");
        goto out;
    }
    for (int i = -1; i < a->repeat; i++) { /* i == -1: warm-up */
        attn_tensor *o = NULL;
        double t0 = now_ms();
        if (attn_model_forward(m, ctx, in, &o, &e)) {
            rc = fail("forward", &e);
            goto out;
        }
        double dt = now_ms() - t0;
        attn_tensor_free(o);
        if (i >= 0) t[i] = dt;
    }
    qsort(t, (size_t)a->repeat, sizeof *t, cmp_double);
    double med = a->repeat % 2 ? t[a->repeat / 2] : 0.5 * (t[a->repeat / 2 - 1] + t[a->repeat / 2]);
    printf("type: %s\nthreads: %d\nrepeat: %d\nmedian_ms: %.4f\nmin_ms: %.4f\nmax_ms: %.4f\n",
           attn_model_mech(m)->name, a->threads, a->repeat, med, t[0], t[a->repeat - 1]);
    rc = 0;
out:
    free(t);
    attn_ctx_free(ctx);
    attn_tensor_set_free(in);
    attn_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    args a = {0};
    if (!strcmp(argv[1], "list")) return argc == 2 ? cmd_list() : usage();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return 0;
    }
    if (parse_args(argc, argv, &a)) return 2;
    if (!strcmp(argv[1], "run")) return cmd_run(&a);
    if (!strcmp(argv[1], "bench")) return cmd_bench(&a);
    return usage();
}
