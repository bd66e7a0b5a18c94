"""Only FID and KID need torchvision (through clean-fid's `cleanfid.fid`): with a torchvision that does not load
(PyPI's beside PyTorch's CPU wheel), everything else works and a measurement is one sentence with the fix."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every edmctl module imports, and a sample run works, with `import torchvision` failing; the demo (whose FD
# needs clean-fid) is refused before it trains.
WITHOUT_TORCHVISION = """
import importlib, pkgutil, sys
sys.modules["torchvision"] = None  # any `import torchvision` now raises ImportError
import edmctl
for module in pkgutil.walk_packages(edmctl.__path__, "edmctl."):
    if module.name not in ("edmctl.__main__",):
        importlib.import_module(module.name)
from edmctl.cli.main import main
assert main(["demo", sys.argv[1]]) == 2  # refused before training: FD needs clean-fid
assert main(["sample", "--model", "ideal:digits?std=0.2&n=20", "--seeds", "0-1", "--steps", "3"]) == 0
sys.exit(main(["fid", "ref", "digits", "--detector", "pixels", "--out", "ref.npz"]))
"""


@pytest.mark.slow  # a fresh process importing every module
def test_only_fid_needs_torchvision_and_says_how_to_install_it(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCHVISION, str(ROOT / "recipes/digits.toml")], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "EDMCTL_HOME": str(tmp_path / "home"),
                                 "EDMCTL_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "--index-url https://download.pytorch.org/whl/cpu" in result.stderr
    assert result.stderr.count("clean-fid, which imports torchvision") == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "ref.npz").exists() and [p.name for p in (tmp_path / "home").glob("run*")] == ["run1"]
