"""A fake camera for Chromium: the bundled cat photo as a .y4m video, which Chromium plays as the
webcam when launched with :func:`fake_camera_args`. Shared by ``tests/test_live_page.py`` (the Live
page's browser test) and ``bench/live_fps.py`` (frames per second per viewer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from convvis_core.samples import load_sample


MARK = slice(0, 64)  # rows and columns of the top-left square that :func:`fake_camera_file` marks
MARK_LEVELS = 15  # the square's brightness repeats every 15 frames (a second of video)
MARK_STEP = 14  # brightness levels between one frame's square and the next


def fake_camera_file(path: str | Path, frames: int = 30, marked: bool = False) -> np.ndarray:
    """The cat photo as a .y4m video (YUV4MPEG2, I420, 15 fps) for Chromium's fake camera; the RGB frame it shows.

    ``marked``: a grey square in the top-left corner changes brightness every frame, by ``MARK_STEP``
    levels or more, so a viewer of the processed video can tell a newly processed frame from a repeated one."""
    image = load_sample("chelsea").convert("RGB").resize((640, 480), Image.BILINEAR)
    ycc = np.array(image.convert("YCbCr"))
    if marked:
        ycc[MARK, MARK, 1:] = 128  # grey: no colour in the square
    with open(path, "wb") as video:
        video.write(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
        for index in range(frames):
            if marked:
                ycc[MARK, MARK, 0] = 16 + MARK_STEP * (index % MARK_LEVELS)
            planes = ycc[..., 0].tobytes() + ycc[::2, ::2, 1].tobytes() + ycc[::2, ::2, 2].tobytes()
            video.write(b"FRAME\n" + planes)
    return np.asarray(image)


def fake_camera_args(path: str | Path) -> list[str]:
    """Chromium flags that grant the camera without asking and play ``path`` (a .y4m) as its picture."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={path}"]
