"""Tables never cut a number: at 80 and at 40 columns every number of `runs`, `compare`, `sweep show` and the
ablation tables is printed in full, or its column is named as left out; `compare` of sample runs shows the model
and only the fields that apply."""

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from edmctl.cli.ablate import render_ladder, render_training_ladder
from edmctl.cli.common import out
from edmctl.cli.main import main
from edmctl.cli.runs import fmt
from edmctl.cli.tables import fit, number_width
from edmctl.registry import open_run
from edmctl.sweep.ablation import Curve, LadderResult, Point

SMALL = [1.5707963267948966e-05, 0.000712345678901, 123456.789012, 2.718281828459045]
MODEL = "ideal:digits?std=0.2&n=50"


@pytest.fixture(params=[80, 40])
def columns(request, monkeypatch):
    """The terminal's width, as a user's COLUMNS sets it."""
    monkeypatch.setattr(out.console, "width", request.param)
    return request.param


def left_out(text: str) -> list[str]:
    found = re.search(r"left out to fit \d+ columns: (.*?); a wider terminal", " ".join(text.split()))
    return found.group(1).split(", ") if found else []


def assert_whole(text: str, numbers: list[str]) -> None:
    """Every number appears in full on one line, nothing is ellipsized, and no line is wider than the terminal."""
    assert "…" not in text
    for number in numbers:
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", text), (number, text)
    assert max(map(len, text.splitlines())) <= out.console.width


def test_number_width_finds_numbers_inside_words():
    assert number_width("fid=1.5708e-05 flips=0") == len("1.5708e-05")
    assert number_width("(0.000712), inf and run12") == len("0.000712")
    assert number_width("heun, edm") == 0


def test_fit_narrows_text_then_leaves_out_columns_from_the_right_never_a_number():
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for name in ("what", "a", "b", "c"):
        table.add_column(name)
    table.add_row("a long description that can wrap over several lines", "1.5707963e-05", "0.000712345", "3.25")
    console = Console(width=40, file=None)
    assert fit(table, 40, console) == ["b", "c"]  # 8 + 13 + 11 cells and the borders and padding do not fit 40
    assert [c.header for c in table.columns] == ["what", "a"]
    with console.capture() as captured:
        console.print(table)
    assert_whole_in(captured.get(), ["1.5707963e-05"], 40)


def assert_whole_in(text: str, numbers: list[str], width: int) -> None:
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    assert all(number in text for number in numbers), text


def test_compare_prints_every_number_whole(home, columns, capsys):
    ids = []
    for solver, value in (("heun", SMALL[0]), ("euler", SMALL[1]), ("heun", SMALL[2])):
        with open_run(kind="sample", recipe={"sampler": {"solver": solver, "steps": 18, "s_churn": 0.0}}, home=home) as run:
            run.update(model=MODEL)
            run.log_metrics({"fd_exact": value, "images_per_s": SMALL[3]})
            ids.append(run.id)
    assert main(["compare", *map(str, ids)]) == 0
    text = capsys.readouterr().out
    dropped = left_out(text)
    shown = [value for value, label in zip(SMALL, [f"run{i}" for i in ids]) if label not in dropped]
    assert_whole(text, [fmt(v) for v in shown] + [fmt(SMALL[3])])
    assert len(shown) >= 2 and ("model" in text)


def test_a_users_columns_sets_the_width(home):
    """COLUMNS, as a shell sets it, reaches the table (here through a pipe, where no terminal has a width)."""
    for value in SMALL[:2]:
        with open_run(kind="sample", recipe={"sampler": {"solver": "heun"}}, home=home) as run:
            run.log_metrics({"fd_exact": value, "images_per_s": SMALL[3]})
    printed = subprocess.run([sys.executable, "-m", "edmctl", "compare", "1", "2"], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "40"}, check=True).stdout
    assert max(map(len, printed.splitlines())) <= 40 and "…" not in printed
    assert all(fmt(v) in printed for v in SMALL[:2]), printed


def test_runs_lists_every_number_whole(home, columns, capsys):
    for value in SMALL:
        with open_run(kind="sample", recipe={"sampler": {"solver": "heun", "steps": 18}}, home=home) as run:
            run.log_metrics({"fid": value})
    assert main(["runs"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and all(f"fid={fmt(v)}" in text for v in SMALL)


def test_sweep_show_prints_every_number_whole(tmp_path, home, columns, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'model = "{MODEL}"\nseeds = "0-3"\n[grid]\n"sampler.steps" = [2, 3]\n"sampler.solver" = ["euler"]\n')
    assert main(["sweep", str(sweep), "--json"]) == 0
    values = [trial["value"] for trial in json.loads(capsys.readouterr().out)["trials"]]
    assert main(["sweep", "show", str(sweep)]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and all(f"{v:.4g}" in text for v in values)


def ladder() -> LadderResult:
    measures = ["rms_median", "rms_p90", "flips", "fd_exact"]
    curves = [Curve(label, {}, "rms_median", [Point(steps, 2 * steps - 1, dict(zip(measures, SMALL)))
                                              for steps in (2, 4, 8)])
              for label in ("original (Euler)", "+ Heun & EDM t_i", "+ σ(t)=t & s(t)=1", "dpmpp-2m, EDM t_i & σ(t)=t")]
    return LadderResult("ideal:digits?std=0.2&n=50", "vp", "rms_median", measures, 16, curves)


def test_the_sampler_ladder_table_prints_every_number_whole(columns, capsys):
    render_ladder(ladder())
    text = capsys.readouterr().out
    shown = [f"{v:.3g}" for v, m in zip(SMALL, ladder().measures) if m not in left_out(text)]
    assert_whole(text.split("paper's order")[0], shown)
    assert shown and "knee NFE" in text  # at 40 columns the boxed table keeps the curve, the knee and one measure


def test_the_training_ladder_table_prints_every_number_whole(columns, capsys):
    rungs = [SimpleNamespace(config=c, title=f"config {c} of Table 2", changed={"training.lr": 0.001}, held=[],
                             loss=SMALL[i % 4], value=SMALL[(i + 1) % 4], status="done", error=None, run_id=i + 2)
             for i, c in enumerate("BCDEF")]
    result = SimpleNamespace(family="vp", budget_kimg=0.5, base="recipes/digits.toml", metric="fd", rungs=rungs)
    render_training_ladder(result)
    text = capsys.readouterr().out
    numbers = {"loss": [f"{r.loss:.4g}" for r in rungs], "fd": [f"{r.value:.4g}" for r in rungs]}
    assert_whole(text, [n for column, values in numbers.items() if column not in left_out(text) for n in values])
    assert "loss" not in left_out(text)


def test_compare_of_sample_runs_shows_the_model_and_only_fields_that_apply(home, capsys):
    from edmctl.recipe import load_recipe

    ids = []
    for model, sets in ((MODEL, ['sampler.solver="heun"', "training.batch=64"]),
                        ("ideal:digits", ['sampler.solver="euler-ancestral"', "training.batch=32"])):
        recipe = load_recipe(overrides=sets)
        with open_run(kind="sample", recipe=recipe.canonical(), recipe_hash=recipe.hash(), home=home) as run:
            run.update(model=model)
            ids.append(run.label)
    assert main(["compare", *ids, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == [MODEL, "ideal:digits"]
    assert doc["recipe"] == {"sampler.solver": ["heun", "euler-ancestral"], "sampler.alpha": [1.0, None],
                             "sampler.eta": [None, 1.0], "sampler.s_churn": [0.0, None]}  # not training.batch
    assert main(["compare", *ids, "--all", "--json"]) == 0
    fields = json.loads(capsys.readouterr().out)["recipe"]
    assert all(name.startswith("sampler.") for name in fields) and "sampler.s_tmin" not in fields  # no churn: no window
    assert main(["compare", *ids]) == 0
    assert re.search(r"model +ideal:digits\?std=0\.2&n=50 +ideal:digits", capsys.readouterr().out)
