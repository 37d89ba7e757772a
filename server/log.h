/*
 * log.h — one line per request and a few server messages, plain or JSON
 * (--log-format), written to stderr with one write() per line.
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct svc_log_req {
    const char *method, *path, *model, *id;
    int status;
    size_t bytes_in, bytes_out;
    uint64_t us;
    const char *error; /* the error message sent, or NULL */
} svc_log_req;

void svc_log_request(const svc_log_req *r);
void svc_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
