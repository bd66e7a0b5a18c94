"""EDM Figure 2 for any model: the sampler ladder, each curve swept over the step count.

For a model family (Table 1 columns VP, VE, iDDPM) the curves are
  1. the original sampler: Euler with the family's time steps, σ(t) and s(t);
  2. + Heun and the EDM time steps (Eq. 5), σ(t) and s(t) still the family's;
  3. + σ(t) = t and s(t) = 1 (the EDM sampler);
  and every other built-in solver with the EDM time steps, σ(t) = t and s(t) = 1.
All curves share the family's σ range (Table 1), so they solve one ODE from the same initial noise. Every point
carries every measure: for analytic models the sampler errors of `edmctl.evaluate` (`rms_median`, `rms_p90`,
`flips`, `fd_exact`), for trained ones the Fréchet distance to the reference statistics (`fd`, `[eval]`). The
knee of each curve (the lowest NFE whose value is within 3% of its best, as the paper marks it) is taken on one
of them, `metric`; `paper_order_at` says at which NFEs the rungs are in the paper's order under each.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edmctl.design.sampler import nfe_of
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


RUNGS = ("original (Euler)", "+ Heun & EDM t_i", "+ σ(t)=t & s(t)=1")  # Figure 2's ladder, worst first


@dataclass
class Point:
    steps: int
    nfe: int
    values: dict[str, float]  # measure name -> value


@dataclass
class Curve:
    label: str
    sampler: dict  # [sampler] fields of the curve (steps excluded)
    metric: str  # the measure the best point and the knee are taken on
    points: list[Point] = field(default_factory=list)  # by NFE

    def value(self, point: Point) -> float:
        return point.values[self.metric]

    def best(self) -> Point | None:
        return min(self.points, key=self.value) if self.points else None

    def knee(self) -> Point | None:
        """The lowest-NFE point within `KNEE_TOLERANCE` of the best value."""
        best = self.best()
        if best is None:
            return None
        return min((p for p in self.points if self.value(p) <= self.value(best) * (1 + KNEE_TOLERANCE)),
                   key=lambda p: p.nfe)

    def near(self, nfe: int) -> Point | None:
        """The point at `nfe`, else at `nfe` + 1 (Euler's NFE beside Heun's 2N − 1), else None."""
        return next((p for n in (nfe, nfe + 1) for p in self.points if p.nfe == n), None)

    def as_dict(self) -> dict:
        best, knee = self.best(), self.knee()
        return {"label": self.label, "sampler": self.sampler, "metric": self.metric,
                "points": [{"steps": p.steps, "nfe": p.nfe, "value": self.value(p), **p.values} for p in self.points],
                "best": best and {"nfe": best.nfe, "value": self.value(best)},
                "knee": knee and {"nfe": knee.nfe, "value": self.value(knee)}}


@dataclass
class LadderResult:
    model: str
    family: str
    metric: str
    measures: list[str]
    nfe_max: int
    curves: list[Curve]

    def rungs(self) -> list[Curve]:
        """The curves of Figure 2's ladder (`RUNGS`), worst first."""
        return [c for c in self.curves if c.label in RUNGS]

    def as_dict(self) -> dict:
        return {"model": self.model, "family": self.family, "metric": self.metric, "measures": self.measures,
                "nfe_max": self.nfe_max, "curves": [c.as_dict() for c in self.curves],
                "paper_order_at": {m: paper_order_at(self, m) for m in self.measures}}


def in_paper_order(result: LadderResult, measure: str, nfe: int) -> bool | None:
    """Whether at `nfe` no rung is worse under `measure` than the rung before it (None: a rung has no point there)."""
    points = [curve.near(nfe) for curve in result.rungs()]
    if any(p is None for p in points):
        return None
    values = [p.values[measure] for p in points]
    return all(later <= earlier for earlier, later in zip(values, values[1:]))


def paper_order_at(result: LadderResult, measure: str) -> list[int]:
    """The NFEs of the last rung at which the rungs are in the paper's order under `measure` (original ≥
    + Heun ≥ + σ(t)=t; Euler compared at the same NFE or one more)."""
    return [p.nfe for p in result.rungs()[-1].points if in_paper_order(result, measure, p.nfe)]


def nfe_ranges(nfes: list[int], measured: list[int]) -> str:
    """`3–11, 23–127`: runs of consecutive entries of `measured` that are in `nfes`; `none` when empty."""
    runs, current = [], []
    for nfe in measured:
        if nfe in nfes:
            current.append(nfe)
        elif current:
            runs, current = runs + [current], []
    runs += [current] if current else []
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) or "none"


def paper_order_text(result: LadderResult, measure: str) -> str:
    """Where the paper's order holds under `measure`, as NFE ranges of the last rung."""
    return nfe_ranges(paper_order_at(result, measure), [p.nfe for p in result.rungs()[-1].points])


def ladder_samplers(family: str) -> list[tuple[str, dict]]:
    """(label, [sampler] fields) of each curve, identical configurations kept once (iDDPM's σ(t) is already t)."""
    from edmctl.design.discretizations import DEFAULT_SIGMA_RANGE
    from edmctl.design.solvers import SOLVERS, STOCHASTIC_SOLVERS

    if family not in FAMILIES:
        raise UserError(f"--family must be one of {', '.join(FAMILIES)}, not {family!r}.")
    own = FAMILIES[family]
    sigma_min, sigma_max = DEFAULT_SIGMA_RANGE[own["disc"]]
    steps = [
        (RUNGS[0], {"solver": "euler", **own}),
        (RUNGS[1], {"solver": "heun", **own, "disc": "edm"}),
        (RUNGS[2], {"solver": "heun", **EDM_STEPS}),
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


def ladder_measures(model_spec: str, seeds: list[int], batch: int, recipe=None, device="cpu") -> tuple[list[str], Callable]:
    """(measure names, function(sampler) -> {name: value}): the sampler errors of `edmctl.evaluate` against the
    converged reference for analytic models, else the Fréchet distance to the reference statistics (`fd`),
    sampled and measured on `device`."""
    from edmctl.evaluate import SAMPLER_ERRORS, reference_solution, sampler_error
    from edmctl.sampling import sample
    from edmctl.sweep.trials import cached_model, frechet_to_reference, is_analytic

    model = cached_model(model_spec)
    if is_analytic(model):
        if len(seeds) < 2:
            raise UserError(f"measuring a sampler needs at least 2 seeds (the Fréchet distance needs a covariance), got {len(seeds)}; pass e.g. --seeds 0-63.")
        return list(SAMPLER_ERRORS), lambda sampler: sampler_error(
            model, sample(model, sampler, seeds, batch).samples, reference_solution(model, sampler, seeds, batch))
    if recipe is None:
        raise UserError(f"model {model_spec!r} is not analytic: its FID needs the recipe it was trained with.")
    model.to(device)
    return ["fd"], lambda sampler: {"fd": frechet_to_reference(sample(model, sampler, seeds, batch, device=device).samples, recipe, device)}


def choose_metric(measures: list[str], metric: str | None) -> str:
    """`metric` if the model offers it, else a UserError naming those it does; None: the first."""
    if metric is None:
        return measures[0]
    if metric not in measures:
        raise UserError(f"--metric must be one of {', '.join(measures)} for this model, not {metric!r}.")
    return metric


def sampler_ladder(model_spec: str, family: str = "vp", nfe_max: int = 128, seeds=range(64), batch: int = 256,
                   recipe=None, progress: Callable[[str, int, dict], None] | None = None,
                   metric: str | None = None, device="cpu") -> LadderResult:
    """Every curve of the ladder over every step count up to `nfe_max`, each point with every measure, the knee
    on `metric` (default: `rms_median` for analytic models, `fd` for trained); `progress(label, nfe, values)`."""
    if nfe_max < 2:
        raise UserError(f"--nfe-max must be at least 2, got {nfe_max}.")
    measures, measure = ladder_measures(model_spec, list(seeds), batch, recipe, device)
    metric = choose_metric(measures, metric)
    curves = []
    for label, fields in ladder_samplers(family):
        curve = Curve(label, fields, metric)
        for steps, sampler in step_counts(fields, nfe_max):
            curve.points.append(Point(steps, nfe_of(sampler), measure(sampler)))
            if progress is not None:
                progress(label, curve.points[-1].nfe, curve.points[-1].values)
        curves.append(curve)
    return LadderResult(model_spec, family, metric, measures, nfe_max, curves)


def _measure_panel(ax, result: LadderResult, measure: str) -> None:
    """One measure against NFE (log x; log y except for `flips`), one line per curve, the 3% knee starred."""
    for curve in result.curves:
        shown = Curve(curve.label, curve.sampler, measure, curve.points)
        if not shown.points:
            continue
        line, = ax.plot([p.nfe for p in shown.points], [shown.value(p) for p in shown.points], marker=".", label=curve.label)
        knee = shown.knee()
        ax.plot([knee.nfe], [shown.value(knee)], marker="*", markersize=12, color=line.get_color())
    from matplotlib.ticker import ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_yscale("linear" if measure == "flips" else "log")
    ax.set(xlabel="NFE", ylabel=measure, title=f"{measure}{' (knee metric)' if measure == result.metric else ''}: "
           f"paper's order at NFE {paper_order_text(result, measure)}")


def plot_ladder(result: LadderResult, path: Path) -> Path:
    """Every measure against NFE, one panel each (EDM Figure 2's layout), ★ the lowest NFE within 3% of best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(2, len(result.measures))
    rows = -(-len(result.measures) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.2 * rows), squeeze=False)
    for ax, measure in zip(axes.flat, result.measures):
        _measure_panel(ax, result, measure)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{result.model}: {result.family} sampler ladder (★ lowest NFE within 3% of best)")
    fig.tight_layout()
    return save_figure(fig, path)
