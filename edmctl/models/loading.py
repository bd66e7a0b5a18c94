"""`load_model(spec)`: turn a `--model` string into a denoiser, through a small table of sources.

Specs (the part after `?` is optional, `&`-separated):

    ideal:digits                      the ideal denoiser of sklearn's 1797 8x8 digits, scaled v/8 − 1 to [-1, 1]
    ideal:digits?std=0.2&n=200        ... a Gaussian mixture of std 0.2 on the first 200 digits
    ideal:PATH.npz                    an npz with `images` (N, C, H, W) in [-1, 1] and an optional scalar `std`
    ideal:PATH.npz?std=0.1            ... with `std` overriding the file's
    run:12                            a training run's EMA weights, or an imported network (`edmctl import`)
    PATH.pkl                          an NVlabs/edm network pickle, imported on first use (`edmctl.pretrained`)

Each source is one function `(body: str) -> model` in `MODEL_SOURCES`, keyed by the prefix before the first `:`,
or, for a spec naming a file, by its suffix (`.pkl`; the body is then the whole spec).
"""

import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edmctl.errors import UserError
from edmctl.paths import read_npz
from edmctl.models.mixture import GaussianMixtureDenoiser
from edmctl.recipe.schema import SIGMA_HI

IDEAL_OPTIONS = ("std", "n")


def parse_options(query: str, spec: str) -> dict[str, str]:
    """`std=0.2&n=200` → {"std": "0.2", "n": "200"}; unknown or malformed options raise UserError."""
    options = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or key not in IDEAL_OPTIONS or not value:
            raise UserError(f"model spec {spec!r}: option {item!r} is not one of {', '.join(k + '=VALUE' for k in IDEAL_OPTIONS)}.")
        if key in options:
            raise UserError(f"model spec {spec!r}: option {key} is given twice; give it once.")
        options[key] = value
    return options


def parse_std(value, where: str) -> float:
    """A component std: a number in [0, SIGMA_HI] (the recipe's largest noise level; std² must stay finite)."""
    try:
        std = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: std must be a number >= 0, got {value!r}.") from None
    if not 0 <= std <= SIGMA_HI:
        raise UserError(f"{where}: std must be a number in [0, {SIGMA_HI:g}], got {value!r}.")
    return std


def parse_count(value: str, where: str) -> int:
    """An image count: an integer >= 1."""
    if not re.fullmatch("[0-9]+", value) or int(value) < 1:
        raise UserError(f"{where}: n must be an integer >= 1, got {value!r}.")
    return int(value)


def digits_images() -> np.ndarray:
    """sklearn's bundled 8x8 digits as (1797, 1, 8, 8) float64 in [-1, 1] (v / 8 − 1, as in the reference vectors)."""
    from edmctl.data.digits import digits_raw

    return digits_raw()[0][:, None].astype(np.float64) / 8.0 - 1.0


def read_mixture_npz(path: Path) -> tuple[np.ndarray, float]:
    """`images` (N, C, H, W) in [-1, 1] and `std` (default 0) from an npz; every defect is a UserError."""
    if not path.is_file():
        raise UserError(f"model file {str(path)!r} does not exist; pass ideal:PATH.npz with an existing npz or ideal:digits.")
    arrays = {key: value for key, value in read_npz(path, "model file").items() if key in ("images", "std")}
    if "images" not in arrays:
        raise UserError(f"model file {str(path)!r} has no `images` array; it needs `images` (N, C, H, W) in [-1, 1].")
    images = arrays["images"]
    if images.ndim != 4 or images.size == 0 or not np.issubdtype(images.dtype, np.number):
        raise UserError(f"model file {str(path)!r}: `images` must be a numeric (N, C, H, W) array with N, C, H, W >= 1, got shape {images.shape}.")
    images = images.astype(np.float64)
    if not np.isfinite(images).all() or images.min() < -1 or images.max() > 1:
        raise UserError(f"model file {str(path)!r}: `images` must lie in [-1, 1].")
    std = arrays.get("std", np.float64(0.0))
    if std.size != 1:
        raise UserError(f"model file {str(path)!r}: `std` must be a scalar, got shape {std.shape}.")
    return images, parse_std(std.item(), f"model file {str(path)!r}")


def load_ideal(body: str) -> GaussianMixtureDenoiser:
    """`ideal:digits[?...]` or `ideal:PATH.npz[?...]`: the Gaussian-mixture denoiser (std 0: the ideal denoiser)."""
    spec = f"ideal:{body}"
    source, _, query = body.partition("?")
    options = parse_options(query, spec)
    if source == "digits":
        images, std = digits_images(), 0.0
    elif source.endswith(".npz"):
        images, std = read_mixture_npz(Path(source))
    else:
        raise UserError(f"model spec {spec!r}: after `ideal:` give `digits` or a path ending in .npz.")
    if "std" in options:
        std = parse_std(options["std"], f"model spec {spec!r}")
    if "n" in options:
        n = parse_count(options["n"], f"model spec {spec!r}")
        if n > len(images):
            raise UserError(f"model spec {spec!r}: n={n} but the data has {len(images)} images.")
        images = images[:n]
    return GaussianMixtureDenoiser(torch.from_numpy(images), std=std)


def load_run(body: str):
    """`run:12` or `run:run12`: a training run's EMA weights or an imported network (`edmctl.models.runs`)."""
    from edmctl.models.runs import load_run_model

    return load_run_model(body)


def load_nvlabs_pickle(path: str):
    """`PATH.pkl`: an NVlabs/edm network pickle, imported as a registry run once (same sha256: the same run)."""
    from edmctl.models.runs import load_run_model
    from edmctl.pretrained import import_once

    return load_run_model(import_once(path))


MODEL_SOURCES: dict[str, Callable[[str], object]] = {
    "ideal": load_ideal,
    "run": load_run,
    ".pkl": load_nvlabs_pickle,
}


def source_key(spec: str) -> tuple[str, str]:
    """(key into `MODEL_SOURCES`, body): `PREFIX:BODY`, else the file suffix and the whole spec."""
    prefix, sep, body = spec.partition(":")
    if sep and prefix in MODEL_SOURCES:
        return prefix, body
    return Path(spec).suffix.lower(), spec


def load_model(spec: str):
    """Resolve a `--model` spec through `MODEL_SOURCES`; an unknown one is a UserError."""
    key, body = source_key(spec)
    if key not in MODEL_SOURCES:
        allowed = ", ".join(f"PATH{name}" if name.startswith(".") else f"{name}:..." for name in MODEL_SOURCES)
        raise UserError(f"model {spec!r} is not recognised; use one of {allowed} (e.g. ideal:digits or ideal:PATH.npz).")
    return MODEL_SOURCES[key](body)
