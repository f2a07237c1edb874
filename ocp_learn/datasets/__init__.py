"""Seeded data sets."""
from .classification import rings, moons, spirals, train_test_split, DATASETS, get_dataset
from .real import REAL_DATASETS, LogitPreprocessing, Split, load_real

__all__ = ["rings", "moons", "spirals", "train_test_split", "DATASETS", "get_dataset",
           "REAL_DATASETS", "LogitPreprocessing", "Split", "load_real"]
