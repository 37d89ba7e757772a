/*
 * cpu_count.c — how many CPUs this process may use: the affinity mask,
 * capped by the cgroup CPU quota (a container limited to 2 CPUs on a
 * 64-core host gets 2, not 64).  The default thread count of attnd and of
 * `attn run` / `attn bench`.
 *
 * The quota is the smallest one on the way from the process's cgroup
 * (/proc/self/cgroup) up to the root of its hierarchy, the mount point
 * included (a container usually sees its own cgroup there): cgroup v2
 * `cpu.max` ("QUOTA PERIOD", or "max PERIOD" for none) under the mount
 * point, v1 `cpu.cfs_quota_us` (-1: none) / `cpu.cfs_period_us` under
 * its `cpu` folder.  ATTN_CGROUP_ROOT replaces /sys/fs/cgroup and
 * ATTN_CGROUP_SELF /proc/self/cgroup (tests use a fake folder).
 */
#include "attn.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The CPU quota of one cgroup folder, in CPUs; 0 when it has none (or no
 * such file). */
static double folder_quota(const char *dir, int v2) {
    char path[4200];
    long long quota = -1, period = 0;
    if (snprintf(path, sizeof path, v2 ? "%s/cpu.max" : "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = v2 ? fscanf(f, "%lld %lld", &quota, &period) : fscanf(f, "%lld", &quota);
    fclose(f);
    if (n < 1 || quota <= 0) return 0; /* "max" does not parse: no quota */
    if (!v2) {
        if (snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path) return 0;
        if (!(f = fopen(path, "r"))) return 0;
        n = fscanf(f, "%lld", &period);
        fclose(f);
        if (n < 1) return 0;
    }
    return period > 0 ? (double)quota / (double)period : 0;
}

/* The smallest quota from mount + rel up to mount itself; 0: none. */
static double path_quota(const char *mount, const char *rel, int v2) {
    char dir[4200];
    if (snprintf(dir, sizeof dir, "%s%s", mount, strcmp(rel, "/") ? rel : "") >= (int)sizeof dir) return 0;
    double best = 0;
    for (;;) {
        double q = folder_quota(dir, v2);
        if (q > 0 && (best == 0 || q < best)) best = q;
        if (strlen(dir) <= strlen(mount)) break;
        char *slash = strrchr(dir, '/');
        if (!slash || slash < dir + strlen(mount)) break;
        *slash = '\0';
    }
    return best;
}

static double min_quota(double a, double b) { return a > 0 && (b <= 0 || a < b) ? a : b; }

/* The cgroup CPU quota in CPUs, 0 for none: v2 and v1 hierarchies both
 * looked at (the smaller binds). */
static double cgroup_quota(void) {
    const char *root = getenv("ATTN_CGROUP_ROOT");
    if (!root || !*root) root = "/sys/fs/cgroup";
    char rel2[4096] = "/", rel1[4096] = "/", line[4096];
    const char *self = getenv("ATTN_CGROUP_SELF");
    FILE *f = fopen(self && *self ? self : "/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = '\0';
        char *ctrl = a + 1, *p = b + 1;
        p[strcspn(p, "\n")] = '\0';
        if (strncmp(line, "0:", 2) == 0 && !*ctrl) {
            snprintf(rel2, sizeof rel2, "%s", p);
            continue;
        }
        char *save = NULL;
        for (char *c = strtok_r(ctrl, ",", &save); c; c = strtok_r(NULL, ",", &save))
            if (strcmp(c, "cpu") == 0) snprintf(rel1, sizeof rel1, "%s", p);
    }
    if (f) fclose(f);
    char v1[4200];
    double q2 = path_quota(root, rel2, 1);
    if (snprintf(v1, sizeof v1, "%s/cpu", root) >= (int)sizeof v1) return q2;
    return min_quota(q2, path_quota(v1, rel1, 0));
}

int attn_cpu_count(void) {
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    double q = cgroup_quota();
    if (q > 0 && q < n) n = (int)ceil(q - 1e-9);
    return n > 0 ? n : 1;
}
