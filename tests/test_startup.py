"""Start-up: `--help` imports only typer (no rich, torch or registry); the digits come from edmctl's own cache
after the first load, never from a damaged one."""

import subprocess
import sys

import numpy as np
import pytest

from edmctl.data import digits


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_CACHE", str(tmp_path))
    return tmp_path / "digits.npz"


def test_digits_are_cached_and_read_back_without_sklearn(cache, monkeypatch):
    raw, labels = digits.digits_raw()
    assert cache.is_file() and raw.shape == (1797, 8, 8) and labels.shape == (1797,)
    for name in ("sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # importing scikit-learn now fails
    again, again_labels = digits.digits_raw()
    assert np.array_equal(again, raw) and np.array_equal(again_labels, labels)


def test_a_damaged_cache_is_not_used(cache):
    raw, labels = digits.digits_raw()
    bad = raw.copy()
    bad[0, 0, 0] += 1
    np.savez(cache, raw=bad, labels=labels)
    assert np.array_equal(digits.digits_raw()[0], raw)
    cache.write_bytes(b"not an npz")
    assert np.array_equal(digits.digits_raw()[0], raw)


def test_cached_digits_equal_scikit_learn(cache):
    from sklearn.datasets import load_digits

    digits.digits_raw()
    bunch = load_digits()
    images, labels = digits.digits_arrays()
    assert np.array_equal(images[..., 0], np.rint(bunch.images * (255 / 16)).astype(np.uint8))
    assert np.array_equal(labels, bunch.target)


HEAVY = ("rich", "torch", "numpy", "sqlmodel", "sqlalchemy", "PIL", "scipy", "sklearn")


def modules_after(argv: list[str]) -> set[str]:
    """The top-level packages a fresh interpreter holds after `edmctl <argv>` (run in-process there)."""
    code = ("import contextlib, io, sys\nfrom edmctl.cli.main import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()): code = main({argv!r})\n"
            "print(code, *sorted({m.split('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    code, *modules = result.stdout.split()
    assert code == "0", result.stderr
    return set(modules)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["sample", "--help"], ["runs", "--help"], ["sweep", "show", "--help"]])
def test_help_imports_neither_rich_nor_torch_nor_the_registry(argv):
    loaded = modules_after(argv)
    assert "typer" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    if argv == ["--help"]:
        assert "pydantic" not in loaded  # typer imports it for a command's parameters, not for the command list
