"""What a new user reads first: `--version`, help pages that name values readably and list the solvers, and
errors that name the flag the user typed."""

import re
from importlib.metadata import version

import pytest
import typer

from edmctl.cli.main import app, main
from edmctl.design.solvers import SOLVERS
from edmctl.gitstate import find_repo, git_state


def help_of(argv: list[str], capsys) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def command_paths(command, path=()):
    yield list(path)
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def test_version_names_the_package_version_and_the_git_commit(capsys):
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"edmctl {version('edmctl')}")
    repo = find_repo(__import__("pathlib").Path(__file__).resolve().parent)
    commit = git_state(repo)[0] if repo is not None else None
    assert commit is None or f"git {commit[:12]}" in line


def test_every_help_page_names_values_readably(capsys):
    pages = {" ".join(path): help_of(path, capsys) for path in command_paths(typer.main.get_command(app))}
    assert len(pages) > 20
    for name, page in pages.items():
        assert not re.search(r"<[a-z\[\]. ]+>", page), (name, re.findall(r"<[a-z\[\]. ]+>", page))  # <int range>
        assert not re.search(r"\{[a-z_]+\}", page.split("\n\n")[0]), name  # usage line: {target}
    assert "Usage: edmctl fid measure [OPTIONS] TARGET" in pages["fid measure"]
    assert "--batch N " in pages["fid measure"] and "--out PATH " in pages["sample"]
    assert "Usage: edmctl recipe validate [OPTIONS] FILES..." in pages["recipe validate"]


@pytest.mark.parametrize("command", [["sample"], ["fid", "measure"], ["steps", "optimize"]])
def test_solver_help_lists_every_solver(command, capsys):
    page = " ".join(help_of(command, capsys).split())
    listed = re.search(r"--solver SOLVER .*?One of: ([a-z0-9, -]+)\.", page).group(1)
    assert listed.split(", ") == list(SOLVERS)


@pytest.mark.parametrize("flags, named", [
    (["--solver", "hune"], "--solver hune: sampler.solver: 'hune' is not one of"),
    (["--steps", "0"], "--steps 0: sampler.steps"),
    (["--solver", "dpm2", "--s-churn", "5"], "--solver dpm2, --s-churn 5.0: sampler.s_churn > 0 needs solver"),
])
def test_an_alias_flags_error_names_the_flag_the_user_typed(flags, named, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    assert main(["sample", "--model", "ideal:digits?std=0.2&n=10", *flags]) == 2
    message = capsys.readouterr().err
    assert named in message and "--set" not in message and not (tmp_path / "home").exists()


@pytest.mark.parametrize("argv, says", [
    (["--threads", "0", "runs"], "--threads 0: must be a whole number from 1 to 1024; try 'edmctl --help'."),
    (["--threads", "abc", "runs"], "--threads abc: must be a whole number from 1 to 1024"),
    (["runs", "--limit", "0"], "--limit 0: must be a whole number of at least 1; try 'edmctl runs --help'."),
    (["runs", "--limit", ""], "--limit '': must be a whole number of at least 1"),
    (["sample", "--steps", "abc"], "--steps abc: must be a valid integer"),
    (["sample", "--batch", "1.5"], "--batch 1.5: must be a valid integer"),
    (["sample", "--threads", "0"], "--threads is an option of edmctl itself: give it before the command"),
    (["sample", "--bogus"], "No such option: --bogus"),
    (["bogus"], "No such command 'bogus'; try 'edmctl --help'."),
    (["fid", "measure", "x", "--batch", "0"], "--batch 0: must be a whole number of at least 1; try 'edmctl fid measure --help'."),
    (["fid", "measure", "x", "--batch"], "Option '--batch' requires an argument; try 'edmctl fid measure --help'."),
    (["fid", "measure"], "Missing argument 'TARGET'; try 'edmctl fid measure --help'."),
    (["sweep", "run", "x.toml", "--limit", "-1"], "--limit -1: must be a whole number of at least 0; try 'edmctl sweep run --help'."),
    (["runs", "rm", "a", "b"], "unexpected extra argument(s) (b); try 'edmctl runs rm --help'."),
    (["runs", "--json=3"], "Option '--json' does not take a value"),
])
def test_a_usage_error_is_one_line_naming_the_option_the_value_and_what_is_allowed(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    assert main(argv) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1, printed.err
    assert printed.err.startswith("error: ") and says in printed.err, printed.err
    assert not (tmp_path / "home").exists()
