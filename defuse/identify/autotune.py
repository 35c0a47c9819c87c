"""The hot loop's batch size, chosen online where no single size is best.

On a CPU the best decode batch moved with the machine's load (measured on 2 shared cores: 256 when
calm, 1,024 beside another heavy process, a 2-3x swing). The tuner tries each candidate a few times,
interleaved so that a burst of load hits them alike, then keeps the fastest. Results do not depend
on the batch size (identify's noise is counter-based), so tuning changes speed only.
"""

from __future__ import annotations

import itertools

CPU_CANDIDATES = (256, 1024)


class BatchTuner:
    """``size()`` gives the next batch size, ``record()`` its measured time; fixed after the trials."""

    def __init__(self, candidates: tuple[int, ...], trials: int = 3):
        self.candidates = tuple(dict.fromkeys(int(c) for c in candidates))
        self._order = itertools.chain.from_iterable(itertools.repeat(self.candidates, trials))
        self._pending = next(self._order)
        self.rates: dict[int, list[float]] = {c: [] for c in self.candidates}
        self.chosen: int | None = self.candidates[0] if len(self.candidates) == 1 else None

    @classmethod
    def fixed(cls, size: int) -> BatchTuner:
        return cls((size,), trials=1)

    def size(self) -> int:
        return self.chosen if self.chosen is not None else self._pending

    def record(self, size: int, items: int, seconds: float) -> None:
        """One batch of ``items`` took ``seconds``; only full trial batches count."""
        if self.chosen is not None or size != self._pending or items < size or seconds <= 0:
            return
        self.rates[size].append(items / seconds)
        try:
            self._pending = next(self._order)
        except StopIteration:  # best of each candidate's trials: robust to a slow first (warm-up) batch
            self.chosen = max(self.candidates, key=lambda c: max(self.rates[c]))

    def summary(self) -> dict:
        return {"batch_size": self.size(), "batch_size_trials": {str(c): [round(r) for r in v]
                                                                 for c, v in self.rates.items() if v}}
