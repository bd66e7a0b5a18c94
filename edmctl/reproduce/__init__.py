"""Reproduce a recorded run: re-execute its resolved recipe with the same seeds as a new `reproduce` run linked
to the original, and compare the outputs (`edmctl reproduce RUN`).

Each run kind that can be reproduced has one function in `REPRODUCERS`: it re-executes the work inside the new
run and returns the checks, each naming what was compared, the tolerance and whether it held.
"""

import sys
from dataclasses import dataclass, field

from edmctl.errors import UserError
from edmctl.reproduce.sample import reproduce_sample

REPRODUCERS = {"sample": reproduce_sample}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    tolerance: str = "bitwise"


@dataclass
class Verdict:
    original: str
    reproduction: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict:
        return {"original": self.original, "reproduction": self.reproduction, "match": self.ok,
                "checks": [vars(c) for c in self.checks]}


def reproduce(ref: str, registry=None) -> Verdict:
    """Re-run `ref` (run12, 12, latest) and compare; raises UserError for a run that cannot be reproduced."""
    from edmctl.recipe import validate
    from edmctl.registry import Registry, open_run

    registry = registry or Registry()
    record = registry.get(ref)
    if record.kind not in REPRODUCERS:
        raise UserError(f"{record.label} is a {record.kind} run; edmctl can reproduce {', '.join(REPRODUCERS)} runs.")
    if record.status != "done":
        raise UserError(f"{record.label} is {record.status}; only finished (done) runs can be reproduced.")
    recipe = validate(record.recipe, f"{record.label}'s recorded recipe")
    with open_run(kind="reproduce", recipe=record.recipe, recipe_hash=record.recipe_hash, seeds=record.seeds,
                  argv=sys.argv, parent=record.id, home=registry.home) as run:
        checks = [Check(**c) for c in REPRODUCERS[record.kind](record, recipe, run, registry)]
        verdict = Verdict(record.label, run.label, checks)
        run.log_metric("match", float(verdict.ok))
        run.update(reproduces=record.id, match=verdict.ok)
    return verdict
