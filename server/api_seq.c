/*
 * api_seq.c — sequences over HTTP: the sequence parameters of an inference
 * request and its step (seqcall.h), and the endpoints
 *   GET    /v2/models/{m}/sequences        the live sequences (admin scope)
 *   GET    /v2/models/{m}/sequences/{id}   export: the state as safetensors
 *   PUT    /v2/models/{m}/sequences/{id}   restore an export (on any replica)
 *   DELETE /v2/models/{m}/sequences/{id}   end it
 * Exports and restores run as jobs in the sequence's queue, so they see the
 * state between two steps, never during one.
 *
 * An export is libattn's attn_seq_export set written as safetensors, with
 * the server's __metadata__: attnd.format "1", attnd.model, attnd.type,
 * attnd.config (the normalised config, so that a built-in model configured
 * by the start request's parameters is rebuilt on restore) and
 * attnd.sequence_id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "sched.h"
#include "seqcall.h"

#define STEP_BYTES_PER_THREAD ((size_t)16 << 20)

/* ---- the state a sequence's entry owns ---- */

typedef struct seq_state {
    attn_seq *seq;
    attn_model *own;   /* a built-in's per-sequence model, or NULL */
    svc_model *model;  /* the served model it started on (kept alive) */
} seq_state;

static void state_free(void *p) {
    seq_state *st = p;
    attn_seq_free(st->seq); /* before its model */
    attn_model_free(st->own);
    svc_model_unref(st->model);
    free(st);
}

/* ---- parameters ---- */


static int get_bool(json_t *params, const char *key, int *out, svc_err *e) {
    json_t *v = params ? json_object_get(params, key) : NULL;
    *out = 0;
    if (!v) return 0;
    if (!json_is_boolean(v)) return svc_fail(e, 400, "parameter '%s' must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

int svc_seq_parse(json_t *params, const char *header, svc_seq_call *c, svc_err *e) {
    memset(c, 0, sizeof *c);
    c->kind = ATTN_SEQ_SELF;
    c->expect = -1;
    json_t *id = params ? json_object_get(params, "sequence_id") : NULL;
    char body_id[SVC_SEQ_ID_MAX + 1] = "";
    if (id) {
        if (json_is_integer(id)) {
            if (json_integer_value(id) < 0)
                return svc_fail(e, 400, "parameter 'sequence_id' must be a non-negative integer or a string");
            if (json_integer_value(id) > 0) {
                snprintf(body_id, sizeof body_id, "%lld", (long long)json_integer_value(id));
                c->id_is_int = 1;
            }
        } else if (json_is_string(id)) {
            const char *s = json_string_value(id);
            size_t n = json_string_length(id);
            if (n && (!svc_valid_seq_id(s, n) || strlen(s) != n))
                return svc_fail(e, 400, "parameter 'sequence_id': string ids match [A-Za-z0-9._:~-]{1,%d}",
                                SVC_SEQ_ID_MAX);
            snprintf(body_id, sizeof body_id, "%s", s);
        } else {
            return svc_fail(e, 400, "parameter 'sequence_id' must be an unsigned integer or a string");
        }
    }
    if (header && *header && strcmp(header, "0") != 0) {
        if (!svc_valid_seq_id(header, strlen(header)))
            return svc_fail(e, 400, "header %s: ids match [A-Za-z0-9._:~-]{1,%d}", SVC_SEQ_HEADER, SVC_SEQ_ID_MAX);
        if (id && strcmp(header, body_id) != 0)
            return svc_fail(e, 400, "header %s '%s' and parameter sequence_id '%s' disagree", SVC_SEQ_HEADER, header,
                            body_id);
        if (!id) snprintf(body_id, sizeof body_id, "%s", header);
    } else if (header && *header && id && body_id[0]) {
        return svc_fail(e, 400, "header %s '%s' and parameter sequence_id '%s' disagree", SVC_SEQ_HEADER, header,
                        body_id);
    }
    int st;
    if ((st = get_bool(params, "sequence_start", &c->start, e)) || (st = get_bool(params, "sequence_end", &c->end, e)))
        return st;
    json_t *kind = params ? json_object_get(params, "sequence_kind") : NULL;
    json_t *expect = params ? json_object_get(params, "attnd_expect_length") : NULL;
    if (expect) {
        if (!json_is_integer(expect) || json_integer_value(expect) < 0)
            return svc_fail(e, 400, "parameter 'attnd_expect_length' must be a non-negative integer");
        c->expect = json_integer_value(expect);
    }
    if (!body_id[0]) {
        if (c->start || c->end || kind || expect)
            return svc_fail(e, 400, "sequence_start, sequence_end, sequence_kind and attnd_expect_length need a sequence_id (not 0 or \"\")");
        return 0;
    }
    if (kind) {
        const char *k = json_is_string(kind) ? json_string_value(kind) : "";
        if (strcmp(k, "self") && strcmp(k, "cross"))
            return svc_fail(e, 400, "parameter 'sequence_kind' must be \"self\" or \"cross\"");
        if (!c->start)
            return svc_fail(e, 400, "parameter 'sequence_kind' is given on the start request only");
        c->kind = strcmp(k, "cross") == 0 ? ATTN_SEQ_CROSS : ATTN_SEQ_SELF;
    }
    c->on = 1;
    memcpy(c->id, body_id, sizeof c->id);
    return 0;
}

int svc_seq_check_model(const svc_seq_call *c, const attn_model *m, const char *name, svc_err *e) {
    if (attn_model_seq_kinds(m) & (unsigned)c->kind) return 0;
    char types[512];
    attn_seq_types(c->kind, types, sizeof types);
    return svc_fail(e, 400, "model '%s' (type %s with this config) has no %s sequences; types that have them: %s%s",
                    name, attn_model_mech(m)->name, c->kind == ATTN_SEQ_CROSS ? "cross" : "self", types,
                    c->kind == ATTN_SEQ_SELF ? " (some only with a causal config: see docs/sequences.md)" : "");
}

int svc_seq_admit(svc_seq_call *c, const char *model, int (*submit)(void *, svc_err *), void *arg, svc_err *e) {
    if (c->start && atomic_load(&svc_draining))
        return svc_fail(e, 503, "the server is shutting down: no new sequences (live ones continue until the drain ends)");
    return svc_seqs_open(model, c->id, c->start, svc_now_us(), &c->turn, submit, arg, &c->entry, e);
}

int svc_seq_first_in_line(const svc_seq_call *c) { return svc_seqs_turn_is_next(c->entry, &c->turn); }

void svc_seq_close(svc_seq_call *c) {
    if (!c->entry) return;
    svc_seqs_close(c->entry, &c->turn, svc_now_us());
    c->entry = NULL;
}

void svc_seq_reply_params(const svc_seq_call *c, char *buf, size_t cap) {
    /* ids are [A-Za-z0-9._:~-]: nothing to escape */
    snprintf(buf, cap, c->id_is_int ? "{\"sequence_id\":%s,\"sequence_length\":%lld%s}"
                                     : "{\"sequence_id\":\"%s\",\"sequence_length\":%lld%s}",
             c->id, (long long)c->length, c->end ? ",\"sequence_end\":true" : "");
}

/* Waits for the turn and checks that the sequence is still live. */
static int take_turn(svc_seq_call *c, const volatile int *cancel, svc_err *e) {
    if (svc_seqs_wait_turn(c->entry, &c->turn, cancel) != 0)
        return svc_fail(e, 504, "abandoned while waiting for the sequence's earlier requests");
    if (!svc_seqs_live(c->entry))
        return svc_fail(e, 404, "sequence '%s' ended while this request waited for its turn", c->id);
    return 0;
}

/* The longest-sequence check, before anything is computed. */
static int check_length(const svc_seq_call *c, int64_t have, int64_t T, svc_err *e) {
    int64_t max = svc_seqs_limits()->max_len;
    if (T > max - have)
        return svc_fail(e, 413, "sequence '%s' has %lld tokens; %lld more would pass the longest sequence, %lld tokens (--max-sequence-tokens)",
                        c->id, (long long)have, (long long)T, (long long)max);
    return 0;
}

int svc_seq_run(svc_seq_call *c, svc_model *m, const attn_model *am, attn_model **own, attn_ctx *ctx,
                const attn_tensor_set *inputs, const volatile int *cancel, attn_tensor **out, svc_err *e) {
    attn_error ae = {0};
    attn_status s;
    int64_t T = 0;
    int st = take_turn(c, cancel, e);
    if (st) goto fail;
    seq_state *state = svc_seqs_state(c->entry);
    int64_t have = state ? attn_seq_length(state->seq) : 0;
    if (c->expect >= 0 && c->expect != have) {
        st = svc_fail(e, 409, "sequence '%s' has %lld tokens here, but the request counts %lld before it: this copy is stale (restored elsewhere after a failover?) or a step was lost; nothing was applied",
                      c->id, (long long)have, (long long)c->expect);
        goto fail;
    }
    if (c->start) {
        if ((s = attn_model_seq_tokens(am, inputs, &T, &ae))) {
            st = svc_fail_attn(e, s, &ae, 0, NULL);
            goto fail;
        }
        if ((st = check_length(c, 0, T, e)) || (st = svc_seqs_room(c->entry, svc_now_us(), e))) goto fail;
        state = calloc(1, sizeof *state);
        if (!state) {
            st = svc_fail(e, 503, "out of memory");
            goto fail;
        }
        if ((s = attn_seq_open(am, c->kind, ctx, inputs, &state->seq, out, &ae))) {
            free(state);
            st = svc_fail_attn(e, s, &ae, 0, NULL);
            goto fail;
        }
        state->own = *own;
        *own = NULL;
        svc_model_ref(m);
        state->model = m;
        svc_seqs_set_state(c->entry, state, state_free);
    } else {
        if (!state) { /* cannot happen: a start holds the turn until its state is set */
            st = svc_fail(e, 500, "sequence '%s' has no state", c->id);
            goto fail;
        }
        if ((s = attn_seq_tokens(state->seq, inputs, &T, &ae))) {
            st = svc_fail_attn(e, s, &ae, 0, NULL);
            goto fail;
        }
        if ((st = check_length(c, attn_seq_length(state->seq), T, e)) ||
            (st = svc_seqs_room(c->entry, svc_now_us(), e)))
            goto fail;
        /* A step reads the whole state once per token and computes little:
         * threads cost more than they save until the reads are large (on a
         * busy machine a second thread waits for a core), so a step gets one
         * thread per STEP_BYTES_PER_THREAD of state times tokens. */
        size_t work = attn_seq_state_bytes(state->seq);
        work = (size_t)T > SIZE_MAX / (work ? work : 1) ? SIZE_MAX : work * (size_t)T;
        size_t want = 1 + work / STEP_BYTES_PER_THREAD;
        if (want < (size_t)attn_ctx_threads(ctx)) attn_ctx_set_threads(ctx, (int)want);
        if ((s = attn_seq_step(state->seq, ctx, inputs, out, &ae))) {
            st = svc_fail_attn(e, s, &ae, 0, NULL);
            if (attn_seq_broken(state->seq)) svc_seqs_end(c->entry, SVC_SEQ_END_FAILED);
            goto fail;
        }
    }
    c->length = attn_seq_length(state->seq);
    c->model = attn_seq_model(state->seq);
    svc_seqs_update(c->entry, attn_seq_state_bytes(state->seq), c->length);
    if (c->end) svc_seqs_end(c->entry, SVC_SEQ_END_FLAG);
    return 0;
fail:
    /* A start that failed began nothing: its id is free again. */
    if (c->start && c->entry && !svc_seqs_state(c->entry)) svc_seqs_abandon(c->entry);
    return st;
}

/* ---- export and restore: jobs in the sequence's queue ---- */

typedef struct seq_job {
    svc_job base; /* first */
    svc_seq_call c;
    svc_model *model;
    char name[SVC_MODEL_NAME_MAX + 1];
    int put;
    char *body;   /* PUT: the request body (owned) */
    size_t len;
} seq_job;

/* The safetensors bytes with __metadata__ added to the header. */
static int with_metadata(const unsigned char *st, size_t len, json_t *meta, svc_reply *rep, svc_err *e) {
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)st[i] << (8 * i);
    json_t *h = json_loadb((const char *)st + 8, (size_t)n, 0, NULL);
    if (!h || json_object_set(h, "__metadata__", meta)) {
        json_decref(h);
        return svc_fail(e, 500, "cannot add the export's metadata");
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text) return svc_fail(e, 503, "out of memory");
    size_t hl = strlen(text), pad = (8 - hl % 8) % 8, data = len - 8 - (size_t)n;
    char *out = malloc(8 + hl + pad + data);
    if (!out) {
        free(text);
        return svc_fail(e, 503, "out of memory for a %zu-byte export", len);
    }
    uint64_t hn = hl + pad;
    for (int i = 0; i < 8; i++) out[i] = (char)(hn >> (8 * i));
    memcpy(out + 8, text, hl);
    memset(out + 8 + hl, ' ', pad);
    memcpy(out + 8 + hl + pad, st + 8 + n, data);
    free(text);
    rep->status = 200;
    rep->ctype = "application/octet-stream";
    rep->body = out;
    rep->len = 8 + hl + pad + data;
    return 0;
}

static void run_export(seq_job *j, attn_ctx *ctx, svc_err *e) {
    (void)ctx;
    attn_error ae = {0};
    attn_tensor_set *set = NULL;
    void *bytes = NULL;
    size_t len = 0;
    if (take_turn(&j->c, &j->base.cancel, e)) return;
    seq_state *state = svc_seqs_state(j->c.entry);
    attn_status s = state ? attn_seq_export(state->seq, &set, &ae) : ATTN_E_INVALID;
    if (!s) s = attn_safetensors_write_mem(set, &bytes, &len, &ae);
    attn_tensor_set_free(set);
    if (s) {
        svc_fail_attn(e, s, &ae, 0, "cannot export the sequence: ");
        return;
    }
    const attn_model *am = attn_seq_model(state->seq);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s}", "attnd.format", "1", "attnd.model", j->name, "attnd.type",
                             attn_model_mech(am)->name, "attnd.config", attn_model_config_json(am),
                             "attnd.sequence_id", j->c.id);
    if (!meta) svc_fail(e, 503, "out of memory");
    else with_metadata(bytes, len, meta, &j->base.reply, e);
    json_decref(meta);
    free(bytes);
}

/* The __metadata__ string `key` of a safetensors body, or NULL. */
static json_t *export_meta(const char *body, size_t len) {
    if (len < 8) return NULL;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)(unsigned char)body[i] << (8 * i);
    if (n > len - 8) return NULL;
    json_t *h = json_loadb(body + 8, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = h ? json_incref(json_object_get(h, "__metadata__")) : NULL;
    json_decref(h);
    return m;
}

static void run_restore(seq_job *j, attn_ctx *ctx, svc_err *e) {
    (void)ctx;
    attn_error ae = {0};
    attn_tensor_set *set = NULL;
    attn_model *own = NULL;
    seq_state *state = NULL;
    if (take_turn(&j->c, &j->base.cancel, e)) goto fail;
    attn_status s = attn_safetensors_read_mem(j->body, j->len, &set, &ae);
    if (s) {
        svc_fail_attn(e, s, &ae, s == ATTN_E_NOMEM ? 503 : 400, "the body is not a sequence export: ");
        goto fail;
    }
    json_t *meta = export_meta(j->body, j->len);
    free(j->body);
    j->body = NULL;
    const char *type = json_string_value(json_object_get(meta, "attnd.type"));
    const char *config = json_string_value(json_object_get(meta, "attnd.config"));
    const attn_model *am = j->model->m;
    if (type && strcmp(type, j->model->mech->name) != 0) {
        svc_fail(e, 400, "the export is of a %s sequence; model '%s' is %s", type, j->name, j->model->mech->name);
        json_decref(meta);
        goto fail;
    }
    if (j->model->builtin && config) { /* rebuild the config the sequence started with */
        s = attn_model_new(j->model->mech->name, config, NULL, &own, &ae);
        am = own;
    }
    json_decref(meta);
    if (!s && !am) {
        svc_fail(e, 400, "the export carries no attnd.config and model '%s' needs one", j->name);
        goto fail;
    }
    state = calloc(1, sizeof *state);
    if (!s && !state) s = ATTN_E_NOMEM;
    if (!s) s = attn_seq_import(am, set, &state->seq, &ae);
    attn_tensor_set_free(set);
    set = NULL;
    if (s) {
        /* Override: whatever is wrong with the upload is the client's. */
        svc_fail_attn(e, s, &ae, s == ATTN_E_NOMEM ? 503 : 400, "cannot restore the sequence: ");
        goto fail;
    }
    int64_t T = attn_seq_length(state->seq);
    if (check_length(&j->c, 0, T, e) || svc_seqs_room(j->c.entry, svc_now_us(), e)) goto fail;
    state->own = own;
    own = NULL;
    svc_model_ref(j->model);
    state->model = j->model;
    svc_seqs_set_state(j->c.entry, state, state_free);
    svc_seqs_update(j->c.entry, attn_seq_state_bytes(state->seq), T);
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s}", "model", j->name, "sequence_id", j->c.id, "sequence_length",
                          (json_int_t)T, "bytes", (json_int_t)attn_seq_state_bytes(state->seq), "kind",
                          attn_seq_kind_of(state->seq) == ATTN_SEQ_CROSS ? "cross" : "self");
    svc_reply_json(&j->base.reply, 200, o);
    return;
fail:
    attn_tensor_set_free(set);
    if (state) {
        attn_seq_free(state->seq);
        free(state);
    }
    attn_model_free(own);
    if (j->c.entry && !svc_seqs_state(j->c.entry)) svc_seqs_abandon(j->c.entry);
}

static void seq_job_run(svc_job *base, attn_ctx *ctx) {
    seq_job *j = (seq_job *)base;
    svc_err e = {0};
    if (j->put) run_restore(j, ctx, &e);
    else run_export(j, ctx, &e);
    if (e.status) svc_reply_fail(&j->base.reply, &e);
    svc_seq_close(&j->c); /* before the answer, as an inference's (api_infer.c) */
}

static void seq_job_free(seq_job *j) {
    svc_seq_close(&j->c);
    svc_reply_clear(&j->base.reply);
    free(j->body);
    svc_model_unref(j->model);
    free(j);
}

static void seq_job_finish(svc_job *base, int status) {
    (void)status;
    seq_job_free((seq_job *)base);
}

typedef struct submit_arg {
    svc_req *r;
    svc_job *j;
} submit_arg;

static int submit(void *p, svc_err *e) {
    submit_arg *a = p;
    return svc_req_submit(a->r, a->j, e);
}

/* GET and PUT of one sequence. */
/* A Sequence-Id header must name the path's sequence: a balancer routes by
 * the header, so a disagreement would act on a sequence of another replica. */
static int header_agrees(svc_req *r, svc_err *e) {
    const char *h = svc_req_header(r, SVC_SEQ_HEADER);
    if (h && *h && strcmp(h, svc_req_arg(r)) != 0)
        return svc_fail(e, 400, "header %s '%.128s' and the path's sequence '%s' disagree", SVC_SEQ_HEADER, h,
                        svc_req_arg(r));
    return 0;
}

static void export_or_restore(svc_req *r, int put) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_err e = {0};
    seq_job *j = NULL;
    svc_model *m = svc_repo_get(svc_req_model(r));
    svc_req_set_sequence(r, svc_req_arg(r));
    if (header_agrees(r, &e)) goto fail;
    if (!m) {
        svc_fail(&e, 404, "unknown model '%s'", svc_req_model(r));
        goto fail;
    }
    if (!(j = calloc(1, sizeof *j))) {
        svc_fail(&e, 503, "out of memory");
        goto fail;
    }
    j->model = m;
    m = NULL;
    snprintf(j->name, sizeof j->name, "%s", svc_req_model(r));
    snprintf(j->c.id, sizeof j->c.id, "%s", svc_req_arg(r));
    j->c.on = 1;
    j->c.start = put; /* a restore starts the id: 409 when it is live */
    j->put = put;
    if (put) {
        size_t len;
        const char *body = svc_req_body(r, &len);
        if (len == 0) {
            svc_fail(&e, 400, "PUT needs the body of an export (GET .../sequences/{id})");
            goto fail;
        }
        if (!(j->body = malloc(len))) {
            svc_fail(&e, 503, "out of memory");
            goto fail;
        }
        memcpy(j->body, body, len);
        j->len = len;
    }
    j->base.run = seq_job_run;
    j->base.finish = seq_job_finish;
    svc_reply_init(&j->base.reply);
    j->base.deadline_us = svc_now_us() + (uint64_t)(svc_cfg.timeout_s * 1e6);
    j->base.max_threads = 1;
    submit_arg a = {r, &j->base};
    if (svc_seq_admit(&j->c, j->name, submit, &a, &e) == 0) return;
fail:
    svc_reply_fail(&rep, &e);
    svc_req_reply(r, &rep);
    if (j) seq_job_free(j);
    svc_model_unref(m);
}

void svc_api_seq_get(svc_req *r) { export_or_restore(r, 0); }
void svc_api_seq_put(svc_req *r) { export_or_restore(r, 1); }

void svc_api_seq_delete(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_err e = {0};
    svc_req_set_sequence(r, svc_req_arg(r));
    svc_model *m = svc_repo_get(svc_req_model(r));
    if (header_agrees(r, &e)) (void)0;
    else if (!m) svc_fail(&e, 404, "unknown model '%s'", svc_req_model(r));
    else svc_seqs_end_id(svc_req_model(r), svc_req_arg(r), SVC_SEQ_END_DELETED, &e);
    svc_model_unref(m);
    if (e.status) svc_reply_fail(&rep, &e);
    else svc_reply_json(&rep, 200, json_pack("{s:s, s:s, s:s}", "model", svc_req_model(r), "sequence_id",
                                             svc_req_arg(r), "ended", "deleted"));
    svc_req_reply(r, &rep);
}

void svc_api_seq_list(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    svc_model *m = svc_repo_get(svc_req_model(r));
    if (!m) {
        svc_reply_error(&rep, 404, "unknown model '%s'", svc_req_model(r));
    } else {
        json_t *list = svc_seqs_list(svc_req_model(r), svc_now_us());
        if (!list) svc_reply_error(&rep, 503, "out of memory");
        else svc_reply_json(&rep, 200, json_pack("{s:s, s:o}", "model", svc_req_model(r), "sequences", list));
    }
    svc_model_unref(m);
    svc_req_reply(r, &rep);
}
