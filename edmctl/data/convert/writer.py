"""Writing the EDM dataset format: a zip of `00000/img00000000.png`, ... plus `dataset.json` with
`{"labels": [[name, class], ...]}` (or null), as NVlabs/edm's dataset_tool writes it. Written under a
temporary name in the destination folder and renamed only when complete."""

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import PIL.Image

from edmctl.data import images as img
from edmctl.data.convert.items import Item
from edmctl.data.labels import LABELS_FILE
from edmctl.errors import UserError
from edmctl.paths import atomic_open


def archive_name(index: int) -> str:
    """`00000/img00000000.png` for index 0: folders of 1000 images, as in EDM's dataset_tool."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def encode_png(array: np.ndarray) -> bytes:
    image = PIL.Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, "L" if array.shape[2] == 1 else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _shaped(where: str, array: np.ndarray, resolution: int | None, first: tuple | None) -> np.ndarray:
    """The image at the output resolution: center-cropped and resized when asked, else checked."""
    if resolution is not None:
        return img.center_crop_resize(array, resolution)
    height, width, _ = array.shape
    if height != width:
        raise UserError(f"{where} is {width}x{height}, not square: pass --resolution R to center-crop and resize.")
    if first is not None and array.shape != first:
        raise UserError(f"{where} is {width}x{height} but earlier images are {first[1]}x{first[0]}: pass "
                        f"--resolution R to resize them all.")
    return array


def _write_images(archive: zipfile.ZipFile, items: Iterator[Item], resolution: int | None,
                  progress: Callable[[int], None]) -> tuple[list[list], tuple[int, int, int] | None]:
    labels: list[list] = []
    first = None
    for index, (where, array, label) in enumerate(items):
        array = _shaped(where, array, resolution, first)
        first = first or array.shape
        name = archive_name(index)
        archive.writestr(name, encode_png(array))
        labels.append([name, label])
        progress(1)
    return labels, first


def write_edm_zip(items: Iterator[Item], dest: Path, *, resolution: int | None = None, max_images: int | None = None,
                  progress: Callable[[int], None] = lambda n: None) -> dict:
    """Write up to `max_images` items to `dest` in the EDM zip format; returns what was written."""
    dest = Path(dest)
    new_folders = [folder for folder in reversed(dest.parents) if not folder.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(dest) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            labels, shape = _write_images(archive, islice(items, max_images), resolution, progress)
            if shape is None:
                raise UserError("the source has no images to convert.")
            labelled = all(label is not None for _, label in labels)
            archive.writestr(LABELS_FILE, json.dumps({"labels": labels if labelled else None}))
    except BaseException:
        for folder in reversed(new_folders):  # leave no trace of a failed conversion
            folder.rmdir()
        raise
    classes = {label for _, label in labels} if labelled else set()
    return {"dest": str(dest), "images": len(labels), "resolution": shape[0], "channels": shape[2],
            "num_classes": max(classes) + 1 if classes else 0, "labelled": labelled}
