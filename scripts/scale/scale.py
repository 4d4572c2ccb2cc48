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
import hashlib
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
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

    def patch(self, path, body, content_type="application/merge-patch+json"):
        """A patch (JSON merge patch unless told) as the cluster admin; returns the object."""
        c = self.conn()
        try:
            c.request("PATCH", path, body=json.dumps(body), headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": content_type,
            })
            r = c.getresponse()
            data = r.read()
            if r.status not in (200, 201):  # 201: an apply that created the object
                raise RuntimeError(f"PATCH {path}: HTTP {r.status}: {data[:300]!r}")
            return json.loads(data)
        finally:
            c.close()

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


class WatchExpired(Exception):
    pass


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
        self.connected = {}

    def start(self):
        for kind, plural in KINDS.items():
            rv = self.api.get(f"/apis/{GROUP_VERSION}/{plural}?limit=1")["metadata"]["resourceVersion"]
            t = threading.Thread(target=self._run, args=(kind, plural, rv), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, kind, plural, rv):
        failing_since = None
        while not self.stopping:
            try:
                self.connected[kind] = False
                rv = self._watch(kind, plural, rv)
                failing_since = None
            except WatchExpired:
                # The restarted apiserver's watch cache starts after our
                # resourceVersion: list again (status changes still show).
                try:
                    rv = self._relist(kind, plural)
                except Exception:  # noqa: BLE001 - retried below
                    time.sleep(0.5)
            except Exception as e:  # noqa: BLE001 - reported by check()
                if self.stopping:
                    return
                # An apiserver restart (--fault apiserver-restart) ends the
                # watch: resume from the last resourceVersion for two minutes.
                now = time.monotonic()
                if failing_since is None or self.connected[kind]:
                    failing_since = now
                if now - failing_since > 120:
                    self.error = f"watch of {plural} failed for two minutes: {e}"
                    return
                time.sleep(0.5)

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
        self.connected[kind] = True
        while True:
            line = r.readline()
            if not line:
                c.close()
                return rv  # the server ended the watch: resume from the last version
            now = time.monotonic()
            ev = json.loads(line)
            obj = ev["object"]
            if ev["type"] == "ERROR":
                if obj.get("code") == 410:
                    c.close()
                    raise WatchExpired(obj.get("message"))
                raise RuntimeError(f"watch error: {obj.get('message')}")
            rv = obj["metadata"]["resourceVersion"]
            if ev["type"] == "BOOKMARK":
                continue
            self._record(now, kind, ev["type"], obj)

    def _relist(self, kind, plural):
        listed = self.api.get(f"/apis/{GROUP_VERSION}/{plural}")
        now = time.monotonic()
        for obj in listed["items"]:
            self._record(now, kind, "MODIFIED", obj)
        return listed["metadata"]["resourceVersion"]

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

    def final_state(self):
        """Every object's status without what differs between equal runs
        (times, key values' hashes and prefixes): a digest to compare a fault
        run with a run without faults, and the statuses themselves."""
        volatile = {"lastTransitionTime", "hash", "prefix", "previousHash", "previousPrefix", "message"}

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items() if k not in volatile and not k.endswith("At")}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        with self.lock:
            items = sorted((k, json.loads(o["status"])) for k, o in self.objects.items())
        normal = [[*k, clean(st)] for k, st in items]
        blob = json.dumps(normal, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest(), normal

    def obj(self, key):
        with self.lock:
            o = self.objects.get(key)
            return dict(o) if o else None


# --- the decision service -------------------------------------------------------


class Decisions:
    """Keep-alive connections to the operator's decision service: the NGINX
    auth_request listener (plain HTTP on loopback) for keys, and the HTTPS
    listener (client certificate) for members' checks."""

    def __init__(self, nginx_port, https_port, tls_dir):
        self.nginx = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=10)
        ctx = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.crt"))
        ctx.load_cert_chain(os.path.join(tls_dir, "client.crt"), os.path.join(tls_dir, "client.key"))
        self.https = http.client.HTTPSConnection("127.0.0.1", https_port, context=ctx, timeout=10)

    def key_status(self, ns, value):
        """What NGINX would get for this key value: 200, 401 or 403."""
        self.nginx.request("GET", "/nginx/auth", headers={
            "X-Api-Key": value, "X-Orgaccess-Namespace": ns, "X-Forwarded-For": "127.0.0.1",
        })
        r = self.nginx.getresponse()
        r.read()
        return r.status

    def check(self, ns, member, verb, target):
        body = json.dumps({"namespace": ns, "principal": {"member": member}, "verb": verb, "target": target})
        self.https.request("POST", "/v1/check", body=body, headers={"Content-Type": "application/json"})
        r = self.https.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"/v1/check: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data)


def edit_sources(group):
    """The sources a generated group grants Edit on (group_privileges: the
    first two of its five Custom resources)."""
    i = 0 if group == WIDE else int(group.split("-")[1])
    first = (i * 7) % len(SOURCES)
    return [SOURCES[(first + k) % len(SOURCES)] for k in range(2)]


def latency_summary(samples):
    """samples: (from the request, from the response) pairs, seconds."""
    req = [s[0] for s in samples]
    resp = [s[1] for s in samples]
    return {
        "trials": len(samples),
        "from_request": {"p50_seconds": pct(req, 0.50), "p99_seconds": pct(req, 0.99), "max_seconds": max(req)},
        "from_response": {"p50_seconds": pct(resp, 0.50), "p99_seconds": pct(resp, 0.99), "max_seconds": max(resp)},
    }


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


# The apiserver's own series for status writes: every PATCH of a Member's
# status (its duration histogram; a server-side apply counts as verb APPLY,
# a merge patch as PATCH), the Events created, and its process CPU.
APISERVER_WRITE_SERIES = ("apiserver_request_duration_seconds", "apiserver_request_total", "process_cpu_seconds_total")


def scrape_apiserver_writes(api):
    text = api.get_raw("/metrics").decode()
    keep = []
    for line in text.splitlines():
        if line.startswith("process_cpu_seconds_total"):
            keep.append(line)
        elif line.startswith(APISERVER_WRITE_SERIES[:2]) and (
            ('resource="members"' in line and 'subresource="status"' in line and ('verb="PATCH"' in line or 'verb="APPLY"' in line))
            or ('resource="events"' in line and 'verb="POST"' in line)
        ):
            keep.append(line)
    return parse_metrics("\n".join(keep))


def apiserver_writes_delta(before, after, writes):
    """The apiserver's view between two scrapes: Member status PATCHes
    (count, mean and p99 of apiserver_request_duration_seconds), Events
    created, and its process CPU per Member status write."""
    def members(m, suffix):
        return metric_sum(m, "apiserver_request_duration_seconds" + suffix, resource="members", subresource="status")

    def only_members(m):
        return {k: v for k, v in m.items() if ("resource", "members") in k[1]}

    n = members(after, "_count") - members(before, "_count")
    cum = histogram_delta(only_members(before), only_members(after), "apiserver_request_duration_seconds")
    cpu = metric_sum(after, "process_cpu_seconds_total") - metric_sum(before, "process_cpu_seconds_total")
    events = metric_sum(after, "apiserver_request_total", resource="events", verb="POST") - metric_sum(
        before, "apiserver_request_total", resource="events", verb="POST")
    return {
        "member_status_patches": n,
        "mean_seconds": (members(after, "_sum") - members(before, "_sum")) / n if n else None,
        "p99_seconds": histogram_quantile(0.99, cum),
        "events_created": events,
        "apiserver_cpu_seconds": cpu,
        "apiserver_cpu_ms_per_member_write": 1000 * cpu / writes if writes else None,
    }


def member_write_bytes(objs):
    """What a Member status write weighs, over the objects given (as the
    apiserver returns them): the server-side apply body the operator sends
    ({apiVersion, kind, status}, compact JSON: the status is all the
    operator's), the object as stored, and its managedFields."""
    def size(v):
        return len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())

    sent = [size({"apiVersion": GROUP_VERSION, "kind": "Member", "status": o.get("status") or {}}) for o in objs]
    mf = [size(o["metadata"].get("managedFields") or []) for o in objs]
    stored = [size(o) for o in objs]
    mean = lambda xs: sum(xs) / len(xs) if xs else None
    return {
        "members": len(objs),
        "sent_bytes_mean": mean(sent),
        "stored_bytes_mean": mean(stored),
        "managed_fields_bytes_mean": mean(mf),
        "status_fields": {k: mean([size(o["status"][k]) for o in objs if k in (o.get("status") or {})])
                          for k in ("conditions", "privileges", "groups")},
    }


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


# --- operator processes (--fault) ------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Operators:
    """Starts operator processes the way scripts/scale.sh started the first
    (operator.json: its argv and environment), kills them with SIGKILL, and
    lists every pid it started in operator.pids for scale.sh's cleanup."""

    def __init__(self, a):
        with open(a.operator_json) as f:
            self.spec = json.load(f)
        self.work_dir = a.work_dir
        self.procs = {}
        self.logs = {}

    def log_tail(self, pid, lines=15):
        path = self.logs.get(pid)
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def start(self, log_name, replace=None):
        argv = list(self.spec["argv"])
        for flag, value in (replace or {}).items():
            argv[argv.index(flag) + 1] = value
        env = dict(os.environ, **self.spec["env"])
        with open(os.path.join(self.work_dir, log_name), "ab") as out:
            p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        with open(os.path.join(self.work_dir, "operator.pids"), "a") as f:
            f.write(f"{p.pid}\n")
        self.procs[p.pid] = p
        self.logs[p.pid] = os.path.join(self.work_dir, log_name)
        return p.pid

    def kill(self, pid):
        os.kill(pid, signal.SIGKILL)
        if pid in self.procs:
            self.procs.pop(pid).wait()
            return
        # Started by scale.sh: a zombie until it reaps it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        return
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"operator pid {pid} did not die after SIGKILL")

    def wait_ports_closed(self, timeout=60):
        """Until nothing listens on the operator's ports any more. A killed
        process's leader thread turns zombie before its other threads have
        exited and its sockets are closed: starting again at once can find
        the addresses still in use."""
        argv = self.spec["argv"]
        ports = [int(argv[i + 1].rsplit(":", 1)[1]) for i, a in enumerate(argv)
                 if a in ("--admin-addr", "--webhook-addr", "--decision-addr", "--decision-nginx-addr")]
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                with socket.socket() as sock:
                    sock.settimeout(1)
                    if sock.connect_ex(("127.0.0.1", port)) != 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {port} still accepts connections {timeout} s after the kill")
                time.sleep(0.05)

    def wait_ready(self, pid, admin_port, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            if self.procs.get(pid) and self.procs[pid].poll() is not None:
                raise RuntimeError(f"the operator (pid {pid}) exited while starting; the end of its log:\n{self.log_tail(pid)}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StepTimeout(f"the operator (pid {pid}) was not ready within {timeout} s")
            time.sleep(0.1)


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
        self.cp_seen = {}  # control-plane pid -> its last CPU seconds
        # A fault run replaces the operator process: its counters and CPU
        # seconds continue from the last process's (see switch_operator).
        self.metric_offset = {}
        self.cpu_offset = 0.0
        self.operators = Operators(a) if a.fault != "none" else None
        self.faults = []

    def scrape(self):
        m = scrape(self.a.admin_port)
        for k, v in self.metric_offset.items():
            m[k] = m.get(k, 0.0) + v
        return m

    def switch_operator(self, last_metrics, last_cpu, pid, admin_port):
        """From now on the operator is `pid` (admin `admin_port`); what the
        previous process counted (its last scrape and CPU seconds, taken just
        before the fault) carries over, the new process's own so far does not."""
        self.a.operator_pid, self.a.admin_port = pid, admin_port
        now = scrape(admin_port)
        self.metric_offset = {k: last_metrics.get(k, 0.0) - now.get(k, 0.0) for k in set(last_metrics) | set(now)}
        self.cpu_offset = last_cpu - proc_cpu(pid)

    def before_fault(self):
        return self.scrape(), self.cpu_offset + proc_cpu(self.a.operator_pid)

    def kill_and_restart(self, phase):
        """kill -9 the operator, start it again with the same flags (same
        ports: the webhook configuration still points at it), wait until ready."""
        m, cpu = self.before_fault()
        t0 = time.monotonic()
        self.operators.kill(self.a.operator_pid)
        self.operators.wait_ports_closed()
        pid = self.operators.start("operator-restarted.log")
        self.operators.wait_ready(pid, self.a.admin_port)
        self.switch_operator(m, cpu, pid, self.a.admin_port)
        self.faults.append({"fault": "kill", "phase": phase, "killed_at": t0, "ready_again_seconds": time.monotonic() - t0})
        log(f"fault: operator killed during the {phase} and ready again in {time.monotonic() - t0:.1f} s (pid {pid})")

    def start_standby(self):
        """A second replica (leader election on), its own ports, before the edit."""
        ports = {flag: f"127.0.0.1:{free_port()}" for flag in ("--admin-addr", "--webhook-addr", "--decision-addr", "--decision-nginx-addr")}
        pid = self.operators.start("operator-b.log", dict(ports, **{"--identity": "scale-b"}))
        admin_port = int(ports["--admin-addr"].rsplit(":", 1)[1])
        self.operators.wait_ready(pid, admin_port)
        self.standby = (pid, admin_port, ports)
        log(f"fault: standby replica scale-b ready (pid {pid})")

    def fail_over(self, phase):
        """kill -9 the leader; the standby takes the lease and finishes."""
        m, cpu = self.before_fault()
        t0 = time.monotonic()
        self.operators.kill(self.a.operator_pid)
        pid, admin_port, ports = self.standby
        self.switch_operator(m, cpu, pid, admin_port)
        # The webhook too, as a Service would send it to the surviving pod.
        self.api.patch(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/orgaccess-scale",
            [{"op": "replace", "path": "/webhooks/0/clientConfig/url",
              "value": f"https://{ports['--webhook-addr']}/validate"}],
            "application/json-patch+json",
        )
        # The decision service of the freshness step is now the standby's.
        self.a.decision_port = int(ports["--decision-addr"].rsplit(":", 1)[1])
        self.a.decision_nginx_port = int(ports["--decision-nginx-addr"].rsplit(":", 1)[1])
        self.faults.append({"fault": "failover", "phase": phase, "killed_at": t0})
        log(f"fault: leader killed during the {phase}; scale-b (pid {pid}) takes over")

    def restart_apiserver(self, phase):
        """SIGUSR1 to `control-plane up`: the apiserver down for 5 s and back."""
        t0 = time.monotonic()
        os.kill(self.a.control_plane_pid, signal.SIGUSR1)
        self.faults.append({"fault": "apiserver-restart", "phase": phase, "signalled_at": t0})
        log(f"fault: apiserver restart during the {phase}")

    def inject(self, phase):
        f = self.a.fault
        if f == "kill":
            self.kill_and_restart(phase)
        elif f == "failover" and phase == "group edit":
            self.fail_over(phase)
        elif f == "apiserver-restart" and phase == "group edit":
            self.restart_apiserver(phase)

    def kubectl(self, *args):
        cmd = [self.a.kubectl, "--kubeconfig", self.a.kubeconfig, "--cache-dir", self.a.kubectl_cache, *args]
        return subprocess.run(cmd, capture_output=True, text=True)

    def mark_cpu(self, name):
        self.cpu_marks[name] = (time.monotonic(), self.cpu_offset + proc_cpu(self.a.operator_pid), self.cp_cpu())

    def cp_cpu(self):
        """CPU seconds of etcd and the apiserver; a restarted apiserver is a
        new child, the old one counts with its last reading."""
        for pid in set(self.cp_pids) | set(children(self.a.control_plane_pid)):
            try:
                self.cp_seen[pid] = proc_cpu(pid)
            except OSError:
                pass
        return sum(self.cp_seen.values())

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

    def apply_parallel(self, chunks_by_ns, parallel):
        """Applies each namespace's chunks in order, `parallel` namespaces at a
        time; returns namespace -> (seconds in kubectl, retries, objects)."""
        import concurrent.futures

        def one(ns):
            seconds, retries, count = 0.0, 0, 0
            for path, n in chunks_by_ns[ns]:
                s, r = self.apply(path, n)
                seconds, retries, count = seconds + s, retries + r, count + n
            log(f"applied namespace {ns}: {count} objects in {seconds:.1f} s")
            return ns, (seconds, retries, count)

        out = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            pending = {pool.submit(one, ns) for ns in chunks_by_ns}
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=5)
                for f in done:
                    ns, v = f.result()
                    out[ns] = v
                self.alive()
        return out

    def write_floor(self, ns, names, concurrency):
        """The control plane's floor under the group edit: the same change
        to the same members' statuses, written again by a plain client in
        the cheapest form that carries it (a JSON merge patch of
        `status.privileges` alone, an atomic list, with the edited privilege
        back at the level before the edit: the same size and the same
        change, reversed), by `concurrency` keep-alive connections, with the
        operator stopped (SIGSTOP) so that nothing else writes. Timed like
        the edit: from the first request to each write's response."""
        import concurrent.futures
        import queue

        listed = {o["metadata"]["name"]: o for o in self.api.get(f"/apis/{GROUP_VERSION}/namespaces/{ns}/members")["items"]}
        bodies = []
        for name in names:
            privileges = (listed[name].get("status") or {}).get("privileges") or []
            for p in privileges:
                if (p.get("service"), p.get("domain")) == EDITED:
                    p["level"] = "View"
            bodies.append((name, json.dumps({"status": {"privileges": privileges}}, separators=(",", ":"))))
        size = sum(len(b) for _, b in bodies) / max(1, len(bodies))
        work = queue.Queue()
        for b in bodies:
            work.put(b)
        done_at = []
        lock = threading.Lock()

        def worker():
            c = self.api.conn()
            try:
                while True:
                    try:
                        name, body = work.get_nowait()
                    except queue.Empty:
                        return
                    c.request("PATCH", f"/apis/{GROUP_VERSION}/namespaces/{ns}/members/{name}/status", body=body, headers={
                        "Authorization": f"Bearer {self.api.token}",
                        "Content-Type": "application/merge-patch+json",
                    })
                    r = c.getresponse()
                    data = r.read()
                    if r.status != 200:
                        raise RuntimeError(f"write floor: PATCH {name}/status: HTTP {r.status}: {data[:300]!r}")
                    with lock:
                        done_at.append(time.monotonic())
            finally:
                c.close()

        os.kill(self.a.operator_pid, signal.SIGSTOP)
        try:
            aw0 = scrape_apiserver_writes(self.api)
            self.mark_cpu("floor_start")
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
                for f in [pool.submit(worker) for _ in range(concurrency)]:
                    f.result()
            wall = time.monotonic() - t0
            self.mark_cpu("floor_end")
            aw1 = scrape_apiserver_writes(self.api)
        finally:
            os.kill(self.a.operator_pid, signal.SIGCONT)
        lat = [t - t0 for t in done_at]
        cp = self.cpu_marks["floor_end"][2] - self.cpu_marks["floor_start"][2]
        out = {
            "writes": len(lat),
            "concurrency": concurrency,
            "status_bytes_mean": size,
            "seconds": wall,
            "writes_per_second": len(lat) / wall,
            "p50_seconds": pct(lat, 0.50),
            "p99_seconds": pct(lat, 0.99),
            "control_plane_cpu_ms_per_write": 1000 * cp / len(lat) if lat else None,
            "apiserver": apiserver_writes_delta(aw0, aw1, len(lat)),
        }
        log(f"write floor: {len(lat)} status writes in {wall:.2f} s ({concurrency} connections), p99 {pct(lat, 0.99):.2f} s")
        return out

    def apiserver_pid(self):
        for pid in children(self.a.control_plane_pid):
            if proc_name(pid) == "kube-apiserver":
                return pid
        raise RuntimeError("no kube-apiserver under the control plane")

    def write_cost(self, ns, names, writes, rounds):
        """What one Member status write costs the apiserver, by the status's
        shape, side by side: copies of the installed Member CRD under scratch
        API groups (nothing watches them), one per shape, each holding the
        same members; then, in interleaved rounds, `writes` server-side
        applies per shape as the operator sends them (field manager
        orgaccess-controller, forced), each a real change (the edited
        privilege's level flipped), one after another on one keep-alive
        connection, in blocks of 10 with the shapes taking turns. Per shape: bytes sent, bytes stored, managedFields, the
        apiserver's CPU (its process, /proc) and wall time per write. A
        ConfigMap of the same size, written by merge patch, is the reference
        for a built-in object."""
        crd = self.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/members.orgaccess.dev")
        conds_type = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"].get("x-kubernetes-list-type")
        shapes = [
            ("map", "conditions a map list (main before this change)", False, False),
            ("atomic", "conditions an atomic list (this CRD)" if conds_type == "atomic" else "conditions an atomic list", True, False),
            ("compact", "atomic conditions, privileges as one string each (not adopted: an API change)", True, True),
        ]

        def shape_crd(group, atomic, strings):
            d = json.loads(json.dumps(crd))
            d["metadata"] = {"name": f"members.{group}"}
            d.pop("status", None)
            d["spec"]["group"] = group
            st = d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
            st["conditions"].pop("x-kubernetes-list-map-keys", None)
            st["conditions"]["x-kubernetes-list-type"] = "map" if not atomic else "atomic"
            if not atomic:
                st["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
            if strings:
                st["privileges"] = {"type": "array", "items": {"type": "string", "maxLength": 65536}}
            return d

        def compact(p):
            text = f"{p['service']}/{p['domain']}: {p['level']}"
            if p.get("resources"):
                text += " (" + ", ".join(f"{r['name']} {r['level']}" for r in p["resources"]) + ")"
            if p.get("canCreate"):
                text += " + Can Create"
            if p.get("grantedBy"):
                text += " <- " + ", ".join(p["grantedBy"])
            return text

        listed = {o["metadata"]["name"]: o for o in self.api.get(f"/apis/{GROUP_VERSION}/namespaces/{ns}/members")["items"]}
        sample = [listed[n] for n in names[:writes] if n in listed]
        for key, _, atomic, strings in shapes:
            group = f"{key}.cost.orgaccess.dev"
            self.api.patch(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/members.{group}?fieldManager={FIELD_MANAGER}&force=true",
                           shape_crd(group, atomic, strings), "application/apply-patch+yaml")
        for key, *_ in shapes:
            self.wait("write cost", f"the {key} CRD established", lambda key=key: (any(
                c["type"] == "Established" and c["status"] == "True" for c in (self.api.get(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/members.{key}.cost.orgaccess.dev").get("status") or {}).get("conditions", [])), ""), 60)
        time.sleep(2)
        apiserver = self.apiserver_pid()
        c = self.api.conn()

        def send(path, body, content_type, method="PATCH"):
            c.request(method, path, body=body, headers={"Authorization": f"Bearer {self.api.token}", "Content-Type": content_type})
            r = c.getresponse()
            data = r.read()
            if r.status not in (200, 201):
                raise RuntimeError(f"write cost: {method} {path}: HTTP {r.status}: {data[:300]!r}")
            return data

        def status_of(o, flip, strings):
            st = json.loads(json.dumps(o.get("status") or {}))
            for p in st.get("privileges", []):
                if (p.get("service"), p.get("domain")) == EDITED:
                    p["level"] = "View" if flip else "Edit"
            if strings:
                st["privileges"] = [compact(p) for p in st.get("privileges", [])]
            return st

        for key, _, atomic, strings in shapes:
            gv = f"{key}.cost.orgaccess.dev/v1alpha1"
            for o in sample:
                name = o["metadata"]["name"]
                send(f"/apis/{gv}/namespaces/{ns}/members/{name}?fieldManager={FIELD_MANAGER}&force=true", json.dumps(
                    {"apiVersion": gv, "kind": "Member", "metadata": {"name": name}, "spec": o["spec"]}), "application/apply-patch+yaml")
                send(f"/apis/{gv}/namespaces/{ns}/members/{name}/status?fieldManager=orgaccess-controller&force=true", json.dumps(
                    {"apiVersion": gv, "kind": "Member", "status": status_of(o, False, strings)}, separators=(",", ":")), "application/apply-patch+yaml")
        size = sum(len(json.dumps({"apiVersion": GROUP_VERSION, "kind": "Member", "status": o.get("status") or {}}, separators=(",", ":"))) for o in sample) // max(1, len(sample))
        send(f"/api/v1/namespaces/{ns}/configmaps", json.dumps({"metadata": {"name": "write-cost"}, "data": {"x": "a"}}), "application/json", "POST")
        out = {key: {"shape": label, "writes": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0, "blocks_cpu_ms_per_write": []}
               for key, label, *_ in shapes}
        out["configmap"] = {"shape": f"a ConfigMap of the same size ({size} B of data), merge patch", "writes": 0,
                            "cpu_seconds": 0.0, "wall_seconds": 0.0, "blocks_cpu_ms_per_write": []}
        # Blocks of BLOCK writes, the shapes taking turns block by block (the
        # order rotating each turn), so that whatever else loads the machine
        # meanwhile falls on every shape alike; `rounds` times over the sample.
        BLOCK = 10
        order = shapes + [("configmap", "", False, False)]
        turns = rounds * max(1, len(sample) // BLOCK)
        for turn in range(turns):
            first = (turn * BLOCK) % len(sample)
            block = sample[first:first + BLOCK]
            flip = ((turn * BLOCK) // len(sample)) % 2 == 0  # each visit of a member changes it
            for key, _, atomic, strings in order[turn % len(order):] + order[:turn % len(order)]:
                if key == "configmap":
                    reqs = [(f"/api/v1/namespaces/{ns}/configmaps/write-cost", json.dumps(
                        {"data": {"x": ("ab"[(i + turn) % 2]) * size}}), "application/merge-patch+json") for i in range(len(block))]
                else:
                    gv = f"{key}.cost.orgaccess.dev/v1alpha1"
                    reqs = [(f"/apis/{gv}/namespaces/{ns}/members/{o['metadata']['name']}/status?fieldManager=orgaccess-controller&force=true",
                             json.dumps({"apiVersion": gv, "kind": "Member", "status": status_of(o, flip, strings)}, separators=(",", ":")),
                             "application/apply-patch+yaml") for o in block]
                c0, t0 = proc_cpu(apiserver), time.monotonic()
                last = None
                for path, body, ct in reqs:
                    last = send(path, body, ct)
                wall, cpu = time.monotonic() - t0, proc_cpu(apiserver) - c0
                r = out[key]
                r["writes"] += len(reqs)
                r["cpu_seconds"] += cpu
                r["wall_seconds"] += wall
                r["blocks_cpu_ms_per_write"].append(1000 * cpu / len(reqs))
                r["sent_bytes_mean"] = sum(len(b) for _, b, _ in reqs) / len(reqs)
                stored = json.loads(last)
                r["stored_bytes_last"] = len(json.dumps(stored, separators=(",", ":")))
                r["managed_fields_bytes_last"] = len(json.dumps(stored["metadata"].get("managedFields") or [], separators=(",", ":")))
        for r in out.values():
            r["apiserver_cpu_ms_per_write"] = 1000 * r["cpu_seconds"] / r["writes"]
            r["wall_ms_per_write"] = 1000 * r["wall_seconds"] / r["writes"]
            b = sorted(r.pop("blocks_cpu_ms_per_write"))
            r["blocks"] = len(b)
            r["block_cpu_ms_per_write_p25_p50_p75"] = [b[len(b) // 4], b[len(b) // 2], b[3 * len(b) // 4]]
        base = out["map"]["apiserver_cpu_ms_per_write"]
        for r in out.values():
            r["cpu_over_map"] = r["apiserver_cpu_ms_per_write"] / base if base else None
        log("write cost: " + ", ".join(f"{k} {r['apiserver_cpu_ms_per_write']:.1f} ms" for k, r in out.items()))
        return {"members": len(sample), "rounds": rounds, "installed_conditions_list_type": conds_type, "shapes": out}

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
        later = {}  # namespace -> its chunks, applied in parallel (--parallel)
        later_wall = None
        for ns in namespaces[1:]:
            if a.parallel > 1:
                later[ns] = chunks[ns]
            else:
                plan += [(ns, c) for c in chunks[ns]]

        m_before = self.scrape()
        api_before = scrape_apiserver(self.api)
        self.mark_cpu("apply_start")
        t_apply0 = time.monotonic()
        spent = {}  # ns -> seconds in kubectl
        retries = 0
        done = 0
        last_log = time.monotonic()
        # With --parallel P the namespaces after the first are applied P at a
        # time (as several GitOps applies would), each its chunks in order.
        sequential = plan
        for n_chunk, (ns, (path, count)) in enumerate(sequential):
            self.alive()
            if a.fault == "kill" and n_chunk == len(sequential) // 2 and n_chunk > 0:
                self.inject("apply")
            seconds, r = self.apply(path, count)
            retries += r
            spent[ns] = spent.get(ns, 0.0) + seconds
            done += count
            if time.monotonic() - last_log > 15:
                log(f"applied {done}/{total_objects} objects ({time.monotonic() - t_apply0:.0f} s)")
                last_log = time.monotonic()
        if later:
            t_later0 = time.monotonic()
            results = self.apply_parallel(later, a.parallel)
            for ns, (seconds, r, count) in results.items():
                retries += r
                spent[ns] = seconds
            log(f"applied {sum(c for _, _, c in results.values())} objects of {len(later)} namespaces, {a.parallel} at a time, in {time.monotonic() - t_later0:.1f} s")
            later_wall = time.monotonic() - t_later0
        t_apply_end = time.monotonic()
        self.mark_cpu("apply_end")
        m_after_apply = self.scrape()
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
            # In parallel the namespaces' kubectl times overlap: the wall time counts.
            secs = later_wall if later_wall is not None else sum(spent[n] for n in rest)
            ap["other_namespaces"] = {
                "namespaces": len(rest),
                "objects": per_ns * len(rest),
                "parallel": max(1, a.parallel),
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
        m_converged = self.scrape()
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
        if a.fault == "failover":
            self.start_standby()
        ns = first
        wide_keys = [("Member", ns, f"m-{i:05d}") for i in range(wide_members)]
        group_key = ("Group", ns, WIDE)
        gen_before = self.watcher.obj(group_key)["gen"]
        with open(os.path.join(work, "edit.yaml"), "w") as f:
            json.dump(wide_group(ns, "Edit"), f)
        m_edit0 = self.scrape()
        aw0 = scrape_apiserver_writes(self.api)
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

        if a.fault != "none":
            def a_third_changed():
                n = len(first_changes())
                return n >= max(1, len(wide_set) // 3), f"{n} of {len(wide_set)} members' status changed"

            self.wait("group edit", "a third of the wide group's members to change status", a_third_changed, a.edit_timeout, 0.01)
            self.inject("group edit")

        self.wait("group edit", "every member of the wide group to change status", all_changed, a.edit_timeout)
        self.wait("group edit", f"{a.quiet_seconds} s without status changes", quiet, a.edit_timeout)
        self.mark_cpu("edit_end")
        m_edit1 = self.scrape()
        aw1 = scrape_apiserver_writes(self.api)
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
        # The apiserver's view of the edit's writes, and what each weighs.
        self.result["group_edit"]["apiserver"] = apiserver_writes_delta(
            aw0, aw1, self.result["group_edit"]["status_writes"].get("Member", 0))
        listed = self.api.get(f"/apis/{GROUP_VERSION}/namespaces/{ns}/members")["items"]
        self.result["group_edit"]["member_write"] = member_write_bytes(
            [o for o in listed if o["metadata"]["name"] in wide_set])
        # After a fault: how long until the members' statuses moved again.
        for f in self.faults:
            t_fault = f.get("killed_at") or f.get("signalled_at")
            if f["phase"] == "group edit" and t_fault:
                after = [t for t in firsts.values() if t > t_fault]
                f["next_member_status_change_after_seconds"] = (min(after) - t_fault) if after else None
                f["edit_done_after_seconds"] = (max(after) - t_fault) if after else None
        log(f"group edit: {len(wide_set)} members, p99 {pct(lat, 0.99):.2f} s")

        # 4. Idle.
        log(f"idle for {a.idle_seconds} s")
        m_idle0 = self.scrape()
        self.mark_cpu("idle_start")
        t_i0 = time.monotonic()
        while time.monotonic() - t_i0 < a.idle_seconds:
            self.alive()
            time.sleep(0.5)
        t_i1 = time.monotonic()
        self.mark_cpu("idle_end")
        m_idle1 = self.scrape()
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

        # The final state: a digest of every status (equal to a run without
        # the fault's), and one Secret per key.
        digest, statuses = self.watcher.final_state()
        self.result["final_state"] = {
            "status_digest": digest,
            "objects": len(statuses),
            **self.key_secrets(([baseline_ns] if baseline_ns else []) + namespaces),
        }
        if a.fault != "none":
            self.result["faults"] = self.faults
        if a.out:
            with open(a.out + ".statuses.json", "w") as f:
                json.dump(statuses, f, sort_keys=True)

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

        # 7. Freshness of the decision service (issue 13), after the memory
        # figures so that its changes do not count in them.
        if a.freshness > 0:
            self.result["freshness"] = self.freshness(first, a.freshness)
        # 8. The control plane's floor under the group edit (last: it stops
        # the operator for its duration and leaves the statuses rewritten).
        if a.write_floor > 0:
            self.result["write_floor"] = self.write_floor(ns, [k[2] for k in wide_keys], a.write_floor)
            ed, wf = self.result["group_edit"], self.result["write_floor"]
            ed["p99_over_floor_p99"] = ed["p99_seconds"] / wf["p99_seconds"] if wf["p99_seconds"] else None
        # 9. What one status write costs the apiserver, by shape, side by side.
        if a.write_cost > 0:
            self.result["write_cost"] = self.write_cost(ns, [k[2] for k in wide_keys], a.write_cost, a.write_cost_rounds)
        self.watcher.stop()
        return self.result

    def key_secrets(self, namespaces):
        """How many Secrets each ApiKey owns (one each is right)."""
        per_key = {}
        for ns in namespaces:
            for i in range(self.a.apikeys):
                per_key[(ns, f"k-{i:04d}")] = 0
            for sec in self.api.get(f"/api/v1/namespaces/{ns}/secrets")["items"]:
                for ref in sec["metadata"].get("ownerReferences") or []:
                    if ref.get("kind") == "ApiKey":
                        key = (ns, ref["name"])
                        per_key[key] = per_key.get(key, 0) + 1
        counts = list(per_key.values())
        return {
            "keys": len(counts),
            "keys_with_one_secret": counts.count(1),
            "keys_without_secret": counts.count(0),
            "keys_with_more_secrets": sum(1 for c in counts if c > 1),
        }

    def until(self, what, cond, timeout=30.0):
        """Asks cond() every 2 ms until it holds; returns when it first did."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise StepTimeout(f"step 'freshness' timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.002)
        return time.monotonic()

    def freshness(self, ns, trials):
        """From a write through the apiserver to the first refused decision:
        one key disabled per trial (through NGINX's endpoint), and one member
        removed from the only group that grants the question (through
        /v1/check). Each latency is taken from before the PATCH was sent
        (admission included: an upper bound) and from its response (the write
        committed: a lower bound; the refusal may come first, then 0)."""
        a = self.a
        dec = Decisions(a.decision_nginx_port, a.decision_port, a.tls_dir)
        base = f"/apis/{GROUP_VERSION}/namespaces/{ns}"
        keys = []
        for i in range(min(trials, a.apikeys)):
            name = f"k-{i:04d}"
            secret = self.api.get(f"/api/v1/namespaces/{ns}/secrets/{name}-apikey")
            value = base64.b64decode(secret["data"]["apiKey"]).decode()
            if dec.key_status(ns, value) != 200:
                raise RuntimeError(f"key {name} is not live before its trial")
            t0 = time.monotonic()
            self.api.patch(f"{base}/apikeys/{name}", {"spec": {"enabled": False}})
            t1 = time.monotonic()
            t2 = self.until(f"key {name} refused", lambda: dec.key_status(ns, value) == 401)
            keys.append((t2 - t0, max(0.0, t2 - t1)))
            time.sleep(0.05)
        log(f"freshness: {len(keys)} keys disabled, p99 {pct([k[0] for k in keys], 0.99):.3f} s")

        members = []
        for i in range(a.members - 1, -1, -1):
            if len(members) >= trials:
                break
            name = f"m-{i:05d}"
            groups = self.api.get(f"{base}/members/{name}")["spec"]["groups"]
            # A question only one of the member's groups answers yes.
            question = None
            for g in groups:
                for src in edit_sources(g):
                    answer = dec.check(ns, name, "edit", f"Content/Sources/{src}")
                    if answer["allowed"] and answer.get("grantedBy") == [g]:
                        question = (g, f"Content/Sources/{src}")
                        break
                if question:
                    break
            if question is None:
                continue
            g, target = question
            t0 = time.monotonic()
            self.api.patch(f"{base}/members/{name}", {"spec": {"groups": [x for x in groups if x != g]}})
            t1 = time.monotonic()
            t2 = self.until(f"member {name} refused edit {target}", lambda: not dec.check(ns, name, "edit", target)["allowed"])
            members.append((t2 - t0, max(0.0, t2 - t1)))
            time.sleep(0.05)
        if not members:
            raise RuntimeError("freshness: no member has a question only one of its groups answers")
        log(f"freshness: {len(members)} members removed from a group, p99 {pct([m[0] for m in members], 0.99):.3f} s")
        return {
            "namespace": ns,
            "key_disabled": latency_summary(keys) if keys else None,
            "member_removed_from_group": latency_summary(members),
        }


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
        ("apply, all (kubectl)", f"{ap['objects']} objects in {ap['seconds']:.1f} s ({ap['objects'] / ap['seconds']:.0f} objects/s), {ap['retries']} retries"),
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
    for f in r.get("faults", []):
        rows.append(("fault", ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in f.items() if k != "killed_at" and k != "signalled_at")))
    fs = r.get("final_state")
    if fs:
        rows.append(("final state", f"status digest {fs['status_digest'][:16]} over {fs['objects']} objects; {fs['keys_with_one_secret']} of {fs['keys']} keys with one Secret, {fs['keys_without_secret']} without, {fs['keys_with_more_secrets']} with more"))
    wf = r.get("write_floor")
    if wf:
        rows.append(("write floor (operator stopped)", f"the same change to the same {wf['writes']} Members (merge patch of status.privileges, {wf['status_bytes_mean'] / 1024:.1f} KiB each) by {wf['concurrency']} connections: "
                     f"{wf['seconds']:.2f} s, p50 {fmt_s(wf['p50_seconds'])}, p99 {fmt_s(wf['p99_seconds'])} ({wf['writes_per_second']:.0f} writes/s, {wf['control_plane_cpu_ms_per_write'] or 0:.1f} ms control-plane CPU each)"))
    mw = ed.get("member_write")
    if mw:
        rows.append(("Member status write, bytes", f"{mw['sent_bytes_mean']:.0f} B sent (server-side apply body), {mw['stored_bytes_mean']:.0f} B stored, of which managedFields {mw['managed_fields_bytes_mean']:.0f} B"
                     f" (status: conditions {mw['status_fields']['conditions'] or 0:.0f} B, privileges {mw['status_fields']['privileges'] or 0:.0f} B, groups {mw['status_fields']['groups'] or 0:.0f} B; {mw['members']} members)"))
    ea = ed.get("apiserver")
    if ea:
        rows.append(("group edit, apiserver's view", f"{ea['member_status_patches']:.0f} Member status PATCHes, mean {fmt_s(ea['mean_seconds'])}, p99 {fmt_s(ea['p99_seconds'])}; "
                     f"{ea['events_created']:.0f} Events created; apiserver CPU {ea['apiserver_cpu_seconds']:.1f} s = {ea['apiserver_cpu_ms_per_member_write'] or 0:.1f} ms per Member write"))
    if wf and wf.get("apiserver"):
        fa = wf["apiserver"]
        rows.append(("write floor, apiserver's view", f"{fa['member_status_patches']:.0f} PATCHes, mean {fmt_s(fa['mean_seconds'])}, p99 {fmt_s(fa['p99_seconds'])}; apiserver CPU {fa['apiserver_cpu_ms_per_member_write'] or 0:.1f} ms per write"))
    if ed.get("p99_over_floor_p99"):
        rows.append(("group edit p99 / write floor p99", f"{ed['p99_over_floor_p99']:.2f}x (goal <= 1.2x)"))
    wc = r.get("write_cost")
    if wc:
        for k, c in wc["shapes"].items():
            q = c["block_cpu_ms_per_write_p25_p50_p75"]
            rows.append((f"write cost: {k}", f"{c['apiserver_cpu_ms_per_write']:.2f} ms apiserver CPU per write ({c['cpu_over_map']:.2f}x map; {c['writes']} writes, blocks of 10: p25/p50/p75 "
                         + f"{q[0]:.1f}/{q[1]:.1f}/{q[2]:.1f}), wall {c['wall_ms_per_write']:.1f} ms, sent {c['sent_bytes_mean']:.0f} B, stored {c['stored_bytes_last']} B"
                         + f", managedFields {c['managed_fields_bytes_last']} B: {c['shape']}"))
    fr = r.get("freshness")
    if fr:
        for label, k in (("key disabled", "key_disabled"), ("member removed from a group", "member_removed_from_group")):
            f = fr.get(k)
            if f:
                q, s = f["from_request"], f["from_response"]
                rows.append((f"freshness: {label} -> refused", f"p50 {fmt_s(q['p50_seconds'])}, p99 {fmt_s(q['p99_seconds'])}, max {fmt_s(q['max_seconds'])} from the PATCH sent"
                             + f" (from its response: p50 {fmt_s(s['p50_seconds'])}, p99 {fmt_s(s['p99_seconds'])}), {f['trials']} trials"))
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
    r.add_argument("--freshness", type=int, default=0, help="trials per kind of change (0: skip)")
    r.add_argument("--parallel", type=int, default=1, help="namespaces after the first applied this many at a time")
    r.add_argument("--write-floor", type=int, default=0, help="connections for the write-floor step (0: skip)")
    r.add_argument("--write-cost", type=int, default=0, help="writes per shape and round for the write-cost step (0: skip)")
    r.add_argument("--write-cost-rounds", type=int, default=4, help="times each shape writes the whole sample")
    r.add_argument("--fault", choices=["none", "kill", "failover", "apiserver-restart"], default="none")
    r.add_argument("--operator-json", default="")
    r.add_argument("--decision-port", type=int, default=0)
    r.add_argument("--decision-nginx-port", type=int, default=0)
    r.add_argument("--tls-dir", default="")
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
