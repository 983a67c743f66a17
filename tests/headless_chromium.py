"""Drive a page in headless Chromium: collect its console errors, type,
click, wait for the DOM, take screenshots.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON), so it needs no websocket client and no extra package.
Collected: console.error/assert calls, uncaught exceptions, browser log
entries of level error (e.g. "Failed to load resource" for a missing image),
and images that did not decode (naturalWidth == 0).
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, List, Optional

import pytest


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


def require_chromium() -> str:
    """The browser's path; without one, a skip, or a failure under CI=true
    (CI installs chromium in .ci/run, so a missing one there is a broken setup)."""
    path = find_chromium()
    if path is None:
        reason = "no chromium on PATH (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, where .ci/run installs it, so this is a failure, not a skip")
        pytest.skip(reason)
    return path


class Browser:
    """One headless Chromium page driven over the DevTools pipe.

    with Browser(chromium) as page:
        page.navigate(url); page.type_into("#text", "..."); page.click("#run")
        page.wait_for("document.querySelector('mark') !== null")
        page.screenshot(path)
    page.errors() lists the console errors seen so far.
    """

    def __init__(self, chromium: str, width: int = 1000, height: int = 700) -> None:
        self.chromium, self.width, self.height = chromium, width, height

    def __enter__(self) -> "Browser":
        # Chromium reads commands from fd 3 and writes replies to fd 4.
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="lexner-chromium-")

        def preexec() -> None:
            # Copy both ends out of the way first: either may already be fd 3
            # or 4, and dup2 onto itself would keep its close-on-exec flag.
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read_end, 3, inheritable=True)
            os.dup2(write_end, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [
                self.chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
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
        self.pipe = _Pipe(to_chrome_w, from_chrome_r)
        self._errors: List[str] = []
        try:
            target = self.pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                self.call(f"{domain}.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, params: Optional[dict] = None) -> dict:
        return self.pipe.call(method, params, self.session)

    def _drain_events(self) -> None:
        while self.pipe.events:
            self._errors.extend(_error_of(self.pipe.events.pop(0)))

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        """Open url and wait for its load event."""
        self.call("Page.navigate", {"url": url})
        deadline = time.time() + timeout
        while time.time() < deadline:
            event = self.pipe.events.pop(0) if self.pipe.events else self.pipe.read()
            self._errors.extend(_error_of(event))
            if event.get("method") == "Page.loadEventFired":
                return
        raise TimeoutError(f"{url} did not finish loading in {timeout} s")

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression (JSON-serialisable values)."""
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type text as the keyboard would (input events fire)."""
        if not self.evaluate(f"(e => (e ? (e.focus(), e.select && e.select(), true) : false))({_js(selector)})"):
            raise LookupError(f"no element matches {selector}")
        self.call("Input.insertText", {"text": text})

    def set_files(self, selector: str, paths: List[Path]) -> None:
        """Choose files in an <input type=file>, as the file dialog would."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise LookupError(f"no element matches {selector}")
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(p).resolve()) for p in paths]})

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the element's centre."""
        box = self.evaluate(
            f"(e => {{ if (!e) return null; e.scrollIntoView(); const r = e.getBoundingClientRect();"
            f" return [r.left + r.width / 2, r.top + r.height / 2]; }})({_js(selector)})"
        )
        if box is None:
            raise LookupError(f"no element matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}
            )

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll until the expression is truthy; its value."""
        deadline = time.time() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.time() > deadline:
                raise TimeoutError(f"{expression!r} was still falsy after {timeout} s; console errors: {self.errors()}")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (not just the viewport)."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or self.height
        data = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
            },
        )["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def errors(self) -> List[str]:
        """Console errors, exceptions and browser log errors seen so far."""
        self._drain_events()
        return list(self._errors)


def _js(value: str) -> str:
    return f"document.querySelector({json.dumps(value)})"


def console_errors(url: str, chromium: str, timeout: float = 30.0) -> List[str]:
    """Open ``url`` and return its console errors (empty: a clean page)."""
    with Browser(chromium) as page:
        try:
            page.navigate(url, timeout)
        except TimeoutError:
            return page.errors() + [f"page did not finish loading in {timeout} s"]
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.getAttribute('src')).join('\\n')"
        )
        errors = page.errors()
        errors.extend(f"image did not load: {src}" for src in (broken or "").splitlines())
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
