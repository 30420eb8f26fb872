"""Figure images made usable: every figure's image becomes a checked PNG or JPEG, or gets the
reason it could not.

Raster files are opened with Pillow under a pixel limit (a decompression bomb is refused before
it is decoded), PDF figures are rendered with PDFium (``pypdfium2``, a wheel: nothing to install
by hand), EPS figures with Ghostscript through Pillow (``make setup`` installs it where it can).
A figure whose image fails keeps its caption and gets a ``skipped`` reason that
``litlab library show`` prints; the paper is indexed either way.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

    from retrievers.records import Figure

MAX_PIXELS = 40_000_000  # a 6000x6000 figure is already absurd; bombs claim billions
MAX_BYTES = 64 * 1024 * 1024
MIN_SIDE = 32  # smaller is an icon, a rule or a logo, not a figure
RENDER_LONG_SIDE = 1600  # PDF and EPS figures are rendered to about this many pixels
RASTER = {".png", ".jpg", ".jpeg"}
CONVERTED = {".gif", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".jpx"}


class ImageRefused(Exception):
    """An image that cannot be used as a figure; the message says why."""


def prepare_figures(figures: Sequence[Figure], folder: Path, thumbs: Path | None = None
                    ) -> None:
    """Give each figure a usable image file (converted into ``folder`` where needed) or a
    ``skipped`` reason; with ``thumbs``, also a small copy there for CLIP (see
    :func:`thumbnail_path`). Figures without an image are left as they are (caption only)."""
    for f in figures:
        if not f.image_path or f.skipped:
            continue
        try:
            path, image = usable_image(Path(f.image_path), folder)
            f.image_path = str(path)
            if thumbs is not None:
                save_thumbnail(image, thumbnail_path(thumbs, f.image_path))
        except ImageRefused as e:
            f.skipped = str(e)


THUMB_SIDE = 448  # short side of the copy CLIP reads: any CLIP up to 448 px (ViT-L/14-336)


def thumbnail_path(thumbs: Path, image_path: str) -> Path:
    """Where the CLIP-sized copy of ``image_path`` is kept. Decoding a 1600-pixel PNG took 14
    ms of the 78 ms a figure cost to embed (bench/figures.py); the copy decodes in about 2."""
    return thumbs / f"{hashlib.sha256(image_path.encode()).hexdigest()[:24]}.png"


def save_thumbnail(image: Image, target: Path) -> None:
    from PIL import Image as PILImage

    factor = min(image.size) // THUMB_SIDE
    small = image.reduce(factor) if factor >= 2 else image
    if min(small.size) > THUMB_SIDE:
        scale = THUMB_SIDE / min(small.size)
        small = small.resize((max(1, round(small.width * scale)),
                              max(1, round(small.height * scale))), PILImage.Resampling.BILINEAR)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    small.save(tmp, format="PNG", compress_level=1)
    tmp.replace(target)


def usable_image(path: Path, folder: Path) -> tuple[Path, Image]:
    """``path`` itself when it is a sound PNG or JPEG; else a PNG rendered or converted from it
    into ``folder``; with the decoded image. Raises :class:`ImageRefused` with the reason."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ImageRefused(f"image file {path.name} is missing")
    if path.stat().st_size > MAX_BYTES:
        raise ImageRefused(f"{path.name} is larger than {MAX_BYTES >> 20} MiB")
    if suffix in RASTER:
        return path, open_raster(path)
    target = folder / f"{path.stem}-{_digest(path)}.png"
    if suffix == ".pdf":
        image = render_pdf(path)
    elif suffix in {".eps", ".ps"}:
        image = render_eps(path)
    elif suffix in CONVERTED:
        image = open_raster(path)
    else:
        raise ImageRefused(f"{path.name}: unsupported image format {suffix or '(none)'}")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(target)
    return target, image


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]


def _check_size(path: Path, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise ImageRefused(f"{path.name} is {w}x{h} pixels, more than {MAX_PIXELS:,} "
                           "(a decompression bomb?)")
    if min(w, h) < MIN_SIDE:
        raise ImageRefused(f"{path.name} is {w}x{h} pixels: too small to be a figure")


def open_raster(path: Path, fit: int | None = None) -> Image:
    """A checked raster image, decoded once (a corrupt one fails here), in RGB. With ``fit``,
    shrunk by a whole factor while its short side stays at least ``fit`` pixels: a 1600-pixel
    figure bound for CLIP's 224 need not be resized from full size (box-filtered, which is
    also what a good downscale does first)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            _check_size(path, im.size)
            if fit and im.format == "JPEG":
                im.draft("RGB", (fit, fit))  # decode at 1/2, 1/4 or 1/8 size directly
            im.load()
            image = im.convert("RGB")
    except ImageRefused:
        raise
    except PILImage.DecompressionBombError as e:
        raise ImageRefused(f"{path.name} claims too many pixels (decompression bomb?)") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageRefused(f"{path.name} is not a readable image ({e})") from e
    factor = min(image.size) // fit if fit else 1
    return image.reduce(factor) if factor >= 2 else image


def render_pdf(path: Path, page: int = 0) -> Image:
    """A PDF figure's first page as an image, its long side about RENDER_LONG_SIDE pixels."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        raise ImageRefused(f"{path.name} is not a readable PDF ({e})") from e
    try:
        if len(pdf) == 0:
            raise ImageRefused(f"{path.name} has no pages")
        p = pdf[page]
        w, h = p.get_size()
        if min(w, h) <= 0:
            raise ImageRefused(f"{path.name} has an empty page")
        scale = min(RENDER_LONG_SIDE / max(w, h), 8.0)
        image = p.render(scale=scale).to_pil().convert("RGB")
    finally:
        pdf.close()
    _check_size(path, image.size)
    return image


def render_eps(path: Path) -> Image:
    """An EPS figure rendered by Ghostscript (through Pillow)."""
    if shutil.which("gs") is None:
        raise ImageRefused(f"{path.name}: EPS figures need Ghostscript, which is not installed "
                           "(`apt install ghostscript`, then index the paper again)")
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            w, h = im.size
            scale = max(1, min(8, round(RENDER_LONG_SIDE / max(w, h, 1))))
            im.load(scale=scale)  # type: ignore[call-arg]
            image = im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageRefused(f"{path.name} is not a readable EPS file ({e})") from e
    _check_size(path, image.size)
    return image
