"""The progress bar's time left (gptkit.train.time_left.TimeLeft)."""

import pytest

from gptkit.train.time_left import TimeLeft

RAMP = [0.25] * 20 + [0.5] * 20 + [1.0] * 20  # 8, then 16, then 32 of 32 rows


def test_sizes_already_run_are_priced_at_their_own_rate():
    time_left = TimeLeft(RAMP)
    time_left.done([0.25] * 10, 1.0)  # 0.1 s a step
    time_left.done([0.25] * 10, 1.0)
    time_left.done([0.5] * 10, 1.5)  # 0.15 s a step
    # 10 more of 16 rows at 0.15 s; 20 of 32 priced from 16 rows' rate: 0.15 x 2 = 0.3 s each
    assert time_left.seconds() == pytest.approx(10 * 0.15 + 20 * 0.3)


def test_before_any_step_ran_nothing_is_promised_and_after_the_last_nothing_is_left():
    time_left = TimeLeft(RAMP)
    assert time_left.seconds() == 0.0
    for size in (0.25, 0.5, 1.0):
        time_left.done([size] * 20, 2.0)
    assert time_left.seconds() == 0.0


def test_a_stretch_across_two_sizes_counts_its_steps_but_sets_no_rate():
    time_left = TimeLeft(RAMP)
    time_left.done([0.25] * 20, 2.0)
    time_left.done([0.5] * 5 + [1.0] * 5, 5.0)
    assert set(time_left.rate) == {0.25}
    assert time_left.seconds() == pytest.approx((15 * 0.5 + 15 * 1.0) * 0.1 / 0.25)
