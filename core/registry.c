/*
 * registry.c — type name -> mechanism vtable.  The list itself lives in
 * mechs.def; this file only turns it into a table and looks names up
 * (canonical names and the reference library's hyphenated aliases).
 */
#include "attn_internal.h"

#include <string.h>

/* Weak while mechanisms are being written in parallel: a missing one is
 * simply absent from the table.  ATTN_STRICT_REGISTRY makes them strong. */
#ifdef ATTN_STRICT_REGISTRY
#define X(ident) extern const attn_mech attn_mech_##ident;
#else
#define X(ident) extern const attn_mech attn_mech_##ident __attribute__((weak));
#endif
#include "mechs.def"
#undef X

static const attn_mech *const mechs[] = {
#define X(ident) &attn_mech_##ident,
#include "mechs.def"
#undef X
};

#define N_MECHS (sizeof mechs / sizeof mechs[0])

size_t attn_mech_count(void) {
    size_t n = 0;
    for (size_t i = 0; i < N_MECHS; i++) n += mechs[i] != NULL;
    return n;
}

const attn_mech_info *attn_mech_at(size_t i) {
    for (size_t j = 0; j < N_MECHS; j++) {
        if (!mechs[j]) continue;
        if (i-- == 0) return &mechs[j]->info;
    }
    return NULL;
}

const attn_mech *attn__mech_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MECHS; i++) {
        const attn_mech *m = mechs[i];
        if (!m) continue;
        if (strcmp(m->info.name, name) == 0) return m;
        for (const char *const *a = m->info.aliases; a && *a; a++)
            if (strcmp(*a, name) == 0) return m;
    }
    return NULL;
}

const attn_mech_info *attn_mech_find(const char *name) {
    const attn_mech *m = attn__mech_find(name);
    return m ? &m->info : NULL;
}
