/*
 * repo_watch.c — --model-control-mode poll: the repository folder is
 * watched (libuv fs events on the folder and on each model folder in it)
 * and rescanned every --repository-poll-secs as well, since events can be
 * missed (network file systems, a watch limit, a folder replaced by a
 * rename).  An event schedules a rescan after a short settle time, so that a
 * burst of writes is one rescan.  The rescan itself (svc_repo_rescan: stat
 * calls, and loads of what changed) runs on the pool, one at a time; an
 * event during a rescan schedules another.
 *
 * Loop thread only, but for the rescan's work callback.
 */
#include "repo_watch.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "repo.h"

#define SETTLE_MS 200
#define MAX_WATCHES 4096

typedef struct watch {
    uv_fs_event_t ev;
    char name[SVC_MODEL_NAME_MAX + 1]; /* "" for the repository folder itself */
    int live;
} watch;

static uv_loop_t *loop;
static uv_timer_t poll_timer, settle_timer;
static uv_work_t work;
static int running, again, started, closing;
static watch *watches;
static size_t n_watches;
static atomic_ullong rescans;

static void settled(uv_timer_t *t);

/* A rescan in ms (a later event moves it: the settle time restarts). */
static void schedule(uint64_t ms) {
    if (closing) return;
    uv_timer_start(&settle_timer, settled, ms, 0);
}

static void on_event(uv_fs_event_t *h, const char *file, int events, int status) {
    (void)h, (void)file, (void)events, (void)status;
    schedule(SETTLE_MS);
}

static void watch_add(const char *name) {
    for (size_t i = 0; i < n_watches; i++)
        if (watches[i].live && strcmp(watches[i].name, name) == 0) return;
    size_t slot = n_watches;
    for (size_t i = 0; i < n_watches; i++)
        if (!watches[i].live) slot = i;
    if (slot == n_watches) {
        if (n_watches == MAX_WATCHES) return; /* the periodic rescan still sees it */
        n_watches++;
    }
    watch *w = &watches[slot];
    char path[4096];
    const char *dir = svc_repo_dir();
    if (snprintf(path, sizeof path, "%s%s%s", dir, *name ? "/" : "", name) >= (int)sizeof path) return;
    snprintf(w->name, sizeof w->name, "%s", name);
    if (uv_fs_event_init(loop, &w->ev) != 0) return;
    if (uv_fs_event_start(&w->ev, on_event, path, 0) != 0) {
        uv_close((uv_handle_t *)&w->ev, NULL);
        return;
    }
    w->live = 1;
}

static void watch_closed(uv_handle_t *h) { ((watch *)h)->live = 0; }

/* Watches the repository and each model folder now in it; stops watching
 * folders that are gone. */
static void refresh_watches(void) {
    const char *dir = svc_repo_dir();
    watch_add("");
    if (svc_repo_single()) return;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (svc_valid_model_name(de->d_name, strlen(de->d_name)) && de->d_type == DT_DIR) watch_add(de->d_name);
    if (d) closedir(d);
    for (size_t i = 0; i < n_watches; i++) {
        watch *w = &watches[i];
        if (!w->live || !w->name[0] || uv_is_closing((uv_handle_t *)&w->ev)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, w->name);
        DIR *x = opendir(path);
        if (x) closedir(x);
        else uv_close((uv_handle_t *)&w->ev, watch_closed);
    }
}

static void rescan_work(uv_work_t *w) {
    (void)w;
    svc_repo_rescan();
    atomic_fetch_add(&rescans, 1);
}

static void rescan_done(uv_work_t *w, int status) {
    (void)w, (void)status;
    running = 0;
    if (closing) return;
    refresh_watches();
    if (again) {
        again = 0;
        schedule(SETTLE_MS);
    }
}

static void settled(uv_timer_t *t) {
    (void)t;
    if (closing) return;
    if (running) {
        again = 1;
        return;
    }
    running = 1;
    if (uv_queue_work(loop, &work, rescan_work, rescan_done) != 0) running = 0;
}

static void on_poll(uv_timer_t *t) {
    (void)t;
    settled(&settle_timer);
}

int svc_repo_watch_start(uv_loop_t *l, svc_err *e) {
    if (svc_cfg.control_mode != SVC_CONTROL_POLL || !svc_repo_dir()) return 0;
    loop = l;
    watches = calloc(MAX_WATCHES, sizeof *watches);
    if (!watches) return svc_fail(e, 503, "out of memory");
    if (uv_timer_init(loop, &poll_timer) || uv_timer_init(loop, &settle_timer))
        return svc_fail(e, 500, "cannot set up the repository's timers");
    uint64_t ms = (uint64_t)(svc_cfg.poll_s * 1000);
    uv_timer_start(&poll_timer, on_poll, ms, ms);
    uv_unref((uv_handle_t *)&poll_timer);
    uv_unref((uv_handle_t *)&settle_timer);
    refresh_watches();
    started = 1;
    svc_log("info", "watching %s for model changes (rescan every %g s)", svc_repo_dir(), svc_cfg.poll_s);
    return 0;
}

void svc_repo_watch_stop(void) {
    if (!started) return;
    closing = 1;
    uv_timer_stop(&poll_timer);
    uv_timer_stop(&settle_timer);
    uv_close((uv_handle_t *)&poll_timer, NULL);
    uv_close((uv_handle_t *)&settle_timer, NULL);
    for (size_t i = 0; i < n_watches; i++)
        if (watches[i].live && !uv_is_closing((uv_handle_t *)&watches[i].ev))
            uv_close((uv_handle_t *)&watches[i].ev, watch_closed);
}

void svc_repo_watch_free(void) {
    free(watches);
    watches = NULL;
    n_watches = 0;
}

uint64_t svc_repo_watch_rescans(void) { return atomic_load(&rescans); }
