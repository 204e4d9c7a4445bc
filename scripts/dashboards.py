#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json: the overview of every breaker and the per-service drill-down.

The dashboards are generated so that both use the same queries, units and colours; edit the
panels here and run `python3 scripts/dashboards.py`. The test suite checks that every query uses
only metric names the daemon exports and returns data from a real Prometheus.
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'service=~"$service"'

GREEN, AMBER, RED, BLUE = "green", "#FF9830", "red", "blue"

STATE_EXPR = (
    f'max by (service) (breakerd_breaker_state{{{SEL},state="open"}}) * 2 '
    f'+ max by (service) (breakerd_breaker_state{{{SEL},state="half_open"}})'
)
STATE_MAPPINGS = [{
    "type": "value",
    "options": {
        "0": {"text": "CLOSED", "color": GREEN, "index": 0},
        "1": {"text": "HALF-OPEN", "color": AMBER, "index": 1},
        "2": {"text": "OPEN", "color": RED, "index": 2},
    },
}]
STATE_THRESHOLDS = {"mode": "absolute", "steps": [
    {"color": GREEN, "value": None}, {"color": AMBER, "value": 1}, {"color": RED, "value": 2}]}


def target(expr, legend="{{service}}", ref="A", fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}
    if fmt:
        t["format"] = fmt
    return t


def panel(kind, title, targets, unit=None, description="", mappings=None, thresholds=None, options=None,
          overrides=None, color=None, custom=None):
    defaults = {"custom": custom or {}}
    if unit:
        defaults["unit"] = unit
    if mappings:
        defaults["mappings"] = mappings
    if thresholds:
        defaults["thresholds"] = thresholds
    if color:
        defaults["color"] = color
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }


def outcome_colors():
    colors = {"success": GREEN, "failure": RED, "timeout": "purple", "rejected": AMBER}
    return [{"matcher": {"id": "byRegexp", "options": f".*{name}.*"},
             "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
            for name, color in colors.items()]


def source_styles():
    """Real traffic dashed, checks solid, so the two read apart in one panel."""
    return [{"matcher": {"id": "byRegexp", "options": ".* traffic.*"},
             "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]


# A stat panel showing one value per service, named.
PER_SERVICE_STAT = {"colorMode": "value", "graphMode": "none", "textMode": "value_and_name",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}


def panels():
    rate = "$__rate_interval"
    return [
        panel("stat", "Breaker state", [target(STATE_EXPR)],
              description="Current state of each breaker: closed (green), half-open (amber), open (red).",
              mappings=STATE_MAPPINGS, thresholds=STATE_THRESHOLDS, color={"mode": "thresholds"},
              options={"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        panel("state-timeline", "State timeline", [target(STATE_EXPR)],
              description="When each breaker opened, half-opened and closed.",
              mappings=STATE_MAPPINGS, thresholds=STATE_THRESHOLDS, color={"mode": "thresholds"},
              options={"showValue": "never", "mergeValues": True}),
        panel("timeseries", "Calls per second by source and outcome",
              [target(f"sum by (service, source, outcome) (rate(breakerd_calls_total{{{SEL}}}[{rate}]))",
                      "{{service}} {{source}} {{outcome}}")],
              unit="reqps", overrides=outcome_colors() + source_styles(),
              description="Synthetic checks (source=check, solid) and real calls through the proxy or reported "
                          "to the outcome API (source=traffic, dashed), side by side: success, failure, timeout, "
                          "rejected while open."),
        panel("timeseries", "Failure ratio by source",
              [target(f'sum by (service, source) (rate(breakerd_calls_total{{{SEL},outcome=~"failure|timeout"}}[{rate}]))'
                      f' / sum by (service, source) (rate(breakerd_calls_total{{{SEL},outcome=~"success|failure|timeout"}}[{rate}]))',
                      "{{service}} {{source}}")],
              overrides=source_styles(),
              unit="percentunit",
              thresholds={"mode": "absolute", "steps": [{"color": GREEN, "value": None},
                                                        {"color": AMBER, "value": 0.2}, {"color": RED, "value": 0.5}]},
              custom={"thresholdsStyle": {"mode": "line"}},
              description="Share of calls that ran and failed; rising while closed is the early warning."),
        panel("timeseries", "Latency p50 / p95 / p99 by source",
              [target(f"histogram_quantile({q}, sum by (service, source, le) (rate(breakerd_call_duration_seconds_bucket{{{SEL}}}[{rate}])))",
                      f"{{{{service}}}} {{{{source}}}} p{int(q * 100)}", ref)
               for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))],
              unit="s",
              thresholds={"mode": "absolute", "steps": [{"color": GREEN, "value": None}, {"color": RED, "value": 1}]},
              custom={"thresholdsStyle": {"mode": "line"}},
              overrides=source_styles(),
              description="Latency of checks and of real calls from the histogram; the red line is the 1 s slow-call threshold."),
        panel("heatmap", "Latency heatmap",
              [target(f"sum by (le) (increase(breakerd_call_duration_seconds_bucket{{{SEL}}}[{rate}]))", "{{le}}",
                      fmt="heatmap")],
              unit="s", options={"calculate": False, "yAxis": {"unit": "s"}, "color": {"scheme": "Oranges"},
                                 "cellGap": 1},
              description="How call latencies are spread over the buckets (5 ms to 60 s)."),
        panel("timeseries", "Slow calls",
              [target(f"sum by (service, source) (increase(breakerd_slow_calls_total{{{SEL}}}[{rate}]))",
                      "{{service}} {{source}}")],
              unit="short", overrides=source_styles(),
              description="Checks and real calls slower than slow_call (default 1 s)."),
        panel("timeseries", "Timeouts and rejections",
              [target(f'sum by (service, source, outcome) (increase(breakerd_calls_total{{{SEL},outcome=~"timeout|rejected"}}[{rate}]))',
                      "{{service}} {{source}} {{outcome}}")],
              unit="short", overrides=outcome_colors() + source_styles(),
              description="Calls cut off at the timeout, and calls rejected by an open breaker (real calls "
                          "rejected are the ones the proxy answered at once with 503)."),
        panel("state-timeline", "Probe success",
              [target(f"max by (service) (breakerd_probe_success{{{SEL}}})")],
              mappings=[{"type": "value", "options": {"0": {"text": "FAIL", "color": RED},
                                                      "1": {"text": "OK", "color": GREEN}}}],
              thresholds={"mode": "absolute", "steps": [{"color": RED, "value": None}, {"color": GREEN, "value": 1}]},
              color={"mode": "thresholds"}, options={"showValue": "never"},
              description="Whether the last synthetic check passed."),
        panel("timeseries", "Probe failures by reason",
              [target(f"sum by (service, reason) (increase(breakerd_probe_failures_total{{{SEL}}}[{rate}]))",
                      "{{service}} {{reason}}")],
              unit="short", custom={"drawStyle": "bars", "stacking": {"mode": "normal"}},
              description="Why checks fail: timeout, dns, connect, reset, tls, http_status, body, auth, throttled, balance, protocol, redirect, dns_nxdomain, dns_servfail, dns_mismatch, heartbeat_missed, reported."),
        panel("stat", "Time until next trial call",
              [target(f"clamp_min(max by (service) (breakerd_next_attempt_timestamp_seconds{{{SEL}}}) - time(), 0)")],
              unit="s", thresholds={"mode": "absolute", "steps": [{"color": GREEN, "value": None},
                                                                   {"color": RED, "value": 1}]},
              color={"mode": "thresholds"},
              options=PER_SERVICE_STAT,
              description="How long an open breaker still rejects calls; 0 when not open."),
        panel("timeseries", "Consecutive failures and threshold",
              [target(f"max by (service) (breakerd_consecutive_failures{{{SEL}}})", "{{service}} failures in a row", "A"),
               target(f"max by (service) (breakerd_failure_threshold{{{SEL}}})", "{{service}} threshold", "B")],
              unit="short",
              overrides=[{"matcher": {"id": "byRegexp", "options": ".*threshold"},
                          "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                         {"id": "color", "value": {"mode": "fixed", "fixedColor": RED}}]}],
              description="Failures in a row beside the configured threshold that opens the breaker."),
        panel("stat", "HTTP status of the last check",
              [target(f"max by (service) (breakerd_probe_http_status_code{{{SEL}}})")],
              thresholds={"mode": "absolute", "steps": [{"color": "text", "value": None},
                                                        {"color": GREEN, "value": 200},
                                                        {"color": AMBER, "value": 300},
                                                        {"color": RED, "value": 400}]},
              color={"mode": "thresholds"},
              options=PER_SERVICE_STAT,
              description="The status code of the last answer each check got; 0 when none came (not HTTP, a timeout, a refused connection)."),
        panel("timeseries", "Where checks spend their time",
              [target(f"max by (service, phase) (breakerd_probe_phase_seconds{{{SEL}}})", "{{service}} {{phase}}")],
              unit="s", custom={"drawStyle": "bars", "stacking": {"mode": "normal"}},
              description="The last HTTP check of each service by phase: dns, connect (TCP), tls (the handshake), first_byte (the request and the server's time), body."),
        panel("stat", "TLS certificate expiry",
              [target(f"(min by (service) (breakerd_tls_cert_not_after_timestamp_seconds{{{SEL}}}) - time()) / 86400")],
              unit="d",
              thresholds={"mode": "absolute", "steps": [{"color": RED, "value": None},
                                                        {"color": AMBER, "value": 3},
                                                        {"color": GREEN, "value": 14}]},
              color={"mode": "thresholds"},
              options=PER_SERVICE_STAT,
              description="Days until the first certificate in the chain each HTTPS service presents expires (BreakerdCertificateExpiringSoon: 14 days warning, 3 critical)."),
        panel("stat", "Since the last heartbeat",
              [target(f"time() - max by (service) (breakerd_heartbeat_last_timestamp_seconds{{{SEL}}})")],
              unit="s",
              options=PER_SERVICE_STAT,
              description="How long ago each heartbeat service was last told its event happened (POST /api/v1/heartbeat/<service>); the check fails once this passes every + grace."),
        panel("stat", "Pages held",
              [target(f"max by (service) (breakerd_maintenance{{{SEL}}}) + 2 * max by (service) (breakerd_silenced{{{SEL}}})")],
              mappings=[{"type": "value", "options": {"0": {"text": "paging", "color": GREEN},
                                                      "1": {"text": "maintenance", "color": AMBER},
                                                      "2": {"text": "silenced", "color": AMBER},
                                                      "3": {"text": "maintenance, silenced", "color": AMBER}}}],
              color={"mode": "thresholds"},
              thresholds={"mode": "absolute", "steps": [{"color": GREEN, "value": None}, {"color": AMBER, "value": 1}]},
              options=PER_SERVICE_STAT,
              description="Whether a [[maintenance]] window or a silence holds each service's pages now (checks still run; GET /api/v1/silences lists the silences)."),
        panel("table", "Configured thresholds",
              [target(f"max by (service) (breakerd_failure_threshold{{{SEL}}})", "", "A", "table"),
               target(f"max by (service) (breakerd_timeout_seconds{{{SEL}}})", "", "B", "table"),
               target(f"max by (service) (breakerd_reset_timeout_seconds{{{SEL}}})", "", "C", "table"),
               target(f"max by (service) (breakerd_probe_interval_seconds{{{SEL}}})", "", "D", "table")],
              options={"showHeader": True},
              description="failure_threshold, timeout, reset_timeout and the check interval of each service."),
        panel("timeseries", "Alerts sent and failed per channel",
              [target(f"sum by (channel, outcome) (increase(breakerd_alerts_total[{rate}]))", "{{channel}} {{outcome}}"),
               target(f"sum by (channel, outcome) (increase(breakerd_alert_attempts_total[{rate}]))", "{{channel}} attempts {{outcome}}", "B")],
              unit="short", overrides=[
                  {"matcher": {"id": "byRegexp", "options": ".*(sent|attempts ok)"},
                   "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": GREEN}}]},
                  {"matcher": {"id": "byRegexp", "options": ".*(failed|dropped)"},
                   "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": RED}}]}],
              description="Notifications per channel: sent, failed (given up), dropped (queue full); and every delivery attempt, ok or failed, so a channel in trouble shows while it still retries."),
        panel("stat", "Config reload",
              [target("min(breakerd_config_last_reload_successful)", "last reload")],
              mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": RED},
                                                      "1": {"text": "OK", "color": GREEN}}}],
              thresholds={"mode": "absolute", "steps": [{"color": RED, "value": None}, {"color": GREEN, "value": 1}]},
              color={"mode": "thresholds"},
              options={"colorMode": "background", "graphMode": "none",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
              description="Whether the last edit of alerts.toml was accepted; a failed one keeps the old config."),
    ]


def layout(items, widths):
    x = y = 0
    row_height = 0
    for index, item in enumerate(items):
        width, height = widths[index % len(widths)]
        if x + width > 24:
            x, y = 0, y + row_height
            row_height = 0
        item["id"] = index + 1
        item["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        x += width
        row_height = max(row_height, height)
    return items


def dashboard(uid, title, description, multi, items):
    service_var = {
        "name": "service", "label": "Service", "type": "query", "datasource": DS,
        "query": {"query": "label_values(breakerd_breaker_state, service)", "refId": "services"},
        "definition": "label_values(breakerd_breaker_state, service)",
        "refresh": 2, "sort": 1, "multi": multi, "includeAll": multi,
        "current": {"text": "All", "value": "$__all"} if multi else {},
    }
    return {
        "uid": uid, "title": title, "description": description, "tags": ["breakerd"],
        "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             # The provisioned datasource (grafana/provisioning); Grafana falls back to the
             # default Prometheus where there is none of that name.
             "current": {"text": "breakerd-prometheus", "value": "breakerd-prometheus"}, "hide": 0},
            service_var,
        ]},
        "links": [{"title": "breakerd", "type": "dashboards", "tags": ["breakerd"], "asDropdown": True}],
        "panels": items,
    }


def main():
    overview = layout(panels(), [(8, 6), (16, 6), (12, 8), (12, 8), (12, 8), (12, 8), (8, 7), (8, 7), (8, 7),
                                 (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (16, 7), (8, 7)])
    drill = layout(panels(), [(6, 5), (18, 5), (12, 8), (12, 8), (12, 9), (12, 9), (8, 7), (8, 7), (8, 7),
                              (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (12, 7), (16, 7), (8, 7)])
    outputs = {
        "breakerd-overview.json": dashboard("breakerd-overview", "breakerd / Overview",
                                            "Every breaker, check and alert channel at a glance.", True, overview),
        "breakerd-service.json": dashboard("breakerd-service", "breakerd / Service",
                                           "One service in detail: pick it in the Service variable.", False, drill),
    }
    for name, content in outputs.items():
        path = os.path.join(ROOT, "grafana", "dashboards", name)
        with open(path, "w") as f:
            json.dump(content, f, indent=2)
            f.write("\n")
        print(f"wrote {os.path.relpath(path, ROOT)}: {len(content['panels'])} panels")


if __name__ == "__main__":
    main()
