"""Seeded data sets."""
from .classification import rings, moons, spirals, train_test_split, DATASETS, get_dataset

__all__ = ["rings", "moons", "spirals", "train_test_split", "DATASETS", "get_dataset"]
