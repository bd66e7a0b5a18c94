"""Reading and resizing single images with PIL, as uint8 arrays (H, W, C)."""

import io

import numpy as np
import PIL.Image

from edmctl.errors import UserError

MAX_RESOLUTION = 4096  # pixels a side of a dataset image: the paper's largest data is 64x64, EDM2's 512x512

# What PIL raises for a file that is not a readable image: damaged, truncated, or a decompression bomb (a header
# claiming more than 2 x Image.MAX_IMAGE_PIXELS pixels, e.g. a 30000 x 30000 PNG of a few bytes).
UNREADABLE = (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError)

# Modes read as they are, and lossless modes read through a conversion; anything else (alpha, CMYK, 16-bit)
# needs an explicit conversion with `edmctl dataset`.
CHANNELS_OF_MODE = {"L": 1, "RGB": 3}
LOSSLESS_CONVERSION = {"1": "L", "P": "RGB"}


def image_extensions() -> set[str]:
    """Every file extension PIL can read (".png", ".jpg", ...), lower case."""
    PIL.Image.init()
    return {ext.lower() for ext, fmt in PIL.Image.EXTENSION.items() if fmt in PIL.Image.OPEN}


def is_image_name(name: str, extensions: set[str]) -> bool:
    dot = name.rfind(".")
    return dot > name.rfind("/") and name[dot:].lower() in extensions


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_BYTES = 26  # signature, IHDR length and tag, width, height, bit depth, colour type
PNG_CHANNELS_OF_COLOR_TYPE = {0: 1, 2: 3}  # 8-bit grayscale and RGB: exactly the modes L and RGB


def png_header(prefix: bytes) -> tuple[int, int, int] | None:
    """(height, width, channels) straight from a PNG's IHDR when it is 8-bit L or RGB, else None (ask PIL).
    Ten times cheaper than PIL for checking every file of a large dataset."""
    if len(prefix) < PNG_HEADER_BYTES or not prefix.startswith(PNG_SIGNATURE) or prefix[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(prefix[16:20], "big"), int.from_bytes(prefix[20:24], "big")
    bit_depth, color_type = prefix[24], prefix[25]
    channels = PNG_CHANNELS_OF_COLOR_TYPE.get(color_type)
    return (height, width, channels) if bit_depth == 8 and channels else None


def open_image(data: bytes, where: str) -> PIL.Image.Image:
    """PIL image from encoded bytes (only the header is read until pixels are asked for)."""
    try:
        return PIL.Image.open(io.BytesIO(data))
    except UNREADABLE as e:
        raise UserError(f"{where} is not a readable image ({e}).") from None


def header(image: PIL.Image.Image, where: str) -> tuple[int, int, int]:
    """(height, width, channels) of an image as a dataset reads it; unsupported modes raise."""
    mode = LOSSLESS_CONVERSION.get(image.mode, image.mode)
    if mode not in CHANNELS_OF_MODE:
        raise UserError(f"{where} has PIL mode {image.mode}; datasets read L (grayscale) or RGB images only "
                        f"(convert it with `edmctl dataset SRC DEST.zip`).")
    return image.height, image.width, CHANNELS_OF_MODE[mode]


def pixels(image: PIL.Image.Image, where: str) -> np.ndarray:
    """The image's pixels as uint8 (H, W, C) in its dataset mode (L or RGB)."""
    mode = LOSSLESS_CONVERSION.get(image.mode, image.mode)
    try:
        array = np.asarray(image.convert(mode) if mode != image.mode else image, dtype=np.uint8)
    except UNREADABLE as e:
        raise UserError(f"{where} could not be decoded ({e}).") from None
    return array[:, :, None] if array.ndim == 2 else array


def to_mode(image: PIL.Image.Image, channels: int) -> PIL.Image.Image:
    """Any PIL image as L (channels=1) or RGB (channels=3); alpha is dropped. For converters."""
    target = "L" if channels == 1 else "RGB"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return image if image.mode == target else image.convert(target)


def center_crop_resize(array: np.ndarray, resolution: int) -> np.ndarray:
    """Center-crop (H, W, C) uint8 to a square, then resize to `resolution` with LANCZOS (EDM dataset_tool's
    `center-crop` transform)."""
    height, width, channels = array.shape
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    square = array[top:top + crop, left:left + crop]
    if crop == resolution:
        return np.ascontiguousarray(square)
    image = PIL.Image.fromarray(square[:, :, 0] if channels == 1 else square, "L" if channels == 1 else "RGB")
    resized = np.asarray(image.resize((resolution, resolution), PIL.Image.LANCZOS), dtype=np.uint8)
    return resized[:, :, None] if resized.ndim == 2 else resized
