"""`dataset.json`, as NVlabs/edm's dataset_tool writes it: `{"labels": [["00000/img00000000.png", 6], ...]}`
(or `{"labels": null}` for an unlabelled dataset)."""

import json

import torch

from edmctl.errors import UserError

LABELS_FILE = "dataset.json"
MAX_CLASSES = 1 << 16  # class indices 0..65535: ImageNet-21k has 21,841 classes; a larger index is a damaged file


def parse_labels(text: bytes | str, where: str, image_names: list[str]) -> torch.Tensor | None:
    """The int64 label of each name in `image_names`, in that order, from the text of a dataset.json.

    None when the file says `"labels": null`. Every listed file must exist and every image must be listed.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{where} is not valid JSON ({e}).") from None
    except RecursionError:
        raise UserError(f"{where} nests arrays or objects too deeply to read; it holds {{\"labels\": [[file, class], ...]}}.") from None
    if not isinstance(doc, dict) or "labels" not in doc:
        raise UserError(f"{where} must be an object with a \"labels\" key: {{\"labels\": [[file, class], ...]}}.")
    entries = doc["labels"]
    if entries is None:
        return None
    return torch.tensor(_labels_in_order(_label_table(entries, where), where, image_names), dtype=torch.int64)


def _label_table(entries: object, where: str) -> dict[str, int]:
    if not isinstance(entries, list):
        raise UserError(f"{where}: \"labels\" must be a list of [file, class] pairs or null.")
    table: dict[str, int] = {}
    for entry in entries:
        ok = (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
              and isinstance(entry[1], int) and not isinstance(entry[1], bool))
        if not ok:
            raise UserError(f"{where}: every label must be a [file, integer class] pair, got {json.dumps(entry)}.")
        name, label = entry
        if not 0 <= label < MAX_CLASSES:
            raise UserError(f"{where}: class of {name} must be an integer label in 0..{MAX_CLASSES - 1}, got {label}.")
        table[name.replace("\\", "/")] = label
    return table


def _labels_in_order(table: dict[str, int], where: str, image_names: list[str]) -> list[int]:
    missing_files = sorted(set(table) - set(image_names))
    if missing_files:
        raise UserError(f"{where} labels {len(missing_files)} file(s) that are not in the dataset, "
                        f"e.g. {missing_files[0]}.")
    unlabelled = [name for name in image_names if name not in table]
    if unlabelled:
        raise UserError(f"{where} has no label for {len(unlabelled)} image(s), e.g. {unlabelled[0]}.")
    return [table[name] for name in image_names]
