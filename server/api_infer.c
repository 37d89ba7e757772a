/*
 * api_infer.c — inference: svc_infer (infer.h), the path every front-end
 * shares, and HTTP's POST /v2/models/{name}/infer on it.
 *
 * On the front-end's thread: decode the request, check it against the model's
 * declared inputs (names, datatypes, ranks, fixed dimensions), decode every
 * tensor, and for a built-in model build the per-request model from the
 * request's parameters.  On a pool thread: run the model and encode the
 * response (with the front-end's encoder) — or, for a request expected to
 * take less than --inline-max-us, on the front-end's thread itself (see
 * expect_short).  The request body is released
 * before the job is queued, unless binary inputs are read in place (views
 * into the body, when their bytes are aligned): then the job owns the body
 * until the forward is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec.h"
#include "infer.h"
#include "metrics.h"
#include "repo.h"
#include "sched.h"
#include "seqcall.h"

#define MAX_OUTPUTS 16 /* named in one request */

typedef struct infer_job {
    svc_job base; /* first: the scheduler hands back a svc_job * */
    svc_model *model;
    attn_model *own;            /* a built-in's per-request model, or NULL */
    const attn_model *am;       /* the model that runs */
    attn_tensor_set *inputs;
    void *body;                 /* the request body's block, when inputs are views into it */
    void (*body_free)(void *);
    void (*encode)(const svc_wire_result *, svc_wire_out *, size_t, svc_reply *); /* the front-end's */
    char name[SVC_MODEL_NAME_MAX + 1];
    char out_name[sizeof ((attn_io_spec *)0)->name];
    char *id;
    int binary;    /* the primary output's, when the request names no outputs */
    svc_half half; /* the output's requested FP16 / BF16 */
    struct {       /* the outputs the request names, in its order */
        char name[sizeof ((attn_io_spec *)0)->name];
        int binary;
        svc_half half;
    } req_out[MAX_OUTPUTS];
    size_t n_req_out;
    int maps;      /* one of them is an attention map: forward_outputs */
    uint64_t t0, input_us, infer_us, output_us;
    int ran;
    int accounted; /* metrics recorded (once) */
    int kind;      /* SVC_COST_WHOLE or SVC_COST_STEP: which of the model's cost estimates it updates */
    size_t elems;  /* input elements */
    const svc_infer_front *here; /* running on the front-end's thread: answer through here->reply */
    struct svc_stats *stats;     /* the model's counters for the front-end's protocol */
    svc_seq_call seq; /* when the request is in a sequence */
} infer_job;

/* ---- short requests run where they arrive ----
 *
 * Handing a job to the pool and its reply back to the front-end costs
 * four thread hand-offs, 0.1-0.2 ms on a virtual machine: as much as a
 * decode step or a tiny forward.  So a request that is expected to take
 * less than --inline-max-us runs on the front-end's thread, on one core
 * claimed from the scheduler (when none is free, or a job waits, it is
 * queued as usual).  What a request will take is measured, not guessed:
 * each model keeps a moving average of the single-thread time (compute +
 * encode, times the threads it had) and of the input elements of its
 * whole requests and of its sequence steps.  A request counts as short
 * when that average is under the threshold and it is not much larger than
 * the average; the first requests of a model always go to the pool, and
 * a request asking for attention maps too. */

static void cost_update(svc_model *m, int kind, uint64_t us, size_t elems) {
    unsigned long long old = atomic_load(&m->cost_us[kind]);
    unsigned long long v = us + 1; /* 0 means "not measured yet" */
    atomic_store(&m->cost_us[kind], old ? (3 * old + v) / 4 : v);
    unsigned long long oe = atomic_load(&m->cost_elems[kind]);
    atomic_store(&m->cost_elems[kind], oe ? (3 * oe + elems) / 4 : elems);
}

static int expect_short(const infer_job *j, const svc_infer_front *f) {
    if (!f->reply || svc_cfg.inline_max_us <= 0 || j->maps) return 0;
    unsigned long long us = atomic_load(&j->model->cost_us[j->kind]);
    unsigned long long el = atomic_load(&j->model->cost_elems[j->kind]);
    return us && us - 1 <= (unsigned long long)svc_cfg.inline_max_us && j->elems <= 2 * el + 1024;
}

/* The job's answer on the front-end's thread. */
static void answer_here(svc_job *base, int status, svc_reply *rep) {
    (void)status;
    infer_job *j = (infer_job *)base;
    j->here->reply(j->here->conn, rep);
}

/* Parameters the protocol reserves: never part of a model's config. */
static int reserved_param(const char *k) {
    static const char *const names[] = {"binary_data_output", "timeout", "priority", "sequence_id",
                                        "sequence_start", "sequence_end", "sequence_kind", "headers", NULL};
    for (const char *const *n = names; *n; n++)
        if (strcmp(*n, k) == 0) return 1;
    return strncmp(k, "triton_", 7) == 0 || strncmp(k, "attnd_", 6) == 0;
}

/* The config a request gives a built-in model: parameters.config (an object,
 * or a JSON string of one), or else the non-reserved parameters.  *cfg is a
 * new reference, NULL when the request gives none. */
static int request_config(json_t *params, json_t **cfg, svc_err *e) {
    *cfg = NULL;
    if (!params) return 0;
    json_t *c = json_object_get(params, "config");
    const char *k;
    json_t *v;
    if (c) {
        json_object_foreach(params, k, v) {
            if (strcmp(k, "config") && !reserved_param(k)) {
                return svc_fail(e, 400, "parameter '%s': give the config either as parameters.config or as separate parameters", k);
            }
        }
        if (json_is_string(c)) {
            json_error_t je;
            *cfg = json_loads(json_string_value(c), JSON_REJECT_DUPLICATES, &je);
            if (!*cfg) {
                return svc_fail(e, 400, "parameters.config: %s", je.text);
            }
        } else {
            *cfg = json_incref(c);
        }
        if (!json_is_object(*cfg)) {
            json_decref(*cfg);
            *cfg = NULL;
            return svc_fail(e, 400, "parameters.config must be an object or a JSON string of one");
        }
        return 0;
    }
    json_object_foreach(params, k, v) {
        if (reserved_param(k)) continue;
        if (!*cfg) *cfg = json_object();
        json_object_set(*cfg, k, v);
    }
    return 0;
}

/* The request's inputs against the model's declaration, by the core's rule
 * (attn_model_check_input: names, datatypes, ranks, fixed dims); with
 * all_required, that every required input is there (a sequence's steps
 * leave some out: libattn checks those). */
static int check_inputs(const attn_model *m, const char *model, const svc_wire *w, int all_required, svc_err *e) {
    const char *names[64];
    for (size_t i = 0; i < w->n_in; i++) {
        const svc_wire_input *in = &w->in[i];
        attn_error ae = {0};
        attn_status s = attn_model_check_input(m, in->name, in->dtype, in->rank, in->shape, &ae);
        if (s == ATTN_E_DTYPE) { /* the message in the protocol's datatype names */
            for (size_t k = 0; k < attn_model_num_inputs(m); k++)
                if (strcmp(attn_model_input(m, k)->name, in->name) == 0)
                    return svc_fail(e, 400, "input '%s': datatype %s, but the model takes %s", in->name, in->datatype,
                                    svc_datatype_name(attn_model_input(m, k)->dtype));
        }
        if (s) { /* Override: every refusal here is about the request: 400. */
            char prefix[SVC_MODEL_NAME_MAX + 16];
            snprintf(prefix, sizeof prefix, "model '%s': ", model);
            return svc_fail_attn(e, s, &ae, 400, prefix);
        }
        if (i < sizeof names / sizeof *names) names[i] = in->name;
    }
    const attn_io_spec *miss = all_required && w->n_in <= sizeof names / sizeof *names
                                   ? attn_model_missing_input(m, names, w->n_in) : NULL;
    if (miss) return svc_fail(e, 400, "missing input '%s' (%s %s)", miss->name, svc_datatype_name(miss->dtype), miss->dims);
    return 0;
}

static void output_names(const attn_model *m, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < attn_model_num_outputs(m) && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", attn_model_output_at(m, i)->name);
}

/* "attention" names every attention map of the model (attention,
 * attention_areas, attention_axis1, ...). */
static int is_map_group(const attn_model *m, const char *name) {
    if (strcmp(name, "attention") != 0) return 0;
    for (size_t i = 1; i < attn_model_num_outputs(m); i++)
        if (strncmp(attn_model_output_at(m, i)->name, "attention", 9) == 0) return 1;
    return 0;
}

/* The outputs the request names: the model's, once each, FP32 for a
 * datatype parameter, only the primary one in a sequence.  Fills j's list. */
static int check_outputs(const attn_model *m, const char *model, const svc_wire *w, infer_job *j, svc_err *e) {
    char names[512];
    if (w->n_out > MAX_OUTPUTS) return svc_fail(e, 400, "at most %d outputs may be named", MAX_OUTPUTS);
    for (size_t i = 0; i < w->n_out; i++) {
        const char *nm = w->out[i].name;
        int idx = attn_model_output_index(m, nm);
        if (idx < 0 && !is_map_group(m, nm)) {
            output_names(m, names, sizeof names);
            return svc_fail(e, 400, "model '%s' has no output '%s' (outputs: %s)", model, nm, names);
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(w->out[k].name, nm) == 0) return svc_fail(e, 400, "output '%s' is named twice", nm);
        const attn_io_spec *o = idx >= 0 ? attn_model_output_at(m, (size_t)idx) : NULL;
        if (w->out[i].has_datatype && o && o->dtype != ATTN_F32)
            return svc_fail(e, 400, "output '%s' is %s: parameter datatype applies to FP32 outputs", o->name,
                            svc_datatype_name(o->dtype));
        if (idx != 0 && j->seq.on)
            return svc_fail(e, 400, "a sequence step returns only '%s'; ask for the attention maps without a sequence",
                            attn_model_output(m)->name);
        if (idx != 0) j->maps = 1;
        snprintf(j->req_out[i].name, sizeof j->req_out[i].name, "%s", nm);
        j->req_out[i].binary = w->out[i].binary >= 0 ? w->out[i].binary : w->binary_output;
        j->req_out[i].half = w->out[i].has_datatype ? w->out[i].half : SVC_HALF_NONE;
    }
    j->n_req_out = w->n_out;
    return 0;
}

/* The maps' size against --max-attention-elements, before anything runs. */
static int check_map_size(infer_job *j, svc_err *e) {
    const char *names[MAX_OUTPUTS];
    for (size_t i = 0; i < j->n_req_out; i++) names[i] = j->req_out[i].name;
    size_t numel = 0;
    attn_error ae = {0};
    attn_status s = attn_model_output_elements(j->am, j->inputs, names, j->n_req_out, &numel, &ae);
    if (s == ATTN_E_OVERFLOW || (s == ATTN_OK && numel > svc_cfg.max_attention_elements))
        return svc_fail(e, 413, "the attention maps asked for would hold %s%zu elements (%zu MiB); the limit is %zu elements (--max-attention-elements)",
                        s ? "more than " : "", s ? SIZE_MAX : numel, s ? SIZE_MAX >> 18 : numel >> 18,
                        svc_cfg.max_attention_elements);
    /* Override: what the request asks for does not fit its inputs: 400. */
    if (s) return svc_fail_attn(e, s, &ae, s == ATTN_E_NOMEM ? 0 : 400, NULL);
    return 0;
}

/* The requested outputs from forward_outputs' set (stolen one by one), in
 * the request's order, "attention" expanded to every map.  Returns n. */
static size_t take_outputs(infer_job *j, attn_tensor_set *set, svc_wire_out *outs, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < j->n_req_out; i++) {
        const char *want = j->req_out[i].name;
        int group = is_map_group(j->am, want);
        for (size_t k = 0; k < attn_tensor_set_count(set) && n < cap;) {
            const char *nm = attn_tensor_set_name(set, k);
            int hit = group ? strncmp(nm, "attention", 9) == 0 : strcmp(nm, want) == 0;
            if (!hit) {
                k++;
                continue;
            }
            const attn_io_spec *spec = attn_model_output_at(j->am, (size_t)attn_model_output_index(j->am, nm));
            attn_tensor *t = attn_tensor_set_take(set, nm); /* shifts the rest down: k stays */
            if (!t) break;
            outs[n++] = (svc_wire_out){.name = spec ? spec->name : want, .t = t, .binary = j->req_out[i].binary,
                                      .half = j->req_out[i].half};
        }
    }
    return n;
}

static void run(svc_job *base, attn_ctx *ctx) {
    infer_job *j = (infer_job *)base;
    attn_tensor *out = NULL;
    attn_tensor_set *maps = NULL;
    attn_error ae = {0};
    uint64_t t = svc_now_us();
    svc_err se = {0};
    attn_status s = ATTN_OK;
    if (j->seq.on) {
        if (svc_seq_run(&j->seq, j->model, j->am, &j->own, ctx, j->inputs, &j->base.cancel, &out, &se)) s = ATTN_E_INPUT;
    } else if (j->maps) {
        const char *names[MAX_OUTPUTS];
        for (size_t i = 0; i < j->n_req_out; i++) names[i] = j->req_out[i].name;
        s = attn_model_forward_outputs(j->am, ctx, j->inputs, names, j->n_req_out, &maps, &ae);
    } else {
        s = attn_model_forward(j->am, ctx, j->inputs, &out, &ae);
    }
    j->ran = 1;
    j->infer_us = svc_now_us() - t;
    attn_tensor_set_free(j->inputs); /* release the memory before encoding */
    j->inputs = NULL;
    if (j->body) j->body_free(j->body);
    j->body = NULL;
    if (s != ATTN_OK) {
        if (!se.status) svc_fail_attn(&se, s, &ae, 0, NULL);
        svc_reply_fail(&j->base.reply, &se);
        svc_seq_close(&j->seq); /* before the answer: see below */
        return;
    }
    t = svc_now_us();
    char params[SVC_SEQ_ID_MAX + 96];
    if (j->seq.on) {
        svc_seq_reply_params(&j->seq, params, sizeof params);
        snprintf(j->out_name, sizeof j->out_name, "%s", attn_model_output(j->seq.model)->name);
    }
    svc_wire_result res = {.model_name = j->name, .model_version = "1", .id = j->id,
                           .params_json = j->seq.on ? params : NULL};
    svc_wire_out outs[4 * MAX_OUTPUTS]; /* "attention" may stand for several maps */
    size_t n = 0;
    if (maps) {
        n = take_outputs(j, maps, outs, sizeof outs / sizeof *outs);
        attn_tensor_set_free(maps); /* what was not asked for */
    } else if (j->n_req_out) {
        outs[n++] = (svc_wire_out){.name = j->out_name, .t = out, .binary = j->req_out[0].binary,
                                   .half = j->req_out[0].half};
    } else {
        outs[n++] = (svc_wire_out){.name = j->out_name, .t = out, .binary = j->binary, .half = j->half};
    }
    j->encode(&res, outs, n, &j->base.reply);
    /* The sequence is released (its turn passed on, its last use stamped)
     * before the answer goes out: a client that has the answer must find
     * the sequence idle, and the least recently used in the order it saw.
     * Released after the answer (job_free, on another thread), a start
     * sent on the answer could find this one in use, or used later than a
     * sequence that began after it. */
    svc_seq_close(&j->seq);
    j->output_us = svc_now_us() - t;
    int threads = j->base.threads > 0 ? j->base.threads : 1;
    cost_update(j->model, j->kind, (j->infer_us + j->output_us) * (uint64_t)threads, j->elems);
}

/* Records the request with the status the client got. */
static void account_as(infer_job *j, int status) {
    if (j->accounted) return;
    j->accounted = 1;
    svc_stats *st = j->stats;
    if (st) {
        if (j->ran) atomic_fetch_add(&st->exec_count, 1);
        if (j->ran && j->here) atomic_fetch_add(&st->exec_inline, 1);
        atomic_fetch_add(&st->input_us, j->input_us);
        atomic_fetch_add(&st->infer_us, j->infer_us);
        atomic_fetch_add(&st->output_us, j->output_us);
    }
    svc_metrics_request(st, status, svc_now_us() - j->t0);
}

static void account(svc_job *base) { account_as((infer_job *)base, base->status); }

/* The one cleanup of a job: after it ran (finish) or when it never got
 * queued (svc_api_infer's failure path). */
static void job_free(infer_job *j) {
    svc_seq_close(&j->seq);
    svc_reply_clear(&j->base.reply);
    attn_tensor_set_free(j->inputs);
    if (j->body) j->body_free(j->body);
    attn_model_free(j->own);
    svc_model_unref(j->model);
    free(j->id);
    free(j);
}

static void finish(svc_job *base, int status) {
    account_as((infer_job *)base, status); /* a no-op when account ran before the reply */
    job_free((infer_job *)base);
}

typedef struct submit_arg {
    const svc_infer_front *f;
    infer_job *j;
    int here_ok;  /* expected to be short */
    int claimed;  /* a core is claimed: run it here after admit */
} submit_arg;

/* Under the sequence table's lock (svc_seq_admit): a short step whose turn
 * is next claims a core and runs once the lock is released; any other is
 * queued now, so that one sequence's jobs reach the pool in arrival order. */
static int submit(void *p, svc_err *e) {
    submit_arg *a = p;
    if (a->here_ok && svc_seq_first_in_line(&a->j->seq) && svc_sched_claim_here()) {
        a->claimed = 1;
        return 0;
    }
    return a->f->submit(a->f->conn, &a->j->base, e);
}

static void run_here(infer_job *j, const svc_infer_front *f) {
    j->here = f;
    j->base.answer = answer_here;
    j->base.gone = NULL;
    j->base.owner = NULL;
    svc_sched_run_here(&j->base); /* answers, then finish frees j */
}

static long parse_header_len(const char *v, int *bad) {
    *bad = 0;
    if (!v) return -1;
    size_t n = strlen(v);
    long x = 0;
    if (n == 0 || n > 18) *bad = 1;
    for (size_t i = 0; !*bad && i < n; i++) {
        if (v[i] < '0' || v[i] > '9') *bad = 1;
        else x = x * 10 + (v[i] - '0');
    }
    return *bad ? -1 : x;
}

int svc_infer(const char *name, const svc_infer_front *f, svc_err *e) {
    uint64_t t0 = svc_now_us();
    svc_wire w = {0};
    json_t *cfg = NULL;
    infer_job *j = NULL;
    int proto = f->protocol == SVC_PROTO_GRPC ? SVC_PROTO_GRPC : SVC_PROTO_HTTP;
    svc_model *m = svc_repo_get(name);
    if (!m) return svc_fail(e, 404, "unknown model '%s'", name);
    j = calloc(1, sizeof *j);
    if (!j) {
        svc_fail(e, 503, "out of memory");
        goto fail;
    }
    j->model = m;
    j->stats = m->stats[proto];
    j->t0 = t0;
    j->encode = f->encode;
    snprintf(j->name, sizeof j->name, "%s", name);
    if (f->decode(f->conn, &w, e) != 0) goto fail;
    if (svc_seq_parse(w.params, f->seq_header, &j->seq, e) != 0) goto fail;
    if (j->seq.on && f->set_sequence) f->set_sequence(f->conn, j->seq.id);
    if (request_config(w.params, &cfg, e) != 0) goto fail;
    j->am = m->m;
    int later_step = j->seq.on && !j->seq.start; /* runs on the sequence's own model */
    if (cfg && later_step) {
        svc_fail(e, 400, "sequence '%s' keeps the config of its start request; give config parameters only with sequence_start",
                 j->seq.id);
        goto fail;
    }
    if (cfg && !m->builtin) {
        const char *k = json_object_iter_key(json_object_iter(cfg));
        svc_fail(e, 400, "model '%s' has a fixed config; parameter '%s' is not accepted (only built-in models take their config from parameters)",
                 j->name, k ? k : "config");
        goto fail;
    }
    if (cfg) {
        char *text = json_dumps(cfg, JSON_COMPACT);
        attn_error ae = {0};
        attn_status s = text ? attn_model_new(m->mech->name, text, NULL, &j->own, &ae) : ATTN_E_NOMEM;
        free(text);
        if (s != ATTN_OK) {
            /* Override: the mechanism is the model's own, so a "not found"
             * here is about something the request's config names: 400. */
            svc_fail_attn(e, s, &ae, s == ATTN_E_NOTFOUND ? 400 : 0, NULL);
            goto fail;
        }
        j->am = j->own;
    }
    if (!j->am && !later_step) {
        svc_fail(e, 400, "model '%s' needs a config in the request's parameters: %s", j->name, m->default_err);
        goto fail;
    }
    if (j->seq.on && j->am && (j->seq.start || attn_model_seq_kinds(j->am) == 0) &&
        svc_seq_check_model(&j->seq, j->am, j->name, e) != 0)
        goto fail;
    if (j->am && (check_inputs(j->am, j->name, &w, !j->seq.on, e) != 0 || check_outputs(j->am, j->name, &w, j, e) != 0))
        goto fail;
    if (!j->am && w.n_out) { /* a later step of a built-in configured by its start */
        for (size_t i = 0; i < w.n_out; i++)
            if (strcmp(w.out[i].name, "output") != 0) {
                svc_fail(e, 400, "a sequence step returns only 'output'");
                goto fail;
            }
        j->n_req_out = w.n_out;
        snprintf(j->req_out[0].name, sizeof j->req_out[0].name, "output");
        j->req_out[0].binary = w.out[0].binary >= 0 ? w.out[0].binary : w.binary_output;
        j->req_out[0].half = w.out[0].has_datatype ? w.out[0].half : SVC_HALF_NONE;
    }
    int allow_nf = m->allow_nonfinite || svc_cfg.allow_nonfinite;
    j->inputs = attn_tensor_set_new();
    if (!j->inputs) {
        svc_fail(e, 503, "out of memory");
        goto fail;
    }
    size_t total = 0;
    int any_view = 0;
    for (size_t i = 0; i < w.n_in; i++) {
        total += w.in[i].numel; /* each is bounded by max_elements: no overflow */
        attn_tensor *t = NULL;
        int viewed = 0;
        int st = w.in[i].is_binary ? svc_wire_view_binary(&w.in[i], allow_nf, &t, &viewed, e)
                                   : svc_wire_decode(&w.in[i], allow_nf, &t, e);
        if (st) goto fail;
        any_view |= viewed;
        attn_error ae = {0};
        if (attn_tensor_set_add(j->inputs, w.in[i].name, t, &ae) != ATTN_OK) {
            svc_fail(e, 400, "%s", ae.msg);
            goto fail;
        }
    }
    if (any_view) j->body = f->take_body(f->conn, &j->body_free); /* the views point into it */
    if (j->maps && check_map_size(j, e) != 0) goto fail;
    if (j->am) snprintf(j->out_name, sizeof j->out_name, "%s", attn_model_output(j->am)->name);
    j->binary = w.binary_output;
    if (w.id && !(j->id = strdup(w.id))) {
        svc_fail(e, 503, "out of memory");
        goto fail;
    }
    double timeout = svc_cfg.timeout_s;
    json_t *tp = w.params ? json_object_get(w.params, "timeout") : NULL;
    if (tp && json_is_integer(tp) && json_integer_value(tp) > 0 && json_integer_value(tp) / 1e6 < timeout)
        timeout = (double)json_integer_value(tp) / 1e6;
    svc_wire_free(&w);
    json_decref(cfg);
    cfg = NULL;
    j->input_us = svc_now_us() - t0;
    j->base.run = run;
    j->base.finish = finish;
    j->base.account = account;
    j->base.stats = j->stats;
    svc_reply_init(&j->base.reply);
    j->base.deadline_us = svc_now_us() + (uint64_t)(timeout * 1e6);
    if (f->deadline_us && f->deadline_us < j->base.deadline_us) j->base.deadline_us = f->deadline_us;
    if (svc_cfg.elems_per_thread) {
        size_t cap = 1 + total / svc_cfg.elems_per_thread;
        j->base.max_threads = cap > 1024 ? 1024 : (int)cap;
    }
    j->kind = j->seq.on && !j->seq.start ? SVC_COST_STEP : SVC_COST_WHOLE;
    j->elems = total;
    int here_ok = expect_short(j, f);
    if (j->seq.on) {
        submit_arg a = {f, j, here_ok, 0};
        if (svc_seq_admit(&j->seq, j->name, submit, &a, e) == 0) {
            if (a.claimed) run_here(j, f);
            return 0;
        }
    } else if (here_ok && svc_sched_claim_here()) {
        run_here(j, f);
        return 0;
    } else if (f->submit(f->conn, &j->base, e) == 0) {
        return 0;
    }
fail:
    svc_metrics_request(m->stats[proto], e->status, svc_now_us() - t0);
    svc_wire_free(&w);
    json_decref(cfg);
    if (j) job_free(j); /* unrefs m */
    else svc_model_unref(m);
    return e->status;
}

/* ---- HTTP: POST /v2/models/{name}/infer ---- */

/* JSON, or binary tensors after a JSON header of Inference-Header-Content-Length bytes. */
static int http_decode(void *conn, svc_wire *w, svc_err *e) {
    svc_req *r = conn;
    int bad;
    long hlen = parse_header_len(svc_req_header(r, "Inference-Header-Content-Length"), &bad);
    if (bad) return svc_fail(e, 400, "Inference-Header-Content-Length must be a byte count");
    size_t len;
    const char *body = svc_req_body(r, &len);
    return svc_wire_parse(body, len, hlen, w, e);
}

static int http_submit(void *conn, svc_job *j, svc_err *e) { return svc_req_submit(conn, j, e); }

static void *http_take_body(void *conn, void (**free_fn)(void *)) {
    *free_fn = free;
    return svc_req_take_body_block(conn);
}

static void http_set_sequence(void *conn, const char *id) { svc_req_set_sequence(conn, id); }

static void http_reply(void *conn, svc_reply *rep) { svc_req_reply(conn, rep); }

void svc_api_infer(svc_req *r) {
    svc_infer_front f = {.conn = r, .decode = http_decode, .encode = svc_wire_encode_outputs, .submit = http_submit,
                         .take_body = http_take_body, .seq_header = svc_req_header(r, SVC_SEQ_HEADER),
                         .set_sequence = http_set_sequence, .reply = http_reply, .protocol = SVC_PROTO_HTTP};
    svc_err e = {0};
    if (svc_infer(svc_req_model(r), &f, &e) == 0) return;
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_fail(&rep, &e);
    svc_req_reply(r, &rep);
}
