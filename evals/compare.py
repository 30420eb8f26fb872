"""Is a difference between two runs real or noise?

Cases are paired (same case, same repeat; and same target and prompt when both sides hold
several). For each assertion: pass rates with an exact McNemar test on the discordant pairs
(the cases that passed on one side only), and the mean score's change with a paired bootstrap
95% interval. A regression is significant when B fails more cases than A and McNemar's p is
below ``alpha``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from evals.store import Result

CASE = "(case)"  # the whole case: every assertion passed


@dataclass
class Delta:
    assertion: str
    pairs: int
    pass_a: float
    pass_b: float
    regressed: list[str]  # cases that passed in A and fail in B
    improved: list[str]
    p_value: float
    mean_a: float
    mean_b: float
    ci: tuple[float, float]  # 95% interval of mean(B - A)

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, Any]:
        return {"assertion": self.assertion, "pairs": self.pairs, "pass_a": self.pass_a,
                "pass_b": self.pass_b, "regressed": self.regressed, "improved": self.improved,
                "p_value": self.p_value, "mean_a": self.mean_a, "mean_b": self.mean_b,
                "delta": self.mean_b - self.mean_a, "ci95": list(self.ci)}


@dataclass
class Comparison:
    a: str
    b: str
    deltas: list[Delta] = field(default_factory=list)
    unpaired: int = 0
    alpha: float = 0.05

    def regressions(self, assertion: str | None = None) -> list[Delta]:
        """Assertions (or the one named) whose pass rate fell significantly."""
        return [d for d in self.deltas if (assertion is None or d.assertion == assertion)
                and len(d.regressed) > len(d.improved) and d.p_value < self.alpha]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "alpha": self.alpha, "unpaired": self.unpaired,
                "deltas": [d.to_dict() for d in self.deltas]}


def select(results: list[Result], target: str | None, prompt: str | None) -> list[Result]:
    return [r for r in results if (target is None or r.target == target)
            and (prompt is None or r.prompt == prompt)]


def mcnemar(regressed: int, improved: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test on the discordant pairs."""
    n = regressed + improved
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(min(regressed, improved), n, 0.5).pvalue)


def bootstrap_ci(diffs: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% interval of the mean difference."""
    if not diffs:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return (means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1])


def compare(a: list[Result], b: list[Result], *, a_name: str = "A", b_name: str = "B",
            alpha: float = 0.05) -> Comparison:
    """Pair the results of two runs (or two selections of one) and test every assertion."""
    several = len({(r.target, r.prompt) for r in a}) > 1 or \
        len({(r.target, r.prompt) for r in b}) > 1

    def key(r: Result) -> tuple[Any, ...]:
        return (r.case_id, r.repeat, r.target, r.prompt) if several else (r.case_id, r.repeat)

    left, right = {key(r): r for r in a}, {key(r): r for r in b}
    pairs = [(left[k], right[k]) for k in sorted(left.keys() & right.keys())]
    out = Comparison(a_name, b_name, unpaired=len(left.keys() ^ right.keys()), alpha=alpha)
    labels = [CASE] + sorted({name for ra, rb in pairs for name in ra.scores.keys()
                              & rb.scores.keys()})
    for label in labels:
        rows = []
        for ra, rb in pairs:
            if label == CASE:
                rows.append((ra, ra.passed, rb.passed, ra.score, rb.score))
            elif label in ra.scores and label in rb.scores:
                sa, sb = ra.scores[label], rb.scores[label]
                rows.append((ra, sa["passed"], sb["passed"], sa["score"], sb["score"]))
        if not rows:
            continue
        name = lambda r: r.case_id + (f" ({r.target}/{r.prompt})" if several else "")  # noqa: E731
        regressed = [name(r) for r, pa, pb, _, _ in rows if pa and not pb]
        improved = [name(r) for r, pa, pb, _, _ in rows if pb and not pa]
        n = len(rows)
        out.deltas.append(Delta(
            label, n, sum(pa for _, pa, _, _, _ in rows) / n,
            sum(pb for _, _, pb, _, _ in rows) / n, regressed, improved,
            mcnemar(len(regressed), len(improved)),
            sum(sa for *_, sa, _ in rows) / n, sum(sb for *_, sb in rows) / n,
            bootstrap_ci([sb - sa for *_, sa, sb in rows])))
    return out
