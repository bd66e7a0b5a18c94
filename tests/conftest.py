"""Test-wide settings: one torch thread. The tests run many tiny tensor operations, for which a second thread
costs more in synchronisation than it saves (4-5x slower on a busy 2-core machine), and subprocesses that
compare bits with the test process run with OMP_NUM_THREADS=1 too."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread, whatever the test before it (or code it ran, e.g. an in-process sweep
    worker) set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
