"""Image files in a zip or a folder: the EDM dataset format (PNGs + optional dataset.json) and plain image
folders (any PIL-readable files, recursive, sorted by path). Pixels are read lazily, one file per item."""

import hashlib
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import PIL.Image
import torch

from edmctl.data import images as img
from edmctl.data.dataset import ImageDataset
from edmctl.data.labels import LABELS_FILE, parse_labels
from edmctl.data.request import Request
from edmctl.errors import UserError


class FolderStorage:
    """Files under a folder, named by their relative POSIX path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def open(self, name: str) -> BinaryIO:
        return open(self.root / name, "rb")

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size

    def where(self, name: str) -> str:
        return str(self.root / name)


class ZipStorage:
    """Members of a zip archive. The archive is opened once per process, so DataLoader workers each get their
    own handle (a ZipFile shared across fork is not safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        try:
            self._infos = {i.filename: i for i in self._archive().infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"{path} is not a readable zip file ({e}).") from None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": -1}

    def names(self) -> list[str]:
        return sorted(self._infos)

    def open(self, name: str) -> BinaryIO:
        return self._archive().open(self._infos[name])

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def where(self, name: str) -> str:
        return f"{self.path}:{name}"


Storage = FolderStorage | ZipStorage


def _read(storage: Storage, name: str) -> bytes:
    with storage.open(name) as f:
        return f.read()


def _header(storage: Storage, name: str) -> tuple[int, int, int]:
    where = storage.where(name)
    try:
        with storage.open(name) as f:
            fast = img.png_header(f.read(img.PNG_HEADER_BYTES))
            if fast is not None:
                return fast
            f.seek(0)
            with PIL.Image.open(f) as image:  # reads the header only
                return img.header(image, where)
    except (*img.UNREADABLE, zipfile.BadZipFile) as e:
        raise UserError(f"{where} is not a readable image ({e}).") from None


def _check_same_size(storage: Storage, names: list[str], request: Request) -> tuple[int, int]:
    """(resolution, channels) shared by every image; mixed sizes or modes raise, naming both files."""
    first = _header(storage, names[0])
    request.check_shape(storage.where(names[0]), *first)
    for name in names[1:]:
        shape = _header(storage, name)
        if shape != first:
            raise UserError(f"{storage.where(name)} is {shape[1]}x{shape[0]} with {shape[2]} channel(s) but "
                            f"{names[0]} is {first[1]}x{first[0]} with {first[2]}; all images must match (convert "
                            f"with `edmctl dataset SRC DEST.zip --resolution R`).")
    return first[0], first[2]


def _fingerprint(storage: Storage, names: list[str], labels_json: bytes | None) -> str:
    """sha256 of the file list with sizes, plus the labels file: cheap, and changes when the data does."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\t{storage.size(name)}\n".encode())
    if labels_json is not None:
        digest.update(b"labels\n" + labels_json)
    return digest.hexdigest()


class FileDataset(ImageDataset):
    """Images stored as files (zip or folder) with labels from an optional top-level dataset.json."""

    def __init__(self, storage: Storage, request: Request) -> None:
        self.storage = storage
        where = storage.location
        all_names = storage.names()
        extensions = img.image_extensions()
        image_names = [n for n in all_names if img.is_image_name(n, extensions)]
        if not image_names:
            raise UserError(f"{where} contains no images (looked recursively for files PIL can read: .png, .jpg, "
                            f"...).")
        labels_json = _read(storage, LABELS_FILE) if LABELS_FILE in all_names else None
        labels = None
        if labels_json is not None:
            labels = parse_labels(labels_json, storage.where(LABELS_FILE), image_names)
        self.names = image_names[:request.keep(len(image_names))]
        resolution, channels = _check_same_size(storage, self.names, request)
        kept_labels, num_classes = request.labels(where, labels, len(self.names))
        super().__init__(length=len(self.names), resolution=resolution, channels=channels, labels=kept_labels,
                         num_classes=num_classes, has_labels=labels is not None,
                         source_hash=_fingerprint(storage, self.names, labels_json), source=where)

    def _image(self, index: int) -> torch.Tensor:
        name = self.names[index]
        where = self.storage.where(name)
        with img.open_image(_read(self.storage, name), where) as image:
            array = img.pixels(image, where)
        if array.shape != (self.resolution, self.resolution, self.channels):
            raise UserError(f"{where} changed since the dataset was opened: it is now {array.shape}.")
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def open_folder(path: Path, request: Request) -> FileDataset:
    """An EDM-format folder or a plain image folder (recursive; labels from dataset.json if present)."""
    return FileDataset(FolderStorage(path), request)


def open_zip(path: Path, request: Request) -> FileDataset:
    """An EDM-format zip: PNGs such as 00000/img00000000.png plus an optional dataset.json."""
    return FileDataset(ZipStorage(path), request)
