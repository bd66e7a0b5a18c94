"""The recipe: every field validated with a clear message, overrides, and a stable canonical hash."""

import json
import tomllib
from pathlib import Path

import pytest

from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.recipe import load_recipe
from edmctl.recipe.load import parse_value

SHIPPED = sorted(Path(__file__).parent.parent.joinpath("recipes").rglob("*.toml"))
RECIPES = [p for p in SHIPPED if "base" not in tomllib.loads(p.read_text())]  # the rest are sweep files


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text="", overrides=()):
    with pytest.raises(UserError) as e:
        load_recipe(write(tmp_path, text), list(overrides))
    return str(e.value)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates(path):
    assert len(load_recipe(path).hash()) == 64


def test_table1_columns_ship():
    assert {p.stem for p in RECIPES} >= {"vp", "ve", "iddpm", "edm", "digits"}


def test_defaults_are_the_papers_edm_column():
    r = load_recipe(None)
    assert (r.sampler.solver, r.sampler.disc, r.sampler.steps, r.sampler.rho) == ("heun", "edm", 18, 7.0)
    assert (r.precond.kind, r.precond.sigma_data) == ("edm", 0.5)
    assert (r.training.p_mean, r.training.p_std, r.training.lr) == (-1.2, 1.2, 10e-4)


def test_precond_kind_fills_its_own_constants():
    vp = load_recipe(None, ["precond.kind=vp"]).precond
    assert (vp.beta_d, vp.beta_min, vp.epsilon_t, vp.M) == (19.9, 0.1, 1e-5, 1000)
    assert vp.sigma_data == 0.5  # a property of the data, available to every kind
    ve = load_recipe(None, ["precond.kind=ve"]).precond
    assert (ve.sigma_min, ve.sigma_max) == (0.02, 100.0)
    iddpm = load_recipe(None, ["precond.kind=iddpm"]).precond
    assert (iddpm.C_1, iddpm.C_2, iddpm.M) == (0.001, 0.008, 1000)


def test_same_meaning_same_hash(tmp_path):
    explicit = write(tmp_path, "[sampler]\nrho = 7\nsteps = 18\n[precond]\nkind = 'edm'\nsigma_data = 0.5\n", "a.toml")
    reordered = write(tmp_path, "[precond]\nsigma_data = 5e-1\n[sampler]\nsteps = 18\nrho = 7.0\n", "b.toml")
    empty = write(tmp_path, "", "c.toml")
    assert load_recipe(explicit).hash() == load_recipe(reordered).hash() == load_recipe(empty).hash()


@pytest.mark.parametrize("override", ["sampler.steps=19", "sampler.rho=6.9", "precond.sigma_data=0.6",
                                      "training.seed=1", "augment.p=0.1", "network.model_channels=64",
                                      "data.source=other", "eval.num=100", "sampler.s_tmax=50"])
def test_any_change_changes_the_hash(override):
    assert load_recipe(None, [override]).hash() != load_recipe(None).hash()


@pytest.mark.parametrize("text, value", [("32", 32), ("1e-3", 1e-3), ("inf", float("inf")), ("true", True),
                                         ("[1, 2]", [1, 2]), ('"heun"', "heun"), ("heun", "heun"),
                                         ("dpmpp-2m", "dpmpp-2m")])
def test_set_values_parse_as_toml_or_bare_strings(text, value):
    assert parse_value(text) == value


def test_set_overrides_file(tmp_path):
    path = write(tmp_path, "[sampler]\nsteps = 10\n")
    assert load_recipe(path, ["sampler.steps=32", "sampler.solver=euler"]).sampler.steps == 32


@pytest.mark.parametrize("text, expected", [
    ("[sampler]\nsolver = 'hune'\n", "sampler.solver: 'hune' is not one of euler, heun, dpm2, lms, dpmpp-2m, dpmpp-3m, unipc, ipndm, deis, euler-ancestral"),
    ("[sampler]\nsolver = 'hune'\n", "restart (did you mean 'heun'?)"),
    ("[sampler]\ndisc = 'karras'\n", "sampler.disc: 'karras' is not one of edm, vp, ve, iddpm, exponential, polyexponential, table"),
    ("[sampler]\nschedule = 'cosine'\n", "sampler.schedule: 'cosine' is not one of vp, ve, linear"),
    ("[sampler]\nscaling = 'vpp'\n", "(did you mean 'vp'?)"),
    ("[sampler]\nsteps = 0\n", "sampler.steps: input should be greater than or equal to 1 (got 0)"),
    ("[sampler]\nsteps = 1.5\n", "sampler.steps: input should be a valid integer"),
    ("[sampler]\nsteps = '18'\n", "sampler.steps: input should be a valid integer"),
    ("[sampler]\nrho = -1\n", "sampler.rho: input should be greater than or equal to 0.1"),
    ("[sampler]\nalpha = 1.5\n", "sampler.alpha: input should be less than or equal to 1"),
    ("[sampler]\ns_churn = -1\n", "sampler.s_churn: input should be greater than or equal to 0"),
    ("[sampler]\nsigma_min = 1.0\nsigma_max = 0.5\n", "sampler.sigma_min (1) must be below sampler.sigma_max (0.5)"),
    ("[sampler]\nsigma_min = 100.0\n", "sampler.sigma_min (100) must be below sampler.sigma_max (80)"),
    ("[sampler]\ns_tmin = 2.0\ns_tmax = 1.0\n", "sampler.s_tmin (2) must not exceed sampler.s_tmax (1)"),
    ("[sampler]\nsolver = 'dpm2'\nschedule = 'vp'\nscaling = 'vp'\n", "sampler.solver = 'dpm2' needs sampler.schedule = 'linear' and sampler.scaling = 'none'"),
    ("[sampler]\nsolver = 'lms'\nscaling = 'vp'\n", "sampler.solver = 'lms' needs"),
    ("[sampler]\nsolver = 'dpmpp-2m'\ns_churn = 1.0\n", "sampler.s_churn > 0 needs solver euler, heun, restart (got 'dpmpp-2m')"),
    ("[sampler]\nsolver = 'ipndm'\ns_churn = 1.0\n", "sampler.s_churn > 0 needs solver euler, heun, restart (got 'ipndm')"),
    ("[sampler]\nsolver = 'unipc'\nschedule = 'vp'\n", "sampler.solver = 'unipc' needs sampler.schedule = 'linear'"),
    ("[sampler]\nsolver = 'heun'\neta = 0.5\n", "sampler.eta applies to solver euler-ancestral, dpm2-ancestral, dpmpp-2s-ancestral, dpmpp-sde, dpmpp-2m-sde, dpmpp-3m-sde only (got solver 'heun')"),
    ("[sampler]\nsolver = 'dpmpp-3m'\neta = 0.5\n", "sampler.eta applies to solver euler-ancestral"),
    ("[sampler]\nsolver = 'dpmpp-sde'\neta = -1.0\n", "sampler.eta: input should be greater than or equal to 0"),
    ("[sampler]\nsolver = 'heun'\norder = 2\n", "sampler.order applies to solver unipc, ipndm, deis only (got solver 'heun')"),
    ("[sampler]\nsolver = 'unipc'\norder = 4\n", "sampler.order for solver unipc must be 1..3 (got 4)"),
    ("[sampler]\nsolver = 'ipndm'\nunipc_variant = 'bh1'\n", "sampler.unipc_variant applies to solver unipc only"),
    ("[sampler]\nsolver = 'unipc'\nunipc_variant = 'bh3'\n", "sampler.unipc_variant: 'bh3' is not one of bh1, bh2"),
    ("[sampler]\nsolver = 'heun'\nrestart_k = 3\n", "sampler.restart_k applies to solver restart only (got solver 'heun')"),
    ("[sampler]\nsolver = 'restart'\nrestart_tmin = 1.0\nrestart_tmax = 0.5\n", "sampler.restart_tmin (1) must be below sampler.restart_tmax (0.5)"),
    ("[sampler]\nsolver = 'restart'\nrestart_steps = 1\n", "sampler.restart_steps: input should be greater than or equal to 2"),
    ("[sampler]\ndisc = 'table'\n", "sampler.disc = 'table' and sampler.sigmas go together"),
    ("[sampler]\nsigmas = [1.0, 0.5]\n", "sampler.disc = 'table' and sampler.sigmas go together"),
    ("[sampler]\ndisc = 'table'\nsteps = 2\nsigmas = [0.5, 1.0]\n", "sampler.sigmas must be finite, > 0 and strictly decreasing"),
    ("[sampler]\ndisc = 'table'\nsteps = 2\nsigmas = [1.0, 0.0]\n", "sampler.sigmas must be finite, > 0 and strictly decreasing"),
    ("[sampler]\ndisc = 'table'\nsteps = 2\nsigmas = [inf, 1.0]\n", "sampler.sigmas.0: input should be a finite number"),
    ("[sampler]\ndisc = 'table'\nsigmas = [2.0, 1.0]\n", "sampler.steps (18) must equal the number of sampler.sigmas (2)"),
    ("[sampler]\ndisc = 'table'\nsteps = 2\nsigmas = [2.0, 1.0]\nsigma_min = 0.5\n", "sampler.sigma_min/sigma_max do not apply to disc 'table'"),
    ("[sampler]\nsolver = 'euler'\nalpha = 0.5\n", "sampler.alpha applies to solver heun only"),
    ("[sampler]\nstepz = 3\n", "sampler.stepz: unknown field (did you mean 'steps'?)"),
    ("[samplr]\nsteps = 3\n", "samplr: unknown section (did you mean 'sampler'?)"),
    ("[precond]\nkind = 'edn'\n", "precond.kind: 'edn' is not one of vp, ve, iddpm, edm (did you mean 'edm'?)"),
    ("[precond]\nsigma_data = 0\n", "precond.sigma_data: input should be greater than or equal to 0.0001"),
    ("[precond]\nkind = 've'\nsigma_min = 5.0\nsigma_max = 1.0\n", "precond.sigma_min (5) must be below precond.sigma_max (1)"),
    ("[precond]\nkind = 'vp'\nepsilon_t = 1.5\n", "precond.epsilon_t: input should be less than 1"),
    ("[training]\np_train = 'vp'\n", "training.p_train = 'vp' needs precond.epsilon_t, precond.beta_d, precond.beta_min, which precond.kind = 'edm' does not set"),
    ("[training]\np_train = 've'\n", "training.p_train = 've' needs precond.sigma_min, precond.sigma_max"),
    ("[training]\np_train = 'iddpm'\n", "training.p_train = 'iddpm' needs precond.C_1, precond.C_2, precond.M"),
    ("[training]\nloss_weight = 'p3'\n", "training.loss_weight: 'p3' is not one of inv-sigma2, edm, p2, min-snr, soft-min-snr (did you mean 'p2'?)"),
    ("[training]\nbatch = 100\nbatch_gpu = 32\n", "training.batch (100) must be a multiple of training.batch_gpu (32)"),
    ("[training]\nbetas = [0.9]\n", "training.betas: list should have at least 2 items"),
    ("[training]\ndropout = 1.0\n", "training.dropout: input should be less than 1"),
    ("[augment]\np = 2.0\n", "augment.p: input should be less than or equal to 1"),
    ("[network]\narch = 'unet'\n", "network.arch: 'unet' is not one of ddpmpp, ncsnpp, adm"),
    ("[network]\nchannel_mult = []\n", "network.channel_mult: list should have at least 1 item"),
    ("[data]\nresolution = 0\n", "data.resolution: input should be greater than or equal to 1"),
    ("[eval]\nprotocol = 'tf'\n", "eval.protocol: 'tf' is not one of edm, clean"),
])
def test_bad_field_names_file_field_and_allowed_values(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "r.toml") + ": ")
    assert expected in message


def test_any_precond_with_any_p_train_when_constants_are_given(tmp_path):
    text = "[precond]\nkind = 'edm'\nbeta_d = 19.9\nbeta_min = 0.1\nepsilon_t = 1e-5\n[training]\np_train = 'vp'\n"
    assert load_recipe(write(tmp_path, text)).training.p_train == "vp"


def test_toml_syntax_error_gives_line_and_column(tmp_path):
    message = error_of(tmp_path, "[sampler]\nsteps = = 3\n")
    assert "TOML syntax error" in message and "line 2" in message and "column" in message


def test_set_errors_name_the_override(tmp_path):
    message = error_of(tmp_path, "", ["sampler.steps=0"])
    assert message.startswith("--set sampler.steps=0: sampler.steps:")
    with pytest.raises(UserError, match="expected SECTION.FIELD=VALUE"):
        load_recipe(None, ["steps=3"])
    with pytest.raises(UserError, match=r"with --set sampler.solver=dpm2"):
        load_recipe(None, ["sampler.solver=dpm2", "sampler.schedule=vp"])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.toml")


def test_cli_show_json_prints_hash_and_resolved_recipe(capsys):
    assert main(["recipe", "show", "recipes/digits.toml", "--set", "sampler.steps=32", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recipe"]["sampler"]["steps"] == 32
    assert doc["hash"] == load_recipe("recipes/digits.toml", ["sampler.steps=32"]).hash()
    assert doc["recipe"]["sampler"]["s_tmax"] == "inf"


def show_toml(capsys, tmp_path, *args) -> Path:
    """`edmctl recipe show ARGS --toml` written to a file, as a user would redirect it."""
    capsys.readouterr()
    assert main(["recipe", "show", *args, "--toml"]) == 0
    return write(tmp_path, capsys.readouterr().out, "dumped.toml")


@pytest.mark.parametrize("path", [None, *RECIPES], ids=lambda p: p.name if p else "defaults")
def test_recipe_show_toml_loads_back_to_the_same_recipe(tmp_path, capsys, path):
    """load(dump(r)) is r: the same sha256 for every shipped recipe and the defaults (s_tmax = inf among them)."""
    args = [str(path)] if path else []
    assert load_recipe(show_toml(capsys, tmp_path, *args)).hash() == load_recipe(path).hash()


def test_recipe_show_toml_round_trips_non_finite_floats_lists_and_any_string(tmp_path, capsys):
    sets = ["sampler.s_tmax=inf", "sampler.s_tmin=0.05", "sampler.s_churn=40", "sampler.disc='table'",
            "sampler.sigmas=[80.0, 1.5, 0.002]", "sampler.steps=3", "eval.ref=a\nb\x7f",
            'data.source="dir/ü 😀 \\"quoted\\" \\\\ \\u007f"']
    dumped = show_toml(capsys, tmp_path, *[a for s in sets for a in ("--set", s)])
    recipe = load_recipe(None, sets)
    assert load_recipe(dumped).hash() == recipe.hash() and load_recipe(dumped).sampler.s_tmax == float("inf")
    assert load_recipe(dumped).data.source == 'dir/ü 😀 "quoted" \\ \x7f'
    assert load_recipe(dumped).eval.ref == "a\nb\x7f"  # a bare --set value: raw control characters, in the comment too
    assert main(["recipe", "show", "--toml", "--json"]) == 2


def test_cli_bad_input_exits_2_with_one_message_on_stderr(tmp_path, capsys):
    path = write(tmp_path, "[sampler]\nsolver = 'hune'\n")
    assert main(["recipe", "show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "did you mean 'heun'" in captured.err


def test_cli_validate_exit_codes(tmp_path, capsys):
    good, bad = write(tmp_path, "", "good.toml"), write(tmp_path, "[x]\n", "bad.toml")
    assert main(["recipe", "validate", *map(str, SHIPPED)]) == 0  # sweep files: every trial validated
    assert main(["recipe", "validate", str(good), str(bad)]) == 2
    assert "x: unknown section" in capsys.readouterr().err


def test_the_churn_window_applies_with_s_churn_and_always_to_restart():
    from edmctl.recipe.applies import field_applies

    def applies(solver, s_churn):
        return field_applies("sample", {"sampler": {"solver": solver, "s_churn": s_churn}}, "sampler.s_tmin")

    assert applies("heun", 1.0) and not applies("heun", 0.0) and not applies("dpmpp-2m", 0.0)
    assert applies("restart", 0.0)  # restart_gamma acts inside S_tmin..S_tmax (Xu et al. 2023)
