/*
 * config.c — the server-wide globals (the configuration and the ready and
 * draining flags) and the configuration's defaults.  main.c fills svc_cfg
 * from flags and ATTND_* variables; unit tests and fuzz targets link this
 * file instead of main.o.
 */
#include "svc.h"

svc_config svc_cfg;
atomic_int svc_ready;
atomic_int svc_draining;

svc_config svc_config_defaults(void) {
    return (svc_config){
        .host = "127.0.0.1",
        .port = 8000,
        .grpc_port = -1,
        .cores = 1,
        .max_body = 64u << 20,
        .max_elements = 16u << 20,
        .max_rank = ATTN_MAX_RANK,
        .max_dim = 1 << 20,
        .max_queue = 64,
        .inline_max_us = 200,
        .timeout_s = 60,
        .drain_timeout_s = 30,
        .shutdown_delay_s = 0,
        .idle_timeout_s = 30,
        .max_connections = 1024,
        .max_header = 64u << 10,
        .max_json_depth = 32,
        .retry_after_s = 1,
        .max_sequences = 1024,
        .sequence_memory = (size_t)1 << 30,
        .sequence_idle_s = 60,
        .max_sequence_tokens = 1 << 16,
        .sequence_evict_s = 5,
        .max_attention_elements = (size_t)64 << 20,
        .control_mode = SVC_CONTROL_EXPLICIT,
        .poll_s = 15,
        .compress_min = 1024,
        .compress_max = (size_t)16 << 20,
        .compress_level = 1,
        .ui = -1,
    };
}
