/*
 * ui.c — the explorer page at /ui/: the files of ui/ (index.html, its
 * script and style sheet), compiled into attnd by scripts/embed_ui.sh
 * (BUILD/gen/ui_files.h), so that nothing is read from disk or fetched from
 * elsewhere.  The files are static and hold no secret: the page asks for a
 * token itself when the API needs one.  --ui turns the page on or off
 * (default: on when --host is a loopback address).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ui_files.h"

void svc_api_ui(svc_req *r) {
    svc_reply rep;
    svc_reply_init(&rep);
    const char *name = svc_req_arg(r);
    if (!*name) name = "index.html";
    if (!svc_cfg.ui) {
        svc_reply_error(&rep, 404, "the explorer page is off (attnd --ui turns it on)");
        svc_req_reply(r, &rep);
        return;
    }
    const svc_ui_file *f = NULL;
    for (size_t i = 0; i < sizeof svc_ui_files / sizeof svc_ui_files[0]; i++)
        if (strcmp(svc_ui_files[i].name, name) == 0) f = &svc_ui_files[i];
    if (!f) {
        svc_reply_error(&rep, 404, "the explorer page has no file '%.64s'", name);
        svc_req_reply(r, &rep);
        return;
    }
    rep.body = malloc(f->len + 1); /* the reply owns its body */
    if (!rep.body) {
        svc_reply_error(&rep, 503, "out of memory");
    } else {
        memcpy(rep.body, f->data, f->len);
        rep.len = f->len;
        rep.status = 200;
        rep.ctype = f->ctype;
    }
    svc_req_reply(r, &rep);
}
