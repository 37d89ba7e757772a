/*
 * zbody.h — compressed bodies (zlib): requests sent with Content-Encoding
 * gzip or deflate are inflated as they arrive, into the same bounded buffer
 * as a plain body (so --max-body-bytes limits the inflated size, and a zip
 * bomb stops at the limit); replies are compressed when Accept-Encoding
 * allows it and they are at least --compress-min-bytes long.
 */
#ifndef SVC_ZBODY_H
#define SVC_ZBODY_H

#include <stddef.h>

#include "svc.h"

typedef enum { SVC_ENC_IDENTITY = 0, SVC_ENC_GZIP = 1, SVC_ENC_DEFLATE = 2 } svc_enc;

/* A request's Content-Encoding (NULL: identity): gzip (x-gzip), deflate
 * or identity, any case.  -1 for anything else, a list included. */
int svc_z_content_encoding(const char *v, svc_enc *out);

/* What Accept-Encoding allows for the reply: gzip preferred, then deflate;
 * a q of 0 refuses a coding, `*` stands for both unless named.  Identity
 * when v is NULL or allows neither. */
svc_enc svc_z_accept(const char *v);

const char *svc_z_name(svc_enc e); /* "gzip", "deflate"; NULL for identity */

/* Streaming inflation.  The sink takes each inflated piece and returns 0,
 * or a status (413: over the limit; 503) that stops the inflation. */
typedef int (*svc_z_sink)(void *cls, const char *data, size_t n);
typedef struct svc_zin svc_zin;
/* NULL when out of memory. */
svc_zin *svc_z_in_new(svc_enc enc);
void svc_z_in_free(svc_zin *z);
/* Feeds n compressed bytes.  0, the sink's status, or 400 with *e set
 * (corrupt stream, data after its end). */
int svc_z_in_feed(svc_zin *z, const char *data, size_t n, svc_z_sink sink, void *cls, svc_err *e);
/* At the end of the body: 0 when the stream was complete (or no byte came
 * at all), else 400 (truncated). */
int svc_z_in_end(svc_zin *z, svc_err *e);

/* Compresses a[0, na) then b[0, nb) as one stream of coding enc at the
 * given zlib level.  Returns a malloc'd buffer and *out_len, or NULL (out
 * of memory). */
char *svc_z_compress(svc_enc enc, int level, const void *a, size_t na, const void *b, size_t nb, size_t *out_len);

#endif
