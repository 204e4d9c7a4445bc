#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench breaker` run as a Markdown table.

Reads Criterion's estimates under target/criterion; for the closed path it also prints each
breaker's overhead net of the no-breaker baseline, and for every group each peer's ratio to
breakerd.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
GROUPS = ["closed_path", "open_rejection", "two_threads"]
ORDER = ["baseline", "breakerd", "breakerd_hook_and_slow_call", "failsafe", "recloser", "recloser_async", "tower_resilience"]


def median_ns(group: str, name: str):
    path = ROOT / group / name / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns: float) -> str:
    return f"{ns / 1000:.1f} µs" if ns >= 10_000 else f"{ns:.1f} ns"


def main() -> int:
    if not ROOT.exists():
        print("no Criterion results: run `cargo bench --bench breaker` first", file=sys.stderr)
        return 1
    baseline = median_ns("closed_path", "baseline") or 0.0
    print("| group | breaker | median per call | net of baseline | × breakerd |")
    print("|---|---|---|---|---|")
    for group in GROUPS:
        ours = median_ns(group, "breakerd")
        for name in ORDER:
            ns = median_ns(group, name)
            if ns is None:
                continue
            net = fmt(ns - baseline) if group == "closed_path" and name != "baseline" else ""
            ratio = f"{ns / ours:.2f}" if ours and name not in ("baseline",) else ""
            print(f"| {group} | {name} | {fmt(ns)} | {net} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
