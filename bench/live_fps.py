"""Live camera speed: the per-frame processing function alone (frame in → overlay + top-5 out), on
MobileNet at 224 px, against a plain prediction of the same frame; then whole viewers, through
``streamlit run`` and fake-camera Chromium sessions, one and then two at once.

A 640×480 frame (the bundled cat photo) goes through ``LiveProcessor.process`` (conversion to the
model's input, one traced forward + backward pass, the map, the overlay at the frame's size) and,
alternately, through a plain prediction (the same conversion and the same traced forward pass, no
gradient, no map). Both are warmed up first. Prints the median and 95th percentile time per frame,
frames per second, and the ratio to the plain prediction (goal: >= 15 frames/s for Grad-CAM, ratio
<= 1.6x).

Viewers: ``streamlit run app.py`` on a free port, and Debian's chromium playing the cat photo as its
camera (a 15 fps .y4m), one browser context per viewer (so one Streamlit session each) on
``/live?model=mobilenet`` (Grad-CAM), Start pressed. With one viewer, then with a second one added,
it measures for ``--seconds`` each viewer's frames per second: as the server counts them (the page's
"frames/s reached", read every second and averaged) and as the browser presents them, counted in the
page with ``requestVideoFrameCallback``: *new* frames, whose corner square (which the camera video
changes every frame) changed, and *all*, which also counts the last processed frame that
streamlit-webrtc sends again for each camera frame that came in while the next one was processed.
Goal: >= 8 new frames/s each with two viewers. Server and browser share the machine's cores, as on a
lecturer's laptop: the CPU each took is printed, and the load average before and during, since other
work on a shared machine lowers every number.

Run: ``python bench/live_fps.py [--frames 200] [--methods gradcam layercam saliency] [--viewers 2]
[--seconds 20]`` (``--viewers 0`` skips the browser part), with ``$CONVVIS_CACHE_DIR`` where MobileNet
is (or may be) converted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import Browser, Locator, Page, sync_playwright  # noqa: E402

from convvis_core.batches import pixel_batch  # noqa: E402
from convvis_core.cam.base import probe_for  # noqa: E402
from convvis_core.cam.targets import ClassTarget  # noqa: E402
from convvis_core.live import LiveProcessor, LiveSettings  # noqa: E402
from convvis_core.models import load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402
from convvis_testing.browser import CHROMIUM, CHROMIUM_ARGS, AppPage, cpu_seconds, serve  # noqa: E402
from convvis_testing.camera import MARK, MARK_STEP, fake_camera_args, fake_camera_file  # noqa: E402

VIEWER_GOAL_FPS = 8.0
OVERLAY_ALPHA = 0.5  # the Live page's default opacity: the mark's steps are this much fainter in its video
SETTLE_S = 5.0  # after a viewer starts, before measuring: its first frames trace the model
SERVER_NUMBERS = re.compile(r"([\d.]+) frames/s reached · model (\d+) ms per frame")
# Installs (once) counters of the returned video's frames as the page presents them, all of them and
# those whose marked square (convvis_testing.camera) changed brightness, i.e. newly processed frames:
# streamlit-webrtc sends the last processed frame again for each camera frame that came in meanwhile.
# Reads them with the page's clock.
COUNT_FRAMES = """(video, [mark, step]) => {
    if (video.convvisFrames === undefined) {
        const context = new OffscreenCanvas(8, 8).getContext("2d", {willReadFrequently: true});
        let last = -1;
        video.convvisFrames = 0;
        video.convvisNew = 0;
        const counted = () => {
            context.drawImage(video, mark / 4, mark / 4, mark / 2, mark / 2, 0, 0, 8, 8);  // the square's middle
            const pixels = context.getImageData(0, 0, 8, 8).data;
            let level = 0;
            for (let i = 0; i < pixels.length; i += 4) level += (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 192;
            video.convvisFrames += 1;
            video.convvisNew += Math.abs(level - last) > step / 2 ? 1 : 0;
            last = level;
            video.requestVideoFrameCallback(counted);
        };
        video.requestVideoFrameCallback(counted);
    }
    return [performance.now() / 1000, video.convvisFrames, video.convvisNew];
}"""


def load_average() -> str:
    """Over 1, 5 and 15 minutes: on a shared machine, how much else ran (it lowers every number here)."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def function_alone(frames: int, methods: list[str]) -> None:
    """``LiveProcessor.process`` against a plain prediction, alternated, per method."""
    loaded = load_model("mobilenet")
    frame = np.asarray(load_sample("chelsea").convert("RGB").resize((640, 480), Image.BILINEAR))
    processor = LiveProcessor.for_model(loaded)
    layer = processor.settings.layer
    probe = probe_for(loaded, layer, ClassTarget())

    def predict() -> None:
        probe.outputs(pixel_batch(Image.fromarray(frame), loaded.info, "stretch", dtype=np.float32))

    print(f"MobileNet, 224 px input, 640×480 frames, layer {layer}, {frames} frames each, alternated")
    print(f"{'method':10} {'median':>9} {'p95':>9} {'frames/s':>9} {'model pass':>11} {'plain predict':>14} {'ratio':>6}")
    for method in methods:
        processor.configure(LiveSettings(layer, method))
        processor.process(frame), predict()  # warm up: trace both
        ours, plain, model = [], [], []
        for _ in range(frames):
            started = time.perf_counter()
            result = processor.process(frame)
            ours.append(time.perf_counter() - started)
            model.append(result.model_s)
            started = time.perf_counter()
            predict()
            plain.append(time.perf_counter() - started)
        median, p95, base = np.median(ours), np.percentile(ours, 95), np.median(plain)
        print(f"{method:10} {median * 1000:7.1f} ms {p95 * 1000:6.1f} ms {1 / median:9.1f} "
              f"{np.median(model) * 1000:8.1f} ms {base * 1000:11.1f} ms {median / base:5.2f}x")
    print("goals: Grad-CAM >= 15 frames/s; ratio to a plain predict <= 1.6x")


@dataclass(frozen=True)
class Viewer:
    """One viewer: a browser context of its own (so its own Streamlit session), the Live page playing."""
    page: Page
    video: Locator  # the processed video the server sends back

    @classmethod
    def start(cls, chromium: Browser, url: str) -> "Viewer":
        page = chromium.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        AppPage(page).open(url + "/live?model=mobilenet")
        component = page.frame_locator("iframe[title*='webrtc']")
        component.get_by_role("button", name="Start").click()
        page.get_by_test_id("stMain").get_by_text("frames/s reached").wait_for(timeout=120_000)
        viewer = cls(page, component.locator("video").last)
        viewer.received()  # starts counting
        return viewer

    def received(self) -> tuple[float, int, int]:
        """The page's clock in seconds, the returned video's frames presented so far, and how many were new."""
        clock, presented, new = self.video.evaluate(COUNT_FRAMES, [MARK.stop, MARK_STEP * OVERLAY_ALPHA])
        return clock, presented, new

    def server_numbers(self) -> tuple[float, float] | None:
        """The page's "frames/s reached" and model milliseconds per frame, as last shown."""
        found = SERVER_NUMBERS.search(self.page.get_by_test_id("stMain").inner_text())
        return (float(found[1]), float(found[2])) if found else None


def descendants(pid: int) -> set[int]:
    """The processes started under ``pid``, at any depth, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):  # gone meanwhile
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cpu_of(pids: set[int]) -> dict[int, float]:
    """CPU seconds of each process still running."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except OSError:  # gone meanwhile
            continue
    return seconds


def measure(viewers: list[Viewer], seconds: float, server: int) -> None:
    """Each viewer's frames per second over ``seconds``: processed as the server counts them, new and
    all frames as the browser presents them; then what the server and the browser (Chromium and
    Playwright, all this process's other descendants) spent of the CPU meanwhile."""
    time.sleep(SETTLE_S)
    browser = descendants(os.getpid()) - {server} - descendants(server)
    before = [viewer.received() for viewer in viewers]
    cpu_before, started = cpu_of(browser | {server}), time.monotonic()
    readings: list[list[tuple[float, float]]] = [[] for _ in viewers]  # (frames/s, model ms) each second
    loads = []
    while time.monotonic() < started + seconds:
        time.sleep(1)
        loads.append(os.getloadavg()[0])
        for viewer, numbers in zip(viewers, readings):
            if (read := viewer.server_numbers()) is not None:
                numbers.append(read)
    after = [viewer.received() for viewer in viewers]
    cpu_after, elapsed = cpu_of(browser | {server}), time.monotonic() - started
    for number, (first, last, numbers) in enumerate(zip(before, after, readings), start=1):
        page_s = last[0] - first[0]
        presented, new = (last[1] - first[1]) / page_s, (last[2] - first[2]) / page_s
        processed = np.mean([fps for fps, _ in numbers])
        met = "yes" if min(processed, new) >= VIEWER_GOAL_FPS else "no"
        print(f"{len(viewers):7} {number:6} {processed:9.1f} {new:9.1f} {presented:9.1f} "
              f"{np.median([ms for _, ms in numbers]):8.0f} ms  {met}")
    spent = {pid: cpu_after[pid] - cpu_before[pid] for pid in cpu_after.keys() & cpu_before.keys()}
    by_server = spent.pop(server, 0.0)
    print(f"{'':14} CPU: server {by_server / elapsed:.0%}, browser {sum(spent.values()) / elapsed:.0%} of one core; "
          f"load average up to {max(loads):.1f}", flush=True)


def through_browsers(count: int, seconds: float) -> None:
    """One viewer, then up to ``count`` at once, on ``streamlit run`` with Chromium's fake camera."""
    with tempfile.TemporaryDirectory(prefix="convvis-live-fps-") as folder:
        video = Path(folder) / "cat.y4m"
        fake_camera_file(video, marked=True)
        log = Path(folder) / "server.log"  # not in the project, where Streamlit's file watcher would see it
        print(f"\nViewers: streamlit run, Chromium's fake camera (cat photo, 640×480, 15 fps), MobileNet, Grad-CAM, "
              f"{seconds:.0f} s each\nload average before: {load_average()}")
        print(f"{'':14} {'frames/s: server':>16} {'browser new / all':>19} {'model pass':>11}")
        print(f"{'viewers':>7} {'viewer':>6} {'processed':>9} {'new':>9} {'all':>9} {'median':>11}  "
              f">= {VIEWER_GOAL_FPS:.0f}")
        with serve(log) as served, sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                                  args=CHROMIUM_ARGS + fake_camera_args(video))
            viewers: list[Viewer] = []
            for _ in range(count):
                viewers.append(Viewer.start(chromium, served.url))
                measure(viewers, seconds, served.pid)
            chromium.close()
    print(f"goal: >= {VIEWER_GOAL_FPS:.0f} new frames/s per viewer with 2 viewers, by server and browser alike\n"
          "all: with the last processed frame sent again for each camera frame that came in meanwhile\n"
          "load average (1 min): this bench's own server and browser included")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--methods", nargs="+", default=["gradcam", "layercam", "saliency"])
    parser.add_argument("--viewers", type=int, default=2, help="fake-camera Chromium viewers at most (0: none)")
    parser.add_argument("--seconds", type=float, default=20, help="measured per number of viewers")
    args = parser.parse_args()
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process; load average {load_average()}")
    function_alone(args.frames, args.methods)
    if args.viewers:
        through_browsers(args.viewers, args.seconds)


if __name__ == "__main__":
    main()
