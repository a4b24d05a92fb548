"""The presentation timeline's two rules against hand-worked slot counts: dropped frames, jittery timestamps,
frames faster than the slots, and resampling onto a grid."""
from fractions import Fraction

from video.timeline import at_nominal_rate, nearest_slot, on_grid


def shown(rule, times, rate, end) -> list[int]:
    """The frame index each output slot shows, frames named by their position."""
    out = []
    for frame, n in rule([(Fraction(t), k) for k, t in enumerate(times)], Fraction(rate), lambda: Fraction(end)):
        out += [frame] * n
    return out


def test_nearest_slot_rounds_halves_up():
    assert [nearest_slot(Fraction(k, 4), Fraction(1)) for k in range(9)] == [0, 0, 1, 1, 1, 1, 2, 2, 2]


def test_dropped_frames_repeat_the_previous_one():
    # coded frames at slots 0, 3, 4, 9 of a 15 fps stream whose index ends at slot 12
    got = shown(at_nominal_rate, [Fraction(s, 15) for s in (0, 3, 4, 9)], 15, Fraction(12, 15))
    assert got == [0, 0, 0, 1, 2, 2, 2, 2, 2, 3, 3, 3]


def test_a_constant_rate_with_rounded_timestamps_gives_its_frames_one_to_one():
    # 29.97 fps stored in milliseconds: each timestamp up to half a millisecond off its slot
    times = [Fraction(round(k * 1001 / 30), 1000) for k in range(300)]
    got = shown(at_nominal_rate, times, Fraction(30000, 1001), times[-1] + Fraction(1001, 30000))
    assert got == list(range(300))


def test_frames_faster_than_the_slots_are_all_shown_in_order():
    # 0, 10, 20 ms at 25 fps (40 ms slots): each takes the slot after the one before; then a gap to 200 ms
    assert shown(at_nominal_rate, [0, 0.01, 0.02, 0.2], 25, 0.24) == [0, 1, 2, 2, 2, 3]


def test_grid_shows_the_frame_on_screen_at_each_slot():
    times = [Fraction(k, 25) for k in range(10)]  # 25 fps -> 10 fps: slot k at k/10 s shows frame floor(2.5 k)
    assert shown(on_grid, times, 10, Fraction(10, 25)) == [0, 2, 5, 7]
    assert shown(on_grid, times, 50, Fraction(10, 25)) == [k // 2 for k in range(20)]
    # dropped frames on the grid: slots 0..5 at 5 fps, frames at 0 s and 0.5 s, the stream ending at 1.2 s
    assert shown(on_grid, [0, 0.5], 5, 1.2) == [0, 0, 0, 1, 1, 1]


def test_nothing_in_nothing_out():
    assert shown(at_nominal_rate, [], 25, 1) == shown(on_grid, [], 25, 1) == []
