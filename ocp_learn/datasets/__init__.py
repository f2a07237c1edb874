"""Seeded data sets."""
from .classification import rings, train_test_split

__all__ = ["rings", "train_test_split"]
