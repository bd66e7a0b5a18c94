"""Where images come from: a folder of images, a zip of images (EDM dataset zip), or any iterator of batches.

A source is a sized, indexable list of uint8 CHW images (`ImageList`); `batches` turns it into the iterator of
uint8 NCHW batches that `pipeline.compute_stats` consumes, the same input a sampler's generator produces.
"""

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from edmctl.data.images import UNREADABLE
from edmctl.errors import UserError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


@dataclass
class ImageList:
    """`count` images, `load(i)` -> uint8 CHW tensor; `name` says where they come from in messages."""

    name: str
    count: int
    load: Callable[[int], torch.Tensor]

    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the first image: every image of a source must share it."""
        return tuple(self.load(0).shape)


def decode_image(data: bytes | Path, name: str) -> torch.Tensor:
    """PNG/JPG bytes or file -> uint8 CHW: grayscale stays 1 channel, anything else becomes RGB (as clean-fid)."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            im = im if im.mode == "L" else im.convert("RGB")
            array = np.array(im, dtype=np.uint8)  # a writable copy
    except UNREADABLE as e:
        raise UserError(f"Image {name} cannot be decoded ({e}); remove it or replace it with a PNG.") from None
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def image_folder(folder: str | Path) -> ImageList:
    """Every image file under `folder` (recursively), sorted by relative path; a top-level `grid.png` is
    `edmctl sample`'s contact sheet of the samples, not a sample, and is skipped."""
    from edmctl.sampling.writers import GRID_PNG

    folder = Path(folder)
    files = sorted((p for p in folder.rglob("*") if p.is_file() and _is_image(p.name) and p != folder / GRID_PNG),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise UserError(f"Folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return ImageList(str(folder), len(files), lambda i: decode_image(files[i], str(files[i])))


def image_zip(path: str | Path) -> ImageList:
    """Every image inside the zip `path` (an EDM dataset zip, or clean-fid's zip input), sorted by name."""
    try:
        archive = zipfile.ZipFile(path)
        names = sorted(n for n in archive.namelist() if _is_image(n))
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"Zip file {path} cannot be read ({e}); pass a zip of PNG/JPG images or a folder.") from None
    if not names:
        raise UserError(f"Zip file {path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return ImageList(str(path), len(names), lambda i: decode_image(archive.read(names[i]), f"{path}:{names[i]}"))


def open_images(source: str | Path) -> ImageList:
    """A folder or a .zip of images; UserError naming what is accepted otherwise."""
    path = Path(source)
    if path.is_dir():
        return image_folder(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return image_zip(path)
    raise UserError(f"{source} is neither a folder of images nor a .zip of images.")


def dataset_images(dataset) -> ImageList:
    """An `edmctl.data` dataset (items `(uint8 CHW, label)`) as an ImageList."""
    return ImageList(str(getattr(dataset, "source", dataset)), len(dataset), lambda i: dataset[i][0])


def take(images: ImageList, num: int | None) -> ImageList:
    """The first `num` images (all when None); UserError when the source has fewer, or fewer than 2 (FID needs a
    covariance)."""
    if num is None:
        if images.count < 2:
            raise UserError(f"{images.name} holds {images.count} image(s); FID needs at least 2 (a covariance).")
        return images
    if num < 2:
        raise UserError(f"--num must be at least 2 (FID needs a covariance), got {num}.")
    if images.count < num:
        raise UserError(f"{images.name} holds {images.count} images, fewer than --num {num}; pass --num {images.count} or add images.")
    return ImageList(images.name, num, images.load)


def batches(images: ImageList, batch_size: int) -> Iterator[torch.Tensor]:
    """uint8 NCHW batches of `images` in order; UserError when an image's shape differs from the first's."""
    shape = None
    for start in range(0, images.count, batch_size):
        batch = [images.load(i) for i in range(start, min(start + batch_size, images.count))]
        shape = shape or tuple(batch[0].shape)
        for offset, image in enumerate(batch):
            if tuple(image.shape) != shape:
                raise UserError(f"Image {start + offset} of {images.name} has shape {tuple(image.shape)}, not {shape} like the first; all images must share one size.")
        yield torch.stack(batch)
