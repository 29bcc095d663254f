"""Image I/O in one place: any Pillow-readable upload in, the model's input out, and back again.

Uploads come from phones and scanners: EXIF-rotated JPEGs, palette GIFs, RGBA PNGs, 16-bit TIFFs,
CMYK print files. All are normalized here to 8-bit RGB or L before anything else sees them.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO, Literal, Mapping, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convvis_core.config import MAX_IMAGE_PIXELS
from convvis_core.counters import WorkCounter
from convvis_core.errors import ImageError
from convvis_core.models.base import ModelInfo

# Pillow's own guard, for any Image.open in the process: it warns above this and refuses above twice
# this (DecompressionBombError) while reading the header, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

Fit = Literal["stretch", "crop", "pad"]
FITS: tuple[Fit, ...] = ("stretch", "crop", "pad")
ImageSource = bytes | str | os.PathLike | BinaryIO | Image.Image
# Images as a notebook holds them: a numpy batch, one image, or a sequence of images or single arrays.
Images = np.ndarray | ImageSource | Sequence[ImageSource | np.ndarray]


def open_image(source: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None) -> Image.Image:
    """Decode an image into 8-bit ``RGB`` (colour) or ``L`` (grayscale), upright, first frame.

    Raises :class:`ImageError` with a user-facing message (naming the file as ``name``, if given)
    for anything that is not a readable, reasonably sized image.
    """
    if isinstance(source, Image.Image):
        return _normalize_mode(ImageOps.exif_transpose(source) or source)
    name = f"'{name}'" if name else _source_name(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name} is empty (0 bytes). Upload a PNG, JPEG, GIF, BMP, TIFF or WebP image.")
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_file() and Path(source).stat().st_size == 0:
        raise ImageError(f"{name} is empty (0 bytes). Upload a PNG, JPEG, GIF, BMP, TIFF or WebP image.")
    try:
        image = Image.open(source)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"{name} is {width}×{height} pixels ({width * height / 1e6:.0f} MP); the limit is "
                f"{max_pixels / 1e6:.0f} MP. Downscale it and upload it again."
            )
        image.seek(0)  # animated GIF / multi-page TIFF: the first frame
        image.load()
        image = ImageOps.exif_transpose(image) or image
        return _normalize_mode(image)
    except ImageError:
        raise
    except FileNotFoundError as error:
        raise ImageError(f"No such image file: {error.filename}") from error
    except UnidentifiedImageError as error:
        raise ImageError(
            f"{name} is not an image Pillow can read (wrong file type or corrupt). "
            "Upload a PNG, JPEG, GIF, BMP, TIFF or WebP image."
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"{name} declares a huge size (possible decompression bomb); the limit is "
            f"{max_pixels / 1e6:.0f} MP. Downscale it and upload it again."
        ) from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(
            f"{name} could not be decoded ({error}). The file is probably truncated or corrupt: "
            "save or export it again and upload the new file."
        ) from error


def as_images(images: Images) -> list[Image.Image]:
    """Images as a caller holds them, as 8-bit pictures (what an upload becomes): a numpy batch
    (N, H, W, C) with 1, 3 or 4 channels or (N, H, W) grayscale; one image (Pillow, a path, bytes); or a
    sequence of those or of single arrays (H, W) / (H, W, C). Arrays are pixels before any preprocessing,
    see :func:`array_image`. Raises :class:`ImageError` saying what is wrong."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3 and images.shape[-1] in (3, 4):
            raise ImageError(f"An array of shape {images.shape} looks like one colour image; a batch has a first "
                             "axis of images: pass image[None] or [image].")
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
            raise ImageError(f"A batch of images is an array (N, H, W, C) with 1, 3 or 4 channels, or (N, H, W) "
                             f"for grayscale; got shape {images.shape}.")
        if not len(images):
            raise ImageError("No images were given: pass at least one.")
        return [array_image(image) for image in images]
    if isinstance(images, (Image.Image, str, os.PathLike, bytes)) or hasattr(images, "read"):
        return [open_image(images)]
    pictures = [one_image(image) for image in images]
    if not pictures:
        raise ImageError("No images were given: pass at least one.")
    return pictures


def one_image(image: ImageSource | np.ndarray) -> Image.Image:
    """One image as a caller holds it (Pillow, a path, bytes, or an array: :func:`array_image`), 8-bit."""
    return array_image(image) if isinstance(image, np.ndarray) else open_image(image)


def array_image(pixels: np.ndarray) -> Image.Image:
    """One image's pixels, (H, W) or (H, W, C) with 1, 3 or 4 channels, as an 8-bit picture: integers as
    0..255; floats as 0..1 when none is above 1, else as 0..255 (rounded). Values outside those ranges
    are refused: they are preprocessed model inputs, and ConvVis preprocesses pixels itself."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (3, 4)):
        raise ImageError(f"An image is an array (H, W) or (H, W, C) with 1, 3 or 4 channels; got shape {pixels.shape}.")
    if not (np.issubdtype(pixels.dtype, np.integer) or np.issubdtype(pixels.dtype, np.floating)):
        raise ImageError(f"Image pixels are integers (0..255) or floats (0..1 or 0..255); got {pixels.dtype}.")
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if not (np.isfinite([low, high]).all() and low >= 0 and high <= 255):
        raise ImageError(f"Pixel values run from {low:g} to {high:g}: pass pixels (0..255, or 0..1 as floats) before "
                         "any preprocessing; ConvVis preprocesses them as the model needs.")
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = np.clip(np.round(pixels * (255.0 if high <= 1.0 else 1.0)), 0, 255)
    return open_image(Image.fromarray(pixels.astype(np.uint8)))


def _source_name(source: ImageSource) -> str:
    name = getattr(source, "name", None)
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
    return f"'{Path(name).name}'" if isinstance(name, str) and name else "The image"


def _normalize_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit ``RGB`` or ``L``; transparency is composited onto white."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if mode == "F" or values.max(initial=0) > 65535 or values.min(initial=0) < 0:
            low, high = values.min(initial=0), values.max(initial=0)
            values, top = values - low, max(high - low, 1e-12)
        return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if mode in ("P", "PA") or "A" in mode:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        composite = Image.alpha_composite(white, rgba).convert("RGB")
        return composite.convert("L") if mode in ("LA", "La") else composite
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def fit_to_size(image: Image.Image, size: tuple[int, int], fit: Fit = "stretch") -> Image.Image:
    """Resize to ``size`` = (height, width): stretch, centre-crop to the aspect, or pad with black."""
    height, width = size
    if fit == "stretch":
        return image.resize((width, height), Image.BILINEAR)
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.BILINEAR)
    if fit == "pad":
        return ImageOps.pad(image, (width, height), Image.BILINEAR, color=0)
    raise ValueError(f"Unknown fit {fit!r}; choose one of {', '.join(FITS)}")


def as_model_sees_it(image: Image.Image, info: ModelInfo, fit: Fit = "stretch") -> Image.Image:
    """The image at the model's input size and channel count, before preprocessing."""
    image = _normalize_mode(image)
    image = image.convert("L" if info.channels == 1 else "RGB")
    return fit_to_size(image, info.input_size, fit)


def to_uint8(array: np.ndarray, normalize: bool = False) -> np.ndarray:
    """Float pixels to displayable uint8: clipped from 0..255, or min-max stretched if ``normalize``."""
    values = np.asarray(array, dtype=np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if normalize:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        values = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


PNG_ENCODINGS = WorkCounter()  # images encoded by :func:`to_png_bytes`, under "png"


def to_png_bytes(image: Image.Image) -> bytes:
    """PNG-encode an image for downloads."""
    PNG_ENCODINGS.add("png")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_zip(images: Mapping[str, Image.Image | np.ndarray]) -> bytes:
    """A ZIP holding each image as a PNG under its name (uint8 arrays are taken as pixels), for downloads."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, image in images.items():
            bundle.writestr(name, to_png_bytes(image if isinstance(image, Image.Image) else Image.fromarray(image)))
    return archive.getvalue()
