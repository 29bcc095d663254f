"""The Live page's camera: the browser's camera streamed to the server with streamlit-webrtc (aiortc),
each frame through the viewer's :class:`~convvis_core.live.LiveProcessor`, and the result streamed back.

WebRTC needs no ICE server between a browser and a server on the same machine or network: both offer
their own addresses (host candidates). So none is configured by default, and nothing is asked of the
internet (streamlit-webrtc would otherwise use Google's public STUN server). An operator serving
remote viewers across NAT sets ``$CONVVIS_ICE_SERVERS``: comma-separated ``stun:`` URLs, or a JSON list
of RTCIceServer objects (``[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]``).

The frame callback runs on streamlit-webrtc's worker thread (one per viewer): it touches only the
processor (thread-safe, settings under its lock), never Streamlit. Frames that arrived while one was
processed are dropped, never queued: only the newest is processed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from urllib.parse import urlparse

import numpy as np
import streamlit as st

from convvis_core.live import LiveFrame, LiveProcessor, LiveSettings
from convvis_core.models import LoadedModel


ICE_SERVERS_VARIABLE = "CONVVIS_ICE_SERVERS"
SECURE_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
_PROCESSOR = "convvis_live_processor"  # session state: (model identity, LiveProcessor) of this viewer
LOGGER = logging.getLogger(__name__)

def _import_srtp() -> None:
    """pylibsrtp (under aiortc) carries its own OpenSSL but calls it through exported symbols, so once
    TensorFlow is loaded (its libtensorflow_framework exports BoringSSL's HMAC_Init_ex & co. globally)
    its self-test at import calls TensorFlow's copy and the process segfaults. Loaded with
    RTLD_DEEPBIND it binds its own symbols first, whatever was imported before."""
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
    try:
        import pylibsrtp  # noqa: F401
    finally:
        sys.setdlopenflags(flags)


try:
    _import_srtp()
    import av
    from streamlit_webrtc import WebRtcMode, webrtc_streamer
    WEBRTC_MISSING = None
except ImportError as error:  # the app still works: the page falls back to snapshots
    WEBRTC_MISSING = f"streamlit-webrtc is not importable ({error})"


def ice_servers(value: str | None = None) -> list[dict]:
    """The ICE servers the operator set in ``$CONVVIS_ICE_SERVERS`` (none by default)."""
    value = (os.environ.get(ICE_SERVERS_VARIABLE, "") if value is None else value).strip()
    if not value:
        return []
    if value.startswith("["):
        servers = json.loads(value)
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ValueError(f"${ICE_SERVERS_VARIABLE}: a JSON list of objects with 'urls' is expected")
        return servers
    return [{"urls": url.strip()} for url in value.split(",") if url.strip()]


def rtc_configuration() -> dict:
    """For both the browser and the server (aiortc): the operator's ICE servers, or none."""
    return {"iceServers": ice_servers()}


def camera_blocked() -> str | None:
    """Why the browser will not give this page the camera (it does only to localhost or HTTPS), or None."""
    url = urlparse(st.context.url or "")
    if url.scheme == "https" or (url.hostname or "localhost") in SECURE_HOSTS:
        return None
    return (f"this page is served over plain HTTP from {url.hostname}, and browsers give the camera only to "
            "localhost or HTTPS pages (see docs/serving.md for serving HTTPS in a classroom)")


def processor(loaded: LoadedModel, settings: LiveSettings) -> LiveProcessor:
    """This viewer's processor (one per session, made again when the model changes), set to ``settings``."""
    kept = st.session_state.get(_PROCESSOR)
    if kept is None or kept[0] != loaded.identity:
        kept = (loaded.identity, LiveProcessor(loaded, settings))
        st.session_state[_PROCESSOR] = kept
    kept[1].configure(settings)
    return kept[1]


def picture(result: LiveFrame) -> np.ndarray:
    """What the viewer sees of a frame: the overlay, with the channel grid beside it when asked."""
    return result.overlay if result.grid is None else np.concatenate([result.overlay, result.grid], axis=1)


def live_stream(key: str, chosen: LiveProcessor, presenting: bool):
    """The WebRTC streamer (camera in, processed video out); its context (``.state.playing``)."""
    async def newest_only(frames: list["av.VideoFrame"]) -> list["av.VideoFrame"]:
        frame = frames[-1]  # older frames that queued up while the last one was processed are dropped
        try:
            shown = picture(chosen.process(frame.to_ndarray(format="rgb24")))
        except Exception:  # a frame the model cannot take must not end the stream; the log says why
            LOGGER.exception("Live frame failed")
            return [frame]
        return [av.VideoFrame.from_ndarray(shown, format="rgb24")]

    style = {"width": "100%", "maxHeight": "85vh", "objectFit": "contain"} if presenting else {"width": "100%"}
    return webrtc_streamer(
        key=key, mode=WebRtcMode.SENDRECV, rtc_configuration=rtc_configuration(),
        queued_video_frames_callback=newest_only, async_processing=True,
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
        video_html_attrs={"autoPlay": True, "controls": False, "muted": True, "style": style},
        sendback_audio=False)
