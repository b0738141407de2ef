"""Images made small enough for the model: decoded safely, downscaled, re-encoded. CPU-bound."""

from __future__ import annotations

import base64
import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.errors import FileProblem

log = logging.getLogger(__name__)

MODEL_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")  # the image inputs OpenAI-style models document


@dataclass(frozen=True, slots=True)
class PreparedImage:
    name: str
    mimetype: str  # image/jpeg or image/png
    data: bytes
    width: int
    height: int
    original: tuple[int, int]

    def data_url(self) -> str:
        return f"data:{self.mimetype};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def tokens(self) -> int:
        """What OpenAI's vision models charge for it at high detail: 85 + 170 per 512 px tile."""
        tiles = -(-self.width // 512) * -(-self.height // 512)
        return 85 + 170 * tiles


def fitted_size(width: int, height: int, long_side: int, short_side: int) -> tuple[int, int]:
    """The largest size with the same shape within both limits (never larger than it was)."""
    long, short = max(width, height), min(width, height)
    scale = min(1.0, long_side / long, short_side / short) if long and short else 1.0
    return max(1, round(width * scale)), max(1, round(height * scale))


def prepare_image(
    name: str, data: bytes | bytearray, *, long_side: int, short_side: int, max_pixels: int
) -> PreparedImage:
    """Decode (first frame of an animation), orient, downscale and re-encode an image: JPEG, or
    PNG where it has transparency. A file that is not an image, or decodes to more than
    `max_pixels`, is a FileProblem."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only what the models take: TIFF, BMP, PSD and Pillow's other decoders (and their
            # crash files) are never reached, whatever the file is named.
            opened = Image.open(io.BytesIO(data), formats=MODEL_FORMATS)
            width, height = opened.size
            if width * height > max_pixels:
                raise FileProblem(
                    f"{name} is {width:,}×{height:,} pixels, larger than I can open; "
                    "send a smaller screenshot."
                )
            opened.draft("RGB", fitted_size(width, height, long_side, short_side))  # JPEG: cheap
            opened.seek(0)
            opened.load()
            image: Image.Image = ImageOps.exif_transpose(opened) or opened
    except FileProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FileProblem(f"{name} is larger than I can open; send a smaller image.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        log.info("unreadable image %s: %s: %s", name, type(exc).__name__, exc)
        raise FileProblem(
            f"{name} is damaged or not really an image, so I cannot see it."
        ) from None
    original = (width, height)
    alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    image = image.convert("RGBA" if alpha else "RGB")
    size = fitted_size(*image.size, long_side, short_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if alpha:
        image.save(out, "PNG", optimize=False)
        mimetype = "image/png"
    else:
        image.save(out, "JPEG", quality=85)
        mimetype = "image/jpeg"
    return PreparedImage(name, mimetype, out.getvalue(), image.width, image.height, original)
