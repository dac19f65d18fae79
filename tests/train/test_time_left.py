"""The progress bar's time left (gptkit.train.time_left.TimeLeft)."""

import pytest

from gptkit.train.time_left import TimeLeft


def ramped(per_step: float, per_work: float, shares: list[float], every: int = 10) -> TimeLeft:
    """A run whose steps took per_step + per_work x share seconds, logged every ``every`` steps."""
    time_left = TimeLeft()
    for share in shares:
        time_left.add(every, every * share, every * (per_step + per_work * share))
    return time_left


def test_a_ramped_run_is_estimated_with_its_per_step_cost():
    time_left = ramped(0.05, 0.3, [0.25] * 5 + [0.5] * 5)  # 8 then 16 of 32 rows: 0.125 s then 0.2 s a step
    # 100 steps of whole batches left: 35 s, where time proportional to work would say 60 s
    assert time_left.left(100, 100.0) == pytest.approx(35.0)


def test_before_the_steps_differ_the_estimate_is_proportional_to_work():
    time_left = ramped(0.05, 0.3, [0.25] * 5)
    assert time_left.left(100, 100.0) == pytest.approx(100 * 0.125 / 0.25)
    assert TimeLeft().left(100, 100.0) == 0.0


def test_noise_that_would_make_a_part_negative_falls_back_to_proportional():
    time_left = TimeLeft()
    time_left.add(10, 2.5, 2.0)  # smaller steps that took longer
    time_left.add(10, 5.0, 1.0)
    assert time_left.left(10, 5.0) == pytest.approx(3.0 * 5.0 / 7.5)
