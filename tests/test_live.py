"""The Live page's per-frame processor against independent oracles (the Heatmaps page's own Grad-CAM
and overlay, ``predict``'s top-5), LeNet's grey frames, no re-trace across frames, its worker freeing
what it held (the page itself: test_live_page.py)."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from PIL import Image

from convvis_core import live
from convvis_core.cam.methods import heatmap
from convvis_core.live import LiveProcessor, LiveSettings
from convvis_core.predictions import top_k
from convvis_core.presentation.overlays import overlay
from convvis_core.samples import load_sample


def camera_frame(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The bundled cat photo as a camera would give it: RGB uint8 at 640×480."""
    return np.asarray(load_sample("chelsea").convert("RGB").resize(size, Image.BILINEAR))


@pytest.mark.parametrize("method", ["gradcam", "layercam", "saliency"])
def test_frame_overlay_equals_the_heatmaps_page_map_and_top5_equals_predict(mobilenet, method):
    frame = camera_frame()
    processor = LiveProcessor.for_model(mobilenet, method=method, alpha=0.5, colormap="jet")
    result = processor.process(frame)
    image = Image.fromarray(frame)
    expected = heatmap(mobilenet, image, method, layer=processor.settings.layer)
    assert expected.target.index == result.explained == result.top[0].class_index
    drawn = np.asarray(overlay(image, expected.values, 0.5, "jet")).astype(int)
    assert result.overlay.shape == frame.shape
    difference = np.abs(drawn - result.overlay)
    # float round-off only: the traced pass runs fused kernels, the page's eager pass does not, and the
    # saliency gradient crosses the whole network; a different map would differ by tens on average
    assert difference.max() <= 3 and difference.mean() < 0.05, (difference.max(), difference.mean())
    predicted = top_k(mobilenet, image)
    assert [p.class_index for p in result.top] == [p.class_index for p in predicted]
    np.testing.assert_allclose([p.probability for p in result.top], [p.probability for p in predicted], atol=1e-5)
    assert "cat" in result.top[0].class_name
    assert np.abs(result.overlay.astype(int) - frame).mean() > 10  # the map is drawn over the frame


def test_frames_do_not_retrace_and_layer_cam_shares_grad_cams_pass(mobilenet):
    processor = LiveProcessor.for_model(mobilenet)
    frame = camera_frame()
    processor.process(frame)
    before = live.traces()
    rng = np.random.default_rng(0)
    for _ in range(5):
        processor.process(np.clip(frame + rng.integers(-20, 20, frame.shape), 0, 255).astype(np.uint8))
    processor.configure(LiveSettings(processor.settings.layer, "layercam", grid=True))
    result = processor.process(frame)
    assert live.traces() == before  # same pass, same shapes: no trace
    assert result.grid is not None and result.grid.shape[0] == frame.shape[0] and result.grid.dtype == np.uint8


def test_settings_change_between_frames_from_another_thread(mobilenet):
    processor = LiveProcessor.for_model(mobilenet)
    frame = camera_frame((320, 240))
    results = []
    worker = threading.Thread(target=lambda: results.extend(processor.process(frame) for _ in range(4)))
    worker.start()
    processor.configure(LiveSettings("conv_pw_11_relu", "gradcam"))
    worker.join()
    assert len(results) == 4 and processor.latest is results[-1]
    assert processor.process(frame).settings.layer == "conv_pw_11_relu"


def test_grey_model_takes_colour_frames_as_uploads(lenet):
    frame = np.zeros((480, 640, 3), np.uint8)
    digit = np.asarray(load_sample("digit_7").convert("L").resize((480, 480)))
    frame[:, 80:560] = digit[..., None]  # a white 7 on black, in colour, as a camera gives it
    processor = LiveProcessor.for_model(lenet, grid=True)
    result = processor.process(frame)
    assert result.overlay.shape == frame.shape and result.grid is not None
    predicted = top_k(lenet, Image.fromarray(frame))
    assert [p.class_index for p in result.top] == [p.class_index for p in predicted]
    assert result.top[0].class_name == "7"


def test_a_classifier_is_required(lenet):
    from convvis_core.errors import ConvVisError
    from convvis_core.models import load_model

    hed = load_model("vgg16_hed")
    with pytest.raises(ConvVisError, match="not class"):
        LiveProcessor.for_model(hed)


def test_a_dropped_processor_frees_its_frames(lenet):
    """A viewer's processor keeps one frame; once the viewer is gone nothing refers to it."""
    import weakref

    processor = LiveProcessor.for_model(lenet)
    processor.process(np.zeros((48, 64, 3), np.uint8) + 128)
    gone = weakref.ref(processor)
    del processor
    gc.collect()
    assert gone() is None
