#!/usr/bin/env bash
# Installs the Debian packages attnd needs when pkg-config cannot find them.
# Used by `make deps`, CI and deploy/Dockerfile alike.  Needs root (or sudo).
set -euo pipefail
need=()
pkg-config --exists openblas     || need+=(libopenblas-dev)
pkg-config --exists jansson      || need+=(libjansson-dev)
pkg-config --exists libmicrohttpd || need+=(libmicrohttpd-dev)
pkg-config --exists libuv        || need+=(libuv1-dev)
pkg-config --exists zlib         || need+=(zlib1g-dev)
pkg-config --exists libnghttp2   || need+=(libnghttp2-dev)       # the gRPC listener's HTTP/2
pkg-config --exists libprotobuf-c || need+=(libprotobuf-c-dev)   # its messages
command -v protoc-c >/dev/null   || need+=(protobuf-c-compiler)  # generates them from proto/grpc at build time
pkg-config --exists cmocka       || need+=(libcmocka-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cc >/dev/null         || need+=(build-essential)
command -v curl >/dev/null       || need+=(curl)
# --test: what the integration, client and deployment tests use.
if [ "${1:-}" = "--test" ]; then
  command -v curl >/dev/null          || need+=(curl)
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3 python3-numpy)
  /usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
  /usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
  pkg-config --exists libcurl         || need+=(libcurl4-openssl-dev)
  command -v nginx >/dev/null         || need+=(nginx-light)
  command -v node >/dev/null          || need+=(nodejs)
  command -v npm >/dev/null           || need+=(npm)
  command -v clang >/dev/null         || need+=(clang)
  /usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
  /usr/bin/python3 -c 'import pip, setuptools, wheel' 2>/dev/null || need+=(python3-pip python3-setuptools python3-wheel)
  command -v tsc >/dev/null           || need+=(node-typescript)
  command -v kubectl >/dev/null       || need+=(kubernetes-client)
  dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
  command -v wrk >/dev/null           || need+=(wrk)  # tests/soak
  command -v chromium >/dev/null      || need+=(chromium)  # ui/test.sh (headless, driven by playwright-core)
  /usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)          # tests/integration/t_grpc.py
  /usr/bin/python3 -c 'import grpc_tools' 2>/dev/null || need+=(python3-grpc-tools) # its stubs, from proto/grpc
  command -v h2load >/dev/null        || need+=(nghttp2-client)  # bench/server: gRPC load
fi
for p in ${ATTND_DEPS_EXTRA:-}; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
