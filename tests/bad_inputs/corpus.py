"""Bad (and awkward but valid) inputs, as data: what a user uploads or types, which entry point takes
it, and what must happen there: a specific :class:`ConvVisError` whose message says what is wrong and
what to do, or a result.

Every file is generated here (Pillow, numpy, zipfile, tiny Keras models), so nothing large is
committed. Each case runs twice: through the core function its page calls (:func:`run_core`), and
through the page itself in a Streamlit AppTest session that takes case after case, as one user
would (:class:`Pages`), which also shows that the session goes on after each bad input.

``python tests/bad_inputs/corpus.py --markdown > docs/bad-inputs.md`` writes the table of every
case and the message a user sees, from real runs (with no option it lists the cases).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import re
import stat
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if not __package__:  # run as a script (a site-packages "tests" package shadows ours for python -m)
    sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1])]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from app_session import app_on  # noqa: E402
from bad_inputs.payloads import png_header, zip_of  # noqa: E402
from convvis_core.batches import model_input  # noqa: E402
from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.config import MAX_ZIP_MEMBER_BYTES, MAX_ZIP_MEMBERS  # noqa: E402
from convvis_core.datasets import files  # noqa: E402
from convvis_core.datasets.base import DatasetError  # noqa: E402
from convvis_core.errors import (ConvVisError, ImageError, LayerError, ModelError, SettingsError,  # noqa: E402
                                 UnsafeModelError)
from convvis_core.featureviz import PRESETS, Settings, visualize_filters  # noqa: E402
from convvis_core.featureviz.selection import parse_filters  # noqa: E402
from convvis_core.featureviz.presets import SMALL_INPUTS  # noqa: E402
from convvis_core.images import open_image  # noqa: E402
from convvis_core.layers import default_layer, find_layer  # noqa: E402
from convvis_core.models import LoadedModel, load_model, load_uploaded_model  # noqa: E402
from convvis_core.predictions import top_k  # noqa: E402
from convvis_ui.pickers import RUN_FILTERS, layer_key

ROOT = Path(__file__).resolve().parents[2]
MODEL = "lenet_mnist"  # the cheap model every case runs on: 28×28, one channel
TIMEOUT = 180  # seconds an AppTest run may take

# Entry points: where an input enters the app, and the page and widget that take it there.
IMAGE, UPLOAD, ARCHIVE, FILTERS, LAYER, SETTINGS = "image", "model", "zip", "filters", "layer", "settings"
WHERE = {
    IMAGE: "Home → Upload an image",
    UPLOAD: "sidebar → Use your own model (on Filters)",
    ARCHIVE: "Top k → Dataset: Your .zip of images",
    FILTERS: "Filters → Indices and ranges",
    LAYER: "CLI `filters MODEL LAYER`; Filters page link",
    SETTINGS: "Filters → Advanced settings",
}

# Code in an uploaded model (a Lambda's bytecode, a custom layer's call) writes this file if it ever runs.
CODE_RAN = Path(tempfile.gettempdir()) / f"convvis-bad-inputs-code-ran-{os.getpid()}"


def code_ran() -> bool:
    """Whether code carried by an uploaded model file ran since the last call. The marker is then
    removed, so a case that runs code fails alone instead of every case after it."""
    ran = CODE_RAN.exists()
    CODE_RAN.unlink(missing_ok=True)
    return ran


@dataclass(frozen=True)
class Case:
    """One input. ``error`` None means it must work; ``page_error`` is the regex of the page's message
    where the page answers differently from the core ("" when the page has no way to send it)."""

    name: str
    entry: str
    what: str  # the input, in words, for the docs
    file_name: str = ""
    make: Callable[[], bytes] | None = None
    error: type[ConvVisError] | None = None
    message: str = ""  # regex the core's message must match
    value: Any = None  # a typed input: (layer, filter spec), a layer name, Settings
    page_error: str | None = None  # None: same as ``message``; "": the page works
    check: Callable[[Any], None] | None = None  # assertions on the core's result, for cases that work
    skipped: str = ""  # .zip that works: the reason its hostile member is left out
    carries_code: bool = False  # a model whose code writes the CODE_RAN marker if it is ever executed

    @property
    def works(self) -> bool:
        return self.error is None

    @property
    def page_message(self) -> str:
        return self.message if self.page_error is None else self.page_error

    def data(self) -> bytes:
        assert self.make is not None, f"{self.name} is not a file"
        return self.make()


# ----------------------------------------------------------------------------------------------- images


def _encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A colourful RGB picture (gradients and a square), width × height ``size``."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1)
    pixels[height // 4:height // 2, width // 4:width // 2] = (255, 255, 0)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@functools.cache
def truncated_jpeg() -> bytes:
    whole = _encode(_photo((64, 64)), "JPEG", quality=90)
    return whole[:len(whole) // 2]


@functools.cache
def truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible: a long IDAT
    whole = _encode(Image.fromarray(noise), "PNG")
    return whole[:len(whole) // 2]


def sixteen_bit_png() -> bytes:
    return _encode(Image.fromarray(np.array([[0, 257 * 128, 65535]] * 3, dtype=np.uint16)), "PNG")


def cmyk_jpeg() -> bytes:
    return _encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=100)  # magenta + yellow: red


def palette_png() -> bytes:
    return _encode(_photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def rgba_png() -> bytes:
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[:4] = (0, 0, 255, 255)  # top half opaque blue, bottom half fully transparent
    return _encode(Image.fromarray(pixels, "RGBA"), "PNG")


def grayscale_png() -> bytes:
    return _encode(Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L"), "PNG")


def one_pixel_png() -> bytes:
    return _encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")


def long_strip_png() -> bytes:
    return _encode(_photo((10_000, 20)), "PNG")


def animated_gif() -> bytes:
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    return _encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)


def photo_jpeg() -> bytes:
    return _encode(_photo(), "JPEG", quality=95)


def _image_check(mode: str, size: tuple[int, int] | None = None,
                 pixel: tuple[tuple[int, int], Any] | None = None) -> Callable[[Any], None]:
    """Assertions on (decoded image, model batch, predictions): the mode, size and one pixel expected."""
    def check(result) -> None:
        image, batch, predictions = result
        assert image.mode == mode, image.mode
        assert size is None or image.size == size, image.size
        if pixel is not None:
            where, expected = pixel
            np.testing.assert_allclose(np.asarray(image)[where[1], where[0]], expected, atol=3)
        assert batch.shape == (1, 28, 28, 1) and np.isfinite(batch).all()  # LeNet: one channel
        assert len(predictions) == 5 and 0.0 <= predictions[0].probability <= 1.0
    return check


# ----------------------------------------------------------------------------------------------- models


def _saved(model: keras.Model, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="convvis-corpus-") as folder:
        path = Path(folder) / f"model{suffix}"
        if suffix.endswith(".weights.h5"):
            model.save_weights(path)
        else:
            model.save(path)
        return path.read_bytes()


def _tiny_cnn(shape: tuple = (16, 16, 3)) -> keras.Model:
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x), name="tiny")


@keras.saving.register_keras_serializable(package="ConvVisCorpus")
class CodeCarrier(keras.layers.Layer):
    """A custom layer whose code would leave the marker file if an upload of it were ever run."""

    def call(self, inputs):
        CODE_RAN.write_text("a custom layer's call ran")
        return inputs * 2.0


def _carrying_code(layer: keras.layers.Layer, suffix: str) -> bytes:
    """A model with ``layer`` (which runs code) saved as ``suffix``; building it ran the code once,
    so the marker is removed afterwards: from here on only loading the file could write it."""
    inputs = keras.Input((8, 8, 3))
    data = _saved(keras.Model(inputs, layer(inputs)), suffix)
    CODE_RAN.unlink(missing_ok=True)
    return data


@functools.cache
def lambda_model(suffix: str) -> bytes:
    # A real lambda: Keras stores its bytecode and closure in the file (a named function goes by name).
    marker = str(CODE_RAN)
    mark = lambda x: (__import__("pathlib").Path(marker).write_text("a Lambda's code ran"), x * 2.0)[1]  # noqa: E731
    return _carrying_code(keras.layers.Lambda(mark, name="sneaky"), suffix)


@functools.cache
def custom_class_model() -> bytes:
    return _carrying_code(CodeCarrier(name="carrier"), ".keras")


@functools.cache
def random_bytes(size: int = 4096) -> bytes:
    return np.random.default_rng(size).bytes(size)


@functools.cache
def tiny_keras() -> bytes:
    return _saved(_tiny_cnn(), ".keras")


def truncated_keras() -> bytes:
    return tiny_keras()[:len(tiny_keras()) // 2]


def zip_without_config() -> bytes:
    return zip_of([("notes.txt", b"a zip, but not a Keras model")])


@functools.cache
def weights_only() -> bytes:
    return _saved(_tiny_cnn(), ".weights.h5")


@functools.cache
def dense_only_model() -> bytes:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten(name="flatten")(inputs)
    return _saved(keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(x), name="dense"),
                  ".keras")


@functools.cache
def vector_model() -> bytes:
    inputs = keras.Input((10,))
    return _saved(keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs), name="mlp"), ".keras")


@functools.cache
def two_input_model() -> bytes:
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    return _saved(keras.Model([a, b], keras.layers.Add(name="add")([a, b]), name="pair"), ".keras")


@functools.cache
def siamese_model() -> bytes:
    """One nested base called on two versions of the image: its layers have two outputs each."""
    inputs = keras.Input((16, 16, 3))
    base = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv")], name="twin_base")
    both = keras.layers.Add(name="add")([base(inputs), base(keras.layers.Rescaling(0.5, name="half")(inputs))])
    return _saved(keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(both), name="siamese"), ".keras")


@functools.cache
def any_size_gray_model() -> bytes:
    return _saved(_tiny_cnn((None, None, 1)), ".h5")


def _any_size_gray_check(loaded: LoadedModel) -> None:
    """Any input size becomes the default 224×224; an RGB photo is made grayscale for it."""
    assert loaded.info.input_size == (224, 224) and loaded.info.channels == 1
    photo = open_image(photo_jpeg())
    assert photo.mode == "RGB" and model_input(photo, loaded.info).shape == (1, 224, 224, 1)
    assert [p.class_name for p in top_k(loaded, photo, k=3)] != []


# -------------------------------------------------------------------------------------------------- zips


@functools.cache
def good_png() -> bytes:
    return _encode(Image.fromarray(np.eye(28, dtype=np.uint8) * 255, "L"), "PNG")


def _with_good(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    """A .zip of one readable image, ``good.png``, and the hostile ``members``."""
    return zip_of([("good.png", good_png()), *members])


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode bits below are honoured by unzip
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _patched_central_record(data: bytes, name: str, offset: int, value: bytes) -> bytes:
    """``data`` with bytes at ``offset`` of ``name``'s central directory record replaced (the last
    occurrence of the name: the central directory follows every local header)."""
    patched = bytearray(data)
    record = patched.rindex(name.encode()) - 46  # the record's fixed part is 46 bytes, then the name
    assert patched[record:record + 4] == b"PK\x01\x02"
    patched[record + offset:record + offset + len(value)] = value
    return bytes(patched)


def zip_traversal() -> bytes:
    return _with_good(("../../escape.png", good_png()))


def zip_absolute() -> bytes:
    return _with_good(("/etc/cron.d/evil.png", good_png()))


def zip_symlink() -> bytes:
    return _with_good(_symlink("passwd.png", "/etc/passwd"))


def zip_nested() -> bytes:
    return _with_good(("inner.zip", zip_of([("deeper.png", good_png())])))


def zip_encrypted() -> bytes:
    data = _with_good(("secret.png", good_png()))
    return _patched_central_record(data, "secret.png", 8, b"\x01\x00")  # general purpose flag bit 0: encrypted


@functools.cache
def zip_many() -> bytes:
    tiny = _encode(Image.new("L", (1, 1), 128), "PNG")
    return zip_of([(f"tiny/{index:05d}.png", tiny) for index in range(10_000)], zipfile.ZIP_STORED)


@functools.cache
def zip_too_many() -> bytes:
    return zip_of([(f"f{index:05d}.png", b"") for index in range(MAX_ZIP_MEMBERS + 1)], zipfile.ZIP_STORED)


@functools.cache
def zip_member_too_large() -> bytes:
    return _with_good(("huge.png", bytes(MAX_ZIP_MEMBER_BYTES + 2**20)))  # 21 MB of zeros: ~20 kB deflated


@functools.cache
def zip_member_lies() -> bytes:
    """A member declaring 100 bytes whose data expands past the size limit: reading stops at 100
    bytes and the checksum fails, so the rest is never inflated."""
    data = _with_good(("liar.png", bytes(MAX_ZIP_MEMBER_BYTES + 2**20)))
    return _patched_central_record(data, "liar.png", 24, struct.pack("<I", 100))


def zip_only_hostile() -> bytes:
    return zip_of([("../escape.png", good_png()), _symlink("link.png", "/etc/shadow")])


# ----------------------------------------------------------------------------------------------- cases

QUICK = PRESETS["quick preview"].replace(steps=8, size=28)
# Plain pixels, normalized-gradient ascent, no transforms: the recipe where a learning rate blows up.
DIVERGING = Settings(parameterization="pixel", decorrelate=False, optimizer="l2_normalized", learning_rate=1e38,
                     steps=4, size=28, pad=0, jitter=0, scale=0.0, rotate=0.0, final_jitter=0)

CASES: list[Case] = [
    # Images: through open_image, LeNet's input and its top 5; on Home's image uploader.
    Case("empty-image", IMAGE, "0-byte file", "empty.png", lambda: b"", ImageError,
         r"'empty.png' is empty \(0 bytes\)\. Upload a PNG, JPEG"),
    Case("truncated-jpeg", IMAGE, "JPEG cut in half", "cut.jpg", truncated_jpeg, ImageError,
         r"'cut.jpg' could not be decoded .*truncated or corrupt: save or export it again"),
    Case("truncated-png", IMAGE, "PNG cut in half", "cut.png", truncated_png, ImageError,
         r"'cut.png' could not be decoded .*truncated or corrupt: save or export it again"),
    Case("text-as-jpeg", IMAGE, "a text file named .jpg", "notes.jpg", lambda: b"Meeting notes, not a picture.\n",
         ImageError, r"'notes.jpg' is not an image Pillow can read .*Upload a PNG, JPEG"),
    Case("decompression-bomb", IMAGE, "PNG header declaring 100000×100000 pixels", "bomb.png",
         lambda: png_header(100_000, 100_000), ImageError,
         r"'bomb.png' declares a huge size \(possible decompression bomb\); the limit is 40 MP\. Downscale"),
    Case("over-pixel-limit", IMAGE, "PNG header declaring 9000×5000 pixels (45 MP)", "poster.png",
         lambda: png_header(9000, 5000), ImageError,
         r"'poster.png' is 9000×5000 pixels \(45 MP\); the limit is 40 MP\. Downscale it"),
    Case("16-bit", IMAGE, "16-bit grayscale PNG", "depth16.png", sixteen_bit_png,
         check=_image_check("L", (3, 3), ((1, 0), 128))),
    Case("cmyk", IMAGE, "CMYK JPEG", "print.jpg", cmyk_jpeg,
         check=_image_check("RGB", (16, 16), ((0, 0), (255, 0, 0)))),
    Case("palette", IMAGE, "palette (P mode) PNG", "palette.png", palette_png, check=_image_check("RGB", (48, 32))),
    Case("rgba", IMAGE, "RGBA PNG, half transparent", "alpha.png", rgba_png,
         check=_image_check("RGB", (8, 8), ((0, 7), (255, 255, 255)))),
    Case("grayscale", IMAGE, "8-bit grayscale PNG", "gray.png", grayscale_png,
         check=_image_check("L", (16, 16), ((15, 15), 255))),
    Case("one-pixel", IMAGE, "1×1 PNG", "dot.png", one_pixel_png, check=_image_check("RGB", (1, 1))),
    Case("long-strip", IMAGE, "10000×20 PNG", "strip.png", long_strip_png, check=_image_check("RGB", (10_000, 20))),
    Case("animated-gif", IMAGE, "animated GIF, red then blue", "blink.gif", animated_gif,
         check=_image_check("RGB", (8, 8), ((0, 0), (255, 0, 0)))),  # the first frame
    Case("rgb-into-gray-model", IMAGE, "RGB JPEG fed to a 1-channel model (LeNet)", "photo.jpg", photo_jpeg,
         check=_image_check("RGB", (48, 32))),
    # Model files: through load_uploaded_model (and the layer every page starts from); on the sidebar.
    Case("empty-model", UPLOAD, "0-byte .keras", "empty.keras", lambda: b"", ModelError,
         r"'empty.keras' is empty \(0 bytes\)\. Upload a model saved with model.save"),
    Case("random-keras", UPLOAD, "4 kB of random bytes named .keras", "random.keras", random_bytes, ModelError,
         r"'random.keras' is not a Keras model file\. Upload a model saved with model.save"),
    Case("random-h5", UPLOAD, "4 kB of random bytes named .h5", "random.h5", random_bytes, ModelError,
         r"'random.h5' is not a Keras model file\. Upload a model saved with model.save"),
    Case("truncated-keras", UPLOAD, ".keras cut in half", "half.keras", truncated_keras, ModelError,
         r"'half.keras' is corrupt or truncated .*Save the model again and re-upload it"),
    Case("zip-as-keras", UPLOAD, "a .zip of notes named .keras", "notes.keras", zip_without_config, ModelError,
         r"'notes.keras' is a zip file but not a Keras model \(no config.json\)\. Save the model with model.save"),
    Case("weights-only", UPLOAD, "weights-only .weights.h5", "model.weights.h5", weights_only, ModelError,
         r"'model.weights.h5' holds weights only, no architecture\. Save the whole model"),
    Case("lambda-keras", UPLOAD, ".keras with a Lambda layer (its code writes a marker file)", "lambda.keras",
         functools.partial(lambda_model, ".keras"), UnsafeModelError,
         r"'lambda.keras' contains a Lambda layer \('sneaky'\), which carries Python code\. ConvVis never executes",
         carries_code=True),
    Case("lambda-h5", UPLOAD, ".h5 with a Lambda layer (its code writes a marker file)", "lambda.h5",
         functools.partial(lambda_model, ".h5"), UnsafeModelError,
         r"'lambda.h5' contains a Lambda layer \('sneaky'\), which carries Python code\. ConvVis never executes",
         carries_code=True),
    Case("custom-class", UPLOAD, ".keras with a custom layer class (its call writes a marker file)", "custom.keras",
         custom_class_model, UnsafeModelError,
         r"'custom.keras' uses the custom class ConvVisCorpus>CodeCarrier\b.*never executes code", carries_code=True),
    Case("no-4d-layer", UPLOAD, "image model with no 4-D layer (Flatten → Dense)", "dense.keras", dense_only_model,
         LayerError, r"has no layer with a spatial \(4-D\) output.*Pick or upload a convolutional model",
         page_error=r"dense.keras has no layer with a spatial \(4-D\) output.*Pick or upload a convolutional model"),
    Case("vector-input", UPLOAD, "model on 10-number vectors, not images", "mlp.keras", vector_model, ModelError,
         r"'mlp.keras' takes input of shape \(10,\); ConvVis needs images of shape \(height, width, 1\)"),
    Case("two-inputs", UPLOAD, "model with two image inputs", "pair.keras", two_input_model, ModelError,
         r"'pair.keras' has 2 inputs; ConvVis needs a model with one image input"),
    Case("nested-model-called-twice", UPLOAD, "a nested base called twice (siamese)", "siamese.keras", siamese_model,
         ModelError, r"The nested model 'twin_base' is called more than once in 'siamese', so its layers have no "
                     r"single output to show or explain"),
    Case("any-size-gray-model", UPLOAD, "1-channel CNN of any input size (.h5), fed an RGB photo",
         "anysize.h5", any_size_gray_model, check=_any_size_gray_check),
    # .zip archives of images: through zip_dataset; on Top k's uploader. A hostile member is left out and
    # listed (the rest is used); an archive with nothing usable, or too many files, is refused.
    Case("zip-dotdot", ARCHIVE, "good.png + ../../escape.png", "dotdot.zip", zip_traversal, skipped=files.UNSAFE_PATH),
    Case("zip-absolute", ARCHIVE, "good.png + /etc/cron.d/evil.png", "absolute.zip", zip_absolute,
         skipped=files.UNSAFE_PATH),
    Case("zip-symlink", ARCHIVE, "good.png + a symlink to /etc/passwd", "symlink.zip", zip_symlink,
         skipped=files.SYMLINK),
    Case("zip-nested", ARCHIVE, "good.png + inner.zip", "nested.zip", zip_nested, skipped=files.NESTED_ARCHIVE),
    Case("zip-encrypted", ARCHIVE, "good.png + an encrypted member", "encrypted.zip", zip_encrypted,
         skipped=files.ENCRYPTED),
    Case("zip-member-too-large", ARCHIVE, "good.png + a member of 21 MB (20 kB compressed)", "large.zip",
         zip_member_too_large, skipped=files.TOO_LARGE),
    Case("zip-member-lies", ARCHIVE, "good.png + a member declaring 100 B that expands to 21 MB", "liar.zip",
         zip_member_lies, skipped=files.CORRUPT),
    Case("zip-10000-members", ARCHIVE, "10,000 tiny PNGs", "many.zip", zip_many),
    Case("zip-too-many-members", ARCHIVE, "20,001 members", "flood.zip", zip_too_many, DatasetError,
         r"'flood.zip' holds 20,001 files; the limit is 20,000\. Split it into smaller archives"),
    Case("zip-only-hostile", ARCHIVE, "only ../escape.png and a symlink", "hostile.zip", zip_only_hostile, DatasetError,
         r"hostile.zip holds no image ConvVis can read \(1 absolute or \.\./ path; 1 symbolic link\)\. Put PNG"),
    Case("zip-random-bytes", ARCHIVE, "random bytes named .zip", "random.zip", random_bytes, DatasetError,
         r"'random.zip' is not a readable \.zip archive .*Create the archive again"),
    Case("zip-empty", ARCHIVE, "0-byte .zip", "empty.zip", lambda: b"", DatasetError,
         r"'empty.zip' is empty \(0 bytes\)\. Upload a \.zip of PNG"),
    # Typed inputs.
    Case("filter-out-of-range", FILTERS, "filters 0-50 of conv2_relu (50 filters)", value=("conv2_relu", "0-50"),
         error=LayerError, message=r"Filter 50 is out of range: the layer has 50 filters \(0–49\)\. Pick indices"),
    Case("no-such-layer", LAYER, "layer 'conv9' (LeNet has conv1, conv2)", value="conv9", error=LayerError,
         message=r"has no layer named 'conv9'\. Did you mean: conv\d, conv\d\?.*convvis_core layers"),
    Case("nan-learning-rate", SETTINGS, "learning rate 1e38, plain pixels, L2-normalized ascent", value=DIVERGING,
         error=SettingsError, message=r"optimization diverged \(the image became NaN or infinite\)\. Lower the "
         r"learning rate \(now 1e\+38\)", page_error=""),
]
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"


# ------------------------------------------------------------------------------------------------ core


def run_core(case: Case, lenet: LoadedModel) -> Any:
    """Run the case through the core functions its page calls; the result, or the error raised."""
    if case.entry == IMAGE:
        image = open_image(case.data(), name=case.file_name)
        return image, model_input(image, lenet.info), top_k(lenet, image)
    if case.entry == UPLOAD:
        loaded = load_uploaded_model(case.data(), case.file_name)
        default_layer(loaded.model)  # where every visualization page starts
        return loaded
    if case.entry == ARCHIVE:
        return files.zip_dataset(case.data(), case.file_name)
    if case.entry == FILTERS:
        layer, spec = case.value
        filters = parse_filters(spec, find_layer(lenet.model, layer).channels)
        return visualize_filters(lenet, layer, filters, QUICK, cache=ResultCache(None))
    if case.entry == LAYER:
        return find_layer(lenet.model, case.value)
    if case.entry == SETTINGS:
        return visualize_filters(lenet, "conv2_relu", [0], case.value, cache=ResultCache(None))
    raise ValueError(f"unknown entry point {case.entry!r}")


def describe(case: Case, result: Any) -> str:
    """A working case's core result, in words."""
    if case.entry == IMAGE:
        image, batch, predictions = result
        return (f"decoded as {image.mode} {image.width}×{image.height}; "
                f"LeNet gets {'×'.join(map(str, batch.shape))}; "
                f"top class {predictions[0].class_name}")
    if case.entry == UPLOAD:
        info = result.info
        return f"loaded: input {info.input_size[0]}×{info.input_size[1]}×{info.channels}"
    if case.entry == ARCHIVE:
        skipped = "; ".join(f"{reason}: {', '.join(names)}" for reason, names in result.skipped.items())
        return f"{len(result):,} image(s) kept" + (f"; skipped: {skipped}" if skipped else "")
    return str(result)


# ----------------------------------------------------------------------------------------------- pages


@dataclass
class PageOutcome:
    """What the page showed after one case: its error boxes, any traceback, whether the session went
    on (the new input is in use if it works; otherwise the previous result is still shown, or the
    next good input works), and what it shows now, in words."""

    errors: list[str]
    exceptions: list[str]
    went_on: bool
    shown: str


class _Session:
    """One user's AppTest session of a page, fed case after case."""

    page = ""

    def __init__(self, state: dict[str, Any] | None = None, page: str = "") -> None:
        self.page = page or self.page
        self.at = app_on(self.page, timeout=TIMEOUT)
        for key, value in {"convvis_model": MODEL, **(state or {})}.items():
            self.at.session_state[key] = value
        self.at.run()
        assert not self.at.exception and not self.at.error, (self.page, self.problems())

    def problems(self) -> tuple[list[str], list[str]]:
        return [e.value for e in self.at.error], [e.message for e in self.at.exception]

    def upload(self, key: str, case: Case) -> None:
        self.at.file_uploader(key=key).set_value((case.file_name, case.data(), "application/octet-stream")).run()

    def state(self, key: str, index: int | None = None) -> Any:
        value = self.at.session_state[key] if key in self.at.session_state else None
        return value[index] if value is not None and index is not None else value


class HomeImages(_Session):
    """Home, LeNet: the image uploader; the predictions chart must stay (for the last good image)."""

    page = "app.py"

    def now(self) -> tuple:
        return (self.state("convvis_image_source"), self.state("convvis_image_upload", 0),
                len(self.at.get("plotly_chart")))

    def submit(self, case: Case) -> PageOutcome:
        before = self.now()
        self.upload("_convvis_home_file", case)
        errors, exceptions = self.problems()
        after = self.now()
        in_use = after == ("upload", case.file_name, 1)
        source = f"your upload '{after[1]}'" if after[0] == "upload" else f"the sample '{after[0]}'"
        return PageOutcome(errors, exceptions, in_use if case.works else after == before and after[2] == 1,
                           f"top-5 predictions for {source}")


class SidebarModels(_Session):
    """Filters, LeNet: the sidebar model uploader; a refused file leaves LeNet chosen."""

    page = "pages/filters.py"

    def submit(self, case: Case) -> PageOutcome:
        at = self.at
        before = self.state("convvis_model")
        self.upload("_convvis_model_file", case)
        errors, exceptions = self.problems()
        after = self.state("convvis_model")
        layers = [[label.split("  ·  ")[0] for label in s.options] for s in at.selectbox if s.label == "Layer"]
        name = self.state("convvis_uploads")[after.removeprefix("upload:")][0] if after.startswith("upload:") else after
        shown = f"{name} chosen" + (f"; its layers: {', '.join(layers[0])}" if layers else "")
        if case.works:
            return PageOutcome(errors, exceptions, after != before and bool(layers), shown)
        if after != before:  # loaded, but the page cannot use it: picking the previous model again works
            at.selectbox(key="_convvis_model_picker").select(before).run()
            went_on = not at.error and not at.exception and self.state("convvis_model") == before
            return PageOutcome(errors, exceptions, went_on, shown + f"; {before} picked again")
        return PageOutcome(errors, exceptions, bool(layers), shown)


class TopKArchives(_Session):
    """Top k, LeNet, dataset "Your .zip": the archive uploader; a refused archive leaves the last good one."""

    page = "pages/top_k.py"

    def __init__(self) -> None:
        super().__init__()
        self.at.selectbox(key=f"topk_dataset_{MODEL}").select("upload").run()

    def submit(self, case: Case) -> PageOutcome:
        before = self.state("convvis_uploaded_zip", 1)
        self.upload("topk_zip_file", case)
        errors, exceptions = self.problems()
        after = self.state("convvis_uploaded_zip", 1)
        count = next((int(n.max) for n in self.at.number_input if n.label == "Images to scan"), 0)
        notes = [e.label for e in self.at.expander if "skipped" in e.label]
        shown = f"'{after}' in use, {count:,} image(s) to scan" if after else "asks for a .zip"
        shown += "".join(f"; {note}" for note in notes)
        # A refused archive: the last good one is still scanned from, in this very run.
        if case.works:
            went_on = after == case.file_name and count > 0
        else:
            went_on = after == before and (count > 0) == bool(before)
        return PageOutcome(errors, exceptions, went_on, shown)


class FiltersPage(_Session):
    """Filters, LeNet: the filter indices, the advanced settings, and a link naming a layer."""

    page = "pages/filters.py"

    def __init__(self) -> None:
        super().__init__()
        self.layer = self.at.selectbox(key=layer_key("filters", MODEL)).value  # the page's default layer

    def submit(self, case: Case) -> PageOutcome:
        return {FILTERS: self.filters, SETTINGS: self.settings, LAYER: self.layer_link}[case.entry](case)

    def filters(self, case: Case) -> PageOutcome:
        at = self.at
        layer, spec = case.value
        at.selectbox(key=layer_key("filters", MODEL)).select(layer).run()
        at.text_input(key=f"filters_spec_{layer}").set_value(spec).run()
        errors, exceptions = self.problems()
        at.text_input(key=f"filters_spec_{layer}").set_value("0-1").run()  # the user corrects it
        went_on = not at.error and not at.exception and at.button(key=RUN_FILTERS).label == "Run on 2 filters"
        return PageOutcome(errors, exceptions, went_on, f"'{spec}' corrected to '0-1': {at.button(key=RUN_FILTERS).label}")

    def settings(self, case: Case) -> PageOutcome:
        """The page's widgets bound every setting: the same recipe at the largest learning rate they take."""
        at, settings, preset = self.at, case.value, SMALL_INPUTS  # the page's default for 28×28 inputs
        at.selectbox(key=layer_key("filters", MODEL)).select("conv2_relu").run()
        box = at.number_input(key=f"lr_{preset}")
        learning_rate = min(settings.learning_rate, box.max)
        box.set_value(learning_rate)
        at.selectbox(key=f"param_{preset}").select(settings.parameterization)
        at.selectbox(key=f"opt_{preset}").select(settings.optimizer)
        at.checkbox(key=f"decor_{preset}").set_value(settings.decorrelate)
        for name, value in (("pad", settings.pad), ("jitter", settings.jitter), ("scale", settings.scale),
                            ("rotate", settings.rotate), ("fjitter", settings.final_jitter), ("steps", 8),
                            ("size", 32)):
            at.slider(key=f"{name}_{preset}").set_value(value)
        at.text_input(key="filters_spec_conv2_relu").set_value("0").run()
        at.button(key=RUN_FILTERS).click().run()
        errors, exceptions = self.problems()
        done = [status.label for status in at.get("status")]
        went_on = bool(at.subheader) and at.subheader[0].value.startswith("conv2_relu: 1 filter")
        return PageOutcome(errors, exceptions, went_on,
                           f"the Learning rate box stops at {box.max:g}; at that rate: {', '.join(done)}")

    def layer_link(self, case: Case) -> PageOutcome:
        """No page takes a typed layer name (they offer lists); the CLI does, and another page's link
        to the Filters page names a layer in the session. Both are tried."""
        from convvis_core import cli

        stderr = io.StringIO()
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(stderr):
            code = cli.main(["filters", MODEL, case.value, "--filters", "0", "--out", f"{folder}/grid.png"])
        printed = stderr.getvalue()
        errors = [line.removeprefix("error: ") for line in printed.splitlines() if line.startswith("error: ")]
        exceptions = [printed] if "Traceback" in printed or code not in (0, 2) else []
        # A link sets the key on another page, then switches here: a fresh session opened with the key
        # set stands for it (AppTest cannot hold a widget's key at a value its options lack).
        linked = _Session({layer_key("filters", MODEL): case.value}, page=self.page)
        page_errors, page_exceptions = linked.problems()
        layer = linked.at.selectbox(key=layer_key("filters", MODEL)).value
        return PageOutcome(errors, exceptions + page_exceptions, layer == self.layer and not page_errors,
                           f"CLI exit code {code}; the Filters page link falls back to {layer}")


class Pages:
    """The page sessions, opened on first use and kept, so each takes its cases one after another."""

    KINDS = {IMAGE: HomeImages, UPLOAD: SidebarModels, ARCHIVE: TopKArchives, FILTERS: FiltersPage,
             SETTINGS: FiltersPage, LAYER: FiltersPage}

    def __init__(self) -> None:
        self._open: dict[type, _Session] = {}

    def submit(self, case: Case) -> PageOutcome:
        kind = self.KINDS[case.entry]
        if kind not in self._open:
            self._open[kind] = kind()
        return self._open[kind].submit(case)


# ------------------------------------------------------------------------------------------------ docs


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def markdown(lenet: LoadedModel | None = None) -> str:
    """The docs page: every case, run through the core and its page, with the messages they gave."""
    lenet = lenet or load_model(MODEL)
    pages = Pages()
    rows = []
    for number, case in enumerate(CASES, 1):
        try:
            core = describe(case, run_core(case, lenet))
        except ConvVisError as error:
            core = f"{type(error).__name__}: {error}"
        page = pages.submit(case)
        if page.exceptions:
            raise AssertionError(f"{case.name}: the page showed a traceback: {page.exceptions}")
        seen = page.errors[0] if page.errors else page.shown
        outcome = "works" if case.works else f"refused ({case.error.__name__})"
        if not case.works and not case.page_message:
            outcome += "; page works"
        rows.append(f"| {number} | `{case.name}` | {_cell(case.what)} | {_cell(WHERE[case.entry])} | {outcome} "
                    f"| {_cell(seen)} | {_cell(core)} |")
    return "\n".join([HEADER, "| # | Case | Input | Where | Outcome | The page shows | The core gives |",
                      "|---|---|---|---|---|---|---|", *rows, NOTES])


HEADER = """# Bad inputs: what a user sees

Every case below is generated in code by `tests/bad_inputs/corpus.py` and run by `tests/test_bad_inputs.py`
twice: through the core function the page calls, and through the page itself in one Streamlit session
per page that takes the cases one after another (so each row also shows that the session goes on: after
a refused input the page keeps its previous result, and the next good input works). No case shows a
traceback. Code carried by an uploaded model (a Lambda layer, a custom class) is never executed: it
would write a marker file, and the tests check that it never appears.

The page shows its message as a red error box; "works" rows say what the page shows instead. The
last column is what the core function (and so the CLI) returns or raises. Regenerate this page with
`python tests/bad_inputs/corpus.py --markdown > docs/bad-inputs.md`.
"""


NOTES = """
Notes:

- Each uploader accepts only its file types (images; `.keras`/`.h5`/`.hdf5`; `.zip`). A file with another
  extension is refused by Streamlit itself, in the browser, before any ConvVis code sees it; a wrong file
  with an accepted extension (`text-as-jpeg`, `random-keras`, `zip-as-keras`, `zip-random-bytes`) is what
  ConvVis has to explain.
- Uploads are limited to 200 MB, images to 40 MP (`decompression-bomb`, `over-pixel-limit`), an archive's
  members to 20 MB each (`zip-member-too-large`, `zip-member-lies`) and 1 GB in all.
- `nan-learning-rate`: the page cannot send such a rate: its Learning rate box stops at 1000, where the same
  recipe still gives a picture. The core (and so any other caller) answers the diverged run with the message shown.
- `no-such-layer`: the pages offer layers as lists, so only the CLI takes a typed layer name. A link from
  another page that names a layer the model lacks (a stale session) opens the Filters page at its default layer.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="run every case and print docs/bad-inputs.md")
    args = parser.parse_args(argv)
    if not args.markdown:
        for case in CASES:
            print(f"{case.name:<24} {case.entry:<9} {'works' if case.works else case.error.__name__:<18} {case.what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="convvis-corpus-cache-") as cache:
        os.environ.setdefault("CONVVIS_CACHE_DIR", cache)  # never the user's cache
        text = markdown()
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bad_inputs.corpus import main as package_main  # classes then live in bad_inputs.corpus, as in the tests

    sys.exit(package_main())
