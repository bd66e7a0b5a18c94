"""Data: every source loads as uint8 (C, H, W) with its labels, malformed input gets one clear error naming the
file, and the converters write the EDM dataset format that loads back identically."""

import gzip
import io
import json
import os
import pickle
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from edmctl.cli.main import main
from edmctl.data import NO_LABEL, check_sigma_data, measure_std, open_dataset, to_model_range
from edmctl.data.convert import convert_dataset
from edmctl.data.convert.safe_pickle import safe_loads
from edmctl.data.convert.writer import archive_name
from edmctl.errors import UserError

RNG = np.random.default_rng(0)


def random_images(n: int, size: int = 8, channels: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)


def edm_folder(root: Path, images: np.ndarray, labels: list[int] | None) -> Path:
    """A folder in the EDM dataset format, as dataset_tool lays it out."""
    for i, image in enumerate(images):
        save_png(root / archive_name(i), image)
    entries = None if labels is None else [[archive_name(i), label] for i, label in enumerate(labels)]
    (root / "dataset.json").write_text(json.dumps({"labels": entries}))
    return root


def zip_folder(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return dest


def all_of(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.get_batch(range(len(dataset)))


def nhwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


# --- sources -------------------------------------------------------------------------------------------------


def test_digits_are_1797_grayscale_8x8_images_of_10_classes():
    from sklearn.datasets import load_digits

    ds = open_dataset("digits", conditional=True)
    assert (len(ds), ds.shape, ds.num_classes, ds.has_labels) == (1797, (1, 8, 8), 10, True)
    images, labels = all_of(ds)
    assert images.dtype == torch.uint8 and int(images.max()) == 255
    bunch = load_digits()
    assert torch.equal(images[:, 0], torch.from_numpy(np.rint(bunch.images * 255 / 16).astype(np.uint8)))
    assert labels.tolist() == bunch.target.tolist()
    image, label = ds[5]
    assert image.shape == (1, 8, 8) and label == int(bunch.target[5])


def test_unconditional_datasets_carry_label_minus_one_and_no_classes():
    ds = open_dataset("digits")
    assert ds.has_labels and ds.num_classes == 0 and ds.labels is None
    assert ds[0][1] == NO_LABEL and all_of(ds)[1].eq(NO_LABEL).all()


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_edm_format_loads_images_and_labels_in_file_order(tmp_path, as_zip):
    images, labels = random_images(12), [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    source = edm_folder(tmp_path / "ds", images, labels)
    if as_zip:
        source = zip_folder(source, tmp_path / "ds.zip")
    ds = open_dataset(str(source), conditional=True)
    assert (len(ds), ds.shape, ds.num_classes) == (12, (3, 8, 8), 10)
    got_images, got_labels = all_of(ds)
    assert np.array_equal(nhwc(got_images), images) and got_labels.tolist() == labels
    assert ds[3][1] == 1 and torch.equal(ds[3][0], got_images[3])


def test_plain_image_folder_is_read_recursively_in_sorted_path_order(tmp_path):
    images = random_images(3, channels=1)
    for name, image in zip(["b/2.png", "a.png", "b/1.png"], images):
        save_png(tmp_path / name, image)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = open_dataset(str(tmp_path))
    assert ds.shape == (1, 8, 8) and not ds.has_labels
    assert np.array_equal(nhwc(all_of(ds)[0]), images[[1, 2, 0]])  # a.png, b/1.png, b/2.png


def test_npz_accepts_nchw_nhwc_and_model_range_floats(tmp_path):
    images, labels = random_images(5), np.arange(5)
    np.savez(tmp_path / "nhwc.npz", images=images, labels=labels)
    np.savez(tmp_path / "nchw.npz", images=images.transpose(0, 3, 1, 2))
    floats = to_model_range(torch.from_numpy(images)).numpy()
    np.savez(tmp_path / "float.npz", images=floats)
    for name in ("nhwc", "nchw", "float"):
        ds = open_dataset(str(tmp_path / f"{name}.npz"))
        assert ds.shape == (3, 8, 8) and np.array_equal(nhwc(all_of(ds)[0]), images), name
    assert all_of(open_dataset(str(tmp_path / "nhwc.npz"), conditional=True))[1].tolist() == labels.tolist()


def test_get_batch_matches_item_by_item_access(tmp_path):
    source = zip_folder(edm_folder(tmp_path / "ds", random_images(6), list(range(6))), tmp_path / "ds.zip")
    for ds in (open_dataset("digits", conditional=True), open_dataset(str(source), conditional=True)):
        idx = [4, 0, 4, 2]
        images, labels = ds.get_batch(idx)
        assert images.shape == (4, *ds.shape) and images.dtype == torch.uint8
        assert torch.equal(images, torch.stack([ds[i][0] for i in idx]))
        assert labels.tolist() == [ds[i][1] for i in idx]
    zipped = open_dataset(str(source))
    assert torch.equal(zipped.load_all().images, all_of(zipped)[0])


def test_max_images_keeps_the_first_n_and_changes_the_fingerprint(tmp_path):
    source = str(edm_folder(tmp_path / "ds", random_images(5), None))
    np.savez(tmp_path / "a.npz", images=random_images(5))
    for src in (source, str(tmp_path / "a.npz"), "digits"):
        full, head = open_dataset(src), open_dataset(src, max_images=3)
        assert len(head) == 3 and torch.equal(all_of(head)[0], all_of(full)[0][:3])
        assert head.source_hash != full.source_hash and full.source_hash == open_dataset(src).source_hash
    assert open_dataset("digits", max_images=3, conditional=True).num_classes == 10  # the label space stays whole


def test_fingerprint_follows_file_list_and_sizes(tmp_path):
    root = edm_folder(tmp_path / "ds", random_images(3), [0, 1, 2])
    before = open_dataset(str(root)).source_hash
    save_png(root / archive_name(1), np.zeros((8, 8, 3), np.uint8))  # same name, new content and size
    assert open_dataset(str(root)).source_hash != before


def test_zip_datasets_work_in_dataloader_workers(tmp_path):
    images = random_images(8)
    ds = open_dataset(str(zip_folder(edm_folder(tmp_path / "ds", images, None), tmp_path / "ds.zip")))
    ds[0]  # the parent has opened the archive; workers must open their own
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    got = torch.cat([batch for batch, _ in loader])
    assert np.array_equal(nhwc(got), images)
    assert torch.equal(pickle.loads(pickle.dumps(ds))[7][0], ds[7][0])


# --- malformed sources ---------------------------------------------------------------------------------------


def expect_error(match: str, source, **kwargs) -> None:
    with pytest.raises(UserError, match=match):
        open_dataset(str(source), **kwargs)


def test_mixed_sizes_and_non_square_images_are_refused_naming_the_file(tmp_path):
    save_png(tmp_path / "mixed/a.png", random_images(1, size=8)[0])
    save_png(tmp_path / "mixed/b.png", random_images(1, size=16)[0])
    expect_error(r"mixed/b\.png is 16x16.*a\.png is 8x8", tmp_path / "mixed")
    save_png(tmp_path / "wide/a.png", RNG.integers(0, 256, (8, 12, 3), dtype=np.uint8))
    expect_error(r"wide.*must be square, got 12x8", tmp_path / "wide")


def test_requested_resolution_and_channels_are_checked():
    expect_error(r"digits: images are 8x8 but resolution 32 was requested", "digits", resolution=32)
    expect_error(r"digits: images have 1 channel\(s\) but 3 were requested", "digits", channels=3)
    assert open_dataset("digits", resolution=8, channels=1).resolution == 8


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", r"dataset\.json is not valid JSON"),
        ('[["00000/img00000000.png", 0]]', r"dataset\.json must be an object with a \"labels\" key"),
        ('{"labels": {"a": 1}}', r"\"labels\" must be a list of \[file, class\] pairs"),
        ('{"labels": [["00000/img00000000.png", "cat"]]}', r"every label must be a \[file, integer class\] pair"),
        ('{"labels": [["00000/img00000000.png", 0], ["00000/img00000001.png", 1], ["gone.png", 2]]}',
         r"dataset\.json labels 1 file\(s\) that are not in the dataset, e\.g\. gone\.png"),
        ('{"labels": [["00000/img00000000.png", 0]]}', r"dataset\.json has no label for 1 image\(s\), e\.g\. 00000/img00000001"),
        ('{"labels": [["00000/img00000000.png", -1], ["00000/img00000001.png", 1]]}', r"must be an integer label in 0..65535"),
    ],
    ids=["malformed", "not-object", "not-list", "non-integer", "missing-file", "unlabelled-image", "negative"],
)
def test_bad_dataset_json_is_refused(tmp_path, text, match):
    root = edm_folder(tmp_path / "ds", random_images(2), None)
    (root / "dataset.json").write_text(text)
    expect_error(match, root)


def test_empty_or_missing_or_unreadable_sources_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("no images")
    expect_error(r"empty contains no images", tmp_path / "empty")
    expect_error(r"nowhere does not exist", tmp_path / "nowhere")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    expect_error(r"broken\.zip is not a readable zip file", tmp_path / "broken.zip")
    (tmp_path / "other.txt").write_text("x")
    expect_error(r"other\.txt is not a dataset edmctl can read", tmp_path / "other.txt")


def test_bad_npz_files_are_refused(tmp_path):
    np.savez(tmp_path / "noimages.npz", pixels=random_images(2))
    expect_error(r"noimages\.npz has no `images` array \(found: pixels\)", tmp_path / "noimages.npz")
    np.savez(tmp_path / "range.npz", images=np.full((2, 3, 4, 4), 2.0, np.float32))
    expect_error(r"range\.npz: float images must lie in \[-1, 1\]", tmp_path / "range.npz")
    np.savez(tmp_path / "shape.npz", images=np.zeros((2, 5, 4, 4), np.uint8))
    expect_error(r"shape\.npz: images of shape \(2, 5, 4, 4\)", tmp_path / "shape.npz")
    np.savez(tmp_path / "labels.npz", images=random_images(2), labels=np.zeros(3, np.int64))
    expect_error(r"labels\.npz: labels must be integers of shape \(2,\)", tmp_path / "labels.npz")


def test_conditional_training_needs_labels(tmp_path):
    root = edm_folder(tmp_path / "ds", random_images(2), None)
    expect_error(r"ds has no labels, so it cannot train a class-conditional model", root, conditional=True)
    np.savez(tmp_path / "x.npz", images=random_images(2))
    expect_error(r"x\.npz has no labels", tmp_path / "x.npz", conditional=True)


def test_images_with_alpha_need_an_explicit_conversion(tmp_path):
    save_png(tmp_path / "rgba/a.png", RNG.integers(0, 256, (4, 4, 4), dtype=np.uint8))
    expect_error(r"rgba/a\.png has PIL mode RGBA", tmp_path / "rgba")


# --- the data's standard deviation ---------------------------------------------------------------------------


def test_std_in_model_range_of_black_and_white_halves_is_one(tmp_path):
    images = np.zeros((4, 2, 2, 1), np.uint8)
    images[:2] = 255
    np.savez(tmp_path / "bw.npz", images=images)
    assert measure_std(open_dataset(str(tmp_path / "bw.npz"))) == pytest.approx(1.0)
    assert measure_std(open_dataset(str(tmp_path / "bw.npz")), max_images=2) == pytest.approx(1.0)  # both ends


def test_sigma_data_warning_beyond_25_percent():
    std = measure_std(open_dataset("digits"))
    expected = (to_model_range(all_of(open_dataset("digits"))[0]).double().std(unbiased=False))
    assert std == pytest.approx(float(expected), rel=1e-9)
    assert check_sigma_data(0.55, 0.5) is None and check_sigma_data(0.4, 0.5) is None
    warning = check_sigma_data(std, 0.5)
    assert warning is not None and "sigma_data" in warning and f"{std:.3f}" in warning


# --- converters ----------------------------------------------------------------------------------------------


def fake_cifar_tarball(path: Path, per_batch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The layout of cifar-10-python.tar.gz, pickled the way the original (Python 2, bytes keys) was."""
    images, labels = [], []

    def add(tar: tarfile.TarFile, name: str, obj: dict) -> None:
        data = pickle.dumps(obj, protocol=2)
        info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        for b in range(1, 6):
            batch = random_images(per_batch, size=32)
            batch_labels = RNG.integers(0, 10, per_batch).tolist()
            images.append(batch), labels.extend(batch_labels)
            add(tar, f"data_batch_{b}", {b"batch_label": b"training batch", b"labels": batch_labels,
                                         b"data": batch.transpose(0, 3, 1, 2).reshape(per_batch, -1),
                                         b"filenames": [b"x.png"] * per_batch})
        add(tar, "test_batch", {b"labels": [0], b"data": np.zeros((1, 3072), np.uint8)})
        add(tar, "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": per_batch})
    return np.concatenate(images), np.array(labels)


def test_cifar10_tarball_converts_to_an_edm_zip_that_loads_back_identically(tmp_path):
    images, labels = fake_cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    summary = convert_dataset(str(tmp_path / "cifar-10-python.tar.gz"), tmp_path / "cifar.zip")
    assert (summary["images"], summary["resolution"], summary["channels"]) == (15, 32, 3)
    ds = open_dataset(str(tmp_path / "cifar.zip"), conditional=True)
    got_images, got_labels = all_of(ds)
    assert np.array_equal(nhwc(got_images), images) and got_labels.tolist() == labels.tolist()
    with zipfile.ZipFile(tmp_path / "cifar.zip") as archive:
        assert archive.namelist()[0] == "00000/img00000000.png"
        assert json.loads(archive.read("dataset.json"))["labels"][1] == ["00000/img00000001.png", int(labels[1])]


def test_cifar_unpickling_refuses_anything_but_arrays():
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        safe_loads(pickle.dumps({b"data": Exploit()}, protocol=2))
    array = random_images(2)
    for protocol in (2, 4, 5):
        assert np.array_equal(safe_loads(pickle.dumps({"data": array}, protocol=protocol))["data"], array)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_idx_files_convert_to_an_edm_zip_that_loads_back_identically(tmp_path, gz):
    images, labels = random_images(4, size=28, channels=1), np.array([7, 2, 1, 0], np.uint8)
    write = (lambda p, b: p.with_name(p.name + ".gz").write_bytes(gzip.compress(b))) if gz else Path.write_bytes
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (4, 28, 28))
    write(tmp_path / "train-images-idx3-ubyte", header + images.tobytes())
    write(tmp_path / "train-labels-idx1-ubyte", (2049).to_bytes(4, "big") + (4).to_bytes(4, "big") + labels.tobytes())
    convert_dataset(str(tmp_path), tmp_path / "mnist.zip")
    ds = open_dataset(str(tmp_path / "mnist.zip"), conditional=True)
    assert ds.shape == (1, 28, 28)
    got_images, got_labels = all_of(ds)
    assert np.array_equal(nhwc(got_images), images) and got_labels.tolist() == labels.tolist()


def test_truncated_mnist_file_is_refused(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes((2051).to_bytes(4, "big") + (9).to_bytes(4, "big") * 3)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + (9).to_bytes(4, "big"))
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte holds 0 bytes of data but its header says"):
        convert_dataset(str(tmp_path), tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_digits_convert_with_max_images_and_resolution(tmp_path):
    summary = convert_dataset("digits", tmp_path / "d.zip", resolution=16, max_images=20)
    assert (summary["images"], summary["resolution"], summary["channels"], summary["labelled"]) == (20, 16, 1, True)
    ds = open_dataset(str(tmp_path / "d.zip"), conditional=True)
    assert ds.shape == (1, 16, 16) and all_of(ds)[1].tolist() == all_of(open_dataset("digits", conditional=True))[1][:20].tolist()


def test_image_folder_of_mixed_sizes_converts_with_resolution_by_center_crop(tmp_path):
    save_png(tmp_path / "src/a.png", np.full((10, 20, 3), 200, np.uint8))
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, 4:12] = 255  # the center square is white, the sides black
    save_png(tmp_path / "src/b.png", wide)
    save_png(tmp_path / "src/c.png", np.full((4, 4, 1), 7, np.uint8))  # grayscale joins as RGB
    with pytest.raises(UserError, match=r"a\.png is 20x10, not square: pass --resolution R"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip")
    summary = convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip", resolution=8)
    assert (summary["images"], summary["resolution"], summary["channels"], summary["labelled"]) == (3, 8, 3, False)
    images = all_of(open_dataset(str(tmp_path / "out.zip")))[0]
    assert images[1].eq(255).all() and images[0].eq(200).all() and images[2].eq(7).all()


# --- the command -----------------------------------------------------------------------------------------------


def stderr_of(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # undo the console's line wrapping


def test_cli_converts_and_reports_json(tmp_path, capsys):
    dest = tmp_path / "out/digits.zip"
    assert main(["dataset", "digits", str(dest), "--max-images", "30", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 30 and report["num_classes"] == 10 and report["kind"] == "digits"
    assert len(open_dataset(str(dest))) == 30


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["missing-folder"], "missing-folder does not exist"),
        (["{src}", "--resolution", "0"], "--resolution must be a positive integer"),
        (["{src}"], r"b\.png is 8x8 but earlier images are 4x4"),
        (["{tar}"], r"is not the CIFAR-10 python tarball \(no cifar-10-batches-py/data_batch_1"),
    ],
    ids=["missing", "bad-resolution", "mixed-sizes", "not-cifar"],
)
def test_cli_exits_2_on_bad_input_and_writes_nothing(tmp_path, capsys, args, match):
    save_png(tmp_path / "src/a.png", random_images(1, size=4)[0])
    save_png(tmp_path / "src/b.png", random_images(1, size=8)[0])
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src/a.png", "a.png")
    dest = tmp_path / "dest/out.zip"
    args = [a.format(src=tmp_path / "src", tar=tmp_path / "other.tar.gz") for a in args]
    assert main(["dataset", args[0], str(dest), *args[1:]]) == 2
    assert re.search(match, stderr_of(capsys))
    assert not dest.parent.exists()  # not even the folder it would have gone in


def test_cli_refuses_a_destination_that_is_not_a_zip(tmp_path, capsys):
    assert main(["dataset", "digits", str(tmp_path / "out.tar")]) == 2
    assert "must be a .zip file" in stderr_of(capsys) and not (tmp_path / "out.tar").exists()
