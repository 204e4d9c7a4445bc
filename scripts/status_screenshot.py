#!/usr/bin/env python3
"""Writes docs/status-page.png from the running demo, and docs/status-page.structure.

README shows the status page as `breakerd demo` draws it. This script builds breakerd, runs
`breakerd demo` on a free loopback port, waits until the page has something to say (an outage
that ended, one still going on, a slow card), opens the latest ended outage to its state
changes and takes the screenshot in headless Chromium (Debian's chromium and
chromium-driver, driven over WebDriver as the tests do).

It also writes docs/status-page.structure: the ids and classes of src/api/status.html. The
test `status_page::the_screenshot_was_taken_of_the_page_as_it_is` recomputes that outline and
fails when the page's structure changed without the screenshot being taken again. Run:

    python3 scripts/status_screenshot.py
"""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "src", "api", "status.html")
PNG = os.path.join(ROOT, "docs", "status-page.png")
STRUCTURE = os.path.join(ROOT, "docs", "status-page.structure")
HEADER = (
    "# The ids and classes of src/api/status.html when docs/status-page.png was taken.\n"
    "# Written by scripts/status_screenshot.py; a test compares it with the page.\n"
)
TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# How long the demo may take to show an ended outage (the flaky provider recovers within ~30 s).
WAIT_SECONDS = 120


def outline(html):
    """`class:NAME` and `id:NAME` for every literal id and class token of the page, sorted.

    The test in tests/it/status_page.rs computes exactly the same: an `id="` or `class="`
    preceded by whitespace, its value up to the next `"`, split on whitespace, keeping the
    tokens that are plain names (those built from `${…}` are left out)."""
    found = set()
    for match in re.finditer(r'(?<=\s)(id|class)="([^"]*)"', html):
        for token in match.group(2).split():
            if TOKEN.fullmatch(token):
                found.add(f"{match.group(1)}:{token}")
    return sorted(found)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"{}")


def wait_until(what, condition, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for: {what}")
        time.sleep(0.25)


def ready(status):
    outages = status.get("outages", [])
    return (any(not o["ongoing"] for o in outages)
            and any(o["ongoing"] for o in outages)
            and any(s.get("slow") for s in status.get("services", [])))


def main():
    # A debug build is enough for a picture, and shares the tests' target directory.
    subprocess.run(["cargo", "build", "--quiet", "--bin", "breakerd"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "debug", "breakerd")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen([binary, "demo", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        wait_until("the demo to show an ended and an ongoing outage and a slow card",
                   lambda: ready(call("GET", f"{base}/api/v1/status")), WAIT_SECONDS)
        driver_port = free_port()
        driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        wd = f"http://127.0.0.1:{driver_port}"
        wait_until("chromedriver", lambda: call("GET", f"{wd}/status")["value"]["ready"], 30)
        profile = tempfile.mkdtemp(prefix="breakerd-screenshot-")
        session = call("POST", f"{wd}/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--hide-scrollbars", "--window-size=1200,1000",
                f"--user-data-dir={profile}"]},
        }}})["value"]["sessionId"]
        s = f"{wd}/session/{session}"
        call("POST", f"{s}/url", {"url": f"{base}/"})

        def script(text):
            return call("POST", f"{s}/execute/sync", {"script": text, "args": []})["value"]

        wait_until("the page to list the outages",
                   lambda: script("return document.querySelectorAll('#outages tr.is-ended').length") > 0, 30)
        # Open the latest ended outage to its state changes; redraws keep it open.
        script("document.querySelector('#outages tr.is-ended details').open = true")
        # Grow the window until the whole page fits (the window's height is not the page's).
        for _ in range(3):
            short = script("return document.documentElement.scrollHeight - window.innerHeight")
            if short <= 0:
                break
            rect = call("GET", f"{s}/window/rect")["value"]
            call("POST", f"{s}/window/rect",
                 {"width": rect["width"], "height": min(rect["height"] + short + 20, 3000)})
            time.sleep(1.5)  # let one redraw land after resizing
        png = base64.b64decode(call("GET", f"{s}/screenshot")["value"])
        call("DELETE", s)
    finally:
        if driver is not None:
            os.killpg(driver.pid, 9)
            driver.wait()
        demo.terminate()
        demo.wait()
    with open(PNG, "wb") as f:
        f.write(png)
    with open(PAGE, encoding="utf-8") as f:
        lines = outline(f.read())
    with open(STRUCTURE, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n".join(lines) + "\n")
    print(f"wrote {os.path.relpath(PNG, ROOT)} ({len(png)} bytes) and {os.path.relpath(STRUCTURE, ROOT)}")


if __name__ == "__main__":
    main()
