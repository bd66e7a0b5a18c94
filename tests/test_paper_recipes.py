"""The paper's training configurations as recipes: EDM Table 2's ladder A-F on CIFAR-10 for VP and VE, each
config changing only what the paper says it changes, F equal to the EDM column, and the networks at the sizes
the paper reports (built on the meta device, so nothing is allocated)."""

from pathlib import Path

import pytest
import torch

from edmctl.networks import build_network, count_parameters
from edmctl.recipe import load_recipe

RECIPES = Path(__file__).parent.parent / "recipes"
CONFIGS = "ABCDEF"
PAPER_RECIPES = sorted([*RECIPES.joinpath("cifar10").glob("*.toml"), RECIPES / "ffhq-64.toml",
                        RECIPES / "afhqv2-64.toml", RECIPES / "imagenet-64.toml"])

HYPERPARAMETERS = {"training.lr", "training.batch", "training.lr_rampup_kimg", "training.ema_halflife_kimg",
                   "training.ema_rampup_ratio", "training.dropout"}
# What each step of Table 2 changes (as dotted canonical fields), per family.
LADDER = {
    "vp": {"B": HYPERPARAMETERS,
           "C": {"network.channel_mult"},
           "D": {"precond.kind", "precond.M"},
           "E": {"training.p_train", "training.loss_weight",
                 "precond.beta_d", "precond.beta_min", "precond.epsilon_t"},
           "F": {"augment.p"}},
    "ve": {"B": HYPERPARAMETERS | {"precond.sigma_min", "precond.sigma_max"},
           "C": {"network.channel_mult"},
           "D": {"precond.kind"},
           "E": {"training.p_train", "training.loss_weight", "precond.sigma_min", "precond.sigma_max"},
           "F": {"augment.p"}},
}
OBJECTIVE = ("precond", "training.p_train", "training.p_mean", "training.p_std", "training.loss_weight")


def ladder(family: str, config: str):
    return load_recipe(RECIPES / "cifar10" / f"{family}-{config}.toml")


def flat(tree: dict, prefix: str = "") -> dict:
    """The canonical recipe as {"section.field": value}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def changed(before, after) -> set[str]:
    a, b = flat(before.canonical()), flat(after.canonical())
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


def parameters_of(recipe, label_dim: int = 0) -> int:
    """F's size for the recipe's data, as the training loop builds it (augment input when augment.p > 0)."""
    fields = recipe.network.model_dump()
    arch = fields.pop("arch")
    with torch.device("meta"):
        net = build_network(arch, img_resolution=recipe.data.resolution, in_channels=recipe.data.channels,
                            out_channels=recipe.data.channels, label_dim=label_dim,
                            augment_dim=9 if recipe.augment.p > 0 else 0, dropout=recipe.training.dropout, **fields)
    return count_parameters(net)


def test_the_ladders_ship():
    names = {p.stem for p in RECIPES.joinpath("cifar10").glob("*.toml")}
    assert names == {f"{family}-{c}" for family in LADDER for c in CONFIGS}


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_every_paper_recipe_validates_and_cites_its_sources(path):
    assert len(load_recipe(path).hash()) == 64
    text = path.read_text()
    assert "NVlabs/edm" in text and "Table 1" in text


@pytest.mark.parametrize("family", LADDER)
@pytest.mark.parametrize("step", range(1, len(CONFIGS)), ids=lambda i: f"{CONFIGS[i - 1]}->{CONFIGS[i]}")
def test_each_config_changes_only_what_table_2_says(family, step):
    before, after = ladder(family, CONFIGS[step - 1]), ladder(family, CONFIGS[step])
    assert changed(before, after) == LADDER[family][CONFIGS[step]]


@pytest.mark.parametrize("family", LADDER)
def test_the_whole_ladder_is_evaluated_with_the_edm_sampler(family):
    edm = load_recipe(RECIPES / "edm.toml")
    for config in CONFIGS:
        assert ladder(family, config).sampler == edm.sampler


def test_vp_config_f_is_the_edm_column():
    assert ladder("vp", "F").hash() == load_recipe(RECIPES / "edm.toml").hash()


@pytest.mark.parametrize("family", LADDER)
def test_config_f_preconditioning_and_loss_are_the_edm_columns(family):
    f, edm = flat(ladder(family, "F").canonical()), flat(load_recipe(RECIPES / "edm.toml").canonical())
    for key in edm:
        if key.startswith(OBJECTIVE):
            assert f[key] == edm[key], key


def test_config_a_is_song_et_al():
    vp, ve = ladder("vp", "A"), ladder("ve", "A")
    assert (vp.precond.kind, vp.training.p_train, vp.network.arch) == ("vp", "vp", "ddpmpp")
    assert (ve.precond.kind, ve.training.p_train, ve.network.arch) == ("ve", "ve", "ncsnpp")
    assert (ve.precond.sigma_min, ve.precond.sigma_max) == (0.01, 50.0)
    for a in (vp, ve):
        assert (a.training.lr, a.training.batch, a.training.lr_rampup_kimg) == (2e-4, 128, 640)
        assert a.training.ema_rampup_ratio == 0  # Song's EMA has no ramp-up
        assert a.network.channel_mult == [1, 2, 2, 2] and a.augment.p == 0


@pytest.mark.parametrize("family, exact", [("vp", 55_733_891), ("ve", 56_397_827)])
def test_config_f_networks_have_the_papers_size(family, exact):
    """EDM Table 7 / App. F.2: DDPM++ 55.7M and NCSN++ 56.4M parameters for CIFAR-10."""
    assert parameters_of(ladder(family, "F")) == exact


def test_redistributing_capacity_moves_parameters_out_of_the_4x4_level():
    """Config C drops the 4x4 level and doubles the 32x32 one: the network loses parameters (B -> C) and the
    hyperparameter step (A -> B) leaves it as it was."""
    for family in LADDER:
        a, b, c = (parameters_of(ladder(family, config)) for config in "ABC")
        assert a == b > c


def test_imagenet_is_class_conditional_adm_of_296m_parameters():
    recipe = load_recipe(RECIPES / "imagenet-64.toml")
    assert recipe.data.conditional and recipe.network.arch == "adm"
    assert round(parameters_of(recipe, label_dim=1000) / 1e6) == 296


@pytest.mark.parametrize("name, dropout", [("ffhq-64", 0.05), ("afhqv2-64", 0.25)])
def test_ffhq_and_afhqv2_follow_the_readme(name, dropout):
    recipe = load_recipe(RECIPES / f"{name}.toml")
    assert (recipe.training.batch, recipe.training.lr, recipe.training.dropout) == (256, 2e-4, dropout)
    assert (recipe.network.channel_mult, recipe.augment.p, recipe.data.resolution) == ([1, 2, 2, 2], 0.15, 64)
