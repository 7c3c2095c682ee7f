"""A mergeable latency histogram, in microseconds.

Values below 256 µs are kept exactly; above, each power of two is split in
128 buckets (relative error under 0.4 %), like HdrHistogram with two
significant digits. Buckets are a plain ``dict`` so a worker process can ship
its histogram to the parent (pickle) and the parent can add them up.
"""

from __future__ import annotations

from typing import Any

_MANT_BITS = 8


def _key(us: int) -> int:
    shift = us.bit_length() - _MANT_BITS
    if shift <= 0:
        return us
    return (shift << _MANT_BITS) | (us >> shift)


def _value(key: int) -> float:
    """The middle of the bucket ``key`` stands for."""
    if key < (1 << _MANT_BITS):
        return float(key)
    shift = key >> _MANT_BITS
    mant = key & ((1 << _MANT_BITS) - 1)
    return (mant << shift) + (1 << shift) / 2


class Histogram:
    __slots__ = ("counts", "max", "n", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.total = 0
        self.max = 0

    def add(self, us: int) -> None:
        if us < 0:
            us = 0
        shift = us.bit_length() - _MANT_BITS
        key = us if shift <= 0 else (shift << _MANT_BITS) | (us >> shift)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.n += 1
        self.total += us
        if us > self.max:
            self.max = us

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for key, count in other.counts.items():
            counts[key] = counts.get(key, 0) + count
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The value (µs) at quantile ``q`` (0..1); None when empty."""
        if not self.n:
            return None
        rank = max(1, int(q * self.n + 0.999999))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(_value(key), float(self.max))
        return float(self.max)

    def summary_ms(self) -> dict[str, Any]:
        """count, mean, p50, p95, p99, p99.9 and max, in milliseconds."""
        if not self.n:
            return {"count": 0}

        def ms(us: float | None) -> float | None:
            return None if us is None else round(us / 1000.0, 3)

        return {
            "count": self.n,
            "mean": ms(self.total / self.n),
            "p50": ms(self.percentile(0.50)),
            "p95": ms(self.percentile(0.95)),
            "p99": ms(self.percentile(0.99)),
            "p999": ms(self.percentile(0.999)),
            "max": ms(self.max),
        }

    def __getstate__(self) -> tuple[dict[int, int], int, int, int]:
        return (self.counts, self.n, self.total, self.max)

    def __setstate__(self, state: tuple[dict[int, int], int, int, int]) -> None:
        self.counts, self.n, self.total, self.max = state


def merged(histograms: list[Histogram]) -> Histogram:
    out = Histogram()
    for h in histograms:
        out.merge(h)
    return out
