"""EDM Table 2 for any base recipe: the training ladder A → F trained at one budget, evaluated by one FID protocol.

The ladder's configs come from `recipes/cifar10/{family}-{A..F}.toml` *as deltas* on top of the base recipe:
config A is the base with ladder A's fields laid over it, and each later config is the one before with the
fields that the ladder step changes (the difference of the two canonical ladder recipes) laid over it. Which
field comes from where:

- From the ladder (the design choices Table 2 is about): all of `[sampler]`, `[augment]`, `[precond]` except
  `sigma_data`, `[training]` `p_train`, `p_mean`, `p_std`, `loss_weight`, `snr_gamma`, `lr`, `betas`, `eps`,
  `dropout`, `label_dropout`, `ema_rampup_ratio`, and `[network]` `arch`, `channel_mult` (its length and
  widths per level: config C drops the lowest-resolution level and doubles the highest), `embedding_type`,
  `encoder_type`, `decoder_type`, `resample_filter`.
- From the ladder, rescaled to the budget (`SCALED`): `training.lr_rampup_kimg` and
  `training.ema_halflife_kimg`, times budget_kimg / the ladder's `duration_kimg`, so that the ramp-up and the
  EMA keep the share of training they have in the paper's 200 Mimg runs.
- From the base (scale and data, `FROM_BASE`): all of `[data]` and `[eval]`, `precond.sigma_data` (a
  statistic of the data), `training.batch`, `batch_gpu`, `duration_kimg` (or `budget_kimg`), `tick_kimg`,
  `snapshot_kimg`, `seed`, `compile`, and `[network]` `model_channels`, `num_blocks`, `attn_resolutions`,
  `channel_mult_emb`, `channel_mult_noise`. A ladder step's change to one of these (B's batch 128 → 512) is
  listed as held at the base, not applied.

So on CPU, `--base recipes/digits.toml` runs the ladder at digits scale with the `pixels` detector. Each config
is one `train+fid` trial (`edmctl.sweep.trials`), a child of the `ablate` run.
"""

import copy
import math
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edmctl.errors import UserError
from edmctl.paths import save_figure

CONFIGS = "ABCDEF"
TITLES = {  # EDM Table 2, rows
    "A": "Baseline (Song et al.)",
    "B": "+ Adjust hyperparameters",
    "C": "+ Redistribute capacity",
    "D": "+ Our preconditioning",
    "E": "+ Our loss function",
    "F": "+ Non-leaking augmentation",
}
FAMILIES = ("vp", "ve")
LADDER_DIR = Path(__file__).resolve().parents[2] / "recipes" / "cifar10"
FROM_BASE = {
    "data": None,  # None: the whole section
    "eval": None,
    "precond": {"sigma_data"},
    "training": {"batch", "batch_gpu", "duration_kimg", "tick_kimg", "snapshot_kimg", "seed", "compile"},
    "network": {"model_channels", "num_blocks", "attn_resolutions", "channel_mult_emb", "channel_mult_noise"},
}
SCALED = ("training.lr_rampup_kimg", "training.ema_halflife_kimg")


def from_base(key: str) -> bool:
    """Whether dotted field `key` is about scale and data, and so comes from the base recipe."""
    section, name = key.split(".", 1)
    return section in FROM_BASE and (FROM_BASE[section] is None or name in FROM_BASE[section])


def flat(canonical: dict) -> dict[str, Any]:
    """{"training": {"lr": 1e-3}} → {"training.lr": 1e-3} (recipes are two levels deep)."""
    return {f"{section}.{name}": value for section, fields in canonical.items() for name, value in fields.items()}


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields of `after` whose values differ from `before`'s."""
    return {key: value for key, value in after.items() if before.get(key) != value}


@dataclass
class Rung:
    """One config of the ladder: its recipe, what it changed from the config before, what it held at the base."""

    config: str
    recipe: Any  # edmctl.recipe.Recipe
    changed: dict[str, Any]  # dotted field -> value applied (config A: where it differs from the base)
    held: list[str] = field(default_factory=list)  # ladder changes not applied (scale and data)
    run_id: int | None = None
    status: str = "planned"
    loss: float | None = None
    value: float | None = None  # FD/FID by the base's [eval] protocol
    error: str | None = None

    @property
    def title(self) -> str:
        return TITLES[self.config]

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "title": self.title, "changed": self.changed, "held": self.held,
                "run": f"run{self.run_id}" if self.run_id is not None else None, "status": self.status,
                "loss": self.loss, "value": self.value, "error": self.error, "recipe_hash": self.recipe.hash()}


@dataclass
class TrainingLadderResult:
    base: str
    family: str
    budget_kimg: float
    metric: str  # "FID" (inception) or "FD (pixels)", ...
    rungs: list[Rung]
    run_id: int | None = None
    plot: Path | None = None  # the PNG, an artifact of the ablate run

    @property
    def failed(self) -> list[Rung]:
        return [r for r in self.rungs if r.status != "done"]

    def as_dict(self) -> dict[str, Any]:
        return {"run": f"run{self.run_id}" if self.run_id is not None else None, "base": self.base,
                "family": self.family, "budget_kimg": self.budget_kimg, "metric": self.metric,
                "plot": str(self.plot) if self.plot else None, "rungs": [r.as_dict() for r in self.rungs]}


def ladder_files(family: str, ladder_dir: Path = LADDER_DIR) -> list[Path]:
    if family not in FAMILIES:
        raise UserError(f"--family must be one of {', '.join(FAMILIES)}, not {family!r}.")
    paths = [Path(ladder_dir) / f"{family}-{config}.toml" for config in CONFIGS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"the ladder recipe {missing[0]} is missing; the ladder needs {family}-A.toml ... {family}-F.toml there.")
    return paths


def ladder_steps(family: str, ladder_dir: Path = LADDER_DIR) -> tuple[list[dict[str, Any]], float]:
    """Each ladder config as flat canonical fields, and the ladder's `training.duration_kimg` (the same in all)."""
    from edmctl.recipe import load_recipe

    configs = [flat(load_recipe(path).canonical()) for path in ladder_files(family, ladder_dir)]
    durations = {c["training.duration_kimg"] for c in configs}
    if len(durations) != 1:
        raise UserError(f"the {family} ladder's recipes must share training.duration_kimg, they have {sorted(durations)}.")
    return configs, durations.pop()


def carried(delta: dict[str, Any], scale: float) -> tuple[dict[str, Any], list[str]]:
    """The ladder fields `delta` applies (kimg time constants × `scale`), and those it holds at the base."""
    applied = {key: float(f"{value * scale:.12g}") if key in SCALED else value
               for key, value in delta.items() if not from_base(key)}
    return applied, sorted(key for key in delta if from_base(key))


def load_base(base_recipe_path: str | Path, budget_kimg: float | None, overrides: list[str] | None):
    """The base recipe with `overrides` and the budget (`training.duration_kimg`) applied."""
    from edmctl.recipe import load_recipe
    from edmctl.recipe.load import check_flag_conflicts

    if budget_kimg is not None and not 0 < budget_kimg < math.inf:
        raise UserError(f"--budget-kimg must be a finite number > 0, got {budget_kimg}.")
    check_flag_conflicts({"training.duration_kimg": ("--budget-kimg", budget_kimg)}, list(overrides or []))
    budget = [f"training.duration_kimg={budget_kimg}"] if budget_kimg is not None else []
    return load_recipe(base_recipe_path, [*(overrides or []), *budget])


def ladder_rungs(base_recipe_path: str | Path, family: str = "vp", budget_kimg: float | None = None,
                 overrides: list[str] | None = None, ladder_dir: Path = LADDER_DIR) -> list[Rung]:
    """The six configs A..F as validated recipes (see the module docstring for which field comes from where)."""
    from edmctl.recipe import validate

    base = load_base(base_recipe_path, budget_kimg, overrides)
    configs, ladder_kimg = ladder_steps(family, ladder_dir)
    scale = base.training.duration_kimg / ladder_kimg
    current, rungs = flat(base.canonical()), []
    for config, before, after in zip(CONFIGS, [None, *configs], configs):
        applied, held = carried(after if before is None else changed(before, after), scale)
        applied = changed(current, applied)
        current = {**current, **applied}
        where = f"{family}-{config} laid over {base_recipe_path}"
        rungs.append(Rung(config, validate(nested(current), where), applied, held if before is not None else []))
    return rungs


def nested(fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tree: dict[str, dict[str, Any]] = {}
    for key, value in fields.items():
        section, name = key.split(".", 1)
        tree.setdefault(section, {})[name] = copy.deepcopy(value)
    return tree


def metric_name(recipe) -> str:
    """`FID` with the Inception detector (the paper's metric), else `FD (detector)`."""
    detector = recipe.eval.detector
    return "FID" if detector == "inception" else f"FD ({Path(detector).name})"


def queue_rungs(rungs: list[Rung], parent: int, home) -> None:
    """Record every config as a queued training run, child of the `ablate` run."""
    from edmctl.registry import queue_run

    for rung in rungs:
        rung.run_id = queue_run(kind="train", recipe=rung.recipe.canonical(), recipe_hash=rung.recipe.hash(),
                                argv=sys.argv, parent=parent, name=f"config {rung.config}", home=home,
                                extra={"config": rung.config, "changed": rung.changed, "held": rung.held})


def collect(rungs: list[Rung], outcomes, home) -> None:
    """Each rung's status, error, final loss and FD/FID from the registry."""
    from edmctl.registry import Registry

    by_id = {o.trial_id: o for o in outcomes}
    values = Registry(home).latest_values([r.run_id for r in rungs])
    for rung in rungs:
        outcome = by_id.get(rung.run_id)
        rung.status, rung.error = (outcome.status, outcome.error) if outcome else ("failed", "not run")
        rung.loss, rung.value = values[rung.run_id].get("loss"), values[rung.run_id].get("fid")


def training_ladder(base_recipe_path: str | Path, family: str = "vp", budget_kimg: float | None = None,
                    overrides: list[str] | None = None, home=None, jobs: int | None = None,
                    ladder_dir: Path = LADDER_DIR, on_rung: Callable[[Rung], None] = lambda rung: None,
                    ) -> TrainingLadderResult:
    """Train and evaluate configs A..F (each a `train+fid` trial) inside an `ablate` run whose children they
    are; record each config's FD/FID as a metric, the whole table in the run and a plot as an artifact.
    A failed config does not stop the others (its rung says why); `on_rung(rung)` after each config."""
    from edmctl.registry import open_run
    from edmctl.sweep.scheduler import run_trials

    rungs = ladder_rungs(base_recipe_path, family, budget_kimg, overrides, ladder_dir)
    base = load_base(base_recipe_path, budget_kimg, overrides)
    result = TrainingLadderResult(str(base_recipe_path), family, base.training.duration_kimg, metric_name(base), rungs)
    settings = {"trial": "train+fid", "model": None, "seeds": "", "metric": "fid", "direction": "min", "batch": base.eval.batch}
    with open_run(kind="ablate", name=f"training ladder {family}", recipe=base.canonical(), recipe_hash=base.hash(),
                  seeds=[base.training.seed], argv=sys.argv, home=home) as run:
        result.run_id = run.id
        queue_rungs(rungs, run.id, home)
        by_id = {r.run_id: r for r in rungs}

        def report(outcome) -> None:
            collect([by_id[outcome.trial_id]], [outcome], home)
            on_rung(by_id[outcome.trial_id])

        collect(rungs, run_trials(run.id, settings, home, jobs, report), home)
        for index, rung in enumerate(rungs):
            if rung.value is not None:
                run.log_metric("fid", rung.value, step=index)
        result.plot = plot_training_ladder(result, run.dir / "training_ladder.png")
        run.add_artifact(result.plot, kind="plot")
        run.update(ladder=result.as_dict())
    return result


def plot_training_ladder(result: TrainingLadderResult, path: Path) -> Path:
    """The metric of each config A..F, in ladder order (Table 2 as a line); failed configs left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    points = [(i, r.value) for i, r in enumerate(result.rungs) if r.value is not None]
    ax.plot([i for i, _ in points], [v for _, v in points], marker="o")
    for i, value in points:
        ax.annotate(f"{value:.3g}", (i, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xticks(range(len(result.rungs)), [f"{r.config}\n{textwrap.fill(r.title, 16)}" for r in result.rungs], fontsize=7)
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.family} training ladder at {result.budget_kimg:g} kimg ({Path(result.base).name})")
    fig.tight_layout()
    return save_figure(fig, path)
