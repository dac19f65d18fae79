"""The progress bar's time left, for runs whose steps grow (--batch-ramp, --block-ramp)."""

from __future__ import annotations


class TimeLeft:
    """Seconds left from a cost model fitted to the run so far: seconds = a x steps + b x work, a step's
    work being its share of a whole step's rows and positions (``Trainer.step_cost``). The per-step
    part a (the optimizer, a validation's share, Python) is what an estimate proportional to work alone
    misses: a ramped run's small early steps cost more than their share, so such an estimate starts
    high (4:11-5:40 shown for 3:57 of the default job, before this). Until the steps have differed in
    work, or where noise gives a part below zero, the estimate is proportional to work."""

    def __init__(self) -> None:
        # least squares sums over the intervals logged: n n, n w, w w, n t, w t, and the totals of w and t
        self.nn = self.nw = self.ww = self.nt = self.wt = self.work = self.seconds = 0.0

    def add(self, steps: int, work: float, seconds: float) -> None:
        """An interval of ``steps`` steps doing ``work`` in ``seconds``."""
        self.nn, self.nw, self.ww = self.nn + steps * steps, self.nw + steps * work, self.ww + work * work
        self.nt, self.wt = self.nt + steps * seconds, self.wt + work * seconds
        self.work, self.seconds = self.work + work, self.seconds + seconds

    def left(self, steps: int, work: float) -> float:
        """Seconds that ``steps`` more steps doing ``work`` will take."""
        det = self.nn * self.ww - self.nw * self.nw
        if det > 1e-6 * self.nn * self.ww:  # the intervals' work per step differed: both parts are known
            per_step = (self.nt * self.ww - self.wt * self.nw) / det
            per_work = (self.wt * self.nn - self.nt * self.nw) / det
            if per_step >= 0 and per_work >= 0:
                return per_step * steps + per_work * work
        return self.seconds * work / self.work if self.work else 0.0
