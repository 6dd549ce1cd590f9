"""Cost: a run's estimate before anything is sent, when to ask first, and what was spent by timeline and by day."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

__all__ = ["Estimate", "estimate", "spend_report"]


@dataclass(frozen=True)
class Estimate:
    """What a set of planned jobs is expected to cost, and on what basis."""

    usd: float                  # the jobs with a published price
    jobs: int
    unpriced: int               # jobs whose service publishes no price: their cost is unknown
    basis: tuple[str, ...]      # one line per service and model: rate x seconds, and where the rate comes from

    def needs_confirmation(self, threshold_usd: float) -> bool:
        """Ask first when the estimate is above the threshold, or when part of it cannot be known."""
        return self.usd > threshold_usd or self.unpriced > 0

    def sentence(self) -> str:
        unknown = f", plus {self.unpriced} job(s) at a price the service does not publish" if self.unpriced else ""
        return f"estimated ${self.usd:.2f} for {self.jobs} job(s){unknown}"


def estimate(plans) -> Estimate:
    """Sum the plans' estimates per service and model (`Plan.estimate_usd`, `Plan.price_basis`)."""
    from .limits import limits_for

    groups: dict[tuple[str, str], list] = {}
    for plan in plans:
        groups.setdefault((plan.provider, plan.model), []).append(plan)
    usd, unpriced, basis = 0.0, 0, []
    for (provider, model), group in groups.items():
        limits = limits_for(provider, model)
        seconds = sum(p.input_seconds for p in group)
        if limits.price_usd_per_s is None:
            unpriced += len(group)
            basis.append(f"{provider} {model}: {seconds:.1f} s of input at an unknown rate ({limits.price_basis})")
            continue
        cost = sum(p.estimate_usd or 0.0 for p in group)
        usd += cost
        basis.append(f"{provider} {model}: ${limits.price_usd_per_s:.2f}/s x {seconds:.1f} s = ${cost:.2f} "
                     f"(source: {limits.price_source})")
    return Estimate(round(usd, 2), sum(len(g) for g in groups.values()), unpriced, tuple(basis))


def spend_report(ledger: list[dict]) -> dict[str, list[dict]]:
    """Spend by timeline and by day from the journal's ledger rows.

    `spent` counts requests the service took (sent or charged) at their estimate; failed and cancelled
    requests are counted apart, since a service may or may not bill them.
    """
    def bucket(rows: dict, key: str, row: dict) -> None:
        b = rows.setdefault(key, {"key": key, "requests": 0, "spent_usd": 0.0, "unpriced": 0, "failed": 0, "cancelled": 0})
        b["requests"] += 1
        if row["status"] in ("failed", "cancelled"):
            b[row["status"]] += 1
        elif row["usd"] is None:
            b["unpriced"] += 1
        else:
            b["spent_usd"] = round(b["spent_usd"] + row["usd"], 2)

    by_timeline: dict[str, dict] = {}
    by_day: dict[str, dict] = {}
    for row in ledger:
        bucket(by_timeline, row["timeline"], row)
        bucket(by_day, _dt.datetime.fromtimestamp(row["at"]).date().isoformat(), row)
    return {"by_timeline": sorted(by_timeline.values(), key=lambda b: -b["spent_usd"]),
            "by_day": sorted(by_day.values(), key=lambda b: b["key"])}
