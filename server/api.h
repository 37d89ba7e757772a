/*
 * api.h — routes and handlers of the Open Inference Protocol endpoints.
 */
#ifndef SVC_API_H
#define SVC_API_H

#include <jansson.h>

#include "http.h"

typedef enum { SVC_AUTH_NONE, SVC_AUTH_API, SVC_AUTH_ADMIN } svc_auth_class;

typedef void (*svc_handler)(svc_req *r);

typedef struct svc_route {
    svc_handler handler;
    svc_auth_class auth;
    char model[SVC_MODEL_NAME_MAX + 1]; /* from /v2/models/{name} or .../repository/models/{name} */
    char arg[SVC_SEQ_ID_MAX + 1];       /* {id}: a sequence id; {file}: a file of the page */
} svc_route;

/* One row of the route table (api.c), the one place an endpoint is listed. */
typedef struct svc_route_def {
    const char *method;   /* "GET" (HEAD too), "POST", "PUT" or "DELETE" */
    const char *pattern;  /* as docs/server.md writes it: /v2/models/{m}[/versions/1]/infer */
    svc_handler handler;
    svc_auth_class auth;  /* what http.c checks the Authorization header against */
    int bad_name;         /* status when {m} is not a model name: 404 or 400 (0: no {m}) */
} svc_route_def;

const svc_route_def *svc_api_routes(size_t *n);

/* Matches method and path against the table.  0: *route filled (handler,
 * auth, model); else an HTTP status (404, 400 for a bad name to load, 405)
 * with the reply filled in. */
int svc_api_match(const char *method, const char *path, svc_route *route, svc_reply *rep);

/* Handlers (api.c, api_infer.c, api_repo.c, api_seq.c, ui.c). */
void svc_api_live(svc_req *r);
void svc_api_ready(svc_req *r);
void svc_api_server_meta(svc_req *r);
void svc_api_metrics(svc_req *r);
void svc_api_model_meta(svc_req *r);
void svc_api_model_ready(svc_req *r);
void svc_api_model_config(svc_req *r);
void svc_api_infer(svc_req *r);
void svc_api_repo_index(svc_req *r);
void svc_api_repo_load(svc_req *r);
void svc_api_repo_unload(svc_req *r);
void svc_api_seq_list(svc_req *r);    /* api_seq.c */
void svc_api_seq_get(svc_req *r);
void svc_api_seq_put(svc_req *r);
void svc_api_seq_delete(svc_req *r);
void svc_api_ui(svc_req *r);          /* ui.c: the explorer page's files */

/* The documents behind GET /v2 and GET /v2/models/{m}, for every
 * front-end: new references; the model's is NULL with 404 (or 503) in *e. */
json_t *svc_api_server_meta_json(void);
json_t *svc_api_model_meta_json(const char *name, svc_err *e);

/* api_repo.c: a load job for another front-end: (re)load `name` from its
 * folder (config NULL) or from config.json's text (owned) and the raw
 * safetensors bytes, which point into `keep` (freed with keep_free when the
 * job ends).  NULL when out of memory (config and keep freed).  Submit it;
 * a job that was not submitted ends with j->finish(j, status). */
struct svc_job;
struct svc_job *svc_api_load_job(const char *name, char *config, const void *weights, size_t weights_len, void *keep,
                                 void (*keep_free)(void *));

/* auth.c */
int svc_auth_init(svc_err *e);                    /* reads the key files: 0, or 500 in *e */
void svc_auth_shutdown(void);
/* 0 when the Authorization header grants the class, else 401 in *e. */
int svc_auth_check(svc_auth_class cls, const char *authorization, svc_err *e);

#endif
