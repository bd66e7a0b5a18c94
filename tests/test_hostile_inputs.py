"""Hostile and mistaken input to every command (issue 13): each case ends in exit 2 with one line that names the
problem, no traceback, and nothing written — before any work starts.

Each case runs the CLI in-process (`edmctl.cli.main.main`) in a fresh folder that is also EDMCTL_HOME's parent;
`{tmp}` in an argument is that folder. Cases that need a recorded run copy a registry made once per module.
"""

import contextlib
import os
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from edmctl.cli.main import main

LONG = "x" * 300  # one path component longer than NAME_MAX (255): ENAMETOOLONG


def write(name: str, text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_text(text)


def npz(name: str, **arrays) -> Callable[[Path], None]:
    return lambda tmp: np.savez(tmp / name, **arrays)


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims 900 megapixels (PIL's decompression-bomb limit is 179M) in a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


def image_folder(name: str, bad: bytes | None = None, count: int = 3, labels: str | None = None) -> Callable[[Path], None]:
    """`count` 8x8 grey PNGs in `name`/, plus `bad.png` holding `bad` and a dataset.json holding `labels`."""
    def setup(tmp: Path) -> None:
        folder = tmp / name
        folder.mkdir()
        for i in range(count):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(folder / f"img{i}.png")
        if bad is not None:
            (folder / "bad.png").write_bytes(bad)
        if labels is not None:
            (folder / "dataset.json").write_text(labels)
    return setup


def truncated_png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()[:60]


def links(tmp: Path) -> None:
    """`loop` -> `loop2` -> `loop`, and `dangling` -> a name that does not exist."""
    (tmp / "loop").symlink_to(tmp / "loop2")
    (tmp / "loop2").symlink_to(tmp / "loop")
    (tmp / "dangling").symlink_to(tmp / "nowhere")


def tampered(*statements: str) -> Callable[[Path], None]:
    """The registry's database edited by hand: `statements` run on it."""
    import sqlite3

    def setup(tmp: Path) -> None:
        with contextlib.closing(sqlite3.connect(tmp / "home" / "registry.db")) as connection, connection:
            for statement in statements:
                connection.execute(statement)
    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda tmp: [s(tmp) for s in setups]


def corrupt(relative: str, data: bytes = b"not an npz at all") -> Callable[[Path], None]:
    return lambda tmp: (tmp / "home" / relative).write_bytes(data)


def stats(name: str, mu, sigma, **extra) -> Callable[[Path], None]:
    return npz(name, mu=np.asarray(mu), sigma=np.asarray(sigma), **extra)


GOOD_REF = stats("ref.npz", np.zeros(64), np.eye(64))
DIGIT_IMAGES = image_folder("imgs", count=3)


@dataclass
class Case:
    command: str
    argv: list[str]
    says: str  # a fragment the one-line message must contain
    setup: Callable[[Path], None] = field(default=lambda tmp: None)
    home: str | None = None  # "sampled" or "trained": start from that module-wide registry
    env: dict[str, str] = field(default_factory=dict)  # environment variables set for the case (`{tmp}` replaced)

    def id(self) -> str:
        return f"{self.command}:{' '.join(self.argv)}"[:90]


def recipe_set(*sets: str) -> list[str]:
    return ["recipe", "show", *(a for s in sets for a in ("--set", s))]


NON_FINITE = [  # (override, fragment of the message)
    ("sampler.sigma_max=inf", "sampler.sigma_max"), ("sampler.sigma_max=1e308", "sampler.sigma_max"),
    ("sampler.sigma_min=1e-320", "sampler.sigma_min"), ("sampler.rho=inf", "sampler.rho"),
    ("sampler.rho=1e-300", "sampler.rho"), ("sampler.rho=nan", "sampler.rho"), ("training.lr=inf", "training.lr"),
    ("training.p_mean=nan", "training.p_mean"), ("training.p_mean=-inf", "training.p_mean"),
    ("training.p_std=inf", "training.p_std"), ("training.seed=281474976710656", "training.seed"),
    ("sampler.steps=1000000000", "sampler.steps"), ("sampler.s_churn=inf", "sampler.s_churn"),
    ("sampler.s_noise=nan", "sampler.s_noise"), ("sampler.s_tmin=inf", "sampler.s_tmin"),
    ("precond.sigma_data=inf", "precond.sigma_data"), ("precond.sigma_data=1e-320", "precond.sigma_data"),
    ("precond.beta_d=inf", "precond.beta_d"), ("precond.M=1000000000000", "precond.M"),
    ("training.eps=inf", "training.eps"), ("training.lr_rampup_kimg=inf", "training.lr_rampup_kimg"),
    ("training.duration_kimg=inf", "training.duration_kimg"), ("training.ema_halflife_kimg=nan", "training.ema_halflife_kimg"),
    ("training.tick_kimg=nan", "training.tick_kimg"), ("training.snapshot_kimg=inf", "training.snapshot_kimg"),
    ("training.p2_gamma=inf", "training.p2_gamma"), ("training.snr_gamma=inf", "training.snr_gamma"),
    ("training.batch=1000000000000", "training.batch"), ("augment.xflip=inf", "augment.xflip"),
    ("augment.scale_std=nan", "augment.scale_std"), ("network.model_channels=1000000000", "network.model_channels"),
    ("eval.num=1000000000000", "eval.num"), ("precond.C_1=inf", "precond.C_1"),
    ("training.duration_kimg=0.001", "one batch"), ("training.snapshot_kimg=1e-300", "training.snapshot_kimg (1e-300) is less than one batch"),
    ("training.tick_kimg=0.01", "training.tick_kimg (0.01) is less than one batch"),
    ("training.grid_kimg=1e-300", "training.grid_kimg (1e-300) is less than one batch"),
]

SWEEP = write("sweep.toml", 'model = "ideal:digits?n=20"\nseeds = "0-1"\n[grid]\n"sampler.steps" = [2, 3]\n')
NO_SLURM = {"PATH": "{tmp}"}  # no sbatch, squeue or scancel to be found
SLURM_FLAGS = [  # (flags, fragment of the message)
    (["--time", "soon"], "--time"), (["--time", "1:99:00"], "--time"), (["--time", ""], "--time"),
    (["--partition", "gpu; rm -rf ~"], "--partition"), (["--partition", ""], "--partition"),
    (["--partition", "gpu\nx"], "--partition"), (["--slurm-option", "account=lab\nrm -rf ~"], "--slurm-option"),
    (["--slurm-option", "account"], "--slurm-option"), (["--slurm-option", "a b=c"], "--slurm-option"),
]

CASES = [
    # -- recipe show / validate --------------------------------------------------------------------------
    *(Case("recipe", recipe_set(s), says) for s, says in NON_FINITE),
    Case("recipe", ["recipe", "validate", "{tmp}/deep.toml"], "nested", write("deep.toml", "a = " + "[" * 5000 + "]" * 5000)),
    Case("recipe", ["recipe", "show", "{tmp}/deep.toml"], "nested", write("deep.toml", "a = " + "{b = " * 3000 + "1" + "}" * 3000)),
    Case("recipe", ["recipe", "show", f"{{tmp}}/{LONG}.toml"], "too long"),
    Case("recipe", ["recipe", "validate", f"{{tmp}}/{LONG}.toml"], "too long"),
    Case("recipe", ["recipe", "show", "{tmp}/[file, class].toml"], "[file, class]"),
    Case("recipe", ["recipe", "show", "--set", "sampler.[/x]=1"], "[/x]"),
    Case("recipe", ["recipe", "show", "--set", "sampler.solver='[/x]'"], "[/x]"),
    Case("recipe", ["recipe", "show", "{tmp}/dir"], "directory", lambda tmp: (tmp / "dir").mkdir()),
    Case("recipe", ["recipe", "validate", "{tmp}/nan.toml"], "sampler.rho", write("nan.toml", "[sampler]\nrho = nan\n")),
    Case("recipe", ["recipe", "show", "{tmp}/inf.toml"], "training.lr", write("inf.toml", "[training]\nlr = inf\n")),
    # -- sample --------------------------------------------------------------------------------------------
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "²"], "seed"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "1-²"], "seed"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "١٢"], "seed"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "1" + "0" * 30], "2**32"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "4294967296"], "2**32"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "0-1000000000000"], "seeds"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "0-4294967295"], "seeds"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", "[/x]"], "[/x]"),
    Case("sample", ["sample", "--model", "ideal:digits", "--steps", "1000000000"], "sampler.steps"),
    Case("sample", ["sample", "--model", "ideal:digits", "--sigma-max", "inf"], "sampler.sigma_max"),
    Case("sample", ["sample", "--model", "ideal:digits", "--sigma-max", "1e308"], "sampler.sigma_max"),
    Case("sample", ["sample", "--model", "ideal:digits", "--rho", "nan"], "sampler.rho"),
    Case("sample", ["sample", "--model", "ideal:digits", "--s-noise", "inf"], "sampler.s_noise"),
    Case("sample", ["sample", "--model", "ideal:digits", "--disc", "iddpm", "--sigma-min", "1000", "--sigma-max", "10000"], "no level"),
    Case("sample", ["sample", "--model", "ideal:digits", "--steps", "32", "--set", "sampler.steps=16"], "--steps"),
    Case("sample", ["sample", "--model", "ideal:digits", "--solver", "euler", "--set", "sampler.solver='heun'"], "--solver"),
    Case("sample", ["sample", "--model", "ideal:digits?n=²"], "n must be"),
    Case("sample", ["sample", "--model", "ideal:digits?n=1000000000000000000000"], "1797 images"),
    Case("sample", ["sample", "--model", "ideal:digits?std=[/x]"], "[/x]"),
    Case("sample", ["sample", "--model", "ideal:digits?std=1e308"], "std"),
    Case("sample", ["sample", "--model", "ideal:digits?std=0.1&std=0.2"], "given twice"),
    Case("sample", ["sample", "--model", "ideal:digits", "--set", "sampler.steps=2", "--set", "sampler.steps=3"], "give it once"),
    Case("sample", ["sample", "--model", "ideal:digits?std=nan"], "std"),
    Case("sample", ["sample", "--model", "ideal:{tmp}/nan.npz"], "[-1, 1]", npz("nan.npz", images=np.full((2, 1, 4, 4), np.nan))),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", ""], "seed"),
    Case("sample", ["sample", "--model", "ideal:digits", "--seeds", " , "], "seed"),
    Case("sample", ["sample", "--model", "ideal:digits", "--set", "training.lr=1e400"], "training.lr"),
    Case("sample", ["sample", "--model", "ideal:digits", "--set", "sampler.steps=" + "[" * 3000], "sampler.steps"),
    Case("sample", ["sample", "--model", "ideal:digits", "--s-tmin", "5", "--s-tmax", "1"], "s_tmin"),
    Case("sample", ["sample", "--model", "ideal:{tmp}/empty.npz"], "empty.npz", npz("empty.npz", images=np.zeros((3, 1, 0, 0)))),
    Case("sample", ["sample", "--model", "ideal:{tmp}/zero-c.npz"], "zero-c.npz", npz("zero-c.npz", images=np.zeros((3, 0, 4, 4)))),
    Case("sample", ["sample", "--model", "ideal:{tmp}/str.npz"], "str.npz", npz("str.npz", images=np.array(["a", "b"]))),
    Case("sample", ["sample", "--model", f"ideal:{{tmp}}/{LONG}.npz"], "too long"),
    Case("sample", ["sample", "--model", "ideal:digits", "--out", f"{{tmp}}/{LONG}"], "too long"),
    Case("sample", ["sample", "--model", "ideal:digits", "--out", "{tmp}/file/sub"], "file", write("file", "x")),
    Case("sample", ["sample", "--model", "ideal:digits", "--out", "{tmp}/imgs"], "--force", DIGIT_IMAGES),
    Case("sample", ["sample", "--model", "ideal:digits", "--recipe", f"{{tmp}}/{LONG}.toml"], "too long"),
    Case("sample", ["sample", "--model", "ideal:digits", "--recipe", "{tmp}/deep.toml"], "nested", write("deep.toml", "a = " + "[" * 5000 + "]" * 5000)),
    Case("sample", ["sample", "--model", "ideal:digits", "--class", "3"], "unconditional"),
    Case("sample", ["sample", "--model", "run:1", "--seeds", "0-1"], "snapshot", corrupt("run1/snapshot-000000128.pt", b"\x80\x04garbage"), "trained"),
    # -- fid ref / measure --------------------------------------------------------------------------------
    Case("fid", ["fid", "ref", "digits", "--detector", "pixels", "--out", "{tmp}/dir"], "folder", lambda tmp: (tmp / "dir").mkdir()),
    Case("fid", ["fid", "ref", "digits", "--detector", "pixels", "--out", "{tmp}/file/ref.npz"], "file", write("file", "x")),
    Case("fid", ["fid", "ref", "digits", "--detector", "pixels", "--out", f"{{tmp}}/{LONG}.npz"], "too long"),
    Case("fid", ["fid", "ref", "digits", "--detector", "pixels", "--out", "{tmp}/r.npz", "--device", "bogus"], "--device"),
    Case("fid", ["fid", "ref", "digits", "--detector", "pixels", "--out", "{tmp}/r.npz", "--device", "cuda:7"], "--device"),
    Case("fid", ["fid", "ref", "{tmp}/imgs", "--detector", "pixels", "--out", "{tmp}/r.npz"], "bad.png", image_folder("imgs", bomb_png())),
    Case("fid", ["fid", "ref", "{tmp}/imgs", "--detector", "pixels", "--out", "{tmp}/r.npz"], "bad.png", image_folder("imgs", truncated_png())),
    Case("fid", ["fid", "ref", f"{{tmp}}/{LONG}", "--detector", "pixels", "--out", "{tmp}/r.npz"], "too long"),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "bad.png", both(image_folder("imgs", bomb_png()), GOOD_REF)),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "bad.png", both(image_folder("imgs", truncated_png()), GOOD_REF)),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels", "--device", "bogus"], "--device", both(DIGIT_IMAGES, GOOD_REF)),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "non-finite",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros(64), np.full((64, 64), np.nan)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "non-finite",
         both(DIGIT_IMAGES, stats("ref.npz", np.full(64, np.inf), np.eye(64)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "positive semi-definite",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros(64), -np.eye(64)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "symmetric",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros(64), np.triu(np.ones((64, 64)))))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "numbers",
         both(DIGIT_IMAGES, stats("ref.npz", np.array(["a"] * 64), np.eye(64)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "num_images",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros(64), np.eye(64), num_images=np.array("many")))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "feats",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros(64), np.eye(64), feats=np.zeros(3)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "mu",
         both(DIGIT_IMAGES, npz("ref.npz", sigma=np.eye(64)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "shape",
         both(DIGIT_IMAGES, stats("ref.npz", np.zeros((64, 1)), np.eye(64)))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "ref.npz",
         both(DIGIT_IMAGES, write("ref.npz", "garbage"))),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", f"{{tmp}}/{LONG}.npz", "--detector", "pixels"], "too long", DIGIT_IMAGES),
    *(Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], says,
           both(DIGIT_IMAGES, lambda tmp, data=data: (tmp / "ref.npz").write_bytes(data)))
      for data, says in ((b"", "not a readable"), (b"PK\x03\x04cut", "not a readable"),
                         (b"garbage", "not an .npz archive"))),
    *(Case(command, argv, "not a readable", lambda tmp: (tmp / "x.npz").write_bytes(b"")) for command, argv in (
        ("sample", ["sample", "--model", "ideal:{tmp}/x.npz"]), ("dataset", ["dataset", "{tmp}/x.npz", "{tmp}/out.zip"]),
        ("train", ["train", "recipes/digits.toml", "--set", "data.source='{tmp}/x.npz'"]))),
    Case("fid", ["fid", "{tmp}/[/x]", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "[/x]", GOOD_REF),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", f"{{tmp}}/{LONG}.pt"], "too long", both(DIGIT_IMAGES, GOOD_REF)),
    Case("fid", ["fid", "run1", "--num", "5", "--set", "eval.num=3", "--ref", "{tmp}/ref.npz"], "--num and --set eval.num", GOOD_REF, "trained"),
    Case("fid", ["fid", "run1", "--steps", "5", "--set", "sampler.steps=3", "--ref", "{tmp}/ref.npz"], "--steps and --set sampler.steps", GOOD_REF, "trained"),
    Case("fid", ["fid", "run1", "--ref", "{tmp}/ref.npz", "--set", "sampler.sigma_max=inf"], "sampler.sigma_max", GOOD_REF, "trained"),
    Case("fid", ["fid", "ref", "{tmp}/none", "--detector", "pixels", "--out", "{tmp}/r.npz"], "holds no images", lambda tmp: (tmp / "none").mkdir()),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "pixels"], "at least 2", both(image_folder("imgs", count=1), GOOD_REF)),
    Case("fid", ["fid", "run1", "--ref", "{tmp}/ref.npz", "--detector", "pixels", "--num", "3", "--repeats", "1000"], "--repeats 1..100", GOOD_REF, "trained"),
    Case("fid", ["fid", "run1", "--ref", "{tmp}/ref.npz", "--detector", "pixels", "--num", "100000000000"], "--num must be 2..10,000,000", GOOD_REF, "trained"),
    Case("fid", ["fid", "ref", "{tmp}/bad.zip", "--detector", "pixels", "--out", "{tmp}/r.npz"], "bad.zip", write("bad.zip", "not a zip")),
    Case("fid", ["fid", "{tmp}/imgs", "--ref", "{tmp}/ref.npz", "--detector", "{tmp}/det.pt"], "det.pt",
         both(DIGIT_IMAGES, GOOD_REF, write("det.pt", "not torchscript"))),
    # -- dataset -----------------------------------------------------------------------------------------
    Case("dataset", ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], "bad.png", image_folder("imgs", bomb_png())),
    Case("dataset", ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], "bad.png", image_folder("imgs", truncated_png())),
    Case("dataset", ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], "label",
         image_folder("imgs", count=2, labels='{"labels": [["img0.png", -3], ["img1.png", 1]]}')),
    Case("dataset", ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], "label",
         image_folder("imgs", count=2, labels='{"labels": [["img0.png", 100000000000000000000], ["img1.png", 1]]}')),
    Case("dataset", ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], "label",
         image_folder("imgs", count=2, labels='{"labels": [["img0.png", 1.5], ["img1.png", 1]]}')),
    Case("dataset", ["dataset", "{tmp}/lab.npz", "{tmp}/out.zip"], "label",
         npz("lab.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([-1, 2]))),
    Case("dataset", ["dataset", "{tmp}/lab.npz", "{tmp}/out.zip"], "label",
         npz("lab.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([2**40, 2]))),
    Case("dataset", ["dataset", "{tmp}/empty.npz", "{tmp}/out.zip"], "empty.npz", npz("empty.npz", images=np.zeros((2, 1, 0, 0), np.uint8))),
    Case("dataset", ["dataset", "digits", "{tmp}/dir.zip"], "folder", lambda tmp: (tmp / "dir.zip").mkdir()),
    Case("dataset", ["dataset", "digits", "{tmp}/file/out.zip"], "file", write("file", "x")),
    Case("dataset", ["dataset", "digits", f"{{tmp}}/{LONG}.zip"], "too long"),
    Case("dataset", ["dataset", f"{{tmp}}/{LONG}", "{tmp}/out.zip"], "too long"),
    Case("dataset", ["dataset", "digits", "{tmp}/out.zip", "--resolution", "100000"], "--resolution"),
    Case("dataset", ["dataset", "{tmp}/[/x]", "{tmp}/out.zip"], "[/x]"),
    Case("dataset", ["dataset", "digits", "{tmp}/out.txt"], ".zip"),
    Case("dataset", ["dataset", "digits", "{tmp}/out.zip", "--max-images", "0"], "--max-images"),
    Case("dataset", ["dataset", "{tmp}/bad.zip", "{tmp}/out.zip"], "bad.zip", write("bad.zip", "not a zip")),
    # -- train ---------------------------------------------------------------------------------------------
    Case("train", ["train", "recipes/digits.toml", "--set", "training.lr=inf"], "training.lr"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.p_mean=nan"], "training.p_mean"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.duration_kimg=0.01"], "one batch"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.seed=281474976710656"], "training.seed"),
    Case("train", ["train", "recipes/digits.toml", "--set", f"data.source='{LONG}'"], "too long"),
    Case("train", ["train", "recipes/digits.toml", "--set", "data.source='{tmp}/imgs'"],
         "bad.png", image_folder("imgs", bomb_png())),
    Case("train", ["train", "recipes/digits.toml", "--set", "data.source='{tmp}/imgs'", "--set", "data.conditional=true"],
         "label",
         image_folder("imgs", count=2, labels='{"labels": [["img0.png", -3], ["img1.png", 1]]}')),
    Case("train", ["train", "recipes/digits.toml", "--set", "data.source='{tmp}/lab.npz'", "--set", "data.conditional=true"],
         "label", npz("lab.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([-1, 2]))),
    Case("train", ["train", "{tmp}/deep.toml"], "nested", write("deep.toml", "a = " + "[" * 5000 + "]" * 5000)),
    Case("train", ["train", f"{{tmp}}/{LONG}.toml"], "too long"),
    Case("train", ["train", "--resume", "run1", "--set", "training.lr=inf"], "training.lr", home="trained"),
    Case("train", ["train", "--resume", "run1", "--set", "network.model_channels=16"], "network.*", home="trained"),
    Case("train", ["train", "--resume", "run1"], "run1 is a sample run", home="sampled"),
    Case("train", ["train", "--resume", "run2"], "run2 is a fid run", GOOD_REF, "trained_measured"),
    Case("fid", ["fid", "run2", "--ref", "{tmp}/ref.npz"], "run2 is a fid run", GOOD_REF, "trained_measured"),
    Case("train", ["train", "--resume", "run1", "--set", "data.conditional=true"], "network.*", home="trained"),
    Case("train", ["train", "recipes/digits.toml", "--set", "data.source='{tmp}/empty.npz'"], "empty.npz",
         npz("empty.npz", images=np.zeros((2, 1, 0, 0), np.uint8))),
    Case("train", ["train", "recipes/digits.toml", "--set", "network.channel_mult=[1, 1000000]"], "network.channel_mult"),
    Case("train", ["train", "recipes/digits.toml", "--nproc", "0"], "--nproc"),
    Case("train", ["train", "{tmp}/r.toml", "--dry-run"], "network.attn_resolutions contains 16",  # no σ_data warning first
         write("r.toml", "[precond]\nsigma_data = 0.5\n[network]\nmodel_channels = 8\n")),
    *(Case("train", ["train", "recipes/digits.toml", "--set", "eval.every_kimg=0.1", "--set", "eval.detector='pixels'",
                     "--set", "eval.ref='{tmp}/ref.npz'"], says, setup) for setup, says in (
        (write("ref.npz", "not an npz"), "ref.npz"), (stats("ref.npz", np.zeros(10), np.eye(10)), "10-dimensional"),
        (lambda tmp: (tmp / "ref.npz").mkdir(), "not a file"))),
    Case("train", ["train", "recipes/digits.toml", "--set", "eval.every_kimg=0.1"], "needs eval.ref"),
    Case("train", ["train", "recipes/digits.toml", "--set", "eval.every_kimg=1e-300", "--set", "eval.ref='{tmp}/r.npz'"],
         "eval.every_kimg (1e-300) is less than one batch of training.batch = 64 images"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.grid_kimg=nan"], "training.grid_kimg"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.grid_seeds=1000000"], "training.grid_seeds"),
    Case("train", ["train", "recipes/digits.toml", "--set", "training.tensorboard='yes'"], "training.tensorboard"),
    Case("train", ["train", "recipes/digits.toml", "--dry-run", "--set", "eval.every_kimg=inf"], "eval.every_kimg"),
    Case("sweep", ["sweep", "{tmp}/deep.toml"], "nested", write("deep.toml", "a = " + "[" * 5000 + "]" * 5000)),
    # -- Slurm requests: checked before anything is recorded, no cluster needed -----------------------------
    *(Case("sweep", ["sweep", "{tmp}/sweep.toml", "--executor", "slurm", "--allow-sqlite", *flags], says, SWEEP, env=NO_SLURM)
      for flags, says in SLURM_FLAGS),
    *(Case("train", ["train", "recipes/digits.toml", "--executor", "slurm", "--allow-sqlite", *flags], says, env=NO_SLURM)
      for flags, says in SLURM_FLAGS),
    Case("sweep", ["sweep", "{tmp}/sweep.toml", "--executor", "slurm"], "EDMCTL_DB_URL", SWEEP, env=NO_SLURM),
    Case("sweep", ["sweep", "{tmp}/sweep.toml", "--executor", "slurm", "--allow-sqlite"], "sbatch", SWEEP, env=NO_SLURM),
    Case("train", ["train", "recipes/digits.toml", "--executor", "slurm", "--allow-sqlite"], "sbatch", env=NO_SLURM),
    Case("sweep", ["sweep", "cancel", "latest"], "no sweep runs", home="sampled"),
    *(Case("sweep", ["sweep", "{tmp}/s.toml", *dry], says, write("s.toml", text)) for dry in ([], ["--dry-run"]) for text, says in (
        ('model = "ideal:digits?n=20"\nmetric = "bogus"\n[grid]\n"sampler.steps" = [2]\n', "metric = 'bogus'"),
        ('model = "ideal:digits?n=20"\nseeds = ""\n[grid]\n"sampler.steps" = [2]\n', "seed"),
        ('model = "bogus:x"\n[grid]\n"sampler.steps" = [2]\n', "bogus:x"),
        ('model = "ideal:digits?n=20"\nseeds = "0-1"\nmetric = "fd"\n[set]\n"eval.detector" = "/nonexistent/missing.pt"\n'
         '[grid]\n"sampler.steps" = [2]\n', "missing.pt"),
        ('model = "ideal:digits?n=20"\ntrial = "fid"\n[set]\n"eval.detector" = "bogus"\n[grid]\n"sampler.steps" = [2]\n',
         "Unknown detector 'bogus'"))),
    *(Case("runs", ["runs"], says, env={"EDMCTL_DB_URL": url}) for url, says in (
        ("sqlite://", "no database file"), ("sqlite:///:memory:", "no database file"),
        ("postgresql://me@db:port/edmctl", "not a SQLAlchemy URL"), ("postgresql://me@[::1/edmctl", "not a SQLAlchemy URL"),
        ("sqlite+pysqlcipher:///{tmp}/r.db", "driver"), ("mysql://me@db/edmctl", "is mysql"),
        ("postgresql+nosuchdriver://me@db/edmctl", "driver 'nosuchdriver'"), ("sqlite+nosuchdriver:///{tmp}/r.db", "driver"))),
    *(Case("threads", ["recipe", "validate", "recipes/digits.toml"], "EDMCTL_THREADS", env={"EDMCTL_THREADS": value})
      for value in ("0", "1025", "nan", "1.5", "1_0", "١", "+2", "0x10", "²")),
    # -- reproduce, show, compare, runs ---------------------------------------------------------------------
    Case("reproduce", ["reproduce", "run1"], "samples.npz", corrupt("run1/samples.npz"), "sampled"),
    Case("reproduce", ["reproduce", "run1"], "samples.npz", corrupt("run1/samples.npz", b""), "sampled"),
    Case("reproduce", ["reproduce", "[/x]"], "[/x]"),
    Case("steps", ["steps", "optimize", "--model", "ideal:digits?n=20", "--solver", "euler", "--nfe", "5", "--reference",
                   "run1", "--out", "{tmp}/steps.toml"], "not an .npz archive", corrupt("run1/samples.npz"), "sampled"),
    Case("show", ["show", "[/x]"], "[/x]"),
    Case("show", ["show", "[file, class]"], "[file, class]"),
    Case("compare", ["compare", "run1", "[/x]"], "[/x]", home="sampled"),
    Case("runs", ["runs", "--where", "[/x]"], "[/x]"),
    Case("compare", ["compare", *["run1"] * 65], "compare takes 2 to 64 runs (got 65)", home="sampled"),
    # -- plots, TensorBoard, runs copy ------------------------------------------------------------------
    Case("show", ["show", "run1", "--plot", "--out", "{tmp}/curves.txt"], "suffix", home="trained"),
    Case("show", ["show", "run1", "--plot", "--out", "{tmp}/curves"], "suffix", home="trained"),
    Case("show", ["show", "run1", "--plot", "--out", "{tmp}/.png"], "suffix", home="trained"),
    Case("show", ["show", "run1", "--plot", "--out", "{tmp}/dir"], "folder", lambda tmp: (tmp / "dir").mkdir(), "trained"),
    Case("show", ["show", "run1", "--plot", "--out", ""], "--out '': a path cannot be empty or blank", home="trained"),
    Case("show", ["show", "run1", "--plot", "--out", "/proc/curves.png"], "/proc/curves.png", home="trained"),
    Case("plot", ["plot", "run1", "--out", "{tmp}/curves.exe"], "suffix", home="trained"),
    Case("plot", ["plot", "run1", "--metric", ""], "--metric", home="trained"),
    Case("plot", ["plot", "run1", "--metric", "bogus"], "bogus", home="trained"),
    Case("plot", ["plot", "latest"], "no latest run"),
    Case("runs", ["runs", "tensorboard", "run1"], "no TensorBoard events", home="trained"),
    Case("runs", ["runs", "tensorboard", "latest"], "no latest run", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", ""], "--to is empty", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--from", " "], "--from is empty", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "sqlite://"], "no database file", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "sqlite:///:memory:"], "no database file", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--from", "sqlite:///"], "no database file", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "postgresql+psycopg://me@[::1/db"], "not a SQLAlchemy URL", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "ftp://host/db"], "(--to) is ftp", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "postgresql+pg8000://me@db/edmctl"], "pg8000://me@db/edmctl: its Python driver",
         home="sampled", env={"EDMCTL_DB_URL": ""}),
    Case("runs", ["runs", "copy", "run1", "--to", "~no-such-user-here/x"], "--to", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--to", "{tmp}/a\x00b"], "--to", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--from", "sqlite:///{tmp}/a\x00b"], "--from", home="sampled"),
    Case("runs", ["runs", "copy", "run1", "--from", "{tmp}/elsewhere"], "elsewhere"),
    Case("runs", ["runs", "copy", "run9", "--to", "{tmp}/elsewhere"], "run9", home="sampled"),
    # -- every command: a blank path (`.` or a folder named ' '), a whole number beyond 64 bits, absurd budgets ------
    *(Case(argv[0], [*argv, value], f"{argv[-1]} {shown}: a path cannot be empty or blank") for argv in (
        ["sample", "--model", "ideal:digits?n=20", "--seeds", "0-1", "--steps", "2", "--out"],
        ["fid", "ref", "digits", "--detector", "pixels", "--out"], ["plot", "latest", "--out"],
        ["steps", "optimize", "--model", "ideal:digits?n=20", "--solver", "euler", "--nfe", "3", "--out"],
        ["sample", "--model", "ideal:digits?n=20", "--recipe"]) for value, shown in (("", "''"), (" ", "' '"), ("\t", "'\\t'"))),
    Case("recipe", ["recipe", "validate", "recipes/digits.toml", " "], "FILES... recipes/digits.toml ' ': a path cannot be empty"),
    Case("dataset", ["dataset", "digits", "{tmp}/o.zip", "--max-images", "9" * 20], "--max-images 99999999999999999999: must be a "
                                                                                     "whole number of at most 9,223,372,036,854,775,807"),
    Case("runs", ["runs", "--limit", "9" * 20], "--limit 99999999999999999999: must be a whole number of at most", home="sampled"),
    Case("steps", ["steps", "optimize", "--model", "ideal:digits?n=20", "--solver", "euler", "--nfe", "10001"], "--nfe must be 2..10,000"),
    Case("steps", ["steps", "optimize", "--model", "ideal:digits?n=20", "--solver", "euler", "--nfe", "3", "--max-evals", "9" * 18],
         "--max-evals 1..100,000"),
    # -- links to nothing, pipes, blank or unexpandable homes, several bad fields, a sweep's missing reference ----
    *(Case("sample", ["sample", "--model", "ideal:digits?n=20", "--seeds", "0", "--out", f"{{tmp}}/{name}"], "symbolic link to nothing",
           links) for name in ("loop", "dangling")),
    Case("recipe", ["recipe", "show", "{tmp}/pipe"], "not a regular file (a pipe", lambda tmp: os.mkfifo(tmp / "pipe")),
    Case("train", ["train", "{tmp}/pipe", "--dry-run"], "not a regular file (a pipe", lambda tmp: os.mkfifo(tmp / "pipe")),
    *(Case("runs", ["runs"], says, links, env={"EDMCTL_HOME": home}) for home, says in (
        (" ", "EDMCTL_HOME=' ' is blank"), ("~no-such-user-here/x", "EDMCTL_HOME='~no-such-user-here/x'"),
        ("{tmp}/loop", "loop': "))),
    Case("sample", ["sample", "--model", "ideal:digits?n=20", "--seeds", "0"], "EDMCTL_CACHE=' ' is blank", env={"EDMCTL_CACHE": " "}),
    Case("recipe", ["recipe", "show", "{tmp}/two.toml"], "(got 'x'); ", write("two.toml", "[sampler]\nsteps = 'x'\nrho = 'y'\n")),
    *(Case("sweep", ["sweep", "{tmp}/s.toml", *dry], "/nonexistent/ref.npz does not exist", write("s.toml", (
        'trial = "fid"\nmodel = "ideal:digits?n=20"\n[set]\n"eval.detector" = "pixels"\n"eval.ref" = "/nonexistent/ref.npz"\n'
        '[grid]\n"eval.num" = [2]\n'))) for dry in ([], ["--dry-run"])),
    # -- a registry edited by hand: one sentence naming the damage, nothing written (no run folder, no --to) ----
    *(Case(argv[0], argv, says, tampered(statement), "trained") for statement, argv, says in (
        ("UPDATE runs SET recipe_json = 'not json'", ["show", "run1"], "record of run1 is damaged: recipe_json holds 'not json'"),
        ("UPDATE runs SET extra_json = '[1]'", ["runs"], "extra_json holds '[1]', not a JSON dict"),
        ("UPDATE runs SET argv_json = '3'", ["reproduce", "run1"], "argv_json holds '3', not a JSON list of strs"),
        ("UPDATE runs SET seeds_json = '[\"a\"]'", ["sample", "--model", "run:1", "--seeds", "0"], "seeds_json"),
        ("UPDATE runs SET created = 1e308", ["runs"], "created is 1e+308, not a time"),
        ("UPDATE runs SET started = 'x'", ["show", "latest"], "started is 'x', not a time"),
        ("UPDATE runs SET parent_id = 1", ["runs", "copy", "run1", "--to", "{tmp}/other"], "it is its own parent"),
        ("UPDATE runs SET pid = 99999999999, status = 'running'", ["runs"], "pid is 99999999999"),
        ("UPDATE registry_meta SET value = 'abc'", ["runs"], "records schema version 'abc', not a number"),
        ("DROP TABLE metrics", ["sample", "--model", "run:1", "--seeds", "0", "--steps", "2"], "lacks the table(s) metrics"),
        ("UPDATE latest_metrics SET value = 'abc'", ["reproduce", "run1"], "has value 'abc', not a number"),
        ("UPDATE metrics SET value = 'abc'", ["runs", "copy", "run1", "--to", "{tmp}/other"], "has value 'abc', not a number"))),
    Case("runs", ["runs", "copy", "run1", "--to", "{tmp}/other"], "still running",
         tampered(f"UPDATE runs SET status = 'running', pid = {os.getpid()}, host = '{__import__('socket').gethostname()}'"), "trained"),
    # -- data: a dataset.json nested past Python's recursion limit, float images all NaN (no numpy warning first) ----
    *(Case(argv[0], argv, "nests arrays or objects too deeply", image_folder("imgs", count=2, labels="[" * 100000)) for argv in (
        ["dataset", "{tmp}/imgs", "{tmp}/out.zip"], ["train", "recipes/digits.toml", "--dry-run", "--set", "data.source='{tmp}/imgs'"])),
    Case("dataset", ["dataset", "{tmp}/nan.npz", "{tmp}/out.zip"], "found 128 values that are not finite",
         npz("nan.npz", images=np.full((2, 1, 8, 8), np.nan, np.float32))),
    # -- an integer past Python's 4,300-digit int-from-text limit, in a --set, a recipe and a sweep file -------
    Case("recipe", ["recipe", "show", "--set", "sampler.steps=" + "9" * 5000], "input should be a valid integer"),
    Case("recipe", ["recipe", "show", "{tmp}/big.toml"], "a number has more than 4,300 digits", write("big.toml", "[sampler]\nsteps = " + "9" * 5000)),
    Case("sweep", ["sweep", "{tmp}/big.toml", "--dry-run"], "a number has more than 4,300 digits",
         write("big.toml", 'model = "ideal:digits?n=20"\n[grid]\n"sampler.steps" = [' + "9" * 5000 + "]\n")),
    *(Case(command, argv, "a number given has more than 4,300 digits", env=env) for command, argv, env in (
        ("threads", ["runs"], {"EDMCTL_THREADS": "9" * 5000}),
        ("sample", ["sample", "--model", "ideal:digits?n=20", "--seeds", "0-" + "9" * 5000], {}),
        ("sample", ["sample", "--model", "ideal:digits?n=" + "9" * 5000], {}))),
    # -- demo, ablate --------------------------------------------------------------------------------------
    Case("demo", ["demo", "--seeds", "²"], "seed"),
    Case("demo", ["demo", "--set", "training.lr=inf"], "training.lr"),
    Case("demo", ["demo", f"{{tmp}}/{LONG}.toml"], "too long"),
    Case("demo", ["demo", "--set", "training.duration_kimg=0.001"], "one batch"),
    Case("ablate", ["ablate", "sampler", "--model", "ideal:digits", "--seeds", "²"], "seed"),
    Case("ablate", ["ablate", "sampler", "--model", "ideal:digits", "--seeds", "1" + "0" * 30], "2**32"),
    Case("ablate", ["ablate", "sampler", "--model", "ideal:digits", "--nfe-max", "1000000000"], "--nfe-max"),
    Case("ablate", ["ablate", "sampler", "--model", "ideal:{tmp}/empty.npz"], "empty.npz", npz("empty.npz", images=np.zeros((3, 1, 0, 0)))),
    Case("ablate", ["ablate", "training", "--base", "recipes/digits.toml", "--budget-kimg", "inf"], "--budget-kimg"),
    Case("ablate", ["ablate", "training", "--base", "recipes/digits.toml", "--budget-kimg", "nan"], "--budget-kimg"),
    Case("ablate", ["ablate", "training", "--base", "recipes/digits.toml", "--set", "training.lr=inf"], "training.lr"),
    Case("ablate", ["ablate", "training", "--base", "recipes/digits.toml", "--budget-kimg", "2", "--set",
                    "training.duration_kimg=3"], "--budget-kimg and --set training.duration_kimg"),
    Case("ablate", ["ablate", "training", "--base", f"{{tmp}}/{LONG}.toml"], "too long"),
]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """Registries to start from: `sampled` (run1 samples ideal:digits?n=20), `trained` (run1 a 128-image training run),
    `trained_measured` (that, and run2 its FD in pixels);
    and one EDMCTL_CACHE for the module (the digits are cached there on first use), outside every case's folder."""
    patch = pytest.MonkeyPatch()
    made = {"cache": tmp_path_factory.mktemp("cache")}
    patch.setenv("EDMCTL_CACHE", str(made["cache"]))
    for name, argv in (("sampled", ["sample", "--model", "ideal:digits?n=20", "--seeds", "0-1", "--steps", "2"]),
                       ("trained", ["train", str(REPO / "recipes" / "digits.toml"), "--set", "training.duration_kimg=0.128",
                                    "--set", "training.snapshot_kimg=0.128", "--set", "network.model_channels=8"])):
        home = tmp_path_factory.mktemp(name) / "home"
        patch.setenv("EDMCTL_HOME", str(home))
        assert main(argv) == 0
        made[name] = home
    made["trained_measured"] = tmp_path_factory.mktemp("trained_measured") / "home"  # run2: a fid run of run1
    shutil.copytree(made["trained"], made["trained_measured"])
    patch.setenv("EDMCTL_HOME", str(made["trained_measured"]))
    GOOD_REF(made["trained_measured"].parent)
    assert main(["fid", "run1", "--ref", str(made["trained_measured"].parent / "ref.npz"), "--detector", "pixels",
                 "--num", "2", "--repeats", "1", "--steps", "2"]) == 0
    patch.undo()
    return made


def listing(folder: Path) -> set[str]:
    """Every path under `folder` (registry journal files aside, which SQLite may leave behind a read)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm", "-journal"))}


def run_case(case: Case, tmp: Path, homes, monkeypatch) -> int:
    if case.home is not None:
        shutil.copytree(homes[case.home], tmp / "home")
    monkeypatch.setenv("EDMCTL_HOME", str(tmp / "home"))
    monkeypatch.setenv("EDMCTL_CACHE", str(homes["cache"]))
    monkeypatch.chdir(REPO)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp)))
    case.setup(tmp)
    return main([arg.replace("{tmp}", str(tmp)) for arg in case.argv])


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_hostile_input_is_one_clean_line_and_writes_nothing(case, tmp_path, homes, monkeypatch, capsys):
    before = None

    def snapshot_after_setup(tmp):
        nonlocal before
        case_setup(tmp)
        before = listing(tmp)

    case_setup, case = case.setup, Case(case.command, case.argv, case.says, snapshot_after_setup, case.home, case.env)
    code = run_case(case, tmp_path, homes, monkeypatch)
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {printed.err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), printed.err
    assert case.says in lines[0], lines[0]
    assert "Traceback" not in printed.err + printed.out
    assert listing(tmp_path) == before, "written: " + ", ".join(sorted(listing(tmp_path) - before))


# -- results that turn non-finite during the work fail the run (exit 1, recorded as failed) -----------------


def latest_run(home: Path):
    from edmctl.registry import Registry

    return Registry(home).latest(kind=None, status=None)


def test_samples_that_turn_nan_fail_the_run_naming_the_seed(tmp_path, monkeypatch, capsys):
    from edmctl.models.mixture import GaussianMixtureDenoiser

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(GaussianMixtureDenoiser, "__call__", lambda self, x, sigma, class_labels=None: x * float("nan"))
    assert main(["sample", "--model", "ideal:digits?n=5", "--seeds", "3-4", "--steps", "2"]) == 1
    message = capsys.readouterr().err
    assert "seed 3 turned non-finite" in message and "Traceback" not in message
    run = latest_run(tmp_path / "home")
    assert run.status == "failed" and "non-finite" in run.error
    assert not (tmp_path / "home" / run.label / "samples.npz").exists()


def test_training_whose_loss_turns_nan_fails_before_its_snapshot(tmp_path, monkeypatch, capsys):
    from edmctl.train.loop import Trainer

    ticked = Trainer.tick_metrics
    monkeypatch.setattr(Trainer, "tick_metrics", lambda self: {**ticked(self), "loss": float("nan")})
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    assert main(["train", str(REPO / "recipes" / "digits.toml"), "--set", "training.duration_kimg=0.128",
                 "--set", "network.model_channels=8"]) == 1
    assert "training diverged: the mean loss turned nan" in capsys.readouterr().err
    run = latest_run(tmp_path / "home")
    assert run.status == "failed" and "diverged" in run.error
    assert not list((tmp_path / "home" / run.label).glob("snapshot-*.pt"))


def test_a_run_measured_against_statistics_without_kid_features_logs_no_kid(tmp_path, homes, monkeypatch, capsys):
    """EDM's reference files hold only mu and sigma: FID is measured, KID is not (and not logged as a value)."""
    code = run_case(Case("fid", ["fid", "run1", "--ref", "{tmp}/ref.npz", "--detector", "pixels", "--num", "2",
                                 "--repeats", "1", "--steps", "2"], "", GOOD_REF, "trained"), tmp_path, homes, monkeypatch)
    assert code == 0, capsys.readouterr().err
    from edmctl.registry import Registry

    assert "KID n/a" in capsys.readouterr().out
    measured = latest_run(tmp_path / "home")
    metrics = Registry(tmp_path / "home").metrics(measured.id)
    assert measured.kind == "fid" and "fid" in metrics and "kid" not in metrics


WATCHED = ["--set", "training.duration_kimg=0.128", "--set", "network.model_channels=8", "--set", "sampler.steps=2"]


def test_a_fid_during_training_that_turns_nan_fails_the_training_run(tmp_path, homes, monkeypatch, capsys):
    import edmctl.fid.pipeline

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDMCTL_CACHE", str(homes["cache"]))
    GOOD_REF(tmp_path)
    monkeypatch.setattr(edmctl.fid.pipeline, "frechet_distance", lambda a, b: float("nan"))
    assert main(["train", str(REPO / "recipes" / "digits.toml"), *WATCHED, "--set", "eval.every_kimg=0.064", "--set",
                 f"eval.ref='{tmp_path / 'ref.npz'}'", "--set", "eval.detector='pixels'", "--set", "eval.num=8"]) == 1
    assert "the Fréchet distance came out nan" in capsys.readouterr().err
    assert latest_run(tmp_path / "home").status == "failed"


def test_a_training_grid_that_turns_nan_fails_the_training_run(tmp_path, homes, monkeypatch, capsys):
    from edmctl.train.loop import Trainer

    ema_denoiser = Trainer.ema_denoiser

    def diverged(self):
        denoiser = ema_denoiser(self)
        forward = denoiser.forward
        denoiser.forward = lambda *args, **kwargs: forward(*args, **kwargs) * float("nan")
        return denoiser

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDMCTL_CACHE", str(homes["cache"]))
    monkeypatch.setattr(Trainer, "ema_denoiser", diverged)
    assert main(["train", str(REPO / "recipes" / "digits.toml"), *WATCHED, "--set", "training.grid_kimg=0.064",
                 "--set", "training.grid_seeds=4"]) == 1
    assert "seed 0 turned non-finite" in capsys.readouterr().err
    run = latest_run(tmp_path / "home")
    assert run.status == "failed" and not list((tmp_path / "home" / run.label).glob("grid-*.png"))


def test_a_frechet_distance_that_is_not_finite_fails_the_fid_run(tmp_path, monkeypatch, capsys):
    import edmctl.fid.pipeline

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(edmctl.fid.pipeline, "frechet_distance", lambda a, b: float("nan"))
    both(DIGIT_IMAGES, GOOD_REF)(tmp_path)
    assert main(["fid", str(tmp_path / "imgs"), "--ref", str(tmp_path / "ref.npz"), "--detector", "pixels"]) == 1
    assert "the Fréchet distance came out nan" in capsys.readouterr().err
    assert latest_run(tmp_path / "home").status == "failed"


# -- what stays allowed, and the flags that choose -----------------------------------------------------------


def test_documented_infinite_s_tmax_and_the_paper_recipes_stay_valid(capsys):
    recipes = sorted(str(p) for p in (REPO / "recipes").rglob("*.toml"))
    assert main(["recipe", "validate", *recipes]) == 0
    assert main(["recipe", "show", "--set", "sampler.s_tmax=inf", "--set", "sampler.sigma_max=1000", "--json"]) == 0
    assert '"s_tmax": "inf"' in capsys.readouterr().out


def test_user_text_is_printed_as_it_is_never_as_markup(capsys):
    assert main(["recipe", "show", "--set", "data.source='[file, class] [/x]'"]) == 0
    assert "[file, class] [/x]" in capsys.readouterr().out


@pytest.mark.parametrize("data", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"PK\x03\x04cut", b"\x80\x02}q\x00."])
def test_a_file_that_is_no_torch_file_is_a_user_error_wherever_tensors_are_read(tmp_path, data):
    """torch's weights-only unpickler raises IndexError on a text file (a snapshot path edited to /etc/passwd):
    every reader of torch files says what is wrong instead."""
    from edmctl.errors import UserError
    from edmctl.train.checkpoint import load_snapshot

    (tmp_path / "snapshot.pt").write_bytes(data)
    with pytest.raises(UserError, match="cannot be read as plain tensor data|is not an edmctl training snapshot"):
        load_snapshot(tmp_path / "snapshot.pt")


def test_plotting_many_runs_prints_no_matplotlib_warning(tmp_path, homes, monkeypatch, capsys):
    shutil.copytree(homes["trained"], tmp_path / "home")
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # outside pytest a warning is two lines on stderr
        warnings.simplefilter("always")
        assert main(["plot", *["run1"] * 50, "--out", str(tmp_path / "p.png")]) == 0
    assert not [str(w.message) for w in caught] and capsys.readouterr().err == "" and (tmp_path / "p.png").is_file()


def test_escape_sequences_in_registry_text_reach_no_terminal(tmp_path, monkeypatch, capsys):
    """A run name or recipe string in a shared registry holding terminal escapes (clear the screen, set the title)
    is printed with them visible (`\\x1b`), by every command that shows it, to a terminal as to a pipe."""
    from edmctl.cli import common
    from edmctl.registry import open_run

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    with open_run(kind="sample", name="evil\x1b[2J\x1b]0;owned\x07", recipe={"sampler": {"solver": "he\x1b[31mun"}}):
        pass
    for argv in (["runs"], ["show", "run1"]):
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "\x1b" not in printed and "evil\\x1b[2J" in printed and "he\\x1b[31mun" in printed, argv
    terminal = common.safe_console(force_terminal=True, markup=False)
    with terminal.capture() as captured:
        terminal.print(common.styled("error:", "red"), "evil\x1b[2J", highlight=False)
    assert captured.get().count("\x1b") == 2 and "evil\\x1b[2J" in captured.get()  # the style's codes alone


def test_force_writes_into_a_folder_holding_images(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    DIGIT_IMAGES(tmp_path)
    argv = ["sample", "--model", "ideal:digits?n=5", "--seeds", "0", "--steps", "2", "--out", str(tmp_path / "imgs")]
    assert main(argv) == 2
    assert main([*argv, "--force"]) == 0
    assert {p.name for p in (tmp_path / "imgs").iterdir()} == {"img0.png", "img1.png", "img2.png", "000000.png",
                                                                "grid.png", "samples.npz"}


def test_sample_takes_latest_as_every_run_reference_does(tmp_path, homes, monkeypatch, capsys):
    code = run_case(Case("sample", ["sample", "--model", "latest", "--seeds", "0", "--steps", "2"], "", home="trained"),
                    tmp_path, homes, monkeypatch)
    assert code == 0 and "model run:1" in capsys.readouterr().out


def test_an_sqlite_url_that_names_its_driver_is_a_file_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDMCTL_DB_URL", f"sqlite+pysqlite:///{tmp_path / 'r.db'}")
    assert main(["sample", "--model", "ideal:digits?n=5", "--seeds", "0", "--steps", "2"]) == 0
    assert (tmp_path / "r.db").is_file() and latest_run(tmp_path / "home").status == "done"


def test_a_demo_step_given_bad_input_stops_the_demo_with_exit_2_and_records_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    write("r.toml", "[data]\nsource = 'nowhere.npz'\n")(tmp_path)
    assert main(["demo", str(tmp_path / "r.toml"), "--json"]) == 2
    assert "nowhere.npz does not exist" in capsys.readouterr().err
    assert not (tmp_path / "home" / "registry.db").exists()


def test_an_existing_output_file_is_replaced_and_a_device_is_refused(tmp_path, homes, monkeypatch, capsys):
    """`--out` names a file to create or replace; a device in its place is refused, never replaced by a file."""
    monkeypatch.setenv("EDMCTL_CACHE", str(homes["cache"]))
    argv = ["fid", "ref", "digits", "--detector", "pixels", "--out", str(tmp_path / "ref.npz")]
    assert main(argv) == 0 and main(argv) == 0, capsys.readouterr().err
    assert main(["dataset", "digits", str(tmp_path / "d.zip"), "--max-images", "2"]) == 0
    assert main(["dataset", "digits", str(tmp_path / "d.zip"), "--max-images", "2"]) == 0
    assert main([*argv[:-1], "/dev/null"]) == 2
    assert "not a regular file" in capsys.readouterr().err and Path("/dev/null").is_char_device()


def test_a_damaged_snapshot_is_a_user_error_not_an_unpickling_traceback(tmp_path):
    from edmctl.errors import UserError
    from edmctl.train.checkpoint import load_snapshot

    (tmp_path / "snapshot.pt").write_bytes(b"\x80\x04\x95garbage")
    with pytest.raises(UserError, match="cannot be read as plain tensor data"):
        load_snapshot(tmp_path / "snapshot.pt")


def test_an_unexpected_exception_is_one_internal_error_line_and_exit_1(monkeypatch, capsys):
    import edmctl.recipe

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(edmctl.recipe, "load_recipe", broken)
    assert main(["recipe", "show"]) == 1
    printed = capsys.readouterr().err
    assert printed.startswith("internal error: RuntimeError: boom (") and len(printed.strip().splitlines()) == 1
    monkeypatch.setenv("EDMCTL_DEBUG", "1")
    assert main(["recipe", "show"]) == 1
    assert "Traceback" in capsys.readouterr().err
