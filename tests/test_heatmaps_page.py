"""The Heatmaps page: MobileNet's three maps with their faithfulness; an uploaded U-Net and two-head model
explained per kind (an empty region refused without losing the page); a feature model's filter number
starting at the image's strongest filter; the sanity check of the maps shown and a verdict that leaves out those
that fail it; the new methods' settings and Integrated Gradients' completeness check. The models are
test_model_kinds' (session fixtures)."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from app_session import app_on
from convvis_core.images import as_model_sees_it
from convvis_core.models.uploaded import load_model_file
from convvis_core.samples import load_sample
from convvis_ui.pickers import filter_key, layer_key
from test_model_kinds import SIZE


def test_the_page_shows_three_maps_with_their_faithfulness(mobilenet):
    at = app_on("heatmaps")
    at.session_state["convvis_model"] = "mobilenet"
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("status")[0].proto.label == "3 heatmap(s) for Egyptian cat (class 285)"
    labels = [m.label for m in at.metric]
    assert labels == ["Deletion AUC ↓", "Insertion AUC ↑", "ROAD ↑"] * 3
    assert all(0.0 <= float(m.value) <= 1.0 for m in at.metric if "AUC" in m.label)
    assert all(-1.0 <= float(m.value) <= 1.0 for m in at.metric if m.label == "ROAD ↑")  # a difference of probabilities
    assert [h.value for h in at.markdown[:3]] == ["#### Grad-CAM", "#### Grad-CAM++", "#### Layer-CAM"]
    assert at.selectbox(key=layer_key("heatmaps", "mobilenet")).value == "conv_pw_13_relu"  # the shared picker's default
    assert sum(caption.value.startswith("conv_pw_13_relu · ") for caption in at.caption) == 3
    # The sanity check runs without being asked, so the verdict never recommends a map that fails it: with
    # MobileNet's classifier re-initialized, Grad-CAM++'s and Layer-CAM's maps keep Spearman 0.82 and 0.79
    # (measured), Grad-CAM's falls to -0.14.
    verdict = next(m.value for m in at.markdown if "Not recommended whatever their scores" in m.value)
    assert "**Grad-CAM++** and **Layer-CAM**" in verdict and "**Grad-CAM** " in verdict


def test_the_heatmaps_page_explains_each_kind_and_refuses_an_empty_region_without_losing_the_page(unet, two_heads):
    """The page as a user meets it with an uploaded U-Net and a two-head model: a class over a box, a
    box with no pixels (a clear message, the page goes on), then the regression head's unit."""
    at = app_on("heatmaps")
    uploads = {hashlib.sha256(path.read_bytes()).hexdigest(): (path.name, path.read_bytes())
               for path in (unet[1], two_heads[1])}
    digests = list(uploads)
    at.session_state["convvis_uploads"] = uploads
    at.session_state["convvis_model"] = f"upload:{digests[0]}"
    at.run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    assert "region's mean probability" in " ".join(c.value for c in at.caption)
    at.radio(key=f"heatmaps_region_upload:unet.keras#{digests[0][:16]}").set_value("box").run()
    assert not at.exception and not at.error and at.status[0].proto.label.startswith("3 heatmap(s) for class 1 over rows")
    at.slider(key=f"heatmaps_rows_upload:unet.keras#{digests[0][:16]}").set_value((5, 5)).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The region holds no pixels: draw or pick a region that covers part of the "
                                           "image."]
    at = app_on("heatmaps")  # another user, with the two-head model
    at.session_state["convvis_uploads"] = uploads
    at.session_state["convvis_model"] = f"upload:{digests[1]}"
    at.run()
    at.selectbox(key=f"_convvis_output_{digests[1]}").select_index(1).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.status[0].proto.label == "3 heatmap(s) for output unit 0"
    assert [m.label for m in at.metric] == ["Deletion AUC ↓", "Insertion AUC ↑", "ROAD ↑"] * 3


def test_the_heatmaps_page_starts_a_feature_models_filter_at_the_images_strongest_one(tmp_path):
    """A model without a head (its output: a stride-2 map) is explained by one filter: the page's filter number
    starts at the filter most active on the shown image (checked by a pass of the Keras model here), a filter the
    user types is the one explained, and the next image starts at its own strongest filter."""
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(image)
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    model = keras.Model(image, features)
    passes, bright_or_dark = np.zeros((3, 3, 1, 6), np.float32), np.zeros((3, 3, 6, 8), np.float32)
    passes[1, 1, 0, 0] = 1  # conv1's filter 0 passes the pixels on; conv2's filter 0 likes bright, 1 dark images
    bright_or_dark[1, 1, 0, 0], bright_or_dark[1, 1, 0, 1] = 1.5, -1.0
    model.get_layer("conv1").set_weights([passes, np.zeros(6, np.float32)])
    model.get_layer("conv2").set_weights([bright_or_dark, np.array([0, 0.8, 0, 0, 0, 0, 0, 0], np.float32)])
    path = tmp_path / "features.keras"
    model.save(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()

    def strongest(sample: str) -> int:
        seen = np.asarray(as_model_sees_it(load_sample(sample), load_model_file(str(path)).info), np.float32)
        return int(np.argmax(np.asarray(model(seen.reshape(1, SIZE, SIZE, 1) / 255.0)).mean(axis=(0, 1, 2))))

    expected = {sample: strongest(sample) for sample in ("hubble", "china")}
    assert len(set(expected.values())) == 2, expected  # the two images' strongest filters differ
    at = app_on("heatmaps")
    at.session_state["convvis_uploads"] = {digest: (path.name, data)}
    at.session_state["convvis_model"] = f"upload:{digest}"
    at.session_state["convvis_image_source"] = "hubble"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="_convvis_heatmaps_source").value == "hubble"
    picker = next(number for number in at.number_input if number.label.startswith("Filter (0–7)"))
    assert picker.value == expected["hubble"]
    assert picker.key.startswith(filter_key("heatmaps", f"upload:{path.name}#{digest[:16]}", "conv2"))
    picker.set_value((expected["hubble"] + 1) % 8).run()
    assert not at.exception and f"filter {(expected['hubble'] + 1) % 8} of conv2" in at.status[0].proto.label
    at.selectbox(key="_convvis_heatmaps_source").set_value("china").run()  # another image: its own strongest filter
    assert not at.exception and next(number.value for number in at.number_input
                                     if number.label.startswith("Filter (0–7)")) == expected["china"]


def test_the_page_checks_the_maps_shown_and_its_verdict_leaves_out_those_that_fail(lenet):
    at = app_on("heatmaps", timeout=120)
    at.session_state["convvis_model"] = "lenet_mnist"
    at.session_state["convvis_image_source"] = "digit_4"
    at.query_params["trust"] = "1"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    expander = next(e for e in at.expander if e.label == "Can I trust these maps?")
    text = " ".join(m.value for m in expander.markdown)
    assert "Grad-CAM++ does not depend on the model above pool2" in text  # measured: 0.99 on this digit
    assert "Grad-CAM depends on the model above pool2" in text
    assert len(expander.get("plotly_chart")) == 1
    assert list(expander.dataframe[0].value["method"]) == ["Grad-CAM", "Grad-CAM++", "Layer-CAM"]
    verdict_text = " ".join(m.value for m in at.markdown)
    assert "Not recommended whatever their scores: **Grad-CAM++**" in verdict_text


def test_the_page_offers_the_new_methods_settings_and_shows_the_completeness_check():
    at = app_on("heatmaps")
    at.session_state["convvis_model"] = "lenet_mnist"
    at.run()
    at.multiselect[0].set_value(["integrated_gradients", "occlusion", "rise"]).run()
    assert not at.exception, at.exception
    assert at.number_input(key="heatmaps_patch_lenet_mnist").value == 4  # a seventh of 28 px
    assert at.number_input(key="heatmaps_rise_masks").value == 500
    assert any(caption.value == "Occlusion: 169 patch positions, one forward pass each." for caption in at.caption)
    at.number_input(key="heatmaps_ig_steps").set_value(2)
    next(box for box in at.selectbox if box.label == "Deleted pixels become").set_value("black")
    at.number_input(key="heatmaps_patch_lenet_mnist").set_value(7)
    at.run()
    assert not at.exception, at.exception
    assert [h.value for h in at.markdown if h.value.startswith("####")][:3] == [
        "#### Integrated Gradients", "#### Occlusion", "#### RISE"]
    assert sum(caption.value.startswith("Completeness: Σ attributions") for caption in at.caption) == 1
    assert any("more than 5%" in warning.value for warning in at.warning)
    assert any(caption.value.startswith("Occlusion: 64 patch positions") for caption in at.caption)  # 7 px, stride 3
