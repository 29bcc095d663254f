"""The Compare page: an uploaded fine-tuned LeNet against LeNet, models that read different images (a
message), and a model with itself on an uploaded archive (CKA 1, both models' pictures)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from app_session import app_on
from convvis_ui.cached import digest_of
from convvis_ui.dataset_picker import dataset_key


def test_compare_page_with_an_uploaded_fine_tuned_model(inverted_tuned, tmp_path) -> None:
    path = tmp_path / "inverted.keras"
    inverted_tuned.model.save(path)
    data = path.read_bytes()
    digest = digest_of(data)
    at = app_on("compare", timeout=300)
    at.session_state["convvis_model"] = "lenet_mnist"
    at.session_state["convvis_uploads"] = {digest: ("inverted.keras", data)}
    at.session_state["convvis_other_model"] = f"upload:{digest}"
    at.run()
    assert not at.exception, at.exception
    at.slider[0].set_value(64)
    at.button(key="compare_run").click().run()
    assert not at.exception, at.exception
    at.selectbox(key="compare_cam_layer_lenet_mnist").set_value("conv2_relu").run()
    table = at.dataframe[0].value
    assert list(table["layer"])[:2] == ["conv1", "conv1_relu"]
    assert all(0 < value < 1 for value in table["CKA"])
    assert at.query_params.get("model") in ("lenet_mnist", ["lenet_mnist"]) and "other" not in at.query_params
    assert any("#" in markdown.value and "activation change" in markdown.value for markdown in at.markdown)
    assert len(at.dataframe) == 3  # the CKA table and the top-5 of each model
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[-3:] == ["Grad-CAM, A", "Grad-CAM, B", "difference |B − A|"], (captions, [e.value for e in at.error])


def test_compare_page_different_inputs_is_a_message() -> None:
    at = app_on("compare", timeout=300)
    at.query_params["model"] = "lenet_mnist"
    at.query_params["other"] = "mobilenet"
    at.session_state["convvis_model"] = "lenet_mnist"
    at.session_state["convvis_other_model"] = "mobilenet"
    at.run()
    assert not at.exception, at.exception
    assert any("different images" in error.value for error in at.error)


def test_compare_page_on_an_uploaded_zip_gives_cka_one_for_a_model_with_itself_and_both_pictures(tmp_path) -> None:
    archive = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as written:
        for number in range(24):
            picture = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(picture, format="PNG")
            written.writestr(f"noise/{number}.png", picture.getvalue())
    at = app_on("compare", timeout=300)
    at.session_state["convvis_model"] = "lenet_mnist"
    at.session_state["convvis_other_model"] = "lenet_mnist"
    at.run()
    at.selectbox(key=dataset_key("compare", "lenet_mnist")).select("upload").run()
    at.file_uploader(key="compare_zip_file").set_value(("noise.zip", archive.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert at.slider[0].value == 24  # every image of the archive
    at.button(key="compare_run").click().run()
    assert not at.exception, [e.value for e in at.error]
    table = at.dataframe[0].value
    np.testing.assert_allclose(table["CKA"], 1.0, atol=1e-5)  # a model with itself, on the archive's images
    pictures = [image for image in at.image if not image.captions or not image.captions[0].startswith(("Grad", "diff"))]
    assert len(pictures) == 2 * 8  # each of the 8 rows: A's and B's feature visualization
    labels = [link.proto.label for link in at.get("page_link")]
    assert sum(label.startswith("A: conv1 #") for label in labels) == 8, labels  # each row links to both unit pages
    assert sum(label.startswith("B: conv1 #") for label in labels) == 8, labels
