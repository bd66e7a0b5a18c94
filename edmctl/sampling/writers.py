"""Sample outputs: `samples.npz`, one `{seed:06d}.png` per seed and `grid.png`, written all-or-nothing.

`to_uint8` is the one quantisation of the project (NVlabs generate.py): FID reads samples through it too.
"""

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edmctl import paths
from edmctl.data.images import image_extensions
from edmctl.errors import UserError
from edmctl.paths import staging_dir

SAMPLES_NPZ = "samples.npz"
GRID_PNG = "grid.png"
GRID_MAX_IMAGES = 256  # grid.png shows the first 256 seeds; every seed still gets its own PNG
GRID_CELL_MIN = 32  # pixels a side: 8x8 digits are shown 4x enlarged
GRID_GAP = 2  # grey pixels between cells
PNG_MODES = {1: "L", 3: "RGB"}


def to_uint8(x):
    """uint8 pixels = (x·127.5 + 128) clipped to 0..255 and truncated: [-1, 1] → 0..255. Tensor or ndarray in, same out."""
    if isinstance(x, np.ndarray):
        return to_uint8(torch.from_numpy(x)).numpy()
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


def png_name(seed: int) -> str:
    return f"{seed:06d}.png"


def check_writable(out_dir: Path, img_channels: int, force: bool = False) -> None:
    """Before any work: the folder can take the outputs — it can be created, and holds no earlier images or
    samples.npz (they would be overwritten) unless `force` — and the channel count is PNG-able."""
    out_dir = Path(out_dir)
    if img_channels not in PNG_MODES:
        raise UserError(f"the model makes {img_channels}-channel images; PNG output needs 1 (grey) or 3 (RGB) channels.")
    paths.check_output(out_dir, "--out", folder=True)
    if out_dir.is_dir() and not force:
        images = image_extensions()
        held = sorted(p.name for p in out_dir.iterdir() if p.name == SAMPLES_NPZ or p.suffix.lower() in images)
        if held:
            what = SAMPLES_NPZ if SAMPLES_NPZ in held else f"{len(held)} image(s) ({', '.join(held[:3])})"
            raise UserError(f"--out {str(out_dir)!r} already holds {what}; choose an empty or new folder, or pass "
                            f"--force to write over files of the same names.")


def to_pil(image: np.ndarray) -> Image.Image:
    """A (C, H, W) uint8 array as a greyscale or RGB image."""
    return Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0), PNG_MODES[image.shape[0]])


def image_grid(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) → one (C, ·, ·) mosaic, row-major in seed order, cols = ceil(sqrt(N)); cells are separated by
    a grey gap, and small images are enlarged (nearest neighbour) to at least GRID_CELL_MIN pixels a side."""
    n, c, h, w = images.shape
    zoom = max(1, GRID_CELL_MIN // max(h, w))
    images = images.repeat(zoom, axis=2).repeat(zoom, axis=3)
    h, w = h * zoom, w * zoom
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + GRID_GAP) - GRID_GAP, cols * (w + GRID_GAP) - GRID_GAP), 128, dtype=images.dtype)
    for k, image in enumerate(images):
        top, left = (k // cols) * (h + GRID_GAP), (k % cols) * (w + GRID_GAP)
        grid[:, top : top + h, left : left + w] = image
    return grid


def grid_image(pixels: np.ndarray) -> Image.Image:
    """The mosaic (`image_grid`) of the first GRID_MAX_IMAGES of uint8 (N, C, H, W) images."""
    return to_pil(image_grid(pixels[:GRID_MAX_IMAGES]))


def write_grid(path: Path, samples) -> Path:
    """The grid of `samples` (float (N, C, H, W) in seed order) alone, as one PNG written atomically."""
    samples = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    with paths.atomic_open(path) as f:
        grid_image(to_uint8(samples)).save(f, format="PNG")
    return Path(path)


def write_files(folder: Path, samples: np.ndarray, seeds: list[int]) -> list[str]:
    """Write every output into `folder`; return the file names."""
    np.savez(folder / SAMPLES_NPZ, samples=samples, seeds=np.asarray(seeds, dtype=np.int64))
    pixels = to_uint8(samples)
    for seed, image in zip(seeds, pixels):
        to_pil(image).save(folder / png_name(seed))
    grid_image(pixels).save(folder / GRID_PNG)
    return [SAMPLES_NPZ, *map(png_name, seeds), GRID_PNG]


def write_samples(out_dir: Path, samples, seeds: list[int], force: bool = False) -> list[Path]:
    """Write `samples.npz` (`samples` float64 unclipped (N, C, H, W) in seed order, `seeds`), the PNGs and the grid.

    Everything is staged in a temporary sibling folder, then renamed into place (the whole folder when `out_dir`
    is new, file by file when it exists, e.g. a run folder): a failure leaves no partial output behind.
    """
    out_dir = Path(out_dir)
    samples = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    check_writable(out_dir, samples.shape[1], force)
    with staging_dir(out_dir) as staging:
        names = write_files(staging, samples, seeds)
        if out_dir.exists():
            for name in names:
                os.replace(staging / name, out_dir / name)
        else:
            os.replace(staging, out_dir)
    return [out_dir / name for name in names]
