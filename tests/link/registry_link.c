/*
 * registry_link.c — a plain program linked against libattn.a without
 * --whole-archive (see the Makefile): it must get every mechanism of
 * core/mechs.def, each found by its name.  Exit status 0 on success.
 */
#include "attn.h"

#include <stdio.h>
#include <string.h>

static const char *const listed[] = {
#define X(ident) #ident,
#include "mechs.def"
#undef X
};

int main(void) {
    size_t want = sizeof listed / sizeof listed[0];
    int bad = 0;
    if (attn_mech_count() != want) {
        fprintf(stderr, "registry_link: attn_mech_count() = %zu, mechs.def lists %zu\n", attn_mech_count(), want);
        bad = 1;
    }
    for (size_t i = 0; i < want; i++) {
        const attn_mech_info *m = attn_mech_find(listed[i]);
        if (!m || strcmp(m->name, listed[i]) != 0) {
            fprintf(stderr, "registry_link: '%s' not found\n", listed[i]);
            bad = 1;
        }
        const attn_mech_info *at = attn_mech_at(i);
        if (at != m) {
            fprintf(stderr, "registry_link: attn_mech_at(%zu) is not '%s'\n", i, listed[i]);
            bad = 1;
        }
    }
    if (attn_mech_at(want) != NULL) {
        fprintf(stderr, "registry_link: attn_mech_at(%zu) past the end is not NULL\n", want);
        bad = 1;
    }
    if (!bad) printf("registry_link: %zu mechanisms, all found\n", want);
    return bad;
}
