/*
 * grpc_infer.c — ModelInfer and each message of ModelStreamInfer.
 */
#include "grpc_pb.h"

void svc_grpc_infer(svc_gcall *c, const unsigned char *msg, size_t len) {
    (void)msg;
    (void)len;
    svc_reply rep;
    svc_reply_init(&rep);
    svc_reply_error(&rep, 405, "not yet");
    svc_gcall_reply(c, &rep);
}
