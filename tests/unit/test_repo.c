/* test_repo.c — the model table and the repository folder (server/repo.c)
 * on temporary folders under /tmp, with no socket and no scheduler:
 *   - a load with content is validated before anything is written, written
 *     atomically (config.json and weights.safetensors byte for byte, no
 *     temporary folder left, the old version replaced whole), and a request
 *     holding the old version keeps it;
 *   - recover_leftovers (at start): a dead load's .load-* folder is removed,
 *     an .old-* folder is put back when its model is missing and removed
 *     otherwise, a live process's folders and odd names are left alone;
 *   - svc_repo_rescan (poll): folders added, changed (by the fingerprint of
 *     the files), broken (the old version keeps serving, tried once per
 *     version), emptied and removed;
 *   - the single-model folder mode (the folder's name or --model-name);
 *   - control modes none / explicit / poll (--load-model, control_check);
 *   - unload, built-ins and the repository model that shadows one;
 *   - error paths: bad config.json (JSON, keys, type, allow_nonfinite, over
 *     1 MiB), bad weights, unreadable files and folders, each with its
 *     svc_err status and message, and nothing written.
 * Links server/repo.o and the few server objects it needs (Makefile);
 * svc_metrics_model is a stub here (metrics.o would bring the scheduler,
 * sequences and gRPC). */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../server/metrics.h"
#include "../../server/repo.h"

/* The one metrics entry point repo.c calls: it only keeps the pointer. */
svc_stats *svc_metrics_model(const char *name, svc_protocol p) {
    (void)name;
    (void)p;
    return NULL;
}

#define FULL "{\"type\": \"full\", \"config\": {}}"
#define LINEAR "{\"type\": \"linear\", \"config\": {\"query_dimensions\": 8}}"

/* ---- files ---- */

static char root[64]; /* the test's temporary folder */

static void mkroot(void) {
    snprintf(root, sizeof root, "/tmp/test_repo.XXXXXX");
    assert_non_null(mkdtemp(root));
}

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            rm_rf(p);
        }
        closedir(d);
        assert_int_equal(rmdir(path), 0);
    } else {
        assert_int_equal(unlink(path), 0);
    }
}

static const char *at(const char *rel) { /* root/rel, in one of a few rotating buffers */
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", root, rel);
    return p;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Replaces the file through a new inode (as an editor or a copy does). */
static void replace_file(const char *path, const char *text) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    write_file(tmp, text, strlen(text));
    assert_int_equal(rename(tmp, path), 0);
}

static void *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    p[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return p;
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void model_folder(const char *name, const char *config) {
    assert_int_equal(mkdir(at(name), 0755), 0);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/config.json", name);
    write_file(at(rel), config, strlen(config));
}

/* How many entries of root start with `prefix`. */
static int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void assert_no_temporaries(void) {
    assert_int_equal(count_prefixed(root, ".load-"), 0);
    assert_int_equal(count_prefixed(root, ".old-"), 0);
}

/* ---- the table ---- */

static void start(svc_control_mode mode, const char *const *load_models, const char *model_name, const char *dir) {
    svc_cfg = svc_config_defaults();
    svc_cfg.control_mode = mode;
    svc_cfg.load_models = load_models;
    svc_cfg.model_name = model_name;
    svc_err e = {0};
    if (svc_repo_init(dir, &e) != 0) fail_msg("svc_repo_init(%s): %d %s", dir ? dir : "NULL", e.status, e.msg);
}

static void stop(void) {
    svc_repo_shutdown();
    if (root[0]) rm_rf(root);
    root[0] = 0;
}

/* After every test, passed or not: the table emptied, the folder gone. */
static int teardown(void **st) {
    (void)st;
    stop();
    return 0;
}

/* The served model's mechanism name, or NULL when nothing serves `name`. */
static const char *served_type(const char *name) {
    static char type[64];
    svc_model *m = svc_repo_get(name);
    if (!m) return NULL;
    snprintf(type, sizeof type, "%s", m->mech->name);
    svc_model_unref(m);
    return type;
}

/* The index row of `name` (state and reason), false when it has none. */
static bool index_row(const char *name, char *state, char *reason) {
    json_t *a = svc_repo_index(0);
    size_t i;
    json_t *row;
    bool found = false;
    json_array_foreach(a, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) || json_object_get(row, "builtin")) continue;
        snprintf(state, 32, "%s", json_string_value(json_object_get(row, "state")));
        snprintf(reason, 256, "%s", json_string_value(json_object_get(row, "reason")));
        found = true;
    }
    json_decref(a);
    return found;
}

static void assert_state(const char *name, const char *state, const char *reason_part) {
    char s[32], r[256];
    if (!index_row(name, s, r)) fail_msg("%s: not in the index", name);
    if (strcmp(s, state)) fail_msg("%s: state %s, wanted %s (reason: %s)", name, s, state, r);
    if (reason_part && !strstr(r, reason_part)) fail_msg("%s: reason '%s' lacks '%s'", name, r, reason_part);
}

static int load_text(const char *name, const char *cfg, svc_err *e) {
    memset(e, 0, sizeof *e);
    return svc_repo_load(name, cfg, strlen(cfg), NULL, 0, e);
}

static void expect_fail(int got, const svc_err *e, int status, const char *part) {
    if (got != status || e->status != status) fail_msg("status %d (err %d), wanted %d: %s", got, e->status, status, e->msg);
    if (!strstr(e->msg, part)) fail_msg("message '%s' lacks '%s'", e->msg, part);
}

/* ---- tests ---- */

/* A load with content: validated, written atomically, swapped in; a
 * reference taken before keeps the old version. */
static void load_writes_atomically(void **st) {
    (void)st;
    mkroot();
    start(SVC_CONTROL_EXPLICIT, NULL, NULL, root);
    svc_err e;
    assert_int_equal(load_text("m1", FULL, &e), 0);
    size_t n;
    char *text = read_whole(at("m1/config.json"), &n);
    assert_non_null(text);
    assert_int_equal(n, strlen(FULL));
    assert_memory_equal(text, FULL, n);
    free(text);
    assert_false(exists(at("m1/weights.safetensors")));
    assert_no_temporaries();
    assert_string_equal(served_type("m1"), "full");
    assert_state("m1", "READY", NULL);

    /* replaced: the folder's content is the new version's, whole */
    svc_model *old = svc_repo_get("m1");
    uint64_t gen = old->generation;
    assert_int_equal(load_text("m1", LINEAR, &e), 0);
    text = read_whole(at("m1/config.json"), &n);
    assert_string_equal(text, LINEAR);
    free(text);
    assert_no_temporaries();
    assert_string_equal(served_type("m1"), "linear");
    assert_string_equal(old->mech->name, "full"); /* the old version lives while held */
    svc_model *now = svc_repo_get("m1");
    assert_true(now->generation > gen);
    svc_model_unref(now);
    svc_model_unref(old);

    /* with weights: both files byte for byte (the golden attention_layer case's) */
    size_t wn, cn;
    void *w = read_whole("tests/golden/cases/attention_layer_full/weights.safetensors", &wn);
    char *cj = read_whole("tests/golden/cases/attention_layer_full/case.json", &cn);
    assert_non_null(w);
    assert_non_null(cj);
    json_t *c = json_loads(cj, 0, NULL);
    assert_non_null(c);
    json_t *cfgdoc = json_pack("{s:O, s:O}", "type", json_object_get(c, "type"), "config", json_object_get(c, "config"));
    char *cfg = json_dumps(cfgdoc, JSON_COMPACT);
    memset(&e, 0, sizeof e);
    if (svc_repo_load("layer", cfg, strlen(cfg), w, wn, &e) != 0) fail_msg("layer: %s", e.msg);
    size_t got_n;
    void *got = read_whole(at("layer/weights.safetensors"), &got_n);
    assert_int_equal(got_n, wn);
    assert_memory_equal(got, w, wn);
    free(got);
    got = read_whole(at("layer/config.json"), &got_n);
    assert_int_equal(got_n, strlen(cfg));
    assert_memory_equal(got, cfg, got_n);
    free(got);
    svc_model *lm = svc_repo_get("layer");
    assert_string_equal(lm->mech->name, "attention_layer");
    assert_true(json_array_size(lm->weights) > 0); /* what the weights file holds, for /config */
    svc_model_unref(lm);
    assert_no_temporaries();

    /* a load that fails validation writes nothing and the old version serves */
    memset(&e, 0, sizeof e);
    assert_int_equal(svc_repo_load("layer", cfg, strlen(cfg), w, wn / 2, &e), 400); /* truncated weights */
    assert_non_null(strstr(e.msg, "weights.safetensors: "));
    got = read_whole(at("layer/weights.safetensors"), &got_n);
    assert_int_equal(got_n, wn);
    free(got);
    assert_string_equal(served_type("layer"), "attention_layer");
    assert_no_temporaries();
    free(cfg);
    json_decref(cfgdoc);
    json_decref(c);
    free(cj);
    free(w);

    /* the new version replaces the folder whole: no file of the old one stays */
    assert_int_equal(load_text("layer", FULL, &e), 0);
    assert_false(exists(at("layer/weights.safetensors")));
    text = read_whole(at("layer/config.json"), &n);
    assert_string_equal(text, FULL);
    free(text);
    assert_string_equal(served_type("layer"), "full");
    assert_no_temporaries();

    /* the folder reloads from disk (no content) */
    assert_int_equal(svc_repo_load("m1", NULL, 0, NULL, 0, &e), 0);
    assert_string_equal(served_type("m1"), "linear");
    stop();
}

/* Without a repository a load with content serves from memory; one from a
 * folder is refused. */
static void no_repository(void **st) {
    (void)st;
    start(SVC_CONTROL_EXPLICIT, NULL, NULL, NULL);
    svc_err e = {0};
    assert_null(svc_repo_dir());
    assert_true(svc_repo_builtin_count() > 0);
    expect_fail(svc_repo_load("m1", NULL, 0, NULL, 0, &e), &e, 400, "no model repository");
    assert_int_equal(load_text("m1", FULL, &e), 0);
    assert_string_equal(served_type("m1"), "full");
    stop();
}

/* Folders a crashed load left behind, recovered at start. */
static void recover_leftovers_at_start(void **st) {
    (void)st;
    mkroot();
    /* a pid that is dead: a child that has exited */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    assert_true(dead > 0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    char rel[256];
    /* half-written load of m1 (m1 itself intact) */
    model_folder("m1", FULL);
    snprintf(rel, sizeof rel, ".load-m1-%ld-3", (long)dead);
    assert_int_equal(mkdir(at(rel), 0755), 0);
    snprintf(rel, sizeof rel, ".load-m1-%ld-3/config.json", (long)dead);
    write_file(at(rel), "{\"type\": \"li", 12);
    /* crash between the fallback's two renames: m2 is missing, its old version aside */
    snprintf(rel, sizeof rel, ".old-m2-%ld-4", (long)dead);
    assert_int_equal(mkdir(at(rel), 0755), 0);
    snprintf(rel, sizeof rel, ".old-m2-%ld-4/config.json", (long)dead);
    write_file(at(rel), LINEAR, strlen(LINEAR));
    /* an old version aside whose model exists: removed */
    model_folder("m3", FULL);
    snprintf(rel, sizeof rel, ".old-m3-%ld-5", (long)dead);
    assert_int_equal(mkdir(at(rel), 0755), 0);
    /* a live process's load (the parent of this test): left alone */
    char live[128];
    snprintf(live, sizeof live, ".load-m4-%ld-0", (long)getppid());
    assert_int_equal(mkdir(at(live), 0755), 0);
    /* names that are not a load's: left alone */
    assert_int_equal(mkdir(at(".load-x"), 0755), 0);
    assert_int_equal(mkdir(at(".old-m5-notapid-1"), 0755), 0);

    start(SVC_CONTROL_EXPLICIT, NULL, NULL, root);
    snprintf(rel, sizeof rel, ".load-m1-%ld-3", (long)dead);
    assert_false(exists(at(rel)));
    snprintf(rel, sizeof rel, ".old-m2-%ld-4", (long)dead);
    assert_false(exists(at(rel)));
    snprintf(rel, sizeof rel, ".old-m3-%ld-5", (long)dead);
    assert_false(exists(at(rel)));
    assert_true(exists(at("m2/config.json")));   /* restored ... */
    assert_string_equal(served_type("m2"), "linear"); /* ... and loaded */
    assert_string_equal(served_type("m1"), "full");
    assert_string_equal(served_type("m3"), "full");
    assert_true(exists(at(live)));
    assert_true(exists(at(".load-x")));
    assert_true(exists(at(".old-m5-notapid-1")));
    stop();
}

/* Poll mode's rescan: what changed on disk reaches the table. */
static void rescan_follows_the_folder(void **st) {
    (void)st;
    mkroot();
    model_folder("m1", FULL);
    start(SVC_CONTROL_POLL, NULL, NULL, root);
    assert_string_equal(served_type("m1"), "full");
    assert_int_equal(svc_repo_rescan(), 0); /* nothing changed */

    model_folder("m2", LINEAR); /* added */
    assert_int_equal(mkdir(at(".hidden"), 0755), 0); /* not a model name: ignored */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m2"), "linear");
    assert_int_equal(svc_repo_rescan(), 0);

    replace_file(at("m1/config.json"), LINEAR); /* changed: a new inode */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m1"), "linear");
    struct stat was;
    assert_int_equal(stat(at("m1/config.json"), &was), 0);
    write_file(at("m1/config.json"), FULL, strlen(FULL)); /* changed in place: same inode, size and mtime differ */
    struct stat is;
    assert_int_equal(stat(at("m1/config.json"), &is), 0);
    assert_int_equal(is.st_ino, was.st_ino);
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m1"), "full");
    replace_file(at("m1/config.json"), LINEAR);
    assert_int_equal(svc_repo_rescan(), 1);

    /* a weights file appearing changes the fingerprint too (here: one the
     * type does not take, so the load fails and the old version serves) */
    write_file(at("m1/weights.safetensors"), "garbage", 7);
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m1"), "linear");
    assert_state("m1", "READY", "serving the previous version");
    assert_int_equal(svc_repo_rescan(), 0); /* tried once per version of the files */
    assert_int_equal(unlink(at("m1/weights.safetensors")), 0);

    replace_file(at("m1/config.json"), "{\"type\": \"full\", \"config\": {\"nope\": 1}}"); /* broken */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m1"), "linear");
    assert_state("m1", "READY", "nope");
    assert_int_equal(svc_repo_rescan(), 0);
    replace_file(at("m1/config.json"), FULL); /* fixed */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m1"), "full");
    assert_state("m1", "READY", NULL);

    rm_rf(at("m2")); /* removed */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_null(served_type("m2"));
    assert_state("m2", "UNAVAILABLE", "removed from the repository");
    assert_int_equal(svc_repo_rescan(), 0);

    assert_int_equal(unlink(at("m1/config.json")), 0); /* config.json gone, folder stays */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_null(served_type("m1"));
    assert_state("m1", "UNAVAILABLE", "removed from the repository");
    assert_int_equal(svc_repo_rescan(), 0);

    model_folder("m2", FULL); /* back again */
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type("m2"), "full");
    stop();
}

/* The repository is one model folder (config.json at its top). */
static void single_model_folder(void **st) {
    (void)st;
    mkroot();
    write_file(at("config.json"), FULL, strlen(FULL));
    const char *base = strrchr(root, '/') + 1; /* test_repo.XXXXXX: a valid model name */
    start(SVC_CONTROL_EXPLICIT, NULL, NULL, root);
    assert_non_null(svc_repo_single());
    assert_string_equal(svc_repo_single(), base);
    assert_string_equal(served_type(base), "full");
    svc_err e;
    expect_fail(load_text(base, LINEAR, &e), &e, 400, "serves one model folder");
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_load("other", NULL, 0, NULL, 0, &e), &e, 404, "it serves one model");
    assert_false(exists(at("other")));
    /* changed in place: a rescan (or a load from the folder) picks it up */
    replace_file(at("config.json"), LINEAR);
    assert_int_equal(svc_repo_rescan(), 1);
    assert_string_equal(served_type(base), "linear");
    assert_int_equal(svc_repo_load(base, NULL, 0, NULL, 0, &e), 0);
    json_t *idx = svc_repo_index(0); /* the model and the built-ins, no folder listing */
    size_t repo_rows = 0, i;
    json_t *row;
    json_array_foreach(idx, i, row) repo_rows += json_object_get(row, "builtin") == NULL;
    assert_int_equal(repo_rows, 1);
    json_decref(idx);
    svc_repo_shutdown();

    /* --model-name names it */
    start(SVC_CONTROL_EXPLICIT, NULL, "mymodel", root);
    assert_string_equal(svc_repo_single(), "mymodel");
    assert_string_equal(served_type("mymodel"), "linear");
    assert_null(served_type(base));
    svc_repo_shutdown();

    /* an invalid name is a start-up error */
    svc_cfg = svc_config_defaults();
    svc_cfg.model_name = "bad name!";
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_init(root, &e), &e, 500, "--model-name");
    svc_repo_shutdown();

    /* explicit with --load-model naming another: not loaded; none: loaded */
    const char *const others[] = {"zzz", NULL};
    start(SVC_CONTROL_EXPLICIT, others, "mymodel", root);
    assert_null(served_type("mymodel"));
    svc_repo_shutdown();
    start(SVC_CONTROL_NONE, others, "mymodel", root);
    assert_string_equal(served_type("mymodel"), "linear");
    stop();
}

/* --model-control-mode: which folders load at start, and whether the API
 * may load and unload. */
static void control_modes(void **st) {
    (void)st;
    mkroot();
    model_folder("m1", FULL);
    model_folder("m2", LINEAR);
    svc_err e = {0};

    const char *const only_m2[] = {"m2", NULL};
    start(SVC_CONTROL_EXPLICIT, only_m2, NULL, root);
    assert_int_equal(svc_repo_control_check(&e), 0);
    assert_null(served_type("m1"));
    assert_state("m1", "UNAVAILABLE", "not loaded");
    assert_string_equal(served_type("m2"), "linear");
    assert_int_equal(svc_repo_load("m1", NULL, 0, NULL, 0, &e), 0); /* the API loads it */
    assert_string_equal(served_type("m1"), "full");
    svc_repo_shutdown();

    const char *const all[] = {"*", NULL};
    start(SVC_CONTROL_EXPLICIT, all, NULL, root);
    assert_string_equal(served_type("m1"), "full");
    assert_string_equal(served_type("m2"), "linear");
    svc_repo_shutdown();

    start(SVC_CONTROL_NONE, only_m2, NULL, root); /* none: everything, --load-model or not */
    assert_string_equal(svc_repo_mode_name(svc_cfg.control_mode), "none");
    assert_string_equal(served_type("m1"), "full");
    assert_string_equal(served_type("m2"), "linear");
    expect_fail(svc_repo_control_check(&e), &e, 400, "--model-control-mode none");
    assert_non_null(strstr(e.msg, "use explicit"));
    svc_repo_shutdown();

    start(SVC_CONTROL_POLL, NULL, NULL, root);
    assert_string_equal(svc_repo_mode_name(svc_cfg.control_mode), "poll");
    assert_string_equal(served_type("m1"), "full");
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_control_check(&e), &e, 400, "watched");
    assert_string_equal(svc_repo_mode_name(SVC_CONTROL_EXPLICIT), "explicit");
    stop();
}

/* Unload, built-ins, and a repository model shadowing a built-in. */
static void unload_and_builtins(void **st) {
    (void)st;
    mkroot();
    model_folder("m1", FULL);
    model_folder("full", LINEAR); /* shadows the built-in "full" */
    start(SVC_CONTROL_EXPLICIT, NULL, NULL, root);
    svc_err e = {0};
    assert_string_equal(served_type("full"), "linear");
    svc_model *held = svc_repo_get("m1");
    assert_int_equal(svc_repo_unload("m1", &e), 0);
    assert_null(served_type("m1"));
    assert_state("m1", "UNAVAILABLE", "unloaded");
    assert_string_equal(held->mech->name, "full"); /* a request in flight keeps it */
    svc_model_unref(held);
    assert_true(exists(at("m1/config.json"))); /* unload leaves the folder */
    assert_int_equal(svc_repo_unload("m1", &e), 0); /* again: still known */
    assert_int_equal(svc_repo_unload("full", &e), 0); /* the repository's: back to the built-in */
    assert_string_equal(served_type("full"), "full");
    svc_model *b = svc_repo_get("full");
    assert_true(b->builtin);
    svc_model_unref(b);
    assert_int_equal(svc_repo_unload("full", &e), 0); /* the folder is still there: a repository name */
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_unload("local", &e), &e, 400, "built-in");
    assert_string_equal(served_type("local"), "local");
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_unload("nosuch", &e), &e, 404, "unknown model 'nosuch'");
    /* an alias resolves to its built-in */
    assert_string_equal(served_type("conditional-full"), "conditional_full");
    stop();
}

/* Bad config.json and weights, unreadable files and folders: the status
 * and message, nothing written, nothing swapped in. */
static void error_paths(void **st) {
    (void)st;
    mkroot();
    model_folder("badjson", "{\"type\": ");
    model_folder("badkey", "{\"type\": \"full\", \"config\": {}, \"extra\": 1}");
    model_folder("badtype", "{\"type\": \"nosuch\", \"config\": {}}");
    model_folder("badanf", "{\"type\": \"full\", \"config\": {}, \"allow_nonfinite\": \"yes\"}");
    model_folder("badweights", FULL);
    write_file(at("badweights/weights.safetensors"), "\x08\0\0\0\0\0\0\0{}", 10);
    model_folder("loop", FULL);
    assert_int_equal(unlink(at("loop/config.json")), 0);
    assert_int_equal(symlink("config.json", at("loop/config.json")), 0); /* unreadable: ELOOP */
    start(SVC_CONTROL_EXPLICIT, NULL, NULL, root);
    struct { const char *name, *part; } want[] = {
        {"badjson", "invalid JSON"}, {"badkey", "unknown key 'extra'"}, {"badtype", "unknown type 'nosuch'"},
        {"badanf", "allow_nonfinite"}, {"badweights", "weights.safetensors: "},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_null(served_type(want[i].name));
        assert_state(want[i].name, "UNAVAILABLE", want[i].part);
        svc_err e = {0};
        expect_fail(svc_repo_load(want[i].name, NULL, 0, NULL, 0, &e), &e, 400, want[i].part);
    }
    svc_err e = {0};
    expect_fail(svc_repo_load("loop", NULL, 0, NULL, 0, &e), &e, 500, "cannot open");
    assert_non_null(strstr(e.msg, strerror(ELOOP)));
    assert_null(served_type("loop"));
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_load("nofolder", NULL, 0, NULL, 0, &e), &e, 404, "not in the repository");
    char s[32], r[256];
    assert_false(index_row("nofolder", s, r)); /* no phantom entry */

    /* content: refused before anything is written */
    memset(&e, 0, sizeof e);
    expect_fail(load_text("fresh", "{\"type\": \"nosuch\"}", &e), &e, 400, "unknown type");
    memset(&e, 0, sizeof e);
    expect_fail(load_text("fresh", "[1, 2]", &e), &e, 400, "expected {\"type\"");
    memset(&e, 0, sizeof e);
    expect_fail(load_text("fresh", "{\"type\": \"full\", \"allow_nonfinite\": 1}", &e), &e, 400, "allow_nonfinite");
    memset(&e, 0, sizeof e);
    assert_int_equal(svc_repo_load("fresh", FULL, strlen(FULL), "xx", 2, &e), 400);
    assert_non_null(strstr(e.msg, "weights.safetensors: "));
    assert_false(exists(at("fresh")));
    assert_no_temporaries();

    /* config.json over 1 MiB */
    size_t big = (1u << 20) + 10;
    char *text = malloc(big);
    memset(text, ' ', big);
    memcpy(text, FULL, strlen(FULL));
    model_folder("big", "x");
    write_file(at("big/config.json"), text, big);
    free(text);
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_load("big", NULL, 0, NULL, 0, &e), &e, 400, "larger than 1 MiB");

    /* the target name is a file: the write fails, nothing serves, no temporaries */
    write_file(at("afile"), "x", 1);
    memset(&e, 0, sizeof e);
    expect_fail(load_text("afile", FULL, &e), &e, 500, "is not a folder");
    assert_null(served_type("afile"));
    assert_no_temporaries();

    /* permissions (root reads everything, so only as another user) */
    if (geteuid() != 0) {
        model_folder("closed", FULL);
        assert_int_equal(chmod(at("closed/config.json"), 0), 0);
        memset(&e, 0, sizeof e);
        expect_fail(svc_repo_load("closed", NULL, 0, NULL, 0, &e), &e, 500, "cannot open");
        assert_int_equal(chmod(at("closed/config.json"), 0644), 0);
    }
    svc_repo_shutdown();

    /* the repository itself: missing, or not a folder */
    svc_cfg = svc_config_defaults();
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_init(at("missing"), &e), &e, 500, "cannot open the model repository");
    assert_non_null(strstr(e.msg, strerror(ENOENT)));
    svc_repo_shutdown();
    memset(&e, 0, sizeof e);
    expect_fail(svc_repo_init(at("afile"), &e), &e, 500, "cannot open the model repository");
    assert_non_null(strstr(e.msg, strerror(ENOTDIR)));
    svc_repo_shutdown();
    stop();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(load_writes_atomically, teardown),
        cmocka_unit_test_teardown(no_repository, teardown),
        cmocka_unit_test_teardown(recover_leftovers_at_start, teardown),
        cmocka_unit_test_teardown(rescan_follows_the_folder, teardown),
        cmocka_unit_test_teardown(single_model_folder, teardown),
        cmocka_unit_test_teardown(control_modes, teardown),
        cmocka_unit_test_teardown(unload_and_builtins, teardown),
        cmocka_unit_test_teardown(error_paths, teardown),
    };
    return cmocka_run_group_tests_name("repo", tests, NULL, NULL);
}
