"""Recognising an NVlabs/edm network from its pickled constructor arguments: the edmctl recipe that builds the
same D(x; σ) (EDM Eq. 7), and its weights under edmctl's parameter names.

NVlabs builds `ema = <Precond>(img_resolution, img_channels, label_dim, use_fp16, <constants>, model_type,
**model_kwargs)` and the precond builds `<model_type>(img_resolution, in_channels=C, out_channels=C (2C for
iDDPM), label_dim, **model_kwargs)`. Arguments left out take NVlabs's defaults (below, from its
`training/networks.py`), not edmctl's, so every size is written into the recipe explicitly. The
preconditioners compute in float32 as NVlabs's do (`precond.precision`); `use_fp16` networks run in float32.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from edmctl.design.augment import AUGMENT_DIM
from edmctl.errors import UserError
from edmctl.pretrained.unpickle import Persistent, PlainModule


@dataclass(frozen=True)
class NvlabsPrecond:
    """One NVlabs preconditioner class: edmctl's `precond.kind`, its constants with NVlabs's defaults, the
    default `model_type`, and arguments edmctl supports only at their default."""

    kind: str
    constants: dict
    model_type: str
    fixed: dict = field(default_factory=dict)


NVLABS_PRECONDS = {
    "VPPrecond": NvlabsPrecond("vp", dict(beta_d=19.9, beta_min=0.1, M=1000, epsilon_t=1e-5), "SongUNet"),
    "VEPrecond": NvlabsPrecond("ve", dict(sigma_min=0.02, sigma_max=100.0), "SongUNet"),
    "iDDPMPrecond": NvlabsPrecond("iddpm", dict(C_1=0.001, C_2=0.008, M=1000), "DhariwalUNet"),
    "EDMPrecond": NvlabsPrecond("edm", dict(sigma_data=0.5), "DhariwalUNet", dict(sigma_min=0, sigma_max=math.inf)),
}
PRECOND_ARGS = ("img_resolution", "img_channels", "label_dim", "use_fp16", "model_type")

_TRAINING_ARGS = dict(dropout=0.10, label_dropout=0.0, augment_dim=0)
NVLABS_NETWORKS = {  # model_type -> NVlabs's default arguments (sizes first, then training-only ones)
    "SongUNet": dict(model_channels=128, channel_mult=[1, 2, 2, 2], channel_mult_emb=4, num_blocks=4,
                     attn_resolutions=[16], embedding_type="positional", channel_mult_noise=1,
                     encoder_type="standard", decoder_type="standard", resample_filter=[1, 1], **_TRAINING_ARGS),
    "DhariwalUNet": dict(model_channels=192, channel_mult=[1, 2, 3, 4], channel_mult_emb=4, num_blocks=3,
                         attn_resolutions=[32, 16, 8], **_TRAINING_ARGS),
}


def song_arch(sizes: dict) -> str:
    """SongUNet is DDPM++ with positional noise embedding, NCSN++ with Fourier embedding (EDM App. F.2)."""
    return "ncsnpp" if sizes["embedding_type"] == "fourier" else "ddpmpp"


ARCHS = {"SongUNet": song_arch, "DhariwalUNet": lambda sizes: "adm"}

# NVlabs loss class -> (training.p_train, training.loss_weight, {its argument: recipe field}) (EDM Table 1)
NVLABS_LOSSES = {
    "EDMLoss": ("edm", "edm", {"P_mean": "p_mean", "P_std": "p_std"}),
    "VPLoss": ("vp", "inv-sigma2", {}),
    "VELoss": ("ve", "inv-sigma2", {}),
}


def plain(value):
    """Pickled values as plain Python data (numpy scalars to numbers, tuples to lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


@dataclass
class Recognised:
    """What an NVlabs pickle holds, in edmctl's terms."""

    recipe: dict  # a raw recipe (validated by the caller)
    img_shape: tuple[int, int, int]
    label_dim: int
    state_dict: dict[str, torch.Tensor]  # edmctl parameter names, float32
    summary: dict  # NVlabs class names and constructor arguments, as recorded
    u: torch.Tensor | None  # iDDPMPrecond's pickled table u_j, which NVlabs's loaded object uses


def _class_of(obj) -> str:
    return obj.class_name if isinstance(obj, Persistent) else type(obj).__name__


def _split_kwargs(ema: Persistent) -> tuple[NvlabsPrecond, dict, str, dict]:
    """(the precond entry, its constants, model_type, the network's arguments with NVlabs's defaults)."""
    if ema.class_name not in NVLABS_PRECONDS:
        raise UserError(f"`ema` is an NVlabs {ema.class_name}, which edmctl does not know; known: "
                        f"{', '.join(NVLABS_PRECONDS)}.")
    if ema.state.get("_init_args"):
        raise UserError(f"`ema` ({ema.class_name}) was constructed with positional arguments; NVlabs/edm passes "
                        f"keyword arguments only, which edmctl reads.")
    entry, kwargs = NVLABS_PRECONDS[ema.class_name], plain(ema.init_kwargs)
    model_type = kwargs.pop("model_type", entry.model_type)
    if model_type not in NVLABS_NETWORKS:
        raise UserError(f"{ema.class_name} wraps an NVlabs {model_type}, which edmctl does not know; known: "
                        f"{', '.join(NVLABS_NETWORKS)}.")
    for name, default in entry.fixed.items():
        if float(kwargs.pop(name, default)) != default:
            raise UserError(f"{ema.class_name} was built with {name} other than {default}; edmctl supports the default only.")
    constants = {name: kwargs.pop(name, default) for name, default in entry.constants.items()}
    network = dict(NVLABS_NETWORKS[model_type])
    for name in list(kwargs):
        if name in network:
            network[name] = kwargs.pop(name)
    unknown = sorted(set(kwargs) - set(PRECOND_ARGS))
    if unknown:
        raise UserError(f"{ema.class_name} with {model_type} was built with argument(s) {', '.join(unknown)}, "
                        f"which edmctl does not know.")
    return entry, constants, model_type, network


def _size(ema: Persistent, name: str) -> int:
    """`img_channels`, `img_resolution` or `label_dim`: attributes every NVlabs precond sets on itself."""
    value = plain(ema.state.get(name))
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "label_dim" else 1):
        raise UserError(f"`ema` ({ema.class_name}) has no valid {name} (got {value!r}).")
    return value


def _typed(constants: dict) -> dict:
    return {name: int(value) if name == "M" else float(value) for name, value in constants.items()}


def recipe_of(data: dict) -> tuple[dict, tuple[int, int, int], int, dict]:
    """The raw edmctl recipe, image shape, label_dim and summary of the pickle's `ema` (and loss, augment pipe)."""
    ema = data["ema"]
    entry, constants, model_type, network = _split_kwargs(ema)
    kwargs = plain(ema.init_kwargs)
    channels, resolution, label_dim = (_size(ema, name) for name in ("img_channels", "img_resolution", "label_dim"))
    shape = (channels, resolution, resolution)
    augment_dim = int(network.pop("augment_dim"))
    if augment_dim not in (0, AUGMENT_DIM):
        raise UserError(f"{model_type} has augment_dim {augment_dim}; edmctl's augmentation labels have {AUGMENT_DIM} (or 0).")
    training = {"dropout": float(network.pop("dropout")), "label_dropout": float(network.pop("label_dropout"))}
    training.update(_loss_fields(data.get("loss_fn")))
    pipe = data.get("augment_pipe")
    augment_p = float(plain(pipe.init_kwargs.get("p", 0.12))) if isinstance(pipe, Persistent) else 0.12
    dataset = data.get("dataset_kwargs") if isinstance(data.get("dataset_kwargs"), dict) else {}
    recipe = {
        "precond": {"kind": entry.kind, "precision": "float32", **_typed(constants)},
        "network": {"arch": ARCHS[model_type](network), **network},
        "training": training,
        "augment": {"p": augment_p if augment_dim else 0.0},
        "data": {**({"source": dataset["path"]} if isinstance(dataset.get("path"), str) else {}),
                 "resolution": shape[1], "channels": shape[0], "conditional": label_dim > 0},
    }
    summary = {"precond": ema.class_name, "model_type": model_type, "init_kwargs": kwargs,
               "use_fp16": bool(kwargs.get("use_fp16", False)), "loss_fn": _class_of(data.get("loss_fn")),
               "augment_pipe": plain(pipe.init_kwargs) if isinstance(pipe, Persistent) else None,
               "dataset_kwargs": plain(dataset)}
    return recipe, shape, label_dim, summary


def _loss_fields(loss) -> dict:
    """training.p_train, loss_weight (and EDM's P_mean, P_std) from the pickled loss, when edmctl knows it."""
    if not isinstance(loss, Persistent) or loss.class_name not in NVLABS_LOSSES:
        return {}
    p_train, loss_weight, renamed = NVLABS_LOSSES[loss.class_name]
    kwargs = plain(loss.init_kwargs)
    return {"p_train": p_train, "loss_weight": loss_weight,
            **{field: float(kwargs[arg]) for arg, field in renamed.items() if arg in kwargs}}


def flat_state(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    """`named_parameters` + persistent `named_buffers` of a pickled module tree, as a state dict."""
    if not isinstance(obj, (Persistent, PlainModule)):
        raise UserError(f"module {prefix.rstrip('.') or 'ema'} is a {type(obj).__name__}, not a network module.")
    state = obj.state
    skipped = state.get("_non_persistent_buffers_set") or set()
    tensors = {**(state.get("_parameters") or {}),
               **{k: v for k, v in (state.get("_buffers") or {}).items() if k not in skipped}}
    result = {}
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise UserError(f"{prefix}{name} is a {type(tensor).__name__}, not a tensor.")
        result[prefix + name] = tensor.detach().to(torch.float32)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            result.update(flat_state(child, f"{prefix}{name}."))
    return result


def network_weights(ema: Persistent) -> dict[str, torch.Tensor]:
    """The weights of F (`ema.model`), named as edmctl's networks name them (NVlabs's names without `model.`)."""
    model = (ema.state.get("_modules") or {}).get("model")
    if model is None:
        raise UserError(f"`ema` ({ema.class_name}) has no `model` network inside.")
    return flat_state(model)


def recognise(data: dict) -> Recognised:
    """Everything edmctl needs from an NVlabs pickle read by `read_pickle`."""
    try:
        recipe, shape, label_dim, summary = recipe_of(data)
    except (TypeError, ValueError, OverflowError) as e:
        raise UserError(f"`ema` ({data['ema'].class_name}) has a constructor argument of an unexpected type ({e}).") from None
    return Recognised(recipe, shape, label_dim, network_weights(data["ema"]), summary, iddpm_table(data["ema"]))


def iddpm_table(ema: Persistent) -> torch.Tensor | None:
    """iDDPMPrecond's `u` buffer as pickled (None for the other preconditioners, which hold no table)."""
    if ema.class_name != "iDDPMPrecond":
        return None
    u = (ema.state.get("_buffers") or {}).get("u")
    if not isinstance(u, torch.Tensor) or u.dim() != 1:
        raise UserError("`ema` (iDDPMPrecond) has no one-dimensional table `u`; the pickle is damaged.")
    return u.detach().to(torch.float32)
