"""Measures of a sampler's output, one function each, that every report calls (`ablate sampler`, sweeps,
bench/solver_accuracy.py, docs/make_results.py): `sampler_error` for analytic models."""

from edmctl.evaluate.sampler_error import (REFERENCE_STEPS, SAMPLER_ERRORS, mode_flips, per_seed_rms, reference_sampler,
                                           reference_solution, sampler_error)

__all__ = ["REFERENCE_STEPS", "SAMPLER_ERRORS", "mode_flips", "per_seed_rms", "reference_sampler", "reference_solution",
           "sampler_error"]
