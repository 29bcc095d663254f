"""Every kind of image a user may upload loads as 8-bit RGB or L with the right pixel values."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from convvis_core.batches import model_input, pixel_batch
from convvis_core.errors import ImageError
from convvis_core.images import as_model_sees_it, fit_to_size, open_image, to_uint8
from convvis_core.models import ModelInfo
from convvis_core.samples import PHOTOS, load_sample


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_rgb_png_round_trips_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    loaded = open_image(encode(Image.fromarray(pixels), "PNG"))
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), pixels)


def test_grayscale_and_bilevel_stay_grayscale():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(np.asarray(open_image(encode(Image.fromarray(gray), "PNG"))), gray)
    bilevel = open_image(encode(Image.fromarray(gray > 127), "PNG"))
    assert bilevel.mode == "L" and set(np.unique(np.asarray(bilevel))) == {0, 255}


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits():
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    loaded = open_image(encode(Image.fromarray(values), "PNG"))
    assert loaded.mode == "L"
    assert np.asarray(loaded).tolist() == [[0, 128, 255]]


def test_float_image_is_stretched_to_full_range():
    loaded = open_image(Image.fromarray(np.array([[-1.0, 0.0, 1.0]], dtype=np.float32), "F"))
    assert np.asarray(loaded).tolist() == [[0, 128, 255]]


def test_rgba_transparency_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 255, 0)  # fully transparent blue
    loaded = np.asarray(open_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert loaded[0, 0].tolist() == [255, 0, 0] and loaded[1, 1].tolist() == [255, 255, 255]


def test_grayscale_with_alpha_stays_grayscale():
    la = Image.fromarray(np.array([[[10, 255], [200, 0]]], dtype=np.uint8), "LA")
    loaded = open_image(encode(la, "PNG"))
    assert loaded.mode == "L" and np.asarray(loaded).tolist() == [[10, 255]]


def test_palette_image_keeps_its_colours_and_transparency():
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([0, 128, 0] + [255, 0, 255] + [0] * 762)
    palette_image.putpixel((0, 0), 0)
    palette_image.putpixel((1, 0), 1)
    loaded = np.asarray(open_image(encode(palette_image, "PNG", transparency=1)))
    assert loaded.tolist() == [[[0, 128, 0], [255, 255, 255]]]


def test_cmyk_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (3, 3), (0, 0, 0, 0))  # no ink: white paper
    loaded = open_image(encode(cmyk, "JPEG", quality=100))
    assert loaded.mode == "RGB" and np.asarray(loaded).min() >= 250


def test_exif_orientation_is_applied():
    wide = Image.new("RGB", (40, 20), (0, 0, 0))
    wide.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    upright = open_image(encode(wide, "JPEG", exif=exif.tobytes(), quality=95))
    assert upright.size == (20, 40)
    top, bottom = np.asarray(upright)[:15].mean(), np.asarray(upright)[25:].mean()
    assert top > 200 and bottom < 50  # the white half moved to the top


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert np.asarray(open_image(data))[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("size", [(1, 1), (10000, 20)])
def test_extreme_sizes_reach_the_model_input(size):
    image = open_image(encode(Image.new("RGB", size, (9, 99, 199)), "PNG"))
    info = ModelInfo("t", "t", "t", (224, 224), 3, "unit")
    for fit in ("stretch", "crop", "pad"):
        assert as_model_sees_it(image, info, fit).size == (224, 224)
    np.testing.assert_allclose(model_input(image, info, "stretch")[0, 100, 100], np.array([9, 99, 199]) / 255, atol=1e-6)


def test_channels_follow_the_model():
    rgb = Image.new("RGB", (30, 30), (255, 0, 0))
    gray_model = ModelInfo("g", "g", "g", (28, 28), 1, "unit")
    x = model_input(rgb, gray_model)
    assert x.shape == (1, 28, 28, 1)
    np.testing.assert_allclose(x[0, 0, 0, 0], 76 / 255, atol=1 / 255)  # ITU-R 601 luma of pure red
    gray = Image.new("L", (30, 30), 200)
    colour_model = ModelInfo("c", "c", "c", (20, 20), 3, "tf")
    np.testing.assert_allclose(model_input(gray, colour_model)[0, 5, 5], [200 / 127.5 - 1] * 3, atol=1e-6)


def test_one_photo_a_list_and_decoded_arrays_make_the_same_batch():
    """pixel_batch is the one way from images to the model's pixels: a photo, a list of photos or of uint8
    arrays, and an array already at the model's size give the same pixels; model_input preprocesses them."""
    photos = [load_sample("chelsea"), load_sample("coffee")]
    info = ModelInfo("t", "t", "t", (32, 48), 3, "tf")
    listed = pixel_batch(photos, info, "crop")
    assert listed.dtype == np.uint8 and listed.shape == (2, 32, 48, 3)
    np.testing.assert_array_equal(pixel_batch(photos[1], info, "crop", dtype=np.float32)[0], listed[1].astype(np.float32))
    np.testing.assert_array_equal(pixel_batch([np.asarray(photo) for photo in photos], info, "crop"), listed)
    assert pixel_batch(listed, info) is listed  # decoded at the model's size: taken as it is
    np.testing.assert_allclose(model_input(photos, info, "crop"), listed / 127.5 - 1, atol=1e-6)
    gray = ModelInfo("g", "g", "g", (32, 48), 1, "unit")
    assert pixel_batch(listed, gray).shape == (2, 32, 48, 1)  # wrong channels: converted, not taken


def test_fit_modes_differ_as_documented():
    tall = Image.new("L", (10, 40), 255)
    padded = np.asarray(fit_to_size(tall, (20, 20), "pad"))
    assert padded[:, 0].max() == 0 and padded[10, 10] == 255  # black bars left and right
    assert np.asarray(fit_to_size(tall, (20, 20), "crop")).min() == 255


def test_display_conversion_clips_or_normalizes():
    values = np.array([[-50.0, 0.0, 300.0, np.nan]])
    assert np.asarray(Image.fromarray(to_uint8(values))).tolist() == [[0, 0, 255, 0]]
    assert np.asarray(Image.fromarray(to_uint8(values, normalize=True))).tolist() == [[0, 36, 255, 36]]
    assert np.asarray(Image.fromarray(to_uint8(np.array([[100.0, 150.0, 200.0]]), normalize=True))).tolist() == [[0, 128, 255]]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares a size but carries almost no data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, this is a text file\n", "not an image"),
    (_png_header_only(100_000, 100_000), "limit"),
    (_png_header_only(4000, 4000), "truncated or corrupt"),
], ids=["zero-bytes", "text-file", "decompression-bomb", "header-without-data"])
def test_bad_files_are_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        open_image(data, name="upload.jpg")


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_files_are_clear_errors(format):
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)), format)
    with pytest.raises(ImageError, match="'cut.img' could not be decoded.*truncated"):
        open_image(data[: len(data) // 2], name="cut.img")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="No such image file"):
        open_image(tmp_path / "nope.png")


def test_every_sample_photo_loads():
    for sample in PHOTOS:
        image = load_sample(sample.name)
        assert image.mode in ("RGB", "L") and min(image.size) >= 64, sample.name
