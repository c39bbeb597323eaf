#!/usr/bin/env python3
"""check.py CHECK: the static checks of the deployment artifacts (label "deploy" in ctest).

No Docker engine and no cluster: every check reads files or renders them with Debian's tools.

  render         `kubectl kustomize` renders deploy/k8s/base and every overlay
  yamllint       yamllint (tests/deploy/yamllint.yml, strict) on every YAML file of the project
  compose        `docker-compose config -q` on docker-compose.yml
  npm            `npm ci` of tests/deploy/package.json into --npm-dir (skipped when up to date)
  schema         every rendered object against the Kubernetes and KEDA schemas (validate.js)
  config         the configuration of both deployments against common/cfg_vars.c and SPEC §12
                 (variables known, required ones set, secrets as files, grace periods, probes,
                 resources, the ScaledObject's cap and brokers, Redis persistence, ...)
  dockerfile     deploy/Dockerfile: stages, user, no HEALTHCHECK, and its runtime packages
                 against the shared libraries of the built binaries (ldd, dpkg -S)
  topics-script  deploy/k8s/base/create-topics.sh against a stand-in kafka-topics.sh
  metrics        `promtool check metrics` on the live /metrics of vmh-producer and vmh-worker,
                 started against kafka-mock, redis-server and the simulators
  selftest       plants one mistake at a time in a copy of the files; each must be reported

Options: --root (the source tree), --bin (the built binaries), --npm-dir (where npm installs).
Exit 0 when the check passes, 1 when it finds a problem (each printed on its own line).
Needs /usr/bin/python3 with python3-yaml (Debian); re-runs itself there when started by another
Python without it.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import yaml
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("check.py: PyYAML missing: apt-get install python3-yaml (deploy/deps-debian.sh)")

HERE = os.path.dirname(os.path.abspath(__file__))  # tests/deploy: its own files
PROGRAMS = {"vmh-producer": "P", "vmh-worker": "W", "vmhctl": "C"}
OUR_IMAGE = re.compile(r"(^|/)vmh-sync(:|$)")
PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)
    print("PROBLEM: " + msg)


def ok(msg):
    print("ok: " + msg)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        sys.exit(f"check.py: {tool} not found: apt-get install {package} (deploy/deps-debian.sh)")
    return path


# ---- the configuration table -----------------------------------------------------------------

def split_args(text):
    """Top-level comma-separated arguments of a C macro call (strings and parentheses kept)."""
    args, depth, cur, i = [], 0, "", 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur += text[i:j + 1]
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        args.append(cur.strip())
    return args


def c_string(expr):
    """The value of adjacent C string literals, or None for NULL."""
    if expr.strip() == "NULL":
        return None
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', expr))


def load_table(root):
    """common/cfg_vars.c as {name: {users, required, secret, default, type, help}}."""
    src = open(os.path.join(root, "common", "cfg_vars.c")).read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    table = {}
    for m in re.finditer(r"\bVAR\(", src):
        depth, i = 1, m.end()
        while depth:
            if src[i] == '"':
                i += 1
                while src[i] != '"':
                    i += 2 if src[i] == "\\" else 1
            elif src[i] == "(":
                depth += 1
            elif src[i] == ")":
                depth -= 1
            i += 1
        args = split_args(src[m.end():i - 1])
        name = c_string(args[0])
        extras = " ".join(args[5:])
        table[name] = {
            "type": args[1],
            "default": c_string(args[2]),
            "users": set(re.findall(r"\b[PWC]\b", args[3])),
            "help": c_string(args[4]),
            "required": "REQUIRED" in extras,
            "secret": "SECRET" in extras,
        }
    if len(table) < 20 or "KAFKA_BROKERS" not in table:
        sys.exit("check.py: could not read the table of common/cfg_vars.c")
    return table


def base_name(var):
    return var[:-5] if var.endswith("_FILE") else var


def known(table, var):
    return base_name(var) in table or var.startswith("KAFKA_CFG_")


def duration_ms(name, value):
    """A CFG_DURATION value in milliseconds (unit from the name's _MS/_S, or a suffix)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not m:
        return None
    unit = m.group(2) or ("ms" if name.endswith("_MS") else "s")
    return float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[unit]


def setting(table, env, name):
    """The value a program sees: env, else the table's default."""
    return env.get(name, table[name]["default"])


def check_program_env(table, where, program, env, explicit):
    """env: every variable the program's container or service gets; explicit: those it sets
    itself (not through a shared ConfigMap)."""
    users = PROGRAMS[program]
    for var in sorted(env):
        if not known(table, var):
            problem(f"{where}: {var} is not in common/cfg_vars.c")
        elif var in explicit and not var.startswith("KAFKA_CFG_") and \
                users not in table[base_name(var)]["users"]:
            problem(f"{where}: {var} is set but {program} does not read it")
        if var in env and base_name(var) != var and var[:-5] in env:
            problem(f"{where}: both {var[:-5]} and {var} set ({program} refuses that)")
    for name, d in table.items():
        if users not in d["users"]:
            continue
        unless = re.search(r"required unless (\w+)=1", d["help"] or "")
        required = d["required"] or bool(unless and str(env.get(unless.group(1), "0")).lower()
                                          not in ("1", "true", "yes", "on"))
        if required and name not in env and name + "_FILE" not in env:
            problem(f"{where}: required {name} is not set for {program}")
    ok(f"{where}: {len(env)} variables for {program} checked against the table")


# ---- rendering ---------------------------------------------------------------------------------

def kustomizations(root):
    k8s = os.path.join(root, "deploy", "k8s")
    dirs = [os.path.join(k8s, "base")]
    overlays = os.path.join(k8s, "overlays")
    for name in sorted(os.listdir(overlays)):
        if os.path.exists(os.path.join(overlays, name, "kustomization.yaml")):
            dirs.append(os.path.join(overlays, name))
    return dirs


def render(root, quiet=False):
    """{kustomization dir: [objects]}; a failed rendering is a problem."""
    kubectl = need("kubectl", "kubernetes-client")
    out = {}
    for d in kustomizations(root):
        r = run([kubectl, "kustomize", d])
        rel = os.path.relpath(d, root)
        if r.returncode != 0 or not r.stdout.strip():
            problem(f"kubectl kustomize {rel} failed: {r.stderr.strip()}")
            continue
        objs = [o for o in yaml.safe_load_all(r.stdout) if o]
        # A Secret template the overlay leaves to the operator is checked with the rest.
        template = os.path.join(d, "secret.example.yaml")
        if os.path.exists(template) and not any(o["kind"] == "Secret" for o in objs):
            objs += [o for o in yaml.safe_load_all(open(template)) if o]
        out[rel] = objs
        if not quiet:
            kinds = sorted({o["kind"] for o in objs})
            ok(f"kubectl kustomize {rel}: {len(objs)} objects ({', '.join(kinds)})")
    return out


# ---- checks ------------------------------------------------------------------------------------

def check_render(args):
    render(args.root)


def yaml_files(root):
    skip = {".git", "node_modules", "__pycache__", "contract"}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if d not in skip and not
                       (rel == "." and (d == "build" or d.startswith("build-")))]
        found += [os.path.join(dirpath, f) for f in filenames if f.endswith((".yml", ".yaml"))]
    return sorted(found)


def check_yamllint(args):
    tool = need("yamllint", "yamllint")
    files = yaml_files(args.root)
    conf = os.path.join(HERE, "yamllint.yml")
    r = run([tool, "-s", "-f", "parsable", "-c", conf] + files)
    for line in (r.stdout + r.stderr).splitlines():
        problem(line)
    if r.returncode == 0:
        ok(f"yamllint: {len(files)} files clean")
    elif not r.stdout.strip():
        problem(f"yamllint exited {r.returncode}")


def check_compose(args):
    tool = shutil.which("docker-compose")
    cmd = [tool] if tool else None
    if not cmd:
        sys.exit("check.py: docker-compose not found: apt-get install docker-compose")
    compose = os.path.join(args.root, "docker-compose.yml")
    r = run(cmd + ["-f", compose, "--project-directory", args.root, "config", "-q"],
            cwd=args.root)
    if r.returncode != 0:
        problem(f"docker-compose config -q: {r.stderr.strip()}")
    else:
        ok("docker-compose config -q: valid")


def npm_ready(npm_dir):
    src = HERE
    stamp = os.path.join(npm_dir, "node_modules", ".vmh-lock")
    lock = open(os.path.join(src, "package-lock.json")).read()
    return os.path.exists(stamp) and open(stamp).read() == lock


def check_npm(args):
    npm = need("npm", "npm")
    if npm_ready(args.npm_dir):
        ok(f"npm packages in {args.npm_dir} match package-lock.json")
        return
    os.makedirs(args.npm_dir, exist_ok=True)
    src = HERE
    for f in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(src, f), os.path.join(args.npm_dir, f))
    r = run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=args.npm_dir)
    if r.returncode != 0:
        problem(f"npm ci: {r.stderr.strip() or r.stdout.strip()}")
        return
    shutil.copyfile(os.path.join(src, "package-lock.json"),
                    os.path.join(args.npm_dir, "node_modules", ".vmh-lock"))
    ok(f"npm ci into {args.npm_dir}")


def check_schema(args):
    node = need("node", "nodejs")
    if not npm_ready(args.npm_dir):
        check_npm(args)
        if PROBLEMS:
            return
    rendered = render(args.root, quiet=True)
    env = dict(os.environ, NODE_PATH=os.path.join(args.npm_dir, "node_modules"))
    script = os.path.join(HERE, "validate.js")
    for rel, objs in rendered.items():
        r = run([node, script], input=json.dumps(objs), env=env)
        print(f"-- {rel}")
        print(r.stdout.rstrip())
        if r.returncode != 0:
            problem(f"{rel}: schema validation failed {r.stderr.strip()}")
        else:
            ok(f"{rel}: {len(objs)} objects valid against the Kubernetes and KEDA schemas")


def program_of(command):
    if command and os.path.basename(command[0]) in PROGRAMS:
        return os.path.basename(command[0])
    return None


def check_compose_config(table, root):
    compose = yaml.safe_load(open(os.path.join(root, "docker-compose.yml")))
    services = compose["services"]
    programs = set()
    for name, svc in services.items():
        program = program_of(svc.get("command"))
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        if program:
            programs.add(program)
            check_program_env(table, f"compose {name}", program, env, set(env))
            if svc.get("build", {}).get("target") != "runtime":
                problem(f"compose {name}: not built from deploy/Dockerfile's runtime stage")
        if program == "vmh-worker":
            if "container_name" in svc or "ports" in svc:
                problem(f"compose {name}: container_name or ports prevent --scale {name}=N")
            grace = duration_ms("S", svc.get("stop_grace_period", "10s"))
            drain = duration_ms("SHUTDOWN_DRAIN_MS", setting(table, env, "SHUTDOWN_DRAIN_MS"))
            if grace is None or grace < drain + 10000:
                problem(f"compose {name}: stop_grace_period {svc.get('stop_grace_period')} is not "
                        f"above SHUTDOWN_DRAIN_MS ({drain / 1000:g} s) + 10 s")
            else:
                ok(f"compose {name}: stop_grace_period {grace / 1000:g} s > drain "
                   f"{drain / 1000:g} s + 10 s; no container_name or ports (scales)")
    for program in ("vmh-producer", "vmh-worker"):
        if program not in programs:
            problem(f"compose: no service runs {program}")
    kafka = [s for s in services.values() if "KAFKA_PROCESS_ROLES" in (s.get("environment") or {})]
    if not kafka or str(kafka[0]["environment"].get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")) != "false":
        problem("compose: Kafka (KRaft) without KAFKA_AUTO_CREATE_TOPICS_ENABLE=false")
    elif "controller" not in kafka[0]["environment"]["KAFKA_PROCESS_ROLES"]:
        problem("compose: Kafka is not in KRaft mode (controller role)")
    else:
        ok("compose: Kafka in KRaft mode without automatic topic creation")
    topics = [s for s in services.values()
              if "create-topics.sh" in " ".join(s.get("command") or [])]
    if not topics or not str((topics[0].get("environment") or {}).get("TOPIC_PARTITIONS", "")):
        problem("compose: no create-topics.sh job with TOPIC_PARTITIONS")
    else:
        ok(f"compose: topics job, {topics[0]['environment']['TOPIC_PARTITIONS']} partitions each")
    redis = [s for s in services.values() if str(s.get("image", "")).startswith("redis")]
    cmd = " ".join(redis[0].get("command") or []) if redis else ""
    if "--appendonly yes" not in cmd or not redis[0].get("volumes"):
        problem("compose: Redis without AOF (--appendonly yes) on a volume")
    else:
        ok("compose: Redis with AOF on a volume")


def k8s_index(objs):
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def container_env(container, objs_by_key):
    """(env, explicit, literal): every variable a container gets, those it sets itself, and
    those whose value is a literal in git (a ConfigMap or a plain value)."""
    env, explicit, literal = {}, set(), set()
    for ref in container.get("envFrom") or []:
        if "configMapRef" in ref:
            cm = objs_by_key.get(("ConfigMap", ref["configMapRef"]["name"]))
            if cm is None:
                problem(f"container {container['name']}: ConfigMap "
                        f"{ref['configMapRef']['name']} not rendered")
                continue
            env.update(cm.get("data") or {})
            literal |= set(cm.get("data") or {})
        if "secretRef" in ref:
            sec = objs_by_key.get(("Secret", ref["secretRef"]["name"]))
            sec = sec or {}
            for k in list(sec.get("data") or {}) + list(sec.get("stringData") or {}):
                env[k] = "(secret)"
    for e in container.get("env") or []:
        explicit.add(e["name"])
        if "value" in e:
            env[e["name"]] = e["value"]
            literal.add(e["name"])
        else:
            env[e["name"]] = "(from " + ",".join(e.get("valueFrom", {})) + ")"
    return env, explicit, literal


def pod_specs(objs):
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield o, o["spec"]["template"]["spec"], o["spec"]["template"]["metadata"]
        elif o["kind"] == "CronJob":
            t = o["spec"]["jobTemplate"]["spec"]["template"]
            yield o, t["spec"], t["metadata"]


def port_of(hostport):
    return int(str(hostport).rsplit(":", 1)[1])


def check_file_vars(where, env, container, spec, objs_by_key):
    """Each X_FILE points into a mounted Secret that holds the key."""
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for var, path in env.items():
        if not var.endswith("_FILE"):
            continue
        folder, key = os.path.split(path)
        vol = volumes.get(mounts.get(folder, ""), {})
        secret = vol.get("secret")
        if not secret:
            problem(f"{where}: {var}={path} is not in a mounted Secret")
            continue
        items = [i["path"] for i in secret.get("items") or []]
        if items and key not in items:
            problem(f"{where}: {var}: the Secret volume does not project {key}")
        source_keys = [i["key"] for i in secret.get("items") or []] or [key]
        obj = objs_by_key.get(("Secret", secret["secretName"]))
        if obj is not None:
            have = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
            for k in source_keys:
                if k not in have:
                    problem(f"{where}: Secret {secret['secretName']} has no key {k}")


def check_probes(where, container, env, table):
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    want = port_of(setting(table, env, "METRICS_LISTEN"))
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (container.get(probe) or {}).get("httpGet")
        if not get or get.get("path") != path:
            problem(f"{where}: {probe} is not an HTTP GET of {path}")
            continue
        port = ports.get(get["port"], get["port"])
        if port != want:
            problem(f"{where}: {probe} on port {port}, but METRICS_LISTEN is port {want}")
    if not has_problem(where):
        ok(f"{where}: probes /healthz and /readyz on METRICS_LISTEN's port {want}")


def has_problem(prefix):
    """Whether a problem about prefix (\"where: ...\") was reported."""
    return any(p.startswith(prefix) for p in PROBLEMS)


def check_k8s_config(table, rel, objs):
    by_key = k8s_index(objs)
    programs = {}
    for obj, spec, meta in pod_specs(objs):
        for c in spec["containers"]:
            where = f"{rel} {obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            res = c.get("resources") or {}
            if not all(k in res.get("requests", {}) for k in ("cpu", "memory")) or \
                    "memory" not in res.get("limits", {}):
                problem(f"{where}: resources need requests (cpu, memory) and a memory limit")
            if not OUR_IMAGE.search(c.get("image", "")):
                continue
            program = program_of(c.get("command"))
            if not program:
                problem(f"{where}: runs our image without naming the program as its command")
                continue
            programs[program] = (obj, spec, meta, c)
            env, explicit, literal = container_env(c, by_key)
            check_program_env(table, where, program, env, explicit)
            for var in sorted(literal):
                if base_name(var) == var and var in table and table[var]["secret"]:
                    problem(f"{where}: secret {var} is a literal; give it as {var}_FILE")
            check_file_vars(where, env, c, spec, by_key)
            check_probes(where, c, env, table)
            sc = {**(spec.get("securityContext") or {}), **(c.get("securityContext") or {})}
            if not sc.get("runAsNonRoot") or not sc.get("runAsUser"):
                problem(f"{where}: not running as a non-root user")
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if program == "vmh-worker":
                drain = duration_ms("SHUTDOWN_DRAIN_MS", setting(table, env, "SHUTDOWN_DRAIN_MS"))
                if grace * 1000 < drain + 10000:
                    problem(f"{where}: terminationGracePeriodSeconds {grace} is not above "
                            f"SHUTDOWN_DRAIN_MS ({drain / 1000:g} s) + 10 s")
                else:
                    ok(f"{where}: grace {grace} s > drain {drain / 1000:g} s + 10 s")
            if program == "vmh-producer":
                ack = duration_ms("WEBHOOK_ACK_TIMEOUT_MS",
                                  setting(table, env, "WEBHOOK_ACK_TIMEOUT_MS"))
                if grace * 1000 < ack + 10000:
                    problem(f"{where}: terminationGracePeriodSeconds {grace} is not above "
                            f"WEBHOOK_ACK_TIMEOUT_MS ({ack / 1000:g} s) + 10 s")
            programs[program] = (obj, spec, meta, c, env)
    for program in ("vmh-producer", "vmh-worker"):
        if program not in programs:
            problem(f"{rel}: no workload runs {program}")
    if "vmh-producer" not in programs or "vmh-worker" not in programs:
        return
    for program, (_, _, meta, _, _) in programs.items():
        labels = meta.get("labels") or {}
        if not any(o["kind"] == "PodDisruptionBudget" and all(
                labels.get(k) == v for k, v in o["spec"]["selector"]["matchLabels"].items())
                   for o in objs):
            problem(f"{rel}: no PodDisruptionBudget for {program}")
    check_k8s_producer(rel, objs, programs["vmh-producer"], table)
    check_k8s_worker(rel, objs, by_key, programs["vmh-worker"], table)
    check_k8s_redis(rel, objs, programs)
    for o in objs:
        if o["kind"] == "Secret":
            for k, v in (o.get("stringData") or {}).items():
                if "CHANGE-ME" not in v:
                    problem(f"{rel}: Secret {o['metadata']['name']} key {k} holds a value that "
                            "is not a CHANGE-ME placeholder")
            if o.get("data"):
                problem(f"{rel}: Secret {o['metadata']['name']} has base64 data in git")
            sd = o.get("stringData") or {}
            if "REDIS_PASSWORD" in sd and f":{sd['REDIS_PASSWORD']}@" not in sd.get("REDIS_URL",
                                                                                  ""):
                problem(f"{rel}: REDIS_URL does not carry REDIS_PASSWORD (Redis would refuse)")


def check_k8s_producer(rel, objs, producer, table):
    obj, spec, meta, c, env = producer
    web = port_of(setting(table, env, "WEBHOOK_LISTEN"))
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    if web not in ports.values():
        problem(f"{rel}: the producer does not expose WEBHOOK_LISTEN's port {web}")
    labels = meta.get("labels") or {}
    services = [o for o in objs if o["kind"] == "Service" and
                all(labels.get(k) == v for k, v in (o["spec"].get("selector") or {}).items())
                and o["spec"].get("selector")]
    if not services:
        problem(f"{rel}: no Service selects the producer")
        return
    svc = services[0]
    ingresses = [o for o in objs if o["kind"] == "Ingress"]
    found = False
    for ing in ingresses:
        for rule in ing["spec"].get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                b = p["backend"]["service"]
                if b["name"] != svc["metadata"]["name"]:
                    continue
                sp = next((x for x in svc["spec"]["ports"]
                           if x.get("name") == b["port"].get("name") or
                           x["port"] == b["port"].get("number")), None)
                target = sp and sp.get("targetPort")
                target = ports.get(target, target)
                if p["path"].startswith("/webhook") and target == web:
                    found = True
                else:
                    problem(f"{rel}: Ingress path {p['path']} reaches port {target}, not the "
                            f"webhook port {web}")
    if not found:
        problem(f"{rel}: no Ingress routes /webhook/ to the producer's webhook port")
    else:
        ok(f"{rel}: Ingress /webhook/ -> Service {svc['metadata']['name']} -> port {web}")
    if obj["spec"].get("replicas", 1) < 2:
        problem(f"{rel}: fewer than 2 producer replicas (SPEC §12)")


def check_k8s_worker(rel, objs, by_key, worker, table):
    obj, spec, meta, c, env = worker
    scaled = [o for o in objs if o["kind"] == "ScaledObject"]
    if len(scaled) != 1:
        problem(f"{rel}: want one KEDA ScaledObject, found {len(scaled)}")
        return
    so = scaled[0]["spec"]
    if so["scaleTargetRef"].get("name") != obj["metadata"]["name"]:
        problem(f"{rel}: the ScaledObject scales {so['scaleTargetRef'].get('name')}, "
                f"not {obj['metadata']['name']}")
    jobs = [o for o in objs if o["kind"] == "Job" and any(
        "create-topics.sh" in " ".join(x.get("command") or []) for x in
        o["spec"]["template"]["spec"]["containers"])]
    if not jobs:
        problem(f"{rel}: no Job runs create-topics.sh")
        return
    partitions = None
    for e in jobs[0]["spec"]["template"]["spec"]["containers"][0].get("env") or []:
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if e["name"] == "TOPIC_PARTITIONS" and ref:
            partitions = (by_key.get(("ConfigMap", ref["name"])) or {}).get("data", {}).get(
                ref["key"])
        elif e["name"] == "TOPIC_PARTITIONS":
            partitions = e.get("value")
    if partitions is None or int(partitions) != so.get("maxReplicaCount"):
        problem(f"{rel}: maxReplicaCount {so.get('maxReplicaCount')} differs from the topics' "
                f"partition count {partitions}")
    else:
        ok(f"{rel}: maxReplicaCount {partitions} = partitions of one topic")
    triggers = [t for t in so.get("triggers") or [] if t["type"] == "kafka"]
    if len(triggers) != 1:
        problem(f"{rel}: want one kafka trigger, found {len(triggers)}")
        return
    md = triggers[0]["metadata"]
    want = {"bootstrapServers": setting(table, env, "KAFKA_BROKERS"),
            "consumerGroup": setting(table, env, "KAFKA_GROUP_ID"),
            "offsetResetPolicy": "earliest"}
    for k, v in want.items():
        if md.get(k) != v:
            problem(f"{rel}: kafka trigger {k} = {md.get(k)!r}, want {v!r}")
    if "topic" in md:
        problem(f"{rel}: kafka trigger names one topic; the group consumes four")
    if not has_problem(rel):
        ok(f"{rel}: kafka trigger on the workers' brokers and group, offsetResetPolicy earliest")


def check_k8s_redis(rel, objs, programs):
    sts = [o for o in objs if o["kind"] == "StatefulSet" and any(
        "redis" in x.get("image", "") for x in o["spec"]["template"]["spec"]["containers"])]
    if not sts:
        print(f"note: {rel}: no Redis StatefulSet (a managed Redis with persistence is assumed)")
        return
    r = sts[0]
    c = r["spec"]["template"]["spec"]["containers"][0]
    cmd = " ".join((c.get("command") or []) + (c.get("args") or []))
    if "--appendonly yes" not in cmd:
        problem(f"{rel}: Redis without --appendonly yes")
    dirm = re.search(r"--dir (\S+)", cmd)
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    claims = {t["metadata"]["name"] for t in r["spec"].get("volumeClaimTemplates") or []}
    if not dirm or mounts.get(dirm.group(1)) not in claims:
        problem(f"{rel}: Redis's --dir is not on a PersistentVolumeClaim")
    labels = r["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in objs if p["kind"] == "NetworkPolicy" and all(
        labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items())]
    if not policies:
        problem(f"{rel}: no NetworkPolicy selects the Redis pods")
        return
    peers = [f.get("podSelector", {}).get("matchLabels", {}) for p in policies
             for rule in p["spec"].get("ingress") or [] for f in rule.get("from") or []]
    if not peers or any(not sel for sel in peers):
        problem(f"{rel}: the Redis NetworkPolicy admits pods other than labelled ones")
    for program, (_, _, meta, _, _) in programs.items():
        pl = meta.get("labels") or {}
        if not any(all(pl.get(k) == v for k, v in sel.items()) for sel in peers):
            problem(f"{rel}: {program} pods are not admitted to Redis by the NetworkPolicy")
    if not has_problem(rel):
        ok(f"{rel}: Redis with AOF on a PVC; only labelled pods (producer, worker) reach it")


def check_config(args):
    table = load_table(args.root)
    ok(f"common/cfg_vars.c: {len(table)} variables")
    check_compose_config(table, args.root)
    for rel, objs in render(args.root, quiet=True).items():
        check_k8s_config(table, rel, objs)
    for m in re.finditer(r"^\s*ENV\s+(\w+)", open(os.path.join(
            args.root, "deploy", "Dockerfile")).read(), re.M):
        if not known(table, m.group(1)):
            problem(f"deploy/Dockerfile: ENV {m.group(1)} is not in common/cfg_vars.c")


# ---- Dockerfile ---------------------------------------------------------------------------------

def dockerfile_stages(root):
    text = open(os.path.join(root, "deploy", "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    stages, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            cur = {"from": m.group(1), "name": m.group(2) or f"#{len(stages)}", "lines": []}
            stages[cur["name"]] = cur
        elif cur is not None:
            cur["lines"].append((instr, rest))
    return stages


def stage_root(stages, name):
    while name in stages:
        name = stages[name]["from"]
    return name


def apt_packages(stage):
    pkgs = []
    for instr, rest in stage["lines"]:
        if instr != "RUN":
            continue
        for cmd in rest.split("&&"):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


_OWNERS = {}


def dpkg_owners(paths):
    """Fills the cache of which Debian package owns each path (one `dpkg -S` for them all; a
    merged /usr is tried both ways)."""
    todo = {}
    for path in paths:
        if path in _OWNERS:
            continue
        variants = {path, os.path.realpath(path)}
        for v in list(variants):
            variants.add("/usr" + v if v.startswith("/lib") else
                         v[4:] if v.startswith("/usr/lib") else v)
        for v in variants:
            todo[v] = path
        _OWNERS[path] = None
    if not todo:
        return
    for line in run(["dpkg", "-S"] + sorted(todo)).stdout.splitlines():
        pkgs, _, owned = line.partition(": ")
        if owned in todo and _OWNERS[todo[owned]] is None:
            _OWNERS[todo[owned]] = pkgs.split(",")[0].split(":")[0].strip()


def dpkg_package(path):
    dpkg_owners([path])
    return _OWNERS[path]


def depends_closure(packages):
    """The packages and everything they depend on, as installed here (one dpkg-query)."""
    deps = {}
    r = run(["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n"])
    for line in r.stdout.splitlines():
        name, _, rest = line.partition("\t")
        names = [dep.strip().split(" ")[0].split(":")[0] for alt in rest.split(",")
                 for dep in alt.split("|")]
        deps.setdefault(name, set()).update(n for n in names if n)
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += deps.get(p, ())
    return seen


def check_dockerfile(args):
    need("ldd", "libc-bin")
    need("objdump", "binutils")
    stages = dockerfile_stages(args.root)
    names = list(stages)
    if stages[names[0]]["from"] != "debian:bookworm":
        problem(f"Dockerfile: the build stage is {stages[names[0]]['from']}, not debian:bookworm")
    if not any("deps-debian.sh build" in rest for instr, rest in stages[names[0]]["lines"]):
        problem("Dockerfile: the build stage does not install with deploy/deps-debian.sh build")
    final = names[-1]
    if final != "runtime" or stage_root(stages, final) != "debian:bookworm-slim":
        problem(f"Dockerfile: the last stage ({final}) is not `runtime` on debian:bookworm-slim")
    for name in ("runtime", "sim"):
        lines = stages.get(name, {"lines": []})["lines"]
        users = [rest for instr, rest in lines if instr == "USER"]
        if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1].strip()):
            problem(f"Dockerfile: stage {name} does not end as a numeric non-root USER")
    if any(instr == "HEALTHCHECK" for s in stages.values() for instr, _ in s["lines"]):
        problem("Dockerfile: has a HEALTHCHECK (Kubernetes probes do that)")
    base = [n for n in names if stages[n]["from"] == "debian:bookworm-slim"]
    listed = apt_packages(stages[base[0]]) if base else []
    if not listed:
        problem("Dockerfile: no apt-get install in the runtime base stage")
        return
    ok(f"Dockerfile: stages {', '.join(names)}; runtime packages: {' '.join(listed)}")
    for must in ("ca-certificates", "tzdata"):
        if must not in listed:
            problem(f"Dockerfile: runtime stage lacks {must}")
    closure = depends_closure(listed)
    binaries = [b for b in ("vmh-producer", "vmh-worker", "vmhctl", "espocrm-sim", "advoware-sim")
                if os.path.exists(os.path.join(args.bin, b))]
    for b in ("vmh-producer", "vmh-worker"):
        if b not in binaries:
            problem(f"{b} not built in {args.bin}")
    sanitizer = re.compile(r"^lib(asan|ubsan|lsan|tsan)\b")
    used = set()
    for b in binaries:
        path = os.path.join(args.bin, b)
        libs = {}
        for line in run(["ldd", path]).stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line)
            if m:
                libs[m.group(1)] = m.group(2)
            elif "not found" in line:
                problem(f"{b}: {line.strip()}")
        needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", path]).stdout)
        dpkg_owners(list(libs.values()))
        direct = set()
        for lib in needed:
            if sanitizer.match(lib):
                print(f"note: {b}: {lib} (sanitizer build) not checked")
                continue
            pkg = dpkg_package(libs.get(lib, lib))
            if pkg is None:
                problem(f"{b}: no Debian package owns {lib}")
                continue
            direct.add(pkg)
            if pkg not in listed:
                problem(f"{b}: links {lib} from package {pkg}, missing from the runtime stage")
        for lib, where in libs.items():
            if sanitizer.match(lib):
                continue
            pkg = dpkg_package(where)
            used.add(pkg)
            if pkg is not None and pkg not in closure:
                problem(f"{b}: loads {lib} ({pkg}), which the runtime packages do not bring")
        ok(f"{b}: {len(needed)} direct libraries from {', '.join(sorted(direct))}; "
           f"{len(libs)} loaded in all, each from a runtime package or one of their dependencies")
    for p in listed:
        if p not in ("ca-certificates", "tzdata") and p not in used:
            problem(f"Dockerfile: runtime package {p} is not used by any binary")


# ---- create-topics.sh ---------------------------------------------------------------------------

STUB = r"""#!/bin/sh
# A stand-in for kafka-topics.sh: logs its arguments; --describe answers with the partition
# count of EXISTING (topic=count,...) or of the last --create.
echo "$*" >>"$STUB_LOG"
topic=""; parts=""; describe=0
while [ $# -gt 0 ]; do
    case "$1" in
    --topic) topic=$2; shift ;;
    --partitions) parts=$2; shift ;;
    --describe) describe=1 ;;
    esac
    shift
done
if [ "$describe" = 1 ]; then
    count=$(printf '%s' "${EXISTING:-}" | tr ',' '\n' | sed -n "s/^$topic=//p")
    [ -n "$count" ] || count=$(cat "$STUB_LOG.$topic" 2>/dev/null)
    printf 'Topic: %s\tTopicId: x\tPartitionCount: %s\tReplicationFactor: 3\tConfigs: \n' \
        "$topic" "$count"
else
    echo "$parts" >"$STUB_LOG.$topic"
fi
"""


def check_topics_script(args):
    script = os.path.join(args.root, "deploy", "k8s", "base", "create-topics.sh")
    with tempfile.TemporaryDirectory() as tmp:
        stub = os.path.join(tmp, "kafka-topics.sh")
        with open(stub, "w") as f:
            f.write(STUB)
        os.chmod(stub, 0o755)
        cases = [
            ("fresh topics", {}, 0, 5),
            ("one topic with other partitions",
             {"EXISTING": "vmh.beteiligte.update=6"}, 1, 5),
            ("client config for SASL", {"KAFKA_ADMIN_CONFIG": "/etc/kafka/client.properties"}, 0,
             5),
        ]
        for i, (name, extra, want_rc, want_topics) in enumerate(cases):
            log = os.path.join(tmp, f"log{i}")
            env = dict(os.environ, KAFKA_BROKERS="b1:9092", KAFKA_BIN=tmp, STUB_LOG=log,
                       TOPIC_PARTITIONS="12", TOPIC_REPLICATION_FACTOR="3", **extra)
            r = run(["sh", script], env=env)
            calls = open(log).read().splitlines() if os.path.exists(log) else []
            creates = [c for c in calls if "--create" in c]
            topics = sorted(re.search(r"--topic (\S+)", c).group(1) for c in creates)
            want = sorted(f"vmh.beteiligte.{k}" for k in
                          ("create", "update", "delete", "sync_check", "dlq"))
            bad = []
            if r.returncode != want_rc:
                bad.append(f"exit {r.returncode}, want {want_rc} ({r.stderr.strip()})")
            if topics != want:
                bad.append(f"created {topics}")
            if any("--partitions 12 --replication-factor 3" not in c or "--if-not-exists" not in c
                   or "--bootstrap-server b1:9092" not in c for c in creates):
                bad.append("a create without the partitions, replication, brokers or "
                           "--if-not-exists")
            if "KAFKA_ADMIN_CONFIG" in extra and not all(
                    "--command-config /etc/kafka/client.properties" in c for c in calls):
                bad.append("KAFKA_ADMIN_CONFIG not passed as --command-config")
            if want_rc == 1 and "vmh.beteiligte.update has 6 partitions" not in r.stderr:
                bad.append(f"no message naming the topic: {r.stderr.strip()}")
            if bad:
                problem(f"create-topics.sh, {name}: " + "; ".join(bad))
            else:
                ok(f"create-topics.sh, {name}: exit {want_rc}")


# ---- live /metrics ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def check_metrics(args):
    promtool = need("promtool", "prometheus")
    redis = need("redis-server", "redis-server")
    procs = []
    tmp = tempfile.mkdtemp(prefix="vmh-deploy-metrics-")

    def start(argv, env=None, first_line=False):
        log = open(os.path.join(tmp, os.path.basename(argv[0]) + f".{len(procs)}.log"), "w")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE if first_line else log, stderr=log,
                             env=dict(os.environ, **(env or {})), text=True)
        procs.append(p)
        return p.stdout.readline().strip() if first_line else None

    try:
        binp = lambda n: os.path.join(args.bin, n)  # noqa: E731
        brokers = start([binp("kafka-mock"), "--partitions", "4"], first_line=True)
        rport = free_port()
        start([redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"])
        espo = start([binp("espocrm-sim"), "--port", "0"], first_line=True)
        advo = start([binp("advoware-sim"), "--port", "0"], first_line=True)
        if not all(x and x.count(":") >= 1 for x in (brokers, espo, advo)):
            problem(f"the simulators did not start (logs in {tmp})")
            return
        espo = "http://" + espo.split("listening on ")[-1]
        advo = "http://" + advo.split("listening on ")[-1]
        common = {"KAFKA_BROKERS": brokers, "REDIS_URL": f"redis://127.0.0.1:{rport}",
                  "ESPOCRM_URL": espo, "ESPOCRM_API_KEY": "dev-espocrm-key", "LOG_LEVEL": "warn"}
        pport, wport = free_port(), free_port()
        start([binp("vmh-producer")], dict(common, WEBHOOK_LISTEN=f"127.0.0.1:{free_port()}",
                                            METRICS_LISTEN=f"127.0.0.1:{pport}",
                                            WEBHOOK_SECRETS="wh1:s3cret"))
        start([binp("vmh-worker")], dict(
            common, METRICS_LISTEN=f"127.0.0.1:{wport}", ADVOWARE_URL=advo,
            ADVOWARE_APP_ID="vmh-dev", ADVOWARE_API_KEY="ZGV2LWFkdm93YXJlLWtleQ==",
            ADVOWARE_KANZLEI="dev", ADVOWARE_DATABASE="dev", ADVOWARE_USER="dev",
            ADVOWARE_PASSWORD="dev"))
        for name, port in (("vmh-producer", pport), ("vmh-worker", wport)):
            deadline = time.time() + 60
            while http_get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
                if time.time() > deadline or any(p.poll() is not None for p in procs):
                    problem(f"{name} not ready within 60 s (logs in {tmp})")
                    return
                time.sleep(0.1)  # polling interval
            status, text = http_get(f"http://127.0.0.1:{port}/metrics")
            if status != 200 or not text:
                problem(f"{name}: GET /metrics answered {status}")
                continue
            # SPEC §10: every series a program knows at start has a sample from the start
            families = {line.split()[2] for line in text.splitlines()
                        if line.startswith("# TYPE ")}
            sampled = {re.split(r"[{ ]", line, 1)[0] for line in text.splitlines()
                       if line and line[0] != "#"}
            # (the consumer lag's label sets are partitions: known once assigned)
            for fam in sorted(families - {"vmh_consumer_lag"}):
                if not any(x == fam or x.startswith(fam + "_") for x in sampled):
                    problem(f"{name}: {fam} has no sample at start")
            if "vmh_build_info" not in families:
                problem(f"{name}: vmh_build_info missing")
            r = run([promtool, "check", "metrics"], input=text)
            for line in (r.stdout + r.stderr).splitlines():
                problem(f"{name}: promtool: {line}")
            if r.returncode == 0:
                series = sum(1 for line in text.splitlines() if line and line[0] != "#")
                ok(f"{name}: promtool check metrics clean ({series} samples)")
            elif not (r.stdout + r.stderr).strip():
                problem(f"{name}: promtool exited {r.returncode}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not PROBLEMS:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- the checks' own test ------------------------------------------------------------------------

# (check, file, text, replacement, what the check must then report): each plants one mistake
# in a copy of the tree.
MUTATIONS = [
    ("config", "deploy/k8s/base/worker.yaml",
     "            - name: ADVOWARE_PASSWORD_FILE\n"
     "              value: /run/secrets/vmh/ADVOWARE_PASSWORD\n",
     "", "required ADVOWARE_PASSWORD is not set for vmh-worker"),
    ("config", "docker-compose.yml", "      ADVOWARE_TZ: Europe/Berlin\n",
     "      ADVOWARE_TZ: Europe/Berlin\n      ADVOWARE_TIMEZONE: Europe/Berlin\n",
     "ADVOWARE_TIMEZONE is not in common/cfg_vars.c"),
    ("config", "docker-compose.yml", "      ESPOCRM_NOTIFY_USER_ID: kanzlei-admin\n",
     "      ESPOCRM_NOTIFY_USER_ID: kanzlei-admin\n      WEBHOOK_MAX_BODY: \"2048\"\n",
     "WEBHOOK_MAX_BODY is set but vmh-worker does not read it"),
    ("config", "deploy/k8s/base/worker.yaml", "terminationGracePeriodSeconds: 45",
     "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds 30 is not above"),
    ("config", "docker-compose.yml", "stop_grace_period: 45s", "stop_grace_period: 20s",
     "stop_grace_period 20s is not above"),
    ("config", "deploy/k8s/overlays/example/scaledobject-patch.yaml", "maxReplicaCount: 24",
     "maxReplicaCount: 48", "maxReplicaCount 48 differs"),
    ("config", "deploy/k8s/base/scaledobject.yaml", "offsetResetPolicy: earliest",
     "offsetResetPolicy: latest", "offsetResetPolicy = 'latest'"),
    ("config", "deploy/k8s/base/kustomization.yaml", "      - LOG_LEVEL=info\n",
     "      - LOG_LEVEL=info\n      - ADVOWARE_PASSWORD=geheim\n",
     "secret ADVOWARE_PASSWORD is a literal"),
    ("config", "docker-compose.yml", "  worker:\n    build: *vmh-build\n",
     "  worker:\n    container_name: worker\n    build: *vmh-build\n", "prevent --scale"),
    ("config", "docker-compose.yml", 'KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false"',
     'KAFKA_AUTO_CREATE_TOPICS_ENABLE: "true"', "KAFKA_AUTO_CREATE_TOPICS_ENABLE=false"),
    ("config", "deploy/k8s/base/redis.yaml", "--appendonly yes", "--appendonly no",
     "Redis without --appendonly yes"),
    ("config", "deploy/k8s/base/producer.yaml", "path: /healthz", "path: /health",
     "livenessProbe is not an HTTP GET of /healthz"),
    ("config", "deploy/k8s/base/networkpolicy.yaml", '              vmh-sync/redis-client: "true"',
     '              vmh-sync/redis-client: "yes"', "pods are not admitted to Redis"),
    ("config", "deploy/k8s/base/producer.yaml", "              memory: 32Mi\n", "",
     "resources need requests"),
    ("config", "deploy/k8s/overlays/example/secret.example.yaml",
     "ADVOWARE_PASSWORD: CHANGE-ME-advoware-password", "ADVOWARE_PASSWORD: hunter2",
     "not a CHANGE-ME placeholder"),
    ("config", "deploy/k8s/overlays/example/secret.example.yaml",
     "REDIS_URL: redis://:CHANGE-ME-redis-password@", "REDIS_URL: redis://:CHANGE-ME-other@",
     "REDIS_URL does not carry REDIS_PASSWORD"),
    ("dockerfile", "deploy/Dockerfile", "libuv1 libhttp-parser2.9", "libhttp-parser2.9",
     "libuv1, missing from the runtime stage"),
    ("dockerfile", "deploy/Dockerfile", "EXPOSE 8080 9090", "EXPOSE 8080 9090\nHEALTHCHECK NONE",
     "has a HEALTHCHECK"),
    ("dockerfile", "deploy/Dockerfile", "USER 10001:10001\n# WEBHOOK", "USER root\n# WEBHOOK",
     "stage runtime does not end as a numeric non-root USER"),
    ("schema", "deploy/k8s/base/producer.yaml", "  replicas: 2", "  replicas: two",
     "spec/replicas must be integer"),
    ("render", "deploy/k8s/overlays/example/kustomization.yaml", "  - ingress-patch.yaml",
     "  - ingress-patch-missing.yaml", "kubectl kustomize deploy/k8s/overlays/example failed"),
    ("yamllint", "docker-compose.yml", "    restart: unless-stopped\n",
     "    restart: unless-stopped  \n", "trailing-spaces"),
    ("compose", "docker-compose.yml", "  producer:\n    build: *vmh-build\n",
     "  producer:\n    build: *no-such-anchor\n", "docker-compose config -q"),
]


def check_selftest(args):
    """Plants each mistake of MUTATIONS in a copy of the tree; the check must report it."""
    copied = ["docker-compose.yml", "deploy", os.path.join("common", "cfg_vars.c")]
    for i, (check, rel, old, new, expect) in enumerate(MUTATIONS):
        with tempfile.TemporaryDirectory() as tmp:
            for c in copied:
                src, dst = os.path.join(args.root, c), os.path.join(tmp, c)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                (shutil.copytree if os.path.isdir(src) else shutil.copyfile)(src, dst)
            path = os.path.join(tmp, rel)
            text = open(path).read()
            if old not in text:
                problem(f"selftest {i}: {rel} no longer contains {old!r}; update MUTATIONS")
                continue
            with open(path, "w") as f:
                f.write(text.replace(old, new, 1))
            r = run([sys.executable, os.path.abspath(__file__), check, "--root", tmp,
                     "--bin", args.bin, "--npm-dir", args.npm_dir])
            if r.returncode == 0 or expect not in r.stdout:
                problem(f"selftest {i}: {check} did not report {expect!r} after {rel}: "
                        f"{old.strip()!r} -> {new.strip()!r} (exit {r.returncode})")
            else:
                ok(f"selftest {i}: {check} reports {expect!r}")


CHECKS = {"render": check_render, "yamllint": check_yamllint, "compose": check_compose,
          "npm": check_npm, "schema": check_schema, "config": check_config,
          "dockerfile": check_dockerfile, "topics-script": check_topics_script,
          "metrics": check_metrics, "selftest": check_selftest}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("check", choices=sorted(CHECKS))
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(HERE)))
    ap.add_argument("--bin", default=None)
    ap.add_argument("--npm-dir", default=None)
    args = ap.parse_args()
    args.root = os.path.abspath(args.root)
    args.bin = os.path.abspath(args.bin or os.path.join(args.root, "build", "bin"))
    args.npm_dir = os.path.abspath(args.npm_dir or os.path.join(args.root, "build", "deploy-npm"))
    CHECKS[args.check](args)
    print(f"check.py {args.check}: {len(PROBLEMS)} problem(s)")
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
