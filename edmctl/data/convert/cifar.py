"""The CIFAR-10 python tarball (`cifar-10-python.tar.gz`): `cifar-10-batches-py/data_batch_1..5`, each a
pickled dict with `data` (10000, 3072) uint8 in CHW order and `labels`. The 50,000 training images are
converted, as in EDM's dataset_tool; unpickling goes through `safe_pickle`."""

import pickle
import tarfile
from pathlib import Path

import numpy as np

from edmctl.data.convert.items import ConvertSource, array_items
from edmctl.data.convert.safe_pickle import safe_loads
from edmctl.errors import UserError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"{FOLDER}/data_batch_{i}" for i in range(1, 6))
RESOLUTION = 32


def is_tarball(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def _field(batch: object, key: str, where: str) -> object:
    if isinstance(batch, dict):
        for candidate in (key.encode(), key):
            if candidate in batch:
                return batch[candidate]
    raise UserError(f"{where} is not a CIFAR-10 batch (no `{key}` entry).")


def _read_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) labels of one pickled batch."""
    try:
        batch = safe_loads(data)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise UserError(f"{where} is not a readable CIFAR-10 batch ({e}).") from None
    images, labels = _field(batch, "data", where), np.asarray(_field(batch, "labels", where))
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == 3 * RESOLUTION**2 and labels.shape == (len(images),)):
        raise UserError(f"{where}: expected `data` uint8 (N, 3072) and N `labels`.")
    return images.reshape(-1, 3, RESOLUTION, RESOLUTION).transpose(0, 2, 3, 1), labels.astype(np.int64)


def read_cifar10(path: Path) -> ConvertSource:
    """The 50,000 training images of the CIFAR-10 python tarball, with labels 0..9."""
    try:
        with tarfile.open(path) as tar:
            members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
            missing = [name for name in TRAIN_BATCHES if name not in members]
            if missing:
                raise UserError(f"{path} is not the CIFAR-10 python tarball (no {missing[0]} in it).")
            batches = [_read_batch(tar.extractfile(members[name]).read(), f"{path}:{name}") for name in TRAIN_BATCHES]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path} is not a readable tar archive ({e}).") from None
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return ConvertSource("cifar10", len(images), 3, array_items(str(path), images, labels))
