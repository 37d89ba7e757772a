#!/usr/bin/env bash
# deploy/test.sh BUILD_DIR — the deployment files, checked and exercised.
#
#  1. kubectl kustomize deploy/k8s renders; the objects are parsed and checked
#     (probes, ports, resources, non-root, model volume, grace period vs. drain,
#     selectors, HPA, PDB, the Ingress objects of sequence routing, every ATTND_* variable known to `attnd --help`), and
#     broken variants of them must fail the same checks.
#  2. deploy/Dockerfile and deploy/compose.yaml: structure (deps.sh, PORTABLE=1,
#     non-root USER, HEALTHCHECK on /v2/health/ready, ...), with broken variants;
#     `make -n PORTABLE=1` has no -march=native; runtime-packages.sh finds the
#     runtime libraries; the HEALTHCHECK script answers for a live replica;
#     deploy/nginx.conf passes `nginx -t`.
#  3. Three attnd replicas behind nginx (deploy/attnd-proxy.conf) on loopback: a
#     steady stream of requests, one replica SIGTERMed and another SIGKILLed
#     mid-stream, zero failed requests.  A control run without
#     proxy_next_upstream must see failures, or the check proves nothing.
#  4. Sequences (deploy/seqcheck.py): 20 concurrent sequences of 50 tokens on
#     three replicas behind nginx, each sticking to one replica by its id, all
#     within tolerance of the one-shot causal forward; then one replica
#     SIGKILLed mid-sequence: its sequences get 404/502 (never a wrong 200),
#     are restored from exports through nginx and finish bit-exact.
#  5. nginx never sends a sequence request that a replica took (and answered
#     503, or reset) on to another replica; a control with inference's
#     retries must.
#  6. deploy/kserve: the runtime's command line built from its YAML runs and answers
#     its probes; deploy/grafana: the dashboard's queries match the exported metrics.
# Every process started here is stopped on exit.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
D=$TOP/deploy
PY=/usr/bin/python3
W=$(mktemp -d)
PIDS=()
cleanup() {
  # SIGTERM first (nginx's workers outlive a SIGKILLed master), SIGKILL after 5 s.
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null
    ( sleep 5; kill -9 "${PIDS[@]}" 2>/dev/null ) &
    local watchdog=$!
    wait "${PIDS[@]}" 2>/dev/null
    kill "$watchdog" 2>/dev/null
  fi
  rm -rf "$W"
}
trap cleanup EXIT

pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok - $1"; }
no() { fail=$((fail+1)); echo "not ok - $1"; if [ $# -gt 1 ] && [ -f "$2" ]; then sed 's/^/    /' "$2" | head -30; fi; }
t() { local name=$1; shift; if "$@" >"$W/out" 2>&1; then ok "$name"; else no "$name" "$W/out"; fi; }

for f in attnd attn; do
  [ -x "$B/$f" ] || { echo "deploy: $B/$f is missing (run make first)"; exit 1; }
done
"$B/attnd" --help >"$W/help.txt" 2>&1
HAVE_YAML=1
"$PY" -c 'import yaml' 2>/dev/null || HAVE_YAML=0

# ---- 1. Kubernetes --------------------------------------------------------------
if ! command -v kubectl >/dev/null; then
  # Debian's kubernetes-client conflicts with the kubectl some images ship:
  # install it only where there is none.
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null; }
  fi
fi
if command -v kubectl >/dev/null && kubectl kustomize "$D/k8s" >"$W/k8s.yaml" 2>"$W/err"; then
  ok "kubectl kustomize deploy/k8s renders ($(grep -c '^kind:' "$W/k8s.yaml") objects)"
  if [ "$HAVE_YAML" = 1 ]; then
    t "the rendered objects pass the checks" "$PY" "$D/check.py" k8s "$W/k8s.yaml" "$W/help.txt"
    t "broken renderings fail them (23 variants, 11 of them on the Ingress)" "$PY" "$D/check.py" selftest "$W/k8s.yaml" "$W/help.txt"
  else
    # Without python3-yaml: the essentials, by text.
    for want in 'kind: Deployment' 'kind: Service' 'kind: HorizontalPodAutoscaler' 'kind: PodDisruptionBudget' \
                'path: /v2/health/live' 'path: /v2/health/ready' 'runAsNonRoot: true' 'claimName: attnd-models' \
                'kind: Ingress' 'nginx.ingress.kubernetes.io/upstream-hash-by: $http_sequence_id' \
                'nginx.ingress.kubernetes.io/canary-by-header: Sequence-Id'; do
      grep -q "$want" "$W/k8s.yaml" && ok "rendered: $want" || no "rendered: $want"
    done
  fi
else
  no "kubectl kustomize deploy/k8s renders" "$W/err"
fi

# ---- 2. Dockerfile, compose, helpers ---------------------------------------------------
if [ "$HAVE_YAML" = 1 ]; then
  t "Dockerfile: structure" "$PY" "$D/check.py" dockerfile "$D/Dockerfile" "$W/help.txt"
  t "Dockerfile: broken variants fail (7)" "$PY" "$D/check.py" selftest-dockerfile "$D/Dockerfile" "$W/help.txt"
  t "compose.yaml: structure" "$PY" "$D/check.py" compose "$D/compose.yaml" "$W/help.txt"
  t "compose.yaml: broken variants fail (7)" "$PY" "$D/check.py" selftest-compose "$D/compose.yaml" "$W/help.txt"
else
  echo "# python3-yaml is missing: Dockerfile and compose checked by text only"
  for want in 'scripts/deps.sh' 'PORTABLE=1' 'HEALTHCHECK' 'FROM debian:12-slim'; do
    grep -q "$want" "$D/Dockerfile" && ok "Dockerfile: $want" || no "Dockerfile: $want"
  done
  grep -Eq '^USER +(root|0)' "$D/Dockerfile" && no "Dockerfile: non-root USER" || ok "Dockerfile: non-root USER"
fi
make -s -n -B -C "$TOP" PORTABLE=1 BUILD="$W/pb" "$W/pb/attnd" >"$W/portable.txt" 2>&1
make -s -n -B -C "$TOP" BUILD="$W/nb" "$W/nb/attnd" >"$W/native.txt" 2>&1
if grep -q -- ' -O2' "$W/portable.txt" && ! grep -q -- '-march=native' "$W/portable.txt" && grep -q -- '-march=native' "$W/native.txt"; then
  ok "make PORTABLE=1 compiles without -march=native (and plain make with it)"
else
  no "make PORTABLE=1 compiles without -march=native (and plain make with it)" "$W/portable.txt"
fi
if bash "$D/runtime-packages.sh" "$B/attnd" >"$W/pkgs" 2>"$W/err" &&
   grep -qx libjansson4 "$W/pkgs" && grep -qx 'libmicrohttpd12' "$W/pkgs" && grep -qx libuv1 "$W/pkgs" &&
   grep -qx zlib1g "$W/pkgs" &&
   grep -q '^libopenblas0' "$W/pkgs" && ! grep -q -- '-dev$' "$W/pkgs"; then
  ok "runtime-packages.sh: $(tr '\n' ' ' <"$W/pkgs")"
else
  no "runtime-packages.sh finds attnd's runtime libraries" "$W/err"
fi

# ---- replicas and nginx ------------------------------------------------------------------------
# start_replica NAME ARGS...: attnd on a free port; sets RPID and RPORT.
start_replica() {
  local name=$1; shift
  "$B/attnd" --host 127.0.0.1 --port 0 --threads 1 --threads-per-request 1 --http-threads 1 "$@" \
    >"$W/$name.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  for _ in $(seq 100); do
    RPORT=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$W/$name.log" | head -1)
    [ -n "$RPORT" ] && bash "$D/healthcheck.sh" "$RPORT" && return 0
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "replica $name did not become ready:"; cat "$W/$name.log"
  return 1
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nginx NAME PROXY_CONF PORT...: nginx in the foreground of a background job,
# with its own prefix, pid file and logs; sets NPID and NPORT.
start_nginx() {
  local name=$1 proxy=$2; shift 2
  local dir=$W/$name
  mkdir -p "$dir/tmp"
  local user=""
  [ "$(id -u)" = 0 ] && user="user root root;"
  for try in 1 2 3; do
    NPORT=$(free_port)
    {
      echo "$user"
      echo "worker_processes 1; daemon off; master_process on;"
      echo "pid $dir/nginx.pid; error_log $dir/error.log info;"
      echo "events { worker_connections 256; }"
      echo "http {"
      echo "  log_format up '\$uri \$status \$upstream_addr \$upstream_status \$request_time';"
      echo "  access_log $dir/access.log up;"
      for p in client_body proxy fastcgi uwsgi scgi; do echo "  ${p}_temp_path $dir/tmp/$p;"; done
      echo "  upstream attnd {"
      for p in "$@"; do echo "    server 127.0.0.1:$p max_fails=1 fail_timeout=10s;"; done
      echo "    keepalive 16;"
      echo "  }"
      echo "  upstream attnd_sequences {"
      echo "    hash \$attnd_sequence consistent;"
      for p in "$@"; do echo "    server 127.0.0.1:$p max_fails=1 fail_timeout=10s;"; done
      echo "    keepalive 16;"
      echo "  }"
      echo "  include $D/attnd-sequence.conf;"
      echo "  server { listen 127.0.0.1:$NPORT; include $proxy; }"
      echo "}"
    } >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    NPID=$!
    PIDS+=("$NPID")
    for _ in $(seq 50); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NPORT/v2/health/ready")" = 200 ]; then
        return 0
      fi
      kill -0 "$NPID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
  done
  echo "nginx did not start:"; cat "$dir/error.log"
  return 1
}

# The healthcheck of the image against a live and a closed port.
if start_replica hc; then
  t "HEALTHCHECK script: 0 for a ready replica" bash "$D/healthcheck.sh" "$RPORT"
  kill "$RPID"; wait "$RPID" 2>/dev/null
  if bash "$D/healthcheck.sh" "$RPORT"; then no "HEALTHCHECK script: 1 once the replica is gone"; else ok "HEALTHCHECK script: 1 once the replica is gone"; fi
else
  no "start a replica"
fi

# deploy/nginx.conf itself, with the compose names pointed at loopback.
mkdir -p "$W/nt/tmp"
sed -e "s#server attnd:8000#server 127.0.0.1:9#" -e "s#server attnd-attnd-\([0-9]*\):8000#server 127.0.0.1:900\1#" \
    -e "s#/etc/nginx/attnd-proxy.conf#$D/attnd-proxy.conf#" -e "s#/etc/nginx/attnd-sequence.conf#$D/attnd-sequence.conf#" \
    -e "s#pid /tmp/nginx.pid#pid $W/nt/nginx.pid#" "$D/nginx.conf" >"$W/nt/nginx.conf"
NT=(nginx -t -q -p "$W/nt" -c "$W/nt/nginx.conf" -e "$W/nt/error.log")
[ "$(id -u)" = 0 ] && NT+=(-g 'user root root;')
t "deploy/nginx.conf passes nginx -t" "${NT[@]}"

# ---- 3. kill replicas mid-stream behind nginx ----------------------------------------------------
mkdir -p "$W/full"
echo '{"type": "full", "config": {}}' >"$W/full/config.json"
"$PY" "$D/stream.py" inputs "$W/in.safetensors" &&
"$B/attn" run --model "$W/full" --inputs "$W/in.safetensors" --output "$W/ref.safetensors" ||
  { no "stream fixtures"; echo "deploy: $pass passed, $fail failed"; exit 1; }
REQ=${ATTND_DEPLOY_REQUESTS:-600}

# Control: two replicas, no retries.  Killing one must fail some requests.
sed -e 's/^\( *proxy_next_upstream\) .*;/\1 off;/' "$D/attnd-proxy.conf" >"$W/proxy-noretry.conf"
if start_replica c1 && C1=$RPID && P1=$RPORT && start_replica c2 && P2=$RPORT &&
   start_nginx ctl "$W/proxy-noretry.conf" "$P1" "$P2"; then
  exec 3>&2 2>/dev/null # bash would report the SIGKILLed job on stderr
  "$PY" "$D/stream.py" run "http://127.0.0.1:$NPORT" --requests 200 --workers 4 --expect "$W/ref.safetensors" \
    --kill "$C1:SIGKILL:0.3" --summary "$W/control.json" >/dev/null
  kill -9 "$C1" 2>/dev/null; wait "$C1"  # (the stream killed it, unless it crashed)
  exec 2>&3 3>&-
  cf=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed"])' "$W/control.json" 2>/dev/null || echo 0)
  if [ "${cf:-0}" -gt 0 ]; then ok "control without proxy_next_upstream: $cf of 200 requests failed (the check can fail)"
  else no "control without proxy_next_upstream: some requests fail" "$W/control.json"; fi
  kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
else
  no "control: start two replicas and nginx"
fi

# The real run: three replicas, the shipped proxy settings.
if start_replica r1 --shutdown-delay 0.5 --drain-timeout 10 && R1=$RPID && P1=$RPORT &&
   start_replica r2 && R2=$RPID && P2=$RPORT &&
   start_replica r3 && R3=$RPID && P3=$RPORT &&
   start_nginx lb "$D/attnd-proxy.conf" "$P1" "$P2" "$P3"; then
  exec 3>&2 2>/dev/null
  "$PY" "$D/stream.py" run "http://127.0.0.1:$NPORT" --requests "$REQ" --workers 4 --expect "$W/ref.safetensors" \
    --kill "$R1:SIGTERM:0.25" --kill "$R2:SIGKILL:0.5" --summary "$W/run.json" >"$W/run.out" 2>&1
  src=$?
  r2st=none
  grep -q '"SIGKILL"' "$W/run.json" 2>/dev/null && { wait "$R2"; r2st=$?; }
  exec 2>&3 3>&-
  sed 's/^/    /' "$W/run.json" 2>/dev/null | tr -d '\n' | sed 's/  */ /g'; echo
  if [ "$src" = 0 ]; then ok "$REQ requests through nginx, replica 1 SIGTERMed at 25%, replica 2 SIGKILLed at 50%: 0 failed"
  else no "$REQ requests through nginx with two replicas killed: 0 failed" "$W/run.out"; fi
  after=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok_after_last_kill"])' "$W/run.json" 2>/dev/null || echo 0)
  [ "${after:-0}" -ge $((REQ / 3)) ] && ok "the stream went on after the kills ($after requests answered by the survivor)" ||
    no "the stream went on after the kills (only ${after:-0})"
  # The SIGTERMed replica drained and exited cleanly; the SIGKILLed one is gone.
  for _ in $(seq 100); do kill -0 "$R1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$R1" 2>/dev/null; then no "replica 1 exits within 10 s of SIGTERM" "$W/r1.log"
  else wait "$R1"; st=$?; [ "$st" = 0 ] && ok "replica 1 exited 0 after draining" || no "replica 1 exited 0 after draining (status $st)" "$W/r1.log"; fi
  [ "$r2st" = 137 ] && ok "replica 2 died of SIGKILL" || no "replica 2 died of SIGKILL (status $r2st)"
  # What nginx saw: retries, and who served.
  curl -s "http://127.0.0.1:$P3/metrics" >"$W/metrics.txt"
  kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
  log=$W/lb/access.log
  I=/v2/models/full/infer
  n200=$(grep -c "^$I 200 " "$log"); retried=$(grep -c "^$I 200 [^ ]*, " "$log")
  served() { grep -c "^$I 200 \\([^ ]*, \\)*127.0.0.1:$1 " "$log"; }
  echo "    nginx: $n200 inferences answered 200, $retried of them after trying another replica first;" \
       "last replica tried: r1 $(served "$P1"), r2 $(served "$P2"), r3 $(served "$P3")"
  [ "$(served "$P1")" -gt 0 ] && [ "$(served "$P2")" -gt 0 ] && [ "$(served "$P3")" -gt 0 ] &&
    ok "every replica served requests before the kills" || no "every replica served requests before the kills"
  m3=$(sed -n 's/^attnd_inference_request_success{model="full"[^}]*protocol="http"[^}]*} \([0-9]*\)$/\1/p' "$W/metrics.txt")
  [ -n "$m3" ] && [ "$m3" = "$(served "$P3")" ] &&
    ok "replica 3's attnd_inference_request_success{model=\"full\"} = $m3 = the requests nginx logged for it" ||
    no "replica 3's attnd_inference_request_success matches nginx's log (${m3:-none} vs $(served "$P3"))"
  grep -Eq '^[^ ]* (502|503|504) ' "$log" && no "nginx answered no 5xx to the client" "$log" || ok "nginx answered no 5xx to the client"
else
  no "start three replicas and nginx"
fi

# ---- 4. sequences behind nginx: one replica each, one SIGKILLed mid-sequence ------------------------
# deploy/seqcheck.py says what it checks.  The replicas force the same gemm
# (ATTN_GEMM): a restored sequence continues bit for bit on another replica
# only when both compute the same way, and a per-process calibration may not.
if ATTN_GEMM=openblas start_replica s1 && S1=$RPID && P1=$RPORT &&
   ATTN_GEMM=openblas start_replica s2 && S2=$RPID && P2=$RPORT &&
   ATTN_GEMM=openblas start_replica s3 && S3=$RPID && P3=$RPORT &&
   start_nginx seq "$D/attnd-proxy.conf" "$P1" "$P2" "$P3"; then
  exec 3>&2 2>/dev/null
  "$PY" "$D/seqcheck.py" run "http://127.0.0.1:$NPORT" --replica "http://127.0.0.1:$P1,$S1" \
    --replica "http://127.0.0.1:$P2,$S2" --replica "http://127.0.0.1:$P3,$S3" --summary "$W/seq.json" >"$W/seq.out" 2>&1
  src=$?
  exec 2>&3 3>&-
  sed 's/^/    /' "$W/seq.json" 2>/dev/null | tr -d '\n' | sed 's/  */ /g'; echo
  if [ "$src" = 0 ]; then
    ok "20 sequences x 50 tokens through nginx, each on one replica, within tolerance of the one-shot causal forward; one replica SIGKILLed: its sequences got 404/502, were restored from exports and finished bit-exact"
  else
    no "sequences through nginx with a replica SIGKILLed mid-sequence" "$W/seq.out"
  fi
  kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
else
  no "sequences: start three replicas and nginx"
fi

# ---- 5. no replay of a sequence request onto a second replica ---------------------------------------
# nginx over a stand-in replica (seqcheck.py fake: takes a sequence request,
# then answers 503 or resets) and a real one.  The client must get the 503 or
# a 502; the real replica must never see the request.  Control: with the
# inference location's retries (http_503, non_idempotent) it does.
FP=$(free_port)
"$PY" "$D/seqcheck.py" fake "$FP" "$W/fake.log" >"$W/fake.out" 2>&1 &
PIDS+=("$!")
sed -e 's/^\( *proxy_next_upstream error timeout\);$/\1 http_502 http_503 non_idempotent;/' "$D/attnd-proxy.conf" >"$W/proxy-replay.conf"
if ! grep -q 'proxy_next_upstream error timeout http_502 http_503 non_idempotent;' "$W/proxy-replay.conf" ||
   cmp -s "$D/attnd-proxy.conf" "$W/proxy-replay.conf"; then
  no "replay control: the sequence location's proxy_next_upstream line was not found"
elif start_replica f1 && F1=$RPID && PF1=$RPORT && start_nginx rp "$D/attnd-proxy.conf" "$FP" "$PF1"; then
  : >"$W/fake.log"
  t "a sequence request that a replica took and failed (503, reset) is not sent on to another" \
    "$PY" "$D/seqcheck.py" replay "http://127.0.0.1:$NPORT" --real "http://127.0.0.1:$PF1" --fake-log "$W/fake.log"
  kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
  # One nginx per case: after a reset (or a 503 it retries) nginx leaves the fake alone.
  for mode in u:503 r:reset; do
    if start_nginx "rpc-${mode%%:*}" "$W/proxy-replay.conf" "$FP" "$PF1"; then
      : >"$W/fake.log"
      if "$PY" "$D/seqcheck.py" replay "http://127.0.0.1:$NPORT" --real "http://127.0.0.1:$PF1" --fake-log "$W/fake.log" \
           --modes "${mode%%:*}" >"$W/replay-ctl.out" 2>&1 || ! grep -q 'sent it on to the real replica' "$W/replay-ctl.out"; then
        no "replay control (${mode#*:}): with http_503 non_idempotent for sequences, nginx replays onto the real replica" "$W/replay-ctl.out"
      else
        ok "replay control (${mode#*:}): with http_503 non_idempotent for sequences, nginx replays onto the real replica"
      fi
      kill "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null
    else
      no "replay control: start nginx"
    fi
  done
else
  no "replay: start a replica and nginx over the stand-in"
fi

# ---- 6. KServe and Grafana -------------------------------------------------------------------------
# The ClusterServingRuntime's command line, built from its YAML, run against a
# storage-initializer layout; the dashboard's queries against a live attnd.
if [ "$HAVE_YAML" = 1 ]; then
  t "kserve: the runtime YAML runs as written (deploy/kserve/check.py)" "$PY" "$D/kserve/check.py" "$B"
else
  no "kserve: python3-yaml is missing (make test-deps)"
fi
t "grafana: every dashboard query names exported metrics and labels (deploy/grafana/check.py)" "$PY" "$D/grafana/check.py" "$B"

echo "deploy: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
