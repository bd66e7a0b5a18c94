"""Unpickling the CIFAR-10 python batches without running arbitrary code: a restricted Unpickler that can
only rebuild numpy arrays (plus plain dicts, lists, strings and numbers, which need no globals at all)."""

import codecs
import io
import pickle

import numpy as np


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The callables numpy's pickles name, looked up from numpy itself so both numpy 1 (`numpy.core`) and
    numpy 2 (`numpy._core`) names resolve, without importing any module the pickle names."""
    reconstruct = np.array(0).__reduce__()[0]  # multiarray._reconstruct (protocols 0-4)
    frombuffer = np.array([0]).__reduce_ex__(5)[0]  # numeric._frombuffer (protocol 5)
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how protocol 2 stores bytes written by Python 3
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global outside the numpy array reconstruction allow-list."""

    ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed") from None


def safe_loads(data: bytes) -> object:
    """Unpickle `data` (Python 2 pickles included: their str become bytes) through `RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
