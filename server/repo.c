/*
 * repo.c — the model table, loading from the repository folder or from a
 * request, atomic writes, unload, and the index.
 *
 * <repo>/<name>/config.json is {"type": ..., "config": {...}} plus the
 * server's own optional "allow_nonfinite": true; weights.safetensors holds
 * the state_dict.  A load is validated completely in memory (the model is
 * built) before anything is written; the new folder is assembled beside the
 * old one and exchanged with it in one rename (renameat2 RENAME_EXCHANGE),
 * so a crash leaves either the old model or the new one on disk, never a
 * mixture; then the table entry is swapped.
 */
#include "repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"


typedef struct entry {
    char name[SVC_MODEL_NAME_MAX + 1];
    svc_model *model;   /* NULL: not serving */
    char reason[256];   /* why not, or (poll) why the folder's newer content is not serving */
    uint64_t fp;        /* the folder's fingerprint when it was last loaded (or tried) */
} entry;

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER; /* entries */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;  /* one load at a time */
static entry *entries;
static size_t n_entries, cap_entries;
static svc_model **builtins;
static size_t n_builtins;
static char *repo_dir;
static char *single;      /* the one model's name when repo_dir is a model folder (config.json at its top) */
static atomic_uint_fast64_t generation;
static atomic_uint tmp_counter;

/* snprintf for paths: -1 when the result would not fit. */
__attribute__((format(printf, 3, 4))) static int pathf(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The path of `file` in model `name`'s folder ("" for the folder). */
static int model_path(char *out, size_t cap, const char *name, const char *file) {
    if (single) return pathf(out, cap, "%s%s%s", repo_dir, *file ? "/" : "", file);
    return pathf(out, cap, "%s/%s%s%s", repo_dir, name, *file ? "/" : "", file);
}

/* ---- reference counting ---- */

void svc_model_ref(svc_model *m) {
    if (m) atomic_fetch_add(&m->refs, 1);
}

void svc_model_unref(svc_model *m) {
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    attn_model_free(m->m);
    json_decref(m->weights);
    free(m);
}

static svc_model *model_new(const char *name, const attn_mech_info *mech, attn_model *am,
                            int allow_nonfinite, int builtin) {
    svc_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->mech = mech;
    m->m = am;
    m->builtin = builtin;
    m->allow_nonfinite = allow_nonfinite;
    m->generation = atomic_fetch_add(&generation, 1) + 1;
    for (int p = 0; p < SVC_PROTO_COUNT; p++) m->stats[p] = svc_metrics_model(name, (svc_protocol)p);
    return m;
}

/* ---- the table ---- */

static entry *find_entry(const char *name) { /* table_mu held */
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].name, name) == 0) return &entries[i];
    return NULL;
}

static entry *get_entry(const char *name) { /* table_mu held */
    entry *e = find_entry(name);
    if (e) return e;
    if (n_entries == cap_entries) {
        size_t cap = cap_entries ? cap_entries * 2 : 16;
        entry *p = realloc(entries, cap * sizeof *p);
        if (!p) return NULL;
        entries = p;
        cap_entries = cap;
    }
    e = &entries[n_entries++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

/* The built-in of a type name or alias: the registry resolves the name. */
static svc_model *find_builtin(const char *name) {
    const attn_mech_info *info = attn_mech_find(name);
    for (size_t i = 0; info && i < n_builtins; i++)
        if (builtins[i]->mech == info) return builtins[i];
    return NULL;
}

svc_model *svc_repo_get(const char *name) {
    svc_model *m = NULL;
    pthread_mutex_lock(&table_mu);
    entry *e = find_entry(name);
    if (e && e->model) { /* a repository model shadows a built-in of the same name */
        m = e->model;
        svc_model_ref(m);
    }
    pthread_mutex_unlock(&table_mu);
    if (!m) {
        m = find_builtin(name);
        svc_model_ref(m);
    }
    return m;
}

/* Installs m under name (m may be NULL: unload) and drops the old one. */
static int swap_in(const char *name, svc_model *m, const char *reason) {
    pthread_mutex_lock(&table_mu);
    entry *e = get_entry(name);
    if (!e) {
        pthread_mutex_unlock(&table_mu);
        return -1;
    }
    svc_model *old = e->model;
    e->model = m;
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&table_mu);
    svc_model_unref(old); /* freed when its last request ends */
    return 0;
}

static void note_failure(const char *name, const char *why) {
    pthread_mutex_lock(&table_mu);
    entry *e = get_entry(name);
    if (e && !e->model) snprintf(e->reason, sizeof e->reason, "%.*s", (int)sizeof e->reason - 1, why);
    pthread_mutex_unlock(&table_mu);
}

/* ---- building a model ---- */

/* attnd's own key of config.json: allow_nonfinite (its input policy).  0,
 * or 400 in *e. */
static int policy(const char *cfg, size_t cfg_len, int *allow_nonfinite, svc_err *e) {
    json_t *root = json_loadb(cfg, cfg_len, 0, NULL);
    json_t *anf = root ? json_object_get(root, "allow_nonfinite") : NULL;
    int st = 0;
    *allow_nonfinite = anf && json_is_true(anf);
    if (anf && !json_is_boolean(anf)) st = svc_fail(e, 400, "config.json: \"allow_nonfinite\" must be true or false");
    json_decref(root);
    return st;
}

/* A model from the core's loader result, with attnd's policy.  Takes am. */
static int wrap(const char *name, attn_model *am, int allow_nonfinite, svc_model **out, svc_err *e) {
    *out = model_new(name, attn_model_mech(am), am, allow_nonfinite, 0);
    if (!*out) {
        attn_model_free(am);
        return svc_fail(e, 503, "out of memory");
    }
    return 0;
}

/* config.json text + weights -> model (libattn parses and validates it).
 * 0, or the status in *e. */
static int build(const char *name, const char *cfg, size_t cfg_len, const attn_tensor_set *weights,
                 svc_model **out, svc_err *e) {
    attn_model *am = NULL;
    attn_error ae = {0};
    int anf;
    attn_status s = attn_model_from_config(cfg, cfg_len, weights, &am, &ae);
    /* Override: a "not found" here is about something the config names: 400. */
    if (s) return svc_fail_attn(e, s, &ae, s == ATTN_E_NOTFOUND ? 400 : 0, NULL);
    if (policy(cfg, cfg_len, &anf, e)) {
        attn_model_free(am);
        return e->status;
    }
    int st = wrap(name, am, anf, out, e);
    if (st == 0 && weights) { /* what the weights file holds, for /config (the explorer shows it) */
        json_t *a = json_array();
        for (size_t i = 0; a && i < attn_tensor_set_count(weights); i++) {
            const attn_tensor *t = attn_tensor_set_at(weights, i);
            json_t *shape = json_array();
            for (int d = 0; shape && d < t->rank; d++) json_array_append_new(shape, json_integer(t->shape[d]));
            json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", attn_tensor_set_name(weights, i), "datatype",
                                               attn_dtype_name(t->dtype), "shape", shape ? shape : json_array()));
        }
        (*out)->weights = a;
    }
    return st;
}

/* The folder's config.json text, read once (it may be a pipe), for the
 * core and for attnd's policy key alike. */
static int read_config(const char *path, char **out, size_t *len, svc_err *e) {
    enum { MAX = 1 << 20 }; /* the core's limit too */
    FILE *f = fopen(path, "rb");
    if (!f) return svc_fail(e, errno == ENOENT ? 404 : 500, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(MAX + 1);
    size_t n = buf ? fread(buf, 1, MAX + 1, f) : 0;
    fclose(f);
    if (!buf) return svc_fail(e, 503, "out of memory");
    if (n > MAX) {
        free(buf);
        return svc_fail(e, 400, "%s is larger than 1 MiB", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_from_dir(const char *name, svc_model **out, svc_err *e) {
    char path[4096];
    char *cfg = NULL;
    size_t cfg_len = 0;
    attn_tensor_set *w = NULL;
    if (single && strcmp(name, single) != 0)
        return svc_fail(e, 404, "model '%s' is not in the repository (it serves one model, '%s')", name, single);
    model_path(path, sizeof path, name, "config.json");
    int st = read_config(path, &cfg, &cfg_len, e);
    if (st == 404) svc_fail(e, 404, "model '%s' is not in the repository", name);
    if (st) return st;
    model_path(path, sizeof path, name, "weights.safetensors");
    if (access(path, F_OK) == 0) {
        attn_error ae = {0};
        attn_status s = attn_safetensors_read_file(path, &w, &ae);
        if (s != ATTN_OK) {
            free(cfg);
            /* Override: the file exists, so "not found" is about its content: 400. */
            return svc_fail_attn(e, s, &ae, s == ATTN_E_NOTFOUND ? 400 : 0, "weights.safetensors: ");
        }
    }
    st = build(name, cfg, cfg_len, w, out, e);
    attn_tensor_set_free(w);
    free(cfg);
    return st;
}

/* ---- atomic writes ---- */

static int write_all(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

/* Removes a folder we made (plain files only). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        pathf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0) svc_log("warn", "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0) svc_log("warn", "cannot remove %s: %s", dir, strerror(errno));
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int persist(const char *name, const char *cfg, size_t cfg_len, const void *weights,
                   size_t weights_len, svc_err *e) {
    char tmp[4096], target[4096], path[4096];
    pathf(tmp, sizeof tmp, "%s/.load-%s-%ld-%u", repo_dir, name, (long)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    pathf(target, sizeof target, "%s/%s", repo_dir, name);
    if (mkdir(tmp, 0755) != 0) {
        return svc_fail(e, 500, "cannot write to the repository: %s", strerror(errno));
    }
    pathf(path, sizeof path, "%s/config.json", tmp);
    int bad = write_all(path, cfg, cfg_len);
    if (!bad && weights) {
        pathf(path, sizeof path, "%s/weights.safetensors", tmp);
        bad = write_all(path, weights, weights_len);
    }
    if (bad) {
        svc_fail(e, 500, "cannot write to the repository: %s", strerror(errno));
        remove_dir(tmp);
        return e->status;
    }
    sync_dir(tmp);
    struct stat stt;
    if (lstat(target, &stt) == 0) {
        if (!S_ISDIR(stt.st_mode)) {
            svc_fail(e, 500, "%s exists and is not a folder", target);
            remove_dir(tmp);
            return e->status;
        }
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) == 0) {
            remove_dir(tmp); /* holds the old version now */
        } else { /* file systems without exchange: two renames, old kept aside */
            char old[4096];
            pathf(old, sizeof old, "%s/.old-%s-%ld-%u", repo_dir, name, (long)getpid(),
                     atomic_fetch_add(&tmp_counter, 1));
            if (rename(target, old) != 0 || rename(tmp, target) != 0) {
                svc_fail(e, 500, "cannot replace %s: %s", target, strerror(errno));
                if (access(target, F_OK) != 0) rename(old, target);
                remove_dir(tmp);
                return e->status;
            }
            remove_dir(old);
        }
    } else if (rename(tmp, target) != 0) {
        svc_fail(e, 500, "cannot create %s: %s", target, strerror(errno));
        remove_dir(tmp);
        return e->status;
    }
    sync_dir(repo_dir);
    return 0;
}

/* ---- public ---- */

int svc_repo_load(const char *name, const char *cfg, size_t cfg_len, const void *weights,
                  size_t weights_len, svc_err *e) {
    svc_model *m = NULL;
    int st;
    pthread_mutex_lock(&load_mu);
    if (!cfg) {
        if (!repo_dir) {
            st = svc_fail(e, 400, "no model repository (--model-repository) to load '%s' from", name);
            goto out;
        }
        st = load_from_dir(name, &m, e);
    } else {
        attn_tensor_set *w = NULL;
        if (weights) {
            attn_error ae = {0};
            attn_status s = attn_safetensors_read_mem(weights, weights_len, &w, &ae);
            if (s != ATTN_OK) {
                /* Override: the request's bytes are not found wanting, they
                 * are malformed: 400. */
                st = svc_fail_attn(e, s, &ae, s == ATTN_E_NOTFOUND ? 400 : 0, "weights.safetensors: ");
                goto out;
            }
        }
        if (single) {
            st = svc_fail(e, 400, "attnd serves one model folder (%s as '%s'): a load with content would have nowhere to go; load '%s' from its folder (no body)",
                          repo_dir, single, single);
            attn_tensor_set_free(w);
            goto out;
        }
        st = build(name, cfg, cfg_len, w, &m, e);
        attn_tensor_set_free(w);
        if (st == 0 && repo_dir) st = persist(name, cfg, cfg_len, weights, weights_len, e);
    }
    if (st == 0 && swap_in(name, m, NULL) != 0) st = svc_fail(e, 503, "out of memory");
    if (st != 0) svc_model_unref(m);
out:
    /* A failed load is listed (UNAVAILABLE, with its reason) only for a name
     * the repository knows; a name with no folder leaves no phantom entry. */
    if (st != 0 && st != 404) note_failure(name, e->msg);
    pthread_mutex_unlock(&load_mu);
    if (st == 0) svc_log("info", "model '%s' loaded", name);
    else svc_log("warn", "model '%s' failed to load: %s", name, e->msg);
    return st;
}

static int has_config(const char *name) {
    char path[4096];
    if (!repo_dir || (single && strcmp(name, single) != 0)) return 0;
    model_path(path, sizeof path, name, "config.json");
    return access(path, R_OK) == 0;
}

int svc_repo_unload(const char *name, svc_err *e) {
    pthread_mutex_lock(&load_mu);
    pthread_mutex_lock(&table_mu);
    entry *ent = find_entry(name);
    int known = ent != NULL && (ent->model != NULL || has_config(name));
    pthread_mutex_unlock(&table_mu);
    int st = 0;
    if (known) swap_in(name, NULL, "unloaded");
    else if (find_builtin(name)) st = svc_fail(e, 400, "'%s' is a built-in model and cannot be unloaded", name);
    else st = svc_fail(e, 404, "unknown model '%s'", name);
    pthread_mutex_unlock(&load_mu);
    if (st == 0) svc_log("info", "model '%s' unloaded", name);
    return st;
}


json_t *svc_repo_index(int ready_only) {
    json_t *a = json_array();
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < n_entries; i++) {
        entry *e = &entries[i];
        if (ready_only && !e->model) continue;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "name", e->name, "version", "1",
                                           "state", e->model ? "READY" : "UNAVAILABLE", "reason",
                                           e->reason));
    }
    pthread_mutex_unlock(&table_mu);
    DIR *d = repo_dir && !ready_only && !single ? opendir(repo_dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) { /* folders added since the last load */
        if (!svc_valid_model_name(de->d_name, strlen(de->d_name)) || !has_config(de->d_name)) continue;
        pthread_mutex_lock(&table_mu);
        int known = find_entry(de->d_name) != NULL;
        pthread_mutex_unlock(&table_mu);
        if (!known)
            json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "name", de->d_name, "version",
                                               "1", "state", "UNAVAILABLE", "reason", "not loaded"));
    }
    if (d) closedir(d);
    for (size_t i = 0; i < n_builtins; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", builtins[i]->name,
                                           "version", "1", "state", "READY", "reason", "built-in",
                                           "builtin", 1));
    return a;
}

size_t svc_repo_builtin_count(void) { return n_builtins; }

/* Folders a load left behind when its process died (kill -9, power loss):
 * .load-<name>-<pid>-<n> (half written, or holding the old version after
 * the exchange) is removed; .old-<name>-<pid>-<n> (the old version kept
 * aside by the two-rename fallback) is put back when <name> is missing,
 * since the crash came between the two renames, and removed otherwise.  The
 * folders of a process still running (another attnd on this repository)
 * are left alone; our own pid can only be a previous life's (a container's
 * pid 1). */
static void recover_leftovers(void) {
    DIR *d = opendir(repo_dir);
    if (!d) return;
    struct dirent *de;
    char path[4096], target[4096];
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        int old = strncmp(n, ".old-", 5) == 0;
        if (!old && strncmp(n, ".load-", 6) != 0) continue;
        const char *name = n + (old ? 5 : 6);
        const char *last = strrchr(name, '-'), *dash = last; /* <name>-<pid>-<n>: parse from the end */
        while (dash && dash > name && dash[-1] != '-') dash--;
        if (!last || !dash || dash <= name + 1) continue;
        dash--; /* the '-' before <pid> */
        char *end;
        long pid = strtol(dash + 1, &end, 10);
        if (end != last || pid <= 0 || !svc_valid_model_name(name, (size_t)(dash - name))) continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        if (pathf(path, sizeof path, "%s/%s", repo_dir, n) != 0 ||
            pathf(target, sizeof target, "%s/%.*s", repo_dir, (int)(dash - name), name) != 0)
            continue;
        struct stat st;
        if (old && lstat(target, &st) != 0 && errno == ENOENT) {
            if (rename(path, target) == 0) svc_log("warn", "restored %s from %s (a load was interrupted)", target, n);
            else svc_log("warn", "cannot restore %s from %s: %s", target, n, strerror(errno));
            continue;
        }
        svc_log("warn", "removing %s, left by an interrupted load", path);
        remove_dir(path);
    }
    closedir(d);
    sync_dir(repo_dir);
}

/* The fingerprint of a model folder's files (inode, size, mtime of
 * config.json and weights.safetensors); 0 when it has no config.json. */
static uint64_t fingerprint(const char *name) {
    static const char *const files[] = {"config.json", "weights.safetensors"};
    uint64_t h = 1469598103934665603ull;
    char path[4096];
    for (int f = 0; f < 2; f++) {
        struct stat st;
        if (model_path(path, sizeof path, name, files[f]) != 0 || stat(path, &st) != 0) {
            if (f == 0) return 0;
            h = (h ^ 0x5a) * 1099511628211ull;
            continue;
        }
        uint64_t v[4] = {(uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                         (uint64_t)st.st_mtim.tv_nsec};
        for (int k = 0; k < 4; k++) h = (h ^ v[k]) * 1099511628211ull;
    }
    return h ? h : 1;
}

static void set_fp(const char *name, uint64_t fp) {
    pthread_mutex_lock(&table_mu);
    entry *e = get_entry(name);
    if (e) e->fp = fp;
    pthread_mutex_unlock(&table_mu);
}

/* Whether `name` is one of --load-model's (or '*'). */
static int wanted(const char *name) {
    if (!svc_cfg.load_models) return 1;
    for (const char *const *n = svc_cfg.load_models; *n; n++)
        if (strcmp(*n, "*") == 0 || strcmp(*n, name) == 0) return 1;
    return 0;
}

static void load_initial(const char *name) {
    svc_err e;
    uint64_t fp = fingerprint(name);
    svc_repo_load(name, NULL, 0, NULL, 0, &e); /* logs; the index tells */
    set_fp(name, fp);
}

const char *svc_repo_mode_name(svc_control_mode m) {
    return m == SVC_CONTROL_NONE ? "none" : m == SVC_CONTROL_POLL ? "poll" : "explicit";
}

int svc_repo_control_check(svc_err *e) {
    if (svc_cfg.control_mode == SVC_CONTROL_EXPLICIT) return 0;
    return svc_fail(e, 400, "models cannot be loaded or unloaded through the API with --model-control-mode %s%s",
                    svc_repo_mode_name(svc_cfg.control_mode),
                    svc_cfg.control_mode == SVC_CONTROL_POLL ? " (the repository folder is watched: change it instead)"
                                                             : " (use explicit)");
}

const char *svc_repo_dir(void) { return repo_dir; }
const char *svc_repo_single(void) { return single; }

size_t svc_repo_rescan(void) {
    if (!repo_dir) return 0;
    size_t changed = 0;
    /* Folders that changed or appeared: a load, validated before it replaces
     * what serves (a broken version leaves the old one serving). */
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (single) {
        names = malloc(sizeof *names);
        if (names && (names[0] = strdup(single))) n = 1;
    } else {
        DIR *d = opendir(repo_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (!svc_valid_model_name(de->d_name, strlen(de->d_name))) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **p = realloc(names, cap * sizeof *p);
                if (!p) break;
                names = p;
            }
            if ((names[n] = strdup(de->d_name))) n++;
        }
        if (d) closedir(d);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t fp = fingerprint(names[i]);
        pthread_mutex_lock(&table_mu);
        entry *ent = find_entry(names[i]);
        uint64_t had = ent ? ent->fp : 0;
        int serving = ent && ent->model;
        pthread_mutex_unlock(&table_mu);
        if (fp == had || (fp == 0 && !serving)) continue;
        changed++;
        svc_err e = {0};
        if (fp == 0) { /* config.json gone: the model leaves */
            pthread_mutex_lock(&load_mu);
            swap_in(names[i], NULL, "removed from the repository");
            pthread_mutex_unlock(&load_mu);
            set_fp(names[i], 0);
            svc_log("info", "model '%s' unloaded: its folder is gone", names[i]);
            continue;
        }
        set_fp(names[i], fp); /* tried once per version of the files */
        if (svc_repo_load(names[i], NULL, 0, NULL, 0, &e) != 0 && serving) {
            pthread_mutex_lock(&table_mu);
            entry *en = find_entry(names[i]);
            if (en && en->model)
                snprintf(en->reason, sizeof en->reason, "serving the previous version; the folder's content failed to load: %.180s", e.msg);
            pthread_mutex_unlock(&table_mu);
        }
    }
    /* Models whose folder vanished. */
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < n_entries; i++) {
        entry *en = &entries[i];
        int present = 0;
        for (size_t k = 0; k < n && !present; k++) present = strcmp(names[k], en->name) == 0;
        if (present || !en->model) continue;
        svc_model *old = en->model;
        en->model = NULL;
        en->fp = 0;
        snprintf(en->reason, sizeof en->reason, "removed from the repository");
        svc_log("info", "model '%s' unloaded: its folder is gone", en->name);
        pthread_mutex_unlock(&table_mu);
        svc_model_unref(old);
        changed++;
        pthread_mutex_lock(&table_mu);
    }
    pthread_mutex_unlock(&table_mu);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return changed;
}

int svc_repo_init(const char *dir, svc_err *e) {
    size_t n = attn_mech_count();
    builtins = calloc(n ? n : 1, sizeof *builtins);
    if (!builtins) return svc_fail(e, 503, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const attn_mech_info *info = attn_mech_at(i);
        if (!info || info->has_weights) continue;
        attn_model *am = NULL;
        attn_error ae = {0};
        attn_status s = attn_model_new(info->name, "{}", NULL, &am, &ae);
        svc_model *m = model_new(info->name, info, s == ATTN_OK ? am : NULL, 0, 1);
        if (!m) {
            attn_model_free(am);
            return svc_fail(e, 503, "out of memory");
        }
        if (s != ATTN_OK) snprintf(m->default_err, sizeof m->default_err, "%s", ae.msg);
        builtins[n_builtins++] = m;
    }
    if (!dir) return 0;
    if (strlen(dir) > 3000) { /* every path we build then fits in 4096 bytes */
        return svc_fail(e, 500, "the model repository path is too long");
    }
    repo_dir = strdup(dir);
    DIR *d = repo_dir ? opendir(dir) : NULL;
    if (!d) {
        return svc_fail(e, 500, "cannot open the model repository %s: %s", dir, strerror(errno));
    }
    /* One model folder (KServe's storage initializer puts a single model's
     * files in /mnt/models): config.json at the top. */
    char top[4096];
    if (pathf(top, sizeof top, "%s/config.json", dir) == 0 && access(top, F_OK) == 0) {
        closedir(d);
        const char *nm = svc_cfg.model_name;
        char base[SVC_MODEL_NAME_MAX + 1] = "";
        if (!nm) { /* the folder's own name */
            const char *b = strrchr(dir, '/');
            b = b ? b + 1 : dir;
            snprintf(base, sizeof base, "%s", b);
            nm = base;
        }
        if (!svc_valid_model_name(nm, strlen(nm))) {
            return svc_fail(e, 500, "%s is one model folder: name it with --model-name ('%s' is not a model name)", dir, nm);
        }
        single = strdup(nm);
        if (!single) return svc_fail(e, 503, "out of memory");
        svc_log("info", "%s is one model folder, served as '%s'", dir, single);
        if (svc_cfg.control_mode != SVC_CONTROL_EXPLICIT || wanted(single)) load_initial(single);
        return 0;
    }
    if (svc_cfg.model_name)
        svc_log("info", "--model-name %s ignored: %s is a repository of model folders", svc_cfg.model_name, dir);
    recover_leftovers();
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!svc_valid_model_name(de->d_name, strlen(de->d_name)) || !has_config(de->d_name)) continue;
        if (svc_cfg.control_mode == SVC_CONTROL_EXPLICIT && !wanted(de->d_name)) continue;
        load_initial(de->d_name);
    }
    closedir(d);
    if (svc_cfg.load_models && svc_cfg.control_mode == SVC_CONTROL_EXPLICIT)
        for (const char *const *nm = svc_cfg.load_models; *nm; nm++)
            if (strcmp(*nm, "*") && !has_config(*nm)) svc_log("warn", "--load-model %s: no such model folder in %s", *nm, dir);
    return 0;
}

void svc_repo_shutdown(void) {
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < n_entries; i++) svc_model_unref(entries[i].model);
    free(entries);
    entries = NULL;
    n_entries = cap_entries = 0;
    pthread_mutex_unlock(&table_mu);
    for (size_t i = 0; i < n_builtins; i++) svc_model_unref(builtins[i]);
    free(builtins);
    builtins = NULL;
    n_builtins = 0;
    free(repo_dir);
    repo_dir = NULL;
    free(single);
    single = NULL;
}
