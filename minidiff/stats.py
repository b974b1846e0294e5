"""The statistics every lesson and benchmark uses, and the summary table that computes its verdicts.

A claim "A beats B" is judged on paired differences: it *holds* when their mean lies more than two
standard errors from zero on the claimed side (:func:`significant`). :class:`Claims` collects a
lesson's claims with what was measured and shows them as a table (styled HTML in a notebook, text
elsewhere) whose verdicts are computed, never written by hand. The measured figures are printed between ``⟨ ⟩``: the notebook tests
(``tests/nbval_sanitize.cfg``) compare a checked cell's verdicts and counts but not those figures,
which move in their last digits with the CPU and the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tables import html_table, show


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (ddof = 1) of a 1-D array of n ≥ 2 values; s.e. 0 for n = 1."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("mean_se needs at least one value")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0


def fmt(values, digits: int = 2) -> str:
    """``"mean ± s.e."`` with ``digits`` decimals."""
    m, se = mean_se(values)
    return f"{m:.{digits}f} ± {se:.{digits}f}"


def significant(values, sign: int) -> bool:
    """Whether the mean of (paired) ``values`` lies more than two standard errors from 0 on the side of ``sign``."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    m, se = mean_se(values)
    return bool(sign * m > 2 * se)


def bootstrap_se(statistic, samples, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error of ``statistic(samples)`` over resamples of the first axis."""
    samples = np.asarray(samples)
    rng = np.random.default_rng(seed)
    values = [statistic(samples[rng.integers(0, len(samples), len(samples))]) for _ in range(n_boot)]
    return float(np.std(values, ddof=1))


@dataclass
class Claims:
    """A lesson's summary table: each claim with its measured figure and a computed verdict.

    Example::

        claims = Claims("tiny-sd, 12 edits")
        claims.paired("null-text + P2P keeps more background than DDIM + P2P", nti - ddim, +1, "dB")
        claims.add("tiny-sd follows prompts at w = 1 (≥ 0.8)", accuracy >= 0.8, f"{accuracy:.2f}")
        claims.show()
    """

    title: str = ""
    rows: list[tuple[str, bool, str, bool]] = field(default_factory=list)

    def add(self, claim: str, holds: bool, measured: str = "", stable: bool = True) -> bool:
        """A claim whose verdict the caller computed (a threshold, an exact identity).

        ``stable=False`` marks a verdict that rests on a quantity which moves between machines by more
        than its distance to the threshold (a bisection at float32 rounding, a tie of small counts): it
        is shown between ⟨ ⟩ with the figures, so the notebook tests do not compare it.
        """
        self.rows.append((claim, bool(holds), measured, stable))
        return bool(holds)

    def paired(self, claim: str, differences, sign: int, unit: str = "", digits: int = 1, stable: bool = True) -> bool:
        """A claim that paired ``differences`` lie on the side of ``sign``, more than two s.e. from 0."""
        return self.add(claim, significant(differences, sign), f"{fmt(differences, digits)} {unit}".strip(), stable)

    def __getitem__(self, claim: str) -> bool:
        for c, holds, _, _ in self.rows:
            if c == claim:
                return holds
        raise KeyError(claim)

    def table(self) -> str:
        width = max([len(c) for c, *_ in self.rows] + [5])
        lines = [self.title] if self.title else []
        for c, h, m, stable in self.rows:
            verdict = "holds" if h else "does not hold"
            if not stable:
                lines.append(f"{c:<{width}}  ⟨{verdict}; {m}; not compared across machines⟩")
            else:
                lines.append(f"{c:<{width}}  {verdict:<13}  ⟨{m}⟩" if m else f"{c:<{width}}  {verdict}")
        return "\n".join(lines + [self._count()])

    def _count(self) -> str:
        stable = [h for _, h, _, st in self.rows if st]
        if len(stable) == len(self.rows):
            return f"{len(self.rows)} claims tested, {sum(stable)} hold"
        # the unstable verdicts stay out of the count that is compared
        return f"{len(self.rows)} claims tested; {sum(stable)} of the {len(stable)} compared across machines hold"

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        rows, classes = [], []
        for c, h, m, stable in self.rows:
            verdict = "holds" if h else "does not hold"
            if stable:
                rows.append([c, verdict, f"⟨{m}⟩" if m else ""])
                classes.append(["", "holds" if h else "fails", ""])
            else:  # its colour would show the verdict that the notebook tests must not compare
                rows.append([c, f"⟨{verdict}⟩", f"⟨{m}; not compared across machines⟩"])
                classes.append(["", "unstable", "unstable"])
        return html_table(["claim", "verdict", "measured"], rows, self.title, self._count(), classes)

    def show(self) -> None:
        """Display the table: styled HTML (green: holds, red: does not hold) and its text in a notebook."""
        show(self)
