#!/usr/bin/env python3
"""Measures the sidecar proxy the way issue 11 states its targets, against the same local
upstream (examples/load_target.rs) called directly and through the proxy, in one run:

1. Added latency: one keep-alive connection, one request at a time (wrk -c1), direct and through
   the proxy; p50 and p99 of each, and the difference.
2. Throughput: 32 keep-alive connections (wrk -c32), direct and through the proxy; the ratio.
3. Rejection while open: the breaker opened through the outcome API, then wrk -c1 on the proxy
   (every answer is the 503 JSON, the upstream untouched); p50 and p99, round trip included.
4. The same latencies and rejections with wrk, the upstream, breakerd and nginx all pinned to
   one CPU (taskset): on this VM a wakeup across cores costs tens of microseconds, which the
   default placement adds to every hop at random; pinned, what is left is the proxies' own work.
5. Memory while streaming: 100 MB downloaded and 100 MB uploaded through the proxy; breakerd's
   resident memory before, at its peak (sampled every 20 ms), and after.

The peer: where nginx is installed (Debian package nginx-light), nginx as a reverse proxy with
keep-alive to the same upstream (2 workers, as breakerd has 2 runtime threads) is measured in
the same runs, so the figures can be read against the cost of any proxy on this machine.

Each wrk run is repeated --rounds times, direct and proxies alternating; figures are medians.
With --baseline BIN (a breakerd binary built from an earlier commit, e.g. in a git worktree),
that binary's proxy runs beside this one on the same upstream and is measured in the same
alternation, for an A/B of a change in one run.
Needs wrk (Debian package wrk). Usage: python3 scripts/proxy_bench.py [--seconds 5] [--rounds 3]
[--baseline PATH]. Only loopback addresses are used.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_test import BIN, ROOT, TARGET, free_port, rss_mib, wait_http  # noqa: E402

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
STREAMED = 100 * 1000 * 1000


def wrk(url, connections, seconds, cpu=None):
    """Requests per second, latency p50 and p99 in milliseconds, non-2xx answers, requests."""
    pinned = ["taskset", "-c", cpu] if cpu else []
    out = subprocess.run(
        pinned + ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for percent in ("50", "99"):
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        latency[percent] = float(value) * UNITS[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, latency["50"], latency["99"], int(non_2xx.group(1)) if non_2xx else 0, total


def median_runs(urls, connections, seconds, rounds, cpu=None):
    """Alternates the urls `rounds` times; the median of each figure per url."""
    runs = {url: [] for url in urls}
    for _ in range(rounds):
        for url in urls:
            runs[url].append(wrk(url, connections, seconds, cpu))
    return {
        url: tuple(statistics.median(run[i] for run in results) for i in range(5))
        for url, results in runs.items()
    }


def pin(processes, cpus):
    """Moves every thread of `processes` and of their children to `cpus` (a taskset list)."""
    pids = []
    for process in processes:
        pids.append(process.pid)
        for task in os.listdir(f"/proc/{process.pid}/task"):
            with open(f"/proc/{process.pid}/task/{task}/children") as f:
                pids.extend(int(child) for child in f.read().split())
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)],
                       stdout=subprocess.DEVNULL, check=True)


def peak_rss_during(pid, action):
    """Runs `action`, sampling `pid`'s resident memory; (before, peak, after) in MiB."""
    before = rss_mib(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return before, peak[0], rss_mib(pid)


def download(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)
    response = connection.getresponse()
    received = 0
    while chunk := response.read(256 * 1024):
        received += len(chunk)
    assert response.status == 200 and received == STREAMED, (response.status, received)


def upload(port, path):
    def chunks():
        block = b"y" * 1_000_000
        for _ in range(STREAMED // len(block)):
            yield block

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=chunks(), headers={"Content-Length": str(STREAMED)})
    answer = json.loads(connection.getresponse().read())
    assert answer["bytes"] == STREAMED, answer


NGINX_CONF = """worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log crit;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fcgi;
  uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  upstream up {{ server 127.0.0.1:{target}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /app/ {{ proxy_pass http://up/; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"""


def start_nginx(work, target_port):
    """nginx proxying /app/ to the upstream, or None when nginx is not installed."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        return None, None
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, target=target_port, port=port))
    process = subprocess.Popen([nginx, "-c", conf, "-p", work],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/app/health")
    return process, f"http://127.0.0.1:{port}/app/health"


def report_failures(api_port, service, token, count):
    body = json.dumps([{"outcome": "failure", "durationMs": 5}] * count)
    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=5)
    connection.request(
        "POST", f"/api/v1/circuit-breakers/{service}/outcomes", body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    answer = json.loads(connection.getresponse().read())
    assert answer["state"] == "OPEN", answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per figure (median)")
    parser.add_argument("--baseline", help="another breakerd binary to measure beside this one (A/B)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk)")
    subprocess.run(["cargo", "build", "--release", "--bin", "breakerd", "--example", "load_target"],
                   cwd=ROOT, check=True)
    target_port, api_port, proxy_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{target_port}"
    work = tempfile.mkdtemp(prefix="breakerd-proxy-bench-")
    config = os.path.join(work, "bench.toml")
    with open(config, "w") as f:
        f.write(
            f'[server]\nlisten = "127.0.0.1:{api_port}"\nproxy_listen = "127.0.0.1:{proxy_port}"\n'
            f'report_token = "bench-token-0123456789"\n'
            f'[alerts]\nstate_dir = "{work}/state"\n'
            f'[services.app]\nkind = "http"\nurl = "{upstream}/health"\nupstream = "{upstream}"\n'
            f'every = "1h"\ntimeout = "60s"\n'
            f'[services.down]\nkind = "http"\nurl = "{upstream}/health"\nupstream = "{upstream}"\n'
            f'every = "1h"\nfailure_threshold = 3\nreset_timeout = "1h"\n'
        )
    target = subprocess.Popen([TARGET, f"127.0.0.1:{target_port}"])
    daemon = subprocess.Popen([BIN, "run", "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "RUST_LOG": "warn"})
    baseline, base_proxy = None, None
    if args.baseline:
        base_api, base_proxy_port = free_port(), free_port()
        base_config = os.path.join(work, "baseline.toml")
        with open(config) as f, open(base_config, "w") as out:
            out.write(f.read()
                      .replace(f"127.0.0.1:{api_port}", f"127.0.0.1:{base_api}")
                      .replace(f"127.0.0.1:{proxy_port}", f"127.0.0.1:{base_proxy_port}")
                      .replace(f"{work}/state", f"{work}/baseline-state"))
        baseline = subprocess.Popen([args.baseline, "run", "--config", base_config],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "RUST_LOG": "warn"})
        base_proxy = f"http://127.0.0.1:{base_proxy_port}/app/health"
    nginx = None
    try:
        wait_http(f"{upstream}/health")
        wait_http(f"http://127.0.0.1:{api_port}/metrics")
        wait_http(f"http://127.0.0.1:{proxy_port}/app/health")
        direct, proxied = f"{upstream}/health", f"http://127.0.0.1:{proxy_port}/app/health"
        nginx, peer = start_nginx(work, target_port)
        if base_proxy:
            wait_http(base_proxy)
        urls = [direct, proxied] + ([peer] if peer else []) + ([base_proxy] if base_proxy else [])

        one = median_runs(urls, 1, args.seconds, args.rounds)
        many = median_runs(urls, 32, args.seconds, args.rounds)
        report_failures(api_port, "down", "bench-token-0123456789", 3)
        rejected = median_runs([f"http://127.0.0.1:{proxy_port}/down/health"], 1,
                               args.seconds, args.rounds)
        open_run = next(iter(rejected.values()))
        servers = [target, daemon] + ([nginx] if nginx else []) + ([baseline] if baseline else [])
        pin(servers, "0")
        one_pinned = median_runs(urls, 1, args.seconds, args.rounds, cpu="0")
        rejected_pinned = median_runs([f"http://127.0.0.1:{proxy_port}/down/health"], 1,
                                      args.seconds, args.rounds, cpu="0")
        open_pinned = next(iter(rejected_pinned.values()))
        pin(servers, f"0-{os.cpu_count() - 1}")
        down = peak_rss_during(daemon.pid, lambda: download(proxy_port, f"/app/download/{STREAMED}"))
        up = peak_rss_during(daemon.pid, lambda: upload(proxy_port, "/app/upload"))

        print(f"\nmedians of {args.rounds} runs of {args.seconds} s each (wrk -t1, keep-alive)\n")
        print("| measure | direct | through breakerd | through nginx |")
        print("|---|---|---|---|")
        peer_cell = lambda text: text if peer else "(not installed)"  # noqa: E731
        for runs, where in ((one, "one connection"), (one_pinned, "one connection, all on one CPU")):
            for label, index in (("latency p50", 1), ("latency p99", 2)):
                d, p = runs[direct][index], runs[proxied][index]
                n = runs[peer][index] if peer else 0
                print(f"| {label}, {where} | {d * 1000:.0f} µs | {p * 1000:.0f} µs (+{(p - d) * 1000:.0f}) | "
                      + peer_cell(f"{n * 1000:.0f} µs (+{(n - d) * 1000:.0f})") + " |")
        d, p = many[direct][0], many[proxied][0]
        n = many[peer][0] if peer else 0
        print(f"| requests/s, 32 connections | {d:,.0f} | {p:,.0f} ({p / d:.0%} of direct) | "
              + peer_cell(f"{n:,.0f} ({n / d:.0%} of direct)") + " |")
        print(f"| rejection while open, p50 / p99 (round trip) | | {open_run[1] * 1000:.0f} µs / "
              f"{open_run[2] * 1000:.0f} µs ({open_run[3]:,.0f} of {open_run[4]:,.0f} answers 503) | |")
        print(f"| rejection while open, all on one CPU, p50 / p99 | | {open_pinned[1] * 1000:.0f} µs / "
              f"{open_pinned[2] * 1000:.0f} µs ({open_pinned[3]:,.0f} of {open_pinned[4]:,.0f} answers 503) | |")
        print(f"| RSS streaming 100 MB down: before / peak / after | | "
              f"{down[0]:.1f} / {down[1]:.1f} / {down[2]:.1f} MiB | |")
        print(f"| RSS streaming 100 MB up: before / peak / after | | "
              f"{up[0]:.1f} / {up[1]:.1f} / {up[2]:.1f} MiB | |")
        if base_proxy:
            print(f"\nA/B against {args.baseline}, same runs:\n")
            print("| measure | this breakerd | baseline | this / baseline |")
            print("|---|---|---|---|")
            for runs, where in ((one, "one connection"), (one_pinned, "one connection, all on one CPU")):
                for label, index in (("latency p50", 1), ("latency p99", 2)):
                    p, b = runs[proxied][index], runs[base_proxy][index]
                    print(f"| {label}, {where} | {p * 1000:.0f} µs | {b * 1000:.0f} µs | {p / b:.2f} |")
            p, b = many[proxied][0], many[base_proxy][0]
            print(f"| requests/s, 32 connections | {p:,.0f} | {b:,.0f} | {p / b:.2f} |")
    finally:
        if baseline:
            baseline.terminate()
            baseline.wait(timeout=30)
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=30)
        daemon.terminate()
        target.terminate()
        daemon.wait(timeout=30)
        target.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
