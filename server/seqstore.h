/*
 * seqstore.h — the live sequences of every model: a table keyed by (model,
 * sequence id), its limits, the order in which one sequence's requests run,
 * a bounded record of recently ended ids, and the counters for /metrics.
 *
 * The store knows nothing of attention: an entry carries an opaque state
 * (set by the request that starts the sequence, freed with the entry) and
 * the byte and token counts its owner reports.  So the store is unit-tested
 * without a model or a socket (tests/unit/test_seqstore.c).
 *
 * Life of an entry.  svc_seqs_open either creates it (a start) or finds it,
 * takes a reference and queues the caller's turn; the caller's work waits
 * for its turn (svc_seqs_wait_turn: the turns of one sequence run one at a
 * time, in the order they were opened), reports sizes (svc_seqs_update),
 * may end the sequence (svc_seqs_end) and always closes (svc_seqs_close).
 * An ended entry leaves the table at once (new requests get 404) and is
 * freed, state included, when its last reference closes.
 *
 * Limits (svc_seq_limits): most live sequences, a budget for their state
 * bytes, an idle timeout, the longest sequence in tokens.  An entry with a
 * reference (a request queued or running) is never ended to make room; an
 * idle one may be, least recently used first, once it has been idle for
 * evict_idle_s.
 *
 * Threads: every function takes the store's one mutex; any thread.
 */
#ifndef SVC_SEQSTORE_H
#define SVC_SEQSTORE_H

#include <jansson.h>

#include "svc.h"

/* Why a sequence ended (the `reason` label of attnd_sequence_ends_total). */
#define SVC_SEQ_END_MAP(X)                                                           \
    X(FLAG, "end_flag", "ended by a request with sequence_end")                      \
    X(IDLE, "idle", "expired after the idle timeout")                                \
    X(EVICTED, "evicted", "was evicted while idle to make room for new sequences")   \
    X(DELETED, "deleted", "was deleted (DELETE .../sequences/{id})")                 \
    X(FAILED, "failed", "ended because a step failed after it had begun")           \
    X(DRAINED, "drained", "was dropped when the server shut down")

typedef enum {
#define SVC_X(name, label, text) SVC_SEQ_END_##name,
    SVC_SEQ_END_MAP(SVC_X)
#undef SVC_X
        SVC_SEQ_END_COUNT
} svc_seq_end;

const char *svc_seq_end_label(svc_seq_end why); /* "end_flag", ... */

typedef struct svc_seq_limits {
    size_t max_live;       /* live sequences; 0 turns sequences off */
    size_t max_bytes;      /* budget for the state of all live sequences */
    double idle_s;         /* a sequence with no request for this long ends */
    int64_t max_len;       /* tokens per sequence */
    double evict_idle_s;   /* an idle sequence may be evicted for room after this long */
    size_t record;         /* ended ids remembered for the 404 message */
} svc_seq_limits;

/* One request's place in its sequence's queue (embedded by the caller). */
typedef struct svc_seq_turn {
    struct svc_seq_turn *next;
    int queued;
} svc_seq_turn;

typedef struct svc_seq_entry svc_seq_entry;

typedef struct svc_seq_stats {
    size_t live;
    size_t bytes;
    uint64_t tokens;                     /* appended since start-up */
    uint64_t started;
    uint64_t ends[SVC_SEQ_END_COUNT];
} svc_seq_stats;

/* 0, or 503 (out of memory) in *e.  May be called again after svc_seqs_shutdown. */
int svc_seqs_init(const svc_seq_limits *lim, svc_err *e);
/* Frees every entry (nothing may hold one); returns how many were live. */
size_t svc_seqs_shutdown(void);
const svc_seq_limits *svc_seqs_limits(void);

/* Opens sequence `id` of `model` for one request.  start: a new sequence
 * (409 when the id is live; 503 when the count or the byte budget is
 * reached and nothing idle can be evicted); otherwise the live one (404,
 * saying whether and why it ended).  On success *out holds a reference and
 * `turn` (may be NULL: no turn) is queued; then `admit(arg, e)` (may be
 * NULL) runs under the store's lock, so that what it queues elsewhere is
 * queued in the same order as the turns; when it fails (returns its status)
 * the open is undone.  Returns 0 or the status in *e. */
int svc_seqs_open(const char *model, const char *id, int start, uint64_t now_us, svc_seq_turn *turn,
                  int (*admit)(void *arg, svc_err *e), void *arg, svc_seq_entry **out, svc_err *e);
/* Whether `turn` heads its sequence's queue: only from the admit callback
 * of svc_seqs_open, which runs under the table's lock. */
int svc_seqs_turn_is_next(const svc_seq_entry *s, const svc_seq_turn *turn);
/* Blocks until `turn` heads its sequence's queue (0), or until *cancel is
 * set (-1; the turn stays queued until closed). */
int svc_seqs_wait_turn(svc_seq_entry *s, svc_seq_turn *turn, const volatile int *cancel);
/* Drops the reference (and the turn, if still queued); the entry counts as
 * used at now_us. */
void svc_seqs_close(svc_seq_entry *s, svc_seq_turn *turn, uint64_t now_us);

/* The holder of the turn: the state (borrowed) and setting it (the entry
 * owns it from then on and frees it with free_state). */
void *svc_seqs_state(const svc_seq_entry *s);
void svc_seqs_set_state(svc_seq_entry *s, void *state, void (*free_state)(void *));
/* Reports the state's size and the sequence's length (tokens). */
void svc_seqs_update(svc_seq_entry *s, size_t bytes, int64_t length);
/* Before a step that grows the state: 0 when the budget has room (after
 * evicting idle sequences if needed), else 503 in *e. */
int svc_seqs_room(svc_seq_entry *s, uint64_t now_us, svc_err *e);
/* Removes a sequence whose start failed: it never began (no end is
 * recorded or counted). */
void svc_seqs_abandon(svc_seq_entry *s);
/* Ends a live sequence (a no-op for an ended one). */
void svc_seqs_end(svc_seq_entry *s, svc_seq_end why);
/* Ends sequence `id` of `model` (DELETE): 0, or 404 in *e. */
int svc_seqs_end_id(const char *model, const char *id, svc_seq_end why, svc_err *e);
const char *svc_seqs_id(const svc_seq_entry *s);
int64_t svc_seqs_length(const svc_seq_entry *s);
int svc_seqs_live(const svc_seq_entry *s);

/* Ends the sequences idle for the idle timeout; returns how many. */
size_t svc_seqs_sweep(uint64_t now_us);
/* Ends every live sequence with `why`; returns how many. */
size_t svc_seqs_end_all(svc_seq_end why);
/* Live sequences of `model` (NULL: all): [{"id", "model", "length",
 * "bytes", "idle_s", "age_s", "busy"}...]; new reference, NULL out of memory. */
json_t *svc_seqs_list(const char *model, uint64_t now_us);
svc_seq_stats svc_seqs_stats(void);

#endif
