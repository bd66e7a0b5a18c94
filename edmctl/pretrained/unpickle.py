"""Reading an NVlabs/edm network pickle as data, without running any code it carries.

NVlabs pickles every network, loss and augmentation object through `torch_utils.persistence`: the pickle calls
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` holds the class name, the *source code*
of the class's module (`module_src`) and the object's state (its `__dict__`: `_parameters`, `_buffers`,
`_modules`, `_init_kwargs`, ...). A plain `pickle.load` imports `torch_utils` and executes `module_src`.

`read_pickle` uses a restricted `pickle.Unpickler` instead. It resolves only the globals in `ALLOWED_GLOBALS`
(torch's tensor rebuild functions, `collections.OrderedDict`, numpy scalars, torch's container modules) and
maps the persistence hook to `Persistent`, a plain record of class name and state; `module_src` is never run,
and a source that would run anything when imported is refused outright (`edmctl.pretrained.source_check`).
Tensors stored as bytes (`torch.storage._load_from_bytes`) are read with `torch.load(weights_only=True)`.
Every other global, and every defect of the file, is a UserError naming it; nothing is written.
"""

import collections
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from edmctl.errors import UserError
from edmctl.pretrained.source_check import check_module_source


class Persistent:
    """An object pickled by `torch_utils.persistence`, as data: its class name and its state (`__dict__`)."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    @property
    def init_kwargs(self) -> dict:
        """The keyword arguments its constructor was called with (persistence records them)."""
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}


class PlainModule:
    """A torch container module (`ModuleDict`, `ModuleList`, `Sequential`) as data: its state only."""

    class_name = "torch container"

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class EasyDict(dict):
    """`dnnlib.EasyDict` as the plain dict it is."""


def reconstruct_persistent(meta) -> Persistent:
    """Stands in for `torch_utils.persistence._reconstruct_persistent_obj`: checks `meta` and its source, runs nothing."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UserError("a `torch_utils.persistence` object in it has no class name; it is not an NVlabs/edm network pickle.")
    if not isinstance(meta.get("module_src"), str) or not isinstance(meta.get("state"), dict):
        raise UserError(f"the persistence record of {meta['class_name']} lacks its module source or state; it is damaged.")
    check_module_source(meta["module_src"], meta["class_name"])
    return Persistent(meta["class_name"], meta["state"])


def load_storage_bytes(data: bytes):
    """Stands in for `torch.storage._load_from_bytes`: the same bytes, read with `weights_only=True`."""
    if not isinstance(data, (bytes, bytearray)):
        raise UserError("a tensor storage in it is not stored as bytes; it is not an NVlabs/edm network pickle.")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def numpy_scalar(dtype, data=None):
    """Stands in for numpy's scalar reconstructor, for numeric dtypes only (an object dtype could hold anything)."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UserError(f"a numpy scalar of dtype {dtype!r} in it is not a plain number; refusing it.")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent,
    ("torch.storage", "_load_from_bytes"): load_storage_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): numpy_scalar,
    ("numpy._core.multiarray", "scalar"): numpy_scalar,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch.nn.modules.container", "ModuleDict"): PlainModule,
    ("torch.nn.modules.container", "ModuleList"): PlainModule,
    ("torch.nn.modules.container", "Sequential"): PlainModule,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves `ALLOWED_GLOBALS` only; a persistent id (torch.save's format) is refused too."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UserError(f"it refers to {module}.{name}, which an NVlabs/edm network pickle does not need; "
                            f"refusing to load it (nothing was run).")
        return ALLOWED_GLOBALS[module, name]

    def persistent_load(self, pid):
        raise UserError("it uses persistent ids (a torch.save file?); expected an NVlabs/edm network pickle.")


def read_pickle(path: Path) -> dict:
    """The top-level dict of an NVlabs network pickle (`ema`, `loss_fn`, `augment_pipe`, `dataset_kwargs`), with
    `Persistent` records in place of NVlabs objects. UserError, naming the file, for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; pass the path of an NVlabs/edm network pickle (.pkl).")
    try:
        with open(path, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OverflowError, MemoryError, UnicodeDecodeError, ImportError) as e:
        raise UserError(f"{path} is not a readable pickle ({type(e).__name__}: {e}); is it truncated or another "
                        f"kind of file?") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}, not the dict of an NVlabs/edm network pickle.")
    if not isinstance(data.get("ema"), Persistent):
        raise UserError(f"{path} has no `ema` network; expected an NVlabs/edm network pickle (network-snapshot-*.pkl "
                        f"or a published checkpoint).")
    return data
