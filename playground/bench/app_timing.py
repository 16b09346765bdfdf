"""How faithfully the app times a run: Generate in headless Chromium, on the same machine, against quiet decoding.

    python -m playground.bench.app_timing [--method speculative] [--runs 4] [--max-new 128] [--root CHECKOUT]

Starts `app.py` (of this checkout, or of `--root`) with a fresh database, and presses Generate `--runs` times with
the comparison against autoregressive decoding ticked. Prints, for each pair of runs the app recorded, the method's
and the reference's tokens/s and their ratio (what the comparison panel reads), and beside it the same two decoded
in this process right after that run, with the browser and the app idle: this machine's speed drifts within
minutes, so only pairs taken side by side compare. Needs Playwright and Debian's chromium (requirements-test.txt).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playground.engine import Request, generate, warm_up
from playground.errors import OneLineParser
from playground.events import RunFinished
from playground.storage.recorder import Recorder

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PROMPT = "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"


def serve(root: Path, db: str | Path, log=subprocess.DEVNULL, wait_s: float = 120,
          env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start `root`'s app.py on a free port with database `db` (and `env` added to its environment); return the
    process and its URL once it serves. Raises RuntimeError if it exits or does not serve within `wait_s` (the browser
    tests start it this way too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           **(env or {})}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--db", str(db)], cwd=root, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + wait_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError(f"the app exited with {proc.returncode}")
    proc.kill()
    raise RuntimeError(f"the app did not start serving within {wait_s:.0f} s")


def press_generate(url: str, method: str, max_new: int, runs: int, between=lambda: None) -> None:
    """Press Generate `runs` times; call `between()` after each run, once the browser is done drawing it."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(url)
        page.locator("#prompt textarea").fill(PROMPT)
        page.locator("#method input").click()
        page.get_by_role("option", name=method, exact=True).click()
        page.locator("#max-new input[type=number]").fill(str(max_new))
        page.locator("#max-new input[type=number]").press("Enter")
        for k in range(runs):
            page.click("#generate-btn")
            page.wait_for_selector(f"#live-baseline [data-verdict] >> text=run #{2 * k + 2}")
            page.wait_for_timeout(3000)  # the next run starts with the browser done drawing this one
            between()
        browser.close()


def quiet(method: str, max_new: int) -> float:
    req = Request(prompt=PROMPT, method=method, max_new_tokens=max_new)
    warm_up(req)
    return next(e for e in generate(req) if isinstance(e, RunFinished)).stats.tokens_per_s


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="speculative")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=128)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is timed")
    args = parser.parse_args(argv)
    db = tempfile.mktemp(suffix=".db")
    try:
        proc, url = serve(args.root, db)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    quiet_pairs = []  # decoded here right after each app run, so that the machine's drift hits both alike

    def quiet_pair():
        quiet_pairs.append((quiet(args.method, args.max_new), quiet("autoregressive", args.max_new)))

    try:
        press_generate(url, args.method, args.max_new, args.runs, quiet_pair)
    finally:
        proc.terminate()
    runs = sorted(Recorder(db).runs(), key=lambda r: r["id"])
    for mine, ar, (fast, slow) in zip(runs[::2], runs[1::2], quiet_pairs):
        print(f"app:   {args.method} {mine['tokens_per_s']:6.1f} tok/s · autoregressive {ar['tokens_per_s']:6.1f} "
              f"tok/s · {mine['tokens_per_s'] / ar['tokens_per_s']:.2f}x")
        print(f"quiet: {args.method} {fast:6.1f} tok/s · autoregressive {slow:6.1f} tok/s · {fast / slow:.2f}x")


if __name__ == "__main__":
    main()
