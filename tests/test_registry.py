"""The registry records every run with how it ended, and answers queries without scanning history."""

import json
import os
import socket
import sys
import time

import pytest

from edmctl.errors import UserError
from edmctl.registry import Registry, compare, content_hash, open_run, run as run_module
from edmctl.registry.environment import process_namespace
from edmctl.registry.schema import RunRecord

RECIPE = {"sampler": {"solver": "heun", "steps": 18, "s_tmax": float("inf")}, "precond": {"kind": "edm"},
          "data": {"source": "digits"}}  # s_tmax = inf, the default: a real recipe holds a non-finite float
HERE = process_namespace()
OTHER_NAMESPACE = "00000000-0000-0000-0000-000000000000/4026531836"  # another container on the same host


@pytest.fixture
def home(tmp_path, registry_backend):
    """A fresh home, its registry on each backend (`registry_backend`: SQLite in the home, or PostgreSQL)."""
    return tmp_path / "home"


def test_a_run_records_recipe_seeds_environment_and_ends_done(home):
    with open_run(kind="sample", recipe=RECIPE, recipe_hash="h1", seeds=[0, 1, 2], argv=["edmctl", "sample"],
                  name="first", home=home) as run:
        assert run.dir == home / f"run{run.id}" and run.dir.is_dir()
        assert Registry(home).get(run.id).status == "running"
        run.update(nfe=35, world_size=1, devices=["cpu"])
    record = Registry(home).get(f"run{run.id}")
    assert (record.status, record.recipe, record.recipe_hash, record.seeds, record.argv, record.name) == (
        "done", RECIPE, "h1", [0, 1, 2], ["edmctl", "sample"], "first")
    assert record.extra["nfe"] == 35 and record.devices == ["cpu"] and record.world_size == 1
    assert record.host == socket.gethostname() and record.python_version and record.torch_version
    assert record.packages_hash and record.ended >= record.started
    packages = [a for a in Registry(home).artifacts(run.id) if a.path.endswith("packages.txt")]
    assert packages and (home / packages[0].path).read_text().count("==") > 10


def test_failing_body_ends_failed_with_the_error(home):
    with pytest.raises(ZeroDivisionError), open_run(kind="train", home=home) as run:
        1 / 0
    record = Registry(home).get(run.id)
    assert record.status == "failed" and "ZeroDivisionError" in record.error


def test_keyboard_interrupt_ends_interrupted(home):
    with pytest.raises(KeyboardInterrupt), open_run(kind="train", home=home) as run:
        raise KeyboardInterrupt
    assert Registry(home).get(run.id).status == "interrupted"


def test_sigterm_ends_interrupted_and_the_handler_is_restored(home):
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), open_run(kind="train", home=home) as run:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
    assert Registry(home).get(run.id).status == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is before


def test_user_error_in_the_body_records_nothing(home):
    with open_run(kind="train", home=home) as kept:
        pass
    with pytest.raises(UserError, match="bad steps"), open_run(kind="sample", home=home) as run:
        run.log_metric("fid", 3.0)
        (run.dir / "half.png").write_bytes(b"x")
        raise UserError("bad steps")
    reg = Registry(home)
    assert [r.id for r in reg.list()] == [kept.id]
    assert not run.dir.exists() and reg.metrics(run.id) == {} and reg.artifacts(run.id) == []


def test_metrics_keep_history_and_latest_min_max_best(home):
    with open_run(kind="train", home=home) as run:
        for step, (loss, rate) in enumerate([(0.5, 10.0), (0.2, 30.0), (0.3, 20.0)]):
            run.log_metrics({"loss": loss, "imgs_per_s": rate}, step=step)
        run.log_metric("fid", float("nan"))
    metrics = Registry(home).metrics(run.id)
    assert (metrics["loss"].value, metrics["loss"].best, metrics["loss"].count, metrics["loss"].step) == (0.3, 0.2, 3, 2)
    assert metrics["imgs_per_s"].best == 30.0  # a rate is better higher
    assert metrics["fid"].value is None  # NaN is stored as NULL
    assert [p.value for p in Registry(home).history(run.id, "loss")] == [0.5, 0.2, 0.3]


def test_artifacts_store_sha256_bytes_and_a_path_every_node_resolves(home, tmp_path):
    with open_run(kind="sample", home=home) as run:
        folder = run.dir / "samples"
        folder.mkdir()
        (folder / "000000.png").write_bytes(b"abc")
        (folder / "000001.png").write_bytes(b"defg")
        run.add_artifact(folder, kind="samples")
        outside = tmp_path / "stats.npz"
        outside.write_bytes(b"12345")
        run.add_artifact(outside, kind="stats", step=7)
    arts = {a.kind: a for a in Registry(home).artifacts(run.id)}
    relative = Registry(home).relative_to is not None  # SQLite in the home; a server records absolute paths
    assert arts["samples"].path == (f"run{run.id}/samples" if relative else str(folder.resolve()))
    assert arts["samples"].bytes == 7 and Registry(home).artifact_path(arts["samples"]) == folder
    assert arts["samples"].sha256 == content_hash(folder)[0]
    assert arts["stats"].path == str(outside.resolve()) and arts["stats"].step == 7
    (folder / "000001.png").write_bytes(b"changed")
    assert content_hash(folder)[0] != arts["samples"].sha256


def test_get_accepts_run12_12_latest_and_rejects_unknown(home):
    with open_run(kind="train", home=home) as first, open_run(kind="sample", parent=f"run{first.id}", home=home) as second:
        pass
    reg = Registry(home)
    assert reg.get(f"run{first.id}").id == reg.get(str(first.id)).id == first.id
    assert reg.get("latest").id == second.id and reg.get(second.id).parent_id == first.id
    for bad in ("run99", "nonsense"):
        with pytest.raises(UserError) as info:
            reg.get(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="run99"):
        open_run(kind="sample", parent="run99", home=home).__enter__()


def test_latest_means_the_newest_run_of_the_kind_asked_for(home):
    with open_run(kind="sweep", home=home) as sweep:
        with open_run(kind="sample", parent=sweep.id, home=home) as trial:
            pass
    reg = Registry(home)
    assert reg.get("latest").id == trial.id  # any kind: the trial, run after the sweep opened
    assert reg.get("latest", kind="sweep").id == sweep.id
    assert reg.get("latest", kind=("train", "sweep")).id == sweep.id
    with pytest.raises(UserError, match="no train or import runs"):
        reg.get("latest", kind=("train", "import"))
    assert reg.get(f"run{trial.id}", kind="sweep").id == trial.id  # a named run is that run: its kind is checked by the caller


def test_latest_standalone_skips_trials_of_sweeps_and_ablations_and_their_resumes(home):
    with open_run(kind="train", home=home) as standalone:
        pass
    with open_run(kind="ablate", home=home) as ablation:
        with open_run(kind="train", parent=ablation.id, name="config F", home=home) as config:
            pass
    with open_run(kind="train", parent=config.id, home=home):  # a resume of the ablation's config
        pass
    with open_run(kind="sweep", home=home) as sweep, open_run(kind="train", parent=sweep.id, home=home):
        pass
    with pytest.raises(ZeroDivisionError), open_run(kind="train", home=home):
        1 / 0  # failed: not a model to fall back on
    reg = Registry(home)
    assert reg.latest(kind="train", status="done").parent_id == sweep.id  # what `sample` used to pick
    assert reg.latest_standalone(("train", "import")).id == standalone.id
    with open_run(kind="train", parent=standalone.id, home=home) as resumed:
        pass
    assert reg.latest_standalone(("train", "import")).id == resumed.id  # resuming a standalone run stays standalone
    assert reg.latest_standalone(("import",)) is None


def test_reading_an_absent_registry_creates_nothing(home, registry_backend):
    reg = Registry(home)
    assert reg.list() == [] and reg.latest() is None and reg.reap() == []
    with pytest.raises(UserError, match="no runs"):
        reg.get("latest")
    assert not home.exists()


def test_where_compares_a_list_or_table_field_as_json_not_a_database_error(home):
    for mult in ([1, 2], [1, 2, 2]):
        with open_run(kind="train", recipe={"network": {"channel_mult": mult}}, home=home) as run:
            run.update(levels={"a": mult})
    reg = Registry(home)
    assert [r.recipe["network"]["channel_mult"] for r in reg.list(where={"network.channel_mult": "[1, 2]"})] == [[1, 2]]
    assert len(reg.list(where={"extra.levels": '{"a": [1,2,2]}'})) == 1
    assert reg.list(where={"network.channel_mult": "[2]"}) == []


def test_list_filters_by_kind_status_where_and_limit(home):
    for steps, solver in [(18, "heun"), (32, "euler"), (18, "euler")]:
        recipe = {"sampler": {"solver": solver, "steps": steps}}
        with open_run(kind="sample", recipe=recipe, home=home) as run:
            run.update(nfe=2 * steps - 1)
    with open_run(kind="train", home=home):
        pass
    reg = Registry(home)
    assert [r.kind for r in reg.list()] == ["train", "sample", "sample", "sample"]
    assert len(reg.list(kind="sample", limit=2)) == 2
    assert [r.recipe["sampler"]["solver"] for r in reg.list(where={"sampler.steps": "18"})] == ["euler", "heun"]
    assert len(reg.list(where={"sampler.solver": "euler", "sampler.steps": 32})) == 1
    assert len(reg.list(where={"extra.nfe": "35"})) == 2
    assert len(reg.list(kind="sample", status="done", where={"kind": "sample"})) == 3
    assert reg.latest(kind="train").kind == "train" and reg.latest(kind="fid") is None
    with open_run(kind="sample", name="18", home=home) as named:
        pass
    assert [r.id for r in reg.list(where={"name": "18"})] == [named.id]  # a text column: 18 is the text "18"
    assert len(reg.list(where={"pid": str(os.getpid()), "parent_id": "null", "kind": "sample"})) == 4
    for column, value in (("world_size", "one"), ("git_dirty", "1"), ("created", "yesterday")):
        with pytest.raises(UserError, match=f"--where {column} takes a"):
            reg.list(where={column: value})
    with pytest.raises(UserError, match="--status"):
        reg.list(status="finished")
    with pytest.raises(UserError, match="--where"):
        reg.list(where={"a;b": "1"})


def _insert_running(reg: Registry, host: str, pid: int, heartbeat: float, process_ns: str | None = HERE) -> int:
    """A running run as another process would record it (`process_ns`: its boot id and PID namespace)."""
    from edmctl.registry import db, writes

    columns = {"kind": "train", "status": "running", "created": heartbeat, "started": heartbeat,
               "heartbeat": heartbeat, "host": host, "pid": pid, "process_ns": process_ns}
    return db.write(reg.engine, lambda conn: writes.insert_run(conn, columns))


def test_reap_marks_runs_of_gone_processes_and_silent_hosts_interrupted(home):
    import subprocess

    with open_run(kind="train", home=home):
        pass
    reg = Registry(home)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead_here = _insert_running(reg, socket.gethostname(), gone.pid, time.time())
    alive_here = _insert_running(reg, socket.gethostname(), __import__("os").getpid(), time.time() - 3600)
    silent = _insert_running(reg, "elsewhere", 1, time.time() - 3600)
    beating = _insert_running(reg, "elsewhere", 1, time.time())
    assert sorted(reg.reap()) == sorted([dead_here, silent])
    status = {r.id: r.status for r in reg.list()}
    assert (status[dead_here], status[silent], status[alive_here], status[beating]) == (
        "interrupted", "interrupted", "running", "running")
    assert "reaped" in reg.get(dead_here).error


def test_a_run_beating_in_another_pid_namespace_is_alive_whatever_its_pid_says(home):
    """Containers sharing a hostname and the home: the PID means nothing here, the fresh heartbeat decides."""
    import subprocess

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    reg = Registry(home, create=True)
    beating = _insert_running(reg, socket.gethostname(), gone.pid, time.time(), process_ns=OTHER_NAMESPACE)
    silent = _insert_running(reg, socket.gethostname(), os.getpid(), time.time() - 3600, process_ns=OTHER_NAMESPACE)
    old_row = _insert_running(reg, socket.gethostname(), gone.pid, time.time(), process_ns=None)  # before v3
    (home / f"run{beating}").mkdir(parents=True)
    assert reg.reap() == [silent]
    assert {r.id: r.status for r in reg.list()} == {beating: "running", silent: "interrupted", old_row: "running"}
    for files in (False, True):
        with pytest.raises(UserError, match="still running"):
            reg.removal_plan(beating, files=files)
    assert (home / f"run{beating}").is_dir() and reg.get(beating).status == "running"


def test_a_run_records_the_namespace_its_pid_belongs_to(home):
    with open_run(kind="train", home=home) as run:
        pass
    record = Registry(home).get(run.id)
    assert record.process_ns == HERE and HERE.count("/") == 1 and record.pid == os.getpid()


def test_heartbeat_advances_while_the_run_is_open(home, monkeypatch):
    monkeypatch.setattr(run_module, "HEARTBEAT_S", 0.05)
    with open_run(kind="train", home=home) as run:
        first = Registry(home).get(run.id).heartbeat
        time.sleep(0.4)
        assert Registry(home).get(run.id).heartbeat > first


def test_remove_deletes_rows_and_with_files_the_folder(home):
    with open_run(kind="train", home=home) as parent:
        parent.log_metrics({"loss": 1.0, "fid": 2.0})
    with open_run(kind="sample", parent=parent.id, home=home) as child:
        pass
    reg = Registry(home)
    plan = reg.removal_plan(parent.id, files=True)
    assert (plan.run_ids, plan.metric_rows, plan.orphaned_children, plan.folders) == (
        [parent.id], 2, [child.id], [home / f"run{parent.id}"])
    reg.remove(plan)
    assert not (home / f"run{parent.id}").exists() and reg.get(child.id).parent_id is None
    assert reg.metrics(parent.id) == {}
    with pytest.raises(UserError):
        reg.get(parent.id)
    assert Registry(home).removal_plan(child.id).folders == []  # without files the folder stays


def test_compare_lists_differing_recipe_fields_metrics_and_environment(home):
    a = {**RECIPE, "sampler": {"solver": "heun", "steps": 18}}
    b = {**RECIPE, "sampler": {"solver": "euler", "steps": 18}}
    ids = []
    for recipe, fid in [(a, 3.1), (b, 4.2)]:
        with open_run(kind="sample", recipe=recipe, home=home) as run:
            run.log_metric("fid", fid)
            ids.append(run.id)
    reg = Registry(home)
    reg.get(ids[1])  # same environment: no differences
    table = compare(reg, [f"run{i}" for i in ids])
    assert table["recipe"] == {"sampler.solver": ["heun", "euler"]}
    assert table["metrics"] == {"fid": [3.1, 4.2]} and table["environment"] == {}
    full = compare(reg, ids, all_fields=True)
    assert full["recipe"]["sampler.steps"] == [18, 18] and "torch_version" in full["environment"]


def test_run_record_as_dict_has_what_reproduce_needs(home):
    with open_run(kind="sample", recipe=RECIPE, recipe_hash="h", seeds=[3, 4], argv=["a"], home=home) as run:
        pass
    doc = Registry(home).get(run.id).as_dict()
    assert {"recipe", "recipe_hash", "seeds", "argv", "parent_id", "kind", "run"} <= set(doc)
    assert json.loads(json.dumps(doc))["seeds"] == [3, 4]
    with open_run(kind="reproduce", recipe=doc["recipe"], recipe_hash=doc["recipe_hash"], seeds=doc["seeds"],
                  parent=doc["run"], home=home) as again:
        pass
    assert Registry(home).get(again.id).parent_id == run.id


def test_db_url_override(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_DB_URL", f"sqlite:///{tmp_path / 'team.db'}")
    with open_run(kind="train", home=tmp_path / "home") as run:
        pass
    assert (tmp_path / "team.db").exists() and not (tmp_path / "home" / "registry.db").exists()
    assert Registry(tmp_path / "home").get(run.id).kind == "train"
    assert isinstance(Registry(tmp_path / "home").list()[0], RunRecord)


def test_a_live_running_run_cannot_be_removed(home):
    import os

    with open_run(kind="train", home=home):
        pass
    reg = Registry(home)
    live = _insert_running(reg, socket.gethostname(), os.getpid(), time.time())
    with pytest.raises(UserError, match="still running"):
        reg.removal_plan(live)


@pytest.mark.parametrize("url, message", [("mysql://user@host/edmctl", "is mysql; the registry supports sqlite and postgresql"),
                                          ("not a url", "is not a SQLAlchemy URL")])
def test_an_unsupported_db_url_is_a_clear_error_before_anything_is_written(tmp_path, monkeypatch, url, message):
    monkeypatch.setenv("EDMCTL_DB_URL", url)
    with pytest.raises(UserError, match=message):
        with open_run(kind="train", home=tmp_path / "home"):
            pass
    assert not (tmp_path / "home").exists()
