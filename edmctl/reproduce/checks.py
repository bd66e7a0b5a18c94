"""The checks every reproducer builds: a recorded file is unchanged, two values agree within a tolerance, and
whether the reproduction runs on the same kind of device as the original (bitwise comparisons need it)."""

import math
from pathlib import Path

from edmctl.paths import not_here
from edmctl.registry import content_hash


def check(name: str, ok: bool, detail: str, tolerance: str = "bitwise") -> dict:
    return dict(name=name, ok=bool(ok), detail=detail, tolerance=tolerance)


def device_kind(devices: list[str]) -> str:
    """`cpu` or `cuda` (of `cuda:0`, or a GPU name as the environment records it)."""
    names = [str(d) for d in devices] or ["cpu"]
    return "cpu" if all(name.split(":")[0] == "cpu" for name in names) else "cuda"


def current_device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def file_unchanged(name: str, path: Path | None, recorded_sha256: str | None) -> dict:
    """The file the original run recorded (by sha256) is still there, byte for byte."""
    if path is None or recorded_sha256 is None:
        return check(f"{name} unchanged since recorded", False, "not recorded by the original run", "sha256")
    if not Path(path).exists():
        return check(f"{name} unchanged since recorded", False, not_here(Path(path)), "sha256")
    sha256, _ = content_hash(Path(path))
    return check(f"{name} unchanged since recorded", sha256 == recorded_sha256,
                 f"sha256 {sha256[:12]} vs recorded {recorded_sha256[:12]}", "sha256")


def values_agree(name: str, value: float | None, recorded: float | None, rtol: float = 0.0) -> dict:
    """`value` equals `recorded` (rtol 0) or |value − recorded| ≤ rtol·|recorded|."""
    tolerance = "bitwise" if rtol == 0 else f"relative {rtol:g}"
    if value is None or recorded is None:
        return check(name, False, f"{value} vs recorded {recorded}", tolerance)
    ok = value == recorded if rtol == 0 else math.isclose(value, recorded, rel_tol=rtol, abs_tol=0.0)
    return check(name, ok, f"{value:.6g} vs recorded {recorded:.6g} (Δ {value - recorded:.3g})", tolerance)
