/*
 * registry.c — type name -> mechanism vtable.  The list itself lives in
 * mechs.def; this file only turns it into a table and looks names up
 * (canonical names and the reference library's hyphenated aliases).
 *
 * Every entry is a strong reference: a mechanism missing from the build is
 * a link error, and a program that links libattn.a without --whole-archive
 * still pulls in every mechanism object through this table.
 */
#include "attn_internal.h"

#include <string.h>

#define X(ident) extern const attn_mech attn_mech_##ident;
#include "mechs.def"
#undef X

static const attn_mech *const mechs[] = {
#define X(ident) &attn_mech_##ident,
#include "mechs.def"
#undef X
};

/* One enumerator per line of mechs.def: the table has exactly that many. */
enum {
#define X(ident) ATTN_MECH_ROW_##ident,
#include "mechs.def"
#undef X
    N_MECHS
};
_Static_assert(sizeof mechs / sizeof mechs[0] == N_MECHS, "registry table and mechs.def disagree");

size_t attn_mech_count(void) { return N_MECHS; }

const attn_mech_info *attn_mech_at(size_t i) { return i < N_MECHS ? &mechs[i]->info : NULL; }

const attn_mech *attn__mech_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MECHS; i++) {
        const attn_mech *m = mechs[i];
        if (strcmp(m->info.name, name) == 0) return m;
        for (const char *const *a = m->info.aliases; a && *a; a++)
            if (strcmp(*a, name) == 0) return m;
    }
    return NULL;
}

int attn_mech_output_doc(const attn_mech_info *info, size_t i, const char **name, const char **dims,
                         const char **doc) {
    const attn_mech *m = info ? attn__mech_find(info->name) : NULL;
    const attn_out_decl *d = m && m->maps ? m->maps->outputs : NULL;
    for (size_t k = 0; d && d[k].name; k++)
        if (k == i) {
            if (name) *name = d[k].name;
            if (dims) *dims = d[k].dims;
            if (doc) *doc = d[k].doc;
            return 1;
        }
    return 0;
}

const attn_mech_info *attn_mech_find(const char *name) {
    const attn_mech *m = attn__mech_find(name);
    return m ? &m->info : NULL;
}
