#!/usr/bin/env python3
"""Measures the daemon the way issue 3's targets are stated, and blackbox_exporter beside it.

1. Idle on the bundled alerts.toml: time from process start to `/metrics` answering (median of
   5 starts) and resident memory after 5 s.
2. 1,000 HTTP services each checked every second against a local target: checks per second,
   missed ticks, CPU (in cores) and peak resident memory over a measured window.
3. Prometheus' blackbox_exporter (Debian package prometheus-blackbox-exporter) probing the same
   target: CPU per probe, against breakerd's CPU per check from step 2.
4. 1,000 HTTP services against a target that hangs for 20 s, then answers for 20 s, over and
   over (checks time out, breakers open, trials hang, breakers close): peak resident memory.

Usage: python3 scripts/load_test.py [--window SECONDS]   (builds with `cargo build --release`)
Only loopback addresses are used. Figures are medians where repeated; the machine is noisy.
"""
import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "breakerd")
TARGET = os.path.join(ROOT, "target", "release", "examples", "load_target")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.001)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def load_target(tls_dir=None):
    """`examples/load_target.rs` on a free loopback port, answering (with `tls_dir`: serving
    HTTPS, its CA written to `tls_dir/ca.pem`): yields the port; stopped afterwards."""
    port = free_port()
    command = [TARGET, f"127.0.0.1:{port}"] + (["--tls", tls_dir] if tls_dir else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if tls_dir:
            # It listens before it writes its CA.
            ca_file, deadline = os.path.join(tls_dir, "ca.pem"), time.monotonic() + 20
            while not os.path.exists(ca_file):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"load_target wrote no {ca_file} within 20 s")
                time.sleep(0.05)
        else:
            wait_http(f"http://127.0.0.1:{port}/health")
        yield port
    finally:
        process.terminate()
        process.wait()


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def cpu_split(pid):
    """User and system (kernel) CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def metric_sum(port, prefix):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def scratch_cwd():
    """A fresh working directory, so the daemon's default state directory stays out of the tree."""
    return tempfile.mkdtemp(prefix="breakerd-load-")


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_KEY", "_SECRET", "_TOKEN", "_PASSWORD"))}
    env["RUST_LOG"] = "warn"
    return env


def idle(starts=5):
    times = []
    rss = None
    for attempt in range(starts):
        port = free_port()
        started = time.monotonic()
        daemon = subprocess.Popen([BIN, "run", "--config", os.path.join(ROOT, "alerts.toml"),
                                   "--listen", f"127.0.0.1:{port}"], env=clean_env(), cwd=scratch_cwd(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            times.append((time.monotonic() - started) * 1000)
            if attempt == starts - 1:
                time.sleep(5)
                rss = rss_mib(daemon.pid)
        finally:
            daemon.terminate()
            daemon.wait()
    return statistics.median(times), rss


def run_services(scratch, url, breaker):
    """breakerd with 1,000 HTTP services checking `url` every second, run in `scratch`:
    the process and its port."""
    config = os.path.join(scratch, "load.toml")
    with open(config, "w") as f:
        for i in range(1000):
            f.write(f'[services.svc-{i:04}]\nkind = "http"\nurl = "{url}"\nevery = "1s"\n{breaker}')
    port = free_port()
    daemon = subprocess.Popen([BIN, "run", "--config", config, "--listen", f"127.0.0.1:{port}"],
                              env=clean_env(), cwd=scratch, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    return daemon, port


def thousand_services(target_port, window):
    with tempfile.TemporaryDirectory() as scratch:
        daemon, port = run_services(scratch, f"http://127.0.0.1:{target_port}/health",
                                    'failure_threshold = 5\ntimeout = "5s"\nreset_timeout = "30s"\n')
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            time.sleep(10)  # warm-up: first checks spread over 1 s, connection pool filled
            checks0 = metric_sum(port, 'breakerd_calls_total{')
            missed0 = metric_sum(port, "breakerd_probe_missed_ticks_total{")
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            peak = 0.0
            while time.monotonic() - t0 < window:
                time.sleep(1)
                peak = max(peak, rss_mib(daemon.pid))
            cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
            checks1 = metric_sum(port, 'breakerd_calls_total{')
            missed1 = metric_sum(port, "breakerd_probe_missed_ticks_total{")
            elapsed = t1 - t0
            checks = checks1 - checks0
            return {
                "checks_per_second": checks / elapsed,
                "missed_ticks": missed1 - missed0,
                "cpu_cores": (cpu1 - cpu0) / elapsed,
                "cpu_us_per_check": (cpu1 - cpu0) / checks * 1e6 if checks else float("nan"),
                "peak_rss_mib": peak,
            }
        finally:
            daemon.terminate()
            daemon.wait()


def hanging_services(target_port, window):
    """1,000 services whose provider keeps hanging and recovering: peak RSS and CPU."""
    with tempfile.TemporaryDirectory() as scratch:
        daemon, port = run_services(scratch, f"http://127.0.0.1:{target_port}/flap",
                                    'failure_threshold = 3\ntimeout = "2s"\nreset_timeout = "5s"\n')
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            peak = 0.0
            while time.monotonic() - t0 < window:
                time.sleep(1)
                peak = max(peak, rss_mib(daemon.pid))
            cpu1 = cpu_seconds(daemon.pid)
            transitions = metric_sum(port, "breakerd_state_transitions_total{")
            return {"peak_rss_mib": peak, "cpu_cores": (cpu1 - cpu0) / (time.monotonic() - t0),
                    "transitions": transitions}
        finally:
            daemon.terminate()
            daemon.wait()


@contextlib.contextmanager
def blackbox_exporter(ca_file=None):
    """Prometheus' blackbox_exporter (Debian package prometheus-blackbox-exporter) on a free
    loopback port with an `http_2xx` module (trusting `ca_file` for HTTPS targets): yields its
    process and port, or None when it is not installed; stopped afterwards."""
    exporter = shutil.which("prometheus-blackbox-exporter")
    if not exporter:
        yield None
        return
    with tempfile.TemporaryDirectory() as scratch:
        config = os.path.join(scratch, "blackbox.yml")
        with open(config, "w") as f:
            f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
            if ca_file:
                f.write(f"    http:\n      tls_config:\n        ca_file: {ca_file}\n")
        port = free_port()
        process = subprocess.Popen([exporter, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            yield process, port
        finally:
            process.terminate()
            process.wait()


def probe_url(exporter_port, target_port, scheme="http"):
    return (f"http://127.0.0.1:{exporter_port}/probe?module=http_2xx"
            f"&target={scheme}://127.0.0.1:{target_port}/health")


def blackbox(target_port, probes=3000, concurrency=8):
    with blackbox_exporter() as running:
        if running is None:
            return None
        process, port = running
        url = probe_url(port, target_port)
        ok = [0]
        lock = threading.Lock()

        def worker(count):
            for _ in range(count):
                with urllib.request.urlopen(url, timeout=10) as response:
                    body = response.read().decode()
                if "probe_success 1" in body:
                    with lock:
                        ok[0] += 1

        for _ in range(200):  # warm-up
            urllib.request.urlopen(url, timeout=10).read()
        cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
        threads = [threading.Thread(target=worker, args=(probes // concurrency,)) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
        done = probes // concurrency * concurrency
        return {"probes": done, "succeeded": ok[0], "probes_per_second": done / (t1 - t0),
                "cpu_us_per_probe": (cpu1 - cpu0) / done * 1e6, "rss_mib": rss_mib(process.pid)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=30, help="measured seconds of the 1,000-service run")
    parser.add_argument("--hanging-only", action="store_true",
                        help="only the 1,000 hanging-and-recovering services, for 90 s")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "breakerd", "--example", "load_target"],
                   cwd=ROOT, check=True)
    with load_target() as target_port:
        if args.hanging_only:
            hang = hanging_services(target_port, 90)
            print(f"1,000 services hanging and recovering for 90 s: peak resident memory "
                  f"{hang['peak_rss_mib']:.1f} MiB, CPU {hang['cpu_cores']:.3f} cores, "
                  f"{hang['transitions']:.0f} transitions")
            return 0
        start_ms, idle_rss = idle()
        print(f"idle, bundled alerts.toml: start to serving /metrics {start_ms:.1f} ms (median of 5), "
              f"resident memory {idle_rss:.1f} MiB")
        load = thousand_services(target_port, args.window)
        print(f"1,000 HTTP services every 1 s: {load['checks_per_second']:.0f} checks/s, "
              f"missed ticks {load['missed_ticks']:.0f}, CPU {load['cpu_cores']:.3f} cores, "
              f"{load['cpu_us_per_check']:.1f} µs CPU per check, peak resident memory {load['peak_rss_mib']:.1f} MiB")
        bb = blackbox(target_port)
        if bb is None:
            print("blackbox_exporter not installed (apt-get install prometheus-blackbox-exporter): no comparison")
        else:
            ratio = bb["cpu_us_per_probe"] / load["cpu_us_per_check"]
            print(f"blackbox_exporter, same target: {bb['probes']} probes ({bb['succeeded']} succeeded) at "
                  f"{bb['probes_per_second']:.0f}/s, {bb['cpu_us_per_probe']:.1f} µs CPU per probe; "
                  f"breakerd uses {ratio:.1f}x less CPU per check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
