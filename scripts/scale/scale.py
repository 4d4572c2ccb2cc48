#!/usr/bin/env python3
"""The measurement half of scripts/scale.sh (issue 14).

scripts/scale.sh starts the control plane and the operator, then runs
`scale.py run ...`, which generates the organizations, applies them with
kubectl, watches the four kinds through the apiserver, scrapes the operator's
/metrics, samples its /proc entries, and prints a table plus a JSON file.

Standard library only. Every wait has a deadline; a missed deadline exits with
status 2 and says which step and what it was waiting for.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone

GROUP_VERSION = "orgaccess.dev/v1alpha1"
KINDS = {  # kind -> plural
    "Organization": "organizations",
    "Group": "groups",
    "Member": "members",
    "ApiKey": "apikeys",
}
FIELD_MANAGER = "orgaccess-scale"
SOURCES = [f"src-{i:02d}" for i in range(50)]
# (service, domain, levels) the generated groups draw their six non-Custom
# privileges from. Organization/TemporaryAccess is kept out: only the wide
# group grants it, so editing it changes exactly the wide group's members.
POOL = [
    ("Analytics", "Administrate", ["Allowed"]),
    ("Analytics", "DataExports", ["View", "Edit"]),
    ("Analytics", "Dimensions", ["View", "Edit"]),
    ("Analytics", "MetricAlerts", ["View", "Edit"]),
    ("Analytics", "NamedFilters", ["View", "Edit"]),
    ("Analytics", "Reports", ["View", "Edit"]),
    ("Analytics", "TrackingIds", ["View", "Edit"]),
    ("Commerce", "Catalogs", ["View", "Edit"]),
    ("Commerce", "MerchandisingHub", ["View", "Edit"]),
    ("Content", "Fields", ["View", "Edit"]),
    ("Content", "CrawlingModules", ["View", "Edit"]),
    ("Content", "SecurityIdentities", ["View", "Edit"]),
    ("MachineLearning", "Models", ["View", "Edit"]),
    ("Organization", "Activities", ["View"]),
    ("Search", "ExecuteQueries", ["Allowed"]),
    ("Search", "SearchPages", ["View", "Edit"]),
    ("Search", "QueryPipelines", ["View", "Edit"]),
]
WIDE = "wide"
# The apiserver ends a watch after this; the watcher resumes from the last resourceVersion.
WATCH_SECONDS = int(os.environ.get("ORGACCESS_SCALE_WATCH_SECONDS", "1200"))
EDITED = ("Organization", "TemporaryAccess")


class StepTimeout(Exception):
    pass


def log(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- generation ---------------------------------------------------------------


def group_privileges(rng, i, wide_level=None):
    first = (i * 7) % len(SOURCES)
    resources = [
        {"name": SOURCES[(first + k) % len(SOURCES)], "level": "Edit" if k < 2 else "View"}
        for k in range(5)
    ]
    privs = [{"service": "Content", "domain": "Sources", "level": "Custom", "resources": resources}]
    n = 6 if wide_level is None else 5
    for service, domain, levels in rng.sample(POOL, n):
        privs.append({"service": service, "domain": domain, "level": rng.choice(levels)})
    if wide_level is not None:
        privs.append({"service": EDITED[0], "domain": EDITED[1], "level": wide_level})
    return privs


def wide_group(ns, level):
    rng = random.Random(f"{ns}/group/0")
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Group",
        "metadata": {"name": WIDE, "namespace": ns},
        "spec": {"displayName": "Wide group", "privileges": group_privileges(rng, 0, level)},
    }


def generate(ns, groups, members, keys, wide_members):
    """One organization's objects, in apply order (Organization, Groups, Members, ApiKeys)."""
    objs = [
        {
            "apiVersion": GROUP_VERSION,
            "kind": "Organization",
            "metadata": {"name": "scale", "namespace": ns},
            "spec": {
                "displayName": f"Scale {ns}",
                "invitationLifetimeDays": 31,
                "resources": {"sources": SOURCES},
            },
        },
        wide_group(ns, "View"),
    ]
    names = [f"g-{i:04d}" for i in range(1, groups)]
    for i, name in enumerate(names, start=1):
        rng = random.Random(f"{ns}/group/{i}")
        objs.append(
            {
                "apiVersion": GROUP_VERSION,
                "kind": "Group",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"displayName": f"Group {i}", "privileges": group_privileges(rng, i)},
            }
        )
    for i in range(members):
        rng = random.Random(f"{ns}/member/{i}")
        mine = [WIDE] + rng.sample(names, 2) if i < wide_members else rng.sample(names, 3)
        name = f"m-{i:05d}"
        objs.append(
            {
                "apiVersion": GROUP_VERSION,
                "kind": "Member",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "identity": {"provider": "Email", "username": f"{name}@{ns}.scale.example"},
                    "groups": mine,
                    "accepted": True,
                },
            }
        )
    for i in range(keys):
        objs.append(
            {
                "apiVersion": GROUP_VERSION,
                "kind": "ApiKey",
                "metadata": {"name": f"k-{i:04d}", "namespace": ns},
                "spec": {
                    "displayName": f"Key {i}",
                    "privileges": [
                        {"service": "Search", "domain": "ExecuteQueries", "level": "Allowed"},
                        {"service": "Search", "domain": "SearchPages", "level": "View"},
                    ],
                    "lifetime": "P90D",
                },
            }
        )
    return objs


def write_chunks(objs, chunk, directory, prefix):
    """Files of at most `chunk` objects (JSON documents are YAML documents)."""
    files = []
    for n, start in enumerate(range(0, len(objs), chunk)):
        path = os.path.join(directory, f"{prefix}-{n:04d}.yaml")
        part = objs[start:start + chunk]
        with open(path, "w") as f:
            for o in part:
                f.write("---\n")
                f.write(json.dumps(o))
                f.write("\n")
        files.append((path, len(part)))
    return files


# --- the apiserver ------------------------------------------------------------


class Api:
    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            cfg = json.load(f)
        cluster = cfg["clusters"][0]["cluster"]
        m = re.match(r"https://([^:/]+):(\d+)", cluster["server"])
        self.host, self.port = m.group(1), int(m.group(2))
        self.ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        self.token = cfg["users"][0]["user"]["token"]

    def conn(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def get(self, path):
        return json.loads(self.get_raw(path))

    def get_raw(self, path):
        c = self.conn()
        try:
            c.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {r.status}: {body[:300]!r}")
            return body
        finally:
            c.close()


class Watcher:
    """One watch per kind over every namespace, from a resourceVersion taken
    before anything is applied; keeps each object's latest generation and
    status, and a log of (time, kind, namespace, name, status changed)."""

    def __init__(self, api):
        self.api = api
        self.lock = threading.Lock()
        self.objects = {}  # (kind, ns, name) -> dict(gen, og, ready, ready_true, status)
        self.events = []  # (t, kind, ns, name, status_changed, generation)
        self.error = None
        self.threads = []
        self.stopping = False

    def start(self):
        for kind, plural in KINDS.items():
            rv = self.api.get(f"/apis/{GROUP_VERSION}/{plural}?limit=1")["metadata"]["resourceVersion"]
            t = threading.Thread(target=self._run, args=(kind, plural, rv), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, kind, plural, rv):
        while not self.stopping:
            try:
                rv = self._watch(kind, plural, rv)
            except Exception as e:  # noqa: BLE001 - reported by check()
                if self.stopping:
                    return
                self.error = f"watch of {plural} failed: {e}"
                return

    def _watch(self, kind, plural, rv):
        c = self.api.conn(timeout=None)
        path = (
            f"/apis/{GROUP_VERSION}/{plural}?watch=1&allowWatchBookmarks=true"
            f"&resourceVersion={rv}&timeoutSeconds={WATCH_SECONDS}"
        )
        c.request("GET", path, headers={"Authorization": f"Bearer {self.api.token}"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
        while True:
            line = r.readline()
            if not line:
                c.close()
                return rv  # the server ended the watch: resume from the last version
            now = time.monotonic()
            ev = json.loads(line)
            obj = ev["object"]
            if ev["type"] == "ERROR":
                raise RuntimeError(f"watch error: {obj.get('message')}")
            rv = obj["metadata"]["resourceVersion"]
            if ev["type"] == "BOOKMARK":
                continue
            self._record(now, kind, ev["type"], obj)

    def _record(self, now, kind, etype, obj):
        md = obj["metadata"]
        key = (kind, md["namespace"], md["name"])
        status = obj.get("status") or {}
        conds = status.get("conditions") or []
        ready = [c for c in conds if c.get("type") == "Ready"]
        blob = json.dumps(status, sort_keys=True)
        with self.lock:
            prev = self.objects.get(key)
            if etype == "DELETED":
                self.objects.pop(key, None)
                changed = False
            else:
                changed = (prev["status"] if prev else "{}") != blob
                gen, og = md.get("generation"), status.get("observedGeneration")
                rec = og == gen and bool(ready)
                # When it last became reconciled (None while it is not).
                since = (prev["since"] if prev and prev["since"] is not None else now) if rec else None
                self.objects[key] = {
                    "gen": gen,
                    "og": og,
                    "ready": bool(ready),
                    "ready_true": bool(ready) and ready[0].get("status") == "True",
                    "status": blob,
                    "since": since,
                }
            self.events.append((now, kind, md["namespace"], md["name"], changed, md.get("generation")))

    def check(self):
        if self.error:
            raise RuntimeError(self.error)

    def stop(self):
        self.stopping = True

    # queries (under the lock)
    def reconciled(self, keys):
        """Keys not yet reconciled: missing, observedGeneration != generation, or no Ready condition."""
        with self.lock:
            pending = []
            for k in keys:
                o = self.objects.get(k)
                if o is None or o["og"] != o["gen"] or not o["ready"]:
                    pending.append(k)
            return pending

    def reconciled_at(self, keys):
        """The time the last of keys became reconciled (all must be)."""
        with self.lock:
            return max(self.objects[k]["since"] for k in keys)

    def last_status_change(self, kinds, since=0.0):
        with self.lock:
            for ev in reversed(self.events):
                if ev[0] < since:
                    return None
                if ev[4] and ev[1] in kinds:
                    return ev[0]
        return None

    def events_between(self, t0, t1):
        with self.lock:
            return [e for e in self.events if t0 <= e[0] < t1]

    def obj(self, key):
        with self.lock:
            o = self.objects.get(key)
            return dict(o) if o else None


# --- the operator: /metrics and /proc -------------------------------------------


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
        return parse_metrics(r.read().decode())


def scrape_apiserver(api):
    """The apiserver's view of the webhook: only the series of our webhook."""
    text = api.get_raw("/metrics").decode()
    keep = [line for line in text.splitlines() if "apiserver_admission_webhook_admission_duration_seconds" in line
            and 'name="validate.orgaccess.dev"' in line]
    return parse_metrics("\n".join(keep))


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
            try:
                out[(m.group(1), labels)] = float(m.group(3))
            except ValueError:
                pass
    return out


def metric_sum(metrics, name, **match):
    total = 0.0
    for (n, labels), v in metrics.items():
        if n == name and all((k, val) in labels for k, val in match.items()):
            total += v
    return total


def metric_by(metrics, name, label):
    out = {}
    for (n, labels), v in metrics.items():
        if n == name:
            d = dict(labels)
            out[d.get(label, "")] = out.get(d.get(label, ""), 0) + v
    return out


def status_writes(metrics):
    # OpenMetrics counters carry a _total suffix; accept either.
    d = metric_by(metrics, "orgaccess_controller_status_writes_total", "kind")
    return d or metric_by(metrics, "orgaccess_controller_status_writes", "kind")


def reconcile_stats(before, after):
    """Per kind: reconciles run and their mean duration, between two scrapes."""
    out = {}
    for kind, n in metric_by(after, "orgaccess_controller_reconcile_duration_seconds_count", "kind").items():
        n0 = metric_by(before, "orgaccess_controller_reconcile_duration_seconds_count", "kind").get(kind, 0)
        s1 = metric_by(after, "orgaccess_controller_reconcile_duration_seconds_sum", "kind").get(kind, 0)
        s0 = metric_by(before, "orgaccess_controller_reconcile_duration_seconds_sum", "kind").get(kind, 0)
        if n - n0 > 0:
            out[kind] = {"reconciles": n - n0, "mean_seconds": (s1 - s0) / (n - n0)}
    return out


def histogram_delta(before, after, name):
    """Cumulative buckets (le -> count) of after - before, summed over the other labels."""
    def buckets(m):
        out = {}
        for (n, labels), v in m.items():
            if n == name + "_bucket":
                le = dict(labels)["le"]
                le = float("inf") if le in ("+Inf", "inf") else float(le)
                out[le] = out.get(le, 0.0) + v
        return out

    b, a = buckets(before), buckets(after)
    return sorted((le, a[le] - b.get(le, 0.0)) for le in a)


def histogram_quantile(q, cum):
    """Prometheus-style: linear interpolation inside the bucket holding the q-quantile."""
    if not cum or cum[-1][1] <= 0:
        return None
    total = cum[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in cum:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    """(VmRSS, VmHWM) in bytes."""
    rss, hwm, _ = proc_memory(pid)
    return rss, hwm


def proc_memory(pid):
    """(VmRSS, VmHWM, RssAnon) in bytes. RssAnon leaves out the binary's own
    pages (RssFile), which grow as more of its code runs, not with objects."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                found[key] = int(value.split()[0]) * 1024
    return found.get("VmRSS", 0), found.get("VmHWM", 0), found.get("RssAnon", 0)


def proc_cpu(pid):
    """utime + stime in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def find_under(root, binary):
    """The newest process running `binary` among the descendants of `root`."""
    parents = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    parents[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass

    def under(pid):
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == root:
                return True
        return False

    found = []
    for pid in parents:
        try:
            if under(pid) and os.readlink(f"/proc/{pid}/exe") == binary:
                found.append(pid)
        except OSError:
            pass
    return max(found) if found else None


def proc_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


class Sampler:
    """Samples the operator's RSS once a second (the peak is also VmHWM)."""

    def __init__(self, pid):
        self.pid = pid
        self.samples = []  # (t, rss)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                self.samples.append((time.monotonic(), proc_status(self.pid)[0]))
            except OSError:
                return
            time.sleep(1)


# --- the run ------------------------------------------------------------------


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


class Run:
    def __init__(self, a):
        self.a = a
        self.api = Api(a.kubeconfig)
        self.watcher = Watcher(self.api)
        self.result = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "parameters": {
                "groups": a.groups,
                "members": a.members,
                "apikeys": a.apikeys,
                "namespaces": a.namespaces,
                "chunk": a.chunk,
                "edit_members": min(a.edit_members, a.members),
                "idle_seconds": a.idle_seconds,
                "webhook_baseline": not a.skip_webhook_baseline,
                "binary": a.binary,
            },
            "machine": machine(),
        }
        self.cpu_marks = {}

    def kubectl(self, *args):
        cmd = [self.a.kubectl, "--kubeconfig", self.a.kubeconfig, "--cache-dir", self.a.kubectl_cache, *args]
        return subprocess.run(cmd, capture_output=True, text=True)

    def mark_cpu(self, name):
        self.cpu_marks[name] = (time.monotonic(), proc_cpu(self.a.operator_pid), self.cp_cpu())

    def cp_cpu(self):
        total = 0.0
        for pid in self.cp_pids:
            try:
                total += proc_cpu(pid)
            except OSError:
                pass
        return total

    def alive(self):
        try:
            os.kill(self.a.operator_pid, 0)
        except OSError:
            raise RuntimeError("the operator exited (see its log)")
        self.watcher.check()

    def wait(self, step, what, cond, timeout, interval=0.2):
        """Polls cond() -> (done, detail) until done or the step's deadline."""
        deadline = time.monotonic() + timeout
        detail = ""
        while True:
            self.alive()
            done, detail = cond()
            if done:
                return
            if time.monotonic() > deadline:
                raise StepTimeout(f"step '{step}' timed out after {timeout:.0f} s waiting for {what}: {detail}")
            time.sleep(interval)

    def apply(self, path, count):
        """kubectl apply --server-side of one file; retried once (server-side apply is idempotent)."""
        t0 = time.monotonic()
        for attempt in (1, 2):
            r = self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", path)
            if r.returncode == 0:
                return time.monotonic() - t0, attempt - 1
            if attempt == 1:
                log(f"apply of {os.path.basename(path)} failed, retrying once: {r.stderr.strip()[:300]}")
        raise RuntimeError(f"kubectl apply -f {path} ({count} objects) failed twice: {r.stderr.strip()[:2000]}")

    def go(self):
        a = self.a
        self.cp_pids = children(a.control_plane_pid)
        self.result["control_plane_processes"] = [proc_name(p) for p in self.cp_pids]
        namespaces = [f"scale-{i}" for i in range(1, a.namespaces + 1)]
        baseline_ns = None if a.skip_webhook_baseline else "scale-nowebhook"
        wide_members = min(a.edit_members, a.members)
        work = tempfile.mkdtemp(prefix="manifests-", dir=a.work_dir)

        # The empty operator.
        time.sleep(a.settle_seconds)
        rss0, _, anon0 = proc_memory(a.operator_pid)
        self.result["rss_empty_bytes"] = rss0
        self.result["rss_anon_empty_bytes"] = anon0
        self.mark_cpu("start")
        sampler = Sampler(a.operator_pid)
        sampler.start()
        self.watcher.start()

        # 1. Generate and apply.
        chunks = {}
        expected = []  # (kind, ns, name) of every Member and ApiKey
        total_objects = 0
        for ns in ([baseline_ns] if baseline_ns else []) + namespaces:
            objs = generate(ns, a.groups, a.members, a.apikeys, wide_members)
            total_objects += len(objs)
            expected += [(o["kind"], ns, o["metadata"]["name"]) for o in objs if o["kind"] in ("Member", "ApiKey")]
            chunks[ns] = write_chunks(objs, a.chunk, work, ns)
        per_ns = 1 + a.groups + a.members + a.apikeys
        log(f"generated {total_objects} objects ({per_ns} per namespace) in {work}")

        # Order: the baseline namespace (outside the webhook's namespaceSelector)
        # interleaved chunk by chunk with the first webhook namespace, so both
        # applies meet the same cluster size and the same controller load; then
        # the remaining namespaces, through the webhook.
        plan = []
        first = namespaces[0]
        if baseline_ns:
            for n, (wh, nowh) in enumerate(zip(chunks[first], chunks[baseline_ns])):
                pair = [(first, wh), (baseline_ns, nowh)]
                plan += pair if n % 2 == 0 else pair[::-1]
        else:
            plan += [(first, c) for c in chunks[first]]
        for ns in namespaces[1:]:
            plan += [(ns, c) for c in chunks[ns]]

        m_before = scrape(a.admin_port)
        api_before = scrape_apiserver(self.api)
        self.mark_cpu("apply_start")
        t_apply0 = time.monotonic()
        spent = {}  # ns -> seconds in kubectl
        retries = 0
        done = 0
        last_log = time.monotonic()
        for ns, (path, count) in plan:
            self.alive()
            seconds, r = self.apply(path, count)
            retries += r
            spent[ns] = spent.get(ns, 0.0) + seconds
            done += count
            if time.monotonic() - last_log > 15:
                log(f"applied {done}/{total_objects} objects ({time.monotonic() - t_apply0:.0f} s)")
                last_log = time.monotonic()
        t_apply_end = time.monotonic()
        self.mark_cpu("apply_end")
        m_after_apply = scrape(a.admin_port)
        api_after = scrape_apiserver(self.api)
        log(f"applied {total_objects} objects in {t_apply_end - t_apply0:.1f} s")

        ap = {
            "objects": total_objects,
            "seconds": t_apply_end - t_apply0,
            "retries": retries,
            "with_webhook": {
                "namespace": first,
                "objects": per_ns,
                "seconds": spent[first],
                "objects_per_second": per_ns / spent[first],
            },
        }
        if baseline_ns:
            ap["without_webhook"] = {
                "namespace": baseline_ns,
                "objects": per_ns,
                "seconds": spent[baseline_ns],
                "objects_per_second": per_ns / spent[baseline_ns],
            }
            ap["webhook_over_baseline"] = ap["with_webhook"]["objects_per_second"] / ap["without_webhook"]["objects_per_second"]
        if len(namespaces) > 1:
            rest = namespaces[1:]
            secs = sum(spent[n] for n in rest)
            ap["other_namespaces"] = {
                "namespaces": len(rest),
                "objects": per_ns * len(rest),
                "seconds": secs,
                "objects_per_second": per_ns * len(rest) / secs,
            }
        self.result["apply"] = ap

        # 6. Webhook decisions during the apply.
        hist = histogram_delta(m_before, m_after_apply, "orgaccess_webhook_decision_duration_seconds")
        decisions = metric_sum(m_after_apply, "orgaccess_webhook_decisions_total") - metric_sum(m_before, "orgaccess_webhook_decisions_total")
        denied = metric_sum(m_after_apply, "orgaccess_webhook_decisions_total", allowed="false") - metric_sum(m_before, "orgaccess_webhook_decisions_total", allowed="false")
        self.result["webhook_during_apply"] = {
            "decisions": decisions,
            "denied": denied,
            "p50_seconds": histogram_quantile(0.50, hist),
            "p99_seconds": histogram_quantile(0.99, hist),
            "buckets": [[le if le != float("inf") else "+Inf", c] for le, c in hist],
        }
        # The same calls as the apiserver times them (connection, TLS, queueing,
        # the handler): its own histogram, with coarse buckets.
        ahist = histogram_delta(api_before, api_after, "apiserver_admission_webhook_admission_duration_seconds")
        self.result["webhook_during_apply"]["apiserver_view"] = {
            "calls": ahist[-1][1] if ahist else 0,
            "p50_seconds": histogram_quantile(0.50, ahist),
            "p99_seconds": histogram_quantile(0.99, ahist),
            "buckets": [[le if le != float("inf") else "+Inf", c] for le, c in ahist],
        }

        # 2. Every Member and ApiKey reconciled.
        def all_reconciled():
            pending = self.watcher.reconciled(expected)
            return not pending, f"{len(pending)} of {len(expected)} not reconciled, e.g. {pending[:3]}"

        self.wait("reconcile", "every Member and ApiKey reconciled", all_reconciled, a.reconcile_timeout)
        # From the watch events' arrival times, not from this poll's.
        t_all = self.watcher.reconciled_at(expected)

        def quiet():
            last = self.watcher.last_status_change(("Member", "ApiKey", "Group", "Organization")) or 0
            q = time.monotonic() - last
            return q >= a.quiet_seconds, f"last status change {q:.1f} s ago"

        self.wait("reconcile", f"{a.quiet_seconds} s without status changes", quiet, a.reconcile_timeout)
        t_last_mk = self.watcher.last_status_change(("Member", "ApiKey")) or t_all
        t_last_any = self.watcher.last_status_change(("Member", "ApiKey", "Group", "Organization")) or t_all
        self.mark_cpu("converged")
        m_converged = scrape(a.admin_port)
        not_ready_true = [k for k in expected if not (self.watcher.obj(k) or {}).get("ready_true")]
        self.result["reconcile"] = {
            "objects": len(expected),
            "all_reconciled_after_apply_seconds": t_all - t_apply_end,
            "last_member_or_key_status_change_after_apply_seconds": t_last_mk - t_apply_end,
            "last_status_change_any_kind_after_apply_seconds": t_last_any - t_apply_end,
            "ready_not_true": len(not_ready_true),
            "ready_not_true_examples": [list(k) for k in not_ready_true[:5]],
            "status_writes_since_start": status_writes(m_converged),
            "reconciles_apply_and_convergence": reconcile_stats(m_before, m_converged),
        }
        log(f"every Member and ApiKey reconciled {t_all - t_apply_end:.1f} s after the apply")

        # 3. One group edit reaching the wide group's members.
        ns = first
        wide_keys = [("Member", ns, f"m-{i:05d}") for i in range(wide_members)]
        group_key = ("Group", ns, WIDE)
        gen_before = self.watcher.obj(group_key)["gen"]
        with open(os.path.join(work, "edit.yaml"), "w") as f:
            json.dump(wide_group(ns, "Edit"), f)
        m_edit0 = scrape(a.admin_port)
        self.mark_cpu("edit_start")
        t_cmd = time.monotonic()
        r = self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", os.path.join(work, "edit.yaml"))
        if r.returncode != 0:
            raise RuntimeError(f"the group edit failed: {r.stderr.strip()}")
        t_group = None

        def group_seen():
            nonlocal t_group
            for ev in self.watcher.events_between(t_cmd, float("inf")):
                if ev[1] == "Group" and ev[2] == ns and ev[3] == WIDE and ev[5] and ev[5] > gen_before:
                    t_group = ev[0]
                    return True, ""
            return False, "the edited Group's new generation not seen on the watch"

        self.wait("group edit", "the Group's watch event", group_seen, 30, 0.05)
        wide_set = set(k[2] for k in wide_keys)

        def first_changes():
            firsts = {}
            for ev in self.watcher.events_between(t_group, float("inf")):
                if ev[1] == "Member" and ev[2] == ns and ev[4] and ev[3] in wide_set and ev[3] not in firsts:
                    firsts[ev[3]] = ev[0]
            return firsts

        def all_changed():
            n = len(first_changes())
            return n == len(wide_set), f"{n} of {len(wide_set)} members' status changed"

        self.wait("group edit", "every member of the wide group to change status", all_changed, a.edit_timeout)
        self.wait("group edit", f"{a.quiet_seconds} s without status changes", quiet, a.edit_timeout)
        self.mark_cpu("edit_end")
        m_edit1 = scrape(a.admin_port)
        firsts = first_changes()
        lat = [t - t_group for t in firsts.values()]
        evs = self.watcher.events_between(t_group, time.monotonic())
        member_changes = [e for e in evs if e[1] == "Member" and e[4]]
        per_member = {}
        for e in member_changes:
            per_member[e[3]] = per_member.get(e[3], 0) + 1
        w0, w1 = status_writes(m_edit0), status_writes(m_edit1)
        self.result["group_edit"] = {
            "namespace": ns,
            "group": WIDE,
            "members": len(wide_set),
            "kubectl_to_group_event_seconds": t_group - t_cmd,
            "p50_seconds": pct(lat, 0.50),
            "p99_seconds": pct(lat, 0.99),
            "max_seconds": max(lat),
            "percentiles_seconds": {f"p{q}": pct(lat, q / 100) for q in (10, 25, 50, 75, 90, 99)},
            "reconciles": reconcile_stats(m_edit0, m_edit1),
            "member_status_changes_seen": len(member_changes),
            "members_changed_more_than_once": sum(1 for v in per_member.values() if v > 1),
            "members_outside_the_group_changed": sum(1 for m in per_member if m not in wide_set),
            "status_changes_seen_any_kind": sum(1 for e in evs if e[4]),
            "status_writes": {k: w1.get(k, 0) - w0.get(k, 0) for k in sorted(set(w0) | set(w1)) if w1.get(k, 0) - w0.get(k, 0)},
        }
        self.result["group_edit"]["status_writes_total"] = sum(self.result["group_edit"]["status_writes"].values())
        log(f"group edit: {len(wide_set)} members, p99 {pct(lat, 0.99):.2f} s")

        # 4. Idle.
        log(f"idle for {a.idle_seconds} s")
        m_idle0 = scrape(a.admin_port)
        self.mark_cpu("idle_start")
        t_i0 = time.monotonic()
        while time.monotonic() - t_i0 < a.idle_seconds:
            self.alive()
            time.sleep(0.5)
        t_i1 = time.monotonic()
        self.mark_cpu("idle_end")
        m_idle1 = scrape(a.admin_port)
        evs = self.watcher.events_between(t_i0, t_i1)
        w0, w1 = status_writes(m_idle0), status_writes(m_idle1)
        r0 = metric_sum(m_idle0, "orgaccess_controller_reconciles_total")
        r1 = metric_sum(m_idle1, "orgaccess_controller_reconciles_total")
        self.result["idle"] = {
            "seconds": t_i1 - t_i0,
            "status_writes": sum(w1.values()) - sum(w0.values()),
            "watch_events": len(evs),
            "status_changes_seen": sum(1 for e in evs if e[4]),
            "reconciles": r1 - r0,
        }

        # 5. Memory and CPU.
        rss, hwm, anon = proc_memory(a.operator_pid)
        anon0 = self.result["rss_anon_empty_bytes"]
        sampler.stopping = True
        cached = total_objects
        marks = self.cpu_marks

        def span(x, y, i):
            return marks[y][i] - marks[x][i]

        self.result["operator"] = {
            "pid": a.operator_pid,
            "rss_empty_bytes": rss0,
            "rss_peak_bytes": hwm,
            "rss_steady_bytes": rss,
            "rss_max_sampled_bytes": max((s[1] for s in sampler.samples), default=rss),
            "objects": cached,
            "bytes_per_object_above_empty": (rss - rss0) / cached,
            "rss_anon_empty_bytes": anon0,
            "rss_anon_steady_bytes": anon,
            "anon_bytes_per_object_above_empty": (anon - anon0) / cached,
            "cpu_seconds": {
                "apply": span("apply_start", "apply_end", 1),
                "convergence": span("apply_end", "converged", 1),
                "group_edit": span("edit_start", "edit_end", 1),
                "idle": span("idle_start", "idle_end", 1),
                "total": span("start", "idle_end", 1),
            },
            "cores_during_apply": span("apply_start", "apply_end", 1) / span("apply_start", "apply_end", 0),
        }
        self.result["control_plane_cpu_seconds"] = {
            "apply": span("apply_start", "apply_end", 2),
            "group_edit": span("edit_start", "edit_end", 2),
            "total": span("start", "idle_end", 2),
        }
        # What one status write costs the apiserver and etcd: the floor under
        # the group edit's latency on this machine.
        writes = self.result["group_edit"]["status_writes_total"]
        self.result["group_edit"]["control_plane_cpu_ms_per_write"] = (
            1000 * span("edit_start", "edit_end", 2) / writes if writes else None
        )
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.result["harness_cpu_seconds"] = ru.ru_utime + ru.ru_stime
        self.result["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
        self.watcher.stop()
        return self.result


def machine():
    cores = os.cpu_count()
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cores": cores, "memory_bytes": mem, "load_average_1m_at_start": load}


def fmt_s(x):
    return "-" if x is None else (f"{x * 1000:.1f} ms" if x < 1 else f"{x:.1f} s")


def mb(x):
    return f"{x / 1e6:.0f} MB"


def table(r):
    p = r["parameters"]
    ap, rec, ed, idle, op, wh = r["apply"], r["reconcile"], r["group_edit"], r["idle"], r["operator"], r["webhook_during_apply"]
    m = r["machine"]
    rows = [
        ("machine", f"{m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, load average {m['load_average_1m_at_start']:.1f} at start, {m['load_average_1m_at_end']:.1f} at end"),
        ("size", f"{p['namespaces']} namespace(s) x ({p['groups']} groups, {p['members']} members, {p['apikeys']} API keys)"
                 + (" + 1 baseline namespace" if p["webhook_baseline"] else "")),
        ("apply, all (kubectl, sequential)", f"{ap['objects']} objects in {ap['seconds']:.1f} s ({ap['objects'] / ap['seconds']:.0f} objects/s), {ap['retries']} retries"),
        ("apply through the webhook", f"{ap['with_webhook']['seconds']:.1f} s ({ap['with_webhook']['objects_per_second']:.1f} objects/s) [{ap['with_webhook']['namespace']}]"),
    ]
    if "without_webhook" in ap:
        rows.append(("apply without the webhook", f"{ap['without_webhook']['seconds']:.1f} s ({ap['without_webhook']['objects_per_second']:.1f} objects/s); with/without = {ap['webhook_over_baseline'] * 100:.0f}%"))
    if "other_namespaces" in ap:
        o = ap["other_namespaces"]
        rows.append(("apply, other namespaces (webhook)", f"{o['seconds']:.1f} s ({o['objects_per_second']:.1f} objects/s)"))
    rows += [
        ("webhook decision p50 / p99 (apply)", f"{fmt_s(wh['p50_seconds'])} / {fmt_s(wh['p99_seconds'])} over {wh['decisions']:.0f} decisions, {wh['denied']:.0f} denied"),
        ("webhook call p50 / p99 (apiserver)", f"{fmt_s(wh['apiserver_view']['p50_seconds'])} / {fmt_s(wh['apiserver_view']['p99_seconds'])} over {wh['apiserver_view']['calls']:.0f} calls (apiserver_admission_webhook_admission_duration_seconds)"),
        ("every Member+ApiKey reconciled", f"{rec['all_reconciled_after_apply_seconds']:.1f} s after the apply ({rec['objects']} objects; last status change {rec['last_member_or_key_status_change_after_apply_seconds']:.1f} s; Ready not True: {rec['ready_not_true']})"),
        ("group edit -> members' status", f"{ed['members']} members: p50 {fmt_s(ed['p50_seconds'])}, p99 {fmt_s(ed['p99_seconds'])}, max {fmt_s(ed['max_seconds'])}"),
        ("group edit reconciles", ", ".join(f"{k} {v['reconciles']:.0f} x {v['mean_seconds'] * 1000:.1f} ms" for k, v in sorted(ed["reconciles"].items()))),
        ("group edit writes", f"{ed['status_writes_total']:.0f} status writes {ed['status_writes']}; {ed['member_status_changes_seen']} member status changes seen, {ed['members_changed_more_than_once']} members more than once, {ed['members_outside_the_group_changed']} outside the group"),
        (f"idle {idle['seconds']:.0f} s", f"{idle['status_writes']:.0f} status writes, {idle['watch_events']} watch events, {idle['reconciles']:.0f} reconciles"),
        ("operator RSS empty / peak / steady", f"{mb(op['rss_empty_bytes'])} / {mb(op['rss_peak_bytes'])} / {mb(op['rss_steady_bytes'])}"),
        ("RSS per object above empty", f"{op['bytes_per_object_above_empty'] / 1024:.1f} KiB ({op['objects']} objects)"),
        ("anonymous RSS empty / steady", f"{mb(op['rss_anon_empty_bytes'])} / {mb(op['rss_anon_steady_bytes'])}: {op['anon_bytes_per_object_above_empty'] / 1024:.1f} KiB per object"),
        ("operator CPU seconds", "apply {apply:.1f}, convergence {convergence:.1f}, edit {group_edit:.1f}, idle {idle:.1f}, total {total:.1f}".format(**op["cpu_seconds"])
         + f" ({op['cores_during_apply']:.2f} cores during the apply)"),
        ("control plane CPU seconds", f"apply {r['control_plane_cpu_seconds']['apply']:.1f}, edit {r['control_plane_cpu_seconds'].get('group_edit', 0):.1f} ({ed.get('control_plane_cpu_ms_per_write') or 0:.1f} ms per status write), total {r['control_plane_cpu_seconds']['total']:.1f}"
         + f" (this harness's watches: {r['harness_cpu_seconds']:.1f})"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--kubeconfig", required=True)
    r.add_argument("--kubectl", required=True)
    r.add_argument("--kubectl-cache", required=True)
    r.add_argument("--work-dir", required=True)
    r.add_argument("--operator-pid", type=int, required=True)
    r.add_argument("--control-plane-pid", type=int, required=True)
    r.add_argument("--admin-port", type=int, required=True)
    r.add_argument("--binary", default="")
    r.add_argument("--groups", type=int, required=True)
    r.add_argument("--members", type=int, required=True)
    r.add_argument("--apikeys", type=int, required=True)
    r.add_argument("--namespaces", type=int, default=1)
    r.add_argument("--chunk", type=int, default=250)
    r.add_argument("--edit-members", type=int, default=1000)
    r.add_argument("--idle-seconds", type=float, default=60)
    r.add_argument("--quiet-seconds", type=float, default=5)
    r.add_argument("--settle-seconds", type=float, default=3)
    r.add_argument("--reconcile-timeout", type=float, default=600)
    r.add_argument("--edit-timeout", type=float, default=300)
    r.add_argument("--skip-webhook-baseline", action="store_true")
    r.add_argument("--out", default="")
    g = sub.add_parser("generate", help="print one namespace's manifests (to look at them)")
    g.add_argument("--namespace", default="scale-1")
    g.add_argument("--groups", type=int, default=20)
    g.add_argument("--members", type=int, default=200)
    g.add_argument("--apikeys", type=int, default=10)
    g.add_argument("--edit-members", type=int, default=1000)
    f = sub.add_parser("find-under", help="print the pid of a process running BINARY under PID (scale.sh's wrapper)")
    f.add_argument("pid", type=int)
    f.add_argument("binary")
    a = ap.parse_args()

    if a.cmd == "find-under":
        found = find_under(a.pid, a.binary)
        print(found or "")
        return 0
    if a.cmd == "generate":
        for o in generate(a.namespace, a.groups, a.members, a.apikeys, min(a.edit_members, a.members)):
            print("---")
            print(json.dumps(o))
        return 0

    if a.groups < 4:
        ap.error("--groups must be at least 4")
    run = Run(a)
    try:
        result = run.go()
    except StepTimeout as e:
        log(f"error: {e}")
        return 2
    except (RuntimeError, OSError) as e:
        log(f"error: {e}")
        return 1
    finally:
        run.watcher.stop()
    print()
    print("orgaccess scale results")
    print(table(result))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"\n  JSON: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
