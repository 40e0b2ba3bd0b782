"""The score of a commune, 0 to 100: one formula, printed in the report so leaders can check it.

Each part is a percentage; a part without data counts 0 (a commune with nothing to show earns
nothing for it). Weights add up to 1.
"""

from __future__ import annotations

WEIGHTS = {"line": 0.4, "speed": 0.2, "pcs": 0.2, "use": 0.2}


def score(line_availability: float | None, speed_percent: float | None, pc_availability: float | None,
          unused_days: int, office_days: int) -> float:  # fmt: skip
    """0.4 × line availability + 0.2 × speed as % of contract (at most 100) + 0.2 × PC availability
    + 0.2 × share of office days the line was used."""
    used = 100.0 * (1 - unused_days / office_days) if office_days else 0.0
    parts = {
        "line": line_availability or 0.0,
        "speed": min(100.0, speed_percent or 0.0),
        "pcs": pc_availability or 0.0,
        "use": used,
    }
    return round(sum(WEIGHTS[k] * v for k, v in parts.items()), 1)
