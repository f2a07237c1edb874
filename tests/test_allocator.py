import platform

import pytest

from ocp_learn.allocator import MMAP_THRESHOLD_MAX, tune_malloc


def test_tune_malloc_applies_on_glibc_and_rejects_bad_values():
    ok = tune_malloc()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert ok is True
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="mmap_threshold"):
            tune_malloc(mmap_threshold=bad)
    with pytest.raises(ValueError, match="at most"):
        tune_malloc(mmap_threshold=MMAP_THRESHOLD_MAX + 1)
    with pytest.raises(ValueError, match="trim_threshold"):
        tune_malloc(trim_threshold=0)
