"""Cats vs dogs: a folder of photos per class under DATA_DIR/cats-dogs."""
from __future__ import annotations

from ml.data.photos import photo_folder_spec
from ml.data.registry import register_dataset

register_dataset(photo_folder_spec(
    "cats_dogs", "cats-dogs", ["cat", "dog"],
    "Photos of cats and dogs (Kaggle Dogs vs. Cats subset), RGB resized to image_size; 80/10/10 split.",
))
