"""Sampling as the paper and the issue claim it: per-seed noise, convergence orders, NFE, outputs."""

import numpy as np
import pytest
import torch
from PIL import Image

from edmctl.errors import UserError
from edmctl.models import GaussianDataDenoiser, GaussianMixtureDenoiser
from edmctl.recipe import load_recipe
from edmctl.sampling import SeedNoise, parse_seeds, sample, to_uint8, write_samples
from edmctl.sampling import writers


def sampler(**fields):
    """The recipe's [sampler] section with `fields` set through overrides, as the CLI does."""
    return load_recipe(None, overrides=[f"sampler.{k}={v!r}" if isinstance(v, str) else f"sampler.{k}={v}" for k, v in fields.items()]).sampler


@pytest.fixture(scope="module")
def mixture():
    images = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    return GaussianMixtureDenoiser(images, std=0.2)


@pytest.fixture(scope="module")
def gaussian():
    g = torch.Generator().manual_seed(0)
    mean = 0.5 * torch.randn(1, 4, 4, generator=g, dtype=torch.float64)
    return GaussianDataDenoiser(mean, 0.2 + 1.3 * torch.rand(1, 4, 4, generator=g, dtype=torch.float64))


# --- seeds -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("1,2,5-7", [1, 2, 5, 6, 7]), ("42", [42]), (" 3 , 9 ", [3, 9])])
def test_seeds_in_nvlabs_syntax(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [("", "not a seed"), ("1,,2", "not a seed"), ("-1", "not a seed"), ("a-b", "not a seed"),
                                           ("5-2", "backwards"), ("1,2,1", "more than once"), ("0-3,2", "more than once")])
def test_bad_seeds_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_seeds(text)


# --- noise that depends on the seed alone ------------------------------------------------------------------

def test_noise_of_an_image_depends_on_its_seed_alone():
    batch = SeedNoise([7, 2**32 + 3], (2, 3, 3))
    latents, churn = batch.latents(), batch()
    for i, seed in enumerate([7, 3]):
        g = torch.Generator().manual_seed(seed)
        assert latents.dtype == torch.float64
        assert torch.equal(latents[i], torch.randn([2, 3, 3], generator=g).to(torch.float64))
        assert torch.equal(churn[i], torch.randn([2, 3, 3], generator=g, dtype=torch.float64))


def test_class_label_is_the_draw_after_the_latent_and_class_override_keeps_the_noise():
    drawn, forced = SeedNoise([11, 12], (1, 2, 2)), SeedNoise([11, 12], (1, 2, 2))
    drawn.latents(), forced.latents()
    labels = drawn.class_labels(10)
    g = torch.Generator().manual_seed(11)
    torch.randn([1, 2, 2], generator=g)
    assert labels.shape == (2, 10) and labels[0].argmax() == torch.randint(10, size=[], generator=g)
    assert torch.equal(forced.class_labels(10, class_label=4).argmax(1), torch.tensor([4, 4]))
    assert torch.equal(drawn(), forced())
    assert drawn.class_labels(0) is None


@pytest.mark.parametrize("solver", ["euler", "heun", "dpmpp-2m"])
def test_image_is_the_same_whatever_the_batch_and_order(mixture, solver):
    assert_depends_on_seed_alone(mixture, sampler(solver=solver, steps=6, **({"s_churn": 10.0} if solver != "dpmpp-2m" else {})))


def assert_depends_on_seed_alone(model, settings) -> torch.Tensor:
    """Seeds sampled in one batch, in reverse order in batches of 2, and one by one give the same images (to
    rounding: BLAS blocks differ per batch size); returns the one-batch samples."""
    seeds = [5, 1, 9, 2, 7]
    one_batch = sample(model, settings, seeds, batch=5).samples
    reordered = sample(model, settings, seeds[::-1], batch=2).samples.flip(0)
    singles = torch.cat([sample(model, settings, [seed], batch=1).samples for seed in seeds])
    torch.testing.assert_close(reordered, one_batch, rtol=0, atol=1e-12)
    torch.testing.assert_close(singles, one_batch, rtol=0, atol=1e-12)
    return one_batch


def test_progress_reports_every_batch(mixture):
    calls = []
    result = sample(mixture, sampler(steps=3), [0, 1, 2, 3, 4], batch=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)] and result.seeds == [0, 1, 2, 3, 4] and result.seconds > 0


@pytest.mark.parametrize("kwargs, message", [({"batch": 0}, "--batch"), ({"seeds": []}, "no seeds"), ({"class_label": 1}, "unconditional")])
def test_bad_driver_input_is_a_user_error(mixture, kwargs, message):
    args = {"seeds": [0], "batch": 1, **kwargs}
    with pytest.raises(UserError, match=message):
        sample(mixture, sampler(steps=2), **args)


# --- the paper's claims about the solvers ------------------------------------------------------------------

@pytest.mark.parametrize("solver, nfe", [("euler", lambda n: n), ("heun", lambda n: 2 * n - 1), ("dpm2", lambda n: 2 * n - 1),
                                         ("lms", lambda n: n), ("dpmpp-2m", lambda n: n)])
def test_nfe_counts_every_denoiser_call(mixture, solver, nfe):
    for steps in (1, 2, 7):
        assert sample(mixture, sampler(solver=solver, steps=steps), [0, 1], batch=2).nfe == nfe(steps)


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("dpm2", 2), ("dpmpp-2m", 2)])
def test_solver_converges_at_its_order_on_gaussian_data(gaussian, solver, order):
    """Max error against the exact ODE endpoint falls as N^-order (EDM Sec. 3: Euler order 1, Heun order 2)."""
    seeds, steps = [0, 1, 2, 3], [16, 32, 64, 128]
    x0 = 80.0 * SeedNoise(seeds, gaussian.img_shape).latents()
    exact = gaussian.ode_solution(x0, 80.0, 0.0)
    errors = [(sample(gaussian, sampler(solver=solver, steps=n), seeds, batch=4).samples - exact).abs().max().item() for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.25, f"{solver}: errors {errors}, fitted order {slope:.2f}"


# --- outputs -----------------------------------------------------------------------------------------------

def test_to_uint8_is_nvlabs_quantisation_for_tensors_and_arrays():
    x = torch.tensor([-2.0, -1.0, -0.997, 0.0, 0.5, 0.999, 1.0, 3.0], dtype=torch.float64)
    expected = [0, 0, 0, 128, 191, 255, 255, 255]
    assert to_uint8(x).tolist() == expected and to_uint8(x).dtype == torch.uint8
    assert to_uint8(x.numpy()).tolist() == expected and to_uint8(x.numpy()).dtype == np.uint8


def test_outputs_hold_samples_pngs_and_grid(tmp_path):
    samples = torch.linspace(-1.2, 1.2, 5 * 3 * 4 * 4, dtype=torch.float64).reshape(5, 3, 4, 4)
    paths = write_samples(tmp_path / "out", samples, [4, 0, 17, 3, 100])
    assert sorted(p.name for p in paths) == sorted(["samples.npz", "000004.png", "000000.png", "000017.png", "000003.png", "000100.png", "grid.png"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    with np.load(tmp_path / "out" / "samples.npz") as npz:
        assert np.array_equal(npz["samples"], samples.numpy()) and npz["seeds"].tolist() == [4, 0, 17, 3, 100]
    png = np.asarray(Image.open(tmp_path / "out" / "000017.png"))
    assert png.shape == (4, 4, 3) and np.array_equal(png, to_uint8(samples[2]).permute(1, 2, 0).numpy())
    grid = np.asarray(Image.open(tmp_path / "out" / "grid.png"))
    cell = to_uint8(samples[3]).permute(1, 2, 0).numpy().repeat(8, axis=0).repeat(8, axis=1)  # 4x4 shown at 32x32
    assert grid.shape == (2 * 32 + 2, 3 * 32 + 2 * 2, 3) and np.array_equal(grid[34:66, 0:32], cell)
    assert (grid[32:34] == 128).all() and (grid[:, 32:34] == 128).all()  # grey gaps between cells
    assert not list(tmp_path.glob(".*staging*"))


def test_outputs_join_an_existing_run_folder_but_never_overwrite_samples(tmp_path):
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "run.json").write_text("{}")
    write_samples(tmp_path / "run1", torch.zeros(1, 1, 2, 2), [0])
    assert {p.name for p in (tmp_path / "run1").iterdir()} == {"run.json", "samples.npz", "000000.png", "grid.png"}
    with pytest.raises(UserError, match="already holds samples.npz"):
        write_samples(tmp_path / "run1", torch.zeros(1, 1, 2, 2), [0])


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(writers, "image_grid", fail)
    with pytest.raises(OSError):
        write_samples(tmp_path / "out", torch.zeros(2, 1, 2, 2), [0, 1])
    assert list(tmp_path.iterdir()) == []


def test_outputs_need_a_png_channel_count(tmp_path):
    with pytest.raises(UserError, match="channels"):
        write_samples(tmp_path / "out", torch.zeros(1, 2, 2, 2), [0])
    assert list(tmp_path.iterdir()) == []
