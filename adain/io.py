"""Image files: reading them defensively, writing them atomically, finding them in folders.

Hostile or odd files raise ``ImageReadError`` naming the file; no global Pillow setting is ever changed
(limits are checked locally instead). Turning images into tensors is ``adain.images``' job.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import DiskFullError, ImageReadError, InputError

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_MAX_PIXELS", "read_image", "read_size", "to_rgb", "save_image",
           "list_images"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


DEFAULT_MAX_PIXELS = 2 * 89_478_485
"""Files with more pixels than this are refused as decompression bombs (Pillow's own error threshold,
applied here per call so the global ``Image.MAX_IMAGE_PIXELS`` is never touched)."""


_BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white, as viewers show them


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file as an 8-bit RGB ``PIL.Image``.

    EXIF orientation is applied; every Pillow mode is converted (alpha composited onto white, 16-bit
    scaled rather than clipped). Raises ``ImageReadError`` naming ``path`` for a missing, empty,
    truncated or non-image file, or one over ``max_pixels`` (decompression bomb).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we decide with our own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageReadError(
                        f"{path}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels} "
                        "(possible decompression bomb); pass a larger max_pixels if the file is trusted"
                    )
                img.load()
                return to_rgb(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: cannot read image (truncated or corrupt?): {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed files surface as struct.error, IndexError, ...
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def read_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels (EXIF orientation applied:
    a rotated photo swaps H and W). Raises ``ImageReadError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                orientation = img.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any header failure is a bad file
        raise ImageReadError(f"{path}: cannot read image header ({type(exc).__name__}: {exc})") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any-mode ``PIL.Image`` -> 8-bit RGB: EXIF orientation applied, alpha composited onto white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # convert("RGB") would clip 16/32-bit values at 255; scale to the format's range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = 1.0 if arr.max(initial=0) <= 1.0 else float(arr.max())
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, _BACKGROUND + (255,))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def save_image(image: Image.Image, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Write ``image`` to ``path`` (format from the extension), atomically: a temporary file, then rename.

    Parent directories are created. Raises ``InputError`` for an extension Pillow cannot write, and
    ``DiskFullError`` when the disk is full (no partial file is left).
    """
    path = Path(path)
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise InputError(f"{path}: unknown image extension {path.suffix!r}; use e.g. .png or .jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_path(path) as tmp:
            image.save(tmp, format=fmt, **options)
    except DiskFullError:
        raise  # one line naming the file already; not the image's fault
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: cannot write image: {exc}") from None
    return path


def list_images(path: str | os.PathLike) -> list[Path]:
    """A file -> ``[file]``; a directory -> every image below it (recursive, extensions case-insensitive), sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ImageReadError(f"{path}: no such file or directory")
    return sorted(_walk_images(path))


def _walk_images(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                yield Path(dirpath) / name
