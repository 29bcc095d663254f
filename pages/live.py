"""Live: the camera's picture as it moves, with where the model looks (Grad-CAM, Layer-CAM or the
vanilla gradient), its top-5, and a layer's strongest channels; a frame can be frozen and opened on
Heatmaps or Activations. Falls back to snapshots where live video cannot connect."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import streamlit as st
from PIL import Image

from convvis_core.cam.methods import METHODS
from convvis_core.images import open_image, to_png_bytes
from convvis_core.layers import default_layer
from convvis_core.live import LIVE_METHODS, LiveFrame, LiveProcessor, LiveSettings
from convvis_ui import links
from convvis_ui.feedback import user_errors
from convvis_ui.live_stream import (WEBRTC_MISSING, camera_blocked, live_stream, picture, processor)
from convvis_ui.page import presenting, start_page
from convvis_ui.pickers import layer_picker

CAMERAS = {"live": "live video", "snapshots": "snapshots"}
COLORMAPS = ("jet", "viridis", "inferno")
CONNECT_PATIENCE_S = 20  # after this long connecting, the page suggests snapshots
_CONNECTING_SINCE = "_convvis_live_connecting_since"


def top_five(result: LiveFrame) -> None:
    """The top-5 as bars, most probable first."""
    for prediction in result.top:
        st.progress(min(max(prediction.probability, 0.0), 1.0),
                    text=f"{prediction.class_name} · {prediction.probability:.1%}")


def timings(result: LiveFrame, rate: float | None) -> None:
    reached = f"**{rate:.1f} frames/s** reached · " if rate is not None else ""
    st.caption(f"{reached}model {result.model_s * 1000:.0f} ms per frame (forward + backward), whole frame "
               f"{result.total_s * 1000:.0f} ms · {METHODS[result.settings.method].title} of "
               f"{result.top[0].class_name} at {result.settings.layer}")
    if result.problem:
        st.caption(f":material/block: {result.problem}")


@st.fragment(run_every=0.5)
def live_numbers(chosen: LiveProcessor, playing: bool, connecting: bool) -> None:
    """The newest frame's top-5, the frames per second reached and the model's time per frame, twice a
    second, read from the processor (the frame thread never calls Streamlit)."""
    if connecting and not playing:
        waited = time.monotonic() - st.session_state.get(_CONNECTING_SINCE, time.monotonic())
        if waited > CONNECT_PATIENCE_S:
            st.warning(f"Live video has not connected after {waited:.0f} s. Browser and server reach each other "
                       "directly (no STUN server is configured): across networks or firewalls set "
                       "`$CONVVIS_ICE_SERVERS` (docs/serving.md), or choose **snapshots** above.",
                       icon=":material/link_off:")
        else:
            st.caption("Connecting…")
        return
    result = chosen.latest
    if not playing or result is None:
        st.caption("Press **Start** and allow the camera: the model's top-5 and timings appear here.")
        return
    top_five(result)
    timings(result, chosen.frames_per_second())


def freeze_buttons(latest: Callable[[], LiveFrame | None], layer: str) -> None:
    """Open the newest frame (``latest()`` when clicked) on Heatmaps or Activations, as if it had been uploaded."""
    to_heatmaps = st.button("Freeze: open on Heatmaps", icon=":material/local_fire_department:", width="stretch")
    to_activations = st.button("Freeze: open on Activations", icon=":material/grid_on:", width="stretch")
    if to_heatmaps or to_activations:
        result = latest()
        if result is None:
            st.warning("No frame yet: start the camera first.", icon=":material/videocam_off:")
            return
        name = f"camera-{time.strftime('%H%M%S')}.png"
        links.open_with_image(links.HEATMAPS if to_heatmaps else links.ACTIVATIONS, name,
                              to_png_bytes(Image.fromarray(result.frame)), layer)


def snapshots(chosen: LiveProcessor, why: str, layer: str) -> None:
    """The fallback: the browser's camera as still pictures, each through the same processor."""
    st.info(f"Snapshots instead of live video: {why}.", icon=":material/photo_camera:")
    shot = st.camera_input("Take a snapshot", key="live_snapshot")
    result = None
    if shot is not None:
        with user_errors(stop=True):
            frame = np.asarray(open_image(shot.getvalue(), name="the snapshot").convert("RGB"))
        result = chosen.process(frame)
        shown, numbers = st.columns([3, 2] if not presenting() else [1, 1])
        shown.image(picture(result), caption="The snapshot with the map over it"
                    + (", and the layer's strongest channels" if result.grid is not None else ""),
                    use_container_width=True)
        with numbers:
            top_five(result)
            timings(result, None)
    freeze_buttons(lambda: result, layer)


def main() -> None:
    start = start_page("Live", "Hold something up to the camera: as it moves, the model's top-5, where it looks, "
                               "and what one layer sees.", "layer with feature maps")
    loaded, by_path, info = start.loaded, start.layers, start.info
    if info.output_info.kind != "classes":
        st.error(f"{info.display_name} has no class output: the live view explains the top class of each frame. "
                 "Pick a classifier in the sidebar.")
        st.stop()

    asked_method = st.query_params.get("method")
    links.consume("live_method", asked_method if asked_method in LIVE_METHODS else None)
    asked_camera = st.query_params.get("camera")
    links.consume("live_camera", asked_camera if asked_camera in CAMERAS else None)
    controls = st.expander("Settings") if presenting() else st.container()
    with controls:
        pick_layer, pick_method, pick_camera = st.columns([3, 2, 2])
        layer = layer_picker("live", info.key, by_path, lambda: default_layer(loaded.model).path, container=pick_layer,
                             remember=True, write_url=True,
                             help="The layer the map is computed at, and whose channels the grid shows.")
        method = pick_method.selectbox("Map", LIVE_METHODS, format_func=lambda m: METHODS[m].title, key="live_method",
                                       help="One backward pass per frame each: Grad-CAM (coarse, class-discriminative), "
                                            "Layer-CAM (sharper at early layers), Vanilla gradient (pixels; through the "
                                            "whole network, so slower).")
        camera = pick_camera.radio("Camera", list(CAMERAS), format_func=CAMERAS.get, horizontal=True, key="live_camera",
                                   help="Live video streams the camera to the server (WebRTC). Snapshots send one "
                                        "picture at a time: for where live video cannot connect.")
        grid_on, opacity, colours = st.columns([2, 3, 2])
        grid = grid_on.toggle("Strongest channels", key="live_grid",
                              help="The layer's 16 most active channels, tiled beside the picture.")
        alpha = opacity.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="live_alpha")
        colormap = colours.selectbox("Colours", COLORMAPS, key="live_colormap")
    links.reflect(method=method, camera=None if camera == "live" else camera)

    with user_errors(stop=True):
        chosen = processor(loaded, LiveSettings(layer, method, grid, alpha, colormap))
    why = (WEBRTC_MISSING or camera_blocked()) if camera == "live" else "chosen above"
    if why is not None:
        snapshots(chosen, why, layer)
        return

    if presenting():
        video, numbers = st.container(), st.container()
    else:
        video, numbers = st.columns([3, 2])
    with video:
        context = live_stream("live", chosen, presenting())
    playing, connecting = context.state.playing, context.state.signalling
    if connecting and not playing:
        st.session_state.setdefault(_CONNECTING_SINCE, time.monotonic())
    else:
        st.session_state.pop(_CONNECTING_SINCE, None)
    with numbers:
        live_numbers(chosen, playing, connecting)
        freeze_buttons(lambda: chosen.latest, layer)
    st.caption("Frames that arrive while one is processed are dropped: the video shows the newest frame's map. "
               "No live video? Choose **snapshots** (docs/serving.md says why it may not connect).")


main()
