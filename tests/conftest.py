"""Test-wide settings: one torch thread. The tests run many tiny tensor operations, for which a second thread
costs more in synchronisation than it saves (4-5x slower on a busy 2-core machine), and subprocesses that
compare bits with the test process run with OMP_NUM_THREADS=1 too."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Every test starts on one thread, whatever the test before it (or code it ran, e.g. an in-process sweep
    worker) set, and gets back the thread variables that `edmctl --threads` sets for child processes."""
    one = {"EDMCTL_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_DYNAMIC": "FALSE"}
    for name, value in one.items():  # as `edmctl --threads 1` sets them; restored after the test
        monkeypatch.setenv(name, value)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory):
    """`tiny_training(name, overrides) -> (home, ref)`: a fresh EDMCTL_HOME for the module, run1 trained from
    recipes/digits.toml with the `--set` overrides on one torch thread, and pixel statistics of the digits."""
    from pathlib import Path

    from edmctl.cli.main import main

    patch, threads = pytest.MonkeyPatch(), torch.get_num_threads()

    def train(name: str, overrides: list[str]):
        home = tmp_path_factory.mktemp(name) / "home"
        patch.setenv("EDMCTL_HOME", str(home))
        torch.set_num_threads(1)  # the same arithmetic as the one-thread tests that compare against it
        recipe = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
        assert main(["train", str(recipe), *[a for o in overrides for a in ("--set", o)]]) == 0
        ref = home.parent / "digits_pixels.npz"
        assert main(["fid", "ref", "digits", "--out", str(ref), "--detector", "pixels"]) == 0
        return home, ref

    yield train
    torch.set_num_threads(threads)
    patch.undo()


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole session (tests/servers.py); skipped when it cannot start
    (failed in CI, `$CI` set)."""
    from servers import PostgresServer, ServerUnavailable, require

    try:
        with PostgresServer.started() as server:
            yield server
    except ServerUnavailable as error:
        require(error)


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database on the session's server; its engines are closed after the test."""
    from edmctl.registry import db

    url = postgres_server.create_database()
    yield url
    db.dispose(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_backend(request, monkeypatch):
    """Each registry test on both backends: "sqlite" (EDMCTL_DB_URL unset: registry.db in the home) and
    "postgresql" (EDMCTL_DB_URL set to a fresh database on the session's server). The value is the URL or None."""
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("EDMCTL_DB_URL", url)
    return url


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh EDMCTL_HOME (SQLite) for the test: `tmp_path / "runs"`. Modules that need another define their own."""
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def slurm_cluster():
    """One throwaway single-node Slurm cluster for the whole session (tests/slurm_cluster.py), its SLURM_CONF in
    the environment; skipped when it cannot start (failed in CI, `$CI` set)."""
    from servers import ServerUnavailable, require
    from slurm_cluster import SlurmCluster

    try:
        with SlurmCluster.started() as cluster, pytest.MonkeyPatch.context() as patch:
            for name, value in cluster.env.items():
                patch.setenv(name, value)
            yield cluster
    except ServerUnavailable as error:
        require(error)
