"""FID as the EDM paper measured it: statistics, distances, detectors, sources and the `edmctl fid` commands."""

import json
import os
import urllib.error
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from edmctl.errors import UserError
from edmctl.fid import (
    Stats, batches, best, compare, compute_stats, frechet_distance, image_folder, image_zip, load_detector,
    kernel_distance, load_stats, measure_blocks, save_stats, seed_blocks,
)
from edmctl.fid import weights
from edmctl.fid.preprocess import preprocess
from edmctl.fid.stats import StatsAccumulator
from edmctl.fid.testing import save_random_conv_detector

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning"),  # clean-fid's own call, in the test
]


def _images(n: int, seed: int = 0, size: int = 8, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 200, (n, channels, size, size), dtype=torch.uint8, generator=g)


def _write_pngs(folder, images: torch.Tensor):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(folder / f"{i:06d}.png")
    return folder


def _zip_folder(folder, path):
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty cache and home, and no network: any download attempt fails at once."""
    monkeypatch.setenv("EDMCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    attempts = []

    def no_network(url, *a, **k):
        attempts.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    return {"tmp": tmp_path, "downloads": attempts}


@pytest.fixture
def detector_path(tmp_path):
    return save_random_conv_detector(tmp_path / "det.pt", in_channels=3, dim=16)


@pytest.fixture
def pngs(tmp_path):
    return _write_pngs(tmp_path / "pngs", _images(40))


def _cli(capsys, *argv):
    from edmctl.cli.main import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fid_runs(home):
    from edmctl.registry import Registry

    return Registry(home).list(kind="fid") if (home / "registry.db").exists() else []


# statistics and distances


def test_streaming_float64_stats_equal_numpy_two_pass_mean_and_cov():
    feats = np.random.default_rng(0).normal(1e3, 1.0, size=(257, 5))  # far from 0: the one-pass trap
    acc = StatsAccumulator()
    for chunk in np.array_split(feats, 7):
        acc.add(chunk)
    stats = acc.finish()
    np.testing.assert_allclose(stats.mu, feats.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, np.cov(feats, rowvar=False), rtol=1e-9, atol=1e-12)
    assert stats.mu.dtype == stats.sigma.dtype == np.float64


def test_frechet_distance_is_clean_fids():
    from cleanfid.fid import fid_from_feats

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 6)), rng.normal(0.3, 1.2, size=(150, 6))
    stats = [Stats(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    assert frechet_distance(*stats) == pytest.approx(fid_from_feats(a, b), rel=1e-6)


def test_the_frechet_distance_of_few_images_to_themselves_is_zero_not_a_rounding_negative():
    pixels = np.random.default_rng(1).integers(0, 256, size=(3, 64)).astype(np.float64)  # 3 images, 64 pixels
    stats = Stats(pixels.mean(0), np.cov(pixels, rowvar=False))  # singular: rank 2
    from edmctl.fid.distance import frechet_distance_psd, rounding

    assert frechet_distance(stats, stats) == 0.0  # clean-fid's sqrtm alone: -0.094
    assert frechet_distance_psd(stats.mu, stats.sigma, stats.mu, stats.sigma) == 0.0
    assert 0.094 < rounding(stats.sigma, stats.sigma) < 1  # the bound: 2 D sqrt(eps tr tr) = 0.65


def test_a_frechet_distance_below_0_by_more_than_rounding_is_an_error_and_nan_passes(monkeypatch):
    from edmctl.fid import distance

    stats = Stats(np.zeros(4), np.eye(4))
    monkeypatch.setattr(distance, "clean_fid", lambda: type("CleanFid", (), {"frechet_distance": lambda *a: -0.5}))
    with pytest.raises(ArithmeticError, match="-0.5, below 0 by more than floating point rounding"):
        frechet_distance(stats, stats)
    monkeypatch.setattr(distance, "clean_fid", lambda: type("CleanFid", (), {"frechet_distance": lambda *a: float("nan")}))
    assert np.isnan(frechet_distance(stats, stats))
    assert distance.nonnegative(2.5, np.eye(4), np.eye(4)) == 2.5


def test_kid_reservoir_is_bounded_and_uniform_in_size():
    acc = StatsAccumulator(kid_reservoir=10)
    for chunk in np.array_split(np.arange(300.0)[:, None].repeat(2, 1), 9):
        acc.add(chunk)
    feats = acc.finish().feats
    assert feats.shape == (10, 2) and len(set(feats[:, 0])) == 10
    assert feats[:, 0].max() >= 30  # later images replaced early ones


def test_a_known_mean_shift_gives_the_squared_norm_of_the_shift(tmp_path):
    """Adding k to every pixel moves mu by k in each of D dims and leaves sigma alone: FID = D k^2."""
    images = _images(50, size=4)
    det = load_detector("pixels", "edm")
    a = compute_stats(images.split(16), det)
    b = compute_stats((images + 3).split(16), det)
    d = 3 * 4 * 4
    assert compare(b, a.stats).fid == pytest.approx(d * 9, rel=1e-9)


def _cubic_kid(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² of Bińkowski et al. 2018 with k(x, y) = (xᵀy/d + 1)³, written out pair by pair."""
    def k(u, v):
        return (u @ v / len(u) + 1) ** 3

    m = len(x)
    same = sum(k(a[i], a[j]) for a in (x, y) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return same - 2 * sum(k(a, b) for a in x for b in y) / m**2


def test_kid_is_the_unbiased_cubic_kernel_mmd_of_the_scaled_features():
    """With as many features as subset size every clean-fid subset is the whole set: KID is the exact MMD²."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 255, (6, 5)), rng.uniform(0, 200, (6, 5))
    a, b = (Stats(f.mean(0), np.cov(f, rowvar=False), len(f), f) for f in (x, y))
    assert kernel_distance(a, b, scale=1 / 255) == pytest.approx(_cubic_kid(x / 255, y / 255), rel=1e-12)


def test_pixel_kid_of_white_against_black_images_is_seven():
    """Pixels enter KID in [0, 1]: white images are x = 1, black x = 0, so k(white, white) = 2³, k(black, black)
    = k(white, black) = 1 and KID = 8 + 1 - 2 = 7 (on raw 0..255 pixels it would be about 2.7e14)."""
    det = load_detector("pixels")
    white, black = (compute_stats([torch.full((4, 1, 3, 3), v, dtype=torch.uint8)], det) for v in (255, 0))
    assert compare(white, black.stats).kid == pytest.approx(7.0, rel=1e-12)


def test_pixel_kid_tells_digits_from_noise_and_is_near_zero_between_two_halves_of_the_digits():
    from edmctl.data import open_dataset
    from edmctl.fid import dataset_images

    det = load_detector("pixels")
    digits = torch.cat(list(batches(dataset_images(open_dataset("digits")), 512)))[:600]
    noise = torch.randint(0, 256, (300, *digits.shape[1:]), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first, second, random = (compute_stats([x], det) for x in (digits[:300], digits[300:], noise))
    same, different = compare(first, second.stats).kid, compare(first, random.stats).kid
    assert abs(same) < 0.01 and different > 0.2  # before pixels were scaled: ±1e10 for both


def test_fewer_images_than_feature_dimensions_warn():
    det = load_detector("pixels")  # 3 x 4 x 4 = 48 features
    few, many = _images(20, size=4), _images(60, size=4, seed=1)
    warning = compare(compute_stats([few], det), compute_stats([many], det).stats).warning
    assert "20 measured images for 48-dimensional features" in warning and "at least 48 images" in warning
    assert compare(compute_stats([many], det), compute_stats([many], det).stats).warning is None


def test_seed_blocks_are_the_papers_three_disjoint_blocks_and_the_minimum_is_reported(detector_path):
    assert seed_blocks(5, 3) == [range(0, 5), range(5, 10), range(10, 15)]
    det = load_detector(str(detector_path))
    ref = compute_stats(_images(64, seed=100).split(32), det).stats

    def generate(seeds):  # an image depends only on its seed
        return (torch.cat([_images(1, seed=s) for s in seeds[i:i + 8]]) for i in range(0, len(seeds), 8))

    results = measure_blocks(generate, det, ref, num=24, repeats=3)
    assert [r.seeds for r in results] == seed_blocks(24, 3)
    assert len({r.fid for r in results}) == 3 and best(results).fid == min(r.fid for r in results)


# detectors and preprocessing


def test_legacy_tensorflow_and_clean_preprocessing_equal_clean_fids_dataset(tmp_path):
    from cleanfid.utils import ResizeDataset

    folder = _write_pngs(tmp_path / "p", _images(2, size=6))
    files = sorted(str(p) for p in folder.iterdir())
    batch = next(batches(image_folder(folder), 2))
    for mode in ("legacy_tensorflow", "clean"):
        theirs = torch.stack([ResizeDataset(files, mode=mode)[i] for i in range(2)])
        assert torch.equal(preprocess(batch, mode), theirs)


def test_torchscript_detector_runs_through_the_pipeline_and_gives_the_modules_features(detector_path):
    det = load_detector(str(detector_path))
    images = _images(5)
    module = torch.jit.load(str(detector_path))
    np.testing.assert_allclose(det.features(images), module(images).detach().double().numpy(), rtol=1e-6)
    assert det.kind == "torchscript" and len(det.sha256) == 64 and det.feature_dim((3, 8, 8)) == 16


def test_a_torchscript_detector_anyone_could_replace_is_not_loaded(detector_path, tmp_path):
    """TorchScript is code: a file in a folder every user can write (without the sticky bit) or writable by all is
    refused before it is read; in a sticky folder such as /tmp, a file of one's own loads."""
    shared = tmp_path / "shared"
    shared.mkdir()
    planted = shared / "det.pt"
    planted.write_bytes(detector_path.read_bytes())
    shared.chmod(0o777)
    with pytest.raises(UserError, match="writable by every user"):
        load_detector(str(planted))
    shared.chmod(0o1777)
    assert load_detector(str(planted)).kind == "torchscript"
    planted.chmod(0o666)
    with pytest.raises(UserError, match=f"{planted} is writable by every user"):
        load_detector(str(planted))
    if os.getuid() == 0:  # root can hand the file to another user
        planted.chmod(0o644)
        os.chown(planted, 65534, 65534)
        with pytest.raises(UserError, match="belongs to another user"):
            load_detector(str(planted))


def test_missing_inception_weights_say_which_file_from_where_and_where_to_put_it(env):
    with pytest.raises(UserError) as e:
        load_detector("inception", "edm")
    message = str(e.value)
    assert weights.INCEPTION_FILE in message and weights.INCEPTION_URL in message
    assert str(env["tmp"] / "cache" / weights.INCEPTION_FILE) in message
    assert env["downloads"] == [weights.INCEPTION_URL]  # one attempt, failed at once
    assert not list((env["tmp"]).rglob("*.pt"))  # nothing half-downloaded


def test_a_download_is_renamed_only_when_complete_and_loadable(tmp_path, detector_path):
    dest = tmp_path / "out" / "w.pt"
    assert weights.download(detector_path.as_uri(), dest) == dest and torch.jit.load(str(dest)) is not None
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(detector_path.read_bytes()[:100])
    with pytest.raises(Exception):
        weights.download(corrupt.as_uri(), tmp_path / "out" / "bad.pt")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["w.pt"]


def test_inception_weights_are_looked_up_only_in_the_cache_and_only_with_the_known_sha256(env, detector_path, capsys):
    """A TorchScript file is code: a file of another sha256 at the right name is refused, never loaded."""
    assert weights.inception_path() == env["tmp"] / "cache" / weights.INCEPTION_FILE
    planted = env["tmp"] / "cache" / weights.INCEPTION_FILE
    planted.parent.mkdir(parents=True)
    planted.write_bytes(detector_path.read_bytes())
    with pytest.raises(UserError, match=f"has sha256 .*, not the known {weights.INCEPTION_SHA256}"):
        load_detector("inception", "edm")
    assert env["downloads"] == []


def test_a_download_of_another_sha256_is_refused_and_leaves_nothing(tmp_path, detector_path):
    with pytest.raises(ValueError, match="not " + "0" * 64):
        weights.download(detector_path.as_uri(), tmp_path / "out" / "w.pt", sha256="0" * 64)
    assert list((tmp_path / "out").iterdir()) == []
    sha = weights.paths.file_sha256(detector_path)
    assert weights.download(detector_path.as_uri(), tmp_path / "out" / "w.pt", sha256=sha).is_file()


def test_weights_sha256_is_cached_by_path_mtime_and_size(env, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    first = weights.file_sha256(f)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert first in (tmp_path / "cache" / "sha256.json").read_text()
    f.write_bytes(b"abcd")
    assert weights.file_sha256(f) != first


# sources and files


def test_a_zip_and_a_folder_of_the_same_pngs_give_the_same_stats(tmp_path, pngs, detector_path):
    det = load_detector(str(detector_path))
    a = compute_stats(batches(image_folder(pngs), 16), det).stats
    b = compute_stats(batches(image_zip(_zip_folder(pngs, tmp_path / "p.zip")), 7), det).stats
    np.testing.assert_allclose(a.mu, b.mu, rtol=1e-12)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-9, atol=1e-15)


def test_stats_round_trip_and_edm_layout_files_load_as_references(tmp_path):
    rng = np.random.default_rng(2)
    stats = Stats(rng.normal(size=3), np.eye(3), 10, rng.normal(size=(4, 3)), {"detector": "pixels", "protocol": "edm"})
    back = load_stats(save_stats(tmp_path / "s.npz", stats))
    assert np.array_equal(back.mu, stats.mu) and back.num_images == 10 and back.meta["detector"] == "pixels"
    np.savez(tmp_path / "cifar10-32x32.npz", mu=stats.mu, sigma=stats.sigma)  # EDM's reference layout
    edm = load_stats(tmp_path / "cifar10-32x32.npz")
    assert edm.dim == 3 and edm.feats is None and edm.meta == {}


# the commands


def test_fid_of_a_folder_against_its_own_stats_is_zero_and_recorded(env, capsys, pngs, detector_path):
    stats = env["tmp"] / "ref.npz"
    code, out, _ = _cli(capsys, "fid", "ref", str(pngs), "--out", str(stats), "--detector", str(detector_path), "--json")
    assert code == 0 and json.loads(out)["num_images"] == 40
    code, out, _ = _cli(capsys, "fid", str(pngs), "--ref", str(stats), "--detector", str(detector_path), "--json")
    doc = json.loads(out)
    assert code == 0 and abs(doc["fid"]) < 1e-8 and doc["kid"] is not None
    [run] = _fid_runs(env["tmp"] / "home")
    assert doc["files"] == [str(env["tmp"] / "home" / f"run{run.id}" / "stats.npz")]
    from edmctl.registry import Registry

    reg = Registry(env["tmp"] / "home")
    assert run.id == doc["run"] and abs(reg.metrics(run.id)["fid"].value) < 1e-8
    assert run.extra["detector_sha256"] == doc["detector_sha256"] and run.extra["num_images"] == 40
    assert run.extra["ref_sha256"] == weights.file_sha256(stats) and run.extra["protocol"] == "edm"
    assert [a.kind for a in reg.artifacts(run.id)].count("stats") == 1


def test_an_edm_layout_reference_measures_through_the_command(env, capsys, tmp_path):
    pngs = _write_pngs(tmp_path / "gray", _images(40, size=4, channels=1))  # D = 16 < N: sigma has full rank
    ref = compute_stats(batches(image_folder(pngs), 16), load_detector("pixels")).stats
    np.savez(tmp_path / "edm.npz", mu=ref.mu, sigma=ref.sigma)
    code, out, _ = _cli(capsys, "fid", "measure", str(pngs), "--ref", str(tmp_path / "edm.npz"), "--detector", "pixels", "--num", "40", "--json")
    assert code == 0 and abs(json.loads(out)["fid"]) < 1e-6


def test_reference_stats_of_any_training_source_such_as_the_digits(env, capsys):
    code, out, _ = _cli(capsys, "fid", "ref", "digits", "--out", str(env["tmp"] / "digits.npz"), "--detector", "pixels", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["num_images"] == 1797 and doc["feature_dim"] == 64
    assert load_stats(env["tmp"] / "digits.npz").meta["detector"] == "pixels"


def _bad_inputs(tmp, pngs, detector_path, stats):
    empty = tmp / "empty"
    empty.mkdir()
    (tmp / "bad.zip").write_bytes(b"not a zip")
    det = ["--detector", str(detector_path)]
    return {
        "missing detector": ["fid", str(pngs), "--ref", str(stats), "--detector", str(tmp / "nope.pt")],
        "missing inception weights": ["fid", str(pngs), "--ref", str(stats)],
        "other feature size": ["fid", str(pngs), "--ref", str(stats), "--detector", "pixels"],
        "fewer images than --num": ["fid", str(pngs), "--ref", str(stats), "--num", "41", *det],
        "unreadable zip": ["fid", str(tmp / "bad.zip"), "--ref", str(stats), *det],
        "empty folder": ["fid", str(empty), "--ref", str(stats), *det],
        "repeats of a folder": ["fid", str(pngs), "--ref", str(stats), "--repeats", "3", *det],
        "missing reference": ["fid", str(pngs), "--ref", str(tmp / "none.npz"), *det],
        "unknown protocol": ["fid", str(pngs), "--ref", str(stats), "--protocol", "tf", *det],
    }


def test_every_bad_input_exits_2_and_records_nothing(env, capsys, pngs, detector_path):
    stats = env["tmp"] / "ref.npz"
    save_stats(stats, compute_stats(batches(image_folder(pngs), 16), load_detector(str(detector_path))).stats)
    for case, argv in _bad_inputs(env["tmp"], pngs, detector_path, stats).items():
        code, out, err = _cli(capsys, *argv)
        assert code == 2, case
        assert "error:" in err and out == "", case
        assert _fid_runs(env["tmp"] / "home") == [], case


def test_ranks_sharing_a_seed_block_take_alternate_batches_and_rank_0_gets_one_process_statistics(monkeypatch):
    """`shared_stats` on two ranks, the all-gather played by hand: rank r generates batches r, r + 2, ...; rank
    0 accumulates every batch in order and gets `compute_stats`'s statistics of the whole block, to the bit."""
    import edmctl.fid.shared as shared
    from edmctl.train.distributed import Dist

    det = load_detector("pixels")
    generated = {0: [], 1: []}

    def make_batches(rank):
        def make(seeds):
            generated[rank].append(seeds)
            yield torch.stack([torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8,
                                             generator=torch.Generator().manual_seed(s)) for s in seeds])
        return make

    sent = []  # rank 1's rows of each round, handed to rank 0 in the same round
    monkeypatch.setattr(shared, "gather_rows", lambda dist, rows, capacity: sent.append(rows) or [rows])
    assert shared.shared_stats(make_batches(1), det, 48, range(29), 8, Dist(rank=1, world_size=2)) is None
    rounds = iter(sent)
    monkeypatch.setattr(shared, "gather_rows", lambda dist, rows, capacity: [rows, next(rounds)])
    measured = shared.shared_stats(make_batches(0), det, 48, range(29), 8, Dist(rank=0, world_size=2))
    assert generated == {0: [range(0, 8), range(16, 24)], 1: [range(8, 16), range(24, 29)]}
    alone = compute_stats((b for i in range(0, 29, 8) for b in make_batches(0)(range(i, min(i + 8, 29)))), det).stats
    assert measured.num_images == 29 and np.array_equal(measured.stats.mu, alone.mu)
    assert np.array_equal(measured.stats.sigma, alone.sigma)
