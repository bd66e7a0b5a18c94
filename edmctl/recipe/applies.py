"""Which recipe fields shape a run: a sample run is its `[sampler]` (the model is named apart), and of the sampler
only the fields its solver takes. `edmctl compare` shows these, not defaults that change nothing."""

from typing import Any

from edmctl.design.solvers import CHURN_SOLVERS, SOLVERS
from edmctl.recipe.schema import SOLVER_FIELD_DEFAULTS, constants_of

SECTIONS_OF_KIND = {"sample": ("sampler",), "steps": ("sampler",)}  # the sections a run of that kind uses; others: all
SOLVER_FIELDS = frozenset({*SOLVER_FIELD_DEFAULTS, "alpha"})  # taken only by the solvers that name them
CHURN_WINDOW = frozenset({"s_tmin", "s_tmax"})  # where S_churn acts (EDM Algorithm 2), and where restart's γ acts


def field_applies(kind: str, recipe: dict[str, Any], dotted: str) -> bool:
    """Whether recipe field `dotted` (e.g. "sampler.eta") changes what a run of `kind` with `recipe` does."""
    section, _, name = dotted.partition(".")
    if section not in SECTIONS_OF_KIND.get(kind, (section,)):
        return False
    sampler = recipe.get("sampler")
    if section != "sampler" or not isinstance(sampler, dict) or sampler.get("solver") not in SOLVERS:
        return True
    solver = sampler["solver"]
    if name in SOLVER_FIELDS:
        return name in constants_of(SOLVERS[solver])
    if name == "s_churn":
        return solver in CHURN_SOLVERS
    if name in CHURN_WINDOW:  # restart churns its restart steps by restart_gamma inside the window, S_churn or not
        return solver == "restart" or (solver in CHURN_SOLVERS and bool(sampler.get("s_churn")))
    return True
