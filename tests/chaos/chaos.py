#!/usr/bin/env python3
"""The chaos run (ctest -L chaos; `make chaos` runs it bigger): people editing both systems
while the machinery fails under them, then a convergence wait and exact invariants.

The whole pipeline on loopback, started as tests/demo/demo.py starts it (free ports,
kafka-mock, a private redis-server, espocrm-sim, advoware-sim, vmh-producer with its webhooks
registered and a short cron, CHAOS_WORKERS vmh-workers), then:

  setup     CHAOS_PARTIES parties with phones and e-mails are created through espocrm-sim's UI
            route (webhooks) and synced; the run waits until every one is clean and equal.
  chaos     for CHAOS_SECONDS, people edit both systems, each side DISJOINT things per party, so
            that every edit must survive and no conflict can arise:
              EspoCRM users: vorname, titel, anrede, dateOfBirth, the phone numbers and e-mail
                addresses they added (add, change, delete; read-modify-write with
                X-Version-Number, as EspoCRM's form does), create and delete parties;
              Advoware users: zusatz, bAnrede (also cleared), and the Kommunikation entries they
                added (add, change, empty, delete through /_sim/ui); each edit is followed by a
                sync_check for the party (Advoware sends no webhooks: the operator's resync, as
                vmhctl resync sends it), from a background thread, so a broker outage delays it.
            Meanwhile: API faults on both simulators (503 at CHAOS_FAULT_RATE, plus lost answers:
            "apply" + 503, "apply" + drop, and dropped connections), CHAOS_KILLS kill -9 of a
            worker (restarted at once), CHAOS_REDIS_RESTARTS crashes of redis-server (kill -9,
            restarted 2 s later on its AOF with appendfsync always, as production requires
            persistence), and a broker outage of CHAOS_BROKER_OUTAGE_S through kafka-mock's admin
            port (all brokers down, then up).
  converge  faults cleared; poll (deadline CHAOS_CONVERGE_S) until every party is clean and the
            invariants below hold. Nothing is resynced by the driver in this phase.
  idle      3 s in which nothing should run (runs and writes counted: churn is reported).
  resync    a sync_check for every live party (what `vmhctl resync` sends): it must write
            nothing (PUT/POST calls on both simulators' /_sim/stats, token calls apart).

Invariants, per party: both systems equal (the 8 fields of SPEC §5.1; every Kommunikation
entry's value — phones by E.164 —, kind and marker; empty entries are slots, slots are empty);
every edit a person made present in both systems (the last one per field/entry and side);
exactly one Advoware record per EspoCRM party (by its unique name); no duplicated entry; no
entry a person changed or deleted back again; status clean. Documented states, listed and not
failed: an uncertain create (SPEC §5.3: failed, waits for a person), also one deleted in
EspoCRM afterwards (the sync never learnt the betNr; its notice asked a person to check).
Globally: no "Konflikt gelöst" notice, no other notice the edits cannot cause, every party
deleted in EspoCRM that has an Advoware record notified exactly once with its betNr.

Fault choices: POST /Note gets 503s and dropped connections but no lost answers (a direct
message whose answer was lost cannot be told from one never sent: EspoCRM has no idempotency
key). The workers run with a 6 s Kafka session timeout: with librdkafka's 45 s, every kill -9
holds the whole group's rebalances for 45 s or more (twice per kill, observed).

CHAOS_SELFTEST=1 (ctest chaos_selftest): after a short run, plant each kind of violation on
parties found right and fail unless the check reports every one.

Why Advoware users edit only while the party's lock is free: Advoware has no optimistic
concurrency, so an edit landing between a run's Advoware GET and its PUT of the same record is
overwritten by any client (inherent, not the sync's fault). A person whose edit would land there
is modelled as one who saves a moment earlier or later: the driver checks the party's Redis lock
(sync_lock:cbeteiligte:<id>) just before the edit (the simulators' latency makes the window
after the check far longer than the edit). EspoCRM-side edits need no such care (OCC).

Exit 0 only when every invariant holds. Figures: parties, edits per side, kills, faults,
converged %, mismatches, lost edits, duplicates, seconds to converge, resync writes.

Environment (defaults: --size ci / --size big): CHAOS_PARTIES (80/1000), CHAOS_SECONDS
(60/180), CHAOS_SEED (1), CHAOS_WORKERS (2/3), CHAOS_KILLS (2/5), CHAOS_REDIS_RESTARTS (1/2),
CHAOS_BROKER_OUTAGE_S (5/8), CHAOS_RATE (edits/s; 15/40), CHAOS_FAULT_RATE (0.02: 503s; lost
answers and drops add a quarter of it each), CHAOS_CONVERGE_S (60/300), CHAOS_LATENCY_MS (10),
CHAOS_JITTER_MS (10), CHAOS_WORKER_ENV ("K=V K=V": extra worker settings), CHAOS_KEEP_LOGS=1,
VMH_BIN_DIR (build/bin).
"""
import base64
import binascii
import collections
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pipeline import free_port, phone_key, register_webhooks  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("VMH_BIN_DIR", os.path.join(ROOT, "build", "bin"))
ESPO_KEY = "dev-espocrm-key"
TOPIC_SYNC_CHECK = "vmh.beteiligte.sync_check"
SIZES = {  # name: (parties, seconds, workers, kills, redis restarts, outage s, edits/s, converge s)
    "ci": (80, 60, 2, 2, 1, 5, 15, 60),
    "big": (1000, 180, 3, 5, 2, 8, 40, 300),
}
# The 8 fields (SPEC §5.1): EspoCRM name → Advoware name, and who edits them in this run.
FIELDS = (("name", "name"), ("vorname", "vorname"), ("rechtsform", "rechtsform"),
          ("titel", "titel"), ("anrede", "anrede"), ("bAnrede", "bAnrede"),
          ("zusatz", "zusatz"), ("dateOfBirth", "geburtsdatum"))
ESPO_FIELDS = ("vorname", "titel", "anrede", "dateOfBirth")
ADVO_FIELDS = ("zusatz", "bAnrede")
# Advoware kommKz → the EspoCRM kind it stands for (SPEC §5.4, Company-based entity: no Home).
KZ_KIND = {1: "Office", 2: "Fax", 3: "Mobile", 4: "email", 5: "email", 6: "Other", 7: "Fax",
           8: "email", 9: "Other", 10: "Other", 11: "email", 12: "email"}
ESPO_PHONE_TYPES = ("Office", "Mobile", "Fax", "Other")
MAX_ESPO_PHONES, MAX_ESPO_MAILS, MAX_ADVO_PHONES, MAX_ADVO_MAILS = 4, 2, 3, 2
NOTE_DELETED = re.compile(r"in EspoCRM gelöscht.*betNr (\d+)")
PROCS = []
WORK = tempfile.mkdtemp(prefix="vmh-chaos-")
SETPRIV = shutil.which("setpriv")  # children die with the driver even on SIGKILL (ctest timeout)


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


def say(*args):
    print(*args, flush=True)


# ---- processes (as tests/demo/demo.py) -------------------------------------------------------


def start(prog, args, env=None, log_name=None, out=False):
    log = open(os.path.join(WORK, (log_name or os.path.basename(prog)) + ".log"), "a")
    path = prog if "/" in prog or prog == "redis-server" else os.path.join(BIN, prog)
    cmd = ([SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []) + [path] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if out else log, stderr=log,
                         env=dict(os.environ, **(env or {})), text=True)
    PROCS.append(p)
    return p


def stop_all():
    """The project's programs first (they leave the group and commit while Kafka and Redis are
    still there), then the simulators, Redis and kafka-mock."""
    ours = [p for p in PROCS if "vmh-" in " ".join(p.args)]
    for group in (ours, [p for p in PROCS if p not in ours]):
        for p in group:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in group:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    PROCS.clear()


def kill9(p):
    if p.poll() is None:
        p.kill()  # SIGKILL
    p.wait()


class Http:
    """One keep-alive connection per base URL (thousands of short connections would fill the
    ephemeral port range in a long run). Returns (status, parsed JSON or None); 0 = no answer."""

    def __init__(self):
        self.conns = {}

    def __call__(self, method, url, body=None, headers=None, timeout=30, raw=False):
        assert url.startswith("http://")
        hostport, _, path = url[len("http://"):].partition("/")
        data = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = self.conns.get(hostport)
            if conn is None:
                conn = self.conns[hostport] = http.client.HTTPConnection(hostport, timeout=timeout)
            try:
                conn.request(method, "/" + path, body=data, headers=hdrs)
                r = conn.getresponse()
                data_in = r.read()
                if raw:
                    return r.status, data_in.decode(errors="replace")
                try:
                    return r.status, json.loads(data_in) if data_in else None
                except ValueError:
                    return r.status, None
            except (OSError, http.client.HTTPException):
                conn.close()
                del self.conns[hostport]
                if attempt:
                    return 0, None
        return 0, None


http_ = Http()


def wait_for(what, cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.2)  # polling interval
    raise SystemExit(f"chaos: {what} did not happen within {timeout} s (logs: {WORK})")


class Redis:
    """A private redis-server with AOF (appendfsync always) that can crash and come back on the
    same port and data, plus a minimal RESP client for the lock check."""

    def __init__(self):
        self.port = free_port()
        self.dir = os.path.join(WORK, "redis")
        os.makedirs(self.dir)
        self.proc = None
        self.sock = None
        self.start()

    def start(self):
        self.proc = start("redis-server", ["--port", str(self.port), "--bind", "127.0.0.1",
                                           "--dir", self.dir, "--appendonly", "yes",
                                           "--appendfsync", "always", "--save", ""])
        wait_for("redis-server answering", lambda: self.cmd("PING") == "PONG", 20)

    def crash(self):
        self.close()
        kill9(self.proc)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def cmd(self, *args):
        """One command; None when Redis does not answer."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                self.buf = b""
            msg = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            self.sock.sendall(msg.encode())
            return self._reply()
        except OSError:
            self.close()
            return None

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind in (b"+", b"-"):
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("closed")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        raise OSError(f"unexpected RESP {line!r}")

    def locked(self, entity_id):
        """True when a run holds the party's lock, or Redis cannot say."""
        n = self.cmd("EXISTS", f"sync_lock:cbeteiligte:{entity_id}")
        return n != 0


class Stack:
    def __init__(self, cfg):
        self.cfg = cfg
        self.kafka = start("kafka-mock", ["--partitions", "12", "--admin-port", "0"], out=True)
        self.brokers = self.kafka.stdout.readline().strip()
        admin = self.kafka.stdout.readline().strip()
        if not admin.startswith("admin listening on "):
            raise SystemExit(f"chaos: kafka-mock has no admin interface ({admin!r})")
        self.kafka_admin = "http://" + admin[len("admin listening on "):]
        self.redis = Redis()
        sim_args = ["--port", "0", "--latency-ms", str(cfg["latency"]), "--jitter-ms",
                    str(cfg["jitter"]), "--seed", str(cfg["seed"])]
        # kanzlei-admin: the user ESPOCRM_NOTIFY_USER_ID names (as in the demo)
        self.espo = self.sim("espocrm-sim", sim_args + ["--webhook-retry-ms", "2000",
                                                       "--user", "kanzlei-admin"])
        self.advo = self.sim("advoware-sim", sim_args)
        web, ops = free_port(), free_port()
        secrets = register_webhooks(http_, self.espo, ESPO_KEY, web)
        if not secrets:
            raise SystemExit("chaos: webhook registration failed")
        self.common = {"KAFKA_BROKERS": self.brokers,
                       "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}",
                       "ESPOCRM_URL": self.espo, "ESPOCRM_API_KEY": ESPO_KEY,
                       "LOG_FORMAT": "text", "LOG_LEVEL": "info"}
        # the cron on a short interval: the retry scan and the fallback scan (dirty, failed due)
        start("vmh-producer", [], dict(self.common, WEBHOOK_LISTEN=f"127.0.0.1:{web}",
                                       METRICS_LISTEN=f"127.0.0.1:{ops}",
                                       WEBHOOK_SECRETS=secrets, CRON_INTERVAL_S="3",
                                       CRON_RETRY_INTERVAL_S="1", CRON_BATCH="2000"))
        self.workers = []  # [process, metrics port, generation]
        for i in range(cfg["workers"]):
            self.workers.append(self.start_worker(i, 0))
        wait_for("the workers joining the group", lambda: all(
            http_("GET", f"http://127.0.0.1:{w[1]}/readyz")[0] == 200 for w in self.workers), 90)

    def sim(self, name, args):
        p = start(name, args, out=True)
        line = p.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"chaos: {name} did not start (logs: {WORK})")
        return "http://" + line[len("listening on "):]

    def start_worker(self, i, gen):
        port = free_port()
        env = dict(self.common, METRICS_LISTEN=f"127.0.0.1:{port}", ADVOWARE_URL=self.advo,
                   ADVOWARE_APP_ID="vmh-dev", ADVOWARE_API_KEY="ZGV2LWFkdm93YXJlLWtleQ==",
                   ADVOWARE_KANZLEI="dev", ADVOWARE_DATABASE="dev", ADVOWARE_USER="dev",
                   ADVOWARE_PASSWORD="dev", ESPOCRM_NOTIFY_USER_ID="kanzlei-admin",
                   WORKER_CONCURRENCY="8", HTTP_TIMEOUT_MS="5000",
                   SYNC_RETRY_BACKOFF="1s,2s,4s,8s,16s",
                   # a member killed with -9 holds every rebalance of the group until its
                   # session times out (librdkafka's default 45 s, twice per kill here): the
                   # run's kills would stall the whole group for minutes
                   KAFKA_CFG_SESSION_TIMEOUT_MS="6000", KAFKA_CFG_HEARTBEAT_INTERVAL_MS="1000")
        env.update(self.cfg["worker_env"])
        return [start("vmh-worker", [], env, log_name=f"vmh-worker{i}"), port, gen]

    def inflight(self, i):
        st = http_("GET", f"http://127.0.0.1:{self.workers[i][1]}/metrics", raw=True)
        m = re.search(r"^vmh_inflight (\S+)$", st[1] or "", re.M) if st[0] == 200 else None
        return float(m.group(1)) if m else 0.0

    def kill_busy_worker(self, rnd):
        """kill -9 of a worker in the middle of a sync if one gets busy within 3 s (a kill of an
        idle worker tests little), else of any; restarted at once. True if it was busy."""
        end = time.time() + 3
        while time.time() < end:
            busy = [i for i in range(len(self.workers)) if self.inflight(i) >= 1]
            if busy:
                self.kill_worker(rnd.choice(busy))
                return True
            time.sleep(0.02)
        self.kill_worker(rnd.randrange(len(self.workers)))
        return False

    def kill_worker(self, i):
        kill9(self.workers[i][0])
        self.workers[i] = self.start_worker(i, self.workers[i][2] + 1)

    def brokers_set(self, up):
        st, _ = http_("POST", f"{self.kafka_admin}/_mock/brokers/{'up' if up else 'down'}")
        if st != 200:
            raise SystemExit(f"chaos: kafka-mock admin answered {st}")

    def faults(self, on, rate):
        if on and rate <= 0:
            return
        for url in (self.espo, self.advo):
            if not on:
                st, _ = http_("POST", url + "/_sim/faults", None)
                st2 = 200
            else:
                # A direct message whose answer was lost cannot be told from one never sent
                # (EspoCRM has no idempotency key), so POST /Note gets errors and dropped
                # connections but no lost answers: its "exactly once" would be unprovable.
                note = {"method": "POST", "route": "/api/v1/Note"}
                rules = [dict(note, status=503, rate=rate), dict(note, drop=True, rate=rate / 4),
                         dict(note, delay_ms=1),  # every other Note call passes untouched
                         {"status": 503, "apply": True, "rate": rate / 4},  # done, answer lost
                         {"drop": True, "apply": True, "rate": rate / 4},  # done, no answer
                         {"drop": True, "rate": rate / 4}]  # connection closed, not done
                st, _ = http_("POST", url + "/_sim/faults", rules)
                st2, _ = http_("POST", url + "/_sim/faults", {"fail_rate": rate})  # plain 503s
            if st != 200 or st2 != 200:
                raise SystemExit(f"chaos: setting faults on {url} answered {st}/{st2}")

    def stats(self):
        """{(sim, method, route, status): count} of both simulators."""
        out = {}
        for name, url in (("espocrm", self.espo), ("advoware", self.advo)):
            st, body = http_("GET", url + "/_sim/stats")
            if st != 200:
                raise SystemExit(f"chaos: {name} stats answered {st}")
            for c in body.get("calls", []):
                out[(name, c["method"], c["route"], c["status"])] = c["count"]
        return out

    def entities(self):
        st, body = http_("GET", self.espo + "/_sim/state/CBeteiligte")
        if st != 200:
            raise SystemExit(f"chaos: espocrm-sim state answered {st}")
        return body

    def records(self):
        st, body = http_("GET", self.advo + "/_sim/state/Beteiligte")
        if st != 200:
            raise SystemExit(f"chaos: advoware-sim state answered {st}")
        return body

    def notifications(self):
        st, body = http_("GET", self.espo + "/_sim/notifications")
        if st != 200:
            raise SystemExit(f"chaos: espocrm-sim notifications answered {st}")
        return body


def writes(stats):
    """Data writes counted by the simulators: PUT and POST, token requests apart."""
    return sum(n for (sim, method, route, _), n in stats.items()
               if method in ("PUT", "POST") and route != "/api/v1/Token")


def faults_seen(stats):
    """Faulted calls as the clients saw them: 503 (with or without the effect) and 0 (drop)."""
    f = collections.Counter()
    for (sim, _, _, status), n in stats.items():
        if status in (0, 503):
            f[(sim, status)] += n
    return f


def stats_delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


class Resyncer(threading.Thread):
    """sync_check messages (what `vmhctl resync` sends: source cli, keyed and partitioned as the
    producer does, murmur2_random), batched, on their own thread so a broker outage delays
    them without stopping the people."""

    def __init__(self, brokers):
        super().__init__(daemon=True)
        self.brokers = brokers
        self.q = queue.Queue()
        self.sent = 0
        self.failures = 0
        self.lock = threading.Lock()
        self.pending = 0  # ids added and not yet acknowledged by Kafka

    def idle(self):
        with self.lock:
            return self.pending == 0

    def add(self, ids):
        with self.lock:
            self.pending += len(ids)
        for i in ids:
            self.q.put(i)

    def send(self, ids):
        lines = "".join(f'{i}:{json.dumps({"v": 1, "entityId": i, "event": "sync_check", "source": "cli"})}\n'
                        for i in ids)
        try:
            r = subprocess.run(["kcat", "-P", "-b", self.brokers, "-t", TOPIC_SYNC_CHECK, "-K:",
                                "-X", "partitioner=murmur2_random",
                                "-X", "message.timeout.ms=60000"],
                               input=lines, text=True, capture_output=True, timeout=90)
            return r.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def run(self):
        while True:
            batch = [self.q.get()]
            time.sleep(0.2)  # batch what comes in the next moment
            while True:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            ids = list(dict.fromkeys(batch))
            while not self.send(ids):
                self.failures += 1
                time.sleep(1)
            self.sent += len(ids)
            with self.lock:
                self.pending -= len(batch)


# ---- the people's model ----------------------------------------------------------------------


def item_key(value, kind):
    value = (value or "").strip()
    return (value.lower() if kind == "email" else phone_key(value), kind)


def norm(v):
    return "" if v is None else str(v).strip()


class Party:
    def __init__(self, k, name, fields, seeded):
        self.k, self.name, self.seeded = k, name, seeded
        self.id = None
        self.betnr = None
        self.deleted = False
        self.fields = dict(fields)           # the expected 8 fields (EspoCRM names)
        self.espo_phones = {}                # E.164 → type (added in EspoCRM)
        self.espo_mails = set()              # lower-case (added in EspoCRM)
        self.advo = {}                       # entry id → [tlf, kz, retired] (added in Advoware)
        self.raced = set()                   # items whose Advoware edit may have met a run
        self.history = {}                    # item key → the side whose user typed it

    def typed(self, key, side):
        self.history.setdefault(key, side)

    def expected_komm(self):
        """{item key: who made it}"""
        want = {}
        for v, t in self.espo_phones.items():
            want[(v, t)] = "EspoCRM"
        for m in self.espo_mails:
            want[(m, "email")] = "EspoCRM"
        for eid, (tlf, kz, _) in self.advo.items():
            if tlf:
                want[item_key(tlf, KZ_KIND[kz])] = "Advoware"
        return want


class People:
    """EspoCRM and Advoware users. Every value typed is unique in the run, so an item is known by
    its value; every edit is recorded in the model (last write wins per field/entry and side)."""

    def __init__(self, stack, rnd, parties):
        self.s, self.rnd, self.parties = stack, rnd, parties
        self.counter = 0
        self.edits = collections.Counter()
        self.anomalies = []
        self.raced = 0
        self.deferred_lock = 0
        self.no_betnr = 0
        self.journal = open(os.path.join(WORK, "edits.log"), "a")

    def note(self, p, text):
        """The journal of every edit (WORK/edits.log), in the workers' log time format."""
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
        self.journal.write(f"{stamp} {p.id} betNr {p.betnr} {text}\n")
        self.journal.flush()

    def uniq(self):
        self.counter += 1
        return self.counter

    # -- EspoCRM users ---------------------------------------------------------------------

    def new_phone(self, kind):
        n = self.uniq()
        return {"Office": f"+49 511 2{n:06d}", "Fax": f"+49 511 3{n:06d}",
                "Mobile": f"+49 170 4{n:06d}", "Other": f"+49 511 5{n:06d}"}[kind]

    def new_mail(self):
        return f"e{self.uniq()}.{self.rnd.choice(['info', 'kanzlei', 'post'])}@espo.example.com"

    def field_value(self, f):
        n, r = self.uniq(), self.rnd
        if f == "vorname":
            return f"{r.choice(['Max', 'Erika', 'Jürgen', 'Anna', 'Lena'])} {n}"
        if f == "titel":
            return "" if r.random() < 0.2 else f"Dr. {n}"
        if f == "anrede":
            return f"{r.choice(['Herr', 'Frau'])} {n}"
        if f == "dateOfBirth":
            return f"{r.randint(1940, 2000):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if f == "zusatz":
            return None if r.random() < 0.15 else f"Zusatz aus Advoware {n}"
        if f == "bAnrede":
            return None if r.random() < 0.15 else f"Sehr geehrte Damen und Herren {n}"
        raise ValueError(f)

    def create_party(self, k, seeded):
        name = f"Chaos {k:05d}"
        fields = {"name": name, "vorname": f"Max {k}", "rechtsform": self.rnd.choice(
            ["GmbH", "AG", "KG"]), "titel": "", "anrede": "Herr",
            "bAnrede": "Sehr geehrter Herr", "zusatz": f"Zusatz {k}",
            "dateOfBirth": f"19{50 + k % 50:02d}-0{1 + k % 9}-1{k % 9}"}
        p = Party(k, name, fields, seeded)
        phones = [("Office", self.new_phone("Office"))]
        if self.rnd.random() < 0.5:
            phones.append(("Mobile", self.new_phone("Mobile")))
        mail = self.new_mail()
        body = dict(fields, phoneNumberData=[
            {"phoneNumber": v, "type": t, "primary": i == 0} for i, (t, v) in enumerate(phones)],
            emailAddressData=[{"emailAddress": mail, "primary": True}])
        st, ent = http_("POST", self.s.espo + "/_sim/ui/CBeteiligte", body)
        if st != 200 or not ent or "id" not in ent:
            raise SystemExit(f"chaos: EspoCRM UI create answered {st} (logs: {WORK})")
        p.id = ent["id"]
        for t, v in phones:
            p.espo_phones[phone_key(v)] = t
            p.typed((phone_key(v), t), "EspoCRM")
        p.espo_mails.add(mail.lower())
        p.typed((mail.lower(), "email"), "EspoCRM")
        self.parties[p.id] = p
        self.note(p, f"EspoCRM party created {name!r}: phones {sorted(p.espo_phones.items())}, "
                     f"e-mail {mail}")
        return p

    def espo_rmw(self, p, mutate):
        """Read-modify-write of the phone/e-mail lists as EspoCRM's form does it: with
        X-Version-Number, again on 409. mutate(phones, mails) edits the lists in place and
        returns False when the person's own item is not there (an anomaly)."""
        for _ in range(10):
            st, ent = http_("GET", f"{self.s.espo}/_sim/state/CBeteiligte/{p.id}")
            if st != 200:
                self.anomalies.append(f"{p.id}: EspoCRM state answered {st} before an edit")
                return False
            phones = [dict(x) for x in ent.get("phoneNumberData") or []]
            mails = [dict(x) for x in ent.get("emailAddressData") or []]
            if not mutate(phones, mails):
                return False
            for lst in (phones, mails):
                if lst and not any(x.get("primary") for x in lst):
                    lst[0]["primary"] = True
            st, _ = http_("PUT", f"{self.s.espo}/_sim/ui/CBeteiligte/{p.id}",
                          {"phoneNumberData": phones, "emailAddressData": mails},
                          {"X-Version-Number": str(ent["versionNumber"])})
            if st == 200:
                return True
            if st != 409:
                raise SystemExit(f"chaos: EspoCRM UI list edit of {p.id} answered {st} "
                                 f"(logs: {WORK})")
        self.anomalies.append(f"{p.id}: 10 times 409 on a list edit")
        return False

    def espo_edit(self, p):
        r = self.rnd
        x = r.random()
        if x < 0.45:
            f = r.choice(ESPO_FIELDS)
            v = self.field_value(f)
            st, _ = http_("PUT", f"{self.s.espo}/_sim/ui/CBeteiligte/{p.id}", {f: v})
            if st != 200:
                raise SystemExit(f"chaos: EspoCRM UI edit of {p.id} answered {st} (logs: {WORK})")
            p.fields[f] = v
            self.edits["espo field"] += 1
            self.note(p, f"EspoCRM {f} := {v!r}")
            return
        own_phones, own_mails = list(p.espo_phones), sorted(p.espo_mails)
        own_phones.sort()
        if x < 0.65:  # add
            if r.random() < 0.7 and len(own_phones) < MAX_ESPO_PHONES:
                t = r.choice(ESPO_PHONE_TYPES)
                v = self.new_phone(t)

                def add(phones, mails):
                    phones.append({"phoneNumber": v, "type": t, "primary": not phones,
                                   "optOut": False, "invalid": False})
                    return True
                if self.espo_rmw(p, add):
                    p.espo_phones[phone_key(v)] = t
                    p.typed((phone_key(v), t), "EspoCRM")
                    self.edits["espo entry add"] += 1
                    self.note(p, f"EspoCRM phone added {phone_key(v)} {t}")
            elif len(own_mails) < MAX_ESPO_MAILS:
                m = self.new_mail()

                def add(phones, mails):
                    mails.append({"emailAddress": m, "primary": not mails, "optOut": False,
                                  "invalid": False})
                    return True
                if self.espo_rmw(p, add):
                    p.espo_mails.add(m.lower())
                    p.typed((m.lower(), "email"), "EspoCRM")
                    self.edits["espo entry add"] += 1
                    self.note(p, f"EspoCRM e-mail added {m}")
            return
        change = x < 0.85
        if own_phones and (r.random() < 0.6 or not own_mails):
            old = r.choice(own_phones)
            t = p.espo_phones[old]
            new = self.new_phone(t) if change else None

            def edit(phones, mails):
                hit = [x for x in phones if phone_key(x.get("phoneNumber")) == old]
                if not hit:
                    self.anomalies.append(f"{p.id}: own phone {old} missing in EspoCRM")
                    return False
                if new:
                    hit[0]["phoneNumber"] = new
                else:
                    phones.remove(hit[0])
                return True
            if self.espo_rmw(p, edit):
                del p.espo_phones[old]
                if new:
                    p.espo_phones[phone_key(new)] = t
                    p.typed((phone_key(new), t), "EspoCRM")
                self.edits["espo entry change" if change else "espo entry delete"] += 1
                self.note(p, f"EspoCRM phone {old} " + (f"changed to {phone_key(new)}" if new
                                                        else "deleted"))
        elif own_mails:
            old = r.choice(own_mails)
            new = self.new_mail() if change else None

            def edit(phones, mails):
                hit = [x for x in mails if (x.get("emailAddress") or "").lower() == old]
                if not hit:
                    self.anomalies.append(f"{p.id}: own e-mail {old} missing in EspoCRM")
                    return False
                if new:
                    hit[0]["emailAddress"] = new
                    hit[0].pop("lower", None)
                else:
                    mails.remove(hit[0])
                return True
            if self.espo_rmw(p, edit):
                p.espo_mails.discard(old)
                if new:
                    p.espo_mails.add(new.lower())
                    p.typed((new.lower(), "email"), "EspoCRM")
                self.edits["espo entry change" if change else "espo entry delete"] += 1
                self.note(p, f"EspoCRM e-mail {old} " + (f"changed to {new}" if new else "deleted"))

    def espo_delete_party(self, p):
        st, _ = http_("DELETE", f"{self.s.espo}/_sim/ui/CBeteiligte/{p.id}")
        if st != 200:
            raise SystemExit(f"chaos: EspoCRM UI delete of {p.id} answered {st} (logs: {WORK})")
        p.deleted = True
        self.edits["espo party delete"] += 1
        self.note(p, "EspoCRM party deleted")

    # -- Advoware users --------------------------------------------------------------------

    def betnr(self, p):
        if p.betnr is None:
            st, ent = http_("GET", f"{self.s.espo}/_sim/state/CBeteiligte/{p.id}")
            if st == 200 and ent.get("betnr"):
                p.betnr = ent["betnr"]
        return p.betnr

    def new_advo_phone(self):
        n = self.uniq()
        return self.rnd.choice([f"0511/6{n:06d}", f"0511 7{n:06d}", f"+49 511 8{n:06d}"])

    def new_advo_mail(self):
        n = self.uniq()
        return self.rnd.choice([f"a{n}@advo.example.com", f"A{n}.Kanzlei@Advo.Example.com"])

    def advo_edit(self, p):
        """One Advoware edit of party p; False when the party is not editable now (no betNr
        yet, or a run holds its lock: see the module comment)."""
        if not self.betnr(p):
            self.no_betnr += 1
            return None
        if self.s.redis.locked(p.id):
            self.deferred_lock += 1
            return False
        r, base = self.rnd, f"{self.s.advo}/_sim/ui/Beteiligte/{p.betnr}"
        x = r.random()
        live = sorted(eid for eid, (tlf, kz, retired) in p.advo.items() if tlf and not retired)
        item = None
        if x >= 0.6 and not live:  # nothing of theirs to change yet: add one
            x = 0.5
        if x < 0.35:
            f = r.choice(ADVO_FIELDS)
            v = self.field_value(f)
            st, _ = http_("PUT", base, {f: v})
            if st != 200:
                raise SystemExit(f"chaos: Advoware UI edit of {p.betnr} answered {st}")
            p.fields[f] = v
            item = f
            self.edits["advo field"] += 1
            self.note(p, f"Advoware {f} := {v!r}")
        elif x < 0.6:
            phones = sum(1 for e in p.advo.values() if e[0] and not e[2] and e[1] == 1)
            mails = sum(1 for e in p.advo.values() if e[0] and not e[2] and e[1] == 4)
            if r.random() < 0.6 and phones < MAX_ADVO_PHONES:
                tlf, kz = self.new_advo_phone(), 1
            elif mails < MAX_ADVO_MAILS:
                tlf, kz = self.new_advo_mail(), 4
            else:
                return True
            body = {"tlf": tlf, "kommKz": kz}
            if r.random() < 0.3:
                body["bemerkung"] = "Zentrale"
            st, e = http_("POST", base + "/Kommunikationen", body)
            if st != 200:
                raise SystemExit(f"chaos: Advoware UI add to {p.betnr} answered {st}")
            p.advo[e["id"]] = [tlf, kz, False]
            p.typed(item_key(tlf, KZ_KIND[kz]), "Advoware")
            item = e["id"]
            self.edits["advo entry add"] += 1
            self.note(p, f"Advoware entry {e['id']} added {tlf!r} kommKz {kz}")
        else:
            eid = r.choice(live)
            tlf, kz, _ = p.advo[eid]
            if x < 0.8:
                new = self.new_advo_phone() if kz == 1 else self.new_advo_mail()
                st, _ = http_("PUT", f"{base}/Kommunikationen/{eid}", {"tlf": new})
                p.advo[eid] = [new, kz, False]
                p.typed(item_key(new, KZ_KIND[kz]), "Advoware")
                what = "advo entry change"
            elif x < 0.9:
                # emptied: the person leaves it alone from now on (it may become a slot that
                # the sync fills with an EspoCRM number)
                st, _ = http_("PUT", f"{base}/Kommunikationen/{eid}", {"tlf": ""})
                p.advo[eid] = ["", kz, True]
                what = "advo entry empty"
            else:
                st, _ = http_("DELETE", f"{base}/Kommunikationen/{eid}")
                del p.advo[eid]
                what = "advo entry delete"
            if st != 200:
                raise SystemExit(f"chaos: Advoware UI {what} on {p.betnr} answered {st}")
            item = eid
            self.edits[what] += 1
            self.note(p, f"Advoware entry {eid} {tlf!r}: {what.split()[-1]}" +
                      (f" to {p.advo[eid][0]!r}" if what == "advo entry change" else ""))
        if self.s.redis.locked(p.id):  # a run started meanwhile: it may have read before us
            p.raced.add(item)
            self.raced += 1
            self.note(p, "  (a run took the lock during this edit)")
        return True


# ---- the invariants --------------------------------------------------------------------------

def marker_of(bem):
    """'[ESPOCRM:<base64>:<kz>] text' → (value, kz); '[ESPOCRM-SLOT:<kz>]' → ('', kz); else
    None (no or a malformed marker)."""
    bem = bem or ""
    try:
        if bem.startswith("[ESPOCRM-SLOT:"):
            return "", int(bem[len("[ESPOCRM-SLOT:"):bem.index("]")])
        if bem.startswith("[ESPOCRM:"):
            b64, kz = bem[len("[ESPOCRM:"):bem.index("]")].rsplit(":", 1)
            return base64.b64decode(b64, validate=True).decode(), int(kz)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    return None


def check(stack, parties, documented_ok=True):
    """Every invariant that can be read from the two systems. Returns a dict of figures and
    {party id: [what differs]}, and the documented states {party id: reason}."""
    ents = {e["id"]: e for e in stack.entities()}
    recs = stack.records()
    notes = stack.notifications()
    by_name = collections.defaultdict(list)
    for rec in recs:
        by_name[rec.get("name")].append(rec)
    f = collections.Counter()
    problems = collections.defaultdict(list)
    documented = {}
    names = {p.name for p in parties.values()}
    for rec in recs:
        if rec.get("name") not in names:
            problems["(Advoware)"].append(f"record betNr {rec.get('betNr')} of no party "
                                          f"({rec.get('name')!r})")
            f["duplicates"] += 1
    for p in parties.values():
        if p.deleted:
            continue
        f["live"] += 1
        e = ents.get(p.id)
        pr = problems[p.id]
        if e is None:
            pr.append("gone from EspoCRM, nobody deleted it")
            f["lost EspoCRM"] += 1
            continue
        status, msg = e.get("syncStatus"), e.get("syncErrorMessage") or ""
        mine = by_name.get(p.name, [])
        if status == "failed" and "ungewiss" in msg and documented_ok and len(mine) <= 1:
            documented[p.id] = f"uncertain create (SPEC §5.3), waits for a person: {msg}"
            continue
        if len(mine) > 1:
            f["duplicates"] += len(mine) - 1
            pr.append(f"{len(mine)} Advoware records: betNr " +
                      ", ".join(str(r.get("betNr")) for r in mine))
        rec = next((r for r in mine if r.get("betNr") == e.get("betnr")), None)
        if rec is None:
            pr.append(f"status {status}, betnr {e.get('betnr')}: no Advoware record "
                      f"{'with that betNr' if mine else 'at all'} ({msg})")
            f["unsynced"] += 1
            continue
        if status != "clean":
            pr.append(f"status {status} ({msg})")
            f["not clean"] += 1
        if p.betnr is None:
            p.betnr = e.get("betnr")
        # the 8 fields: both systems equal, and the person's last edit in both
        for ef, af in FIELDS:
            ev, av = norm(e.get(ef)), norm(rec.get(af))
            if ef == "dateOfBirth":
                ev, av = ev[:10], av[:10]
            want = norm(p.fields[ef])
            if ev != av:
                f["mismatches"] += 1
            if ev != want or av != want:
                side = "Advoware" if ef in ADVO_FIELDS else "EspoCRM"
                f["lost " + side] += 1
                raced = " (the edit met a run)" if ef in p.raced else ""
                pr.append(f"{ef}: want {want!r} (an {side} user's){raced}; EspoCRM {ev!r}, "
                          f"Advoware {av!r}")
            elif ev != av:
                pr.append(f"{ef}: EspoCRM {ev!r}, Advoware {av!r}")
        # Kommunikation: the same items on both sides, markers right, nothing twice
        espo = collections.Counter(item_key(x.get("phoneNumber"), x.get("type") or "Other")
                                   for x in e.get("phoneNumberData") or [])
        espo.update(item_key(x.get("emailAddress"), "email")
                    for x in e.get("emailAddressData") or [])
        advo = collections.Counter()
        for entry in rec.get("kommunikation") or []:
            tlf, kz = (entry.get("tlf") or "").strip(), entry.get("kommKz")
            mk = marker_of(entry.get("bemerkung"))
            bem = entry.get("bemerkung")
            if tlf:
                key = item_key(tlf, KZ_KIND.get(kz, "?"))
                advo[key] += 1
                if mk is None or mk[0] == "":
                    pr.append(f"Advoware entry {entry.get('id')} {tlf!r} has no value marker "
                              f"({bem!r})")
                    f["mismatches"] += 1
                elif item_key(mk[0], KZ_KIND.get(mk[1], "?")) != key or mk[1] != kz:
                    pr.append(f"Advoware entry {entry.get('id')} {tlf!r} kommKz {kz}: marker "
                              f"{bem!r} says {mk[0]!r}/{mk[1]}")
                    f["mismatches"] += 1
            elif mk is not None and mk[0] != "":
                pr.append(f"Advoware entry {entry.get('id')} is empty but its marker says "
                          f"{mk[0]!r} ({bem!r}): not a slot")
                f["mismatches"] += 1
            elif mk is not None and mk[1] != kz:
                pr.append(f"Advoware slot {entry.get('id')} kommKz {kz} marked {bem!r}")
                f["mismatches"] += 1
        for side, c in (("EspoCRM", espo), ("Advoware", advo)):
            for key, n in c.items():
                if n > 1:
                    f["duplicates"] += n - 1
                    pr.append(f"{key[0]} ({key[1]}) {n} times in {side}")
        want = p.expected_komm()
        for key in sorted(set(espo) | set(advo) | set(want)):
            inE, inA, who = key in espo, key in advo, want.get(key)
            if inE != inA:
                f["mismatches"] += 1
            if who and not (inE and inA):
                f["lost " + who] += 1
                raced = ""
                if who == "Advoware":
                    ids = [eid for eid, (t, kz, _) in p.advo.items()
                           if t and item_key(t, KZ_KIND[kz]) == key]
                    raced = " (the edit met a run)" if set(ids) & p.raced else ""
                pr.append(f"{key[0]} ({key[1]}), added/changed by an {who} user{raced}: "
                          f"{'in' if inE else 'NOT in'} EspoCRM, {'in' if inA else 'NOT in'} "
                          f"Advoware")
            elif not who and (inE or inA):
                side = p.history.get(key)
                f["undone"] += 1
                if side:
                    f["lost " + side] += 1
                pr.append(f"{key[0]} ({key[1]}) " +
                          (f"changed or deleted by an {side} user, back again: " if side else
                           "typed by nobody: ") +
                          f"{'in' if inE else 'not in'} EspoCRM, {'in' if inA else 'not in'} "
                          f"Advoware")
    # deletions: one notice per Advoware record of a party deleted in EspoCRM
    told = collections.Counter()
    for n in notes:
        m = NOTE_DELETED.search(n.get("message") or "")
        if m:
            told[int(m.group(1))] += 1
    f["deletion notices expected"] = 0
    deleted_betnrs = set()
    for p in parties.values():
        if not p.deleted:
            continue
        f["deleted"] += 1
        if p.id in ents:
            problems[p.id].append("deleted by a person, still in EspoCRM")
        mine = by_name.get(p.name, [])
        if len(mine) > 1:
            f["duplicates"] += len(mine) - 1
            problems[p.id].append(f"deleted; {len(mine)} Advoware records")
        uncertain = any("ungewiss" in (n.get("message") or "") and p.id in n.get("message", "")
                        for n in notes)
        if uncertain and not any(told[rec.get("betNr")] for rec in mine):
            # deleted while its create was uncertain: whether or not the POST made a record,
            # the sync never learnt a betNr; its user is told once to look and delete by hand
            gone = sum(1 for n in notes if p.id in (n.get("message") or "")
                       and "manuell löschen" in n["message"] and "ungewiss" in n["message"])
            if gone != 1:
                problems[p.id].append(f"deleted while its create was uncertain: {gone} notices "
                                      f"to look in Advoware (want 1)")
            documented[p.id] = (f"uncertain create, then deleted in EspoCRM: "
                                f"{len(mine)} Advoware record(s) its user was told to look for")
            deleted_betnrs.update(rec.get("betNr") for rec in mine)
            continue
        for rec in mine:
            b = rec.get("betNr")
            deleted_betnrs.add(b)
            f["deletion notices expected"] += 1
            if told[b] != 1:
                f["deletion notices wrong"] += 1
                problems[p.id].append(f"deleted in EspoCRM: {told[b]} notices for betNr {b} "
                                      f"(want 1)")
    for b, n in told.items():
        if b not in deleted_betnrs:
            problems["(notices)"].append(f"{n} deletion notices for betNr {b}, never deleted")
    for n in notes:
        text = n.get("message") or ""
        if "Konflikt gelöst" in text:
            f["conflict notices"] += 1
            problems["(notices)"].append(f"conflict notice: {text[:160]}")
        elif "Typ-Änderung" in text or "nicht übernommen" in text:
            f["unexpected notices"] += 1
            problems["(notices)"].append(f"unexpected notice: {text[:160]}")
        elif "ungewiss" in text and not any(pid in text for pid in documented):
            f["unexpected notices"] += 1
            problems["(notices)"].append(f"uncertain-create notice, party not in that state: "
                                         f"{text[:160]}")
    f["notices"] = len(notes)
    f["uncertain notices"] = sum(1 for n in notes if "ungewiss" in (n.get("message") or ""))
    problems = {k: v for k, v in problems.items() if v}
    return f, problems, documented


def print_problems(problems, limit=30):
    lines = []
    for pid, what in sorted(problems.items()):
        for w in what:
            lines.append(f"    {pid}: {w}")
    for line in lines[:limit]:
        say(line)
    if len(lines) > limit:
        say(f"    ... and {len(lines) - limit} more ({len(problems)} parties or groups)")


def selftest(stack, parties, before):
    """CHAOS_SELFTEST=1: after the convergence wait, break the two systems in each way the
    invariants must catch (as a faulty sync would), on parties the check found right, and
    check that every one is reported. 0 if all are (whatever the product did before)."""
    if before:
        say(f"selftest: {len(before)} parties or groups were not right before (not counted):")
        print_problems(before, 10)
    live = sorted((p for p in parties.values() if not p.deleted and p.betnr and
                   p.id not in before), key=lambda p: p.k)
    if len(live) < 6:
        say("selftest: needs at least 6 synced parties")
        return 1
    api = {"X-Api-Key": ESPO_KEY}
    expect = []  # (party id, text the report must hold)
    p = live[0]  # an Advoware value the sync never carried over
    http_("PUT", f"{stack.advo}/_sim/ui/Beteiligte/{p.betnr}", {"zusatz": "nie synchronisiert"})
    expect.append((p.id, "zusatz: want"))
    p = live[1]  # a person's EspoCRM edit that got lost
    p.fields["vorname"] = "verloren"
    expect.append((p.id, "vorname: want 'verloren'"))
    p = live[2]  # an entry twice in Advoware
    rec = http_("GET", f"{stack.advo}/_sim/state/Beteiligte/{p.betnr}")[1]
    e = next(x for x in rec["kommunikation"] if x.get("tlf"))
    http_("POST", f"{stack.advo}/_sim/ui/Beteiligte/{p.betnr}/Kommunikationen",
          {"tlf": e["tlf"], "kommKz": e["kommKz"], "bemerkung": e.get("bemerkung")})
    expect.append((p.id, "2 times in Advoware"))
    p = live[3]  # a second Advoware record for one party
    http_("POST", f"{stack.advo}/_sim/ui/Beteiligte", {"name": p.name})
    expect.append((p.id, "2 Advoware records"))
    p = live[4]  # the sync dropping a person's phone number from EspoCRM
    ent = http_("GET", f"{stack.espo}/api/v1/CBeteiligte/{p.id}", None, api)[1]
    own = [x for x in ent["phoneNumberData"] if phone_key(x["phoneNumber"]) in p.espo_phones]
    if own:
        rest = [x for x in ent["phoneNumberData"] if x is not own[0]]
        http_("PUT", f"{stack.espo}/api/v1/CBeteiligte/{p.id}", {"phoneNumberData": rest}, api)
        expect.append((p.id, f"{phone_key(own[0]['phoneNumber'])} (") )
    p = live[5]  # a conflict notice
    http_("POST", f"{stack.espo}/api/v1/Note", {
        "type": "Post", "targetType": "users", "usersIds": ["kanzlei-admin"],
        "post": f"Beteiligter {p.name} ({p.id}): Konflikt gelöst: EspoCRM-Daten wurden "
                f"übernommen (zusatz: Advoware hatte 'selbsttest')"}, api)
    expect.append(("(notices)", "'selbsttest'"))
    _, problems, _ = check(stack, parties)
    for pid in before:
        problems.pop(pid, None) if pid != "(notices)" else None
    missed = [(pid, text) for pid, text in expect
              if not any(text in w for w in problems.get(pid, []))]
    for pid, text in expect:
        say(f"  selftest {'caught ' if (pid, text) not in missed else 'MISSED'}  {pid}: {text}")
    print_problems(problems)
    say("selftest: " + ("every planted violation was reported" if not missed else
                        f"{len(missed)} planted violations NOT reported"))
    return 1 if missed else 0


# ---- the run ---------------------------------------------------------------------------------

def config():
    size = "ci"
    if "--size" in sys.argv:
        size = sys.argv[sys.argv.index("--size") + 1]
    d = SIZES[size]
    worker_env = {}
    for item in os.environ.get("CHAOS_WORKER_ENV", "").split():
        k, _, v = item.partition("=")
        worker_env[k] = v
    return {"size": size, "parties": env_int("CHAOS_PARTIES", d[0]),
            "seconds": env_float("CHAOS_SECONDS", d[1]), "workers": env_int("CHAOS_WORKERS", d[2]),
            "kills": env_int("CHAOS_KILLS", d[3]),
            "redis_restarts": env_int("CHAOS_REDIS_RESTARTS", d[4]),
            "outage": env_float("CHAOS_BROKER_OUTAGE_S", d[5]),
            "rate": env_float("CHAOS_RATE", d[6]), "converge": env_float("CHAOS_CONVERGE_S", d[7]),
            "fault_rate": env_float("CHAOS_FAULT_RATE", 0.02),
            "seed": env_int("CHAOS_SEED", 1), "latency": env_int("CHAOS_LATENCY_MS", 10),
            "jitter": env_int("CHAOS_JITTER_MS", 10), "worker_env": worker_env}


def main():
    cfg = config()
    for tool in ("kcat", "redis-server"):
        if not shutil.which(tool):
            say(f"chaos: {tool} not found (deploy/deps-debian.sh installs it); skipped")
            return 77
    for prog in ("kafka-mock", "espocrm-sim", "advoware-sim", "vmh-producer", "vmh-worker"):
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            raise SystemExit(f"chaos: {os.path.join(BIN, prog)} missing (make first)")
    say(f"chaos ({cfg['size']}): seed {cfg['seed']}, {cfg['parties']} parties, "
        f"{cfg['seconds']:.0f} s of chaos at {cfg['rate']:.0f} edits/s, {cfg['workers']} workers, "
        f"{cfg['kills']} kills, {cfg['redis_restarts']} Redis crashes, "
        f"{cfg['outage']:.0f} s broker outage, faults {cfg['fault_rate'] * 100:.1f} % + lost "
        f"answers (logs: {WORK})")
    t_start = time.time()
    stack = Stack(cfg)
    rnd = random.Random(cfg["seed"])
    parties = {}
    people = People(stack, rnd, parties)
    resync = Resyncer(stack.brokers)
    resync.start()

    # ---- setup: parties created through EspoCRM's UI, synced by webhooks ----
    t0 = time.time()
    for k in range(cfg["parties"]):
        people.create_party(k, seeded=True)
    people.edits.clear()

    def settled(deadline, documented_ok):
        end = time.time() + deadline
        while True:
            f, problems, documented = check(stack, parties, documented_ok)
            if not problems or time.time() > end:
                return f, problems, documented
            time.sleep(1.0)  # polling interval
    f, problems, _ = settled(max(60, cfg["parties"] / 5), False)
    if problems:
        say(f"setup: {len(problems)} of {cfg['parties']} parties not synced without any fault:")
        print_problems(problems)
        return 1
    say(f"setup: {cfg['parties']} parties created in EspoCRM and synced in {time.time() - t0:.1f} s")

    # ---- chaos ----
    T = cfg["seconds"]
    events = []  # (time offset, what, action)
    for i in range(cfg["kills"]):
        events.append((T * 0.9 * (i + 0.5) / cfg["kills"], "kill",
                       lambda: done_events.update(["kill mid-run"] if stack.kill_busy_worker(rnd)
                                                  else [])))
    for i in range(cfg["redis_restarts"]):
        at = T * (0.37 + 0.5 * i / max(1, cfg["redis_restarts"]))
        events.append((at, "redis crash", stack.redis.crash))
        events.append((at + 2, "redis start", stack.redis.start))
    if cfg["outage"] > 0:
        at = min(T * 0.55, max(0.0, T - cfg["outage"] - 1))
        events.append((at, "brokers down", lambda: stack.brokers_set(False)))
        events.append((at + cfg["outage"], "brokers up", lambda: stack.brokers_set(True)))
    events.sort(key=lambda e: e[0])
    done_events = collections.Counter()
    stats0 = stack.stats()
    stack.faults(True, cfg["fault_rate"])
    tc = time.time()
    next_edit, next_k, shown, deferred = tc, cfg["parties"], tc, []
    say(f"chaos: {T:.0f} s; events: " + ", ".join(f"{w} at {t:.0f} s" for t, w, _ in events))
    while True:
        now = time.time()
        if now - tc >= T:
            break
        while events and now - tc >= events[0][0]:
            _, what, act = events.pop(0)
            act()
            done_events[what] += 1
            say(f"  {now - tc:5.1f} s  {what}")
        if now >= next_edit:
            next_edit += rnd.expovariate(cfg["rate"])
            next_edit = max(next_edit, now - 1)  # never a burst of more than a second's edits
            live = [p for p in parties.values() if not p.deleted]
            x = rnd.random()
            if deferred and x >= 0.55 and rnd.random() < 0.5:  # an Advoware edit put off
                # while a run held its party's lock
                p = deferred.pop(0)
                if not p.deleted:
                    done = people.advo_edit(p)
                    if done:
                        resync.add([p.id])
                    elif done is False:
                        deferred.append(p)
            elif x < 0.03:
                people.create_party(next_k, seeded=False)
                people.edits["espo party create"] += 1
                next_k += 1
            elif x < 0.045 and len(live) > 1:
                people.espo_delete_party(rnd.choice(live))
            elif x < 0.55:
                people.espo_edit(rnd.choice(live))
            else:
                p = rnd.choice(live)
                done = people.advo_edit(p)
                if done:
                    resync.add([p.id])
                elif done is False and len(deferred) < 50:
                    deferred.append(p)
        if now - shown >= 5:
            shown = now
            e = people.edits
            say(f"  {now - tc:5.1f} s  edits EspoCRM {sum(v for k, v in e.items() if k.startswith('espo'))}"
                f", Advoware {sum(v for k, v in e.items() if k.startswith('advo'))}; "
                f"sync_checks {resync.sent}")
        time.sleep(max(0.0, min(next_edit - time.time(), 0.05)))
    for _, what, act in events:  # a short run: bring back what is still down, nothing else
        if (what == "brokers up" and done_events["brokers down"] > done_events["brokers up"]) or \
                (what == "redis start" and done_events["redis crash"] > done_events["redis start"]):
            act()
            done_events[what] += 1
    for p in deferred:
        if not p.deleted and people.advo_edit(p):
            resync.add([p.id])
    stack.faults(False, 0)
    stats1 = stack.stats()
    tq = time.time()
    e = people.edits
    n_espo = sum(v for k, v in e.items() if k.startswith("espo"))
    n_advo = sum(v for k, v in e.items() if k.startswith("advo"))
    say(f"chaos over after {tq - tc:.0f} s: {n_espo} EspoCRM edits, {n_advo} Advoware edits; "
        f"faults cleared, waiting for convergence (at most {cfg['converge']:.0f} s)")

    # ---- convergence: nothing but the system's own mechanisms ----
    # Polled until everything is right, the deadline, or a standstill: the same parties wrong
    # and no write on either side for STALL_S (longer than the longest retry backoff, a cron
    # interval and a lock wait together), when nothing will change any more.
    STALL_S = 45
    end = tq + cfg["converge"]
    shown, stalled, last_state, last_change = None, False, None, time.time()
    while True:
        f, problems, documented = check(stack, parties)
        if resync.idle() and all(k.startswith("(") for k in problems):
            converged_at = time.time()  # every party right (a notice sent stays sent)
            break
        state = (sorted((k, tuple(v)) for k, v in problems.items()), writes(stack.stats()))
        if state != last_state:
            last_state, last_change = state, time.time()
        if time.time() > end or time.time() - last_change > STALL_S:
            stalled = time.time() <= end
            converged_at = None
            break
        if problems and (shown is None or time.time() - shown > 10):
            shown = time.time()
            eg = min(problems.items())
            say(f"  {time.time() - tq:5.1f} s  {len(problems)} parties (or groups) not yet right, "
                f"e.g. {eg[0]}: {eg[1][0][:120]}")
        time.sleep(1.0)  # polling interval
    t_waited = time.time() - tq
    if os.environ.get("CHAOS_SELFTEST"):
        return selftest(stack, parties, problems)
    live = [p for p in parties.values() if not p.deleted]
    bad = [pid for pid in problems if not pid.startswith("(")]
    live_ids = {p.id for p in live}
    converged_pct = 100.0 * (len(live) - len(bad) - len(set(documented) & live_ids)) / max(
        1, len(live))

    # ---- resync of every party: nothing may be written ----
    # First 3 s of nothing: a converged system should run nothing at all (runs now are churn,
    # e.g. a party the cron keeps selecting; reported, and allowed for in the counting below).
    GET_ONE = ("espocrm", "GET", "/api/v1/CBeteiligte/{id}", 200)
    idle0, t_idle = stack.stats(), time.time()
    time.sleep(3)  # the idle window measured (not a synchronisation)
    before = stack.stats()
    idle_rate = (before.get(GET_ONE, 0) - idle0.get(GET_ONE, 0)) / (time.time() - t_idle)
    idle_writes = writes(stats_delta(before, idle0))
    resync_writes, resync_delta, resync_runs = None, {}, 0
    targets = [p.id for p in live if p.id not in documented]
    resync.add(targets)

    def runs():
        s = stack.stats()
        return s.get(GET_ONE, 0) - before.get(GET_ONE, 0), s
    try:
        wait_for("the resync of every party", lambda: resync.idle() and
                 runs()[0] >= len(targets), 60 + len(targets) / 20)
        # every run is over when the reads fall back to the idle rate for 2 s (at most 20 s)
        end, last, t_last = time.time() + 20, runs()[0], time.time()
        while time.time() < end:
            time.sleep(2)  # the window compared with the idle rate
            n = runs()[0]
            if n - last <= idle_rate * (time.time() - t_last) + 0.5:
                break
            last, t_last = n, time.time()
        resync_runs, after = runs()
        resync_delta = {k: v for k, v in stats_delta(after, before).items()
                        if k[1] in ("PUT", "POST") and k[2] != "/api/v1/Token"}
        resync_writes = sum(resync_delta.values())
    except SystemExit as ex:
        say(str(ex))
    # the figures are those of the convergence phase; the resync must not break anything
    _, problems2, _ = check(stack, parties)
    for pid, what in problems2.items():
        if pid not in problems:
            problems[pid] = ["after the resync: " + w for w in what]
    f2, documented2 = f, documented

    # ---- figures ----
    chaos_calls = stats_delta(stats1, stats0)
    faults = faults_seen(chaos_calls)
    total_faults = sum(faults.values())
    total_calls = sum(chaos_calls.values())
    lost_e, lost_a = f2["lost EspoCRM"], f2["lost Advoware"]
    say("\nFigures")
    say(f"  parties            {len(live)} live, {f2['deleted']} deleted in EspoCRM "
        f"({cfg['parties']} at the start, {e['espo party create']} created during the chaos)")
    say(f"  edits EspoCRM      {n_espo}: fields {e['espo field']}, entries added "
        f"{e['espo entry add']} / changed {e['espo entry change']} / deleted "
        f"{e['espo entry delete']}, parties created {e['espo party create']} / deleted "
        f"{e['espo party delete']}")
    say(f"  edits Advoware     {n_advo}: fields {e['advo field']}, entries added "
        f"{e['advo entry add']} / changed {e['advo entry change']} / emptied "
        f"{e['advo entry empty']} / deleted {e['advo entry delete']}; put off while a run held "
        f"the lock {people.deferred_lock}, a run started during the edit {people.raced}, "
        f"skipped (no betNr yet) {people.no_betnr}; "
        f"sync_checks sent {resync.sent} (kcat retried {resync.failures} times)")
    say(f"  chaos              kill -9 of a worker {done_events['kill']} ({done_events['kill mid-run']}"
        f" in the middle of a sync), Redis crashes "
        f"{done_events['redis crash']}, broker outages {done_events['brokers down']} "
        f"({cfg['outage']:.0f} s)")
    say(f"  faults injected    {total_faults}: EspoCRM 503 {faults[('espocrm', 503)]} / no answer "
        f"{faults[('espocrm', 0)]}, Advoware 503 {faults[('advoware', 503)]} / no answer "
        f"{faults[('advoware', 0)]} (503s include answers lost after the effect), of "
        f"{total_calls} API calls during the chaos ({100.0 * total_faults / max(1, total_calls):.1f} %)")
    say(f"  converged          {converged_pct:.1f} % of {len(live)} parties" +
        (f" in {converged_at - tq:.1f} s" if converged_at else
         f"; stopped after {t_waited:.0f} s: nothing changed and nothing was written for "
         f"{STALL_S} s" if stalled else f", not all within {cfg['converge']:.0f} s"))
    say(f"  mismatches         {f2['mismatches']} (fields and entries differing between the systems)")
    say(f"  lost edits         {lost_e + lost_a} (EspoCRM {lost_e}, Advoware {lost_a}; of them "
        f"entries deleted or changed that came back {f2['undone']})")
    say(f"  duplicates         {f2['duplicates']} (Advoware records and entries)")
    say(f"  notices            {f2['notices']}: conflicts {f2['conflict notices']}, deletions "
        f"{f2['deletion notices expected'] - f2['deletion notices wrong']} of "
        f"{f2['deletion notices expected']} right, uncertain creates "
        f"{f2['uncertain notices']}, unexpected {f2['unexpected notices']}")
    say(f"  documented states  {len(documented2)}" +
        "".join(f"\n    {pid}: {why}" for pid, why in sorted(documented2.items())))
    say(f"  idle               {idle_rate:.1f} runs/s and {idle_writes} writes in the 3 s after "
        f"converging (nothing should run)")
    say(f"  resync of all      {resync_runs} runs for {len(targets)} parties, writes "
        f"{'unknown (did not finish)' if resync_writes is None else resync_writes}" +
        "".join(f"\n    {k[0]} {k[1]} {k[2]} {k[3]}: {n}" for k, n in sorted(resync_delta.items())))
    if people.anomalies:
        say(f"  driver anomalies   {len(people.anomalies)} (a person's own item was missing)")
        for a in people.anomalies[:5]:
            say(f"    {a}")
    say(f"  wall time          {time.time() - t_start:.0f} s")
    ok = not problems and resync_writes == 0 and not people.anomalies
    if problems:
        say(f"\nViolations ({len(problems)} parties or groups):")
        print_problems(problems)
    if resync_writes:
        say(f"\nViolation: the resync of every party wrote {resync_writes} times")
    if not ok:
        say(f"  (every edit with its time: {os.path.join(WORK, 'edits.log')}; the workers' logs "
            f"beside it)")
    say("\nresult: " + ("PASS: every invariant holds" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rc = 1
    try:
        rc = main()
    except KeyboardInterrupt:
        say("\nchaos: interrupted; stopping everything")
        rc = 130
    finally:
        stop_all()
    if rc in (0, 77) and not os.environ.get("CHAOS_KEEP_LOGS"):
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        say(f"chaos: logs kept in {WORK}")
    sys.exit(rc)
