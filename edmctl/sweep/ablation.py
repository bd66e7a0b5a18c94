"""EDM Figure 2 for any model: the sampler ladder, each curve swept over the step count.

For a model family (Table 1 columns VP, VE, iDDPM) the curves are
  1. the original sampler: Euler with the family's time steps, σ(t) and s(t);
  2. + Heun and the EDM time steps (Eq. 5), σ(t) and s(t) still the family's;
  3. + σ(t) = t and s(t) = 1 (the EDM sampler);
  and every other built-in solver with the EDM time steps, σ(t) = t and s(t) = 1.
All curves share the family's σ range (Table 1), so they solve one ODE from the same initial noise. The
metric is the RMS distance to a converged reference solution for analytic models, the Fréchet distance to
the reference statistics (`[eval]`) for trained ones. Each curve is marked at the lowest NFE whose value is
within 3% of its best, as the paper marks it.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edmctl.errors import UserError
from edmctl.paths import save_figure

FAMILIES = {  # Table 1: time steps, σ(t), s(t) of the original samplers
    "vp": {"disc": "vp", "schedule": "vp", "scaling": "vp"},
    "ve": {"disc": "ve", "schedule": "ve", "scaling": "none"},
    "iddpm": {"disc": "iddpm", "schedule": "linear", "scaling": "none"},
}
EDM_STEPS = {"disc": "edm", "schedule": "linear", "scaling": "none"}
STEP_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512)
KNEE_TOLERANCE = 0.03  # "within 3% of the best"


@dataclass
class Curve:
    label: str
    sampler: dict  # [sampler] fields of the curve (steps excluded)
    points: list[tuple[int, int, float]] = field(default_factory=list)  # (steps, nfe, value), by NFE

    def best(self) -> tuple[int, int, float] | None:
        return min(self.points, key=lambda p: p[2]) if self.points else None

    def knee(self) -> tuple[int, int, float] | None:
        """The lowest-NFE point within `KNEE_TOLERANCE` of the best value."""
        best = self.best()
        if best is None:
            return None
        return min((p for p in self.points if p[2] <= best[2] * (1 + KNEE_TOLERANCE)), key=lambda p: p[1])

    def as_dict(self) -> dict:
        best, knee = self.best(), self.knee()
        return {"label": self.label, "sampler": self.sampler,
                "points": [{"steps": s, "nfe": n, "value": v} for s, n, v in self.points],
                "best": best and {"nfe": best[1], "value": best[2]}, "knee": knee and {"nfe": knee[1], "value": knee[2]}}


@dataclass
class LadderResult:
    model: str
    family: str
    metric: str
    nfe_max: int
    curves: list[Curve]

    def as_dict(self) -> dict:
        return {"model": self.model, "family": self.family, "metric": self.metric, "nfe_max": self.nfe_max,
                "curves": [c.as_dict() for c in self.curves]}


def ladder_samplers(family: str) -> list[tuple[str, dict]]:
    """(label, [sampler] fields) of each curve, identical configurations kept once (iDDPM's σ(t) is already t)."""
    from edmctl.design.discretizations import DEFAULT_SIGMA_RANGE
    from edmctl.design.solvers import SOLVERS, STOCHASTIC_SOLVERS

    if family not in FAMILIES:
        raise UserError(f"--family must be one of {', '.join(FAMILIES)}, not {family!r}.")
    own = FAMILIES[family]
    sigma_min, sigma_max = DEFAULT_SIGMA_RANGE[own["disc"]]
    steps = [
        ("original (Euler)", {"solver": "euler", **own}),
        ("+ Heun & EDM t_i", {"solver": "heun", **own, "disc": "edm"}),
        ("+ σ(t)=t & s(t)=1", {"solver": "heun", **EDM_STEPS}),
        *((f"{solver}, EDM t_i & σ(t)=t", {"solver": solver, **EDM_STEPS}) for solver in SOLVERS
          if solver != "heun" and solver not in STOCHASTIC_SOLVERS),  # an ODE ladder: per-seed error to the ODE solution
    ]
    curves, seen = [], []
    for label, fields in steps:
        fields = {**fields, "sigma_min": sigma_min, "sigma_max": sigma_max}
        if fields not in seen:
            seen.append(fields)
            curves.append((label, fields))
    return curves


class _CountingModel:
    """A denoiser that returns zeros: `run_sampler` on it counts a sampler's NFE without any real work."""

    sigma_min, sigma_max, label_dim, img_shape = 0.0, float("inf"), 0, (1, 1, 1)

    def round_sigma(self, sigma):
        import torch

        return torch.as_tensor(sigma, dtype=torch.float64)

    def __call__(self, x, sigma, class_labels=None):
        return x * 0


def nfe_of(sampler) -> int:
    """Denoiser calls of `sampler` per image."""
    import torch

    from edmctl.design.sampler import run_sampler

    return run_sampler(_CountingModel(), sampler, torch.ones(1, 1, 1, 1), None, lambda: torch.zeros(1, 1, 1, 1))[1]


def step_counts(fields: dict, nfe_max: int) -> list[tuple[int, object]]:
    """(steps, sampler) for every step count in `STEP_COUNTS` whose NFE is at most `nfe_max`."""
    from edmctl.recipe.schema import Sampler

    found = []
    for steps in STEP_COUNTS:
        sampler = Sampler(**fields, steps=steps)
        if nfe_of(sampler) > nfe_max:
            break
        found.append((steps, sampler))
    return found


def ladder_metric(model_spec: str, seeds: list[int], batch: int, recipe=None) -> tuple[str, Callable]:
    """(name, function(sampler) -> value): RMS to the reference for analytic models, else the Fréchet distance."""
    from edmctl.sampling import sample
    from edmctl.sweep.trials import cached_model, frechet_to_reference, is_analytic, rms_to_reference

    model = cached_model(model_spec)
    if is_analytic(model):
        return "rms", lambda sampler: rms_to_reference(sample(model, sampler, seeds, batch).samples, model_spec,
                                                       sampler, seeds, batch)
    if recipe is None:
        raise UserError(f"model {model_spec!r} is not analytic: its FID needs the recipe it was trained with.")
    return "fd", lambda sampler: frechet_to_reference(sample(model, sampler, seeds, batch).samples, recipe)


def sampler_ladder(model_spec: str, family: str = "vp", nfe_max: int = 128, seeds=range(64), batch: int = 256,
                   recipe=None, progress: Callable[[str, int, float], None] | None = None) -> LadderResult:
    """Every curve of the ladder over every step count up to `nfe_max`; `progress(label, nfe, value)` per point."""
    if nfe_max < 2:
        raise UserError(f"--nfe-max must be at least 2, got {nfe_max}.")
    metric, measure = ladder_metric(model_spec, list(seeds), batch, recipe)
    curves = []
    for label, fields in ladder_samplers(family):
        curve = Curve(label, fields)
        for steps, sampler in step_counts(fields, nfe_max):
            value = measure(sampler)
            curve.points.append((steps, nfe_of(sampler), value))
            if progress is not None:
                progress(label, curve.points[-1][1], value)
        curves.append(curve)
    return LadderResult(model_spec, family, metric, nfe_max, curves)


def plot_ladder(result: LadderResult, path: Path) -> Path:
    """Metric against NFE (both log), one line per curve, the 3% knee starred (EDM Figure 2's layout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for curve in result.curves:
        if not curve.points:
            continue
        line, = ax.plot([p[1] for p in curve.points], [p[2] for p in curve.points], marker=".", label=curve.label)
        knee = curve.knee()
        ax.plot([knee[1]], [knee[2]], marker="*", markersize=12, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NFE")
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.model}: {result.family} sampler ladder (★ lowest NFE within 3% of best)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
