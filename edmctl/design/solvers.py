"""ODE and SDE solvers (EDM Table 1, row "ODE solver", and the samplers beyond the paper), each one function with
one signature:

    solver(flow, x, t_steps, churn, noise, *, <its recipe fields>) -> x_N

`flow` is the probability-flow ODE of the model (`sampler.ProbabilityFlow`), `x` the scaled initial state
x_0 = σ(t_0)s(t_0)·n, `t_steps` the time steps t_0 > … > t_N = 0 (float64), `churn` the stochasticity settings
(`sampler.Churn`: S_churn, S_tmin, S_tmax, S_noise) and `noise()` the next per-image standard-normal draw. The
keyword-only parameters are `[sampler]` fields (`order`, `eta`, `restart_k`, …): a field applies to exactly the
solvers that name it. `flow` counts the denoiser calls (NFE).

Any σ(t), s(t): euler and heun (EDM Algorithm 2, with churn), ipndm, restart. The others are written, as in
k-diffusion, for σ(t) = t and s(t) = 1 only (`SIGMA_ONLY_SOLVERS`), where t is σ itself; with λ = −ln σ and
h_i = λ_{i+1} − λ_i, and D_i = D(x_i; σ_i), the denoiser output.

Noise draws, in order, from each image's own generator (`sampling.noise.SeedNoise`), so that an image depends on
its seed alone: euler, heun and restart draw one ε per step for the churn, also where γ = 0, and restart one more
per restart jump; the ancestral and SDE samplers one per step onto σ > 0 (dpmpp-sde two); the deterministic
multistep solvers none.
"""

import numpy as np
import torch
from numpy.polynomial import Polynomial

from edmctl.design.discretizations import edm as edm_steps

MULTISTEP_ORDER = 4  # lms: k-diffusion's default order
MAX_ORDER = {"unipc": 3, "ipndm": 4}  # the highest `sampler.order` each multistep solver takes (its default)


def _no_noise():
    """The noise of a deterministic solver that shares its update with a stochastic one (η = 0)."""
    return 0.0


# --- EDM Algorithm 2 and its relatives: any σ(t), s(t) -----------------------------------------------------

def _renoise(flow, x, t_from, t_to, s_noise, eps):
    """Move x from t_from up to t_to ≥ t_from by fresh noise: x̂ = s(t_to)/s(t_from)·x
    + sqrt(σ(t_to)² − σ(t_from)²)·s(t_to)·S_noise·ε (Algorithm 2, line 6; Restart's forward jump, Xu et al. Eq. 6)."""
    spread = (flow.sigma(t_to) ** 2 - flow.sigma(t_from) ** 2).clip(min=0).sqrt()
    return flow.s(t_to) / flow.s(t_from) * x + spread * flow.s(t_to) * s_noise * eps


def _churn_step(flow, x_cur, t_cur, gamma, s_noise, noise):
    """Increase noise temporarily (Algorithm 2, lines 4–6): t̂ = σ⁻¹(round(σ(t)(1 + γ))), x̂ by `_renoise`.
    One draw ε every step, also when γ = 0."""
    eps = noise()
    t_hat = flow.sigma_inv(flow.round_sigma(flow.sigma(t_cur) * (1 + gamma)))
    return _renoise(flow, x_cur, t_cur, t_hat, s_noise, eps), t_hat


def _algorithm2(flow, x, t_steps, gamma, s_noise, noise, alpha, second_order):
    """Algorithm 2 generalised by α, with γ_i = gamma(σ(t_i)): x' = x̂ + αh·d; x_{i+1} = x̂ + h[(1 − 1/(2α))d
    + 1/(2α)d'] (App. D.2, Eq. 24); a step onto t = 0 is always Euler."""
    for t_cur, t_next in zip(t_steps[:-1], t_steps[1:]):
        x_hat, t_hat = _churn_step(flow, x, t_cur, gamma(flow.sigma(t_cur)), s_noise, noise)
        h = t_next - t_hat
        d_cur = flow.d(x_hat, t_hat)  # EDM Eq. 4
        if not second_order or t_next == 0:
            x = x_hat + h * d_cur
            continue
        d_prime = flow.d(x_hat + alpha * h * d_cur, t_hat + alpha * h)
        x = x_hat + h * ((1 - 1 / (2 * alpha)) * d_cur + 1 / (2 * alpha) * d_prime)
    return x


def euler(flow, x, t_steps, churn, noise):
    """Euler's method (Table 1: VP, VE, iDDPM), with optional churn. NFE = N."""
    return _algorithm2(flow, x, t_steps, churn.gamma, churn.s_noise, noise, 1.0, second_order=False)


def heun(flow, x, t_steps, churn, noise, *, alpha):
    """Heun's 2nd-order method (Table 1: EDM; α = 1), with optional churn. NFE = 2N − 1."""
    return _algorithm2(flow, x, t_steps, churn.gamma, churn.s_noise, noise, alpha, second_order=True)


IPNDM_COEFFICIENTS = {1: (1.0,), 2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12), 4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}


def ipndm(flow, x, t_steps, churn, noise, *, order):
    """iPNDM (Zhang & Chen 2023, DEIS paper, App. "improved PNDM"; as diff-sampler's `ipndm_sampler`): the
    Adams–Bashforth formula of equal steps on dx/dt (Eq. 4), x_{i+1} = x_i + (t_{i+1} − t_i)·Σ_j b_j d_{i−j}
    (b = 55/24, −59/24, 37/24, −9/24 at order 4), of order min(i + 1, `order`): a first-order start, no
    Runge–Kutta warm-up. The step onto t = 0 is an ordinary iPNDM step. NFE = N."""
    history = []  # d_i, d_{i−1}, … newest first
    for t_cur, t_next in zip(t_steps[:-1], t_steps[1:]):
        history = [flow.d(x, t_cur)] + history[: order - 1]
        x = x + (t_next - t_cur) * sum(b * d for b, d in zip(IPNDM_COEFFICIENTS[len(history)], history))
    return x


def restart_index(flow, t_steps, t_min) -> int:
    """The main step i whose σ(t_i) is nearest t_min (the Restart code's `argmin |t_steps − t_min|`, t_N = 0 included)."""
    return int((flow.sigma(t_steps) - t_min).abs().argmin())


def restart(flow, x, t_steps, churn, noise, *, rho, restart_k, restart_steps, restart_tmin, restart_tmax, restart_gamma):
    """Restart sampling (Xu et al. 2023, Algorithm 1; their `restart_sampler`): Heun over t_steps (with churn as
    Algorithm 2), and on reaching t_min = the step nearest `restart_tmin`, K = `restart_k` times: jump forward to
    σ = `restart_tmax` with fresh noise (Eq. 6), then Heun back to t_min over `restart_steps` edm(ρ) levels, each
    step churned by γ = `restart_gamma` where S_tmin ≤ σ ≤ S_tmax. NFE = 2N − 1 + 2K(restart_steps − 1)."""
    i_min = restart_index(flow, t_steps, restart_tmin)
    x = _algorithm2(flow, x, t_steps[: i_min + 1], churn.gamma, churn.s_noise, noise, 1.0, second_order=True)
    sigma_min = flow.sigma(t_steps[i_min])
    inner = flow.sigma_inv(edm_steps(restart_steps, float(sigma_min), restart_tmax, rho))
    inner[-1] = t_steps[i_min]
    inner_gamma = lambda sigma: restart_gamma if churn.s_tmin <= float(sigma) <= churn.s_tmax else 0.0  # noqa: E731
    for _ in range(restart_k):
        x = _renoise(flow, x, t_steps[i_min], inner[0], churn.s_noise, noise())
        x = _algorithm2(flow, x, inner, inner_gamma, churn.s_noise, noise, 1.0, second_order=True)
    return _algorithm2(flow, x, t_steps[i_min:], churn.gamma, churn.s_noise, noise, 1.0, second_order=True)


# --- k-diffusion's samplers: σ(t) = t, s(t) = 1 ------------------------------------------------------------

def _dpm2(flow, x, sigmas, eta, s_noise, noise):
    """DPM-Solver-2 steps onto σ_down (k-diffusion's `sample_dpm_2_ancestral`; η = 0: `sample_dpm_2`): a midpoint
    step at σ_mid = exp(½(ln σ_i + ln σ_down)), then + σ_up·S_noise·ε; Euler onto σ_down = 0."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        d = flow.d(x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = x + (sigma_down - sigma) * d
            continue
        sigma_mid = ((sigma.log() + sigma_down.log()) / 2).exp()
        x = x + (sigma_down - sigma) * flow.d(x + (sigma_mid - sigma) * d, sigma_mid)
        x = x + noise() * s_noise * sigma_up
    return x


def dpm2(flow, x, sigmas, churn, noise):
    """DPM-Solver-2 as k-diffusion's `sample_dpm_2` (Lu et al. 2022, Algorithm 1 in σ). NFE = 2N − 1."""
    return _dpm2(flow, x, sigmas, 0.0, 1.0, _no_noise)


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


def lms(flow, x, sigmas, churn, noise):
    """Linear multistep of order min(i + 1, 4) over the last derivatives (k-diffusion's `sample_lms`).
    NFE = N."""
    sigmas_np = sigmas.numpy()
    history = []  # d_i, d_{i−1}, … newest first
    for i in range(len(sigmas) - 1):
        history = [flow.d(x, sigmas[i])] + history[: MULTISTEP_ORDER - 1]
        coefficients = lms_coefficients(sigmas_np, i, len(history))
        x = x + sum(c * d for c, d in zip(coefficients, history))
    return x


def _dpmpp_multistep(flow, x, sigmas, order, eta, s_noise, noise):
    """DPM-Solver++(2M)/(3M) with η (Lu et al. 2022b, Eq. 8 and Algorithm 2, with the SDE variant's e^(−ηh);
    k-diffusion's `sample_dpmpp_2m_sde` (midpoint) and `sample_dpmpp_3m_sde`): with ĥ = (1 + η)h_i,
    x_{i+1} = e^(−ĥ)x_i + (1 − e^(−ĥ))D_i + φ_2(ĥ)δ_1 − φ_3(ĥ)δ_2 + σ_{i+1}sqrt(1 − e^(−2ηh_i))·S_noise·ε,
    φ_2(ĥ) = (e^(−ĥ) − 1)/ĥ + 1, φ_3 = φ_2/ĥ − ½, δ_1, δ_2 the first and second differences of D over λ scaled
    by h_i (2M: the midpoint form ½(1 − e^(−ĥ))δ_1). The first steps take the orders the history allows (first
    order first); the step onto σ = 0 is x_N = D_{N−1}. NFE = N."""
    history = []  # (D_i, h_i), newest first
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = flow.denoise(x, sigma)
        if sigma_next == 0:
            return denoised
        h = sigma.log() - sigma_next.log()
        h_eta = h * (eta + 1)
        x = (-h_eta).exp() * x - (-h_eta).expm1() * denoised
        x = x + _dpmpp_correction(denoised, history[: order - 1], h, h_eta, order)
        if eta:
            x = x + noise() * sigma_next * (-(-2 * eta * h).expm1()).sqrt() * s_noise
        history = [(denoised, h)] + history
    return x


def _dpmpp_correction(denoised, history, h, h_eta, order):
    """The 2M/3M terms on top of the first-order step, from up to two earlier (D, h)."""
    phi_2 = (-h_eta).expm1() / h_eta + 1
    if not history:
        return 0.0
    d1_0 = (denoised - history[0][0]) * h / history[0][1]  # (D_i − D_{i−1})/r_0, r_0 = h_{i−1}/h_i
    if order == 2:
        return 0.5 * -(-h_eta).expm1() * d1_0  # the 2M SDE "midpoint" form
    if len(history) == 1:
        return phi_2 * d1_0
    r0, r1 = history[0][1] / h, history[1][1] / h
    d1_1 = (history[0][0] - history[1][0]) / r1
    d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    return phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2


def dpmpp_2m(flow, x, sigmas, churn, noise):
    """DPM-Solver++(2M) (k-diffusion's `sample_dpmpp_2m`): x_{i+1} = (σ_{i+1}/σ_i)x_i − (e^(−h_i) − 1)D̃_i,
    D̃_i = (1 + 1/(2r))D_i − 1/(2r)D_{i−1}, r = h_{i−1}/h_i; first order on the first step, x_N = D_{N−1}. NFE = N."""
    return _dpmpp_multistep(flow, x, sigmas, 2, 0.0, 1.0, _no_noise)


def dpmpp_3m(flow, x, sigmas, churn, noise):
    """DPM-Solver++(3M): `dpmpp-3m-sde` with η = 0 (k-diffusion's `sample_dpmpp_3m_sde(eta=0)`); orders 1, 2, then
    3; x_N = D_{N−1}. NFE = N."""
    return _dpmpp_multistep(flow, x, sigmas, 3, 0.0, 1.0, _no_noise)


def dpmpp_2m_sde(flow, x, sigmas, churn, noise, *, eta):
    """DPM-Solver++(2M) SDE (k-diffusion's `sample_dpmpp_2m_sde`, midpoint): one ε per step onto σ > 0. NFE = N."""
    return _dpmpp_multistep(flow, x, sigmas, 2, eta, churn.s_noise, noise)


def dpmpp_3m_sde(flow, x, sigmas, churn, noise, *, eta):
    """DPM-Solver++(3M) SDE (k-diffusion's `sample_dpmpp_3m_sde`): one ε per step onto σ > 0. NFE = N."""
    return _dpmpp_multistep(flow, x, sigmas, 3, eta, churn.s_noise, noise)


def ancestral_step(sigma_from, sigma_to, eta):
    """(σ_down, σ_up): σ_up = min(σ_to, η·sqrt(σ_to²(σ_from² − σ_to²)/σ_from²)), σ_down = sqrt(σ_to² − σ_up²), so
    that a step to σ_down plus noise σ_up lands at σ_to (k-diffusion's `get_ancestral_step`; η = 1: DDPM's)."""
    if not eta:
        return sigma_to, sigma_to * 0
    sigma_up = torch.minimum(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2).sqrt())
    return (sigma_to**2 - sigma_up**2).sqrt(), sigma_up


def euler_ancestral(flow, x, sigmas, churn, noise, *, eta):
    """Euler steps onto σ_down, then + σ_up·S_noise·ε where σ_{i+1} > 0 (k-diffusion's `sample_euler_ancestral`).
    NFE = N."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = x + (sigma_down - sigma) * flow.d(x, sigma)
        if sigma_next > 0:
            x = x + noise() * churn.s_noise * sigma_up
    return x


def dpm2_ancestral(flow, x, sigmas, churn, noise, *, eta):
    """DPM-Solver-2 steps onto σ_down plus σ_up·S_noise·ε (k-diffusion's `sample_dpm_2_ancestral`; no noise on a
    step whose σ_down is 0). NFE = 2N − 1."""
    return _dpm2(flow, x, sigmas, eta, churn.s_noise, noise)


def _dpmpp_2s_step(flow, x, sigma, sigma_to, denoised, r=0.5):
    """One DPM-Solver++(2S) step from σ to σ_to (Lu et al. 2022b, Algorithm 1): s = λ + r·h,
    u = (σ_s/σ)x − (e^(−rh) − 1)D_i, x' = (σ_to/σ)x − (e^(−h) − 1)D(u; σ_s)."""
    h = sigma.log() - sigma_to.log()
    sigma_s = (sigma.log() - r * h).exp()
    u = (sigma_s / sigma) * x - (-r * h).expm1() * denoised
    return (sigma_to / sigma) * x - (-h).expm1() * flow.denoise(u, sigma_s)


def dpmpp_2s_ancestral(flow, x, sigmas, churn, noise, *, eta):
    """DPM-Solver++(2S) steps onto σ_down plus σ_up·S_noise·ε where σ_{i+1} > 0 (k-diffusion's
    `sample_dpmpp_2s_ancestral`); x = D_i when σ_down = 0. NFE = 2N − 1 (fewer where σ_down = 0 early)."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = flow.denoise(x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = denoised if sigma_down == 0 else _dpmpp_2s_step(flow, x, sigma, sigma_down, denoised)
        if sigma_next > 0:
            x = x + noise() * churn.s_noise * sigma_up
    return x


def brownian_increments(noise, sigma, sigma_s, sigma_next):
    """Standard-normal increments of one Brownian motion W(σ) over [σ_s, σ] and over [σ_next, σ] (σ > σ_s > σ_next),
    from two fresh draws z_1, z_2: n_1 = z_1, n_2 = (sqrt(σ − σ_s)z_1 + sqrt(σ_s − σ_next)z_2)/sqrt(σ − σ_next).
    Their correlation is what k-diffusion's Brownian tree gives `sample_dpmpp_sde`; the draws are per image."""
    z_1, z_2 = noise(), noise()
    n_2 = ((sigma - sigma_s).sqrt() * z_1 + (sigma_s - sigma_next).sqrt() * z_2) / (sigma - sigma_next).sqrt()
    return z_1, n_2


def dpmpp_sde(flow, x, sigmas, churn, noise, *, eta):
    """DPM-Solver++ SDE (k-diffusion's `sample_dpmpp_sde`, r = ½): an ancestral first-order step to the midpoint
    σ_s = sqrt(σ_iσ_{i+1}) (noise n_1), then from x_i with D(u; σ_s) (r = ½ gives it all the weight) an ancestral
    step to σ_{i+1} (noise n_2); n_1, n_2 are `brownian_increments` (two draws per step onto σ > 0). x_N = D_{N−1}. NFE = 2N − 1."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = flow.denoise(x, sigma)
        if sigma_next == 0:
            return denoised
        sigma_s = (sigma * sigma_next).sqrt()
        n_1, n_2 = brownian_increments(noise, sigma, sigma_s, sigma_next)
        down, up = ancestral_step(sigma, sigma_s, eta)
        u = (down / sigma) * x - (down / sigma - 1) * denoised + n_1 * churn.s_noise * up
        denoised_mid = flow.denoise(u, sigma_s)
        down, up = ancestral_step(sigma, sigma_next, eta)
        x = (down / sigma) * x - (down / sigma - 1) * denoised_mid + n_2 * churn.s_noise * up
    return x


def unipc_coefficients(h: float, ratios: list[float], variant: str) -> tuple[np.ndarray, np.ndarray, float]:
    """UniPC's ρ^p (predictor), ρ^c (corrector) and B(h) for one step (Zhao et al. 2023, Algorithms 2 and 3, Eq. 8):
    with ĥ = −h (data prediction), B(h) = ĥ (bh1) or e^ĥ − 1 (bh2), the system R ρ = g has R_{kj} = r_j^(k−1)
    over r = (ratios, 1) and g_k = k!·φ_{k+1}(ĥ)/B(h), φ_{k+1} = (φ_k − 1/k!)/ĥ from φ_1 = (e^ĥ − 1)/ĥ. The predictor
    solves the system without the last row and column (ρ^p = ½ at order 2); the corrector solves all of it
    (ρ^c = ½ at order 1)."""
    hh = -h
    b_h = hh if variant == "bh1" else np.expm1(hh)
    order = len(ratios) + 1
    r = np.array([*ratios, 1.0])
    R = np.stack([r**k for k in range(order)])
    g, phi, factorial = [], np.expm1(hh) / hh - 1, 1.0
    for k in range(1, order + 1):
        g.append(phi * factorial / b_h)
        factorial *= k + 1
        phi = phi / hh - 1 / factorial
    g = np.array(g)
    rho_p = np.array([0.5]) if order == 2 else np.linalg.solve(R[:-1, :-1], g[:-1]) if order > 2 else np.zeros(0)
    rho_c = np.array([0.5]) if order == 1 else np.linalg.solve(R, g)
    return rho_p, rho_c, b_h


def _unipc_step(x, sigma_prev, sigma, history, order, variant):
    """UniP of `order` from (x, σ_prev) to σ over the newest-first (λ, D) history; returns the predicted x and
    `correct(D_new)`, UniC's x from the same base with the new D (Algorithm 2 and 3 in σ: α = 1)."""
    lam_0, denoised_0 = history[0]
    h = float(-sigma.log()) - lam_0
    ratios = [(lam - lam_0) / h for lam, _ in history[1:order]]
    differences = [(d - denoised_0) / r for (_, d), r in zip(history[1:order], ratios)]
    rho_p, rho_c, b_h = unipc_coefficients(h, ratios, variant)
    base = (sigma / sigma_prev) * x - float(np.expm1(-h)) * denoised_0
    predicted = base - float(b_h) * sum(float(p) * d for p, d in zip(rho_p, differences))

    def correct(denoised_new):
        residual = sum(float(c) * d for c, d in zip(rho_c[:-1], differences)) + float(rho_c[-1]) * (denoised_new - denoised_0)
        return base - float(b_h) * residual

    return predicted, correct


def unipc(flow, x, sigmas, churn, noise, *, order, unipc_variant):
    """UniPC (Zhao et al. 2023; the official `multistep_uni_pc_bh_update` with data prediction): steps σ_0 → … →
    σ_{N−1} by UniP of order min(`order`, i, N − i) (a first-order start and lower orders at the end, as
    `lower_order_final`), each corrected by UniC with the denoiser call the next step needs anyway (no extra NFE),
    but the last; then x_N = D(x_{N−1}; σ_{N−1}) (`denoise_to_zero`). NFE = N."""
    history = [(float(-sigmas[0].log()), flow.denoise(x, sigmas[0]))]  # (λ_i, D_i), newest first
    steps = len(sigmas) - 1
    for i in range(1, steps):
        step_order = min(order, i, steps - i)
        x_pred, correct = _unipc_step(x, sigmas[i - 1], sigmas[i], history, step_order, unipc_variant)
        if i == steps - 1:
            x = x_pred
            break
        denoised = flow.denoise(x_pred, sigmas[i])
        x = correct(denoised)
        history = [(float(-sigmas[i].log()), denoised)] + history[: MAX_ORDER["unipc"] - 1]
    return flow.denoise(x, sigmas[-2]) if steps > 1 else history[0][1]


SOLVERS = {
    "euler": euler, "heun": heun, "dpm2": dpm2, "lms": lms, "dpmpp-2m": dpmpp_2m,
    "dpmpp-3m": dpmpp_3m, "unipc": unipc, "ipndm": ipndm,
    "euler-ancestral": euler_ancestral, "dpm2-ancestral": dpm2_ancestral, "dpmpp-2s-ancestral": dpmpp_2s_ancestral,
    "dpmpp-sde": dpmpp_sde, "dpmpp-2m-sde": dpmpp_2m_sde, "dpmpp-3m-sde": dpmpp_3m_sde, "restart": restart,
}

# Solvers written for σ(t) = t, s(t) = 1 only (k-diffusion's and UniPC).
SIGMA_ONLY_SOLVERS = frozenset(set(SOLVERS) - {"euler", "heun", "ipndm", "restart"})

# Solvers that take Algorithm 2's churn (S_churn > 0).
CHURN_SOLVERS = frozenset({"euler", "heun", "restart"})

# Solvers whose result depends on noise drawn along the way (they converge in distribution, not per seed).
STOCHASTIC_SOLVERS = frozenset({"euler-ancestral", "dpm2-ancestral", "dpmpp-2s-ancestral", "dpmpp-sde", "dpmpp-2m-sde",
                                "dpmpp-3m-sde", "restart"})
