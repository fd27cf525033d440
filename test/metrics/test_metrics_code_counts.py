"""Code counting (the semantic scoring's histograms): numpy's exact counts for every shape and
size, including frames past float32's exact range, where it switches to np.bincount."""

from __future__ import annotations

import numpy as np
import pytest

from pixood_ros.metrics import code_counts
from pixood_ros.metrics.code_counts import count_codes


@pytest.mark.parametrize("shape", [(1080, 1920), (1, 1), (0,), (3, 4, 5), (100,)])
@pytest.mark.parametrize(("dtype", "length"), [(np.uint8, 256), (np.uint16, 65536), (np.uint8, 7)])
def test_counts_equal_bincount(shape: tuple[int, ...], dtype: type, length: int) -> None:
    codes = np.random.default_rng(len(shape)).integers(0, length, shape).astype(dtype)
    got = count_codes(codes, length)
    assert got.dtype == np.int64 and got.shape == (length,)
    np.testing.assert_array_equal(got, np.bincount(codes.ravel(), minlength=length))


def test_a_bin_past_float32s_exact_integers_is_still_counted_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frames of 2^24 pixels or more: float32 would round 2^24 + 1 to 2^24."""
    monkeypatch.setattr(code_counts, "_EXACT_LIMIT", 1000)
    codes = np.zeros(1001, np.uint8)
    codes[-1] = 3
    assert count_codes(codes, 4).tolist() == [1000, 0, 0, 1]


def test_a_code_past_the_length_is_refused() -> None:
    with pytest.raises(ValueError, match=r"codes at or above 5: \[9\]"):
        count_codes(np.array([[0, 9]], np.uint8), 5)


def test_other_dtypes_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        count_codes(np.zeros(4, np.int32), 4)
