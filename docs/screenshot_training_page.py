"""Screenshot of the dashboard's live training page, for docs/_static (and the monitoring tests).

Usage (needs Debian's ``chromium``: ``apt-get install -y chromium``)::

    python docs/screenshot_training_page.py docs/_static

writes ``monitoring_solver.png`` and ``monitoring_shards.png`` there.

It starts a local cluster with :func:`daskml_lab.connect` (which installs the training page), fits a
LogisticRegression and a ShardEnsembleClassifier on synthetic chunked data, and photographs
``/daskml-training`` with headless Chromium. The page draws itself from a Bokeh websocket after the page has
loaded, which Chromium's one-shot ``--screenshot`` does not wait for, so the browser is driven through its
DevTools protocol instead: open the page, wait, capture.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of Debian's chromium (or a compatible browser), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


async def _capture(ws_url: str, url: str, width: int, height: int, wait_s: float) -> bytes:
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    counter = 0

    async def call(method: str, **params: object) -> dict:
        nonlocal counter
        counter += 1
        ident = counter
        await connection.write_message(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            reply = await asyncio.wait_for(connection.read_message(), timeout=60)
            if reply is None:
                msg = f"DevTools connection closed during {method}"
                raise RuntimeError(msg)
            message = json.loads(reply)
            if message.get("id") == ident:
                if "error" in message:
                    msg = f"{method}: {message['error']}"
                    raise RuntimeError(msg)
                return message.get("result", {})

    await call(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
    )
    await call("Page.enable")
    await call("Page.navigate", url=url)
    await asyncio.sleep(wait_s)
    result = await call("Page.captureScreenshot", format="png")
    connection.close()
    return base64.b64decode(result["data"])


def screenshot(url: str, out: Path, *, width: int = 1400, height: int = 1150, wait_s: float = 4.0) -> Path:
    """Photograph ``url`` with headless Chromium after ``wait_s`` seconds; write the PNG to ``out``."""
    chromium = find_chromium()
    if chromium is None:
        msg = "chromium is not installed (apt-get install -y chromium)"
        raise FileNotFoundError(msg)
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            port = None
            deadline = time.monotonic() + 30
            assert process.stderr is not None
            while port is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                if not line and process.poll() is not None:
                    break
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
                if found:
                    port = int(found.group(1))
            if port is None:
                msg = "chromium did not start its DevTools server"
                raise RuntimeError(msg)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                targets = json.load(response)
            page = next(target for target in targets if target.get("type") == "page")
            png = asyncio.run(_capture(page["webSocketDebuggerUrl"], url, width, height, wait_s))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNG files")
    args = parser.parse_args()

    import dask.array as da
    import numpy as np
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    import daskml_lab
    from daskml_lab.ensemble import ShardEnsembleClassifier
    from daskml_lab.linear_model import LogisticRegression

    with daskml_lab.connect(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as client:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40_000, 30))
        y = (X[:, :3].sum(axis=1) + rng.normal(size=len(X)) > 0).astype(np.int64)
        X_dask, y_dask = da.from_array(X, chunks=5_000), da.from_array(y, chunks=5_000)
        ShardEnsembleClassifier(SkLogisticRegression(), n_shards=8, fusion="stacking", random_state=0).fit(
            X_dask, y_dask
        )
        LogisticRegression(C=100.0, tol=1e-6, max_iter=200).fit(X_dask, y_dask)
        base = client.dashboard_link.rsplit("/", 1)[0]
        print(screenshot(f"{base}/daskml-training?kind=solver", args.out_dir / "monitoring_solver.png"))  # noqa: T201
        print(screenshot(f"{base}/daskml-training?kind=ensemble", args.out_dir / "monitoring_shards.png"))  # noqa: T201


if __name__ == "__main__":
    main()
