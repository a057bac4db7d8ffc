"""Image files: reading them defensively, writing them atomically (with the source's colour profile and
EXIF when asked), finding them in folders.

Hostile or odd files raise ``ImageReadError`` naming the file; no global Pillow setting is ever changed
(limits are checked locally instead). Turning images into tensors is ``adain._images``' job.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypedDict

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._atomic import InputFiles, atomic_path, check_output, exists_error, file_id
from .errors import DiskFullError, ImageReadError, InputError

_log = logging.getLogger(__name__)
_ORIENTATION = 0x0112  # the EXIF tag read_image applies
_GPS_IFD = 0x8825  # the EXIF pointer to the GPS tags (position, altitude, time, direction)
_JPEG_MARKER_BYTES = 65533  # the most EXIF a JPEG can hold (one APP1 marker)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


DEFAULT_MAX_PIXELS = 2 * 89_478_485
"""Files with more pixels than this (about 179 megapixels: a 12000x12000 photo, 144 MP, passes) are refused as
decompression bombs: Pillow's own error threshold, applied here per call so the global
``Image.MAX_IMAGE_PIXELS`` is never touched. ``max_pixels=`` (``--max-pixels``) raises it for trusted files."""


METADATA_MODES = ("no-gps", "keep", "strip")
"""What an output keeps of its source's metadata (``metadata=``, ``--metadata``): ``"no-gps"`` the colour
profile and EXIF without the GPS position (the default: a picture shared must not tell where it was
taken, but its colours and camera settings stay right), ``"keep"`` both as they are, ``"strip"`` neither."""

DEFAULT_METADATA = "no-gps"


def check_metadata(metadata: object) -> str:
    """``metadata``: one of ``METADATA_MODES``; ``InputError`` naming it otherwise."""
    if isinstance(metadata, str) and metadata in METADATA_MODES:
        return metadata
    raise InputError(f"metadata: expected one of {', '.join(map(repr, METADATA_MODES))}, got {metadata!r}")


_BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white, as viewers show them


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file as an 8-bit RGB ``PIL.Image``.

    EXIF orientation is applied; every Pillow mode is converted (alpha composited onto white, 16-bit
    scaled rather than clipped). Raises ``ImageReadError`` naming ``path`` for a missing, empty,
    truncated or non-image file, or one over ``max_pixels`` (decompression bomb).
    """
    path = Path(path)
    check_regular_file(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we decide with our own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_pixels(path, *img.size, max_pixels)
                img.load()
                return to_rgb(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise _bomb(path, exc, max_pixels) from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: cannot read image (truncated or corrupt?): {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed files surface as struct.error, IndexError, ...
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def check_pixels(path: str | os.PathLike, width: int, height: int, max_pixels: int) -> None:
    """``ImageReadError`` naming ``path`` when ``width x height`` is over ``max_pixels`` (a possible
    decompression bomb: a small file that decodes to gigabytes)."""
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} = {width * height} pixels is over the limit of {max_pixels} (possible "
            "decompression bomb); if the file is trusted, raise max_pixels"
        )


def _bomb(path: Path, exc: Exception, max_pixels: int | None) -> ImageReadError:
    """Pillow refused the file before our own check could (over twice its ``MAX_IMAGE_PIXELS``): the same
    words as ``check_pixels``. Pillow's global limit is never changed, so raising ``max_pixels`` does not
    admit such a file; the message says what does."""
    limit = f"the limit of {max_pixels}" if max_pixels is not None else "the limit"
    return ImageReadError(
        f"{path}: refused as a possible decompression bomb, over {limit} and over Pillow's own hard limit of "
        f"{2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels ({exc}); raising max_pixels does not admit it, cut the "
        "image into smaller files"
    )


def check_regular_file(path: Path) -> None:
    """``ImageReadError`` naming ``path`` unless it is a regular file (or a link to one): a missing path,
    a folder, a FIFO, a socket or a device (``/dev/zero`` would be read forever) are refused before opening."""
    if path.is_file():
        return
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    what = "a folder" if path.is_dir() else "a FIFO, socket or device"
    raise ImageReadError(f"{path}: not a regular file ({what}); give an image file")


def read_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding the pixels (EXIF orientation applied:
    a rotated photo swaps H and W). Raises ``ImageReadError`` naming the file."""
    path = Path(path)
    check_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                orientation = img.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as exc:
        raise _bomb(path, exc, None) from None
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


def save_image(
    image: Image.Image,
    path: str | os.PathLike,
    *,
    quality: int = 95,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    overwrite: bool = True,
    inputs: Iterable[str | os.PathLike] | InputFiles = (),
) -> Path:
    """Write ``image`` to ``path`` (format from the extension), atomically: a temporary file, then rename.

    Parent directories are created. ``quality`` (0-100) is JPEG's and WebP's; ``icc_profile`` and ``exif``
    (e.g. from ``read_metadata``) are embedded where the format holds them (JPEG, PNG, WebP; TIFF the
    profile; EXIF too large for a JPEG is left out). The output policy is ``adain._atomic.check_output``:
    ``OutputIsInputError`` if ``path`` is one of ``inputs`` (files or folders the image was made from),
    even with ``overwrite``; ``overwrite=False`` raises ``OutputExistsError`` rather than replace an
    existing file, also one that appears while the image is encoded. Raises ``InputError`` for an
    extension Pillow cannot write or a file or folder that cannot be written, and ``DiskFullError`` when
    the disk is full (no partial file is left). Returns ``path``.
    """
    path = Path(path)
    fmt = image_format(path)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
        raise InputError(f"quality: expected an integer from 0 to 100, got {quality!r}")
    check_output(path, overwrite=overwrite, inputs=inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
        raise InputError(f"{path}: cannot create the folder {path.parent}: {reason or exc}") from None
    options: dict[str, int | bytes] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    options.update({k: v for k, v in (("icc_profile", icc_profile), ("exif", exif)) if v})
    if fmt == "JPEG" and len(exif or b"") > _JPEG_MARKER_BYTES:
        del options["exif"]  # cannot fit in a JPEG: the picture matters more than its EXIF
    try:
        with atomic_path(path, replace=overwrite) as tmp:
            image.save(tmp, format=fmt, **options)
    except DiskFullError:
        raise  # one line naming the file already; not the image's fault
    except FileExistsError as exc:
        if overwrite:
            raise InputError(f"{path}: cannot write image: {exc}") from None
        raise exists_error(path, "appeared while the image was written") from None
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: cannot write image: {exc}") from None
    return path


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for writing ``path`` (from its extension, any case); ``InputError`` if none."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"{path}: unknown image extension {path.suffix!r}; use e.g. .png or .jpg")
    return fmt


class ImageMetadata(TypedDict, total=False):
    """What ``read_metadata`` found: ``save_image`` keywords."""

    icc_profile: bytes
    exif: bytes


def read_metadata(path: str | os.PathLike, *, metadata: str = DEFAULT_METADATA) -> ImageMetadata:
    """The colour profile and EXIF of an image file as ``save_image`` keywords: ``{"icc_profile": ...,
    "exif": ...}``, with only what the file has that fits what ``read_image`` returns and what
    ``metadata`` keeps (``METADATA_MODES``): by default (``"no-gps"``) the EXIF loses its GPS tags
    (position, altitude, time and direction), ``"keep"`` keeps them, ``"strip"`` returns ``{}`` without
    opening the file.

    The EXIF orientation is reset to 1 (``read_image`` has already turned the pixels) and the EXIF
    thumbnail, a picture of the original, is left out; a profile is kept only if it describes RGB (a
    grey or CMYK profile does not fit the RGB pixels ``read_image`` gives). EXIF is read from JPEG, PNG
    and WebP files. Raises ``ImageReadError`` naming a file whose header cannot be read.
    """
    path = Path(path)
    if check_metadata(metadata) == "strip":
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                icc, raw = img.info.get("icc_profile"), img.info.get("exif")
        found: ImageMetadata = {}
        if isinstance(icc, bytes) and icc[16:20] == b"RGB ":
            found["icc_profile"] = icc
        if isinstance(raw, bytes) and raw:
            exif = Image.Exif()
            exif.load(raw)
            if _ORIENTATION in exif:
                exif[_ORIENTATION] = 1
            if metadata != "keep" and _GPS_IFD in exif:
                del exif[_GPS_IFD]  # the pointer and, with it, the whole GPS directory
            found["exif"] = exif.tobytes()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any header failure is a bad file
        raise ImageReadError(f"{path}: cannot read image metadata ({type(exc).__name__}: {exc})") from None
    return found


# ---- folders -------------------------------------------------------------------------------------

OnError = Callable[[Path, str], None]
"""``on_error(path, reason)``: told about a folder entry that cannot be read."""


def list_images(
    path: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = (), on_error: OnError | None = None
) -> list[Path]:
    """A file -> ``[file]``; a directory -> every image below it (recursive, extensions case-insensitive), sorted.

    Hidden files and folders (names starting with ``.``) are ignored. Symbolic links are followed, but
    each real folder is walked once, so a link loop (``loop -> .``) or two names of one folder give its
    images once (under the plain name rather than a link's). Folders in ``exclude`` (an output folder
    inside the input folder) are not entered. An entry that cannot be read (a folder that cannot be
    listed, an image without read permission, a broken link) is left out and passed to
    ``on_error(path, reason)``; without ``on_error`` it is logged as a warning (logger ``adain._io``).
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        check_regular_file(path)  # raises: missing, or a FIFO, socket or device
    seen = {key for key in map(file_id, exclude) if key is not None} - {file_id(path)}
    return sorted(_walk_images(path, seen, on_error or _log_unreadable))


def _log_unreadable(path: Path, reason: str) -> None:
    _log.warning("%s: left out, cannot be read (%s)", path, reason)


def _walk_images(root: Path, seen: set, report: OnError) -> Iterator[Path]:
    """Images below ``root``: folders reached by plain names first, then those reached through links."""
    folders: list[Path] = [root]
    linked: list[Path] = []
    while folders or linked:
        folder = folders.pop() if folders else linked.pop(0)
        key = file_id(folder)
        if key is None:
            report(folder, "the folder vanished or cannot be examined")
            continue
        if key in seen:
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as listing:
                entries = sorted((e for e in listing if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            report(folder, f"cannot list the folder: {exc.strerror or exc}")
            continue
        for entry in entries:
            kind = _kind(entry, report)
            if kind == "image":
                yield Path(entry.path)
            elif kind == "folder":
                (linked if entry.is_symlink() else folders).append(Path(entry.path))


def _kind(entry: os.DirEntry, report: OnError) -> str | None:
    """``"folder"``, ``"image"`` or ``None`` (anything else, or unreadable: then reported)."""
    is_image = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
    try:
        if entry.is_dir():
            return "folder"
        if not entry.is_file():
            if is_image and entry.is_symlink():
                report(Path(entry.path), "broken symbolic link")
            return None
    except OSError as exc:
        if is_image or not entry.is_symlink():
            report(Path(entry.path), exc.strerror or str(exc))
        return None
    if is_image and not os.access(entry.path, os.R_OK):
        report(Path(entry.path), "permission denied")
        return None
    return "image" if is_image else None
