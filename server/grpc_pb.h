/*
 * grpc_pb.h — protobuf messages for the gRPC handlers: budgeted unpacking,
 * packing into a reply, and the checks of a model argument.
 */
#ifndef SVC_GRPC_PB_H
#define SVC_GRPC_PB_H

#include "codec.h"
#include "grpc.h"
#include "grpc_service.pb-c.h" /* generated from proto/grpc/grpc_service.proto */

/* An unpacked message and the allocator that owns it. */
typedef struct svc_pb_msg svc_pb_msg;
/* Unpacks p[0, n) as a d; *msg points into the returned handle.  NULL and
 * 400 (not such a message) or 413 (over the memory budget: 4 bytes per
 * byte plus 1 MiB) or 503 in *e. */
svc_pb_msg *svc_pb_unpack(const ProtobufCMessageDescriptor *d, const unsigned char *p, size_t n, void **msg,
                          svc_err *e);
void svc_pb_free(svc_pb_msg *h);
/* rep = status 200, body = m packed. */
void svc_pb_reply(svc_reply *rep, const ProtobufCMessage *m);
/* 0, or 404 for a version but "" and "1", and `bad` (400 or 404) for a
 * name that is not a model name. */
int svc_grpc_model_arg(const char *name, const char *version, int bad, svc_err *e);

/* grpc_infer.c: ModelInfer and ModelStreamInfer's messages. */
void svc_grpc_infer(svc_gcall *c, const unsigned char *msg, size_t len);
/* The codec alone (svc_infer_front's decode and encode; the fuzz target):
 * a ModelInferRequest's bytes into *w, whose binary inputs point into *keep
 * (free it with svc_grpc_keep_free after w), and the outputs into a
 * serialised ModelInferResponse (body, and the last raw output in tail). */
int svc_grpc_decode(const unsigned char *msg, size_t len, svc_wire *w, void **keep, svc_err *e);
void svc_grpc_keep_free(void *keep);
void svc_grpc_encode(const svc_wire_result *res, svc_wire_out *outs, size_t n, svc_reply *reply);

#endif
