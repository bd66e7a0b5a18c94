"""Queued runs (a sweep's trials): recorded before they start, started once, rerun after failing."""

import pytest

from edmctl.errors import UserError
from edmctl.registry import AlreadyStarted, Registry, open_run, queue_run, start_run


@pytest.fixture
def home(tmp_path, registry_backend):
    """A fresh home, the registry on each backend (SQLite in the home, or PostgreSQL)."""
    return tmp_path / "home"


def test_a_queued_run_keeps_its_recipe_parent_and_extra_when_started(home):
    with open_run(kind="sweep", home=home) as sweep:
        trial = queue_run(kind="sample", recipe={"sampler": {"steps": 4}}, recipe_hash="h", seeds=[0, 1],
                          parent=sweep.id, name="steps=4", extra={"axes": {"sampler.steps": 4}}, home=home)
        queued = Registry(home).get(trial)
        assert (queued.status, queued.started, queued.pid, queued.parent_id) == ("queued", None, None, sweep.id)
        assert not Registry(home).run_dir(trial).exists()
        with start_run(trial, home=home) as run:
            assert Registry(home).get(trial).status == "running" and run.dir.is_dir()
            run.log_metric("rms", 0.5)
    record = Registry(home).get(trial)
    assert (record.status, record.recipe, record.seeds, record.name) == ("done", {"sampler": {"steps": 4}}, [0, 1], "steps=4")
    assert record.extra["axes"] == {"sampler.steps": 4} and record.pid and record.ended >= record.started
    assert Registry(home).metrics(trial)["rms"].value == 0.5


def test_a_done_run_cannot_be_started_again_but_a_failed_one_can(home):
    trial = queue_run(kind="sample", home=home)
    with pytest.raises(RuntimeError), start_run(trial, home=home):
        raise RuntimeError("boom")
    assert Registry(home).get(trial).status == "failed"
    with start_run(trial, home=home):
        pass
    assert (Registry(home).get(trial).status, Registry(home).get(trial).error) == ("done", None)
    with pytest.raises(UserError, match="is done"), start_run(trial, home=home):
        pass


def test_a_user_error_marks_a_queued_run_failed_instead_of_deleting_it(home):
    trial = queue_run(kind="sample", home=home)
    with pytest.raises(UserError), start_run(trial, home=home):
        raise UserError("model spec is bad")
    record = Registry(home).get(trial)
    assert record.status == "failed" and "model spec is bad" in record.error


def test_an_interrupted_run_ends_interrupted(home):
    trial = queue_run(kind="sample", home=home)
    with pytest.raises(KeyboardInterrupt), start_run(trial, home=home):
        raise KeyboardInterrupt
    assert Registry(home).get(trial).status == "interrupted"


def _start(home: str, run_id: int, barrier, outcomes) -> None:
    barrier.wait(30)
    try:
        with start_run(run_id, home=home):
            outcomes.put("ran")
    except AlreadyStarted:
        outcomes.put("refused")


def test_processes_starting_one_queued_run_at_once_run_it_once(home):
    """The claim reads the status and marks the run running in one transaction that locks the row (FOR UPDATE on
    PostgreSQL, the database's write lock on SQLite): of six processes exactly one runs it."""
    import multiprocessing

    trial = queue_run(kind="sample", home=home)
    ctx = multiprocessing.get_context("fork")
    barrier, outcomes = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_start, args=(str(home), trial, barrier, outcomes)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(outcomes.get(timeout=5) for _ in procs) == ["ran"] + ["refused"] * 5
    assert Registry(home).get(trial).status == "done"
