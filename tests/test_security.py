"""Files are written through unpredictable temporary names that a planted link cannot redirect, with the modes
the user's umask gives; leftovers of killed writers are removed, never a live writer's; the environment
records only edmctl's own repository."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edmctl import paths
from edmctl.cli.main import main
from edmctl.registry import Registry, open_run

ROOT = Path(__file__).resolve().parents[1]


def test_a_planted_link_at_the_old_predictable_temporary_name_is_not_followed(tmp_path, capsys):
    """`fid ref --out` used `.{name}.tmp{pid}`, opened without O_EXCL: a link there overwrote its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "refs" / "ref.npz"
    out.parent.mkdir()
    planted = out.with_name(f".{out.name}.tmp{os.getpid()}")
    planted.symlink_to(victim)
    assert main(["fid", "ref", "digits", "--detector", "pixels", "--out", str(out)]) == 0
    assert victim.read_text() == "precious" and planted.is_symlink() and out.stat().st_size > 0


def test_temporary_names_are_random_and_created_exclusively(tmp_path, monkeypatch):
    """Even a link planted at the very name mkstemp draws is not followed: O_EXCL fails and another name is drawn."""
    import tempfile

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["fixed", "fixed", "other"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (tmp_path / ".out.bin.fixed.tmp").symlink_to(victim)
    paths.atomic_write_bytes(tmp_path / "out.bin", b"data")
    assert victim.read_text() == "precious" and (tmp_path / "out.bin").read_bytes() == b"data"


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_files_folders_and_the_registry_follow_the_umask(tmp_path, home, capsys, mask):
    old = os.umask(mask)
    try:
        paths.atomic_write_bytes(tmp_path / "a" / "file.bin", b"x")
        out = tmp_path / "samples"
        assert main(["sample", "--model", "ideal:digits?std=0.2&n=10", "--seeds", "0-1", "--steps", "2",
                     "--out", str(out)]) == 0
        with open_run(kind="train", home=home) as run:
            pass
    finally:
        os.umask(old)
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(tmp_path / "a" / "file.bin") == 0o666 & ~mask
    assert mode(out) == 0o777 & ~mask and mode(next(out.glob("*.png"))) == 0o666 & ~mask  # not mkdtemp's 0700
    assert mode(home / "registry.db") == 0o666 & ~mask and mode(run.dir) == 0o777 & ~mask
    assert mode(run.dir / "env" / "packages.txt") == 0o666 & ~mask


def _leftovers(folder):
    """A temporary file and a staging folder as a writer killed mid-write leaves them (old, unlocked)."""
    tmp, staging = folder / ".ckpt.pt.a1b2c3d4.tmp", folder / ".samples.staging-x1y2z3"
    tmp.write_bytes(b"half a checkpoint")
    staging.mkdir()
    (staging / "000000.png").write_bytes(b"png")
    old = time.time() - 3600
    for p in (tmp, staging):
        os.utime(p, (old, old))
    return tmp, staging


def test_leftovers_of_killed_writers_are_removed_but_never_a_live_writers(tmp_path):
    tmp, staging = _leftovers(tmp_path)
    with paths.atomic_open(tmp_path / "live.bin") as f:
        f.write(b"being written")
        live = next(tmp_path.glob(".live.bin.*.tmp"))
        os.utime(live, (time.time() - 3600,) * 2)  # old, but its writer holds the lock
        assert sorted(paths.remove_leftovers(tmp_path)) == sorted([tmp, staging])
        assert live.exists()
    assert (tmp_path / "live.bin").read_bytes() == b"being written" and not live.exists()


def test_a_writer_killed_by_sigkill_leaves_a_temporary_file_that_the_next_write_removes(tmp_path, monkeypatch):
    code = ("import sys, os, signal; from pathlib import Path; from edmctl import paths\n"
            "with paths.atomic_open(Path(sys.argv[1])) as f:\n"
            "    f.write(b'half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    target = tmp_path / "stats.npz"
    subprocess.run([sys.executable, "-c", code, str(target)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    left = list(tmp_path.glob(".stats.npz.*.tmp"))
    assert len(left) == 1 and not target.exists()
    monkeypatch.setattr(paths, "LEFTOVER_AGE_S", 0.0)
    paths.atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole" and not left[0].exists()


def test_runs_reap_removes_leftovers_in_run_folders(home, capsys):
    with open_run(kind="train", home=home) as run:
        pass
    tmp, staging = _leftovers(run.dir)
    assert main(["runs", "reap", "--json"]) == 0
    assert not tmp.exists() and not staging.exists() and "removed_leftovers" in capsys.readouterr().out
    assert Registry(home).get(run.id).status == "done"


def test_only_edmctls_own_repository_is_recorded_not_the_one_it_runs_in(tmp_path, home, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "config.py").write_text("TOKEN = None\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    (repo / "config.py").write_text("TOKEN = 'SECRET-1234'\n")
    monkeypatch.chdir(repo)
    with open_run(kind="train", home=home) as run:
        pass
    recorded = [p.read_bytes() for p in run.dir.rglob("*") if p.is_file()]
    assert not any(b"SECRET-1234" in data for data in recorded)
    assert "cwd_git" not in Registry(home).get(run.id).extra


@pytest.mark.parametrize("command", ["measure", "ref"])
def test_fid_help_says_a_pt_detector_is_code(capsys, command):
    assert main(["fid", command, "--help"]) == 0
    assert "detector is code" in " ".join(capsys.readouterr().out.split())


def _scheduler_with_one_worker(report: int) -> None:
    """In a forked "scheduler": fork a "worker" that arms `die_with_parent`, report its pid, wait to be killed."""
    import signal

    from edmctl.sweep.scheduler import die_with_parent

    scheduler = os.getpid()
    worker = os.fork()
    if worker == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a freshly spawned worker
        die_with_parent(scheduler)
        os.write(report, b"armed\n")
        time.sleep(60)
        os._exit(0)
    os.write(report, f"{worker}\n".encode())
    time.sleep(60)
    os._exit(0)


def test_a_sweep_worker_dies_with_its_scheduler_even_after_kill_9():
    """An orphaned worker would go on claiming trials: it gets SIGTERM when its scheduler dies (its open trial
    then ends `interrupted` through the run lifecycle)."""
    import signal

    from edmctl.registry.store import _pid_alive

    read, write = os.pipe()
    scheduler = os.fork()
    if scheduler == 0:
        os.close(read)
        _scheduler_with_one_worker(write)
    os.close(write)
    with os.fdopen(read) as lines:
        first, second = lines.readline().strip(), lines.readline().strip()
        worker = int(first if first != "armed" else second)
        assert _pid_alive(worker)
        os.kill(scheduler, signal.SIGKILL)
        os.waitpid(scheduler, 0)
        deadline = time.time() + 10
        while _pid_alive(worker) and time.time() < deadline:
            time.sleep(0.02)
    assert not _pid_alive(worker)
