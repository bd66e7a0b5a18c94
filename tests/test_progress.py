"""Progress where no terminal shows a bar (CI logs): plain lines every ~10 s. Ctrl-C: exit 130 saying what was
kept and the exact command that resumes. Progress numbers to 4 significant digits."""

import contextlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import edmctl.cli.common as common
from edmctl.cli.ablate import print_rung
from edmctl.cli.main import main
from edmctl.registry import Registry

MODEL = "ideal:digits?std=0.2&n=50"
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16", "training.tick_kimg=0.032",
        "training.snapshot_kimg=0.064", "training.duration_kimg=0.128"]


def test_plain_progress_prints_a_line_every_10_seconds_and_a_last_one(monkeypatch, capsys):
    clock = [100.0]
    monkeypatch.setattr(common, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    progress = common.PlainProgress("training", 5.0, "{task.completed:.1f}/{task.total:g} kimg", ["loss {task.fields[loss]}"],
                                    lambda speed: f"{speed * 1000:.0f} img/s", {"loss": "-"})
    for second in range(1, 26):
        clock[0] = 100.0 + second
        progress.update(completed=0.1 * second, loss=f"{1 / second:.4f}")
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["training:  1.0/5 kimg  (20%)  loss 0.1000  100 img/s  ETA 0:00:40",  # 10 s, 20 s, the end
                     "training:  2.0/5 kimg  (40%)  loss 0.0500  100 img/s  ETA 0:00:30",
                     "training:  2.5/5 kimg  (50%)  loss 0.0400  100 img/s  ETA 0:00:25"]


def test_a_short_job_prints_no_progress_lines(monkeypatch, capsys):
    progress = common.PlainProgress("sampling", 4, common.PLAIN_COUNT, [], common.images_per_s, {})
    progress.update(completed=4)
    progress.close()
    assert capsys.readouterr().err == ""


def test_sampling_outside_a_terminal_prints_plain_lines(home, monkeypatch, capsys):
    monkeypatch.setattr(common, "PLAIN_EVERY_S", 0.0)  # a line at every update
    assert main(["sample", "--model", MODEL, "--seeds", "0-7", "--batch", "4", "--steps", "2"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"sampling:  4/8  \(50%\)(  [\d.]+ img/s  ETA 0:00:\d\d)?", lines[0]), lines
    assert re.fullmatch(r"sampling:  8/8  \(100%\)  [\d.]+ img/s  ETA 0:00:00", lines[-1]), lines


def test_interrupted_training_names_its_snapshot_and_the_command_that_resumes(home, monkeypatch, capsys):
    @contextlib.contextmanager
    def ctrl_c_after_the_first_snapshot(total_kimg, enabled):
        def progress(nimg, loss):
            if nimg >= 96:  # the snapshot at 64 images is written
                raise KeyboardInterrupt
        yield progress

    monkeypatch.setattr("edmctl.cli.train._progress", ctrl_c_after_the_first_snapshot)
    assert main(["train", str(RECIPE), *[a for o in TINY for a in ("--set", o)]]) == 130
    message = " ".join(capsys.readouterr().err.split())
    run = Registry().list(kind="train")[0]
    assert run.status == "interrupted"
    assert f"interrupted: {run.label} kept its snapshot " in message
    assert message.endswith(f"; resume with: edmctl train --resume {run.label}")
    monkeypatch.undo()
    monkeypatch.setenv("EDMCTL_HOME", str(home))
    assert main(["train", "--resume", run.label, "--json"]) == 0  # the printed command works
    assert Registry().list(kind="train")[0].status == "done"


def test_an_interrupted_command_without_partial_work_says_to_run_it_again(home, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edmctl.sampling.sample", ctrl_c)
    assert main(["sample", "--model", MODEL, "--seeds", "0-3"]) == 130
    message = " ".join(capsys.readouterr().err.split())
    assert message == ("interrupted: stopped before it finished, nothing to continue from; run it again: "
                       "edmctl sample --model 'ideal:digits?std=0.2&n=50' --seeds 0-3")


def test_an_interrupted_sweep_counts_its_finished_trials(tmp_path, home, monkeypatch, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'model = "{MODEL}"\nseeds = "0-3"\n[grid]\n"sampler.steps" = [2, 3]\n')
    assert main(["sweep", str(sweep)]) == 0
    capsys.readouterr()

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edmctl.sweep.run_sweep", ctrl_c)
    assert main(["sweep", str(sweep), "--jobs", "1"]) == 130
    message = " ".join(capsys.readouterr().err.split())
    assert re.fullmatch(rf"interrupted: 2 of 2 trials of run\d+ finished and are kept; the same command skips them "
                        rf"and runs the rest; run it again: edmctl sweep {re.escape(str(sweep))} --jobs 1", message)


def test_training_ladder_progress_prints_numbers_to_4_significant_digits(capsys):
    print_rung(SimpleNamespace(config="B", title="Adjust hyperparameters", status="done", loss=0.43612653439143495,
                               value=12.345678))
    print_rung(SimpleNamespace(config="C", title="Redistribute capacity", status="failed", loss=None, value=None))
    assert capsys.readouterr().err.splitlines() == ["config B (Adjust hyperparameters): done  loss 0.4361  12.35",
                                                   "config C (Redistribute capacity): failed  loss -  -"]


def test_an_interrupted_demo_step_stops_the_demo_with_exit_130(home, monkeypatch, capsys):
    monkeypatch.setattr("edmctl.cli.main.main", lambda argv: 130)  # the step (train) was interrupted
    assert main(["demo", str(RECIPE)]) == 130
    message = " ".join(capsys.readouterr().err.split())
    assert message.endswith(f"interrupted: the demo stopped at step 1/4 train; run it again: edmctl demo {RECIPE}")
