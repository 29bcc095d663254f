"""What one visit and one click cost the server: ``streamlit run app.py`` as the README starts it,
driven by Debian's chromium (the browser test's helpers, ``convvis_testing/browser.py``), on views
whose results are already cached, as in a class where every student opens the same link.

For each page (Home, Filters with its grid, Activations, Heatmaps, Top k with its scan) it first warms
the view in one session (the lecturer's), makes M reruns there by flipping a widget between two values
whose results are cached, then, with that session still open as in a class, opens N fresh sessions one
after another: first visits (a new browser context each, which also downloads Streamlit's frontend,
3-9 MB of JavaScript), then new tabs of the lecturer's browser (the session alone). Streamlit forgets
its compiled scripts whenever its last session leaves, which a class never does. The server's CPU time
(user + system, all its threads) is read from /proc before and after, once the server has gone quiet.
Goals: <= 0.3 s per fresh session, <= 0.1 s per rerun.

Run: ``python bench/serve_cost.py [--sessions 5] [--reruns 10]``, with ``$CONVVIS_CACHE_DIR``
pointing where the first run may convert MobileNet and compute the views (minutes, once).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, BrowserContext, sync_playwright  # noqa: E402

from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_testing.browser import CLOCK_TICK_S, VIEWPORT, AppPage, cpu_seconds, launch, serve  # noqa: E402

FRESH_GOAL_S, RERUN_GOAL_S = 0.3, 0.1
QUIET_S = 0.6  # the server is idle when its CPU time has not moved for this long


@dataclass(frozen=True)
class View:
    """A page as a student uses it: what a fresh session does after the page's first run, and a
    widget flipped between two values (``flip(app, 0)``, ``flip(app, 1)``) whose results are cached."""
    title: str
    path: str
    show: Callable[[AppPage], None]
    flip: Callable[[AppPage, int], None]


def choose_in(name: str, values: tuple[str, str]) -> Callable[[AppPage, int], None]:
    """A flip that picks ``values[i % 2]`` in the main area's selectbox ``name``."""
    return lambda app, i: app.choose(app.main.get_by_role("combobox", name=name, exact=True), values[i % 2])


def show_home(app: AppPage) -> None:
    app.main.get_by_text("Top-5 predictions").wait_for()


def flip_home(app: AppPage, i: int) -> None:
    app.click(app.main.get_by_text("Only layers with feature maps (4-D output)"))


def show_filters(app: AppPage) -> None:
    """Press Run: the grid comes from the disk cache (computed once, while warming)."""
    app.click(app.main.get_by_role("button", name=re.compile(r"^Run on \d+ filters?$")), timeout_ms=1_800_000)
    app.main.get_by_text(re.compile("strongest first$")).wait_for()


def show_activations(app: AppPage) -> None:
    app.main.get_by_text("Progression through the network").wait_for()


def show_heatmaps(app: AppPage) -> None:
    app.main.get_by_text("Which map to trust", exact=True).wait_for()


def show_top_k(app: AppPage) -> None:
    """The scan's results; while warming, the scan itself when it is not on disk yet."""
    results = app.main.get_by_text(re.compile(r"top \d+ of [\d,]+ images$"))
    scan = app.main.get_by_role("button", name=re.compile(r"^Scan [\d,]+ images on "))
    scan.or_(results).first.wait_for()
    if scan.is_visible():
        app.click(scan, timeout_ms=1_800_000)
    results.wait_for()


def flip_top_k(app: AppPage, i: int) -> None:
    app.fill(app.main.get_by_role("spinbutton", name=re.compile(r"^Filter \(0–")), str(1 + i % 2))


VIEWS = (
    View("Home", "/", show_home, flip_home),
    View("Filters", "/filters", show_filters, choose_in("Filter", ("0", "1"))),
    View("Activations", "/activations", show_activations, choose_in("Colours", ("gray", "viridis"))),
    View("Heatmaps", "/heatmaps", show_heatmaps, choose_in("Colours", ("viridis", "jet"))),
    View("Top k", "/top_k", show_top_k, flip_top_k),
)


def quiet_cpu_seconds(pid: int, timeout_s: float = 30) -> float:
    """The server's CPU time once it has stopped moving (what a request set off has finished)."""
    deadline = time.monotonic() + timeout_s
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - since < QUIET_S and time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
    return last


@dataclass(frozen=True)
class Cost:
    cpu_s: float  # server CPU seconds per event
    wall_s: float  # seconds per event as the student waits, browser included


def measure(pid: int, events: int, run: Callable[[], None]) -> Cost:
    before, start = quiet_cpu_seconds(pid), time.monotonic()
    run()
    wall = time.monotonic() - start
    return Cost((quiet_cpu_seconds(pid) - before) / events, wall / events)


def open_view(browser: BrowserContext, url: str, view: View) -> AppPage:
    """A new session on the view, in a new tab of ``browser``, its cached result shown."""
    app = AppPage(browser.new_page())
    app.open(url + view.path)
    view.show(app)
    app.page.wait_for_load_state("networkidle")  # images and charts fetched
    return app


def first_visit(chromium: Browser, url: str, view: View) -> None:
    browser = chromium.new_context(viewport=VIEWPORT)  # its own profile: nothing cached
    open_view(browser, url, view)
    browser.close()


@dataclass(frozen=True)
class ViewCosts:
    rerun: Cost
    first_visit: Cost  # a fresh browser: Streamlit's frontend is downloaded too
    new_tab: Cost  # a browser that has the frontend cached: the session alone


def view_costs(chromium: Browser, url: str, pid: int, view: View, reruns: int, sessions: int) -> ViewCosts:
    """Warm the view (its first run computes what the cache lacks; both flip values once), time
    ``reruns`` flips in that session, then ``sessions`` first visits and new tabs while it stays open."""
    lecturer = chromium.new_context(viewport=VIEWPORT)
    try:
        app = open_view(lecturer, url, view)
        view.flip(app, 0)
        view.flip(app, 1)
        return ViewCosts(
            rerun=measure(pid, reruns, lambda: [view.flip(app, i) for i in range(reruns)]),
            first_visit=measure(pid, sessions, lambda: [first_visit(chromium, url, view) for _ in range(sessions)]),
            new_tab=measure(pid, sessions, lambda: [open_view(lecturer, url, view).page.close()
                                                    for _ in range(sessions)]))
    finally:
        lecturer.close()


def setup_line() -> str:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    watcher = config.get("server", {}).get("fileWatcherType", "auto (Streamlit's default)")
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    venv = ROOT / ".venv"
    inside = "yes" if venv.is_dir() and not venv.is_symlink() else "no"
    return (f"streamlit run app.py at {commit or 'unknown commit'}; file watcher: {watcher}; "
            f".venv inside the project: {inside}")


def idle_cpu_per_second(pid: int, seconds: float = 10) -> float:
    """What the server spends doing nothing (Streamlit polls its config and secrets files); the
    numbers below include it for the time each event takes."""
    before = quiet_cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5, help="fresh sessions per page")
    parser.add_argument("--reruns", type=int, default=10, help="reruns per page, in one session")
    parser.add_argument("--pages", nargs="*", default=[view.title for view in VIEWS])
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    flags = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("streamlit", "tensorflow"))
    print(setup_line())
    print(f"{cores} CPU cores ({flags}), {versions}; default model, {args.sessions} first visits, "
          f"{args.sessions} new tabs and {args.reruns} reruns per page")
    log = Path(tempfile.gettempdir()) / "convvis-serve-cost.log"  # not in the project, where the watcher would see it
    views = [view for view in VIEWS if view.title in args.pages]
    with serve(log) as served, sync_playwright() as playwright:
        chromium = launch(playwright)
        first_visit(chromium, served.url, VIEWS[0])  # a deep link as the first request misleads Streamlit
        print(f"idle server: {idle_cpu_per_second(served.pid) * 1000:.1f} ms of CPU per second; server log: {log}")
        print(f"{'server CPU (wall)':<18} {'first visit':<16} {'new tab':<9} {'rerun':<17} first visits/min")
        for view in views:
            costs = view_costs(chromium, served.url, served.pid, view, args.reruns, args.sessions)
            first, tab, rerun = costs.first_visit, costs.new_tab, costs.rerun
            print(f"{view.title:<18} {first.cpu_s:4.2f} s ({first.wall_s:4.1f} s)  {tab.cpu_s:4.2f} s   "
                  f"{rerun.cpu_s:5.3f} s ({rerun.wall_s:4.1f} s) {cores * 60 / max(first.cpu_s, CLOCK_TICK_S):6.0f}",
                  flush=True)
        chromium.close()
    print(f"goals: <= {FRESH_GOAL_S} s of server CPU per fresh session, <= {RERUN_GOAL_S} s per rerun; "
          f"first visits/min = {cores} cores × 60 s / CPU per first visit")


if __name__ == "__main__":
    main()
