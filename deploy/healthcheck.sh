#!/bin/bash
# Exit 0 when attnd on this host answers 200 on /v2/health/ready, else 1.
# The image has no curl: bash's /dev/tcp does.  Port: $ATTND_PORT (8000).
port=${1:-${ATTND_PORT:-8000}}
{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || exit 1
printf 'GET /v2/health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
IFS= read -r -t 5 line <&3 || exit 1
case "$line" in
  "HTTP/1."?" 200 "*) exit 0 ;;
esac
exit 1
