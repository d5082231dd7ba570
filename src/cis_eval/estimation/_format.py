"""Number formats and significance stars shared by the impact tables (private)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STARS", "fmt_value", "stars"]

STARS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
"""p-value cut-offs and their marks, strictest first."""


def stars(p: Any) -> str:
    """The significance mark of a p-value (empty above 0.10 or when undefined)."""
    for cut, mark in STARS:
        if np.isfinite(p) and p < cut:
            return mark
    return ""


def fmt_value(v: Any, o_type: Any, *, signed: bool = False) -> str:
    """An estimate or mean in its outcome's digits: binary 1, count 2, continuous 3."""
    if not np.isfinite(v):
        return ""
    if o_type == "binary":
        spec = "+.1f" if signed else ".1f"
    elif o_type == "count":
        spec = "+.2f" if signed else ".2f"
    else:
        spec = "+.3f" if signed else ".3f"
    return format(v, spec)
