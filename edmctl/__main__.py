"""`python -m edmctl` (and `torchrun -m edmctl`) run the CLI."""

from edmctl.cli.main import entry

entry()
