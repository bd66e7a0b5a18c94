"""What `edmctl fid` measures, as library calls: any image source by path (`open_source`), and a training run's
FID by the paper's protocol (`prepare_run_fid`, then `RunFid.measure`) — `edmctl fid` and `edmctl reproduce`
both measure through these, and training measures its EMA through `prepare_fid` (`eval.every_kimg`)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from edmctl.errors import UserError
from edmctl.fid.detectors import Detector, load_detector
from edmctl.fid.pipeline import FidResult, measure_blocks, seed_blocks
from edmctl.fid.sources import ImageList, dataset_images, open_images
from edmctl.fid.stats import Stats, check_compatible, load_stats


def open_source(source: str) -> ImageList:
    """A folder or zip of images through edmctl.fid's readers (clean-fid's decoding); any other dataset
    `edmctl.data.open_dataset` reads (digits, .npz) through it."""
    path = Path(source)
    if path.is_dir() or path.suffix.lower() == ".zip":
        return open_images(path)
    from edmctl.data import open_dataset

    return dataset_images(open_dataset(source))


@dataclass
class RunFid:
    """A training run's FID measurement with every input checked: `repeats` seed blocks of `num` images
    generated from its EMA weights with `recipe.sampler`, `batch` images at a time, against `ref_stats`."""

    recipe: object
    detector: Detector
    ref_path: Path
    ref_stats: Stats
    num: int
    repeats: int
    batch: int
    make_batches: Callable[[range], Iterable]
    _nfe: list[int]

    @property
    def blocks(self) -> list[range]:
        return seed_blocks(self.num, self.repeats)

    @property
    def nfe(self) -> int:
        """Network evaluations per image (known once a batch was generated)."""
        return self._nfe[0]

    def measure(self, on_batch: Callable[[int], None] | None = None) -> list[FidResult]:
        """FID of every seed block, in block order (the paper reports the minimum, `best`)."""
        return measure_blocks(self.make_batches, self.detector, self.ref_stats, self.num, self.repeats, on_batch)


def prepare_run_fid(run_id: int, recipe, ref_path: Path | None = None, num: int | None = None,
                    repeats: int | None = None, batch: int | None = None, detector: str | None = None,
                    protocol: str | None = None, device: str = "cpu") -> RunFid:
    """The measurement of training run `run_id` with `recipe` (its recorded recipe, overrides applied); unset
    settings come from `recipe.eval`. Loads the detector, the reference statistics and the EMA weights."""
    from edmctl.models.runs import load_run_model

    ref_path = ref_path or (Path(recipe.eval.ref) if recipe.eval.ref else None)
    if ref_path is None:
        raise UserError(f"run{run_id}'s recipe sets no eval.ref; pass --ref STATS.npz (make it with `edmctl fid ref DATA --out STATS.npz`).")
    return prepare_fid(lambda: load_run_model(run_id), recipe, ref_path, num, repeats, batch, detector, protocol, device)


def prepare_fid(load_model: Callable[[], object], recipe, ref_path: Path, num: int | None = None,
                repeats: int | None = None, batch: int | None = None, detector: str | None = None,
                protocol: str | None = None, device: str = "cpu") -> RunFid:
    """The measurement of the denoiser `load_model()` returns (loaded last, after every cheaper check; also the
    EMA of a training in progress, whose weights change between measurements) against `ref_path`; unset
    settings come from `recipe.eval`."""
    from edmctl.sampling.driver import generated_batches

    settings = recipe.eval
    num, repeats, batch = num or settings.num, repeats or settings.repeats, batch or settings.batch
    seed_blocks(num, repeats)  # checks num and repeats before anything is loaded
    det = load_detector(detector or settings.detector, protocol or settings.protocol, device)
    ref_stats = load_stats(ref_path)
    model = load_model().to(device)
    check_compatible(ref_stats, ref_path, det.describe(), det.feature_dim(model.img_shape))
    make_batches, nfe = generated_batches(model, recipe.sampler, batch, device)
    return RunFid(recipe, det, Path(ref_path), ref_stats, num, repeats, batch, make_batches, nfe)
