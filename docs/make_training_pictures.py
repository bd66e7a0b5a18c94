"""The README's pictures of a watched training run: its curves and its sample grids over training, from one run
of recipes/digits.toml. Regenerates docs/training/curves.png and docs/training/grids.png:

    python docs/make_training_pictures.py                          # ~15 minutes on 2 busy cores
    python docs/make_training_pictures.py --home H --run run1      # redraw run1 of registry H, no training

The run is the README's commands, run in-process in a throw-away registry (`--home` to keep it):

    edmctl fid ref digits --detector pixels --out REF.npz
    edmctl train recipes/digits.toml --set training.duration_kimg=KIMG --set training.grid_kimg=KIMG/4 \\
        --set eval.every_kimg=KIMG/8 --set eval.ref=REF.npz --set eval.num=512
    edmctl show run1 --plot --out docs/training/curves.png
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's edmctl, also when another is installed


def grid_strip(registry, record, path: Path, count: int = 5) -> Path:
    """Up to `count` of the run's sample grids, evenly spread over training, side by side with their kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from edmctl.paths import save_figure
    from edmctl.train.curves import grids

    written = grids(registry, record)
    shown = min(count, len(written))
    chosen = [written[round(i * (len(written) - 1) / max(shown - 1, 1))] for i in range(shown)]
    fig, axes = plt.subplots(1, shown, figsize=(3.2 * shown, 3.5), squeeze=False)
    for ax, (step, grid) in zip(axes[0], chosen):
        with Image.open(grid) as image:
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{step / 1000:g} kimg")
        ax.axis("off")
    fig.suptitle(f"{record.label}: seeds 0-{record.recipe['training']['grid_seeds'] - 1} from the EMA during training")
    fig.tight_layout()
    return save_figure(fig, path)


def train_watched(home: Path, kimg: float) -> None:
    """The commands of the module docstring, in-process on one torch thread (a tiny network: more only spin)."""
    import torch

    from edmctl.cli.main import main as edmctl

    torch.set_num_threads(1)
    ref = home / "digits-pixels.npz"
    overrides = [f"training.duration_kimg={kimg:g}", f"training.grid_kimg={kimg / 4:g}", f"eval.every_kimg={kimg / 8:g}",
                 f"eval.ref={ref}", "eval.num=512"]
    if edmctl(["fid", "ref", "digits", "--detector", "pixels", "--out", str(ref)]) or \
            edmctl(["train", str(ROOT / "recipes" / "digits.toml"), *[a for o in overrides for a in ("--set", o)]]):
        sys.exit("edmctl failed; see above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=20.0, help="training.duration_kimg of the run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "training", help="folder for curves.png and grids.png")
    parser.add_argument("--home", type=Path, default=None, help="registry for the run (default: a temporary folder)")
    parser.add_argument("--run", default=None, help="draw this run of --home, trained before by this script; train none")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="edmctl-training-"))
    os.environ["EDMCTL_HOME"] = str(home)
    from edmctl.registry import Registry
    from edmctl.train.curves import plot_runs

    if args.run is None:
        train_watched(home, args.kimg)
    registry = Registry()
    record = registry.get(args.run or "latest")
    for path in (plot_runs(registry, [record.label], args.out / "curves.png"), grid_strip(registry, record, args.out / "grids.png")):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
