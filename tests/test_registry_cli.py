"""`edmctl runs`, `runs reap`, `runs rm`, `show` and `compare`: output, `--json`, 80 columns and exit codes."""

import json

import pytest

from edmctl.cli.main import main
from edmctl.registry import Registry, open_run


@pytest.fixture
def home(tmp_path, monkeypatch, registry_backend):
    """Two sample runs in a fresh home, the registry on each backend (SQLite in the home, or PostgreSQL)."""
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path))
    for solver, fid in [("heun", 3.1), ("euler", 4.25)]:
        recipe = {"sampler": {"solver": solver, "steps": 18, "s_tmax": float("inf")}, "precond": {"kind": "edm"},
                  "network": {"arch": "ddpmpp", "model_channels": 128, "channel_mult": [2, 2, 2]}}
        with open_run(kind="sample", recipe=recipe, recipe_hash=solver * 8, seeds=range(64), name=solver) as run:
            run.log_metrics({"fid": fid, "imgs_per_s": 40.0})
            (run.dir / "samples.npz").write_bytes(solver.encode())
            run.add_artifact(run.dir / "samples.npz", kind="samples")
    return tmp_path


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_lists_newest_first_with_recipe_fields_and_metrics(home, capsys):
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0 and out.index("run2") < out.index("run1")
    assert "euler" in out and "fid=4.25" in out
    code, out, _ = run_cli(capsys, "runs", "--where", "sampler.solver=heun", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["run"] for r in rows] == ["run1"] and rows[0]["metrics"]["fid"] == 3.1


def test_runs_where_a_recipe_field_works_on_recipes_holding_inf(home, capsys):
    """The default s_tmax = inf is stored as standard JSON, so SQLite's json_extract can query every field."""
    for where, expected in (("sampler.steps=18", ["run2", "run1"]), ("sampler.s_tmax=inf", ["run2", "run1"]),
                            ("sampler.s_tmax=Infinity", ["run2", "run1"]), ("sampler.s_tmax=80", [])):
        code, out, _ = run_cli(capsys, "runs", "--where", where, "--json")
        assert code == 0 and [r["run"] for r in json.loads(out)] == expected, where
    assert "Infinity" not in Registry(home).get(1).recipe_json
    code, out, _ = run_cli(capsys, "show", "run1", "--json")
    assert json.loads(out)["recipe"]["sampler"]["s_tmax"] == "inf"  # --json output is standard JSON too


def test_show_prints_recipe_metrics_artifacts_and_environment(home, capsys):
    code, out, _ = run_cli(capsys, "show", "run1")
    assert code == 0
    sha = Registry(home).artifacts(1)[-1].sha256
    for text in ("sampler.solver", "heun", "fid", "samples", "torch_version", "0-63 (64 seeds)"):
        assert text in out
    table = out[out.index("\nartifacts"):out.index("\nenvironment")].splitlines()[2:]
    assert sha in "".join(line.split()[-1] for line in table)  # the last column, folded over lines
    assert "not on this node" not in out
    code, out, _ = run_cli(capsys, "show", "latest", "--json")
    doc = json.loads(out)
    assert (doc["run"], doc["metrics"]["fid"]["best"], doc["seeds"][-1]) == ("run2", 4.25, 63)
    (home / "run1" / "samples.npz").unlink()  # as on a node that does not mount the folder the run wrote to
    code, out, _ = run_cli(capsys, "show", "run1")
    assert code == 0 and "not on this node" in out
    code, out, _ = run_cli(capsys, "show", "run1", "--json")
    assert [a["on_this_node"] for a in json.loads(out)["artifacts"] if a["kind"] == "samples"] == [False]


def test_compare_shows_only_differences_and_fits_80_columns(home, capsys):
    code, out, _ = run_cli(capsys, "compare", "run1", "run2")
    assert code == 0 and "sampler.solver" in out and "sampler.steps" not in out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    code, out, _ = run_cli(capsys, "compare", "1", "2", "--all", "--json")
    doc = json.loads(out)
    assert doc["recipe"]["sampler.steps"] == [18, 18] and doc["metrics"]["fid"] == [3.1, 4.25]


def test_runs_rm_says_what_it_deletes(home, capsys):
    code, out, _ = run_cli(capsys, "runs", "rm", "run1", "--dry-run")
    assert code == 0 and "would delete run1" in out and "2 metric value(s)" in out and (home / "run1").exists()
    assert Registry(home).get(1)
    code, out, _ = run_cli(capsys, "runs", "rm", "run1", "--files")
    assert code == 0 and "run1" in out and str(home / "run1") in out and not (home / "run1").exists()
    assert [r.id for r in Registry(home).list()] == [2]


def test_runs_reap_reports_nothing_to_reap(home, capsys):
    code, out, _ = run_cli(capsys, "runs", "reap", "--json")
    assert code == 0 and json.loads(out) == {"reaped": [], "removed_leftovers": []}


@pytest.mark.parametrize("argv", [
    ("show", "run99"), ("show", "nonsense"), ("compare", "run1"), ("compare", "run1", "run99"),
    ("runs", "--status", "finished"), ("runs", "--where", "steps"), ("runs", "rm", "run99"), ("show",),
    ("runs", "--kind", "bogus"), ("show", str(2**63)), ("show", "run" + "9" * 400), ("show", "run-1"), ("show", "run\u0663"),
    ("show", "run1.0"), ("show", ""), ("runs", "rm", str(2**64)), ("compare", "1", str(2**63)),
])
def test_bad_input_exits_2_with_one_line(home, capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error:") and err.count("\n") == 1 and err.rstrip().endswith(".")


def _stored(home, url) -> tuple:
    """Everything the registry holds: the SQLite file's bytes, or every row of every table on a server."""
    if url is None:
        return (home / "registry.db").read_bytes(), (home / "registry.db-wal").stat().st_size
    from sqlalchemy import select

    from edmctl.registry.schema import TABLES

    with Registry(home).engine.connect() as conn:
        return tuple(tuple(conn.execute(select(table)).all()) for table in TABLES)


def test_read_commands_write_nothing(home, capsys, registry_backend):
    before = _stored(home, registry_backend)
    for argv in (("runs",), ("show", "1"), ("compare", "1", "2")):
        assert run_cli(capsys, *argv)[0] == 0
    assert _stored(home, registry_backend) == before
