"""ODE solvers (EDM Table 1, row "ODE solver"), each one function with one signature:

    solver(flow, x, t_steps, churn, noise, alpha) -> x_N

`flow` is the probability-flow ODE of the model (`sampler.ProbabilityFlow`), `x` the scaled initial state
x_0 = σ(t_0)s(t_0)·n, `t_steps` the time steps t_0 > … > t_N = 0 (float64), `churn` the stochasticity settings
(`sampler.Churn`) and `noise()` the next per-image standard-normal draw. `flow` counts the denoiser calls (NFE).

euler and heun are EDM's Algorithm 2 in its general form (any σ(t), s(t), with churn). dpm2, lms and dpmpp-2m
are k-diffusion's, for σ(t) = t and s(t) = 1 only, where t is σ itself.
"""

import numpy as np
from numpy.polynomial import Polynomial

MULTISTEP_ORDER = 4  # lms: k-diffusion's default order


def _churn_step(flow, x_cur, t_cur, churn, noise):
    """Increase noise temporarily (Algorithm 2, lines 4–6): t̂ = σ⁻¹(round(σ(t)(1 + γ))),
    x̂ = s(t̂)/s(t)·x + sqrt(σ(t̂)² − σ(t)²)·s(t̂)·S_noise·ε. One draw ε every step, also when γ = 0."""
    eps = noise()
    sigma_cur = flow.sigma(t_cur)
    t_hat = flow.sigma_inv(flow.round_sigma(sigma_cur * (1 + churn.gamma(sigma_cur))))
    sigma_hat = flow.sigma(t_hat)
    spread = (sigma_hat**2 - sigma_cur**2).clip(min=0).sqrt()
    x_hat = flow.s(t_hat) / flow.s(t_cur) * x_cur + spread * flow.s(t_hat) * churn.s_noise * eps
    return x_hat, t_hat


def _euler_or_heun(flow, x, t_steps, churn, noise, alpha, second_order):
    """Algorithm 2 generalised by α: x' = x̂ + αh·d; x_{i+1} = x̂ + h[(1 − 1/(2α))d + 1/(2α)d'];
    the last step, onto t = 0, is always Euler."""
    steps = len(t_steps) - 1
    for i in range(steps):
        t_cur, t_next = t_steps[i], t_steps[i + 1]
        x_hat, t_hat = _churn_step(flow, x, t_cur, churn, noise)
        h = t_next - t_hat
        d_cur = flow.d(x_hat, t_hat)  # EDM Eq. 4
        if not second_order or i == steps - 1:
            x = x_hat + h * d_cur
            continue
        t_prime = t_hat + alpha * h
        x_prime = x_hat + alpha * h * d_cur
        d_prime = flow.d(x_prime, t_prime)
        x = x_hat + h * ((1 - 1 / (2 * alpha)) * d_cur + 1 / (2 * alpha) * d_prime)
    return x


def euler(flow, x, t_steps, churn, noise, alpha=1.0):
    """Euler's method (Table 1: VP, VE, iDDPM), with optional churn. NFE = N."""
    return _euler_or_heun(flow, x, t_steps, churn, noise, alpha, second_order=False)


def heun(flow, x, t_steps, churn, noise, alpha=1.0):
    """Heun's 2nd-order method (Table 1: EDM; α = 1), with optional churn. NFE = 2N − 1."""
    return _euler_or_heun(flow, x, t_steps, churn, noise, alpha, second_order=True)


def dpm2(flow, x, sigmas, churn, noise, alpha=1.0):
    """DPM-Solver-2 as k-diffusion's `sample_dpm_2`: a midpoint step at σ_mid = exp(½(ln σ_i + ln σ_{i+1}));
    Euler onto σ = 0. NFE = 2N − 1."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = flow.d(x, sigma)
        if sigma_next == 0:
            x = x + (sigma_next - sigma) * d
            continue
        sigma_mid = ((sigma.log() + sigma_next.log()) / 2).exp()
        x_mid = x + (sigma_mid - sigma) * d
        x = x + (sigma_next - sigma) * flow.d(x_mid, sigma_mid)
    return x


def lms_coefficients(sigmas: np.ndarray, i: int, order: int) -> list[float]:
    """∫_{σ_i}^{σ_{i+1}} ℓ_j(σ) dσ for each Lagrange basis polynomial ℓ_j through σ_i, …, σ_{i−order+1}."""
    nodes = [sigmas[i - k] for k in range(order)]
    coefficients = []
    for j in range(order):
        basis = Polynomial([1.0])
        for k in range(order):
            if k != j:
                basis *= Polynomial([-nodes[k], 1.0]) / (nodes[j] - nodes[k])
        antiderivative = basis.integ()
        coefficients.append(float(antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i])))
    return coefficients


def lms(flow, x, sigmas, churn, noise, alpha=1.0):
    """Linear multistep of order min(i + 1, 4) over the last derivatives (k-diffusion's `sample_lms`).
    NFE = N."""
    sigmas_np = sigmas.numpy()
    history = []  # d_i, d_{i−1}, … newest first
    for i in range(len(sigmas) - 1):
        history = [flow.d(x, sigmas[i])] + history[: MULTISTEP_ORDER - 1]
        coefficients = lms_coefficients(sigmas_np, i, len(history))
        x = x + sum(c * d for c, d in zip(coefficients, history))
    return x


def dpmpp_2m(flow, x, sigmas, churn, noise, alpha=1.0):
    """DPM-Solver++(2M) (k-diffusion's `sample_dpmpp_2m`): with λ = −ln σ, h_i = λ_{i+1} − λ_i,
    x_{i+1} = (σ_{i+1}/σ_i)x_i − (e^(−h_i) − 1)D̃_i, D̃_i = (1 + 1/(2r))D_i − 1/(2r)D_{i−1}, r = h_{i−1}/h_i;
    first order on the first step and onto σ = 0. NFE = N."""
    denoised_prev, h_prev = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = flow.denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
            continue
        h = sigma.log() - sigma_next.log()
        if denoised_prev is None:
            denoised_tilde = denoised
        else:
            r = h_prev / h
            denoised_tilde = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * denoised_prev
        x = (sigma_next / sigma) * x - (-h).expm1() * denoised_tilde
        denoised_prev, h_prev = denoised, h
    return x


SOLVERS = {"euler": euler, "heun": heun, "dpm2": dpm2, "lms": lms, "dpmpp-2m": dpmpp_2m}

# Solvers written for σ(t) = t, s(t) = 1 only (k-diffusion's), without churn.
SIGMA_ONLY_SOLVERS = frozenset({"dpm2", "lms", "dpmpp-2m"})
