/*
 * workspace.c — laying out and allocating forward scratch (workspace.h).
 */
#include "workspace.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static bool round_up(size_t n, size_t *out) {
    if (!attn__add(n, ATTN_WS_ALIGN - 1, out)) return false;
    *out &= ~(size_t)(ATTN_WS_ALIGN - 1);
    return true;
}

size_t attn__ws_region(attn_ws_layout *y, size_t n, size_t elem) {
    size_t bytes, end;
    if (y->overflow || !attn__mul(n, elem, &bytes) || !round_up(bytes, &bytes) ||
        !attn__add(y->size, bytes, &end)) {
        y->overflow = true;
        return 0;
    }
    size_t off = y->size;
    y->size = end;
    return off;
}

size_t attn__ws_array(attn_ws_layout *y, size_t copies, const attn_ws_layout *sub) {
    if (sub->overflow) {
        y->overflow = true;
        return 0;
    }
    return attn__ws_region(y, copies, sub->size);
}

attn_status attn__ws_size(const attn_ws_layout *y, const char *what, size_t *bytes, attn_error *err) {
    if (y->overflow) return attn__err(err, ATTN_E_OVERFLOW, "%s: workspace size overflows", what);
    *bytes = y->size;
    return ATTN_OK;
}

/* Blocks from ATTN_WS_MMAP_MIN on are mappings of whole 2 MiB pages that
 * start on a 2 MiB boundary and ask for transparent huge pages: a fresh
 * mapping is touched page by page, and with 4 KiB pages the faults alone
 * cost about as much as a 1024-token `full` forward's arithmetic (2.5 ms for
 * 6 MiB on this project's machine; 0.14 ms in huge pages).  The length is
 * rounded up to whole huge pages so that the tail too is one (at most 2 MiB
 * more resident, which zeroing costs less than the tail's small faults).
 * Where THP is off, madvise fails harmlessly and the pages are small. */
#define HUGE_PAGE ((size_t)2 << 20)
static size_t map_len(size_t bytes) { return (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); }

static void *map_block(size_t bytes) {
    size_t len = map_len(bytes), span;
    if (len < bytes || !attn__add(len, HUGE_PAGE, &span)) return NULL;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    /* keep the aligned len bytes, unmap the slack before and after */
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (span - (size_t)(a - p) > len) munmap(a + len, span - (size_t)(a - p) - len);
#ifdef MADV_HUGEPAGE
    (void)madvise(a, len, MADV_HUGEPAGE);
#endif
    return a;
}

/* The mapped blocks a thread keeps between forwards (workspace.h): up to
 * KEEP_SLOTS idle blocks of at most keep_max bytes in all, the most
 * recently given back first, unmapped when the thread exits.  A forward
 * takes two at once (its scratch and its output tensor), a server request
 * one or two more (its decoded inputs): each finds its block again. */
#define KEEP_SLOTS 4
typedef struct ws_kept {
    void *p[KEEP_SLOTS];
    size_t len[KEEP_SLOTS]; /* map_len of each block's size */
    int n;                  /* idle blocks held, p[0] the newest */
    size_t total;           /* their bytes */
} ws_kept;

static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static pthread_key_t kept_key;
static bool kept_ok;
static size_t keep_max = ATTN_WS_KEEP_DEFAULT;

static void kept_release(void *v) {
    ws_kept *k = v;
    for (int i = 0; i < k->n; i++) munmap(k->p[i], k->len[i]);
    free(k);
}

static void kept_init(void) {
    const char *env = getenv("ATTN_WS_KEEP");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && env[0] >= '0' && env[0] <= '9') keep_max = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
    }
    kept_ok = pthread_key_create(&kept_key, kept_release) == 0;
}

/* This thread's record, created on first use; NULL when keeping is off
 * or the record cannot be made (blocks are then mapped per call). */
static ws_kept *kept(void) {
    pthread_once(&kept_once, kept_init);
    if (!kept_ok || keep_max < ATTN_WS_MMAP_MIN) return NULL;
    ws_kept *k = pthread_getspecific(kept_key);
    if (!k && (k = calloc(1, sizeof *k)) && pthread_setspecific(kept_key, k) != 0) {
        free(k);
        k = NULL;
    }
    return k;
}

size_t attn__ws_keep_max(void) {
    pthread_once(&kept_once, kept_init);
    return keep_max;
}

/* The smallest idle block of at least len bytes, taken out of k; NULL when
 * none is that large. */
static void *kept_take(ws_kept *k, size_t len) {
    int best = -1;
    for (int i = 0; i < k->n; i++)
        if (k->len[i] >= len && (best < 0 || k->len[i] < k->len[best])) best = i;
    if (best < 0) return NULL;
    void *p = k->p[best];
    k->total -= k->len[best];
    for (int i = best; i + 1 < k->n; i++) {
        k->p[i] = k->p[i + 1];
        k->len[i] = k->len[i + 1];
    }
    k->n--;
    return p;
}

/* Block p of len bytes (at most keep_max) becomes k's newest idle one,
 * the oldest being unmapped first while a slot or the bytes are short. */
static void kept_put(ws_kept *k, void *p, size_t len) {
    while (k->n == KEEP_SLOTS || (k->n > 0 && k->total + len > keep_max)) {
        k->n--;
        k->total -= k->len[k->n];
        munmap(k->p[k->n], k->len[k->n]);
    }
    for (int i = k->n; i > 0; i--) {
        k->p[i] = k->p[i - 1];
        k->len[i] = k->len[i - 1];
    }
    k->p[0] = p;
    k->len[0] = len;
    k->n++;
    k->total += len;
}

static attn_status ws_alloc(size_t bytes, bool zero, void **out, attn_error *err) {
    *out = NULL;
    if (bytes == 0) return ATTN_OK;
    size_t rounded;
    if (!round_up(bytes, &rounded)) return attn__err(err, ATTN_E_OVERFLOW, "workspace size overflows");
    if (rounded >= ATTN_WS_MMAP_MIN) {
        ws_kept *k = kept();
        size_t len = map_len(rounded);
        if (k && len >= rounded && (*out = kept_take(k, len))) {
            if (zero) memset(*out, 0, rounded);
            return ATTN_OK;
        }
        *out = map_block(rounded); /* a fresh mapping reads as zeros */
    } else {
        *out = aligned_alloc(ATTN_WS_ALIGN, rounded);
        if (*out && zero) memset(*out, 0, rounded);
    }
    if (!*out)
        return attn__err(err, ATTN_E_NOMEM, "out of memory (workspace of %zu bytes)", bytes);
    return ATTN_OK;
}

attn_status attn__ws_alloc(size_t bytes, void **out, attn_error *err) { return ws_alloc(bytes, false, out, err); }

attn_status attn__ws_alloc_zero(size_t bytes, void **out, attn_error *err) {
    return ws_alloc(bytes, true, out, err);
}

void attn__ws_free(void *p, size_t bytes) {
    if (!p) return;
    size_t rounded;
    (void)round_up(bytes, &rounded); /* allocated, so it did not overflow */
    if (rounded < ATTN_WS_MMAP_MIN) {
        free(p);
        return;
    }
    const size_t len = map_len(rounded);
    ws_kept *k = kept();
    if (k && len <= keep_max)
        kept_put(k, p, len);
    else
        munmap(p, len);
}
