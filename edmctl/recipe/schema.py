"""The recipe: one pydantic section per part of EDM Table 1. Every axis's allowed values come from the table
that maps its names to implementations, so adding a solver or a weighting is one function plus one line.
"""

import functools
import hashlib
import inspect
import json
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edmctl.data.images import MAX_RESOLUTION
from edmctl.design.discretizations import DISCRETIZATIONS, default_sigma_range, iddpm_u
from edmctl.design.loss_weights import LOSS_WEIGHTS
from edmctl.design.p_train import P_TRAIN
from edmctl.design.precond import PRECONDS
from edmctl.design.scalings import SCALINGS
from edmctl.design.schedules import SCHEDULES
from edmctl.design.solvers import CHURN_SOLVERS, MAX_ORDER, SIGMA_ONLY_SOLVERS, SOLVERS
from edmctl.networks import ARCH_DEFAULTS, NETWORKS
from edmctl.sampling.writers import GRID_MAX_IMAGES


def one_of(table) -> type:
    """A Literal type whose allowed values are the table's names."""
    return Literal[tuple(table)]  # type: ignore[valid-type]


def constants_of(fn) -> list[str]:
    """The keyword-only constants an implementation needs (its recipe field names)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


# Every number in a recipe has a finite range, generous for research yet small enough that the float64 sampler and
# float32 networks stay finite (issue 13: inf, 1e308 and 1e-320 gave NaN samples recorded as done). Floats are
# finite unless a field says otherwise (`allow_inf_nan`, only S_tmax = inf: "churn at every level").
# Noise levels: the paper's widest range is VE's [0.002, 100] and iDDPM's u_0 is 2e4; σ² stays far inside float32,
# and σ^(1/ρ), σ^ρ inside float64 for ρ in [RHO_LO, RHO_HI].
SIGMA_LO, SIGMA_HI = 1e-5, 1e5
RHO_LO, RHO_HI = 0.1, 1000.0  # ρ = 7 in the paper, Fig. 13 sweeps 1..∞-like; 1000 is already the geometric limit
STEPS_MAX = 10_000  # N: the paper's largest ablation uses NFE 1023 (512 steps); DDPM samples with 1000
LN_SIGMA_MAX = 12.0  # |P_mean|: ln σ of training noise within ln of SIGMA_LO..SIGMA_HI (±11.5)
KIMG_MAX = 1e9  # durations in thousands of images: the paper's longest run is 2.5e6 kimg (ImageNet)
BATCH_MAX = 1 << 20  # images per step: the paper's largest batch is 4096
SEED_LIMIT = 1 << 48  # training.seed << 16 (+ rank) seeds torch generators, which take 64-bit seeds
WIDTH_MAX = 4096  # channels: ADM's widest layer is 4 x 192 = 768
MULTIPLIER_MAX = 1e9  # augmentation multipliers: p·multiplier is clipped to 1; the paper's xflip is 1e8
FID_IMAGES_MAX = 10_000_000  # images per FID measurement: the paper uses 50,000 x 3
FID_REPEATS_MAX = 100  # seed blocks per FID measurement: the paper uses 3


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, allow_inf_nan=False)


# The solver-specific [sampler] fields: unset (None) unless the solver takes them (its keyword-only parameters),
# then filled with these defaults — k-diffusion's η = 1, UniPC's bh2, Restart's CIFAR-10 settings (Xu et al. 2023,
# Table 3: N_restart = 3, K = 2, t_min = 0.06, t_max = 0.30, γ = 0.05); `order` defaults to the solver's highest.
SOLVER_FIELD_DEFAULTS = dict(order=None, unipc_variant="bh2", eta=1.0, restart_k=2, restart_steps=3, restart_tmin=0.06,
                             restart_tmax=0.30, restart_gamma=0.05)


class Sampler(Section):
    """How to sample: EDM Algorithm 2 and its ablations (Table 1, sampling rows), and the solvers beyond it."""

    solver: one_of(SOLVERS) = "heun"
    alpha: float = Field(1.0, gt=0, le=1, description="2nd-order point of the Heun step; 1 = Heun")
    disc: one_of(DISCRETIZATIONS) = "edm"
    schedule: one_of(SCHEDULES) = "linear"
    scaling: one_of(SCALINGS) = "none"
    steps: int = Field(18, ge=1, le=STEPS_MAX)
    rho: float = Field(7.0, ge=RHO_LO, le=RHO_HI)
    sigma_min: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI, description="unset: the discretization's default")
    sigma_max: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI, description="unset: the discretization's default")
    sigmas: list[float] | None = Field(None, min_length=1, max_length=STEPS_MAX, description="disc 'table' only: σ_0 > … > σ_{N−1} > 0")
    s_churn: float = Field(0.0, ge=0, le=1000, description="the paper's largest is 80; γ_i is capped at √2 − 1 anyway")
    s_tmin: float = Field(0.0, ge=0, le=SIGMA_HI)
    s_tmax: float = Field(math.inf, ge=0, allow_inf_nan=True, description="inf (the default): no upper limit")
    s_noise: float = Field(1.0, ge=0, le=10, description="the paper uses 1.000 to 1.007")
    order: int | None = Field(None, ge=1, description="unipc (<= 3), ipndm (<= 4): multistep order; unset: the highest")
    unipc_variant: Literal["bh1", "bh2"] | None = Field(None, description="unipc: B(h) = h (bh1) or e^h - 1 (bh2)")
    eta: float | None = Field(None, ge=0, le=10, description="ancestral and SDE solvers: noise η (k-diffusion); unset: 1")
    restart_k: int | None = Field(None, ge=1, le=1000, description="restart: K, restarts of the interval")
    restart_steps: int | None = Field(None, ge=2, le=STEPS_MAX, description="restart: N_restart, Heun levels from t_max to t_min")
    restart_tmin: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI, description="restart: t_min (the nearest main step is used)")
    restart_tmax: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI, description="restart: t_max, the noise level jumped to")
    restart_gamma: float | None = Field(None, ge=0, le=10, description="restart: churn γ of the restart steps")

    @model_validator(mode="after")
    def _consistent(self):
        self._check_table()
        lo, hi = default_sigma_range(self.disc, self.sigmas)
        lo = lo if self.sigma_min is None else self.sigma_min
        hi = hi if self.sigma_max is None else self.sigma_max
        if lo >= hi and self.disc != "table":
            raise ValueError(f"sampler.sigma_min ({lo:g}) must be below sampler.sigma_max ({hi:g})")
        if self.disc == "iddpm":
            _check_iddpm_levels(lo, hi)
        if self.s_tmin > self.s_tmax:
            raise ValueError(f"sampler.s_tmin ({self.s_tmin:g}) must not exceed sampler.s_tmax ({self.s_tmax:g})")
        if self.solver in SIGMA_ONLY_SOLVERS and (self.schedule, self.scaling) != ("linear", "none"):
            raise ValueError(
                f"sampler.solver = '{self.solver}' needs sampler.schedule = 'linear' and sampler.scaling = "
                f"'none' (got '{self.schedule}' and '{self.scaling}'); use euler, heun, ipndm or restart for other schedules"
            )
        if self.s_churn > 0 and self.solver not in CHURN_SOLVERS:
            raise ValueError(f"sampler.s_churn > 0 needs solver {', '.join(sorted(CHURN_SOLVERS))} (got '{self.solver}')")
        if self.alpha != 1 and self.solver != "heun":
            raise ValueError(f"sampler.alpha applies to solver heun only (got solver '{self.solver}')")
        self._fill_solver_fields()
        return self

    def _check_table(self):
        """`sigmas` goes with disc 'table' and nothing else: N positive, finite, strictly decreasing levels."""
        if (self.disc == "table") != (self.sigmas is not None):
            raise ValueError("sampler.disc = 'table' and sampler.sigmas go together: set both or neither"
                             f" (got disc '{self.disc}', sigmas {'set' if self.sigmas else 'unset'})")
        if self.sigmas is None:
            return
        values = self.sigmas
        if not all(SIGMA_LO <= v <= SIGMA_HI for v in values) or any(a <= b for a, b in zip(values, values[1:])):
            raise ValueError(f"sampler.sigmas must be finite, > 0 and strictly decreasing, within [{SIGMA_LO:g}, "
                             f"{SIGMA_HI:g}] (got {values})")
        if len(values) != self.steps:
            raise ValueError(f"sampler.steps ({self.steps}) must equal the number of sampler.sigmas ({len(values)})")
        if self.sigma_min is not None or self.sigma_max is not None:
            raise ValueError("sampler.sigma_min/sigma_max do not apply to disc 'table': its sigmas are the levels")

    def _fill_solver_fields(self):
        """Refuse solver fields the solver does not take; fill in the defaults of those it does."""
        takes = constants_of(SOLVERS[self.solver])
        for name, default in SOLVER_FIELD_DEFAULTS.items():
            value = getattr(self, name)
            if name not in takes:
                if value is not None:
                    users = [s for s, fn in SOLVERS.items() if name in constants_of(fn)]
                    raise ValueError(f"sampler.{name} applies to solver {', '.join(users)} only (got solver '{self.solver}')")
            elif value is None:
                object.__setattr__(self, name, MAX_ORDER[self.solver] if name == "order" else default)
        if self.order is not None and self.order > MAX_ORDER[self.solver]:
            raise ValueError(f"sampler.order for solver {self.solver} must be 1..{MAX_ORDER[self.solver]} (got {self.order})")
        if self.restart_tmin is not None and self.restart_tmin >= self.restart_tmax:
            raise ValueError(f"sampler.restart_tmin ({self.restart_tmin:g}) must be below sampler.restart_tmax ({self.restart_tmax:g})")


def _check_iddpm_levels(lo: float, hi: float) -> None:
    """The iDDPM discretization picks its levels among the u_j inside [σ_min, σ_max]: there must be one."""
    u = iddpm_u()
    if not ((u >= lo) & (u <= hi)).any():
        raise ValueError(f"sampler.sigma_min..sigma_max ({lo:g}..{hi:g}) holds no level of the iddpm discretization "
                         f"(its levels u_j run from {u[u > 0].min().item():.4g} to {u.max().item():.4g}); widen the range")


PRECOND_DEFAULTS = {
    "vp": dict(beta_d=19.9, beta_min=0.1, epsilon_t=1e-5, M=1000),
    "ve": dict(sigma_min=0.02, sigma_max=100.0),
    "iddpm": dict(C_1=0.001, C_2=0.008, M=1000),
    "edm": dict(),  # sigma_data is always set: it describes the data
}


class Precond(Section):
    """Preconditioning and its constants (Table 1). The kind's own constants are filled in with the paper's
    values; constants of other kinds may be set too, for a p_train or λ(σ) that needs them."""

    kind: one_of(PRECONDS) = "edm"
    sigma_data: float = Field(0.5, ge=1e-4, le=1e4, description="std of the data; used by the EDM precond and λ(σ)")
    beta_d: float | None = Field(None, gt=0, le=100, description="VP: 19.9; σ(1) = sqrt(exp(β_d/2 + β_min) − 1)")
    beta_min: float | None = Field(None, ge=0, le=10)
    epsilon_t: float | None = Field(None, ge=1e-10, lt=1)
    M: int | None = Field(None, ge=2, le=100_000, description="VP and iDDPM: 1000")
    sigma_min: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI)
    sigma_max: float | None = Field(None, ge=SIGMA_LO, le=SIGMA_HI)
    C_1: float | None = Field(None, ge=1e-6, le=1, description="iDDPM: 0.001")
    C_2: float | None = Field(None, ge=0, le=1, description="iDDPM: 0.008")
    precision: Literal["float64", "float32"] = Field(
        "float64", description="VP σ⁻¹ and σ range, iDDPM u_j table: float64, or float32 as NVlabs/edm (imported networks)")

    @model_validator(mode="after")
    def _fill_kind_constants(self):
        for name, value in PRECOND_DEFAULTS[self.kind].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.sigma_min is not None and self.sigma_max is not None and self.sigma_min >= self.sigma_max:
            raise ValueError(f"precond.sigma_min ({self.sigma_min:g}) must be below precond.sigma_max ({self.sigma_max:g})")
        return self


class Training(Section):
    """The training objective (Table 1: p_train, λ(σ)) and the loop's hyperparameters (EDM Table 7)."""

    p_train: one_of(P_TRAIN) = "edm"
    p_mean: float = Field(-1.2, ge=-LN_SIGMA_MAX, le=LN_SIGMA_MAX)
    p_std: float = Field(1.2, gt=0, le=5, description="ln σ ~ N(P_mean, P_std²); 5 already spans e^±15")
    loss_weight: one_of(LOSS_WEIGHTS) = "edm"
    p2_k: float = Field(1.0, ge=0, le=100)
    p2_gamma: float = Field(1.0, ge=0, le=100)
    snr_gamma: float = Field(5.0, gt=0, le=1000)
    lr: float = Field(10e-4, gt=0, le=1, description="Adam diverges far below 1; the paper uses 1e-4..2e-4 (and 1e-3)")
    betas: list[float] = Field([0.9, 0.999], min_length=2, max_length=2)
    eps: float = Field(1e-8, gt=0, le=1)
    lr_rampup_kimg: float = Field(10000.0, ge=0, le=KIMG_MAX)
    batch: int = Field(512, ge=1, le=BATCH_MAX)
    batch_gpu: int | None = Field(None, ge=1, le=BATCH_MAX, description="per-device batch; smaller than batch/devices accumulates gradients")
    duration_kimg: float = Field(200000.0, gt=0, le=KIMG_MAX, description="at least one batch")
    ema_halflife_kimg: float = Field(500.0, ge=0, le=KIMG_MAX)
    ema_rampup_ratio: float = Field(0.05, ge=0, le=1000, description="EMA half-life <= cur_nimg x ratio early on; 0: no ramp-up")
    dropout: float = Field(0.13, ge=0, lt=1)
    label_dropout: float = Field(0.0, ge=0, le=1)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    tick_kimg: float = Field(50.0, gt=0, le=KIMG_MAX)
    snapshot_kimg: float = Field(2500.0, gt=0, le=KIMG_MAX)
    grid_kimg: float = Field(0.0, ge=0, le=KIMG_MAX, description="a grid of seeds 0..grid_seeds-1 from the EMA every this many kimg and at the end; 0: none")
    grid_seeds: int = Field(64, ge=1, le=GRID_MAX_IMAGES)
    tensorboard: bool = Field(False, description="TensorBoard event files in the run's folder (the extra edmctl[tensorboard])")
    compile: bool = False

    @model_validator(mode="after")
    def _consistent(self):
        if any(not 0 <= b < 1 for b in self.betas):
            raise ValueError(f"training.betas must lie in [0, 1) (got {self.betas})")
        if self.duration_kimg * 1000 < self.batch:
            raise ValueError(f"training.duration_kimg ({self.duration_kimg:g}) is less than one batch of "
                             f"training.batch = {self.batch} images ({self.batch / 1000:g} kimg)")
        for field in ("tick_kimg", "snapshot_kimg", "grid_kimg"):
            check_interval(f"training.{field}", getattr(self, field), self.batch)
        if self.batch_gpu is not None and self.batch % self.batch_gpu:
            raise ValueError(f"training.batch ({self.batch}) must be a multiple of training.batch_gpu ({self.batch_gpu})")
        return self


class Augment(Section):
    """Non-leaky augmentation (EDM App. B.4): each transform applies with probability min(1, p·multiplier);
    a multiplier of 0 switches it off."""

    p: float = Field(0.0, ge=0, le=1)
    xflip: float = Field(1e8, ge=0, le=MULTIPLIER_MAX)
    yflip: float = Field(1.0, ge=0, le=MULTIPLIER_MAX)
    scale: float = Field(1.0, ge=0, le=MULTIPLIER_MAX)
    rotate: float = Field(1.0, ge=0, le=MULTIPLIER_MAX)
    aniso: float = Field(1.0, ge=0, le=MULTIPLIER_MAX)
    translate: float = Field(1.0, ge=0, le=MULTIPLIER_MAX)
    scale_std: float = Field(0.2, ge=0, le=10, description="log2 std of isotropic scale: A_scale = 2^0.2")
    aniso_std: float = Field(0.2, ge=0, le=10, description="log2 std of anisotropic scale: A_aniso = 2^0.2")
    translate_std: float = Field(0.125, ge=0, le=10, description="std of translation in image sizes: A_trans = 1/8")


class Network(Section):
    """The network F (Table 1, "Architecture of F"): unset size fields take the architecture's defaults."""

    arch: one_of(NETWORKS) = "ddpmpp"
    model_channels: int | None = Field(None, ge=1, le=WIDTH_MAX)
    channel_mult: list[Annotated[int, Field(ge=1, le=64)]] | None = Field(None, min_length=1, max_length=16)
    channel_mult_emb: int | None = Field(None, ge=1, le=64)
    channel_mult_noise: int | None = Field(None, ge=1, le=64)
    num_blocks: int | None = Field(None, ge=1, le=64)
    attn_resolutions: list[int] | None = None
    embedding_type: str | None = None
    encoder_type: str | None = None
    decoder_type: str | None = None
    resample_filter: list[Annotated[int, Field(ge=0, le=1000)]] | None = Field(None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _fill_arch_defaults(self):
        for name, value in ARCH_DEFAULTS[self.arch].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        return self


class Data(Section):
    """The training data: `digits` (bundled), an EDM dataset zip or folder, an image folder, or an npz."""

    source: str = "digits"
    resolution: int | None = Field(None, ge=1, le=MAX_RESOLUTION, description="unset: as the data says")
    channels: int | None = Field(None, ge=1, le=4, description="unset: as the data says")
    conditional: bool = False
    max_images: int | None = Field(None, ge=1)


class Eval(Section):
    """FID settings (EDM App. F: 50k images, best of 3 repeats, TF-compatible Inception)."""

    detector: str = "inception"
    protocol: Literal["edm", "clean"] = "edm"
    num: int = Field(50000, ge=2, le=FID_IMAGES_MAX)
    repeats: int = Field(3, ge=1, le=FID_REPEATS_MAX)
    ref: str | None = None
    batch: int = Field(64, ge=1, le=BATCH_MAX)
    every_kimg: float = Field(0.0, ge=0, le=KIMG_MAX, description="during training, FID of seeds 0..num-1 from the EMA every this many kimg and at the end; 0: never")

    @model_validator(mode="after")
    def _ref_for_training_fid(self):
        if self.every_kimg > 0 and self.ref is None:
            raise ValueError(f"eval.every_kimg = {self.every_kimg:g} needs eval.ref, the reference statistics (make them with "
                             f"`edmctl fid ref DATA --detector {self.detector} --out STATS.npz`)")
        return self


TRAINED_IMAGE_EVALS = 3  # a trained image costs a forward and a backward pass: about three network evaluations


def fid_series_cost(recipe) -> tuple[int, int, int, int]:
    """(FIDs, NFE, network evaluations of the series, of the training) for `eval.every_kimg`: a FID at every
    multiple of it and at the end of `training.duration_kimg`, each of eval.num images sampled at the recipe's NFE."""
    from edmctl.design.sampler import nfe_of

    images, every = round(recipe.training.duration_kimg * 1000), max(1, round(recipe.eval.every_kimg * 1000))
    fids, nfe = -(-images // every), nfe_of(recipe.sampler)
    return fids, nfe, fids * recipe.eval.num * nfe, images * TRAINED_IMAGE_EVALS


def fid_series_warning(recipe) -> str | None:
    """What the `eval.every_kimg` series costs where that is more network evaluations than the training; else None."""
    if recipe.eval.every_kimg <= 0:
        return None
    fids, nfe, series, training = fid_series_cost(recipe)
    if series <= training:
        return None
    return (f"eval.every_kimg = {recipe.eval.every_kimg:g} takes {fids:,} FID(s) of eval.num = {recipe.eval.num:,} "
            f"images at {nfe} network evaluations each: {series / training:,.1f}x the network evaluations of training "
            f"{recipe.training.duration_kimg:g} kimg; eval.num = {max(2, training // (fids * nfe)):,} or less, or a "
            f"larger eval.every_kimg, costs no more than the training")


def check_interval(name: str, kimg: float, batch: int) -> None:
    """An event every `kimg` (0: never) falls between optimizer steps, so a positive interval under one batch (1e-300)
    can only mean every step: refused, naming the smallest interval there is."""
    if 0 < kimg * 1000 < batch:
        raise ValueError(f"{name} ({kimg:g}) is less than one batch of training.batch = {batch} images ({batch / 1000:g} "
                         f"kimg), the smallest interval there is (every step)")


class Recipe(Section):
    """A point in the design space, with everything needed to train, sample and evaluate it."""

    sampler: Sampler = Sampler()
    precond: Precond = Precond()
    training: Training = Training()
    augment: Augment = Augment()
    network: Network = Network()
    data: Data = Data()
    eval: Eval = Eval()

    @model_validator(mode="after")
    def _fid_series_affordable(self):
        """A FID series dearer than the training on eval.num's default — the paper's 50,000 images, meant for one
        final FID — is an oversight, refused; with eval.num given, training warns instead (`fid_series_warning`)."""
        check_interval("eval.every_kimg", self.eval.every_kimg, self.training.batch)
        warning = fid_series_warning(self)
        if warning and "num" not in self.eval.model_fields_set:
            raise ValueError(f"{warning} (eval.num is at its default, meant for the paper's one final FID: set it, "
                             f"and measure that FID once at the end with `edmctl fid RUN`)")
        return self

    @model_validator(mode="after")
    def _constants_available(self):
        for field, table in (("p_train", P_TRAIN), ("loss_weight", LOSS_WEIGHTS)):
            choice = getattr(self.training, field)
            missing = [c for c in constants_of(table[choice]) if self.constant(c) is None]
            if missing:
                raise ValueError(
                    f"training.{field} = '{choice}' needs {', '.join('precond.' + m for m in missing)}, which "
                    f"precond.kind = '{self.precond.kind}' does not set: set them in [precond] or change the kind"
                )
        return self

    def constant(self, name: str):
        """A named constant from [training] or [precond] (p_mean, sigma_data, beta_d, …)."""
        for section in (self.training, self.precond):
            if name in type(section).model_fields:
                return getattr(section, name)
        raise KeyError(name)

    def constants_for(self, fn) -> dict:
        """The keyword constants `fn` (a p_train, λ or precond implementation) needs, from this recipe."""
        return {name: self.constant(name) for name in constants_of(fn)}

    def bind(self, fn):
        """`fn` with its constants from this recipe filled in: `recipe.bind(P_TRAIN["edm"])(n, generator)`."""
        constants = self.constants_for(fn)
        return fn(**constants) if inspect.isclass(fn) else functools.partial(fn, **constants)

    def canonical(self) -> dict:
        """Every field filled in, as plain data (sorted when serialised)."""
        return self.model_dump(mode="python")

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), allow_nan=True)

    def hash(self) -> str:
        """sha256 of the canonical form: equal for files that mean the same recipe."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()
