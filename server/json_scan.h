/*
 * json_scan.h — locate the `data` arrays of an inference request in one
 * validating pass, and load the rest of the document with jansson.
 */
#ifndef SVC_JSON_SCAN_H
#define SVC_JSON_SCAN_H

#include <jansson.h>
#include <stddef.h>

#include "json_num.h"
#include "svc.h"

/* inputs[input].data occupies bytes [start, end) (brackets included). */
typedef struct svc_span {
    size_t input;
    size_t start, end;
} svc_span;

/* Validates the document (an object, nesting <= max_depth, data arrays
 * nested <= max_data_depth) and returns its data spans in document order
 * (*spans owned, free()).  0, or 400 (malformed) / 503 (out of memory) in *e. */
int svc_json_scan(const char *s, size_t len, int max_depth, int max_data_depth, svc_span **spans,
                  size_t *n_spans, svc_err *e);

/* jansson's view of the document with each span reading "[]" (*out: a new
 * reference).  0, or 400 in *e. */
int svc_json_load(const char *s, size_t len, const svc_span *spans, size_t n, json_t **out,
                  svc_err *e);

/* A whole small document (an object), nesting bounded by
 * svc_cfg.max_json_depth (*out: a new reference).  0, or a status in *e. */
int svc_json_parse(const char *s, size_t len, json_t **out, svc_err *e);

#endif
