#!/usr/bin/env python3
"""Measures breakerd at scale, blackbox_exporter beside it in the same run (issue 15's table).

1. 200 and 1,000 HTTP services, each checked every second against a local target, once with a
   kept-alive connection (`reuse_connections = true`) and once with a fresh connection per check
   (the default): checks per second, missed ticks, CPU per check (from /proc, user + system).
2. blackbox_exporter probing the same target at the same rates (200/s and 1,000/s, paced):
   CPU per probe, and the ratio.
3. TLS: 200 HTTPS services every second against a local TLS target (its own private CA, trusted
   through `ca_file`), fresh connections (a full handshake, rustls with ring, each check) and
   kept-alive (no handshake), beside blackbox_exporter probing the same target at the same rate.
4. 10,000 HTTP services every second (kept-alive: fresh connections at 10,000/s would exhaust the
   loopback's ephemeral ports within seconds): checks per second, missed ticks, cores, peak
   resident memory; GET /metrics (median of 10, while checks run: until the answer starts,
   which is the daemon's rendering, and until its last byte); a reload that changes one service
   (POST /-/reload, median of 3); start until `/-/ready` answers (median of 3). The /metrics
   time is also measured by the bench `cargo bench --bench exposition` (no load).
Each run says on stderr what it is doing; the tables go to stdout.

Usage: python3 scripts/scale_test.py [--window SECONDS] [--parts rates,tls,big]
(builds with `cargo build --release`)
Only loopback addresses are used. The machine is noisy: figures are medians where repeated.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_test as lt  # noqa: E402  (shared helpers: ports, /proc readers, the target)

TOKEN = "scale-test-admin-token"


def write_config(path, count, target_port, reuse, timeout="5s", ca_file=None):
    scheme = "https" if ca_file else "http"
    with open(path, "w") as f:
        f.write(f'[server]\nadmin_token = "{TOKEN}"\n')
        for i in range(count):
            f.write(f'[services.svc-{i:05}]\nkind = "http"\nurl = "{scheme}://127.0.0.1:{target_port}/health"\n'
                    f'every = "1s"\nfailure_threshold = 5\ntimeout = "{timeout}"\n'
                    + ("reuse_connections = true\n" if reuse else "")
                    + (f'ca_file = "{ca_file}"\n' if ca_file else ""))


def start(config, scratch):
    port = lt.free_port()
    started = time.monotonic()
    daemon = subprocess.Popen([lt.BIN, "run", "--config", config, "--listen", f"127.0.0.1:{port}"],
                              env=lt.clean_env(), cwd=scratch, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    # Ready is serving; the first /metrics would add a scrape's rendering (measured apart).
    lt.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60)
    return daemon, port, (time.monotonic() - started) * 1000


def checks_so_far(daemon, port):
    """Checks, failed checks and missed ticks counted by the daemon, with when it was asked and
    its CPU then (the daemon reads its counters as it starts answering; parsing a large answer
    here takes a while and must count neither as time nor as CPU)."""
    asked, cpu = time.monotonic(), lt.cpu_split(daemon.pid)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        text = response.read().decode()
    checks = failed = missed = 0.0
    for line in text.splitlines():
        if line.startswith("breakerd_calls_total{"):
            count = float(line.rsplit(" ", 1)[1])
            checks += count
            if 'outcome="success"' not in line:
                failed += count
        elif line.startswith("breakerd_probe_missed_ticks_total{"):
            missed += float(line.rsplit(" ", 1)[1])
    return checks, failed, missed, asked, cpu


def measure(daemon, port, window):
    time.sleep(8)  # warm-up: first checks spread over 1 s, connections opened
    checks0, _, missed0, t0, cpu0 = checks_so_far(daemon, port)
    peak = 0.0
    while time.monotonic() - t0 < window:
        time.sleep(1)
        peak = max(peak, lt.rss_mib(daemon.pid))
    checks1, failed, missed1, t1, cpu1 = checks_so_far(daemon, port)
    elapsed = t1 - t0
    checks = checks1 - checks0
    total = sum(cpu1) - sum(cpu0)
    return {"checks_per_second": checks / elapsed, "missed": missed1 - missed0,
            "cores": total / elapsed, "us_per_check": total / checks * 1e6,
            "kernel_us_per_check": (cpu1[1] - cpu0[1]) / checks * 1e6, "peak_rss_mib": peak,
            "failed": failed, "checks": checks1}


def bare_client(target_port, fresh, exchanges=3000):
    """The kernel's share of the same exchange made by the barest client (blocking sockets, one
    GET /health and its answer, a connection per exchange or one kept): system CPU µs each. The
    loopback charges the sender for delivering to the target, so this is a floor under any
    client's cost on this machine."""
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{target_port}\r\n\r\n".encode()
    kept = None
    before = os.times()
    for _ in range(exchanges):
        connection = kept or socket.create_connection(("127.0.0.1", target_port))
        connection.sendall(request)
        answer = b""
        while b'{"status":"ok"}' not in answer:
            answer += connection.recv(4096)
        if fresh:
            connection.close()
        else:
            kept = connection
    if kept:
        kept.close()
    return (os.times().system - before.system) / exchanges * 1e6


def services_run(count, target_port, reuse, window, ca_file=None):
    scheme = "HTTPS" if ca_file else "HTTP"
    connections = "kept-alive" if reuse else "fresh connections"
    print(f"{count:,} {scheme} services every second, {connections}…", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        config = os.path.join(scratch, "scale.toml")
        write_config(config, count, target_port, reuse, ca_file=ca_file)
        daemon, port, _ = start(config, scratch)
        try:
            result = measure(daemon, port, window)
            if result["failed"] > result["checks"] / 100:
                raise SystemExit(f"{result['failed']:.0f} of {result['checks']:.0f} checks failed "
                                 "(a wrong target or certificate?)")
            return result
        finally:
            daemon.terminate()
            daemon.wait()


def metrics_ms(port):
    """GET /metrics: milliseconds until the answer's headers (the daemon renders the whole text
    before answering) and until its last byte, and its size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    headers_at = time.monotonic()
    size = len(response.read())
    done = time.monotonic()
    connection.close()
    return (headers_at - started) * 1000, (done - started) * 1000, size


def fetch_ms(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return (time.monotonic() - started) * 1000, body


def ten_thousand(target_port, window):
    print("10,000 HTTP services every second: three starts, the load, /metrics, reloads…",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        config = os.path.join(scratch, "scale.toml")
        write_config(config, 10_000, target_port, True)
        starts = []
        for _ in range(2):
            daemon, port, ms = start(config, scratch)
            starts.append(ms)
            daemon.terminate()
            daemon.wait()
        daemon, port, ms = start(config, scratch)
        starts.append(ms)
        try:
            load = measure(daemon, port, window)
            metrics = [metrics_ms(port) for _ in range(10)]
            reloads = []
            for attempt in range(3):
                write_config(config, 10_000, target_port, True)
                with open(config) as f:
                    text = f.read()
                # Change one service: its timeout.
                marker = '[services.svc-00042]'
                head, tail = text.split(marker, 1)
                tail = tail.replace('timeout = "5s"', f'timeout = "{6 + attempt}s"', 1)
                with open(config, "w") as f:
                    f.write(head + marker + tail)
                ms, body = fetch_ms(f"http://127.0.0.1:{port}/-/reload", data=b"",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
                changes = json.loads(body).get("changes", [])
                reloads.append((ms, changes))
            load.update({"start_ms": statistics.median(starts),
                         "metrics_ms": statistics.median(m[0] for m in metrics),
                         "metrics_total_ms": statistics.median(m[1] for m in metrics),
                         "metrics_mb": metrics[0][2] / 1e6,
                         "reload_ms": statistics.median(ms for ms, _ in reloads),
                         "reload_changes": reloads[-1][1]})
            return load
        finally:
            daemon.terminate()
            daemon.wait()


def blackbox_paced(target_port, rate, seconds, ca_file=None):
    """blackbox_exporter probing the target `rate` times a second for `seconds`: CPU per probe
    (HTTPS when `ca_file` is given)."""
    print(f"blackbox_exporter at {rate:,}/s…", file=sys.stderr, flush=True)
    with lt.blackbox_exporter(ca_file) as running:
        if running is None:
            return None
        process, port = running
        url = lt.probe_url(port, target_port, "https" if ca_file else "http")
        with urllib.request.urlopen(url, timeout=10) as response:
            if "probe_success 1" not in response.read().decode():
                raise SystemExit(f"blackbox_exporter's probe of {url} fails")
        done = [0]
        lock = threading.Lock()
        workers = max(4, rate // 50)
        per_worker = rate / workers
        deadline = time.monotonic() + seconds

        def worker(offset):
            next_at = time.monotonic() + offset / rate
            while next_at < deadline:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with urllib.request.urlopen(url, timeout=10) as response:
                    response.read()
                with lock:
                    done[0] += 1
                next_at += 1 / per_worker

        for _ in range(100):  # warm-up
            urllib.request.urlopen(url, timeout=10).read()
        cpu0, t0 = lt.cpu_split(process.pid), time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu1, t1 = lt.cpu_split(process.pid), time.monotonic()
        return {"probes_per_second": done[0] / (t1 - t0), "us_per_probe": (sum(cpu1) - sum(cpu0)) / done[0] * 1e6,
                "kernel_us_per_probe": (cpu1[1] - cpu0[1]) / done[0] * 1e6}


def cells(kept, fresh, bb):
    """One table row's cells after the first: breakerd kept-alive, breakerd fresh,
    blackbox_exporter (or that it is not installed), and the ratio of the fresh figures."""
    def run(result):
        return (f"{result['us_per_check']:.0f} µs, {result['kernel_us_per_check']:.0f} in the kernel "
                f"({result['checks_per_second']:.0f}/s, {result['missed']:.0f} missed)")
    if bb:
        bb_text = (f"{bb['us_per_probe']:.0f} µs, {bb['kernel_us_per_probe']:.0f} in the kernel "
                   f"({bb['probes_per_second']:.0f}/s)")
        ratio = f"{bb['us_per_probe'] / fresh['us_per_check']:.1f}x"
    else:
        bb_text, ratio = "not installed", "–"
    return f"{run(kept)} | {run(fresh)} | {bb_text} | {ratio} |"


def tls(window, count=200):
    """The TLS table: a handshake per check (fresh) and none (kept-alive), blackbox beside."""
    with tempfile.TemporaryDirectory() as scratch, lt.load_target(tls_dir=scratch) as port:
        ca_file = os.path.join(scratch, "ca.pem")
        kept = services_run(count, port, True, window, ca_file)
        fresh = services_run(count, port, False, window, ca_file)
        bb = blackbox_paced(port, count, window, ca_file)
    print(f"\n| HTTPS, {count} checks/s | breakerd, kept-alive (no handshake) | breakerd, fresh (a handshake each) "
          f"| blackbox_exporter (a handshake each) | ratio (fresh) |")
    print("|---|---|---|---|---|")
    print(f"| CPU per check | {cells(kept, fresh, bb)}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=20, help="measured seconds of each run")
    parser.add_argument("--parts", default="rates,tls,big",
                        help="which runs, comma-separated: rates (200 and 1,000/s), tls, big (10,000 services)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    subprocess.run(["cargo", "build", "--release", "--bin", "breakerd", "--example", "load_target"],
                   cwd=lt.ROOT, check=True)
    with lt.load_target() as target_port:
        if "rates" in parts:
            print("| rate | breakerd, kept-alive | breakerd, fresh connection | blackbox_exporter | ratio (fresh) |")
            print("|---|---|---|---|---|")
            for count in (200, 1000):
                kept = services_run(count, target_port, True, args.window)
                fresh = services_run(count, target_port, False, args.window)
                bb = blackbox_paced(target_port, count, args.window)
                print(f"| {count:,} checks/s | {cells(kept, fresh, bb)}", flush=True)
            print(f"\nThe kernel's part of the same exchange for the barest client (Python, blocking sockets): "
                  f"{bare_client(target_port, False):.0f} µs kept-alive, {bare_client(target_port, True):.0f} µs "
                  f"with a fresh connection (system CPU per exchange; loopback bills the sender for the delivery).")
        if "tls" in parts:
            tls(args.window)
        if "big" not in parts:
            return 0
        big = ten_thousand(target_port, args.window)
        print(f"\n10,000 HTTP services every 1 s (kept-alive): {big['checks_per_second']:.0f} checks/s, "
              f"{big['missed']:.0f} missed ticks, {big['cores']:.2f} cores, {big['us_per_check']:.0f} µs per check, "
              f"peak resident memory {big['peak_rss_mib']:.0f} MiB; GET /metrics rendered in {big['metrics_ms']:.1f} ms "
              f"({big['metrics_mb']:.0f} MB, {big['metrics_total_ms']:.0f} ms to its last byte in Python); "
              f"reload changing one service {big['reload_ms']:.0f} ms ({'; '.join(big['reload_changes'])}); "
              f"start to ready {big['start_ms']:.0f} ms (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
