/*
 * seqstore.c — the table of live sequences (seqstore.h).
 *
 * One mutex guards everything: the hash table of live entries (chained,
 * sized for max_live at init), each entry's references, turn queue and
 * sizes, the ring of recently ended ids and the counters.  One condition
 * variable wakes the waiters for a turn; each checks its own entry.
 */
#include "seqstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct svc_seq_entry {
    char model[SVC_MODEL_NAME_MAX + 1];
    char id[SVC_SEQ_ID_MAX + 1];
    void *state;
    void (*free_state)(void *);
    int refs;
    int live;
    size_t bytes;
    int64_t length;
    uint64_t t_start, t_last;
    svc_seq_turn *head, *tail;
    svc_seq_entry *chain; /* next in the bucket */
};

typedef struct ended {
    char model[SVC_MODEL_NAME_MAX + 1];
    char id[SVC_SEQ_ID_MAX + 1];
    svc_seq_end why;
    int64_t length;
    time_t when;
} ended;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cv = PTHREAD_COND_INITIALIZER;
static svc_seq_limits lim;
static svc_seq_entry **buckets;
static size_t n_buckets;
static ended *ring;
static size_t ring_next, ring_used;
static svc_seq_stats stats;
static time_t started_at;

static const char *const end_labels[] = {
#define SVC_X(name, label, text) label,
    SVC_SEQ_END_MAP(SVC_X)
#undef SVC_X
};
static const char *const end_texts[] = {
#define SVC_X(name, label, text) text,
    SVC_SEQ_END_MAP(SVC_X)
#undef SVC_X
};

const char *svc_seq_end_label(svc_seq_end why) {
    return (unsigned)why < SVC_SEQ_END_COUNT ? end_labels[why] : "unknown";
}

static size_t hash(const char *model, const char *id) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = model; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (size_t)(h & (n_buckets - 1));
}

int svc_seqs_init(const svc_seq_limits *l, svc_err *e) {
    pthread_mutex_lock(&mu);
    lim = *l;
    size_t want = lim.max_live < 8 ? 16 : lim.max_live * 2;
    if (want > ((size_t)1 << 20)) want = (size_t)1 << 20;
    n_buckets = 1;
    while (n_buckets < want) n_buckets <<= 1;
    buckets = calloc(n_buckets, sizeof *buckets);
    ring = lim.record ? calloc(lim.record, sizeof *ring) : NULL;
    ring_next = ring_used = 0;
    memset(&stats, 0, sizeof stats);
    started_at = time(NULL);
    int ok = buckets && (ring || !lim.record);
    if (!ok) {
        free(buckets);
        free(ring);
        buckets = NULL;
        ring = NULL;
    }
    pthread_mutex_unlock(&mu);
    return ok ? 0 : svc_fail(e, 503, "out of memory for the sequence table");
}

const svc_seq_limits *svc_seqs_limits(void) { return &lim; }

static void entry_free(svc_seq_entry *s) {
    if (s->state && s->free_state) s->free_state(s->state);
    free(s);
}

/* Frees a chain of ended entries nobody holds (outside the lock: their
 * states may take a while). */
static void free_list(svc_seq_entry *v) {
    while (v) {
        svc_seq_entry *next = v->chain;
        entry_free(v);
        v = next;
    }
}

static svc_seq_entry *find(const char *model, const char *id, svc_seq_entry ***link) {
    svc_seq_entry **p = &buckets[hash(model, id)];
    for (; *p; p = &(*p)->chain)
        if (strcmp((*p)->id, id) == 0 && strcmp((*p)->model, model) == 0) break;
    if (link) *link = p;
    return *p;
}

/* Unlinks a live entry and records its end (mu held).  Returns whether the
 * caller must free it (nothing holds it). */
static int end_locked(svc_seq_entry *s, svc_seq_end why) {
    if (!s->live) return 0;
    svc_seq_entry **p;
    find(s->model, s->id, &p);
    if (*p == s) *p = s->chain;
    s->chain = NULL;
    s->live = 0;
    stats.live--;
    stats.bytes -= s->bytes;
    stats.ends[why]++;
    if (ring) {
        ended *r = &ring[ring_next];
        snprintf(r->model, sizeof r->model, "%s", s->model);
        snprintf(r->id, sizeof r->id, "%s", s->id);
        r->why = why;
        r->length = s->length;
        r->when = time(NULL);
        ring_next = (ring_next + 1) % lim.record;
        if (ring_used < lim.record) ring_used++;
    }
    return s->refs == 0;
}

/* The least recently used live entry nobody holds, idle for evict_idle_s,
 * other than `keep` (mu held). */
static svc_seq_entry *eviction_candidate(const svc_seq_entry *keep, uint64_t now) {
    svc_seq_entry *best = NULL;
    uint64_t min_idle = (uint64_t)(lim.evict_idle_s * 1e6);
    for (size_t b = 0; b < n_buckets; b++)
        for (svc_seq_entry *s = buckets[b]; s; s = s->chain) {
            if (s == keep || s->refs || now < s->t_last || now - s->t_last < min_idle) continue;
            if (!best || s->t_last < best->t_last) best = s;
        }
    return best;
}

static int not_found(const char *model, const char *id, svc_err *e) {
    for (size_t k = 0; k < ring_used; k++) {
        const ended *r = &ring[(ring_next + lim.record - 1 - k) % lim.record];
        if (strcmp(r->id, id) || strcmp(r->model, model)) continue;
        char when[32];
        struct tm tm;
        gmtime_r(&r->when, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return svc_fail(e, 404, "sequence '%s' of model '%s' %s (at %s, after %lld tokens)%s", id, model,
                        end_texts[r->why], when, (long long)r->length,
                        r->why == SVC_SEQ_END_IDLE || r->why == SVC_SEQ_END_EVICTED
                            ? "; restore it from an export (PUT .../sequences/{id}) or start it again"
                            : "");
    }
    char when[32];
    struct tm tm;
    gmtime_r(&started_at, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return svc_fail(e, 404,
                    "no sequence '%s' of model '%s': it was never started on this server (up since %s), or "
                    "it ended longer ago than the last %zu ended sequences it remembers; start it with "
                    "sequence_start=true",
                    id, model, when, lim.record);
}

int svc_seqs_open(const char *model, const char *id, int start, uint64_t now, svc_seq_turn *turn,
                  int (*admit)(void *arg, svc_err *e), void *arg, svc_seq_entry **out, svc_err *e) {
    *out = NULL;
    svc_seq_entry *victims = NULL; /* evicted, to free outside the lock */
    int st = 0;
    pthread_mutex_lock(&mu);
    if (!buckets || lim.max_live == 0) {
        st = svc_fail(e, 400, "sequences are turned off on this server (--max-sequences 0)");
        goto out;
    }
    svc_seq_entry *s = find(model, id, NULL);
    if (start) {
        if (s) {
            st = svc_fail(e, 409, "sequence '%s' of model '%s' is live (%lld tokens): end it first, or use another id",
                          id, model, (long long)s->length);
            goto out;
        }
        while (stats.live >= lim.max_live || stats.bytes >= lim.max_bytes) {
            svc_seq_entry *v = eviction_candidate(NULL, now);
            if (!v) {
                if (stats.live >= lim.max_live)
                    st = svc_fail(e, 503, "%zu sequences are live (the limit, --max-sequences) and none has been idle for %g s to make room",
                                  stats.live, lim.evict_idle_s);
                else
                    st = svc_fail(e, 503, "the sequences' state uses %zu bytes (the budget, --sequence-memory is %zu) and none has been idle for %g s to make room",
                                  stats.bytes, lim.max_bytes, lim.evict_idle_s);
                goto out;
            }
            if (end_locked(v, SVC_SEQ_END_EVICTED)) {
                v->chain = victims;
                victims = v;
            }
        }
        s = calloc(1, sizeof *s);
        if (!s) {
            st = svc_fail(e, 503, "out of memory");
            goto out;
        }
        snprintf(s->model, sizeof s->model, "%s", model);
        snprintf(s->id, sizeof s->id, "%s", id);
        s->t_start = s->t_last = now;
        s->live = 1;
        svc_seq_entry **p;
        find(model, id, &p);
        *p = s;
        stats.live++;
        stats.started++;
    } else if (!s) {
        st = not_found(model, id, e);
        goto out;
    }
    s->refs++;
    if (turn) {
        turn->next = NULL;
        turn->queued = 1;
        if (s->tail) s->tail->next = turn;
        else s->head = turn;
        s->tail = turn;
    }
    *out = s; /* before admit: what it queues may run at once and read it */
    if (admit && (st = admit(arg, e)) != 0) {
        *out = NULL;
        /* Undo: a start that could not be admitted never began. */
        if (turn) {
            svc_seq_turn **t = &s->head;
            while (*t != turn) t = &(*t)->next;
            *t = turn->next;
            if (s->tail == turn) {
                s->tail = NULL;
                for (svc_seq_turn *q = s->head; q; q = q->next) s->tail = q;
            }
            turn->queued = 0;
        }
        s->refs--;
        if (start) {
            svc_seq_entry **p;
            find(model, id, &p);
            *p = s->chain;
            stats.live--;
            stats.started--;
            free(s);
        }
        pthread_cond_broadcast(&turn_cv);
        goto out;
    }
out:
    pthread_mutex_unlock(&mu);
    free_list(victims);
    return st;
}

int svc_seqs_turn_is_next(const svc_seq_entry *s, const svc_seq_turn *turn) { return s && s->head == turn; }

int svc_seqs_wait_turn(svc_seq_entry *s, svc_seq_turn *turn, const volatile int *cancel) {
    pthread_mutex_lock(&mu);
    while (s->head != turn) {
        if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
        /* The cancel flag is set without the lock: look again every 10 ms. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&turn_cv, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

void svc_seqs_close(svc_seq_entry *s, svc_seq_turn *turn, uint64_t now) {
    if (!s) return;
    pthread_mutex_lock(&mu);
    if (turn && turn->queued) {
        svc_seq_turn **t = &s->head;
        while (*t && *t != turn) t = &(*t)->next;
        if (*t) *t = turn->next;
        s->tail = NULL;
        for (svc_seq_turn *q = s->head; q; q = q->next) s->tail = q;
        turn->queued = 0;
        pthread_cond_broadcast(&turn_cv);
    }
    s->refs--;
    if (now > s->t_last) s->t_last = now;
    int gone = !s->live && s->refs == 0;
    pthread_mutex_unlock(&mu);
    if (gone) entry_free(s);
}

void *svc_seqs_state(const svc_seq_entry *s) { return s->state; }

void svc_seqs_set_state(svc_seq_entry *s, void *state, void (*free_state)(void *)) {
    pthread_mutex_lock(&mu);
    s->state = state;
    s->free_state = free_state;
    pthread_mutex_unlock(&mu);
}

void svc_seqs_update(svc_seq_entry *s, size_t bytes, int64_t length) {
    pthread_mutex_lock(&mu);
    if (s->live) {
        stats.bytes = stats.bytes - s->bytes + bytes;
        if (length > s->length) stats.tokens += (uint64_t)(length - s->length);
    }
    s->bytes = bytes;
    s->length = length;
    pthread_mutex_unlock(&mu);
}

int svc_seqs_room(svc_seq_entry *s, uint64_t now, svc_err *e) {
    svc_seq_entry *victims = NULL;
    int st = 0;
    pthread_mutex_lock(&mu);
    while (stats.bytes >= lim.max_bytes) {
        svc_seq_entry *v = eviction_candidate(s, now);
        if (!v) {
            st = svc_fail(e, 503, "the sequences' state uses %zu bytes (the budget, --sequence-memory is %zu) and none has been idle for %g s to make room",
                          stats.bytes, lim.max_bytes, lim.evict_idle_s);
            break;
        }
        if (end_locked(v, SVC_SEQ_END_EVICTED)) {
            v->chain = victims;
            victims = v;
        }
    }
    pthread_mutex_unlock(&mu);
    free_list(victims);
    return st;
}

void svc_seqs_abandon(svc_seq_entry *s) {
    pthread_mutex_lock(&mu);
    if (s->live) {
        svc_seq_entry **p;
        find(s->model, s->id, &p);
        if (*p == s) *p = s->chain;
        s->chain = NULL;
        s->live = 0;
        stats.live--;
        stats.bytes -= s->bytes;
        stats.started--;
    }
    pthread_mutex_unlock(&mu);
}

void svc_seqs_end(svc_seq_entry *s, svc_seq_end why) {
    pthread_mutex_lock(&mu);
    end_locked(s, why); /* s is held by the caller: never freed here */
    pthread_mutex_unlock(&mu);
}

int svc_seqs_end_id(const char *model, const char *id, svc_seq_end why, svc_err *e) {
    pthread_mutex_lock(&mu);
    svc_seq_entry *s = buckets ? find(model, id, NULL) : NULL;
    int st = 0, gone = 0;
    if (!s) st = buckets ? not_found(model, id, e) : svc_fail(e, 404, "sequences are turned off on this server");
    else gone = end_locked(s, why);
    pthread_mutex_unlock(&mu);
    if (gone) entry_free(s);
    return st;
}

const char *svc_seqs_id(const svc_seq_entry *s) { return s->id; }

int64_t svc_seqs_length(const svc_seq_entry *s) {
    pthread_mutex_lock(&mu);
    int64_t n = s->length;
    pthread_mutex_unlock(&mu);
    return n;
}

int svc_seqs_live(const svc_seq_entry *s) {
    pthread_mutex_lock(&mu);
    int l = s->live;
    pthread_mutex_unlock(&mu);
    return l;
}

/* Ends the live entries `pick` selects, freeing those nobody holds. */
static size_t end_where(int (*pick)(const svc_seq_entry *, uint64_t), uint64_t now, svc_seq_end why) {
    svc_seq_entry *victims = NULL;
    size_t n = 0;
    pthread_mutex_lock(&mu);
    for (size_t b = 0; b < n_buckets; b++) {
        svc_seq_entry *s = buckets[b];
        while (s) {
            svc_seq_entry *next = s->chain;
            if (pick(s, now)) {
                n++;
                if (end_locked(s, why)) {
                    s->chain = victims;
                    victims = s;
                }
            }
            s = next;
        }
    }
    pthread_mutex_unlock(&mu);
    free_list(victims);
    return n;
}

static int is_idle(const svc_seq_entry *s, uint64_t now) {
    return s->refs == 0 && now >= s->t_last && (double)(now - s->t_last) >= lim.idle_s * 1e6;
}
static int any(const svc_seq_entry *s, uint64_t now) {
    (void)s, (void)now;
    return 1;
}

size_t svc_seqs_sweep(uint64_t now) { return buckets ? end_where(is_idle, now, SVC_SEQ_END_IDLE) : 0; }
size_t svc_seqs_end_all(svc_seq_end why) { return buckets ? end_where(any, 0, why) : 0; }

json_t *svc_seqs_list(const char *model, uint64_t now) {
    json_t *a = json_array();
    if (!a) return NULL;
    pthread_mutex_lock(&mu);
    for (size_t b = 0; b < n_buckets; b++)
        for (svc_seq_entry *s = buckets[b]; s; s = s->chain) {
            if (model && strcmp(model, s->model)) continue;
            double idle = now > s->t_last ? (double)(now - s->t_last) / 1e6 : 0;
            double age = now > s->t_start ? (double)(now - s->t_start) / 1e6 : 0;
            json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:b}", "id", s->id, "model", s->model, "length",
                                  (json_int_t)s->length, "bytes", (json_int_t)s->bytes, "idle_s", s->refs ? 0.0 : idle,
                                  "age_s", age, "busy", s->refs > 0);
            if (!o || json_array_append_new(a, o)) {
                pthread_mutex_unlock(&mu);
                json_decref(a);
                return NULL;
            }
        }
    pthread_mutex_unlock(&mu);
    return a;
}

svc_seq_stats svc_seqs_stats(void) {
    pthread_mutex_lock(&mu);
    svc_seq_stats s = stats;
    pthread_mutex_unlock(&mu);
    return s;
}

size_t svc_seqs_shutdown(void) {
    pthread_mutex_lock(&mu);
    size_t live = stats.live;
    for (size_t b = 0; b < n_buckets; b++) {
        svc_seq_entry *s = buckets[b];
        while (s) {
            svc_seq_entry *next = s->chain;
            entry_free(s);
            s = next;
        }
    }
    free(buckets);
    free(ring);
    buckets = NULL;
    ring = NULL;
    n_buckets = 0;
    ring_next = ring_used = 0;
    memset(&stats, 0, sizeof stats);
    pthread_mutex_unlock(&mu);
    return live;
}
