#!/usr/bin/python3
"""Static checks of the deployment files (deploy/test.sh runs them).

  check.py k8s RENDERED.yaml HELP.txt        the objects `kubectl kustomize deploy/k8s` rendered
  check.py compose deploy/compose.yaml HELP.txt
  check.py dockerfile deploy/Dockerfile HELP.txt
  check.py selftest RENDERED.yaml HELP.txt   broken variants of the rendering must be caught
  check.py selftest-dockerfile deploy/Dockerfile HELP.txt   (and selftest-compose): the same

HELP.txt is `attnd --help`: every ATTND_* variable the files set must be one it
documents.  Prints one line per problem; exits 1 when there is any.
"""
import copy
import os
import re
import shlex
import sys

import yaml


def known_env(help_path):
    with open(help_path) as f:
        return set(re.findall(r"\bATTND_[A-Z_]+\b", f.read()))


def seconds(v):
    """'30s', '1m30s', 30 -> seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    total, ok = 0.0, False
    for num, unit in re.findall(r"([0-9.]+)(h|ms|m|s|us)?", str(v)):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "": 1}[unit]
        ok = True
    if not ok:
        raise ValueError("not a duration: %r" % v)
    return total


def quantity(v):
    """Kubernetes / compose sizes: '2Gi', '512M', '1G', 1024 -> bytes."""
    m = re.fullmatch(r"([0-9.]+)\s*([KMGT]i?|[kmgt]b?|)", str(v))
    if not m:
        raise ValueError("not a size: %r" % v)
    unit = m.group(2)
    mult = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}[unit]
    return float(m.group(1)) * mult


def cpus(v):
    s = str(v)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def bodies_fit(env, memory, threads):
    """Worst case, every queued and running request holds a full body."""
    body = float(env.get("ATTND_MAX_BODY_BYTES", 64 << 20))
    queue = float(env.get("ATTND_MAX_QUEUE", 64))
    need = body * (queue + threads)
    if need >= memory:
        return ["max body %g MiB x (queue %d + threads %d) = %g MiB does not fit the memory limit %g MiB"
                % (body / 2**20, queue, threads, need / 2**20, memory / 2**20)]
    return []


def subset(a, b):
    return bool(a) and all(b.get(k) == v for k, v in a.items())


# ---- Kubernetes ----------------------------------------------------------------

def check_k8s(docs, env_names):
    errs = []
    kinds = {}
    for d in docs:
        kinds.setdefault(d.get("kind"), []).append(d)
    for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
        if len(kinds.get(k, [])) != 1:
            errs.append("want exactly one %s, rendered %d" % (k, len(kinds.get(k, []))))
    services = {x["metadata"]["name"]: x for x in kinds.get("Service", [])}
    if "attnd" not in services:
        errs.append("no Service attnd")
    if errs:
        return errs
    dep, hpa, pdb = (kinds[k][0] for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"))
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in kinds["ConfigMap"]}
    pvcs = {p["metadata"]["name"] for p in kinds.get("PersistentVolumeClaim", [])}
    tpl = dep["spec"]["template"]
    pod_labels = tpl["metadata"].get("labels", {})
    spec = tpl["spec"]
    if not subset(dep["spec"]["selector"].get("matchLabels", {}), pod_labels):
        errs.append("Deployment selector does not match its pod labels")
    cs = [c for c in spec["containers"] if c["name"] == "attnd"]
    if len(cs) != 1:
        return errs + ["no container named attnd"]
    c = cs[0]
    if not c.get("image"):
        errs.append("the attnd container has no image")

    # The environment attnd will see.
    env = {}
    for src in c.get("envFrom", []):
        name = src.get("configMapRef", {}).get("name")
        if name not in configmaps:
            errs.append("envFrom names ConfigMap %r, which is not rendered" % name)
        else:
            env.update(configmaps[name])
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", e.get("valueFrom"))
    for k in env:
        if k.startswith("ATTND_") and k not in env_names:
            errs.append("%s is not an attnd variable (attnd --help)" % k)
    for k in ("ATTND_THREADS", "ATTND_THREADS_PER_REQUEST"):
        if k not in env:
            errs.append("%s is unset: attnd would start a thread per node core, not per requested CPU" % k)

    port = int(env.get("ATTND_PORT", 8000))
    if env.get("ATTND_HOST") not in ("0.0.0.0", "::"):
        errs.append("ATTND_HOST must be 0.0.0.0 (or ::) so that probes and the Service reach the pod, got %r"
                    % env.get("ATTND_HOST"))
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if port not in ports.values():
        errs.append("no containerPort %d (ATTND_PORT)" % port)

    def port_of(ref):
        return ports.get(ref) if isinstance(ref, str) else ref

    for probe, path in (("livenessProbe", "/v2/health/live"), ("readinessProbe", "/v2/health/ready")):
        g = c.get(probe, {}).get("httpGet")
        if not g:
            errs.append("no %s httpGet" % probe)
            continue
        if g.get("path") != path:
            errs.append("%s checks %r, want %s" % (probe, g.get("path"), path))
        if port_of(g.get("port")) != port:
            errs.append("%s port %r is not attnd's port %d" % (probe, g.get("port"), port))

    res = c.get("resources", {})
    for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
        for k in keys:
            if k not in res.get(part, {}):
                errs.append("resources.%s.%s is missing" % (part, k))

    if "memory" in res.get("limits", {}) and "cpu" in res.get("requests", {}):
        errs += bodies_fit(env, quantity(res["limits"]["memory"]), max(1, int(-(-cpus(res["requests"]["cpu"]) // 1))))

    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if non_root is not True or uid in (None, 0):
        errs.append("the pod must run as a non-root user (runAsNonRoot: true, runAsUser != 0)")

    repo = env.get("ATTND_MODEL_REPOSITORY")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if not repo or repo not in mounts:
        errs.append("ATTND_MODEL_REPOSITORY %r is not a volume mount" % repo)
    else:
        v = vols.get(mounts[repo])
        if not v:
            errs.append("the model repository mount names no volume")
        elif "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
            errs.append("the model volume's claim %r is not rendered" % v["persistentVolumeClaim"]["claimName"])

    # SIGTERM -> not ready for SHUTDOWN_DELAY -> drain for DRAIN_TIMEOUT; preStop runs before SIGTERM.
    pre = 0.0
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if cmd[:1] == ["sleep"] and len(cmd) == 2:
        pre = seconds(cmd[1])
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    if sleep:
        pre = float(sleep)
    need = pre + seconds(env.get("ATTND_SHUTDOWN_DELAY", 0)) + seconds(env.get("ATTND_DRAIN_TIMEOUT", 30))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= need:
        errs.append("terminationGracePeriodSeconds %s does not exceed preStop + shutdown delay + drain = %g"
                    % (grace, need))

    for name, svc in services.items():
        if not subset(svc["spec"].get("selector", {}), pod_labels):
            errs.append("the selector of Service %s does not match the pods" % name)
        for p in svc["spec"].get("ports", []):
            if port_of(p.get("targetPort")) != port:
                errs.append("the targetPort %r of Service %s is not attnd's port" % (p.get("targetPort"), name))

    errs += check_ingress(kinds.get("Ingress", []), services, env)

    ref = hpa["spec"]["scaleTargetRef"]
    if ref.get("kind") != "Deployment" or ref.get("name") != dep["metadata"]["name"]:
        errs.append("the HorizontalPodAutoscaler targets %s/%s" % (ref.get("kind"), ref.get("name")))
    lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    if lo < 2 or hi < lo:
        errs.append("HPA replicas %s..%s: want at least 2, max >= min" % (lo, hi))
    for m in hpa["spec"].get("metrics", []):
        if m.get("type") == "Resource" and m["resource"]["name"] not in res.get("requests", {}):
            errs.append("the HPA scales on %s utilisation but the pod requests none" % m["resource"]["name"])

    if not subset(pdb["spec"].get("selector", {}).get("matchLabels", {}), pod_labels):
        errs.append("the PodDisruptionBudget selector does not match the pods")
    if "minAvailable" in pdb["spec"] and int(pdb["spec"]["minAvailable"]) >= lo:
        errs.append("PDB minAvailable >= HPA minReplicas: no node could ever be drained")
    if "maxUnavailable" in pdb["spec"] and int(pdb["spec"]["maxUnavailable"]) < 1:
        errs.append("PDB maxUnavailable < 1: no node could ever be drained")
    return errs


# ingress-nginx's annotation validation (internal/ingress/annotations/parser):
# what a canary-by-header-pattern may contain.
INGRESS_NGINX_REGEX_CHARS = re.compile(r"^[/\-._~a-zA-Z0-9/:" + re.escape("^$[](){}*+?|&=\\") + r"]*$")
A = "nginx.ingress.kubernetes.io/"


def check_ingress(ingresses, services, env):
    """Two Ingress objects for one rule: round robin for everything, and a
    canary by the Sequence-Id header that hashes the id (docs/deploy.md)."""
    errs = []
    canary = [i for i in ingresses if i["metadata"].get("annotations", {}).get(A + "canary") == "true"]
    main = [i for i in ingresses if i not in canary]
    if len(main) != 1 or len(canary) != 1:
        return ["want one Ingress and one canary Ingress for sequences, rendered %d and %d" % (len(main), len(canary))]
    main, canary = main[0], canary[0]
    am, ac = main["metadata"].get("annotations", {}), canary["metadata"].get("annotations", {})

    def routes(ing):
        out = set()
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                out.add((rule.get("host"), p.get("path"), p.get("pathType"), p["backend"]["service"]["name"],
                         str(p["backend"]["service"]["port"].get("name", p["backend"]["service"]["port"].get("number")))))
        return out

    rm, rc = routes(main), routes(canary)
    if main["spec"].get("ingressClassName") != canary["spec"].get("ingressClassName"):
        errs.append("the two Ingress objects have different classes")
    if {r[:3] for r in rm} != {r[:3] for r in rc}:
        errs.append("the canary Ingress routes %s, the main one %s: a canary applies to the same rule only"
                    % (sorted({r[:3] for r in rc}), sorted({r[:3] for r in rm})))
    for what, rs, want in (("main", rm, "attnd"), ("canary", rc, None)):
        for r in rs:
            if r[3] not in services:
                errs.append("the %s Ingress sends %s to Service %s, which is not rendered" % (what, r[1], r[3]))
            if want and r[3] != want:
                errs.append("the main Ingress sends %s to Service %s, not attnd" % (r[1], r[3]))
    if {r[3] for r in rc} & {r[3] for r in rm}:
        errs.append("the canary Ingress needs a Service of its own (ingress-nginx balances a canary backend by it)")
    if A + "upstream-hash-by" in am:
        errs.append("the main Ingress hashes by %r: every request without the header would hash \"\" to one pod"
                    % am[A + "upstream-hash-by"])
    if ac.get(A + "upstream-hash-by") != "$http_sequence_id":
        errs.append("the canary Ingress must hash by $http_sequence_id, has %r" % ac.get(A + "upstream-hash-by"))
    if str(ac.get(A + "canary-by-header", "")).lower() != "sequence-id":
        errs.append("the canary Ingress must be chosen by the Sequence-Id header, is by %r" % ac.get(A + "canary-by-header"))
    if A + "canary-by-header-value" in ac or A + "canary-weight" in ac or A + "canary-by-cookie" in ac:
        errs.append("the canary Ingress is chosen by something besides the header's pattern")
    pat = ac.get(A + "canary-by-header-pattern")
    if not pat:
        errs.append("no canary-by-header-pattern: only the values always/never would choose the canary")
    elif not INGRESS_NGINX_REGEX_CHARS.match(pat):
        errs.append("ingress-nginx's annotation validation refuses the pattern %r (allowed: %s)"
                    % (pat, INGRESS_NGINX_REGEX_CHARS.pattern))
    else:
        for sid, want in (("42", True), ("dec-1.3:x~", True), ("00", True), ("10", True), ("0", False), ("", False),
                          ("a b", False), ("a/b", False)):
            if bool(re.search(pat, sid)) != want:
                errs.append("the canary pattern %r %s the id %r" % (pat, "misses" if want else "takes", sid))
    # The location is shared: the main Ingress's retries apply to sequences too.
    nxt = set(str(am.get(A + "proxy-next-upstream", "error timeout")).split())
    if nxt - {"error", "timeout", "off"}:
        errs.append("proxy-next-upstream %r: a sequence's 5xx (its owner's answer) or a step already sent must not "
                    "go to another pod; keep to error timeout" % am.get(A + "proxy-next-upstream"))
    body = am.get(A + "proxy-body-size")
    if body is None or quantity(body.replace("k", "Ki").replace("m", "Mi").replace("g", "Gi")) < \
            float(env.get("ATTND_MAX_BODY_BYTES", 64 << 20)):
        errs.append("proxy-body-size %r is below ATTND_MAX_BODY_BYTES (ingress-nginx's default is 1m)" % body)
    rt = am.get(A + "proxy-read-timeout")
    if rt is None or seconds(rt) <= seconds(env.get("ATTND_TIMEOUT", 60)):
        errs.append("proxy-read-timeout %r does not exceed ATTND_TIMEOUT" % rt)
    return errs


def selftest(docs, env_names):
    """Each mutation breaks one rule; check_k8s must notice every one."""
    def dep(d):
        return next(x for x in d if x["kind"] == "Deployment")

    def container(d):
        return dep(d)["spec"]["template"]["spec"]["containers"][0]

    def cm(d):
        return next(x for x in d if x["kind"] == "ConfigMap")

    def kind(d, k):
        return next(x for x in d if x["kind"] == k)

    def ingress(d, is_canary):
        return next(x for x in d if x["kind"] == "Ingress" and
                    (x["metadata"].get("annotations", {}).get(A + "canary") == "true") == is_canary)

    def ann(d, is_canary):
        return ingress(d, is_canary)["metadata"]["annotations"]

    mutations = {
        "readiness on /v2/health/live": lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/v2/health/live"),
        "liveness probe removed": lambda d: container(d).pop("livenessProbe"),
        "grace period 10 s": lambda d: dep(d)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=10),
        "runs as root": lambda d: (dep(d)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
                                   container(d).setdefault("securityContext", {}).update(runAsUser=0)),
        "misspelt variable": lambda d: cm(d)["data"].update(ATTND_MAX_BODY="1"),
        "listens on loopback": lambda d: cm(d)["data"].update(ATTND_HOST="127.0.0.1"),
        "Service selects other pods": lambda d: next(x for x in d if x["kind"] == "Service" and
                                                     x["metadata"]["name"] == "attnd")["spec"].update(selector={"app": "other"}),
        "HPA targets another Deployment": lambda d: kind(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="x"),
        "no memory limit": lambda d: container(d)["resources"]["limits"].pop("memory"),
        "models not mounted": lambda d: container(d).update(volumeMounts=[]),
        "PDB blocks every drain": lambda d: kind(d, "PodDisruptionBudget")["spec"].update(maxUnavailable=0),
        "bodies beyond the memory limit": lambda d: cm(d)["data"].update(ATTND_MAX_BODY_BYTES=str(256 << 20)),
        "no canary Ingress": lambda d: d.remove(ingress(d, True)),
        "the canary hashes another header": lambda d: ann(d, True).update({A + "upstream-hash-by": "$http_x_id"}),
        "the main Ingress hashes everything": lambda d: ann(d, False).update({A + "upstream-hash-by": "$http_sequence_id"}),
        "the canary by another header": lambda d: ann(d, True).update({A + "canary-by-header": "X-Sequence"}),
        "a canary pattern ingress-nginx refuses": lambda d: ann(d, True).update(
            {A + "canary-by-header-pattern": "^(?!0$)[A-Za-z0-9._:~-]{1,128}$"}),
        "a canary pattern that takes 0": lambda d: ann(d, True).update({A + "canary-by-header-pattern": "^.+$"}),
        "the canary on another path": lambda d: ingress(d, True)["spec"]["rules"][0]["http"]["paths"][0].update(path="/v2"),
        "the canary on the main Service": lambda d: ingress(d, True)["spec"]["rules"][0]["http"]["paths"][0]["backend"][
            "service"].update(name="attnd"),
        "the sequence Service selects other pods": lambda d: next(
            x for x in d if x["kind"] == "Service" and x["metadata"]["name"] != "attnd")["spec"].update(selector={"a": "b"}),
        "retries on 503 and non-idempotent": lambda d: ann(d, False).update(
            {A + "proxy-next-upstream": "error timeout http_503 non_idempotent"}),
        "the Ingress body limit below attnd's": lambda d: ann(d, False).update({A + "proxy-body-size": "1m"}),
    }
    errs = []
    if check_k8s(docs, env_names):
        errs.append("the unmodified rendering does not pass")
    for name, mutate in mutations.items():
        d = copy.deepcopy(docs)
        mutate(d)
        if not check_k8s(d, env_names):
            errs.append("selftest: a rendering with '%s' passed the checks" % name)
    return errs


# ---- compose -------------------------------------------------------------------

def check_compose(path, env_names, here=None):
    errs = []
    here = here or os.path.dirname(os.path.abspath(path))
    with open(path) as f:
        doc = yaml.safe_load(f)
    svcs = doc.get("services", {})
    a, n = svcs.get("attnd"), svcs.get("nginx")
    if not a or not n:
        return ["compose needs services attnd and nginx"]
    b = a.get("build", {})
    df = os.path.normpath(os.path.join(here, b.get("context", "."), b.get("dockerfile", "Dockerfile")))
    if df != os.path.join(here, "Dockerfile"):
        errs.append("attnd is not built from deploy/Dockerfile (%s)" % df)
    if a.get("deploy", {}).get("replicas", 1) < 2:
        errs.append("fewer than 2 attnd replicas")
    env = a.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for k in env:
        if k.startswith("ATTND_") and k not in env_names:
            errs.append("%s is not an attnd variable (attnd --help)" % k)
    lim = a.get("deploy", {}).get("resources", {}).get("limits", {})
    if "memory" not in lim or "cpus" not in lim:
        errs.append("attnd has no memory and cpus limits")
    else:
        errs += bodies_fit(env, quantity(lim["memory"]), int(env.get("ATTND_THREADS", cpus(lim["cpus"]))))
    need = seconds(env.get("ATTND_SHUTDOWN_DELAY", 2)) + seconds(env.get("ATTND_DRAIN_TIMEOUT", 7))
    if seconds(a.get("stop_grace_period", "10s")) <= need:
        errs.append("stop_grace_period does not exceed the shutdown delay + drain (%g s)" % need)
    if not any(re.sub(r"\$\{[^}]*\}", "x", str(v)).split(":")[1:2] == ["/models"] for v in a.get("volumes", [])):
        errs.append("no volume on /models (the image's model repository)")
    mounted = {}
    for v in n.get("volumes", []):
        src, dst = str(v).split(":")[:2]
        mounted[dst] = os.path.join(here, src)
    for dst in ("/etc/nginx/nginx.conf", "/etc/nginx/attnd-proxy.conf", "/etc/nginx/attnd-sequence.conf"):
        if dst not in mounted or not os.path.isfile(mounted[dst]):
            errs.append("nginx does not mount an existing file on %s" % dst)
    # Sequences stick by a consistent hash over one `server` line per replica
    # (container names <project>-<service>-<n>): the ring must list them all.
    conf = mounted.get("/etc/nginx/nginx.conf")
    if conf and os.path.isfile(conf):
        with open(conf) as f:
            text = re.sub(r"#[^\n]*", "", f.read())
        block = re.search(r"upstream\s+attnd_sequences\s*\{([^}]*)\}", text)
        replicas = a.get("deploy", {}).get("replicas", 1)
        want = {"%s-attnd-%d:8000" % (doc.get("name", "deploy"), i) for i in range(1, replicas + 1)}
        if not block:
            errs.append("nginx.conf has no upstream attnd_sequences")
        else:
            got = set(re.findall(r"\bserver\s+(\S+?)[\s;]", block.group(1)))
            if not re.search(r"\bhash\s+\$attnd_sequence\s+consistent\s*;", block.group(1)):
                errs.append("upstream attnd_sequences does not hash $attnd_sequence consistently")
            if got != want:
                errs.append("upstream attnd_sequences lists %s, the %d replicas are %s"
                            % (sorted(got), replicas, sorted(want)))
    dep = n.get("depends_on", {})
    if not isinstance(dep, dict) or dep.get("attnd", {}).get("condition") != "service_healthy":
        errs.append("nginx does not wait for attnd to be healthy")
    return errs


# ---- Dockerfile ----------------------------------------------------------------

def dockerfile_instructions(path):
    """[(stage index, INSTRUCTION, argument text)] with continuations joined."""
    out, stage, buf = [], -1, ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not buf and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if s.endswith("\\"):
                buf += s[:-1] + " "
                continue
            s, buf = buf + s, ""
            word, _, rest = s.strip().partition(" ")
            word = word.upper()
            if word == "FROM":
                stage += 1
            out.append((stage, word, rest.strip()))
    return out


def check_dockerfile(path, env_names, top=None):
    errs = []
    top = top or os.path.dirname(os.path.dirname(os.path.abspath(path)))
    ins = dockerfile_instructions(path)
    froms = [r for s, w, r in ins if w == "FROM"]
    if len(froms) < 2 or not re.match(r"debian:12\s+AS\s+\w+", froms[0], re.I) or froms[-1].split()[0] != "debian:12-slim":
        errs.append("want a build stage FROM debian:12 and a final stage FROM debian:12-slim, got %s" % froms)
    last = len(froms) - 1
    runs = [(s, r) for s, w, r in ins if w == "RUN"]
    if not any(s < last and "scripts/deps.sh" in r for s, r in runs):
        errs.append("no build-stage RUN calls scripts/deps.sh (the script `make deps` uses)")
    if not any(s < last and re.search(r"\bmake\b.*\bPORTABLE=1\b", r) for s, r in runs):
        errs.append("no build-stage RUN builds with make PORTABLE=1")
    if any("march=native" in r for s, w, r in ins):
        errs.append("an instruction of the Dockerfile uses -march=native")
    if any(s == last and re.search(r"-dev\b|build-essential|\bgcc\b", r) for s, r in runs):
        errs.append("the final stage installs build tools or -dev packages")
    users = [r for s, w, r in ins if w == "USER" and s == last]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errs.append("the final stage does not switch to a non-root USER")
    hc = [r for s, w, r in ins if w == "HEALTHCHECK" and s == last]
    if not hc:
        errs.append("no HEALTHCHECK in the final stage")
    else:
        target = hc[-1]
        cmd = re.search(r"CMD\s+(.*)$", target)
        words = yaml.safe_load(cmd.group(1)) if cmd and cmd.group(1).startswith("[") else shlex.split(cmd.group(1) if cmd else "")
        probe = words[0] if words else ""
        copies = {r.split()[-1]: r.split()[-2] for s, w, r in ins if w == "COPY" and s == last and "--from" not in r}
        text = target
        if probe in copies:
            src = os.path.join(top, copies[probe])
            if not os.path.isfile(src):
                errs.append("HEALTHCHECK script %s is not in the repository" % copies[probe])
            else:
                with open(src) as f:
                    text = f.read()
        if "/v2/health/ready" not in text:
            errs.append("the HEALTHCHECK does not ask /v2/health/ready")
    envs = {}
    for s, w, r in ins:
        if w == "ENV" and s == last:
            for tok in shlex.split(r):
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    envs[k] = v
    for k in envs:
        if k.startswith("ATTND_") and k not in env_names:
            errs.append("ENV %s is not an attnd variable (attnd --help)" % k)
    if envs.get("ATTND_HOST") not in ("0.0.0.0", "::"):
        errs.append("ATTND_HOST must be 0.0.0.0 in a container")
    repo = envs.get("ATTND_MODEL_REPOSITORY")
    vols = " ".join(r for s, w, r in ins if w == "VOLUME" and s == last)
    if not repo or repo not in vols:
        errs.append("the model repository %r is not a VOLUME" % repo)
    # docker stop waits 10 s before SIGKILL.
    if seconds(envs.get("ATTND_SHUTDOWN_DELAY", 0)) + seconds(envs.get("ATTND_DRAIN_TIMEOUT", 30)) >= 10:
        errs.append("shutdown delay + drain timeout do not fit docker stop's 10 s")
    for s, w, r in ins:
        if w == "COPY" and "--from" not in r:
            for src in [a for a in r.split() if not a.startswith("--")][:-1]:
                if src != "." and not os.path.exists(os.path.join(top, src)):
                    errs.append("COPY %s: no such file in the repository" % src)
    return errs


# Text edits that each break one rule of the Dockerfile or the compose file.
FILE_MUTATIONS = {
    "dockerfile": {
        "no PORTABLE=1": ("PORTABLE=1 ", ""),
        "deps.sh not called": ("bash scripts/deps.sh", "apt-get install -y gcc"),
        "runs as root": ("USER 10001:10001", "USER root"),
        "no HEALTHCHECK": ("HEALTHCHECK ", "LABEL hc="),
        "a misspelt variable": ("ATTND_MAX_QUEUE=", "ATTND_MAXQUEUE="),
        "a drain longer than docker stop waits": ("ATTND_DRAIN_TIMEOUT=7", "ATTND_DRAIN_TIMEOUT=30"),
        "runs on the full image": ("FROM debian:12-slim", "FROM debian:12"),
    },
    "compose": {
        "one replica": ("replicas: 3", "replicas: 1"),
        "short grace": ("stop_grace_period: 30s", "stop_grace_period: 10s"),
        "nginx without the proxy settings": ("./attnd-proxy.conf:", "./missing.conf:"),
        "nginx without the sequence routing": ("./attnd-sequence.conf:", "./missing.conf:"),
        "a replica missing from the sequence ring": ("replicas: 3", "replicas: 4"),
        "a misspelt variable": ("ATTND_MAX_QUEUE:", "ATTND_MAXQUEUE:"),
        "bodies beyond the memory limit": ("memory: 2G", "memory: 256M"),
    },
}


def selftest_file(kind, path, env_names):
    import tempfile
    check = check_dockerfile if kind == "dockerfile" else check_compose
    real_dir = os.path.dirname(os.path.abspath(path))
    anchor = os.path.dirname(real_dir) if kind == "dockerfile" else real_dir
    with open(path) as f:
        text = f.read()
    errs = []
    if check(path, env_names):
        errs.append("the unmodified %s does not pass" % kind)
    for name, (old, new) in FILE_MUTATIONS[kind].items():
        if old not in text:
            errs.append("selftest: %r is not in %s (update the mutation)" % (old, path))
            continue
        with tempfile.NamedTemporaryFile("w", suffix="." + kind) as t:
            t.write(text.replace(old, new))
            t.flush()
            if not check(t.name, env_names, anchor):
                errs.append("selftest: a %s with '%s' passed the checks" % (kind, name))
    return errs


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    what, path, help_path = sys.argv[1:]
    names = known_env(help_path)
    if len(names) < 5:
        print("attnd --help names no ATTND_* variables", file=sys.stderr)
        return 1
    if what in ("k8s", "selftest"):
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        errs = check_k8s(docs, names) if what == "k8s" else selftest(docs, names)
    elif what in ("selftest-dockerfile", "selftest-compose"):
        errs = selftest_file(what.split("-")[1], path, names)
    elif what == "compose":
        errs = check_compose(path, names)
    elif what == "dockerfile":
        errs = check_dockerfile(path, names)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errs:
        print(e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
