/*
 * metrics.h — Prometheus counters in the style of Triton's nv_inference_*,
 * prefixed attnd_.  Per-model slots — one per model and front-end, the
 * `protocol` label — are created on first use and live as long as the
 * process, so a reload keeps its model's counters.
 */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include <stdatomic.h>

#include "svc.h"

/* Why an inference failed (the `reason` label). */
typedef enum {
    SVC_FAIL_INVALID,  /* the request was wrong: 4xx */
    SVC_FAIL_REJECTED, /* the queue was full: 503 */
    SVC_FAIL_TIMEOUT,  /* the deadline passed: 504 */
    SVC_FAIL_BACKEND,  /* the computation failed: 5xx */
    SVC_FAIL_COUNT
} svc_fail_reason;

#define SVC_HIST_BUCKETS 12

/* The front-end a request came through (the `protocol` label). */
typedef enum { SVC_PROTO_HTTP, SVC_PROTO_GRPC, SVC_PROTO_COUNT } svc_protocol;
const char *svc_protocol_label(svc_protocol p); /* "http", "grpc" */

typedef struct svc_stats {
    char name[SVC_MODEL_NAME_MAX + 1];
    svc_protocol protocol;
    atomic_ullong success, fail[SVC_FAIL_COUNT];
    atomic_ullong exec_count, exec_inline; /* executions; of them on the front-end's thread */
    atomic_ullong request_us, queue_us, input_us, infer_us, output_us;
    atomic_llong pending, executing;
    atomic_ullong hist[SVC_HIST_BUCKETS + 1]; /* request duration, last = +Inf */
} svc_stats;

/* The slot of model `name`'s requests over protocol p (created on first
 * use); NULL when out of memory. */
svc_stats *svc_metrics_model(const char *name, svc_protocol p);
/* One finished inference request: outcome status and its durations (us). */
void svc_metrics_request(svc_stats *s, int http_status, uint64_t request_us);
/* One HTTP response of any kind. */
void svc_metrics_http(int http_status);
void svc_metrics_inflight(int delta);
/* One gRPC call's outcome (a gRPC status code, 0-16). */
void svc_metrics_grpc(int code);
/* The exposition text. */
void svc_metrics_render(svc_buf *b);
void svc_metrics_shutdown(void);

#endif
