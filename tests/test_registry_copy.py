"""`edmctl runs copy`: runs move between a local SQLite registry and a team registry (PostgreSQL, or another
SQLite home) and back, with metrics, artifact records and lineage, ids renumbered, and copying twice adds nothing."""

import json
from types import SimpleNamespace

import pytest

from edmctl.cli.main import main
from edmctl.registry import Registry, compare, open_run
from edmctl.registry.copy import registry_at

RECIPE = {"sampler": {"solver": "heun", "steps": 18, "s_tmax": float("inf")}}


@pytest.fixture(params=["postgresql", "sqlite"])
def team(request, tmp_path):
    """Where the team registry is: a fresh PostgreSQL database (its URL), or another home folder (its path)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "team")


@pytest.fixture
def local(tmp_path, monkeypatch):
    """A local home (SQLite, `local.home`) holding a training run and a sweep of two sample trials that name it as
    their model; `local.ids`: train, sweep, trial_a, trial_b."""
    home = tmp_path / "laptop"
    monkeypatch.setenv("EDMCTL_HOME", str(home))
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    with open_run(kind="train", recipe=RECIPE, recipe_hash="t", name="net") as train:
        train.log_metrics({"loss": 0.5}, step=0)
        train.log_metrics({"loss": 0.25}, step=1)
        (train.dir / "network-snapshot.pt").write_bytes(b"weights")
        train.add_artifact(train.dir / "network-snapshot.pt", kind="checkpoint", step=1)
    with open_run(kind="sweep", name="steps") as sweep:
        trials = []
        for steps, fid in ((18, 3.5), (32, 2.75)):
            with open_run(kind="sample", recipe={**RECIPE, "sampler": {**RECIPE["sampler"], "steps": steps}},
                          parent=sweep.id, name=f"steps={steps}") as trial:
                trial.log_metric("fid", fid)
                trial.update(model=train.label)
                trials.append(trial.id)
    return SimpleNamespace(home=home, ids=(train.id, sweep.id, *trials))


def copy(capsys, *argv) -> tuple[int, dict | str]:
    code = main(["runs", "copy", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else captured.err


def team_registry(team: str) -> Registry:
    return registry_at(team, create=False)


def test_a_trial_goes_with_its_sweep_and_keeps_metrics_artifacts_and_parent(local, team, capsys):
    train, sweep, trial_a, trial_b = local.ids
    code, report = copy(capsys, f"run{trial_a}", "--to", team)
    assert code == 0 and list(report["copied"]) == [f"run{sweep}", f"run{trial_a}"] and report["already_there"] == {}
    there = team_registry(team)
    copied = {int(a[3:]): there.get(b) for a, b in report["copied"].items()}
    here = Registry()
    assert copied[trial_a].parent_id == copied[sweep].id and copied[sweep].parent_id is None
    for source_id, run in copied.items():
        original = here.get(source_id)
        assert (run.uid, run.recipe, run.name, run.status, run.created, run.host) == (
            original.uid, original.recipe, original.name, original.status, original.created, original.host)
        assert {k: (m.value, m.count) for k, m in there.metrics(run.id).items()} == {
            k: (m.value, m.count) for k, m in here.metrics(source_id).items()}
        assert [there.artifact_path(a) for a in there.artifacts(run.id)] == [
            here.artifact_path(a) for a in here.artifacts(source_id)]  # the same files, resolved from the team
    assert [r.id for r in there.list(where={"sampler.s_tmax": "inf", "sampler.steps": 18})] == [copied[trial_a].id]


def test_copying_twice_adds_nothing_and_a_later_copy_links_to_what_is_there(local, team, capsys):
    train, sweep, trial_a, trial_b = local.ids
    first = copy(capsys, f"run{trial_a}", "--to", team)[1]
    again = copy(capsys, f"run{trial_a}", "--to", team)[1]
    assert again["copied"] == {} and again["already_there"] == first["copied"] and again["metric_rows"] == 0
    whole = copy(capsys, f"run{sweep}", "--to", team)[1]  # the sweep with both trials: only trial b is new
    assert list(whole["copied"]) == [f"run{trial_b}"] and set(whole["already_there"]) == {f"run{sweep}", f"run{trial_a}"}
    there = team_registry(team)
    assert len(there.list(limit=None)) == 3
    assert there.get(whole["copied"][f"run{trial_b}"]).parent_id == there.get(first["copied"][f"run{sweep}"]).id
    assert [len(there.history(there.get(b).id, "fid")) for b in whole["copied"].values()] == [1]


def test_runs_come_back_from_the_team_registry_into_a_fresh_home(local, team, capsys, tmp_path, monkeypatch):
    train, sweep, trial_a, trial_b = local.ids
    to_team = copy(capsys, f"run{train}", f"run{sweep}", "--to", team)[1]
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "other-laptop"))
    back = copy(capsys, to_team["copied"][f"run{trial_b}"], "--from", team)[1]  # a trial: with its sweep
    assert len(back["copied"]) == 2 and back["already_there"] == {}
    here, original = Registry(), Registry(local.home)
    trial = here.get(back["copied"][to_team["copied"][f"run{trial_b}"]])
    assert trial.uid == original.get(trial_b).uid and here.get(trial.parent_id).uid == original.get(sweep).uid
    assert here.metrics(trial.id)["fid"].value == 2.75 and len(here.list(limit=None)) == 2
    assert compare(here, [trial.id, here.list(kind="sweep")[0].id])["runs"]  # compare works on the copies
    returned = copy(capsys, to_team["copied"][f"run{train}"], "--from", team)[1]  # training run: its snapshot too
    snapshot = next(a for a in here.artifacts(int(next(iter(returned["copied"].values()))[3:])) if a.kind == "checkpoint")
    assert here.artifact_path(snapshot).read_bytes() == b"weights"
    assert copy(capsys, to_team["copied"][f"run{trial_b}"], "--from", team)[1]["copied"] == {}  # idempotent back too


@pytest.mark.parametrize("argv, message", [
    (("run1",), "exactly one of --to URL"),
    (("run1", "--to", "x", "--from", "y"), "exactly one of --to URL"),
    (("run99", "--to", "{team}"), "run99 is not in the registry"),
    (("run1", "--to", "{here}"), "names the registry the runs are in"),
    (("run1", "--to", "mysql://u@h/db"), "the registry supports sqlite and postgresql"),
    (("run1", "--from", "{team}/nothing"), "run1 is not in the registry"),
])
def test_bad_copies_exit_2_with_one_line_and_write_nothing(local, tmp_path, capsys, argv, message):
    team = tmp_path / "team"
    argv = [a.format(team=team, here=local.home) for a in argv]
    code, err = copy(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (team / "registry.db").exists() or Registry(team).list() == []


def test_a_live_run_is_not_copied(local, team, capsys):
    with open_run(kind="train") as run:
        code, err = copy(capsys, f"run{run.id}", "--to", team)
    assert code == 2 and f"run{run.id} still running" in err


def test_a_snapshot_the_team_records_but_this_node_does_not_mount_is_a_one_line_error(local, team, capsys):
    """A node reading the team registry finds the record but not the file: the message says where it looked."""
    from edmctl.errors import UserError
    from edmctl.train.checkpoint import latest_snapshot, load_snapshot

    train = local.ids[0]
    report = copy(capsys, f"run{train}", "--to", team)[1]
    there = team_registry(team)
    copied = there.get(report["copied"][f"run{train}"])
    path, sha256 = latest_snapshot(there, copied)
    path.unlink()  # as seen from a node without the laptop's filesystem
    with pytest.raises(UserError, match="is not on this node") as info:
        load_snapshot(path, sha256)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_removing_a_copied_run_with_its_files_never_deletes_a_folder_it_did_not_write(local, team, capsys):
    """The copy's new id names a `run{id}` folder in the home that is not its own: on PostgreSQL (the laptop's
    home is the home here too) the local sweep's folder; its own files are where the trial ran."""
    trial_b = local.ids[3]
    copied = copy(capsys, f"run{trial_b}", "--to", team)[1]["copied"][f"run{trial_b}"]
    there = team_registry(team)
    stranger = there.run_dir(there.get(copied).id)
    stranger.mkdir(parents=True, exist_ok=True)
    (stranger / "keep.txt").write_text("someone else's")
    plan = there.removal_plan(copied, files=True)
    there.remove(plan)
    assert plan.folders == [] and (stranger / "keep.txt").exists() and Registry().run_dir(trial_b).is_dir()
    assert Registry().removal_plan(f"run{trial_b}", files=True).folders == [Registry().run_dir(trial_b)]  # its own


def test_a_parent_recorded_after_its_child_is_copied_first_and_the_link_holds(local, team, capsys):
    """Lineage, not id order: a run can name a later run as its parent (`Run.update(parent=...)`)."""
    with open_run(kind="sample") as child:
        pass
    with open_run(kind="train") as parent:
        pass
    child.update(parent=parent.id)
    report = copy(capsys, f"run{child.id}", "--to", team)[1]
    assert list(report["copied"]) == [f"run{parent.id}", f"run{child.id}"]
    there = team_registry(team)
    assert there.get(report["copied"][f"run{child.id}"]).parent_id == there.get(report["copied"][f"run{parent.id}"]).id
