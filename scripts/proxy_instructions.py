#!/usr/bin/env python3
"""Counts the instructions breakerd's proxy spends per request, with callgrind: a repeatable
figure (the same binary, inputs and environment give the same count, whatever else the
machine is doing), for an A/B of a change where wrk's timings are too noisy to tell.

breakerd runs under `valgrind --tool=callgrind` (one async worker thread) in front of the local
upstream (examples/load_target.rs); a client sends N keep-alive GETs through the proxy. The
count of a run with no request is subtracted, so start-up and shutdown cancel out.
With --baseline BIN, another breakerd binary (built from an earlier commit, e.g. in a git
worktree) is counted the same way, and the ratio printed. Where nginx is installed (Debian
package nginx-light), nginx as a keep-alive reverse proxy to the same upstream (one worker, no
master process) is counted the same way too: the peer's cost per request beside ours.

Needs valgrind. Usage: python3 scripts/proxy_instructions.py [--requests 2000] [--baseline PATH]
Only loopback addresses are used.
"""
import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_test import BIN, ROOT, TARGET, free_port, wait_http  # noqa: E402
import proxy_bench  # noqa: E402


def instructions(binary, requests, work):
    """Instructions callgrind counts in `binary` serving `requests` proxied GETs."""
    target_port, api_port, proxy_port = free_port(), free_port(), free_port()
    config = os.path.join(work, f"run-{requests}.toml")
    with open(config, "w") as f:
        f.write(
            f'[server]\nlisten = "127.0.0.1:{api_port}"\nproxy_listen = "127.0.0.1:{proxy_port}"\n'
            f'[alerts]\nstate_dir = "{work}/state-{requests}-{os.path.basename(binary)}"\n'
            f'[services.app]\nkind = "http"\nurl = "http://127.0.0.1:{target_port}/health"\n'
            f'upstream = "http://127.0.0.1:{target_port}"\nevery = "1h"\n'
        )
    out = os.path.join(work, "callgrind.out")
    target = subprocess.Popen([TARGET, f"127.0.0.1:{target_port}"])
    daemon = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "run",
         "--config", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "error", "TOKIO_WORKER_THREADS": "1"},
    )
    try:
        wait_http(f"http://127.0.0.1:{target_port}/health")
        wait_http(f"http://127.0.0.1:{api_port}/-/ready", timeout=120)
        send_gets(proxy_port, requests)
    finally:
        daemon.send_signal(2)
        daemon.wait(timeout=120)
        target.terminate()
        target.wait(timeout=30)
    with open(out) as f:
        return int(re.search(r"^summary: (\d+)", f.read(), re.MULTILINE).group(1))


def per_request(binary, requests, work):
    return (instructions(binary, requests, work) - instructions(binary, 0, work)) / requests


# proxy_bench.py's nginx, with one worker and no master process (callgrind follows one).
NGINX_CONF = (proxy_bench.NGINX_CONF
              .replace("worker_processes 2;", "worker_processes 1;\nmaster_process off;"))


def send_gets(port, requests):
    """`requests` keep-alive GETs of /app/health through the proxy on `port`, each answered 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(requests):
        connection.request("GET", "/app/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status


def nginx_instructions(nginx, requests, work):
    """Instructions callgrind counts in nginx serving `requests` proxied GETs (after one the
    readiness poll sends, as breakerd's count has its check)."""
    target_port, port = free_port(), free_port()
    conf = os.path.join(work, f"nginx-{requests}.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, target=target_port, port=port))
    out = os.path.join(work, "nginx-callgrind.out")
    target = subprocess.Popen([TARGET, f"127.0.0.1:{target_port}"])
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", nginx, "-c", conf,
         "-p", work],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{target_port}/health")
        wait_http(f"http://127.0.0.1:{port}/app/health", timeout=120)
        send_gets(port, requests)
    finally:
        server.terminate()
        server.wait(timeout=120)
        target.terminate()
        target.wait(timeout=30)
    with open(out) as f:
        return int(re.search(r"^summary: (\d+)", f.read(), re.MULTILINE).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline", help="another breakerd binary to count the same way")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "breakerd", "--example", "load_target"],
                   cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="breakerd-instructions-")
    ours = per_request(BIN, args.requests, work)
    print(f"this breakerd: {ours:,.0f} instructions per proxied request")
    if args.baseline:
        base = per_request(args.baseline, args.requests, work)
        print(f"baseline:      {base:,.0f} instructions per proxied request ({ours / base:.3f} of it)")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx:
        peer = (nginx_instructions(nginx, args.requests, work)
                - nginx_instructions(nginx, 0, work)) / args.requests
        print(f"nginx:         {peer:,.0f} instructions per proxied request "
              f"(breakerd {ours / peer:.3f} of it)")


if __name__ == "__main__":
    main()
