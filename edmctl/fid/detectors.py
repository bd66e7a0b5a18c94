"""Feature detectors: a table `DETECTORS` of named ones, plus any TorchScript file (`--detector PATH.pt`).

Every detector is a clean-fid `feat_model` (a callable on a preprocessed batch) and runs through clean-fid's
own per-batch code path, `cleanfid.fid.get_batch_features`, which is the path `compute_fid` uses for a
`custom_feat_extractor`; so the offline TorchScript detector of the tests exercises what Inception runs through.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edmctl import paths
from edmctl.errors import UserError
from edmctl.fid.clean import clean_fid
from edmctl.fid.preprocess import check_protocol, preprocess
from edmctl.fid.weights import file_sha256, inception_weights


@dataclass(frozen=True)
class Detector:
    """A feature detector bound to a protocol and a device.

    `name`: `inception`, `pixels` or the TorchScript file's path; `kind`: the table entry or `torchscript`;
    `sha256`: of the weights file (None for `pixels`); `prepare`: uint8 NCHW -> the feat_model's input.
    """

    name: str
    kind: str
    protocol: str
    sha256: str | None
    feat_model: Callable[[torch.Tensor], torch.Tensor]
    prepare: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device

    def features(self, batch: torch.Tensor) -> np.ndarray:
        """uint8 NCHW images -> float64 features (N, D), through clean-fid's `get_batch_features`."""
        feats = clean_fid().get_batch_features(self.prepare(batch), self.feat_model, self.device)
        return np.asarray(feats, dtype=np.float64).reshape(len(batch), -1)

    def feature_dim(self, image_shape: tuple[int, int, int]) -> int:
        """D for images of shape (C, H, W), found by running the detector on one black image."""
        return self.features(torch.zeros((1, *image_shape), dtype=torch.uint8)).shape[1]

    def describe(self) -> dict:
        """What is recorded with every value measured by this detector."""
        return {"detector": self.name, "detector_kind": self.kind, "protocol": self.protocol, "detector_sha256": self.sha256}


def _inception(protocol: str, device: torch.device) -> Detector:
    """clean-fid's TorchScript TF-Inception (2048-d pool3); `edm` resizes inside the network, `clean` with PIL."""
    from cleanfid.inception_torchscript import InceptionV3W

    mode = check_protocol(protocol)
    weights = inception_weights()
    try:
        model = InceptionV3W(str(weights.parent), download=False, resize_inside=(mode == "legacy_tensorflow"))
    except RuntimeError as e:
        raise UserError(f"The Inception weights file {weights} does not load ({e}); delete it and run again to re-download it.") from None
    model = model.to(device).eval()
    return Detector("inception", "inception", protocol, file_sha256(weights), model, lambda b: preprocess(b, mode), device)


def _flatten_pixels(batch: torch.Tensor) -> torch.Tensor:
    return batch.reshape(len(batch), -1).to(torch.float64)


def _pixels(protocol: str, device: torch.device) -> Detector:
    """The flattened pixels as float64 features, for tiny data (digits) where Inception means nothing."""
    check_protocol(protocol)
    return Detector("pixels", "pixels", protocol, None, _flatten_pixels, lambda b: b, device)


def _torchscript(path: Path, protocol: str, device: torch.device) -> Detector:
    """Any TorchScript module mapping uint8 NCHW images to (N, D) features; it gets the images unchanged."""
    check_protocol(protocol)
    if not path.is_file():
        raise UserError(f"Detector file {path} does not exist; pass --detector {' or '.join(DETECTORS)} or the path of a TorchScript .pt file.")
    paths.check_code_file(path.resolve(), "a TorchScript detector")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ deprecates TorchScript; it still loads
            module = torch.jit.load(str(path), map_location=device).eval()
    except Exception as e:
        raise UserError(f"Detector file {path} is not a loadable TorchScript module ({type(e).__name__}); save one with torch.jit.save.") from None
    return Detector(str(path), "torchscript", protocol, file_sha256(path), module, lambda b: b, device)


DETECTORS: dict[str, Callable[[str, torch.device], Detector]] = {"inception": _inception, "pixels": _pixels}

# KID's kernel k(x, y) = (xᵀy/d + 1)³ is made for features of order one, as Inception's pool3 features are. Raw
# pixels (0..255) make xᵀy/d ~ 10⁴ and k ~ 10¹²: an MMD of sixth powers of norms whose estimate swings by ±10¹⁰.
# KID sees pixels in [0, 1] (k in [1, 8]); FD keeps the detector's own features (its references stay valid).
KID_SCALES = {"pixels": 1 / 255}


def kid_scale(meta: dict) -> float:
    """The factor KID multiplies the features of the detector `meta` describes by (`KID_SCALES`, else 1)."""
    return KID_SCALES.get(meta.get("detector_kind"), 1.0)


def load_detector(spec: str, protocol: str = "edm", device: str | torch.device = "cpu") -> Detector:
    """A detector by table name (`inception`, `pixels`) or TorchScript path, for `protocol` (`edm` or `clean`)."""
    clean_fid()  # clean-fid's import (seconds: torchvision) paid, or refused, before any image is measured
    device = torch.device(device)
    if spec in DETECTORS:
        return DETECTORS[spec](protocol, device)
    if spec.endswith(".pt") or Path(spec).exists():
        return _torchscript(Path(spec), protocol, device)
    raise UserError(f"Unknown detector {spec!r}; allowed: {', '.join(DETECTORS)}, or the path of a TorchScript .pt file.")
