"""Sampling: per-seed noise (`SeedNoise`), the driver over seeds and batches (`sample`), and the outputs
(`write_samples`, with `to_uint8` the project's one quantisation to 8-bit pixels); `steps.optimize_steps`
searches a solver's time steps."""

from edmctl.sampling.driver import SampleResult, sample
from edmctl.sampling.noise import SeedNoise
from edmctl.sampling.seeds import parse_seeds
from edmctl.sampling.writers import to_uint8, write_samples

__all__ = ["SampleResult", "SeedNoise", "parse_seeds", "sample", "to_uint8", "write_samples"]
