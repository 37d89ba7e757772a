/*
 * metrics.c — counters and the Prometheus text exposition format.
 *
 * Names follow Triton's (nv_inference_request_success, ..._failure{reason},
 * ..._count, ..._exec_count, cumulative ..._duration_us counters and the
 * pending-request gauge) with the attnd_ prefix, plus a request-duration
 * histogram, HTTP responses by code, and process memory.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc.h"
#include "sched.h"
#include "seqstore.h"

static const double bucket_s[SVC_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
static const char *const fail_name[SVC_FAIL_COUNT] = {"INVALID", "REJECTED", "TIMEOUT", "BACKEND"};
static const int http_codes[] = {200, 400, 401, 404, 405, 413, 415, 499, 500, 503, 504};
#define N_CODES (sizeof http_codes / sizeof *http_codes)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static svc_stats **slots;
static size_t n_slots, cap_slots;
static atomic_ullong http_count[N_CODES + 1]; /* last: any other code */
static atomic_llong http_inflight;
static atomic_ullong grpc_count[17];

const char *svc_protocol_label(svc_protocol p) { return p == SVC_PROTO_GRPC ? "grpc" : "http"; }

svc_stats *svc_metrics_model(const char *name, svc_protocol p) {
    svc_stats *s = NULL;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_slots; i++)
        if (slots[i]->protocol == p && strcmp(slots[i]->name, name) == 0) {
            s = slots[i];
            goto out;
        }
    if (n_slots == cap_slots) {
        size_t cap = cap_slots ? cap_slots * 2 : 32;
        svc_stats **grown = realloc(slots, cap * sizeof *grown);
        if (!grown) goto out;
        slots = grown;
        cap_slots = cap;
    }
    s = calloc(1, sizeof *s);
    if (!s) goto out;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->protocol = p;
    slots[n_slots++] = s;
out:
    pthread_mutex_unlock(&mu);
    return s;
}

void svc_metrics_request(svc_stats *s, int status, uint64_t request_us) {
    if (!s) return;
    if (status == 200) atomic_fetch_add(&s->success, 1);
    else if (status == 503) atomic_fetch_add(&s->fail[SVC_FAIL_REJECTED], 1);
    else if (status == 504) atomic_fetch_add(&s->fail[SVC_FAIL_TIMEOUT], 1);
    else if (status >= 500) atomic_fetch_add(&s->fail[SVC_FAIL_BACKEND], 1);
    else atomic_fetch_add(&s->fail[SVC_FAIL_INVALID], 1);
    atomic_fetch_add(&s->request_us, request_us);
    int b = 0;
    while (b < SVC_HIST_BUCKETS && (double)request_us > bucket_s[b] * 1e6) b++;
    atomic_fetch_add(&s->hist[b], 1);
}

void svc_metrics_http(int status) {
    size_t i = 0;
    while (i < N_CODES && http_codes[i] != status) i++;
    atomic_fetch_add(&http_count[i], 1);
}

void svc_metrics_inflight(int delta) { atomic_fetch_add(&http_inflight, delta); }

void svc_metrics_grpc(int code) { atomic_fetch_add(&grpc_count[code >= 0 && code < 17 ? code : 2], 1); }

static void family(svc_buf *b, const char *name, const char *type, const char *help) {
    svc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

#define PER_MODEL(NAME, TYPE, HELP, FIELD)                                                         \
    do {                                                                                           \
        family(b, NAME, TYPE, HELP);                                                               \
        for (size_t i = 0; i < n; i++)                                                             \
            svc_buf_printf(b, NAME "{model=\"%s\",version=\"1\",protocol=\"%s\"} %llu\n", s[i]->name, \
                           svc_protocol_label(s[i]->protocol), (unsigned long long)atomic_load(&s[i]->FIELD)); \
    } while (0)

static long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

void svc_metrics_render(svc_buf *b) {
    /* Entries never move or die; the array of pointers may be reallocated,
     * so take a copy of it. */
    pthread_mutex_lock(&mu);
    size_t n = n_slots;
    svc_stats **s = malloc((n ? n : 1) * sizeof *s);
    if (s) memcpy(s, slots, n * sizeof *s);
    pthread_mutex_unlock(&mu);
    if (!s) {
        b->oom = 1;
        return;
    }

    PER_MODEL("attnd_inference_request_success", "counter",
              "Number of successful inference requests, all batch sizes", success);
    family(b, "attnd_inference_request_failure", "counter",
           "Number of failed inference requests, by reason");
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < SVC_FAIL_COUNT; r++)
            svc_buf_printf(b, "attnd_inference_request_failure{model=\"%s\",version=\"1\",protocol=\"%s\",reason=\"%s\"} %llu\n",
                           s[i]->name, svc_protocol_label(s[i]->protocol), fail_name[r],
                           (unsigned long long)atomic_load(&s[i]->fail[r]));
    PER_MODEL("attnd_inference_exec_count", "counter", "Number of model executions", exec_count);
    PER_MODEL("attnd_inference_exec_inline_count", "counter",
              "Model executions run on the thread that decoded the request (expected short: --inline-max-us)",
              exec_inline);
    PER_MODEL("attnd_inference_request_duration_us", "counter",
              "Cumulative inference request duration in microseconds (decode to response)", request_us);
    PER_MODEL("attnd_inference_queue_duration_us", "counter",
              "Cumulative time requests waited for a compute thread, in microseconds", queue_us);
    PER_MODEL("attnd_inference_compute_input_duration_us", "counter",
              "Cumulative input decoding time in microseconds", input_us);
    PER_MODEL("attnd_inference_compute_infer_duration_us", "counter",
              "Cumulative model execution time in microseconds", infer_us);
    PER_MODEL("attnd_inference_compute_output_duration_us", "counter",
              "Cumulative output encoding time in microseconds", output_us);
    PER_MODEL("attnd_inference_pending_request_count", "gauge",
              "Requests waiting in the queue for a compute thread", pending);
    PER_MODEL("attnd_inference_executing_request_count", "gauge",
              "Requests executing on a compute thread", executing);

    family(b, "attnd_inference_request_duration_seconds", "histogram",
           "Inference request duration (decode to response)");
    for (size_t i = 0; i < n; i++) {
        unsigned long long cum = 0;
        const char *nm = s[i]->name, *pr = svc_protocol_label(s[i]->protocol);
        for (int k = 0; k <= SVC_HIST_BUCKETS; k++) {
            cum += atomic_load(&s[i]->hist[k]);
            if (k < SVC_HIST_BUCKETS)
                svc_buf_printf(b, "attnd_inference_request_duration_seconds_bucket{model=\"%s\",version=\"1\",protocol=\"%s\",le=\"%g\"} %llu\n",
                               nm, pr, bucket_s[k], cum);
            else
                svc_buf_printf(b, "attnd_inference_request_duration_seconds_bucket{model=\"%s\",version=\"1\",protocol=\"%s\",le=\"+Inf\"} %llu\n",
                               nm, pr, cum);
        }
        svc_buf_printf(b, "attnd_inference_request_duration_seconds_sum{model=\"%s\",version=\"1\",protocol=\"%s\"} %.6f\n",
                       nm, pr, (double)atomic_load(&s[i]->request_us) / 1e6);
        svc_buf_printf(b, "attnd_inference_request_duration_seconds_count{model=\"%s\",version=\"1\",protocol=\"%s\"} %llu\n",
                       nm, pr, cum);
    }

    family(b, "attnd_http_responses", "counter", "HTTP responses by status code");
    for (size_t i = 0; i <= N_CODES; i++) {
        if (i < N_CODES) svc_buf_printf(b, "attnd_http_responses{code=\"%d\"} ", http_codes[i]);
        else svc_buf_puts(b, "attnd_http_responses{code=\"other\"} ");
        svc_buf_printf(b, "%llu\n", (unsigned long long)atomic_load(&http_count[i]));
    }
    family(b, "attnd_http_requests_in_flight", "gauge", "HTTP requests being handled");
    svc_buf_printf(b, "attnd_http_requests_in_flight %lld\n", (long long)atomic_load(&http_inflight));
    /* The gRPC front-end (grpc.c): its calls by gRPC status, and those in flight. */
    family(b, "attnd_grpc_responses", "counter", "gRPC calls by status code");
    for (int i = 0; i < 17; i++)
        svc_buf_printf(b, "attnd_grpc_responses{code=\"%s\"} %llu\n", svc_grpc_code_name(i),
                       (unsigned long long)atomic_load(&grpc_count[i]));
    family(b, "attnd_grpc_requests_in_flight", "gauge", "gRPC calls being handled");
    svc_buf_printf(b, "attnd_grpc_requests_in_flight %d\n", svc_grpc_inflight());
    family(b, "attnd_queue_depth", "gauge", "Jobs waiting for a compute thread, all models");
    svc_buf_printf(b, "attnd_queue_depth %d\n", svc_sched_pending());
    family(b, "attnd_queue_capacity", "gauge", "Most jobs that may wait before requests get 503");
    svc_buf_printf(b, "attnd_queue_capacity %d\n", svc_cfg.max_queue);
    svc_seq_stats q = svc_seqs_stats();
    family(b, "attnd_sequences_live", "gauge", "Live sequences (streaming decode state held by the server)");
    svc_buf_printf(b, "attnd_sequences_live %zu\n", q.live);
    family(b, "attnd_sequences_capacity", "gauge", "Most live sequences (--max-sequences)");
    svc_buf_printf(b, "attnd_sequences_capacity %zu\n", svc_cfg.max_sequences);
    family(b, "attnd_sequence_state_bytes", "gauge", "Bytes of state held by the live sequences");
    svc_buf_printf(b, "attnd_sequence_state_bytes %zu\n", q.bytes);
    family(b, "attnd_sequence_memory_budget_bytes", "gauge", "Budget for the sequences' state (--sequence-memory)");
    svc_buf_printf(b, "attnd_sequence_memory_budget_bytes %zu\n", svc_cfg.sequence_memory);
    family(b, "attnd_sequences_started_total", "counter", "Sequences started or restored");
    svc_buf_printf(b, "attnd_sequences_started_total %llu\n", (unsigned long long)q.started);
    family(b, "attnd_sequence_ends_total", "counter", "Sequences ended, by reason");
    for (int i = 0; i < SVC_SEQ_END_COUNT; i++)
        svc_buf_printf(b, "attnd_sequence_ends_total{reason=\"%s\"} %llu\n", svc_seq_end_label((svc_seq_end)i),
                       (unsigned long long)q.ends[i]);
    family(b, "attnd_sequence_tokens_total", "counter", "Tokens appended to sequences");
    svc_buf_printf(b, "attnd_sequence_tokens_total %llu\n", (unsigned long long)q.tokens);
    family(b, "attnd_ready", "gauge", "1 when /v2/health/ready answers 200");
    svc_buf_printf(b, "attnd_ready %d\n", atomic_load(&svc_ready));
    family(b, "attnd_build_info", "gauge", "Version of attnd");
    svc_buf_printf(b, "attnd_build_info{version=\"%s\"} 1\n", ATTN_VERSION);
    long rss = resident_bytes();
    if (rss >= 0) {
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes");
        svc_buf_printf(b, "process_resident_memory_bytes %ld\n", rss);
    }
    free(s);
}

void svc_metrics_shutdown(void) {
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_slots; i++) free(slots[i]);
    free(slots);
    slots = NULL;
    n_slots = cap_slots = 0;
    pthread_mutex_unlock(&mu);
}
