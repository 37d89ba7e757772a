/*
 * bench_core.c — in-process timings of libattn, driven by bench/run.py.
 *
 *   bench_core case DIR [--threads 1,2] [--min-ms MS] [--min-reps R] [--max-reps R]
 *                       [--warm-ms W] [--output OUT.safetensors]
 *       DIR holds model/ (config.json [+ weights.safetensors]) and
 *       inputs.safetensors.  Warm-up forwards for W ms (default 100; at
 *       least one), then forwards until MS milliseconds and R repetitions
 *       have passed, for each thread count.
 *       --output writes the warm-up output (the smoke test compares it with
 *       PyTorch's).
 *   bench_core sgemm [--threads 1,2] [--shape M,N,K[,T]] [--min-ms MS] [--impl openblas|attn]
 *       OpenBLAS sgemm GFLOP/s with the threading libattn uses: OpenBLAS
 *       pinned to one thread, T independent sgemm loops on T pthreads, each
 *       on its own A, B, C.  T in the shape: B transposed (as Q·Kᵀ).
 *   bench_core rss --L L [--N 1 --H 8 --E 64 --D 64] [--threads 2] [--in-place 1]
 *       One `full` forward over random inputs made in memory (no files);
 *       prints the peak RSS (VmHWM), the RSS before the inputs exist and
 *       the bytes of inputs plus output.  Run it in a fresh process per size.
 *   bench_core convert [--n N]
 *       The FP16 / BF16 <-> float32 conversions (core/kernels/half.h) of
 *       every kernel variant this CPU executes, on N elements (default 3 Mi):
 *       the best of 20 runs, in ms and GB/s of 16-bit + 32-bit traffic.
 *   bench_core fma [--threads 1,2] [--min-ms MS]
 *       The FMA peak of every kernel variant this CPU executes: a
 *       register-only loop of independent fused multiply-adds
 *       (bench/fma_peak.c, built per variant) on T pthreads at once;
 *       median GFLOP/s of all T together, and per CPU second of a thread
 *       (gflops_per_cpu: what a thread gets while it runs).
 *   bench_core full [--L 512,1024] [--causal 0,1] [--threads 1,2] [--min-ms MS]
 *                   [--min-reps R] [--max-reps R] [--N 1 --H 8 --E 64 --D 64]
 *       `full` over random inputs made in memory (L = S; causal: the
 *       lower-triangular attn_mask), the same shapes as bench/cases.py; one
 *       JSON line per (L, causal, threads) with every time and the
 *       median's GFLOP/s (causal counted as the full L·S product, and as
 *       the useful half), and the mean process CPU time per forward
 *       (cpu_ms: all threads; on a shared machine less disturbed than
 *       the wall time; a mean, as Linux advances the time of a thread
 *       running on another CPU by scheduler ticks), after 200 ms of
 *       warm-up forwards per line.
 *   bench_core copy [--threads 1,2] [--mib MIB] [--min-ms MS]
 *       The memory-copy bandwidth (the roofline's bytes term, issue 12):
 *       T pthreads at once, each memcpy()ing its own MIB MiB buffer (default
 *       256, 8x a 32 MiB L3) into another (glibc's memcpy uses
 *       non-temporal stores at this size: a streaming copy), repeated until
 *       MS ms and 5 rounds have passed; GB/s of bytes read + written (2 x
 *       MIB MiB x T per round), median and best round.
 *   bench_core info
 *       OpenBLAS version, core and config.
 *
 * Every result is one JSON object per line on stdout.
 */
#include "attn.h"
#include "cpu.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* CPU time of the whole process (every thread), ms: on a shared machine the
 * wall time includes the time slices other jobs took; this does not. */
static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Peak RSS of this process in KiB: VmHWM of /proc/self/status.  Not
 * getrusage's ru_maxrss: Linux carries that over fork and exec, so a process
 * started by a big parent (the Python driver) would report the parent's peak. */
static long maxrss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
        fclose(f);
    }
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

/* Current RSS in KiB from /proc/self/statm (resident pages). */
static long rss_now_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * 4; /* 4 KiB pages */
}

static int die(const char *what, const attn_error *e) {
    fprintf(stderr, "bench_core: %s: %s\n", what, e && e->msg[0] ? e->msg : "failed");
    return 2;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_core case DIR [--threads 1,2] [--min-ms MS] [--min-reps R] [--max-reps R] "
                    "[--output OUT.safetensors]\n"
                    "       bench_core sgemm [--threads 1,2] [--shape M,N,K[,T]] [--min-ms MS] [--impl openblas|attn]\n"
                    "       bench_core rss --L L [--N 1] [--H 8] [--E 64] [--D 64] [--threads 2] [--in-place 1]\n"
                    "       bench_core convert [--n N]\n"
                    "       bench_core fma [--threads 1,2] [--min-ms MS]\n"
                    "       bench_core copy [--threads 1,2] [--mib MIB] [--min-ms MS]\n"
                    "       bench_core full [--L 512,1024] [--causal 0,1] [--threads 1,2] [--min-ms MS] [--min-reps R]\n"
                    "                       [--max-reps R] [--N 1] [--H 8] [--E 64] [--D 64]\n"
                    "       bench_core info\n");
    return 2;
}

/* case: warm-up forwards per thread count for at least this long (the first
 * ~100 ms of a process, and of a thread count's first forwards, ran 5-10%
 * slow on the project's VM: the helper threads' first tasks, OpenBLAS's
 * per-thread buffers, the clocks), as `full` does with FULL_WARM_MS. */
#define CASE_WARM_MS 100.0

typedef struct opts {
    int threads[16], nthreads;
    double min_ms, warm_ms;
    int min_reps, max_reps;
    const char *output;
    long M, Nn, K;
    int transb;
    int impl_attn; /* sgemm: libattn's attn__gemm instead of OpenBLAS */
    int in_place;  /* rss: the output overwrites the queries (attn_model_forward_into) */
    long L, N, H, E, D;
    long Ls[16];
    int nL;
    int causal[2], ncausal;
    long mib; /* copy: MiB per thread */
} opts;

/* A comma list of integers in [lo, hi]. */
static int parse_longs(const char *s, long *out, int cap, long lo, long hi) {
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi) return -1;
        out[n++] = v;
        if (*end && *end != ',') return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return *s ? -1 : n;
}

static int parse_list(const char *s, int *out, int cap) {
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int parse_opts(int argc, char **argv, int first, opts *o) {
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->nthreads = 2;
    o->min_ms = 1000;
    o->warm_ms = CASE_WARM_MS;
    o->min_reps = 3;
    o->max_reps = 50;
    o->M = o->Nn = o->K = 1024;
    o->N = 1, o->H = 8, o->E = 64, o->D = 64;
    o->nL = 0;
    o->ncausal = 1;
    o->causal[0] = 0;
    o->mib = 256;
    for (int i = first; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(k, "--threads")) {
            if ((o->nthreads = parse_list(v, o->threads, 16)) < 1) return -1;
        } else if (!strcmp(k, "--min-ms")) o->min_ms = atof(v);
        else if (!strcmp(k, "--min-reps")) o->min_reps = atoi(v);
        else if (!strcmp(k, "--warm-ms")) o->warm_ms = atof(v);
        else if (!strcmp(k, "--max-reps")) o->max_reps = atoi(v);
        else if (!strcmp(k, "--output")) o->output = v;
        else if (!strcmp(k, "--in-place")) o->in_place = atoi(v) != 0;
        else if (!strcmp(k, "--impl")) {
            if (strcmp(v, "openblas") && strcmp(v, "attn")) return -1;
            o->impl_attn = !strcmp(v, "attn");
        }
        else if (!strcmp(k, "--shape")) {
            if (sscanf(v, "%ld,%ld,%ld,%d", &o->M, &o->Nn, &o->K, &o->transb) < 3) return -1;
        } else if (!strcmp(k, "--L")) {
            o->L = atol(v);
            if ((o->nL = parse_longs(v, o->Ls, 16, 1, 1L << 20)) < 1) return -1;
        } else if (!strcmp(k, "--causal")) {
            long c[2];
            if ((o->ncausal = parse_longs(v, c, 2, 0, 1)) < 1) return -1;
            for (int ci = 0; ci < o->ncausal; ci++) o->causal[ci] = (int)c[ci];
        }
        else if (!strcmp(k, "--N")) o->N = atol(v);
        else if (!strcmp(k, "--H")) o->H = atol(v);
        else if (!strcmp(k, "--E")) o->E = atol(v);
        else if (!strcmp(k, "--D")) o->D = atol(v);
        else if (!strcmp(k, "--mib")) {
            if ((o->mib = atol(v)) < 1 || o->mib > 16384) return -1;
        }
        else return -1;
    }
    if (o->min_reps < 1) o->min_reps = 1;
    if (o->max_reps < o->min_reps) o->max_reps = o->min_reps;
    return 0;
}

/* ---- case ---- */

static int cmd_case(const char *dir, const opts *o) {
    char path[4096];
    attn_error e = {0};
    attn_model *m = NULL;
    attn_tensor_set *in = NULL;
    int rc = 2;
    snprintf(path, sizeof path, "%s/model", dir);
    if (attn_model_load_dir(path, &m, &e)) return die(path, &e);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (attn_safetensors_read_file(path, &in, &e)) {
        attn_model_free(m);
        return die(path, &e);
    }
    double *t = calloc((size_t)o->max_reps, sizeof *t);
    attn_ctx *ctx = attn_ctx_new(1);
    if (!t || !ctx) goto out;
    for (int ti = 0; ti < o->nthreads; ti++) {
        attn_ctx_set_threads(ctx, o->threads[ti]);
        attn_tensor *out = NULL;
        double t0 = now_ms();
        if (attn_model_forward(m, ctx, in, &out, &e)) {
            rc = die("forward", &e);
            goto out;
        }
        double warm = now_ms() - t0;
        int warm_n = 1;
        if (o->output && ti == 0) {
            attn_tensor_set *os = attn_tensor_set_new();
            if (!os || attn_tensor_set_add(os, "output", out, &e) ||
                attn_safetensors_write_file(os, o->output, &e)) {
                attn_tensor_set_free(os);
                rc = die(o->output, &e);
                goto out;
            }
            attn_tensor_set_free(os); /* frees out */
        } else {
            attn_tensor_free(out);
        }
        while (now_ms() - t0 < o->warm_ms) {
            out = NULL;
            if (attn_model_forward(m, ctx, in, &out, &e)) {
                rc = die("forward", &e);
                goto out;
            }
            attn_tensor_free(out);
            warm_n++;
        }
        int n = 0;
        double spent = 0;
        while (n < o->max_reps && (n < o->min_reps || spent < o->min_ms)) {
            out = NULL;
            t0 = now_ms();
            if (attn_model_forward(m, ctx, in, &out, &e)) {
                rc = die("forward", &e);
                goto out;
            }
            t[n] = now_ms() - t0;
            spent += t[n++];
            attn_tensor_free(out);
        }
        double mn = t[0], mx = t[0];
        for (int i = 1; i < n; i++) {
            if (t[i] < mn) mn = t[i];
            if (t[i] > mx) mx = t[i];
        }
        printf("{\"threads\": %d, \"warmup_ms\": %.6g, \"warmup_forwards\": %d, \"reps\": %d, \"min_ms\": %.6g, "
               "\"max_ms\": %.6g, \"times\": [",
               o->threads[ti], warm, warm_n, n, mn, mx);
        for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", t[i]);
        printf("], \"median_ms\": %.6g}\n", median(t, n));
        fflush(stdout);
    }
    printf("{\"maxrss_kib\": %ld}\n", maxrss_kib());
    rc = 0;
out:
    free(t);
    attn_ctx_free(ctx);
    attn_tensor_set_free(in);
    attn_model_free(m);
    return rc;
}

/* ---- sgemm ---- */

/* libattn's product (core/kernels/blas.c: its own AVX-512 sgemm where
 * built for it, else OpenBLAS); internal, declared here. */
attn_status attn__gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc);

typedef struct sg_job {
    long M, N, K;
    int transb, calls, impl_attn;
    float *A, *B, *C;
    pthread_barrier_t *bar;
} sg_job;

static void sg_run(sg_job *j) {
    for (int r = 0; r < j->calls; r++)
        if (j->impl_attn)
            attn__gemm(0, j->transb, (size_t)j->M, (size_t)j->N, (size_t)j->K, 1.0f, j->A, (size_t)j->K, j->B,
                       j->transb ? (size_t)j->K : (size_t)j->N, 0.0f, j->C, (size_t)j->N);
        else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, j->transb ? CblasTrans : CblasNoTrans, (int)j->M, (int)j->N,
                    (int)j->K, 1.0f, j->A, (int)j->K, j->B, j->transb ? (int)j->K : (int)j->N, 0.0f, j->C,
                    (int)j->N);
}

static void *sg_thread(void *arg) {
    sg_job *j = arg;
    pthread_barrier_wait(j->bar);
    sg_run(j);
    return NULL;
}

static float *rand_buf(size_t n, uint64_t *state) {
    float *p = malloc(n * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((*state >> 40) & 0xFFFFFF) / (float)0x1000000 - 0.5f;
    }
    return p;
}

static int cmd_sgemm(const opts *o) {
    openblas_set_num_threads(1);
    const double flop = 2.0 * (double)o->M * (double)o->Nn * (double)o->K;
    uint64_t seed = 12345;
    for (int ti = 0; ti < o->nthreads; ti++) {
        int T = o->threads[ti];
        sg_job *jobs = calloc((size_t)T, sizeof *jobs);
        pthread_t *th = calloc((size_t)T, sizeof *th);
        if (!jobs || !th) return 2;
        /* Calls per timed round: about 50 ms of work at 100 GFLOP/s. */
        int calls = (int)(5e9 / flop);
        if (calls < 1) calls = 1;
        for (int i = 0; i < T; i++) {
            jobs[i] = (sg_job){.M = o->M, .N = o->Nn, .K = o->K, .transb = o->transb, .calls = calls,
                             .impl_attn = o->impl_attn};
            jobs[i].A = rand_buf((size_t)(o->M * o->K), &seed);
            jobs[i].B = rand_buf((size_t)(o->K * o->Nn), &seed);
            jobs[i].C = rand_buf((size_t)(o->M * o->Nn), &seed);
            if (!jobs[i].A || !jobs[i].B || !jobs[i].C) return 2;
        }
        sg_job warm = jobs[0];
        warm.calls = 1;
        sg_run(&warm);
        double t[256];
        int n = 0;
        double spent = 0;
        while (n < 256 && (n < 5 || spent < o->min_ms)) {
            pthread_barrier_t bar;
            pthread_barrier_init(&bar, NULL, (unsigned)T);
            for (int i = 0; i < T; i++) jobs[i].bar = &bar;
            for (int i = 1; i < T; i++) pthread_create(&th[i], NULL, sg_thread, &jobs[i]);
            pthread_barrier_wait(&bar);
            double t0 = now_ms();
            sg_run(&jobs[0]);
            for (int i = 1; i < T; i++) pthread_join(th[i], NULL);
            t[n] = now_ms() - t0;
            spent += t[n++];
            pthread_barrier_destroy(&bar);
        }
        double best = t[0];
        for (int i = 1; i < n; i++)
            if (t[i] < best) best = t[i];
        double med = median(t, n);
        double work = flop * calls * T;
        printf("{\"impl\": \"%s\", \"threads\": %d, \"M\": %ld, \"N\": %ld, \"K\": %ld, \"transb\": %d, \"gflops\": %.4g, "
               "\"gflops_best\": %.4g, \"rounds\": %d}\n",
               o->impl_attn ? "attn" : "openblas", T, o->M, o->Nn, o->K, o->transb, work / med / 1e6, work / best / 1e6, n);
        fflush(stdout);
        for (int i = 0; i < T; i++) {
            free(jobs[i].A);
            free(jobs[i].B);
            free(jobs[i].C);
        }
        free(jobs);
        free(th);
    }
    return 0;
}

/* ---- rss ---- */

static int cmd_convert(size_t n) {
    uint16_t *h = malloc(2 * n + 2);
    float *f = malloc(4 * n + 4);
    if (!h || !f) return 2;
    for (size_t i = 0; i < n; i++) {
        h[i] = (uint16_t)((i * 2654435761u) >> 16) & 0x7bff; /* finite FP16 patterns */
        f[i] = (float)i * 1e-3f;
    }
    for (size_t v = 0; attn__kernels_at(v); v++) {
        const attn_kernels *k = attn__kernels_at(v);
        if (!attn__kernels_runs(k)) continue;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        for (int r = 0; r < 20; r++) {
            double t = (now_ms() / 1e3);
            k->f16_to_f32(h, f, n);
            if ((t = (now_ms() / 1e3) - t) < best[0]) best[0] = t;
            t = (now_ms() / 1e3);
            k->bf16_to_f32(h, f, n);
            if ((t = (now_ms() / 1e3) - t) < best[1]) best[1] = t;
            t = (now_ms() / 1e3);
            k->f32_to_f16(f, h, n);
            if ((t = (now_ms() / 1e3) - t) < best[2]) best[2] = t;
            t = (now_ms() / 1e3);
            k->f32_to_bf16(f, h, n);
            if ((t = (now_ms() / 1e3) - t) < best[3]) best[3] = t;
        }
        static const char *const names[] = {"f16_to_f32", "bf16_to_f32", "f32_to_f16", "f32_to_bf16"};
        for (int i = 0; i < 4; i++)
            printf("{\"bench\":\"convert\",\"variant\":\"%s\",\"op\":\"%s\",\"n\":%zu,\"ms\":%.4f,\"gb_s\":%.2f}\n", k->name,
                   names[i], n, best[i] * 1e3, 6.0 * (double)n / best[i] / 1e9);
    }
    free(h);
    free(f);
    return 0;
}

static int cmd_rss(const opts *o) {
    attn_error e = {0};
    attn_model *m = NULL;
    if (o->L < 1) return usage();
    if (attn_model_new("full", "{}", NULL, &m, &e)) return die("model", &e);
    attn_ctx *ctx = attn_ctx_new(o->threads[o->nthreads - 1]);
    long base_kib = rss_now_kib();
    attn_tensor_set *in = attn_tensor_set_new();
    const char *names[3] = {"queries", "keys", "values"};
    int64_t dims[3][4] = {{o->N, o->L, o->H, o->E}, {o->N, o->L, o->H, o->E}, {o->N, o->L, o->H, o->D}};
    uint64_t seed = 99;
    size_t io_bytes = 0;
    for (int i = 0; i < 3; i++) {
        attn_tensor *t = NULL;
        if (attn_tensor_new(ATTN_F32, 4, dims[i], &t, &e)) return die("input", &e);
        float *p = t->data;
        for (size_t k = 0; k < t->numel; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            p[k] = (float)((seed >> 40) & 0xFFFFFF) / (float)0x1000000 - 0.5f;
        }
        io_bytes += t->nbytes;
        if (attn_tensor_set_add(in, names[i], t, &e)) return die("input", &e);
    }
    long inputs_kib = rss_now_kib();
    attn_tensor *out = NULL;
    double t0 = now_ms();
    if (o->in_place) { /* the output takes the queries' place: three tensors, not four */
        attn_tensor *q = (attn_tensor *)attn_tensor_set_get(in, "queries");
        if (attn_model_forward_into(m, ctx, in, q, &e)) return die("forward", &e);
    } else {
        if (attn_model_forward(m, ctx, in, &out, &e)) return die("forward", &e);
        io_bytes += out->nbytes;
    }
    double ms = now_ms() - t0;
    printf("{\"L\": %ld, \"N\": %ld, \"H\": %ld, \"E\": %ld, \"D\": %ld, \"threads\": %d, \"in_place\": %d, "
           "\"forward_ms\": %.6g, "
           "\"maxrss_kib\": %ld, \"base_rss_kib\": %ld, \"after_inputs_rss_kib\": %ld, \"io_bytes\": %zu}\n",
           o->L, o->N, o->H, o->E, o->D, attn_ctx_threads(ctx), o->in_place, ms, maxrss_kib(), base_kib, inputs_kib,
           io_bytes);
    attn_tensor_free(out);
    attn_tensor_set_free(in);
    attn_ctx_free(ctx);
    attn_model_free(m);
    return 0;
}

/* ---- copy: memory bandwidth, the roofline's bytes term ---- */

typedef struct cp_job {
    char *src, *dst;
    size_t n;
    pthread_barrier_t *bar;
} cp_job;

static void *cp_thread(void *arg) {
    cp_job *j = arg;
    pthread_barrier_wait(j->bar);
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

static int cmd_copy(const opts *o) {
    const size_t n = (size_t)o->mib << 20;
    for (int ti = 0; ti < o->nthreads; ti++) {
        int T = o->threads[ti], rc = 2;
        cp_job *jobs = calloc((size_t)T, sizeof *jobs);
        pthread_t *th = calloc((size_t)T, sizeof *th);
        double t[256];
        int n_t = 0;
        double spent = 0;
        if (!jobs || !th) goto done;
        for (int i = 0; i < T; i++) {
            jobs[i].n = n;
            jobs[i].src = malloc(n);
            jobs[i].dst = malloc(n);
            if (!jobs[i].src || !jobs[i].dst) goto done;
            memset(jobs[i].src, 1 + i, n); /* fault every page in before timing */
            memset(jobs[i].dst, 0, n);
        }
        memcpy(jobs[0].dst, jobs[0].src, n); /* warm-up */
        while (n_t < 256 && (n_t < 5 || spent < o->min_ms)) {
            pthread_barrier_t bar;
            pthread_barrier_init(&bar, NULL, (unsigned)T);
            for (int i = 0; i < T; i++) jobs[i].bar = &bar;
            for (int i = 1; i < T; i++) pthread_create(&th[i], NULL, cp_thread, &jobs[i]);
            pthread_barrier_wait(&bar);
            double t0 = now_ms();
            memcpy(jobs[0].dst, jobs[0].src, n);
            for (int i = 1; i < T; i++) pthread_join(th[i], NULL);
            t[n_t] = now_ms() - t0;
            spent += t[n_t++];
            pthread_barrier_destroy(&bar);
        }
        double best = t[0];
        for (int i = 1; i < n_t; i++)
            if (t[i] < best) best = t[i];
        double bytes = 2.0 * (double)n * T; /* read + written */
        printf("{\"bench\": \"copy\", \"threads\": %d, \"mib_per_thread\": %ld, \"gb_s\": %.4g, "
               "\"gb_s_best\": %.4g, \"rounds\": %d}\n",
               T, o->mib, bytes / median(t, n_t) / 1e6, bytes / best / 1e6, n_t);
        fflush(stdout);
        rc = 0;
    done:
        if (jobs)
            for (int i = 0; i < T; i++) {
                free(jobs[i].src);
                free(jobs[i].dst);
            }
        free(jobs);
        free(th);
        if (rc) {
            fprintf(stderr, "bench_core: copy: out of memory (%ld MiB x 2 x %d threads)\n", o->mib, T);
            return rc;
        }
    }
    return 0;
}

/* ---- fma: the FMA peak per variant (bench/fma_peak.c) ---- */

double attn_bench_fma_loop_generic(long iters, float *sink);
#if defined(__x86_64__)
double attn_bench_fma_loop_avx2(long iters, float *sink);
double attn_bench_fma_loop_avx512(long iters, float *sink);
#endif

typedef double (*fma_fn)(long, float *);
typedef struct fma_job {
    fma_fn fn;
    long iters;
    float sink;
    pthread_barrier_t *bar;
} fma_job;

static void *fma_thread(void *arg) {
    fma_job *j = arg;
    pthread_barrier_wait(j->bar);
    j->fn(j->iters, &j->sink);
    return NULL;
}

static fma_fn fma_of(const char *variant) {
#if defined(__x86_64__)
    if (!strcmp(variant, "avx512")) return attn_bench_fma_loop_avx512;
    if (!strcmp(variant, "avx2")) return attn_bench_fma_loop_avx2;
#endif
    if (!strcmp(variant, "generic")) return attn_bench_fma_loop_generic;
    return NULL;
}

static int cmd_fma(const opts *o) {
    for (size_t v = 0; attn__kernels_at(v); v++) {
        const attn_kernels *k = attn__kernels_at(v);
        fma_fn fn = fma_of(k->name);
        if (!fn || !attn__kernels_runs(k)) continue;
        float sink;
        /* about 20 ms per round on one core at 100 GFLOP/s */
        long iters = 1000;
        double per = fn(iters, &sink) / (double)iters;
        iters = (long)(2e9 / per);
        fn(iters, &sink); /* warm-up: clocks up */
        for (int ti = 0; ti < o->nthreads; ti++) {
            int T = o->threads[ti];
            fma_job *jobs = calloc((size_t)T, sizeof *jobs);
            pthread_t *th = calloc((size_t)T, sizeof *th);
            double t[256], ct[256];
            int n = 0;
            double spent = 0;
            if (!jobs || !th) return 2;
            while (n < 256 && (n < 5 || spent < o->min_ms)) {
                pthread_barrier_t bar;
                pthread_barrier_init(&bar, NULL, (unsigned)T);
                for (int i = 0; i < T; i++) jobs[i] = (fma_job){.fn = fn, .iters = iters, .bar = &bar};
                for (int i = 1; i < T; i++) pthread_create(&th[i], NULL, fma_thread, &jobs[i]);
                pthread_barrier_wait(&bar);
                double t0 = now_ms(), c0 = cpu_ms();
                fn(iters, &jobs[0].sink);
                for (int i = 1; i < T; i++) pthread_join(th[i], NULL);
                t[n] = now_ms() - t0;
                ct[n] = cpu_ms() - c0;
                spent += t[n++];
                pthread_barrier_destroy(&bar);
            }
            double best = t[0];
            for (int i = 1; i < n; i++)
                if (t[i] < best) best = t[i];
            double work = per * (double)iters * T;
            /* per thread and CPU second: the rate a thread gets while it runs */
            double per_cpu = work / median(ct, n) / 1e6;
            printf("{\"bench\": \"fma_peak\", \"variant\": \"%s\", \"threads\": %d, \"gflops\": %.4g, "
                   "\"gflops_best\": %.4g, \"gflops_per_cpu\": %.4g, \"rounds\": %d}\n",
                   k->name, T, work / median(t, n) / 1e6, work / best / 1e6, per_cpu, n);
            fflush(stdout);
            free(jobs);
            free(th);
        }
    }
    return 0;
}

/* ---- full: in-memory inputs, causal or not ---- */

static int add_rand(attn_tensor_set *in, const char *name, const int64_t *dims, uint64_t *seed, attn_error *e) {
    attn_tensor *t = NULL;
    if (attn_tensor_new(ATTN_F32, 4, dims, &t, e)) return -1;
    float *p = t->data;
    for (size_t k = 0; k < t->numel; k++) {
        *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[k] = (float)((*seed >> 40) & 0xFFFFFF) / (float)0x1000000 - 0.5f;
    }
    return attn_tensor_set_add(in, name, t, e) ? -1 : 0;
}

#define FULL_WARM_MS 200.0

static int cmd_full(const opts *o) {
    attn_error e = {0};
    attn_model *m = NULL;
    if (o->nL < 1) return usage();
    if (attn_model_new("full", "{}", NULL, &m, &e)) return die("model", &e);
    attn_ctx *ctx = attn_ctx_new(1);
    double *t = calloc((size_t)o->max_reps, sizeof *t), *ct = calloc((size_t)o->max_reps, sizeof *ct);
    if (!ctx || !t || !ct) return 2;
    const char *variant = attn__kernels()->name;
    for (int li = 0; li < o->nL; li++) {
        long L = o->Ls[li];
        for (int ci = 0; ci < o->ncausal; ci++) {
            int causal = o->causal[ci];
            attn_tensor_set *in = attn_tensor_set_new();
            int64_t dq[4] = {o->N, L, o->H, o->E}, dv[4] = {o->N, L, o->H, o->D};
            uint64_t seed = 99;
            if (!in || add_rand(in, "queries", dq, &seed, &e) || add_rand(in, "keys", dq, &seed, &e) ||
                add_rand(in, "values", dv, &seed, &e))
                return die("input", &e);
            if (causal) {
                attn_tensor *mk = NULL;
                int64_t dm[2] = {L, L};
                if (attn_tensor_new(ATTN_BOOL, 2, dm, &mk, &e)) return die("mask", &e);
                uint8_t *p = mk->data;
                for (long i = 0; i < L; i++)
                    for (long j = 0; j < L; j++) p[i * L + j] = j <= i;
                if (attn_tensor_set_add(in, "attn_mask", mk, &e)) return die("mask", &e);
            }
            for (int ti = 0; ti < o->nthreads; ti++) {
                attn_ctx_set_threads(ctx, o->threads[ti]);
                /* warm-up: forwards for at least FULL_WARM_MS (the clocks, the
                 * caches and the kept workspace's pages settle; the first
                 * configuration of a process ran 1.3-2x slow for ~100 ms on
                 * the project's VM), as bench/ort/full.js does */
                for (double w0 = now_ms();;) {
                    attn_tensor *out = NULL;
                    if (attn_model_forward(m, ctx, in, &out, &e)) return die("forward", &e);
                    attn_tensor_free(out);
                    if (now_ms() - w0 >= FULL_WARM_MS) break;
                }
                attn_tensor *out = NULL;
                int n = 0;
                double spent = 0;
                while (n < o->max_reps && (n < o->min_reps || spent < o->min_ms)) {
                    out = NULL;
                    double t0 = now_ms(), c0 = cpu_ms();
                    if (attn_model_forward(m, ctx, in, &out, &e)) return die("forward", &e);
                    t[n] = now_ms() - t0;
                    ct[n] = cpu_ms() - c0;
                    spent += t[n++];
                    attn_tensor_free(out);
                }
                printf("{\"bench\": \"full\", \"variant\": \"%s\", \"L\": %ld, \"causal\": %d, \"threads\": %d, "
                       "\"times\": [",
                       variant, L, causal, o->threads[ti]);
                for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", t[i]);
                printf("], \"cpu_times\": [");
                for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", ct[i]);
                double med = median(t, n), ct_sum = 0;
                for (int i = 0; i < n; i++) ct_sum += ct[i];
                double flop = 2.0 * (double)o->N * (double)o->H * (double)L * (double)L * (double)(o->E + o->D);
                /* useful work of the causal product: L(L+1)/2 of the L² scores */
                double useful = causal ? flop * ((double)L + 1) / (2.0 * (double)L) : flop;
                printf("], \"median_ms\": %.6g, \"gflops\": %.4g, \"useful_gflops\": %.4g, \"cpu_ms\": %.6g}\n",
                       med, flop / med / 1e6, useful / med / 1e6, ct_sum / n);
                fflush(stdout);
            }
            attn_tensor_set_free(in);
        }
    }
    free(t);
    free(ct);
    attn_ctx_free(ctx);
    attn_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    opts o = {0};
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "info")) {
        printf("{\"openblas_config\": \"%s\", \"openblas_core\": \"%s\", \"attn_version\": \"%s\"}\n",
               openblas_get_config(), openblas_get_corename(), ATTN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "convert")) {
        size_t n = (size_t)3 << 20;
        if (argc == 4 && !strcmp(argv[2], "--n")) n = (size_t)strtoull(argv[3], NULL, 10);
        else if (argc != 2) return usage();
        return n ? cmd_convert(n) : usage();
    }
    if (!strcmp(argv[1], "case")) {
        if (argc < 3 || parse_opts(argc, argv, 3, &o)) return usage();
        return cmd_case(argv[2], &o);
    }
    if (parse_opts(argc, argv, 2, &o)) return usage();
    if (!strcmp(argv[1], "sgemm")) return cmd_sgemm(&o);
    if (!strcmp(argv[1], "rss")) return cmd_rss(&o);
    if (!strcmp(argv[1], "fma")) return cmd_fma(&o);
    if (!strcmp(argv[1], "copy")) return cmd_copy(&o);
    if (!strcmp(argv[1], "full")) return cmd_full(&o);
    return usage();
}
