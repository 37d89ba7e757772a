/*
 * json_scan.h — locate the `data` arrays of an inference request in one
 * validating pass, and load the rest of the document with jansson.
 */
#ifndef SVC_JSON_SCAN_H
#define SVC_JSON_SCAN_H

#include <jansson.h>
#include <stddef.h>

#include "json_num.h"

/* inputs[input].data occupies bytes [start, end) (brackets included). */
typedef struct svc_span {
    size_t input;
    size_t start, end;
} svc_span;

/* Validates the document (an object, nesting <= max_depth, data arrays
 * nested <= max_data_depth) and returns its data spans in document order
 * (*spans owned, free()).  0 ok; -1 with a message in err. */
int svc_json_scan(const char *s, size_t len, int max_depth, int max_data_depth, svc_span **spans,
                  size_t *n_spans, char *err, size_t errcap);

/* jansson's view of the document with each span reading "[]".  New
 * reference, or NULL with a message in err. */
json_t *svc_json_load(const char *s, size_t len, const svc_span *spans, size_t n, char *err,
                      size_t errcap);

/* A whole small document (an object), nesting bounded by
 * svc_cfg.max_json_depth.  New reference, or NULL with a message. */
json_t *svc_json_parse(const char *s, size_t len, char *err, size_t errcap);

#endif
