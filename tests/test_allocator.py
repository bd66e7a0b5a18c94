"""edmctl's malloc settings reach the processes it starts, never replace the user's, and are recorded."""

import os
import subprocess
import sys

from edmctl import allocator


def test_started_processes_get_the_tunables(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "")  # so that the test's end restores what was there before
    monkeypatch.delenv("GLIBC_TUNABLES")
    allocator.apply_to_children()
    seen = subprocess.run([sys.executable, "-c", "import os; print(os.environ['GLIBC_TUNABLES'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == allocator.TUNABLES


def test_the_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    allocator.apply_to_children()
    assert os.environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"


def test_a_run_records_the_allocator_it_started_with(monkeypatch):
    from edmctl.registry.environment import capture

    monkeypatch.setattr(allocator, "AT_START", allocator.TUNABLES)
    assert capture().extra["glibc_tunables"] == allocator.TUNABLES
