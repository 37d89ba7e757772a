/*
 * repo_watch.h — --model-control-mode poll: watching the repository.
 */
#ifndef SVC_REPO_WATCH_H
#define SVC_REPO_WATCH_H

#include <stdatomic.h>
#include <uv.h>

#include "svc.h"

/* Loop thread.  A no-op unless poll mode has a repository.  0, or the
 * status in *e. */
int svc_repo_watch_start(uv_loop_t *loop, svc_err *e);
void svc_repo_watch_stop(void);  /* closes the handles (the loop then ends) */
void svc_repo_watch_free(void);  /* after the loop has run out */
uint64_t svc_repo_watch_rescans(void);

#endif
