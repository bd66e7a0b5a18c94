"""Reproduce a recorded run: re-execute its resolved recipe with the same seeds as a new `reproduce` run linked
to the original, and compare the outputs (`edmctl reproduce RUN`).

Each run kind that can be reproduced has one function in `REPRODUCERS`: it re-executes the work inside the new
run and returns the checks, each naming what was compared, the tolerance and whether it held. It also validates
the recorded recipe itself: a fid run of a folder records `{"fid": {...}}`, not a full recipe.

- `sample`: the same seeds re-sampled, samples compared bitwise (`edmctl.reproduce.sample`).
- `train`: the recipe re-trained with the same seed, final net/EMA weights bitwise, final loss (`.train`).
- `fid`: the run or folder re-measured, FID per seed block compared (`.fid`).
- `import`: the source pickle re-read (unchanged by sha256), recipe and every weight compared (`.imports`).

The work runs with the settings the original recorded that change how results round (`edmctl.threads`: the
intra-op thread count above all, oneDNN, deterministic and TF32 flags), whatever this process was started with;
what cannot be matched (a run that recorded none, another CPU kernel level) becomes a note of the verdict.
"""

import sys
from dataclasses import dataclass, field

from edmctl import threads
from edmctl.errors import UserError
from edmctl.reproduce.fid import reproduce_fid
from edmctl.reproduce.imports import reproduce_import
from edmctl.reproduce.sample import reproduce_sample
from edmctl.reproduce.train import reproduce_train

REPRODUCERS = {"sample": reproduce_sample, "train": reproduce_train, "fid": reproduce_fid, "import": reproduce_import}


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
    notes: list[str] = field(default_factory=list)  # settings that could not be matched: likely causes of a mismatch

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict:
        return {"original": self.original, "reproduction": self.reproduction, "match": self.ok,
                "checks": [vars(c) for c in self.checks], "notes": self.notes}


def reproduce(ref: str, registry=None) -> Verdict:
    """Re-run `ref` (run12, 12, latest: the newest run of a kind it can reproduce) and compare; raises UserError for a run that cannot be reproduced."""
    from edmctl.registry import Registry, open_run

    registry = registry or Registry()
    record = registry.get(ref, kind=tuple(REPRODUCERS))
    if record.kind not in REPRODUCERS:
        raise UserError(f"{record.label} is a {record.kind} run; edmctl can reproduce {', '.join(REPRODUCERS)} runs.")
    if record.status != "done":
        raise UserError(f"{record.label} is {record.status}; only finished (done) runs can be reproduced.")
    with threads.recorded(record.label, record.extra.get("numerics")) as notes, \
            open_run(kind="reproduce", recipe=record.recipe, recipe_hash=record.recipe_hash, seeds=record.seeds,
                     argv=sys.argv, parent=record.id, home=registry.home) as run:
        checks = [Check(**c) for c in REPRODUCERS[record.kind](record, run, registry)]
        verdict = Verdict(record.label, run.label, checks, notes)
        run.log_metric("match", float(verdict.ok))
        run.update(reproduces=record.id, match=verdict.ok)
    return verdict
