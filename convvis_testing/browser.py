"""Driving ConvVis in a real browser: Debian's chromium through Playwright, no browser download.

Shared by ``tests/test_browser.py`` (the end-to-end test), ``bench/serve_cost.py`` (what a visit
costs the server), ``bench/live_fps.py`` (frames per second per Live viewer) and
``scripts/screenshots.py`` (the pictures of README.md and docs/). :func:`serve` starts
``streamlit run app.py`` on a free port; :class:`AppPage` wraps a Playwright page on it and knows
when a script run has finished, from Streamlit's own websocket messages, so callers wait for the
app rather than for fixed times.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from playwright.sync_api import Browser, Locator, Page, Playwright, WebSocket
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browsers are never downloaded
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 3000}  # Streamlit scrolls inside its main container: a tall window shows it all
RUN_TIMEOUT_MS = 300_000  # a script run on 2 busy CPU cores (model conversion, gradient ascent, a dataset scan)
_EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Served:
    url: str
    pid: int  # the server's process, whose CPU time bench/serve_cost.py and bench/live_fps.py read


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S  # utime, stime (fields 14 and 15)


@contextmanager
def serve(log_path: Path, timeout_s: float = 180) -> Iterator[Served]:
    """``python -m streamlit run app.py`` on a free localhost port, in this process's environment
    (so ``$CONVVIS_CACHE_DIR`` is shared) and otherwise configured as users run it (by
    ``.streamlit/config.toml``); yields it once ``/_stcore/health`` answers "ok", and stops it on
    exit, whatever happened. Its output goes to ``log_path``."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "localhost", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://localhost:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {server.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
                    if answer.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer {url}/_stcore/health in {timeout_s:.0f} s:\n"
                                   f"{_tail(log_path)}")
            time.sleep(0.25)
        yield Served(url, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def launch(playwright: Playwright) -> Browser:
    """Debian's chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class AppPage:
    """A browser tab on the Streamlit app. Every action that makes Streamlit rerun the script goes
    through :meth:`rerun`, which returns once that run has finished (its ``script_finished``
    message has arrived), so what follows reads the page the run produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.finished_runs = 0
        page.set_default_timeout(60_000)
        page.on("websocket", self._watch)

    @property
    def main(self) -> Locator:
        return self.page.get_by_test_id("stMain")

    @property
    def sidebar(self) -> Locator:
        return self.page.get_by_test_id("stSidebar")

    def _watch(self, websocket: WebSocket) -> None:
        websocket.on("framereceived", self._received)

    def _received(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            return
        message = ForwardMsg()
        try:
            message.ParseFromString(payload)
        except Exception:  # not a ForwardMsg: nothing to count
            return
        # A run cut short by a newer request is not the run the caller waits for.
        if message.WhichOneof("type") == "script_finished" and message.script_finished != _EARLY_FOR_RERUN:
            self.finished_runs += 1

    @contextmanager
    def rerun(self, timeout_ms: float = RUN_TIMEOUT_MS) -> Iterator[None]:
        """Wait, after the block, for the script run it caused to finish."""
        before = self.finished_runs
        yield
        deadline = time.monotonic() + timeout_ms / 1000
        while self.finished_runs == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Streamlit did not finish a script run within {timeout_ms / 1000:.0f} s")
            self.page.wait_for_timeout(50)  # lets Playwright deliver the websocket events

    def open(self, url: str, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Load a URL as a new session and wait for its first run."""
        with self.rerun(timeout_ms):
            self.page.goto(url)

    def go_to(self, title: str, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Switch page with the sidebar navigation (same session), until the page's title is shown."""
        with self.rerun(timeout_ms):
            self.sidebar.get_by_test_id("stPageLink").get_by_role("link", name=title, exact=True).click()
        self.main.get_by_role("heading", name=title, exact=True).wait_for()

    def choose(self, combobox: Locator, option: str, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Pick an option of a selectbox; ``option`` is the label or its start ("conv2_relu" for
        "conv2_relu · Activation · 14×14×50"); nothing happens when it is already chosen."""
        label = re.compile("^" + re.escape(option).replace("/", r"\/") + r"(\s|$)")  # Playwright needs / escaped
        if label.match(combobox.input_value()):
            return
        combobox.click()
        combobox.fill(option)  # filters the list, which shows only the options scrolled to
        with self.rerun(timeout_ms):
            self.page.get_by_role("option", name=label).click()

    def fill(self, textbox: Locator, value: str, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Type into a text or number input and submit it."""
        textbox.fill(value)
        with self.rerun(timeout_ms):
            textbox.press("Enter")

    def click(self, button: Locator, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        with self.rerun(timeout_ms):
            button.click()

    def upload(self, path: Path, within: Locator | None = None, timeout_ms: float = RUN_TIMEOUT_MS) -> None:
        """Give a file to the first file uploader of ``within`` (default: the main area's)."""
        with self.rerun(timeout_ms):
            (within or self.main).get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))

    def problems(self) -> list[str]:
        """Texts of Streamlit exception boxes and error messages on the page."""
        boxes = self.page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
        return [boxes.nth(index).inner_text() for index in range(boxes.count())]

    def screenshot(self, path: Path) -> None:
        """The whole window, without the help tooltip of whatever the mouse last clicked."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.mouse.move(0, 0)
        try:
            self.page.get_by_test_id("stTooltipContent").first.wait_for(state="hidden", timeout=5_000)
        except PlaywrightTimeoutError:  # a picture with a tooltip beats no picture
            pass
        self.page.screenshot(path=str(path), full_page=True)
