/*
 * json_num.h — JSON number tokens to and from float32 / int64, fast.
 */
#ifndef SVC_JSON_NUM_H
#define SVC_JSON_NUM_H

#include <stddef.h>
#include <stdint.h>

enum { SVC_NUM_SYNTAX = 1, SVC_NUM_RANGE = 2, SVC_NUM_NOT_INT = 3 };

/* Longest output of svc_f32_format. */
#define SVC_F32_CHARS 24

/* Shortest decimal that reads back as v; NaN / Infinity / -Infinity for
 * non-finite values (the tokens Triton and Python write).  Returns the
 * length; out needs SVC_F32_CHARS + 1 bytes, since a NUL may follow the
 * text (it is not always written). */
size_t svc_f32_format(char *out, float v);

/* Parse one JSON number at p (< end) correctly rounded to float32.  Returns
 * the end of the token, or NULL with *err = SVC_NUM_SYNTAX or SVC_NUM_RANGE
 * (beyond float32).  The buffer must be NUL-terminated at or after end. */
const char *svc_num_f32(const char *p, const char *end, float *out, int *err);
/* An integer token (no fraction or exponent) within int64. */
const char *svc_num_i64(const char *p, const char *end, int64_t *out, int *err);
/* End of a number token at p, or NULL. */
const char *svc_num_skip(const char *p, const char *end);

#endif
