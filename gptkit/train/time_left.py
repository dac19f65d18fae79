"""The progress bar's time left, for runs whose steps grow (--batch-ramp, --block-ramp)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class TimeLeft:
    """Seconds left, from what a step of each size has taken so far. A size not yet run is priced as
    the largest run so far, scaled by its work (its share of a whole step's rows and positions,
    ``Trainer.step_cost``). Scaling by work alone from the first, smallest steps overprices the rest,
    as part of a step's cost does not grow with it (the optimizer, Python); a line fitted through the
    small sizes underprices the large ones. So the estimate is high while only the first size has
    run and closes in as each size is met."""

    def __init__(self, costs: Iterable[float]):
        self.to_run = Counter(costs)  # the steps still to run, by cost
        self.rate: dict[float, tuple[int, float]] = {}  # cost -> (steps run, their seconds)

    def done(self, costs: list[float], seconds: float) -> None:
        """Steps of these costs ran in ``seconds`` (validation and checkpoints between them included)."""
        self.to_run.subtract(costs)
        if costs and len(set(costs)) == 1:  # one size: its rate; a stretch across sizes is left out
            steps, total = self.rate.get(costs[0], (0, 0.0))
            self.rate[costs[0]] = (steps + len(costs), total + seconds)

    def seconds(self) -> float:
        if not self.rate:
            return 0.0
        largest = max(self.rate)
        per_work = self.rate[largest][1] / self.rate[largest][0] / largest
        return sum(n * (self.rate[c][1] / self.rate[c][0] if c in self.rate else per_work * c)
                   for c, n in self.to_run.items() if n > 0)
