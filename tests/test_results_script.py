"""docs/make_results.py's building blocks at tiny sizes (the full run regenerates docs/results.md)."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only spin
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("make_results", ROOT / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_euler_and_heun_errors_fall_at_orders_one_and_two(results):
    from edmctl.models import GaussianDataDenoiser

    model = GaussianDataDenoiser(torch.linspace(-0.5, 0.5, 4).reshape(1, 2, 2), torch.linspace(0.2, 1.0, 4).reshape(1, 2, 2))
    steps = [16, 32, 64]
    orders = {s: results.fitted_order(steps, results.convergence_errors(model, s, steps, [0, 1])) for s in ("euler", "heun")}
    assert abs(orders["euler"] - 1) < 0.2 and abs(orders["heun"] - 2) < 0.3, orders


def test_one_heun_step_through_the_library_is_a_heun_step_and_the_fine_solve_converges(results):
    from edmctl.models import GaussianDataDenoiser

    model = GaussianDataDenoiser(torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5))
    flow = results.single_step_flow(model)
    x, s0, s1 = torch.full((1, 1, 2, 2), 3.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    d0 = flow.d(x, s0)
    by_hand = x + (s1 - s0) * 0.5 * (d0 + flow.d(x + (s1 - s0) * d0, s1))
    torch.testing.assert_close(results.heun_solve(flow, x, s0, s1, 1), by_hand, rtol=0, atol=1e-12)
    exact = model.ode_solution(x, 2.0, 1.0)
    coarse, fine = ((results.heun_solve(flow, x, s0, s1, n) - exact).abs().max() for n in (8, 32))
    assert fine < coarse / 10 and fine < 1e-4, (coarse, fine)


def test_per_step_errors_cover_every_heun_step_and_rho_3_is_more_even_than_rho_10(results):
    from edmctl.models import GaussianMixtureDenoiser

    images = torch.rand(10, 1, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    model = GaussianMixtureDenoiser(images, std=0.2)
    spreads = {}
    for rho in (3.0, 10.0):
        sigmas, errors = results.truncation_errors(model, rho, 8, [0, 1, 2, 3], substeps=16)
        assert len(sigmas) == len(errors) == 7 and sigmas[0] == pytest.approx(80.0) and (errors > 0).all()
        spreads[rho] = results.spread(errors)
    assert spreads[3.0] < spreads[10.0], spreads


def test_ladder_recipes_make_the_papers_changes_and_nothing_else(results):
    recipes = results.ladder_recipes(2.0)
    a, b, c, d, e, f = (recipes[k] for k in results.LADDER)
    assert {r.data.source for r in recipes.values()} == {"digits"} and {r.eval.detector for r in recipes.values()} == {"pixels"}
    assert {r.training.duration_kimg for r in recipes.values()} == {2.0}
    assert (a.training.batch, b.training.batch) == (16, 64) and a.training.lr < b.training.lr
    assert math.isclose(b.training.lr_rampup_kimg, 10000 * 2.0 / 200000)
    assert (b.network.channel_mult, c.network.channel_mult) == ([1, 2, 2], [2, 2])
    assert (c.precond.kind, d.precond.kind) == ("vp", "edm") and d.training.p_train == "vp"
    assert (e.training.p_train, e.training.loss_weight) == ("edm", "edm") and (e.augment.p, f.augment.p) == (0.0, 0.12)
    assert c.model_copy(update={"precond": d.precond}).canonical() == d.canonical()


def test_loss_weight_recipes_differ_only_in_the_weight(results):
    recipes = results.weight_recipes(2.0)
    canon = [r.training.model_dump(exclude={"loss_weight", "p2_gamma", "p2_k", "snr_gamma"}) for r in recipes.values()]
    assert all(c == canon[0] for c in canon)
    assert [r.training.loss_weight for r in recipes.values()] == ["edm", "p2", "p2", "min-snr"]
    assert [r.training.p2_gamma for r in recipes.values()][1:3] == [0.5, 1.0]


def test_markdown_table_and_document_carry_every_section(results):
    assert results.table(["a", "b"], [[1, 0.123456]]).splitlines() == ["| a | b |", "| --- | --- |", "| 1 | 0.123 |"]
    section = results.Section(1, "title", "cmd", "body 42", ["results/x.png"], 3.0)
    doc = results.render([section], 60.0, results.Sizes(), {5: "no training."})
    assert "## 1. title" in doc and "`cmd`" in doc and "body 42" in doc and "![title](results/x.png)" in doc
    assert "Section 5 is not in this run: no training." in doc and f"train_kimg = {results.Sizes().train_kimg}" in doc


def test_rewriting_some_sections_keeps_the_others_verbatim(results, tmp_path):
    one, two = (results.Section(n, f"title {n}", "cmd", f"body {n}\n\n| a |\n| --- |", [f"results/{n}.png"], 3.0) for n in (1, 2))
    path = tmp_path / "results.md"
    path.write_text(results.render([one, two], 60.0, results.Sizes(), {}))
    kept = results.kept_sections(path, [2])
    assert list(kept) == [1] and kept[1].startswith("## 1. title 1") and "![title 1](results/1.png)" in kept[1]
    new_two = results.Section(2, "title 2", "cmd", "body 2 again", [], 4.0)
    doc = results.render([new_two], 30.0, results.Sizes(), {}, kept)
    assert doc.index("## 1. title 1") < doc.index("## 2. title 2") and "body 2 again" in doc and "body 2\n" not in doc
    assert doc.split("## 1.")[1].split("## 2.")[0] == path.read_text().split("## 1.")[1].split("## 2.")[0]


def test_unknown_section_is_refused(results):
    with pytest.raises(SystemExit, match="not one of"):
        results.parse_sections("1,9")


@pytest.mark.slow
def test_a_tiny_training_is_scored_by_fd_against_the_digits(results, tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path))
    recipe = results.weight_recipes(0.128)["EDM λ (Eq. 8)"]
    score = results.train_and_score(recipe.canonical(), images=80)
    assert score["fd"] > 0 and score["grid"].shape == (64, 1, 8, 8) and score["run"] is not None


def test_churn_corrects_an_early_denoiser_error_from_where_d_is_right_and_does_not_improve_an_exact_d(results):
    """EDM §4: churn's noise injection corrects errors of earlier steps. D wrong above σ = 0.5 (it knows 2 of the 8
    components there), exact below: churn at σ ≤ 0.5 lowers fd_exact, churn only at σ ≥ 0.5 much less; on the exact D
    no churn setting lowers it."""
    from edmctl.models import GaussianMixtureDenoiser

    images = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    truth = GaussianMixtureDenoiser(images, std=0.2)
    wrong = results.ErrorAboveSigma(truth, GaussianMixtureDenoiser(images[:2], std=0.2), 0.5)
    settings = {"none": {}, "low": {"s_churn": 10.0, "s_tmax": 0.5}, "high": {"s_churn": 10.0, "s_tmin": 0.5},
                "all": {"s_churn": 10.0}}
    errors = results.churn_errors(truth, {"exact": truth, "wrong": wrong}, settings, list(range(500)))
    wrong_fd = {label: row["wrong"] for label, row in errors.items()}
    assert wrong_fd["low"] < 0.9 * wrong_fd["none"] and wrong_fd["all"] < 0.9 * wrong_fd["none"], wrong_fd
    assert wrong_fd["none"] - wrong_fd["low"] > 2 * (wrong_fd["none"] - wrong_fd["high"]), wrong_fd
    exact_fd = {label: row["exact"] for label, row in errors.items()}
    assert min(exact_fd.values()) == exact_fd["none"] and exact_fd["all"] > 2 * exact_fd["none"], exact_fd
