"""Open a page in headless Chromium and collect its console errors.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON), so it needs no websocket client and no extra package.
Collected: console.error/assert calls, uncaught exceptions, browser log
entries of level error (e.g. "Failed to load resource" for a missing image),
and images that did not decode (naturalWidth == 0).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w = os.fdopen(write_fd, "wb", buffering=0)
        self.r = os.fdopen(read_fd, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events: List[dict] = []

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.w.write(json.dumps(message).encode() + b"\0")
        return self.next_id

    def read(self) -> dict:
        while b"\0" not in self.buf:
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> dict:
        wanted = self.send(method, params, session)
        while True:
            message = self.read()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)


def console_errors(url: str, chromium: str, timeout: float = 30.0) -> List[str]:
    """Open ``url`` and return its console errors (empty: a clean page)."""
    # Chromium reads commands from fd 3 and writes replies to fd 4.
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="report-chromium-")

    def preexec() -> None:
        # Copy both ends out of the way first: either may already be fd 3 or
        # 4, and dup2 onto itself would keep its close-on-exec flag.
        read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(read_end, 3, inheritable=True)
        os.dup2(write_end, 4, inheritable=True)

    proc = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        preexec_fn=preexec,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=False,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r)
    errors: List[str] = []
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Page.navigate", {"url": url}, session=session)
        deadline = time.time() + timeout
        loaded = False
        while time.time() < deadline and not loaded:
            event = pipe.events.pop(0) if pipe.events else pipe.read()
            errors.extend(_error_of(event))
            loaded = event.get("method") == "Page.loadEventFired"
        if not loaded:
            errors.append(f"page did not finish loading in {timeout} s")
        result = pipe.call(
            "Runtime.evaluate",
            {
                "expression": "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.getAttribute('src')).join('\\n')",
                "returnByValue": True,
            },
            session=session,
        )
        broken = result.get("result", {}).get("value") or ""
        errors.extend(f"image did not load: {src}" for src in broken.splitlines())
        for event in pipe.events:
            errors.extend(_error_of(event))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return errors


def _error_of(event: dict) -> List[str]:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return [
            "console."
            + params["type"]
            + ": "
            + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
        ]
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return ["exception: " + str(details.get("exception", {}).get("description", details.get("text")))]
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return [f"log: {entry.get('text')} {entry.get('url', '')}".strip()]
    return []


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
