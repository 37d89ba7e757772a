/*
 * main.c — attnd: flags and ATTND_* variables, start-up, and the graceful
 * shutdown.
 *
 * Every option lives in one table that drives the parser, the environment
 * lookup and --help.  A flag beats its variable, which beats the default.
 *
 * Shutdown on SIGTERM or SIGINT: /v2/health/ready turns 400 at once; after
 * --shutdown-delay the listening socket closes; requests in flight finish,
 * for at most --drain-timeout, after which those still waiting get 503 and
 * their computations are cancelled; then the HTTP daemon stops and attnd
 * exits 0.  A second signal skips the rest of the wait.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "grpc.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "repo.h"
#include "sched.h"
#include "repo_watch.h"
#include "seqstore.h"

/* ---- options ---- */

typedef enum { O_STR, O_INT, O_SIZE, O_I64, O_SECS, O_BOOL, O_LOGFMT, O_MODE, O_LIST } opt_kind;

typedef struct opt {
    const char *flag;  /* without -- */
    const char *env;
    opt_kind kind;
    void *dst;
    double min, max;
    const char *arg;   /* for --help */
    const char *help;
} opt;

static const char *log_format = "plain";
static const char *control_mode; /* as given; NULL: not given */
#define MAX_LOAD_MODELS 256
static const char *load_models[MAX_LOAD_MODELS + 1];
static size_t n_load_models;

static const opt opts[] = {
    {"host", "ATTND_HOST", O_STR, &svc_cfg.host, 0, 0, "ADDR", "listen address (IPv4 or IPv6)"},
    {"port", "ATTND_PORT", O_INT, &svc_cfg.port, 0, 65535, "N", "listen port (0: any free port, logged)"},
    {"grpc-port", "ATTND_GRPC_PORT", O_INT, &svc_cfg.grpc_port, -1, 65535, "N",
     "gRPC (GRPCInferenceService, plain-text HTTP/2) port on --host; -1: off (default), 0: any free port, logged; "
     "Triton's is 8001"},
    {"model-repository", "ATTND_MODEL_REPOSITORY", O_STR, &svc_cfg.repo_dir, 0, 0, "DIR",
     "model repository: one folder per model (config.json, weights.safetensors)"},
    {"threads", "ATTND_THREADS", O_INT, &svc_cfg.threads, 1, 1024, "N",
     "compute pool threads (default: the cores available)"},
    {"threads-per-request", "ATTND_THREADS_PER_REQUEST", O_INT, &svc_cfg.call_threads, 1, 1024, "N",
     "most threads one request may use (default: the cores available)"},
    {"elements-per-thread", "ATTND_ELEMENTS_PER_THREAD", O_SIZE, &svc_cfg.elems_per_thread, 0, 1e15,
     "N", "give a request one thread per N input elements (0: every request may use all)"},
    {"inline-max-us", "ATTND_INLINE_MAX_US", O_INT, &svc_cfg.inline_max_us, 0, 1000000, "US",
     "run a request expected to take less than this (measured per model) on the thread that decoded it "
     "instead of the pool; 0: never"},
    {"http-threads", "ATTND_HTTP_THREADS", O_INT, &svc_cfg.http_threads, 1, 256, "N",
     "HTTP threads that parse and decode requests (default: min(cores, 4))"},
    {"max-body-bytes", "ATTND_MAX_BODY_BYTES", O_SIZE, &svc_cfg.max_body, 1024, 1e12, "BYTES",
     "largest request body; 413 beyond (suffixes K, M, G)"},
    {"max-tensor-elements", "ATTND_MAX_TENSOR_ELEMENTS", O_SIZE, &svc_cfg.max_elements, 1, 1e15,
     "N", "most elements in one input tensor"},
    {"max-rank", "ATTND_MAX_RANK", O_INT, &svc_cfg.max_rank, 0, ATTN_MAX_RANK, "N",
     "highest tensor rank accepted"},
    {"max-dim", "ATTND_MAX_DIM", O_I64, &svc_cfg.max_dim, 1, 1e15, "N", "largest single dimension"},
    {"max-queue", "ATTND_MAX_QUEUE", O_INT, &svc_cfg.max_queue, 1, 1e6, "N",
     "requests that may wait for a compute thread; 503 + Retry-After beyond"},
    {"timeout", "ATTND_TIMEOUT", O_SECS, &svc_cfg.timeout_s, 0.001, 1e6, "SECS",
     "request deadline (queue + compute); 504 beyond, the work is cancelled"},
    {"drain-timeout", "ATTND_DRAIN_TIMEOUT", O_SECS, &svc_cfg.drain_timeout_s, 0, 1e6, "SECS",
     "on SIGTERM/SIGINT, how long requests in flight may take to finish"},
    {"shutdown-delay", "ATTND_SHUTDOWN_DELAY", O_SECS, &svc_cfg.shutdown_delay_s, 0, 1e6, "SECS",
     "on SIGTERM/SIGINT, time reported not-ready before the listener closes"},
    {"idle-timeout", "ATTND_IDLE_TIMEOUT", O_INT, &svc_cfg.idle_timeout_s, 0, 86400, "SECS",
     "close connections idle this long; a request must arrive within it + 1 s per 16 KiB of body"},
    {"max-connections", "ATTND_MAX_CONNECTIONS", O_INT, &svc_cfg.max_connections, 1, 1e6, "N",
     "concurrent connections"},
    {"max-header-bytes", "ATTND_MAX_HEADER_BYTES", O_SIZE, &svc_cfg.max_header, 4096, 1 << 24,
     "BYTES", "per-connection memory for the request line, headers and chunk lines"},
    {"max-json-depth", "ATTND_MAX_JSON_DEPTH", O_INT, &svc_cfg.max_json_depth, 2, 1000, "N",
     "deepest JSON nesting accepted"},
    {"retry-after", "ATTND_RETRY_AFTER", O_INT, &svc_cfg.retry_after_s, 0, 3600, "SECS",
     "Retry-After sent with 503"},
    {"allow-nonfinite", "ATTND_ALLOW_NONFINITE", O_BOOL, &svc_cfg.allow_nonfinite, 0, 1, "",
     "accept NaN and infinities in every model's inputs (per model: config.json allow_nonfinite)"},
    {"compress-min-bytes", "ATTND_COMPRESS_MIN_BYTES", O_SIZE, &svc_cfg.compress_min, 0, 1e12, "BYTES",
     "compress replies of at least this size when Accept-Encoding allows gzip or deflate (suffixes K, M, G)"},
    {"compress-max-bytes", "ATTND_COMPRESS_MAX_BYTES", O_SIZE, &svc_cfg.compress_max, 0, 1e13, "BYTES",
     "never compress replies larger than this: tensors of floats barely shrink and the time would pass the "
     "transfer it saves (0: no cap)"},
    {"compress-level", "ATTND_COMPRESS_LEVEL", O_INT, &svc_cfg.compress_level, 0, 9, "N",
     "zlib level of compressed replies (1 fastest, 9 smallest; 0: never compress)"},
    {"api-key-file", "ATTND_API_KEY_FILE", O_STR, &svc_cfg.api_key_file, 0, 0, "FILE",
     "bearer tokens (one per line) for inference and metadata"},
    {"admin-key-file", "ATTND_ADMIN_KEY_FILE", O_STR, &svc_cfg.admin_key_file, 0, 0, "FILE",
     "bearer tokens (one per line) for the repository endpoints"},
    {"max-sequences", "ATTND_MAX_SEQUENCES", O_SIZE, &svc_cfg.max_sequences, 0, 1e7, "N",
     "live sequences (streaming decode state) at once; 503 + Retry-After beyond (0: no sequences)"},
    {"sequence-memory", "ATTND_SEQUENCE_MEMORY", O_SIZE, &svc_cfg.sequence_memory, 0, 1e15, "BYTES",
     "budget for the state of all live sequences; 503 + Retry-After beyond (suffixes K, M, G)"},
    {"sequence-idle-timeout", "ATTND_SEQUENCE_IDLE_TIMEOUT", O_SECS, &svc_cfg.sequence_idle_s, 0.001, 1e7, "SECS",
     "a sequence without a request for this long ends (its id then answers 404, saying so)"},
    {"max-sequence-tokens", "ATTND_MAX_SEQUENCE_TOKENS", O_I64, &svc_cfg.max_sequence_tokens, 1, 1e12, "N",
     "longest sequence in tokens; a request that would pass it gets 413"},
    {"sequence-evict-after", "ATTND_SEQUENCE_EVICT_AFTER", O_SECS, &svc_cfg.sequence_evict_s, 0, 1e7, "SECS",
     "when the sequence count or memory is full, idle sequences may be evicted once idle this long"},
    {"max-attention-elements", "ATTND_MAX_ATTENTION_ELEMENTS", O_SIZE, &svc_cfg.max_attention_elements, 0, 1e13,
     "N", "most elements of the attention maps (output 'attention') one request may ask for; 413 beyond"},
    {"ui", "ATTND_UI", O_BOOL, &svc_cfg.ui, 0, 1, "",
     "serve the explorer page at /ui/ (--ui=0: not; default: on when --host is a loopback address, off otherwise)"},
    {"log-format", "ATTND_LOG_FORMAT", O_LOGFMT, &log_format, 0, 0, "plain|json", "log line format"},
    {"model-control-mode", "ATTND_MODEL_CONTROL_MODE", O_MODE, &control_mode, 0, 0, "none|explicit|poll",
     "Triton's model control: explicit (the API loads and unloads; default), none (all load at start, the API may "
     "not), poll (as none, and the repository is watched: folders that appear, change or vanish load, reload, unload)"},
    {"load-model", "ATTND_LOAD_MODEL", O_LIST, load_models, 0, 0, "NAME",
     "explicit mode: a model to load at start (repeatable; '*' for all; the variable takes a comma-separated list). "
     "Without it every model loads, unless --model-control-mode explicit is given (then none does, as in Triton)"},
    {"repository-poll-secs", "ATTND_REPOSITORY_POLL_SECS", O_SECS, &svc_cfg.poll_s, 0.05, 86400, "SECS",
     "poll mode: rescan the repository this often as well as on file events"},
    {"model-name", "ATTND_MODEL_NAME", O_STR, &svc_cfg.model_name, 0, 0, "NAME",
     "when --model-repository is one model's folder (config.json at its top, as KServe's storage initializer "
     "lays it out), the name it is served under (default: the folder's name)"},
};
#define N_OPTS (sizeof opts / sizeof *opts)

/* 127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches. */
static int is_loopback(const char *host) {
    unsigned char a[16];
    if (strcmp(host, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a, one, 16) == 0;
    }
    return 0;
}

/* CPUs we may use: the affinity mask, capped by the cgroup CPU quota
 * (attn_cpu_count). */
static int available_cores(void) { return attn_cpu_count(); }

static void defaults(void) {
    svc_cfg = svc_config_defaults();
    svc_cfg.cores = available_cores();
}

static void help(FILE *f) {
    fprintf(f, "usage: attnd [options]\n\n"
               "Serves the attention mechanisms of libattn over the Open Inference Protocol (HTTP/JSON,\n"
               "binary tensor data, model repository).  Every option also reads an environment\n"
               "variable; the option wins.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", opts[i].flag, opts[i].arg);
        fprintf(f, "  %-34s %s\n  %-34s [%s", left, opts[i].help, "", opts[i].env);
        switch (opts[i].kind) {
        case O_STR: {
            const char *v = *(const char **)opts[i].dst;
            fprintf(f, v ? ", default %s]\n" : "]\n", v);
            break;
        }
        case O_INT: fprintf(f, ", default %d]\n", *(int *)opts[i].dst); break;
        case O_SIZE: fprintf(f, ", default %zu]\n", *(size_t *)opts[i].dst); break;
        case O_I64: fprintf(f, ", default %lld]\n", (long long)*(int64_t *)opts[i].dst); break;
        case O_SECS: fprintf(f, ", default %g]\n", *(double *)opts[i].dst); break;
        case O_BOOL: fprintf(f, ", 1/0]\n"); break;
        case O_LOGFMT: fprintf(f, ", default plain]\n"); break;
        case O_MODE: fprintf(f, ", default explicit]\n"); break;
        case O_LIST: fprintf(f, "]\n"); break;
        }
    }
    fprintf(f, "  %-34s %s\n  %-34s %s\n", "--help", "this text", "--version", "print the version");
}

static int parse_size(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno) return -1;
    if (*end == 'k' || *end == 'K') v *= 1024, end++;
    else if (*end == 'm' || *end == 'M') v *= 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G') v *= 1024.0 * 1024 * 1024, end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

static int set_opt(const opt *o, const char *v, const char *source) {
    double x = 0;
    switch (o->kind) {
    case O_STR:
        *(const char **)o->dst = v;
        return 0;
    case O_LOGFMT:
        if (strcmp(v, "plain") && strcmp(v, "json")) break;
        *(const char **)o->dst = v;
        return 0;
    case O_MODE:
        if (strcmp(v, "none") && strcmp(v, "explicit") && strcmp(v, "poll")) break;
        *(const char **)o->dst = v;
        return 0;
    case O_LIST: { /* appends; a variable's value is comma-separated (it stays: argv/environ) */
        const char *p = v;
        while (*p) {
            size_t n = strcspn(p, ",");
            if (n == 0 || n > SVC_MODEL_NAME_MAX || n_load_models == MAX_LOAD_MODELS) goto bad;
            char *name = strndup(p, n);
            if (!name || (strcmp(name, "*") && !svc_valid_model_name(name, n))) {
                free(name);
                goto bad;
            }
            load_models[n_load_models++] = name; /* lives as long as the process */
            p += n + (p[n] == ',');
        }
        return 0;
    }
    case O_BOOL:
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) x = 1;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) x = 0;
        else break;
        *(int *)o->dst = (int)x;
        return 0;
    case O_INT:
    case O_SIZE:
    case O_I64:
    case O_SECS:
        if (parse_size(v, &x) != 0 || x < o->min || x > o->max) break;
        if (o->kind != O_SECS && x != (double)(long long)x) break;
        if (o->kind == O_INT) *(int *)o->dst = (int)x;
        else if (o->kind == O_SIZE) *(size_t *)o->dst = (size_t)x;
        else if (o->kind == O_I64) *(int64_t *)o->dst = (int64_t)x;
        else *(double *)o->dst = x;
        return 0;
    }
bad:
    fprintf(stderr, "attnd: bad value '%s' for %s --%s (see --help)\n", v, source, o->flag);
    return -1;
}

/* 0: go on; 1: exit 0 (help, version); -1: exit 2. */
static int parse_args(int argc, char **argv) {
    struct option lo[N_OPTS + 3];
    for (size_t i = 0; i < N_OPTS; i++)
        lo[i] = (struct option){opts[i].flag, opts[i].kind == O_BOOL ? optional_argument : required_argument,
                                NULL, (int)(256 + i)};
    lo[N_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
    lo[N_OPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    lo[N_OPTS + 2] = (struct option){0};
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && set_opt(&opts[i], v, opts[i].env) != 0) return -1;
    }
    int c;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return 1;
        }
        if (c == 'V') {
            printf("attnd %s\n", ATTN_VERSION);
            return 1;
        }
        if (c < 256 || c >= 256 + (int)N_OPTS) {
            fprintf(stderr, "attnd: see --help\n");
            return -1;
        }
        const opt *o = &opts[c - 256];
        if (set_opt(o, optarg ? optarg : "1", "") != 0) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "attnd: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ---- shutdown ---- */

static uv_signal_t sig_term, sig_int;
static uv_timer_t drain_timer, hard_exit, sweep_timer;
static int drain_phase; /* 0 delay, 1 draining, 2 answered the rest, 3 stopping */
static int hard_exit_armed;
static uint64_t phase_deadline;
static uint64_t seq_deadline; /* sequences may go on until then */

static void on_hard_exit(uv_timer_t *t) {
    (void)t;
    svc_log("warn", "computations still running after the drain; exiting anyway");
    _exit(0);
}

static void drain_tick(uv_timer_t *t) {
    uint64_t now = svc_now_us();
    /* Live sequences keep the listener open (not ready) for the drain time,
     * so that their clients can finish or export them. */
    size_t live = svc_seqs_stats().live;
    if (drain_phase == 0 && now >= phase_deadline && (live == 0 || now >= seq_deadline)) {
        svc_http_quiesce();
        svc_grpc_quiesce(); /* GOAWAY: the clients open their next calls elsewhere */
        svc_log("info", "stopped accepting connections; draining %d requests", svc_http_inflight() + svc_grpc_inflight());
        drain_phase = 1;
        phase_deadline = now + (uint64_t)(svc_cfg.drain_timeout_s * 1e6);
    }
    if (drain_phase == 1) {
        if (svc_sched_active() == 0 && svc_http_inflight() == 0 && svc_grpc_inflight() == 0) {
            drain_phase = 3;
        } else if (now >= phase_deadline) {
            svc_log("warn", "drain timeout: answering %d unfinished jobs with 503", svc_sched_active());
            svc_sched_abort_all("the server is shutting down");
            drain_phase = 2;
            phase_deadline = now + 2000000;
        }
    }
    if (drain_phase == 2 && ((svc_http_inflight() == 0 && svc_grpc_inflight() == 0) || now >= phase_deadline))
        drain_phase = 3;
    if (drain_phase != 3) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    svc_http_stop();
    svc_grpc_stop();
    uv_timer_stop(&sweep_timer);
    uv_close((uv_handle_t *)&sweep_timer, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    svc_sched_close();
    svc_repo_watch_stop();
    /* Abandoned computations keep the loop alive until they notice. */
    uv_timer_init(t->loop, &hard_exit);
    uv_timer_start(&hard_exit, on_hard_exit, 10000, 0);
    uv_unref((uv_handle_t *)&hard_exit);
    hard_exit_armed = 1;
}

static void on_sweep(uv_timer_t *t) {
    (void)t;
    svc_http_sweep();
    svc_seqs_sweep(svc_now_us());
}

static void on_signal(uv_signal_t *h, int signum) {
    if (atomic_load(&svc_draining)) {
        svc_log("info", "second signal: finishing the drain now");
        phase_deadline = seq_deadline = 0;
        return;
    }
    atomic_store(&svc_draining, 1);
    atomic_store(&svc_ready, 0);
    svc_log("info", "%s: not ready; draining", signum == SIGINT ? "SIGINT" : "SIGTERM");
    drain_phase = 0;
    phase_deadline = svc_now_us() + (uint64_t)(svc_cfg.shutdown_delay_s * 1e6);
    seq_deadline = svc_now_us() + (uint64_t)(svc_cfg.drain_timeout_s * 1e6);
    size_t live = svc_seqs_stats().live;
    if (live) svc_log("info", "%zu live sequences may continue for up to %g s (--drain-timeout)", live, svc_cfg.drain_timeout_s);
    uv_timer_init(h->loop, &drain_timer);
    uv_timer_start(&drain_timer, drain_tick, 0, 20);
}

int main(int argc, char **argv) {
    defaults();
    int pa = parse_args(argc, argv);
    if (pa) return pa > 0 ? 0 : 2;
    svc_cfg.log_json = strcmp(log_format, "json") == 0;
    if (svc_cfg.ui < 0) svc_cfg.ui = is_loopback(svc_cfg.host);
    svc_cfg.control_mode = !control_mode || !strcmp(control_mode, "explicit") ? SVC_CONTROL_EXPLICIT
                           : !strcmp(control_mode, "none")                    ? SVC_CONTROL_NONE
                                                                              : SVC_CONTROL_POLL;
    /* Triton: explicit mode loads only the --load-model models (none when
     * there are none); without the flag attnd loads every model, as always. */
    if (n_load_models || (control_mode && svc_cfg.control_mode == SVC_CONTROL_EXPLICIT))
        svc_cfg.load_models = load_models;
    if (n_load_models && svc_cfg.control_mode != SVC_CONTROL_EXPLICIT) {
        fprintf(stderr, "attnd: --load-model needs --model-control-mode explicit (in %s mode every model loads)\n",
                control_mode);
        return 2;
    }
    attn_error cpu_err = {0};
    if (attn_cpu_check(&cpu_err)) { /* ATTN_CPU / ATTN_GEMM refused */
        svc_log("error", "%s", cpu_err.msg);
        return 2;
    }
    char kernels[512] = "";
    const char *ck, *cv;
    for (size_t i = 0; attn_cpu_info(i, &ck, &cv); i++)
        snprintf(kernels + strlen(kernels), sizeof kernels - strlen(kernels), "%s%s=%s", i ? "; " : "", ck, cv);
    svc_log("info", "kernels: %s", kernels);
    if (!svc_cfg.threads) svc_cfg.threads = svc_cfg.cores;
    if (!svc_cfg.call_threads) svc_cfg.call_threads = svc_cfg.cores;
    if (!svc_cfg.http_threads) svc_cfg.http_threads = svc_cfg.cores < 4 ? svc_cfg.cores : 4;
    if (svc_cfg.call_threads > svc_cfg.cores) svc_cfg.call_threads = svc_cfg.cores;
    if (svc_cfg.threads > svc_cfg.cores)
        svc_log("warn", "--threads %d exceeds the %d cores: concurrent requests will oversubscribe",
                svc_cfg.threads, svc_cfg.cores);
    char pool[16];
    snprintf(pool, sizeof pool, "%d", svc_cfg.threads);
    setenv("UV_THREADPOOL_SIZE", pool, 1); /* read by libuv when the pool starts */
    signal(SIGPIPE, SIG_IGN);

    svc_err e = {0};
    if (svc_auth_init(&e) != 0) {
        svc_log("error", "%s", e.msg);
        return 2;
    }
    svc_seq_limits sl = {.max_live = svc_cfg.max_sequences, .max_bytes = svc_cfg.sequence_memory,
                         .idle_s = svc_cfg.sequence_idle_s, .max_len = svc_cfg.max_sequence_tokens,
                         .evict_idle_s = svc_cfg.sequence_evict_s, .record = 4096};
    if (svc_seqs_init(&sl, &e) != 0) {
        svc_log("error", "%s", e.msg);
        return 1;
    }
    if (!svc_cfg.admin_key_file && !svc_cfg.api_key_file && strcmp(svc_cfg.host, "127.0.0.1") &&
        strcmp(svc_cfg.host, "::1"))
        svc_log("warn", "listening on %s without --admin-key-file: anyone who reaches it can load models",
                svc_cfg.host);

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        svc_log("error", "cannot start the event loop");
        return 1;
    }
    if (svc_sched_init(&loop, &e) != 0) {
        svc_log("error", "%s", e.msg);
        return 1;
    }
    uv_signal_init(&loop, &sig_term);
    uv_signal_init(&loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);

    if (svc_http_start(&e) != 0) {
        svc_log("error", "%s", e.msg);
        return 1;
    }
    if (svc_grpc_start(&e) != 0) {
        svc_log("error", "%s", e.msg);
        return 1;
    }
    uv_timer_init(&loop, &sweep_timer);
    uv_timer_start(&sweep_timer, on_sweep, 250, 250);
    uv_unref((uv_handle_t *)&sweep_timer); /* it alone does not keep the loop alive */
    svc_log("info", "attnd %s listening on %s:%d (threads %d, per request %d, http %d, queue %d)",
            ATTN_VERSION, svc_cfg.host, svc_http_port(), svc_cfg.threads, svc_cfg.call_threads,
            svc_cfg.http_threads, svc_cfg.max_queue);
    if (svc_grpc_port()) svc_log("info", "grpc listening on %s:%d (h2c)", svc_cfg.host, svc_grpc_port());
    /* Live now, ready once the repository has loaded. */
    if (svc_repo_init(svc_cfg.repo_dir, &e) != 0) {
        svc_log("error", "%s", e.msg);
        svc_http_stop();
        svc_repo_shutdown();
        return 1;
    }
    if (svc_repo_watch_start(&loop, &e) != 0) {
        svc_log("error", "%s", e.msg);
        return 1;
    }
    if (!atomic_load(&svc_draining)) atomic_store(&svc_ready, 1);
    svc_log("info", "ready: %zu built-in models%s%s", svc_repo_builtin_count(),
            svc_cfg.repo_dir ? ", repository " : "", svc_cfg.repo_dir ? svc_cfg.repo_dir : "");
    if (svc_cfg.ui)
        svc_log("info", "explorer page: http://%s%s%s:%d/ui/", strchr(svc_cfg.host, ':') ? "[" : "", svc_cfg.host,
                strchr(svc_cfg.host, ':') ? "]" : "", svc_http_port());

    uv_run(&loop, UV_RUN_DEFAULT);
    if (hard_exit_armed) { /* every job is done: close the last handle */
        uv_close((uv_handle_t *)&hard_exit, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&loop) != 0) svc_log("warn", "event loop closed with handles open");
    size_t lost = svc_seqs_end_all(SVC_SEQ_END_DRAINED);
    svc_log(lost ? "warn" : "info", "%zu sequences lost at exit%s", lost,
            lost ? " (their clients get 404 from the next replica; restore them from an export)" : "");
    svc_seqs_shutdown();
    svc_repo_shutdown();
    svc_repo_watch_free();
    svc_metrics_shutdown();
    svc_auth_shutdown();
    svc_log("info", "stopped");
    return 0;
}
