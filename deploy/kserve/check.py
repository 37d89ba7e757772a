"""Tests deploy/kserve/ by running what it describes:

  /usr/bin/python3 deploy/kserve/check.py BUILD_DIR

1. The ClusterServingRuntime: apiVersion serving.kserve.io/v1alpha1, the
   model format attnd version "1" with autoSelect, protocolVersions [v2], a
   container listening on 8080 whose probes are /v2/health/live and
   /v2/health/ready on that port, the Prometheus annotations on the same port
   and path /metrics, non-root securityContext, resources; and the
   InferenceService example selects it (format, protocol, runtime,
   storageUri).
2. The container's command line is built from the YAML: command + args + env,
   the template variable {{.Name}} replaced by the InferenceService's name,
   /mnt/models by a folder laid out as KServe's storage initializer lays it
   out (one model's files at its top), the image's /usr/local/bin/attnd by
   BUILD_DIR/attnd, and the port by a free one (the YAML's own, 8080, is
   checked to be the one in the args).  That process must answer the probes,
   serve the model under the InferenceService's name, infer, and export
   /metrics; then the same with a repository of model folders.
3. Broken copies of the runtime (a wrong probe path, a port the probes do not
   use, no autoSelect, a missing {{.Name}}) must fail the checks of step 1.
Exit 0 when every check holds."""
import copy
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def ok(cond, what):
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        failures.append(what)


def runtime_errors(rt, isvc):
    e = []
    if rt.get("apiVersion") != "serving.kserve.io/v1alpha1" or rt.get("kind") != "ClusterServingRuntime":
        e.append("apiVersion/kind")
    spec = rt.get("spec", {})
    fmts = spec.get("supportedModelFormats", [])
    if not any(f.get("name") == "attnd" and f.get("version") == "1" and f.get("autoSelect") is True for f in fmts):
        e.append("no supportedModelFormats attnd version 1 with autoSelect")
    if spec.get("protocolVersions") != ["v2"]:
        e.append("protocolVersions must be [v2]")
    cs = spec.get("containers", [])
    if len(cs) != 1 or cs[0].get("name") != "kserve-container":
        e.append("one container named kserve-container")
        return e
    c = cs[0]
    ports = [p.get("containerPort") for p in c.get("ports", [])]
    if ports != [8080]:
        e.append(f"the container must listen on 8080 (ports {ports})")
    args = c.get("args", [])
    if "--port=8080" not in args:
        e.append("--port=8080 not in args")
    if "--model-repository=/mnt/models" not in args:
        e.append("--model-repository=/mnt/models not in args")
    if not any(a == "--model-name={{.Name}}" for a in args):
        e.append("--model-name={{.Name}} not in args")
    if "--host=0.0.0.0" not in args:
        e.append("--host=0.0.0.0 not in args (the kubelet probes the pod's address)")
    for probe, path in (("livenessProbe", "/v2/health/live"), ("readinessProbe", "/v2/health/ready")):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != path or g.get("port") not in ports:
            e.append(f"{probe} must GET {path} on the container port (has {g})")
    ann = spec.get("annotations", {})
    if str(ann.get("prometheus.kserve.io/port")) not in [str(p) for p in ports] or ann.get("prometheus.kserve.io/path") != "/metrics":
        e.append("Prometheus annotations must name the container port and /metrics")
    sc = c.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or not sc.get("runAsUser") or sc.get("allowPrivilegeEscalation") is not False:
        e.append("non-root securityContext")
    r = c.get("resources", {})
    if not r.get("requests", {}).get("cpu") or not r.get("limits", {}).get("memory"):
        e.append("resources: requests and limits")
    m = isvc.get("spec", {}).get("predictor", {}).get("model", {})
    if isvc.get("apiVersion") != "serving.kserve.io/v1beta1" or isvc.get("kind") != "InferenceService":
        e.append("InferenceService apiVersion/kind")
    if m.get("modelFormat", {}).get("name") != "attnd" or m.get("runtime") != rt["metadata"]["name"] or \
            m.get("protocolVersion") != "v2" or not m.get("storageUri"):
        e.append("the InferenceService must select the runtime (format attnd, protocol v2, runtime, storageUri)")
    return e


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(port, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST" if body is not None else "GET", path, body=json.dumps(body).encode() if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def command_line(rt, name, models, build, port):
    c = rt["spec"]["containers"][0]
    def sub(a):
        a = a.replace("{{.Name}}", name).replace("/mnt/models", models).replace("--port=8080", f"--port={port}")
        return a.replace("--host=0.0.0.0", "--host=127.0.0.1")  # loopback here; the pod's address there
    cmd = [os.path.join(build, "attnd") if x == "/usr/local/bin/attnd" else x for x in c.get("command", [])]
    env = dict(os.environ)
    env.update({v["name"]: str(v["value"]) for v in c.get("env", [])})
    env["ATTND_SHUTDOWN_DELAY"] = "0"  # the pod's delay, not needed here
    return cmd + [sub(a) for a in c.get("args", [])], env


def serve_and_check(rt, isvc, build, models, served, label):
    name = isvc["metadata"]["name"]
    port = free_port()
    cmd, env = command_line(rt, name, models, build, port)
    ok(cmd[0] == os.path.join(build, "attnd"), f"{label}: the command is attnd")
    log = open(os.path.join(models, "..", f"{label}.log"), "w")
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        c = rt["spec"]["containers"][0]
        live, ready = c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]
        t0 = time.time()
        st = 0
        while time.time() - t0 < 30 and p.poll() is None:
            try:
                st = get(port, ready)[0]
                if st == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        ok(st == 200, f"{label}: the readiness probe {ready} answers 200")
        ok(get(port, live)[0] == 200, f"{label}: the liveness probe {live} answers 200")
        st, b = get(port, f"/v2/models/{served}")
        ok(st == 200, f"{label}: model '{served}' is served ({st})")
        t = lambda n: {"name": n, "datatype": "FP32", "shape": [1, 2, 1, 2], "data": [1, 0, 0, 1]}  # noqa: E731
        st, b = get(port, f"/v2/models/{served}/infer", {"inputs": [t("queries"), t("keys"), t("values")]})
        ok(st == 200 and json.loads(b)["outputs"][0]["shape"] == [1, 2, 1, 2], f"{label}: infer answers ({st})")
        st, b = get(port, rt["spec"]["annotations"]["prometheus.kserve.io/path"])
        ok(st == 200 and b"attnd_inference_request_success" in b, f"{label}: /metrics on the same port")
    finally:
        p.terminate()
        rc = p.wait(timeout=30)
        log.close()
        ok(rc == 0, f"{label}: attnd exits 0 on SIGTERM")


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    with open(os.path.join(HERE, "cluster-serving-runtime.yaml")) as f:
        rt = yaml.safe_load(f)
    with open(os.path.join(HERE, "inference-service.yaml")) as f:
        isvc = yaml.safe_load(f)
    errs = runtime_errors(rt, isvc)
    ok(not errs, "the runtime and the InferenceService" + (": " + "; ".join(errs) if errs else ""))
    for what, brk in (("probe path", lambda r: r["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(path="/ready")),
                      ("probe port", lambda r: r["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(port=9000)),
                      ("autoSelect", lambda r: r["spec"]["supportedModelFormats"][0].update(autoSelect=False)),
                      ("{{.Name}}", lambda r: r["spec"]["containers"][0]["args"].remove("--model-name={{.Name}}"))):
        b = copy.deepcopy(rt)
        brk(b)
        ok(bool(runtime_errors(b, isvc)), f"a runtime with a broken {what} fails the checks")
    work = tempfile.mkdtemp(prefix="attnd-kserve-")
    try:
        # one model, as the storage initializer downloads it: its files at the top of /mnt/models
        one = os.path.join(work, "mnt-models")
        os.makedirs(one)
        with open(os.path.join(one, "config.json"), "w") as f:
            json.dump({"type": "full", "config": {"softmax_temp": 0.5}}, f)
        serve_and_check(rt, isvc, build, one, isvc["metadata"]["name"], "one model")
        # a repository of model folders
        repo = os.path.join(work, "mnt-repo")
        os.makedirs(os.path.join(repo, "alpha"))
        shutil.copy(os.path.join(one, "config.json"), os.path.join(repo, "alpha", "config.json"))
        serve_and_check(rt, isvc, build, repo, "alpha", "repository")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"kserve: {'FAIL' if failures else 'ok'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
