"""Datasets by name: `load_dataset` gives normalised in-memory tensors split train/val/test."""
from ml.data.base import DatasetBundle, RawDataset, TensorSplit
from ml.data.load import clear_memo, load_dataset
from ml.data.registry import (
    DatasetSpec, builtin_dataset_names, dataset_names, describe_dataset, get_dataset_spec, register_dataset,
    use_uploaded_datasets,
)

__all__ = [
    "DatasetBundle", "DatasetSpec", "RawDataset", "TensorSplit", "builtin_dataset_names", "clear_memo",
    "dataset_names", "describe_dataset", "get_dataset_spec", "load_dataset", "register_dataset",
    "use_uploaded_datasets",
]
