"""The design space of EDM Table 1, as pure torch math: one module per axis, each a table name -> implementation.

Sampling side: `schedules` σ(t), `scalings` s(t), `discretizations` {σ_i}, `solvers`, `sampler` (Algorithm 2).
Training side: `precond` (c_skip, c_out, c_in, c_noise), `p_train`, `loss_weights` λ(σ), `augment`, `loss`.
"""
