/*
 * repo.h — the models attnd serves: the repository's models (loaded from
 * <repo>/<name>/ or from a load request) and the built-in models (every
 * parameter-free mechanism, named by its type and its aliases).
 *
 * A served model is an immutable, reference-counted svc_model.  Requests
 * hold a reference for their whole life, so a load or an unload swaps the
 * table entry and the old version is freed only when its last request ends.
 */
#ifndef SVC_REPO_H
#define SVC_REPO_H

#include <jansson.h>
#include <stdatomic.h>

#include "svc.h"

struct svc_stats;

typedef struct svc_model {
    atomic_int refs;
    char name[SVC_MODEL_NAME_MAX + 1];   /* canonical (built-ins: the type name) */
    const attn_mech_info *mech;
    attn_model *m;                       /* NULL: a built-in whose defaults are incomplete */
    char default_err[256];               /* why m is NULL */
    int builtin;
    int allow_nonfinite;
    uint64_t generation;                 /* increases with every load */
    struct svc_stats *stats[2];          /* metrics slots per front-end (svc_protocol), live as long as the process */
    json_t *weights;                     /* [{name, datatype, shape}] of its weights file (owned), or NULL */
    /* What its requests take (api_infer.c): moving averages of the
     * single-thread microseconds + 1 (0: none measured yet) and of the
     * input elements, of whole requests and of sequence steps. */
    atomic_ullong cost_us[2], cost_elems[2];
} svc_model;

enum { SVC_COST_WHOLE, SVC_COST_STEP };

/* Builds the built-ins and loads every model folder of dir (may be NULL).
 * Failures are logged and reported by the index; they do not stop startup. */
int svc_repo_init(const char *dir, svc_err *e); /* 0, or the status (500, 503) in *e */
void svc_repo_shutdown(void);

/* New reference to the model served under `name`, or NULL. */
svc_model *svc_repo_get(const char *name);
void svc_model_ref(svc_model *m);
void svc_model_unref(svc_model *m);

/* Loads <repo>/<name>/ (config_json == NULL) or the given content:
 * config_json is config.json's text, weights the raw safetensors bytes (may
 * be NULL for parameter-free types).  The new model is validated first,
 * then written to the repository atomically, then swapped in; on any
 * failure the old model keeps serving.  Returns 0, or the status in *e
 * (404: no such folder).  Serialised internally. */
int svc_repo_load(const char *name, const char *config_json, size_t config_len,
                  const void *weights, size_t weights_len, svc_err *e);
/* 0 (unloaded, or was not loaded), or 400 (built-in) / 404 (unknown) in *e. */
int svc_repo_unload(const char *name, svc_err *e);

/* [{"name", "version", "state", "reason"}...]; new reference. */
json_t *svc_repo_index(int ready_only);

/* Model control (Triton's --model-control-mode): explicit (the API loads
 * and unloads; at start the --load-model models, all when none is given),
 * none (everything loads at start; the API's load and unload are refused),
 * poll (as none, and the repository is watched: repo_watch.c). */
const char *svc_repo_mode_name(svc_control_mode m);
/* 0 when the API may load and unload, else 400 in *e saying why not. */
int svc_repo_control_check(svc_err *e);
/* Poll mode: loads the folders that appeared or whose files changed
 * (config.json, weights.safetensors: inode, size, mtime)
 * (validated first: a broken version leaves the old one serving, with the
 * reason in the index), unloads those that vanished.  Blocking (loads run
 * here).  Returns how many models changed. */
size_t svc_repo_rescan(void);
const char *svc_repo_dir(void);
const char *svc_repo_single(void); /* the name when the repository is one model folder, else NULL */

/* Every built-in model, for metrics and the server metadata. */
size_t svc_repo_builtin_count(void);

#endif
