"""The training objective, written as the EDM paper's claims: the preconditioning of Table 1 (Eq. 7), the noise
distributions p_train(σ), the loss weights λ(σ) (with P2), the loss E[λ(σ)‖D(y + n; σ) − y‖²] (Eq. 2, Eq. 8) and
`Recipe.bind`, which fills each implementation's constants from a recipe.

Expected values are computed here from the paper's definitions with plain `math` (bisection for σ_vp⁻¹, the
u_j recurrence as a loop, argmin as a loop), independently of the implementation.
"""

import functools
import math

import pytest
import torch
from scipy import stats

from edmctl.design.loss import DenoisingLoss
from edmctl.design.loss_weights import LOSS_WEIGHTS
from edmctl.design.p_train import P_TRAIN
from edmctl.design.precond import PRECONDS, Denoiser
from edmctl.errors import UserError
from edmctl.networks import build_network
from edmctl.recipe.load import load_recipe

SIGMAS = [0.002, 0.1, 1.0, 10.0, 80.0]
# The paper's constants (Table 1 "Parameters"; σ_data = 0.5 for CIFAR-10).
PAPER = {
    "vp": dict(beta_d=19.9, beta_min=0.1, epsilon_t=1e-5, M=1000),
    "ve": dict(sigma_min=0.02, sigma_max=100.0),
    "iddpm": dict(C_1=0.001, C_2=0.008, M=1000),
    "edm": dict(sigma_data=0.5),
}


# --- the paper's definitions, by hand --------------------------------------------------------------------------

def sigma_vp(t: float, beta_d: float = 19.9, beta_min: float = 0.1) -> float:
    """σ_vp(t) = sqrt(exp(½β_d t² + β_min t) − 1) (Table 1, VP)."""
    return math.sqrt(math.expm1(0.5 * beta_d * t * t + beta_min * t))


def sigma_vp_inv(sigma: float) -> float:
    """t with σ_vp(t) = σ, by bisection (σ_vp is increasing)."""
    lo, hi = 0.0, 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sigma_vp(mid) < sigma else (lo, mid)
    return 0.5 * (lo + hi)


@functools.cache
def iddpm_u_by_hand(M: int = 1000, C_1: float = 0.001, C_2: float = 0.008) -> tuple[float, ...]:
    """u_M = 0, u_{j−1} = sqrt((u_j² + 1)/max(ᾱ_{j−1}/ᾱ_j, C_1) − 1), ᾱ_j = sin²(½π j/(M(C_2 + 1))) (Table 1)."""
    def alpha_bar(j):
        return math.sin(0.5 * math.pi * j / (M * (C_2 + 1))) ** 2
    u = [0.0] * (M + 1)
    for j in range(M, 0, -1):
        u[j - 1] = math.sqrt((u[j] ** 2 + 1) / max(alpha_bar(j - 1) / alpha_bar(j), C_1) - 1)
    return tuple(u)


def nearest_j(sigma: float) -> int:
    u = iddpm_u_by_hand()
    return min(range(len(u)), key=lambda j: abs(u[j] - sigma))


def hand_coefficients(kind: str, sigma: float) -> tuple[float, float, float, float]:
    """(c_skip, c_out, c_in, c_noise) of Table 1 at σ with the paper's constants."""
    if kind == "vp":
        return 1.0, -sigma, 1 / math.sqrt(sigma**2 + 1), 999 * sigma_vp_inv(sigma)
    if kind == "ve":
        return 1.0, sigma, 1.0, math.log(0.5 * sigma)
    if kind == "iddpm":
        return 1.0, -sigma, 1 / math.sqrt(sigma**2 + 1), 999 - nearest_j(sigma)
    sd = PAPER["edm"]["sigma_data"]
    return sd**2 / (sigma**2 + sd**2), sigma * sd / math.sqrt(sigma**2 + sd**2), 1 / math.sqrt(sigma**2 + sd**2), \
        math.log(sigma) / 4


def coefficients(kind: str, sigmas) -> list[list[float]]:
    """The implementation's four coefficients at float64 σ, as lists of floats."""
    sigma = torch.tensor(sigmas, dtype=torch.float64)
    return [torch.broadcast_to(c, sigma.shape).tolist() for c in PRECONDS[kind](**PAPER[kind]).coefficients(sigma)]


# --- preconditioning (Table 1, Eq. 7) ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(PRECONDS))
def test_precond_coefficients_match_table_1_by_hand(kind):
    got = coefficients(kind, SIGMAS)
    for i, sigma in enumerate(SIGMAS):
        want = hand_coefficients(kind, sigma)
        for name, g, w in zip(("c_skip", "c_out", "c_in", "c_noise"), (c[i] for c in got), want):
            assert g == pytest.approx(w, rel=1e-8, abs=1e-12), f"{kind} {name} at sigma={sigma}"


def test_vp_c_noise_is_M_minus_1_times_the_inverse_schedule_at_literal_points():
    """σ = 1: t = (sqrt(β_min² + 2β_d ln 2) − β_min)/β_d = 0.258960…, c_noise = 999·t = 258.70…"""
    (_, _, _, c_noise), = zip(*coefficients("vp", [1.0]))
    t = (math.sqrt(0.1**2 + 2 * 19.9 * math.log(2)) - 0.1) / 19.9
    assert c_noise == pytest.approx(999 * t, rel=1e-12)
    assert c_noise == pytest.approx(258.70, abs=0.01)


def test_iddpm_u_sequence_has_the_papers_landmarks():
    """u_{j_0} with j_0 = 8 (Table 1, the sampler's first step) is ≈ 80.2; u_{M−1} ≈ 0.0064 is the smallest
    positive level; u_0 ≈ 2.03e4 (β clipped at 1 − C_1); u_M = 0. EDM's iDDPMPrecond builds the same u."""
    precond = PRECONDS["iddpm"](**PAPER["iddpm"])
    u = precond.u.tolist()
    assert u == pytest.approx(list(iddpm_u_by_hand()), rel=1e-10)
    assert u[8] == pytest.approx(80.2037, abs=1e-4)
    assert u[999] == pytest.approx(0.0064254, abs=1e-7)
    assert u[0] == pytest.approx(20291.17, abs=0.01)
    assert u[1000] == 0
    assert all(a > b for a, b in zip(u, u[1:]))


@pytest.mark.parametrize("kind, sigma_min, sigma_max", [
    ("vp", sigma_vp(1e-5), sigma_vp(1.0)),          # σ_vp(ε_t) ≈ 0.0010005, σ_vp(1) ≈ 152.17
    ("ve", 0.02, 100.0),
    ("iddpm", iddpm_u_by_hand()[999], iddpm_u_by_hand()[0]),
    ("edm", 0.0, math.inf),
])
def test_each_precond_supports_its_papers_sigma_range(kind, sigma_min, sigma_max):
    precond = PRECONDS[kind](**PAPER[kind])
    assert precond.sigma_min == pytest.approx(sigma_min, rel=1e-10)
    assert precond.sigma_max == pytest.approx(sigma_max, rel=1e-10)
    if kind == "vp":
        assert (round(precond.sigma_min, 7), round(precond.sigma_max, 2)) == (0.0010005, 152.17)


def test_iddpm_round_sigma_snaps_to_the_nearest_u_j_and_keeps_the_u_j():
    precond = PRECONDS["iddpm"](**PAPER["iddpm"])
    u = iddpm_u_by_hand()
    sigmas = SIGMAS + torch.logspace(-2.5, 2.5, 37, dtype=torch.float64).tolist()
    snapped = precond.round_sigma(torch.tensor(sigmas, dtype=torch.float64)).tolist()
    assert snapped == pytest.approx([u[nearest_j(s)] for s in sigmas], rel=1e-12)
    assert precond.round_sigma(precond.u).tolist() == precond.u.tolist()
    # σ = 0.002 lies nearer u_M = 0 than u_{M−1}: it snaps to 0 and c_noise = M − 1 − M = −1 (as in EDM's code).
    assert snapped[0] == 0 and coefficients("iddpm", [0.002])[3] == [-1.0]


@pytest.mark.parametrize("kind", ["vp", "ve", "edm"])
def test_continuous_preconds_do_not_round_sigma(kind):
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    assert torch.equal(PRECONDS[kind](**PAPER[kind]).round_sigma(sigma), sigma)


class HandF(torch.nn.Module):
    """A hand-built F(x; c_noise) = sin(x) + c_noise that records what it was called with."""

    def forward(self, x, c_noise, class_labels=None, augment_labels=None):
        self.seen = dict(x=x, c_noise=c_noise, class_labels=class_labels, augment_labels=augment_labels)
        return torch.sin(x) + c_noise.reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("kind", list(PRECONDS))
def test_denoiser_is_c_skip_x_plus_c_out_F_of_c_in_x_and_c_noise(kind):
    """EDM Eq. 7 around a hand-built F, one image per σ, with float64 inputs as the sampler passes them."""
    precond = PRECONDS[kind](**PAPER[kind])
    denoiser = Denoiser(HandF(), precond)
    x = torch.randn(len(SIGMAS), 2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    augment_labels = torch.ones(len(SIGMAS), 9)
    D = denoiser(x, torch.tensor(SIGMAS, dtype=torch.float64), None, augment_labels)
    assert D.dtype == torch.float32
    for i, sigma in enumerate(SIGMAS):
        c_skip, c_out, c_in, c_noise = hand_coefficients(kind, sigma)
        F = torch.sin(c_in * x[i]) + c_noise
        torch.testing.assert_close(D[i].double(), c_skip * x[i] + c_out * F, rtol=1e-5, atol=1e-5 * (1 + abs(c_out)))
        torch.testing.assert_close(denoiser.net.seen["x"][i].double(), c_in * x[i], rtol=1e-6, atol=1e-6)
        assert denoiser.net.seen["c_noise"][i].item() == pytest.approx(c_noise, rel=1e-5, abs=1e-5)
    assert denoiser.net.seen["augment_labels"] is augment_labels
    assert (denoiser.sigma_min, denoiser.sigma_max) == (precond.sigma_min, precond.sigma_max)


def test_denoiser_broadcasts_one_sigma_over_the_batch():
    denoiser = Denoiser(HandF(), PRECONDS["edm"](sigma_data=0.5))
    x = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(denoiser(x, 2.0), denoiser(x, torch.full((4,), 2.0)))
    assert denoiser.net.seen["c_noise"].shape == (4,)


# --- EDM's design choices (Eq. 8, App. B.6) ---------------------------------------------------------------------

@pytest.mark.parametrize("sigma_data", [0.5, 1.0, 0.2])
def test_edm_loss_weight_times_c_out_squared_is_one(sigma_data):
    sigma = torch.logspace(-3, 3, 61, dtype=torch.float64).reshape(-1, 1, 1, 1)
    _, c_out, _, _ = PRECONDS["edm"](sigma_data=sigma_data).coefficients(sigma)
    weight = LOSS_WEIGHTS["edm"](sigma, sigma_data=sigma_data)
    torch.testing.assert_close(weight * c_out**2, torch.ones_like(sigma), rtol=1e-12, atol=0)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_c_in_gives_the_network_unit_variance_inputs_when_std_of_data_is_sigma_data(sigma):
    """Var(c_in·(y + n)) = (σ_data² + σ²)/(σ² + σ_data²) = 1 for any data with std σ_data; here uniform data.
    z = c_in(y + n) has kurtosis ≤ 3, so the sample variance of N draws has standard error ≤ sqrt(2/N);
    the tolerance is 5 standard errors."""
    n, sigma_data = 200_000, 0.5
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(3) * sigma_data
    noise = torch.randn(n, generator=gen, dtype=torch.float64) * sigma
    _, _, c_in, _ = PRECONDS["edm"](sigma_data=sigma_data).coefficients(torch.tensor(sigma, dtype=torch.float64))
    assert (c_in * (y + noise)).var().item() == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))


# --- p_train(σ) (Table 1 "Noise distribution") ------------------------------------------------------------------

def draw_sigmas(p_train: str, n: int, seed: int = 0, overrides=()) -> torch.Tensor:
    """n noise levels from the paper's recipe for `p_train` (its own precond kind), constants filled by bind."""
    recipe = load_recipe(None, [f"precond.kind={p_train}", f"training.p_train={p_train}", *overrides])
    return recipe.bind(P_TRAIN[p_train])(n, torch.Generator().manual_seed(seed)).double()


def ks_pvalue(sample: torch.Tensor, dist: str, *args) -> float:
    return stats.kstest(sample.numpy(), dist, args=args).pvalue


def test_edm_p_train_is_log_normal_with_p_mean_and_p_std():
    """ln σ ~ N(P_mean, P_std²), P_mean = −1.2, P_std = 1.2; a mean off by 0.1·P_std is rejected."""
    log_sigma = draw_sigmas("edm", 20_000).log()
    assert ks_pvalue(log_sigma, "norm", -1.2, 1.2) > 0.01
    assert ks_pvalue(log_sigma, "norm", -1.2 + 0.12, 1.2) < 1e-6
    moved = draw_sigmas("edm", 20_000, overrides=["training.p_mean=0.4", "training.p_std=0.5"]).log()
    assert ks_pvalue(moved, "norm", 0.4, 0.5) > 0.01


def test_ve_p_train_is_log_uniform_between_sigma_min_and_sigma_max():
    """ln σ ~ U(ln σ_min, ln σ_max) with σ_min = 0.02, σ_max = 100."""
    log_sigma = draw_sigmas("ve", 20_000).log()
    lo, hi = math.log(0.02), math.log(100)
    assert ks_pvalue(log_sigma, "uniform", lo, hi - lo) > 0.01
    assert ks_pvalue(log_sigma, "uniform", lo, 0.95 * (hi - lo)) < 1e-6
    assert log_sigma.min() >= lo - 1e-6 and log_sigma.max() <= hi + 1e-6


def test_vp_p_train_is_sigma_vp_of_uniform_t_in_epsilon_t_to_1():
    """σ_vp⁻¹(σ) ~ U(ε_t, 1), ε_t = 1e-5, β_d = 19.9, β_min = 0.1."""
    sigma = draw_sigmas("vp", 20_000)
    t = ((0.1**2 + 2 * 19.9 * torch.log1p(sigma**2)).sqrt() - 0.1) / 19.9
    assert ks_pvalue(t, "uniform", 1e-5, 1 - 1e-5) > 0.01
    assert ks_pvalue(t**1.2, "uniform", 1e-5, 1 - 1e-5) < 1e-6
    assert sigma.min() >= sigma_vp(1e-5) * (1 - 1e-6) and sigma.max() <= sigma_vp(1.0) * (1 + 1e-6)


def test_iddpm_p_train_takes_u_0_to_u_M_minus_1_uniformly():
    """σ = u_j, j ~ U{0, …, M − 1}: every draw is one of u_0..u_{M−1} (never u_M = 0), and the counts of the
    M values pass a chi-square test of uniformity (50 expected per value)."""
    M, n = 1000, 50_000
    sigma = draw_sigmas("iddpm", n).float()
    index_of = {u_j: j for j, u_j in enumerate(torch.tensor(iddpm_u_by_hand(), dtype=torch.float32).tolist())}
    assert len(index_of) == M + 1
    j = torch.tensor([index_of.get(s, -1) for s in sigma.tolist()])
    assert j.min() >= 0, "every draw is one of the u_j"
    counts = torch.bincount(j, minlength=M + 1)
    assert counts[M] == 0
    assert stats.chisquare(counts[:M].numpy()).pvalue > 0.01


def test_p_train_draws_depend_only_on_the_generator():
    for name in P_TRAIN:
        assert torch.equal(draw_sigmas(name, 64, seed=3), draw_sigmas(name, 64, seed=3))
        assert not torch.equal(draw_sigmas(name, 64, seed=3), draw_sigmas(name, 64, seed=4))


# --- λ(σ) (Table 1 "Loss weighting", P2, min-SNR) ---------------------------------------------------------------

LOSS_WEIGHT_CASES = [
    ("inv-sigma2", {}, lambda s: 1 / s**2),
    ("edm", dict(sigma_data=0.5), lambda s: (s**2 + 0.25) / (0.5 * s) ** 2),
    ("edm", dict(sigma_data=1.3), lambda s: (s**2 + 1.69) / (1.3 * s) ** 2),
    ("p2", dict(p2_k=1.0, p2_gamma=1.0), lambda s: s**-2 / (1 + s**-2)),
    ("p2", dict(p2_k=1.0, p2_gamma=0.5), lambda s: s**-2 / math.sqrt(1 + s**-2)),
    ("p2", dict(p2_k=0.5, p2_gamma=2.0), lambda s: s**-2 / (0.5 + s**-2) ** 2),
    ("min-snr", dict(snr_gamma=5.0), lambda s: min(s**-2, 5.0)),
    ("soft-min-snr", dict(sigma_data=0.5), lambda s: 1 / (s**2 + 0.25)),
]


@pytest.mark.parametrize("name, constants, formula", LOSS_WEIGHT_CASES, ids=lambda c: str(c)[:20])
def test_each_loss_weight_matches_its_formula(name, constants, formula):
    sigmas = SIGMAS + [0.3, 0.447, 0.448, 3.0]  # 1/sqrt(5) ≈ 0.4472 is min-SNR-5's kink
    got = LOSS_WEIGHTS[name](torch.tensor(sigmas, dtype=torch.float64), **constants).tolist()
    assert got == pytest.approx([formula(s) for s in sigmas], rel=1e-12)


def test_p2_with_gamma_1_and_k_1_is_one_over_sigma2_times_1_plus_inverse_sigma2():
    sigma = torch.logspace(-3, 3, 61, dtype=torch.float64)
    weight = LOSS_WEIGHTS["p2"](sigma, p2_k=1.0, p2_gamma=1.0)
    torch.testing.assert_close(weight, 1 / (sigma**2 * (1 + sigma**-2)), rtol=1e-12, atol=0)


def test_p2_with_gamma_0_is_the_plain_inverse_sigma2_weight():
    sigma = torch.logspace(-3, 3, 61, dtype=torch.float64)
    torch.testing.assert_close(LOSS_WEIGHTS["p2"](sigma, p2_k=1.0, p2_gamma=0.0), LOSS_WEIGHTS["inv-sigma2"](sigma))


# --- Recipe.bind ------------------------------------------------------------------------------------------------

def test_bind_fills_an_implementations_constants_from_the_recipe():
    recipe = load_recipe(None, ["precond.kind=iddpm", "precond.M=500", "precond.sigma_data=0.25",
                                "training.p_mean=-1.0", "training.p2_gamma=0.5"])
    precond = recipe.bind(PRECONDS["iddpm"])
    assert isinstance(precond, PRECONDS["iddpm"]) and precond.M == 500 and len(precond.u) == 501
    assert recipe.bind(P_TRAIN["edm"]).keywords == dict(p_mean=-1.0, p_std=1.2)
    assert recipe.bind(P_TRAIN["iddpm"]).keywords == dict(C_1=0.001, C_2=0.008, M=500)
    assert recipe.bind(LOSS_WEIGHTS["p2"]).keywords == dict(p2_k=1.0, p2_gamma=0.5)
    assert recipe.bind(LOSS_WEIGHTS["edm"])(torch.tensor(1.0)).item() == pytest.approx((1 + 0.0625) / 0.0625)
    assert recipe.bind(PRECONDS["edm"]).sigma_data == 0.25


@pytest.mark.parametrize("kind", list(PRECONDS))
def test_bind_gives_each_precond_the_papers_constants_by_default(kind):
    precond = load_recipe(None, [f"precond.kind={kind}"]).bind(PRECONDS[kind])
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    for got, want in zip(precond.coefficients(sigma), PRECONDS[kind](**PAPER[kind]).coefficients(sigma)):
        assert torch.equal(torch.broadcast_to(got, sigma.shape), torch.broadcast_to(want, sigma.shape))


def test_a_p_train_whose_constants_the_precond_kind_lacks_is_a_user_error():
    with pytest.raises(UserError, match="precond.beta_d"):
        load_recipe(None, ["precond.kind=edm", "training.p_train=vp"])


# --- the loss (Eq. 2, Eq. 8) ------------------------------------------------------------------------------------

class Recording(torch.nn.Module):
    """A denoiser D(x; σ) = x/2 that records its inputs."""

    def forward(self, x, sigma, class_labels=None, augment_labels=None):
        self.seen = dict(x=x, sigma=sigma, class_labels=class_labels, augment_labels=augment_labels)
        return x / 2


def test_loss_is_lambda_times_squared_error_of_the_denoised_noisy_images():
    """λ(σ)(D(y + n; σ) − y)² per element, with n ~ N(0, σ²I) drawn per image and σ from p_train."""
    y = torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5
    loss_fn = DenoisingLoss(functools.partial(P_TRAIN["edm"], p_mean=-1.2, p_std=1.2), LOSS_WEIGHTS["inv-sigma2"])
    denoiser = Recording()
    loss, sigma = loss_fn(denoiser, y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(denoiser.seen["sigma"], sigma)
    x = denoiser.seen["x"]
    torch.testing.assert_close(loss, (x / 2 - y) ** 2 / sigma.reshape(-1, 1, 1, 1) ** 2)
    unit_noise = (x - y) / sigma.reshape(-1, 1, 1, 1)
    assert unit_noise.mean().item() == pytest.approx(0, abs=5 / 128)        # 16384 draws: 5 standard errors
    assert unit_noise.std().item() == pytest.approx(1, abs=5 * math.sqrt(2 / 16384))
    again, _ = loss_fn(Recording(), y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(loss, again)


def test_loss_trains_on_the_augmented_image_and_tells_the_network_the_augmentation():
    """The target is the augmented y, and its label reaches D (EDM App. B.4: non-leaky augmentation)."""
    def flip_all(images, generator):
        return images.flip(3), torch.ones(images.shape[0], 9)
    y = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loss_fn = DenoisingLoss(functools.partial(P_TRAIN["edm"], p_mean=-1.2, p_std=1.2), LOSS_WEIGHTS["inv-sigma2"],
                            augment=flip_all)
    denoiser = Recording()
    loss, sigma = loss_fn(denoiser, y, labels=torch.eye(4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, (denoiser.seen["x"] / 2 - y.flip(3)) ** 2 / sigma.reshape(-1, 1, 1, 1) ** 2)
    assert torch.equal(denoiser.seen["augment_labels"], torch.ones(4, 9))
    assert torch.equal(denoiser.seen["class_labels"], torch.eye(4))


def test_edm_weighted_loss_is_the_plain_error_of_F_against_its_effective_target():
    """Eq. 8: λ(σ)‖D − y‖² = ‖F(c_in(y + n); c_noise) − (y − c_skip(y + n))/c_out‖² when λ = 1/c_out²."""
    precond = PRECONDS["edm"](sigma_data=0.5)
    denoiser = Denoiser(HandF(), precond)
    y = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5
    loss_fn = DenoisingLoss(functools.partial(P_TRAIN["edm"], p_mean=-1.2, p_std=1.2),
                            functools.partial(LOSS_WEIGHTS["edm"], sigma_data=0.5))
    loss, sigma = loss_fn(denoiser, y, generator=torch.Generator().manual_seed(1))
    c_skip, c_out, c_in, c_noise = precond.coefficients(sigma.reshape(-1, 1, 1, 1))
    x = denoiser.net.seen["x"] / c_in  # y + n
    F = torch.sin(c_in * x) + c_noise
    torch.testing.assert_close(loss, (F - (y - c_skip * x) / c_out) ** 2, rtol=1e-4, atol=1e-5)


# --- one optimisation step lowers the loss, for every precond × p_train × λ --------------------------------------

TINY_NET = dict(img_resolution=8, in_channels=1, out_channels=1, model_channels=16, channel_mult=[1, 2],
                num_blocks=1, attn_resolutions=[4], dropout=0.0)


@pytest.fixture(scope="module")
def tiny_net():
    """One tiny DDPM++ and its initial weights; one thread, which is fastest at this size and keeps the 80 steps
    quick on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build_network("ddpmpp", **TINY_NET).train()
    yield net, {k: v.clone() for k, v in net.state_dict().items()}
    torch.set_num_threads(threads)


def combination_recipe(kind: str, p_train: str, loss_weight: str):
    """The recipe for one combination, with the constants p_train needs set in [precond] (the paper's values)."""
    own = {name: value for name, value in PAPER[p_train].items() if name != "sigma_data"}
    overrides = [f"precond.kind={kind}", f"training.p_train={p_train}", f"training.loss_weight={loss_weight}"]
    return load_recipe(None, overrides + [f"precond.{name}={value}" for name, value in own.items()])


@pytest.mark.parametrize("loss_weight", list(LOSS_WEIGHTS))
@pytest.mark.parametrize("p_train", list(P_TRAIN))
@pytest.mark.parametrize("kind", list(PRECONDS))
def test_one_adam_step_lowers_the_loss(tiny_net, kind, p_train, loss_weight):
    """Same batch, same σ and noise (same generator seed) before and after one small Adam step."""
    net, initial = tiny_net
    net.load_state_dict(initial)
    net.zero_grad(set_to_none=True)
    recipe = combination_recipe(kind, p_train, loss_weight)
    denoiser = Denoiser(net, recipe.bind(PRECONDS[kind]))
    loss_fn = DenoisingLoss(recipe.bind(P_TRAIN[p_train]), recipe.bind(LOSS_WEIGHTS[loss_weight]))
    y = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * recipe.precond.sigma_data

    def loss_value():
        loss, _ = loss_fn(denoiser, y, generator=torch.Generator().manual_seed(1))
        return loss.mean()

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    before = loss_value()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_value()
    assert torch.isfinite(before) and after < before
