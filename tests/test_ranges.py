"""Video ranges: made from lengths, and the one check (gaps allowed, or contiguous from 0 as C2FPL needs)."""
from pathlib import Path

import numpy as np
import pytest

from utils.errors import InputError
from utils.ranges import check_ranges, ranges_from_lengths


def test_ranges_from_lengths():
    ranges = ranges_from_lengths(np.array([5, 1, 7, 3], dtype=np.int32))
    assert ranges.dtype == np.int64 and ranges.tolist() == [[0, 5], [5, 6], [6, 13], [13, 16]]
    assert ranges_from_lengths([4]).tolist() == [[0, 4]]
    np.testing.assert_array_equal(check_ranges("r", ranges, 16, contiguous=True), ranges)


@pytest.mark.parametrize("contiguous", [False, True])
def test_valid_ranges_come_back_as_int64(contiguous):
    ranges = np.array([[0, 3], [3, 5]], dtype=np.int32)
    checked = check_ranges("r.npy", ranges, 7, contiguous)
    assert checked.dtype == np.int64 and checked.tolist() == [[0, 3], [3, 5]]


@pytest.mark.parametrize("ranges, problem", [
    ([[2, 5], [5, 9]], "video 0 starts at snippet 2: contiguous ranges must start at snippet 0"),
    ([[0, 5], [7, 9]], "ranges are not contiguous: video 1 starts at 7, video 0 ends at 5"),
])
def test_gaps_are_refused_only_when_contiguous(ranges, problem):
    assert check_ranges("r.npy", np.array(ranges), 9).tolist() == ranges
    with pytest.raises(InputError) as error:
        check_ranges(Path("dir/r.npy"), np.array(ranges), 9, contiguous=True)
    assert str(error.value) == f"{Path('dir/r.npy')}: {problem}"


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("ranges, problem", [
    (np.zeros((0, 2), np.int64), "no video ranges (shape (0, 2))"),
    ([[0, 5], [5, 5]], "video 1 has range [5, 5): T = 0 snippets, need T > 0 (1 such videos)"),
    ([[0, 5], [3, 9]], "video 1 range [3, 9) overlaps or precedes video 0 [0, 5)"),
    ([[0, 5], [5, 10]], "video 1 range [5, 10) runs past the end of the features (9 snippets)"),
])
def test_problems_of_either_mode_are_one_line_naming_the_file(ranges, problem, contiguous):
    with pytest.raises(InputError) as error:
        check_ranges("r.npy", np.array(ranges), 9, contiguous)
    assert str(error.value) == f"r.npy: {problem}"
