"""clean-fid's `cleanfid.fid` module, imported when a measurement first needs it.

edmctl measures through clean-fid's own functions (`get_batch_features`, `frechet_distance`, `kernel_distance`).
Their module imports torchvision at the top (for clean-fid's dataset loaders and its PyTorch Inception port,
neither of which edmctl uses; the TorchScript Inception and the resizers do without it), so every FID/KID
measurement needs a torchvision that loads beside the installed torch, while training, sampling, the registry
and the sampler metrics of `edmctl.evaluate` do not import it at all. A torchvision built for another torch
(PyPI's next to PyTorch's CPU wheel) fails on import; that is bad input of the installation, said in one
sentence with the fix.
"""

from types import ModuleType

from edmctl.errors import UserError


def clean_fid() -> ModuleType:
    """`cleanfid.fid`, or a UserError naming the torchvision problem and its fix."""
    try:
        import cleanfid.fid
    except Exception as e:  # noqa: BLE001 (a broken torchvision raises RuntimeError, AttributeError, OSError, ...)
        import torch

        reason = (str(e).splitlines() or [""])[0]
        raise UserError(f"FID and KID use clean-fid, which imports torchvision, and that import fails beside torch "
                        f"{torch.__version__} ({type(e).__name__}: {reason}); install the torchvision built for this torch, "
                        f"e.g. `pip install torchvision --index-url https://download.pytorch.org/whl/cpu` for the CPU "
                        f"build (README, Set-up). Training and sampling work without it.") from None
    return cleanfid.fid
