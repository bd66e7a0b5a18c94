"""Training data: every source behind `open_dataset`, uint8 images until `to_model_range`, the data's std
against sigma_data, and converters to the EDM dataset format (`edmctl.data.convert`)."""

from edmctl.data.dataset import NO_LABEL, ArrayDataset, ImageDataset, to_model_range
from edmctl.data.sources import open_dataset
from edmctl.data.stats import check_sigma_data, measure_std

__all__ = [
    "NO_LABEL",
    "ArrayDataset",
    "ImageDataset",
    "check_sigma_data",
    "measure_std",
    "open_dataset",
    "to_model_range",
]
