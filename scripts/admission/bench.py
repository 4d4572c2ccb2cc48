#!/usr/bin/env python3
"""The side-by-side admission benchmark's measurement (run by
scripts/admission-bench.sh, which starts the control plane, the webhook and
registers both admissions): seed the same organization in three namespaces,
wait until the policy and the webhook are in force, then create Groups one at
a time over one keep-alive connection, in interleaved rounds, and report.

Not a test: figures are printed (and written as JSON with --out), never
asserted."""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scale"))
import scale  # noqa: E402  (the scale harness's generator, apiserver client and metric helpers)

CONFIGS = ["none", "cel", "webhook"]
GROUPS_PATH = "/apis/orgaccess.dev/v1alpha1/namespaces/{ns}/groups"
WEBHOOK = "apiserver_admission_webhook_admission_duration_seconds"
HANDLER = "orgaccess_webhook_decision_duration_seconds"
SERVED = "orgaccess_webhook_http_request_duration_seconds"
STEP = "apiserver_admission_controller_admission_duration_seconds"
# The apiserver's HTTP client, by host: its calls to the webhook's port.
REST = "rest_client_request_duration_seconds"


def log(msg):
    print(f"[admission-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in ns (schedstat: not the
    10 ms ticks of /proc/PID/stat); None when it is gone."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        return None
    return total


def cpu_of(pids):
    return {name: cpu_ns(pid) for name, pid in pids.items()}


def ns_of(config):
    return f"bench-{config}"


def group(ns, name, built_in=None):
    spec = {"privileges": [{"service": "Search", "domain": "ExecuteQueries", "level": "Allowed"}]}
    if built_in:
        spec["builtIn"] = built_in
    return {
        "apiVersion": scale.GROUP_VERSION,
        "kind": "Group",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


class Client:
    """Creates through one keep-alive HTTPS connection to the apiserver, as a
    GitOps controller's client would."""

    def __init__(self, api):
        self.api = api
        self.conn = api.conn()

    def create(self, ns, body, dry_run=False):
        path = GROUPS_PATH.format(ns=ns) + ("?dryRun=All" if dry_run else "")
        data = json.dumps(body)
        for attempt in range(2):
            try:
                t0 = time.perf_counter()
                self.conn.request("POST", path, body=data, headers={
                    "Authorization": f"Bearer {self.api.token}",
                    "Content-Type": "application/json",
                })
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, time.perf_counter() - t0, payload
            except (ConnectionError, OSError):
                # The apiserver closed an idle connection: reconnect once, untimed.
                self.conn.close()
                self.conn = self.api.conn()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def seed(a, kubectl):
    for config in CONFIGS:
        ns = ns_of(config)
        if a.groups == 0:
            objs = scale.generate(ns, 4, 0, 0, 0)[:1]  # the Organization alone
        else:
            objs = scale.generate(ns, a.groups, a.members, 0, 0)
        files = scale.write_chunks(objs, 250, a.work_dir, f"seed-{config}")
        t0 = time.time()
        for path, _ in files:
            # The webhook judges by its cache: a Group applied just after its
            # Organization may be refused until the cache has the
            # Organization. Server-side apply is idempotent: apply again.
            for attempt in range(20):
                out = subprocess.run(kubectl + ["apply", "--server-side", "--field-manager=orgaccess-bench",
                                                "-f", path], capture_output=True, text=True)
                if out.returncode == 0:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit(f"seeding {ns}: {out.stderr[-500:]}")
        log(f"seeded {ns}: {len(objs)} objects in {time.time() - t0:.1f} s")


def wait_in_force(client, admin_port):
    """Until the webhook is called for bench-webhook and the policy refuses in bench-cel."""
    for _ in range(300):
        client.create(ns_of("webhook"), group(ns_of("webhook"), "probe"), dry_run=True)
        decisions = scale.metric_sum(scale.scrape(admin_port), "orgaccess_webhook_decisions_total")
        if decisions > 0:
            break
        time.sleep(0.2)
    else:
        raise SystemExit("the apiserver did not call the webhook within 60 s")
    for _ in range(300):
        status, _, _ = client.create(ns_of("cel"), group(ns_of("cel"), "probe", "Administrators"), dry_run=True)
        if status in (400, 403, 422):
            break
        time.sleep(0.2)
    else:
        raise SystemExit("the policy did not refuse a built-in group within 60 s")
    status, _, _ = client.create(ns_of("none"), group(ns_of("none"), "probe", "Administrators"), dry_run=True)
    if status != 201:
        raise SystemExit(f"the policy or the webhook judges bench-none (dry-run create: {status})")


def client_ports(webhook_port):
    """The client-side port of every TCP connection to the webhook the kernel
    still knows (established, closing, TIME-WAIT), seen from either end."""
    out = subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout
    ports = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        local, peer = f[3].rsplit(":", 1), f[4].rsplit(":", 1)
        if local[1] == str(webhook_port):
            ports.add(peer[1])
        elif peer[1] == str(webhook_port):
            ports.add(local[1])
    return ports


def alpn(webhook_port):
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{webhook_port}",
                          "-alpn", "h2,http/1.1"], input="", capture_output=True, text=True, timeout=20)
    m = re.search(r"ALPN protocol: (\S+)", out.stdout)
    return m.group(1) if m else "none"


def summary(samples):
    return {
        "creates": len(samples),
        "p50_ms": scale.pct(samples, 0.50) * 1e3,
        "p99_ms": scale.pct(samples, 0.99) * 1e3,
        "mean_ms": sum(samples) / len(samples) * 1e3,
    }


def hist(before, after, metric, **match):
    def only(m):
        return {k: v for k, v in m.items() if all((lk, lv) in k[1] for lk, lv in match.items())}
    cum = scale.histogram_delta(only(before), only(after), metric)
    if not cum or cum[-1][1] <= 0:
        return None
    count = cum[-1][1]
    total = sum(v for (n, labels), v in only(after).items() if n == metric + "_sum") - \
        sum(v for (n, labels), v in only(before).items() if n == metric + "_sum")
    return {
        "calls": count,
        "p50_ms": scale.histogram_quantile(0.50, cum) * 1e3,
        "p99_ms": scale.histogram_quantile(0.99, cum) * 1e3,
        "mean_ms": total / count * 1e3,
    }


def step_mean(before, after, plugin, creates):
    def total(m, suffix):
        return sum(v for (n, labels), v in m.items() if n == STEP + suffix
                   and ("name", plugin) in labels and ("operation", "CREATE") in labels)
    n = total(after, "_count") - total(before, "_count")
    return (total(after, "_sum") - total(before, "_sum")) / creates * 1e3 if n and creates else None


def apiserver_metrics(api, keep_in=None):
    text = api.get_raw("/metrics").decode()
    if keep_in:
        with open(keep_in, "w") as f:
            f.write(text)
    keep = [l for l in text.splitlines() if l.startswith((WEBHOOK, STEP, REST))]
    return scale.parse_metrics("\n".join(keep))


def main():
    p = argparse.ArgumentParser()
    for flag in ["kubeconfig", "kubectl", "kubectl-cache", "work-dir", "binary"]:
        p.add_argument(f"--{flag}", required=True)
    for flag in ["admin-port", "webhook-port", "webhook-pid", "groups", "members", "rounds", "per-round",
                 "warmup", "idle-gap"]:
        p.add_argument(f"--{flag}", type=int, required=True)
    p.add_argument("--out")
    # NAME=PID: whose CPU is counted per configuration (the apiserver, etcd,
    # the webhook); this process is counted as "client".
    p.add_argument("--cpu-pid", action="append", default=[])
    # Where to write the apiserver's CPU profile (Go pprof), taken over the
    # first --profile-seconds of the rounds (`go tool pprof -top FILE`).
    p.add_argument("--apiserver-profile")
    p.add_argument("--profile-seconds", type=int, default=6)
    a = p.parse_args()
    pids = dict(x.split("=", 1) for x in a.cpu_pid)
    pids = {name: int(pid) for name, pid in pids.items()}
    pids["client"] = os.getpid()
    kubectl = [a.kubectl, "--kubeconfig", a.kubeconfig, "--cache-dir", a.kubectl_cache]
    api = scale.Api(a.kubeconfig)

    seed(a, kubectl)
    client = Client(api)
    wait_in_force(client, a.admin_port)
    log("the policy and the webhook are in force; warming up")
    serial = 0

    def one(config):
        nonlocal serial
        serial += 1
        ns = ns_of(config)
        status, seconds, payload = client.create(ns, group(ns, f"b-{serial:06d}"))
        if status != 201:
            raise SystemExit(f"create in {ns}: HTTP {status}: {payload[:300]!r}")
        return seconds

    for _ in range(a.warmup):
        for config in CONFIGS:
            one(config)

    samples = {c: [] for c in CONFIGS}
    # CPU ns per process spent during each configuration's rounds (what a
    # round set off after it ended, e.g. an Event published late, falls in
    # the next round: one create's worth per round).
    cpu = {c: {name: 0 for name in pids} for c in CONFIGS}
    firsts = {c: [] for c in CONFIGS}
    opened = 0
    webhook_creates = 0
    api_before, hook_before = apiserver_metrics(api), scale.scrape(a.admin_port)
    cpu_before = scale.proc_cpu(a.webhook_pid)
    profiler = None
    if a.apiserver_profile:
        def take_profile():
            data = api.get_raw(f"/debug/pprof/profile?seconds={a.profile_seconds}")
            with open(a.apiserver_profile, "wb") as f:
                f.write(data)
        profiler = threading.Thread(target=take_profile)
        profiler.start()
    t0 = time.time()
    for r in range(a.rounds):
        order = CONFIGS[r % 3:] + CONFIGS[:r % 3]
        for config in order:
            if a.idle_gap:
                time.sleep(a.idle_gap)
            ports = client_ports(a.webhook_port) if config == "webhook" else None
            cpu_start = cpu_of(pids)
            for i in range(a.per_round):
                seconds = one(config)
                samples[config].append(seconds)
                if i == 0:
                    firsts[config].append(seconds)
            for name, ns in cpu_of(pids).items():
                if ns is not None and cpu_start[name] is not None:
                    cpu[config][name] += ns - cpu_start[name]
            if config == "webhook":
                opened += len(client_ports(a.webhook_port) - ports)
                webhook_creates += a.per_round
        log(f"round {r + 1}/{a.rounds} ({', '.join(order)})")
    elapsed = time.time() - t0
    if profiler:
        profiler.join()
        log(f"the apiserver's CPU profile of the first {a.profile_seconds} s of the rounds: {a.apiserver_profile}")
    api_after = apiserver_metrics(api, os.path.join(a.work_dir, "apiserver-metrics.txt"))
    hook_after = scale.scrape(a.admin_port)
    cpu_after = scale.proc_cpu(a.webhook_pid)

    def delta(name, **match):
        return scale.metric_sum(hook_after, name, **match) - scale.metric_sum(hook_before, name, **match)

    # The webhook's own count (its builds from the transport work on; zero before).
    by_protocol = {
        p: {"handshakes": delta("orgaccess_webhook_tls_handshakes_total", protocol=p),
            "requests": delta("orgaccess_webhook_http_requests_total", protocol=p)}
        for p in ["h2", "http/1.1"]
    }
    result = {
        "size": {"groups": a.groups, "members": a.members},
        "rounds": a.rounds,
        "per_round": a.per_round,
        "binary": a.binary,
        "seconds": elapsed,
        "client": {c: summary(samples[c]) for c in CONFIGS},
        "apiserver_webhook_call": hist(api_before, api_after, WEBHOOK, name="validate.orgaccess.dev",
                                       operation="CREATE"),
        "webhook_handler": hist(hook_before, hook_after, HANDLER),
        # The webhook's server, from a request's head to its answer (the body
        # read, lanes, hand-offs and the handler): what the transport adds
        # inside the process is this minus the handler.
        "webhook_request": hist(hook_before, hook_after, SERVED),
        "apiserver_rest_client_to_webhook": hist(api_before, api_after, REST,
                                                 host=f"127.0.0.1:{a.webhook_port}", verb="POST"),
        # The apiserver's whole admission step (the plugin, not only the
        # call), summed over every create and divided by the creates of the
        # configuration it serves: the other namespaces cost it little.
        "apiserver_step_mean_ms": {
            c: step_mean(api_before, api_after, plugin, len(samples[c]))
            for c, plugin in [("webhook", "ValidatingAdmissionWebhook"), ("cel", "ValidatingAdmissionPolicy")]
        },
        "cpu_ms_per_create": {c: {name: ns / 1e6 / len(samples[c]) for name, ns in cpu[c].items()}
                              for c in CONFIGS},
        "first_create_of_a_round_ms": {c: summary(firsts[c]) for c in CONFIGS},
        "idle_gap_seconds": a.idle_gap,
        "webhook_cpu_seconds": (cpu_after - cpu_before) if cpu_after is not None and cpu_before is not None
        else None,
        "transport": {
            "webhook_creates": webhook_creates,
            "connections_opened": opened,
            "alpn_offering_h2": alpn(a.webhook_port),
            "webhook_counted": by_protocol,
            "webhook_connections_closed": {r: delta("orgaccess_webhook_connections_closed_total", reason=r)
                                           for r in ["idle", "slow_header"]},
        },
    }
    base = result["client"]["none"]
    for c in ["cel", "webhook"]:
        result["client"][c]["added_p50_ms"] = result["client"][c]["p50_ms"] - base["p50_ms"]
        result["client"][c]["added_p99_ms"] = result["client"][c]["p99_ms"] - base["p99_ms"]
        result["client"][c]["added_mean_ms"] = result["client"][c]["mean_ms"] - base["mean_ms"]
    # The targets of docs/performance.md ("Side by side"): what the webhook
    # adds beyond what the policy adds, as the client sees it, in this run.
    hook, cel = result["client"]["webhook"], result["client"]["cel"]
    result["beyond_the_policy"] = {
        "p50_ms": hook["added_p50_ms"] - cel["added_p50_ms"], "p50_target_ms": 1.0,
        "p99_ms": hook["added_p99_ms"] - cel["added_p99_ms"], "p99_target_ms": 3.0,
    }

    print(f"\nAdmission side by side: {a.groups} groups / {a.members} members in each namespace, "
          f"{a.rounds} rounds x {a.per_round} creates per configuration, interleaved ({elapsed:.0f} s)\n")
    print(f"{'configuration':<14}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}"
          f"{'+p50':>9}{'+p99':>9}{'+mean':>9}")
    for c in CONFIGS:
        s = result["client"][c]
        added = "" if c == "none" else \
            f"{s['added_p50_ms']:>9.2f}{s['added_p99_ms']:>9.2f}{s['added_mean_ms']:>9.2f}"
        print(f"{c:<14}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['mean_ms']:>9.2f}{added}")
    b = result["beyond_the_policy"]
    print("webhook beyond the policy: " + ", ".join(
        f"{q} {b[q + '_ms']:+.2f} ms (target <= {b[q + '_target_ms']:.0f} ms: "
        f"{'met' if b[q + '_ms'] <= b[q + '_target_ms'] else 'not met'})" for q in ["p50", "p99"]))
    for label, key in [("apiserver's webhook call", "apiserver_webhook_call"),
                       ("apiserver's client (POST)", "apiserver_rest_client_to_webhook"),
                       ("webhook, head to answer", "webhook_request"),
                       ("webhook handler", "webhook_handler")]:
        h = result[key]
        if h:
            print(f"{label:<26} p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, "
                  f"mean {h['mean_ms']:.2f} ms over {h['calls']:.0f}")
        else:
            print(f"{label:<26} (no samples)")
    for c, ms in result["apiserver_step_mean_ms"].items():
        if ms is not None:
            print(f"apiserver's admission step for {c}: mean {ms:.2f} ms per {c} create")
    names = list(pids)
    print("CPU per create, ms (" + ", ".join(names) + "):")
    for c in CONFIGS:
        row = result["cpu_ms_per_create"][c]
        print(f"  {c:<12}" + "".join(f"{row[n]:>9.2f}" for n in names)
              + f"   total {sum(row.values()):.2f}")
    if a.idle_gap:
        print(f"first create of each round after {a.idle_gap} s idle, p50: " + ", ".join(
            f"{c} {result['first_create_of_a_round_ms'][c]['p50_ms']:.2f} ms" for c in CONFIGS))
    t = result["transport"]
    print(f"transport: {t['connections_opened']} connections opened for {t['webhook_creates']} webhook "
          f"creates; ALPN with a client offering h2: {t['alpn_offering_h2']}")
    print("webhook's count: " + ", ".join(
        f"{p}: {v['handshakes']:.0f} handshakes, {v['requests']:.0f} requests" for p, v in t["webhook_counted"].items())
        + "; closed: " + ", ".join(f"{r} {n:.0f}" for r, n in t["webhook_connections_closed"].items()))
    if result["webhook_cpu_seconds"] is not None and webhook_creates:
        print(f"webhook CPU: {result['webhook_cpu_seconds'] * 1e3 / webhook_creates:.2f} ms per create")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
        log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
