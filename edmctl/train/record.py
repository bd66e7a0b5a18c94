"""Rank 0's side of the training loop (`Recorder`, the `Hooks` that record): tick metrics, sample grids, FID and
snapshots into the registry, and into TensorBoard event files when the recipe asks (`board.py`); under
`--nproc` the other ranks' part in each FID (`FidShare`, `edmctl.fid.shared`).

Grids and FID sample the EMA weights (EDM's evaluated model) with the recipe's `[sampler]` from fixed seeds —
seeds 0..`training.grid_seeds`-1 for a grid, 0..`eval.num`-1 for FID (one seed block of the paper's protocol;
`edmctl fid RUN` measures all `eval.repeats`) — each image from its seed's own generator, so the training's
random streams are untouched: watching a run does not change its bits.
"""

from edmctl.errors import UserError
from edmctl.train.checkpoint import save_snapshot, snapshot_name
from edmctl.train.loop import Hooks, Tick, Trainer


def grid_name(nimg: int) -> str:
    """`grid-000000128.png`: named by the images trained on, as snapshots."""
    return f"grid-{nimg:09d}.png"


def check_watching(recipe, img_shape: tuple[int, int, int]) -> None:
    """What the recipe asks to watch can be had, before anything is recorded: TensorBoard is installed; FID's
    reference statistics are readable and were made with `eval.detector` on images of `img_shape`."""
    if recipe.training.tensorboard:
        from edmctl.train.board import require_tensorboard

        require_tensorboard("training.tensorboard = true")
    if recipe.eval.every_kimg > 0:
        check_fid_reference(recipe.eval, img_shape)


def check_fid_reference(settings, img_shape: tuple[int, int, int]) -> None:
    """`eval.ref` is statistics `eval.detector` can be compared with, for images of `img_shape` (loading the
    detector also checks that clean-fid, and the torchvision it needs, import)."""
    from pathlib import Path

    from edmctl.fid.detectors import load_detector
    from edmctl.fid.stats import check_compatible, load_stats

    ref = Path(settings.ref)
    if not ref.is_file():
        raise UserError(f"eval.ref {ref} is not a file; make the reference statistics with `edmctl fid ref "
                        f"DATA --detector {settings.detector} --out {ref}`.")
    stats = load_stats(ref)
    detector = load_detector(settings.detector, settings.protocol)
    check_compatible(stats, ref, detector.describe(), detector.feature_dim(img_shape))


class Recorder(Hooks):
    """Records one training run (`run`, an open registry run) of `trainer`; use it as a context manager, which
    closes the event files. A resumed training run's event files start with the series it continues."""

    def __init__(self, run, trainer: Trainer):
        self.run, self.trainer, self.metrics, self.last = run, trainer, {}, None
        self.denoiser = trainer.ema_denoiser()
        self.fid_plan = self._prepare_fid() if trainer.recipe.eval.every_kimg > 0 else None
        self.board = self._open_board() if trainer.recipe.training.tensorboard else None

    def _prepare_fid(self):
        from pathlib import Path

        from edmctl.fid.runs import prepare_fid
        from edmctl.fid.weights import file_sha256

        recipe = self.trainer.recipe
        plan = prepare_fid(lambda: self.denoiser, recipe, Path(recipe.eval.ref), repeats=1, device=self.trainer.dist.device)
        self.run.update(**{f"fid_{key}": value for key, value in plan.detector.describe().items()},
                        fid_ref=str(plan.ref_path), fid_ref_sha256=file_sha256(plan.ref_path), fid_num=plan.num)
        return plan

    def _open_board(self):
        from edmctl.train.board import Board

        board = Board(self.run.dir)
        board.replay(self.run.registry, self.run.registry.get(self.run.id))
        return board

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        if self.board is not None:
            self.board.close()

    def tick(self, tick: Tick) -> None:
        self.metrics = tick.metrics
        self.run.log_metrics(tick.metrics, step=tick.nimg)
        if self.board is not None:
            self.board.scalars(tick.metrics, tick.nimg)

    def grid(self, nimg: int) -> None:
        """Seeds 0..grid_seeds-1 from the EMA into `grid-{nimg}.png`, recorded as a `grid` artifact at `nimg`."""
        from edmctl.sampling import sample
        from edmctl.sampling.writers import write_grid

        recipe = self.trainer.recipe
        seeds = list(range(recipe.training.grid_seeds))
        samples = sample(self.denoiser, recipe.sampler, seeds, recipe.eval.batch, device=self.trainer.dist.device).samples
        path = write_grid(self.run.dir / grid_name(nimg), samples)
        self.run.add_artifact(path, kind="grid", step=nimg)
        if self.board is not None:
            self.board.grid(path, nimg)

    def fid(self, nimg: int) -> None:
        """FID (and KID) of seeds 0..eval.num-1 from the EMA, logged at `nimg`; under `--nproc` measured with the
        other ranks (`FidShare`)."""
        plan, dist = self.fid_plan, self.trainer.dist
        if dist.active:
            from edmctl.fid.pipeline import compare
            from edmctl.fid.shared import shared_stats

            seeds = plan.blocks[0]  # the features' dimension is the reference's (prepare_fid checked they agree)
            result = compare(shared_stats(plan.make_batches, plan.detector, plan.ref_stats.dim, seeds, plan.batch,
                                          dist), plan.ref_stats, seeds)
        else:
            result = plan.measure()[0]
        values = {"fid": result.fid, **({"kid": result.kid} if result.kid is not None else {})}
        self.run.log_metrics(values, step=nimg)
        if self.board is not None:
            self.board.scalars(values, nimg)

    def snapshot(self, state: dict) -> None:
        path = self.run.dir / snapshot_name(state["nimg"])
        save_snapshot(path, state)
        self.run.add_artifact(path, kind="checkpoint", step=state["nimg"])
        self.last = str(path)


class FidShare(Hooks):
    """Every rank but 0 under `--nproc` when the recipe measures an FID series (`eval.every_kimg`): generates and
    passes through the detector its share of each measurement's batches, for rank 0 to accumulate
    (`edmctl.fid.shared`). Records nothing."""

    def __init__(self, trainer: Trainer):
        from edmctl.fid.detectors import load_detector
        from edmctl.sampling.driver import generated_batches

        settings, device = trainer.recipe.eval, trainer.dist.device
        self.trainer, self.settings = trainer, settings
        self.detector = load_detector(settings.detector, settings.protocol, device)
        denoiser = trainer.ema_denoiser()
        self.dim = self.detector.feature_dim(denoiser.img_shape)
        self.make_batches, _ = generated_batches(denoiser, trainer.recipe.sampler, settings.batch, device)

    def fid(self, nimg: int) -> None:
        from edmctl.fid.shared import shared_stats

        shared_stats(self.make_batches, self.detector, self.dim, range(self.settings.num), self.settings.batch,
                     self.trainer.dist)
