"""Fidelity charts: dosage histograms, schools against benchmarks, weekly contacts, dosage bands.

Each function draws on a given Matplotlib ``Axes`` and hides what the tables hide (bars
merged until each holds 0 or at least ``k`` students, suppressed schools and weeks left
out), so a chart never reveals a figure a table suppresses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..present.privacy import suppression_mask
from ..schema import OUTCOMES
from .frames import dose_frame, reached_rows
from .suppression import (
    coordinator_rows_hidden,
    dose_cuts,
    dose_masks,
    measure_cuts,
    network_hidden,
    pooled,
    row_masks,
    safe_histogram,
    weekly_series,
)
from .targets import MEASURES, student_column

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .result import FidelityResult

__all__ = [
    "draw_chart",
    "figure",
    "figure_benchmarks",
    "figure_dosage",
    "monthly_series",
    "plot_benchmarks",
    "plot_dosage",
    "plot_dose_response",
    "plot_monthly",
    "plot_weekly",
]


def _short(v: float) -> str:
    """A target for a legend: one decimal at most (pro-rated targets are fractions)."""
    return f"{v:.1f}".removesuffix(".0")


def draw_chart(res: FidelityResult, kind: str, ax: Axes, measure: str, k: int) -> Axes:
    """Draw chart ``kind`` of ``res`` on ``ax`` (options already checked).

    Parameters
    ----------
    res : FidelityResult
        The result to draw.
    kind : {"dosage", "benchmarks", "weekly", "dose_response"}
        The chart.
    ax : matplotlib.axes.Axes
        Axes to draw on.
    measure : str
        Dosage measure, or the outcome for ``"dose_response"``.
    k : int
        Smallest number of students a drawn figure may describe.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if kind == "dosage":
        return plot_dosage(res, ax, measure, k)
    if kind == "benchmarks":
        return plot_benchmarks(res, ax, measure, k)
    if kind == "weekly":
        return plot_weekly(res, ax, k)
    return plot_dose_response(res, ax, measure, k)


def plot_dosage(res: FidelityResult, ax: Axes, measure: str, k: int) -> Axes:
    """Distribution of one dosage measure among program students reached."""
    m = MEASURES[measure]
    ax.set_xlabel(m.label, fontsize=9)
    ax.set_ylabel("Students reached", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    hidden, _ = network_hidden(res, k)
    cuts = measure_cuts(res, measure, k)
    # Bars that add up to the students reached would give that count away when it is
    # hidden (it would reveal how many were not reached): draw shares instead.
    as_share = row_masks(res, k).total_reached or (measure == "contacts" and 1.0 not in cuts)
    if hidden:
        ax.text(
            0.5,
            0.5,
            "suppressed (too few students)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
            color="#777",
        )
        return ax
    v = reached_rows(res)[student_column(measure)].astype(float).dropna().to_numpy()
    width = {"contacts": 5.0, "hours": 4.0, "weeks": 4.0, "active_weeks": 4.0}.get(measure, 1.0)
    edges, counts = safe_histogram(v, width, k, cuts)
    unit = {"contacts": "contacts", "hours": "hours"}.get(measure, "weeks")
    # Merged bars are wider: draw density (students per standard bar width) so that a
    # wide bar does not look like a crowd.
    ax.set_ylabel(f"Students per {width:g} {unit}", fontsize=9)
    if as_share and counts.sum() > 0:
        counts = 100 * counts / counts.sum()
        ax.set_ylabel(f"% of students reached per {width:g} {unit}", fontsize=9)
    if len(counts):
        ax.bar(
            edges[:-1],
            counts * width / np.diff(edges),
            width=np.diff(edges),
            align="edge",
            color="#5b8fa8",
            edgecolor="white",
        )
    for which, style, name in (("study", "-", "study"), ("user", "--", "target")):
        t = res.targets.get(measure, which)  # type: ignore[arg-type]
        if t is not None and t.low is not None:
            ax.axvline(
                t.low,
                color="#a03000",
                linestyle=style,
                linewidth=1.5,
                label=f"{name}: {_short(t.low)}",
            )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8)
    return ax


def plot_benchmarks(res: FidelityResult, ax: Axes, measure: str, k: int) -> Axes:
    """Each school's mean of one measure against the study benchmark and the target."""
    res = pooled(res, k)
    s = res.to_frame("school")
    hidden = row_masks(res, k).dosage
    col = f"{measure}_{MEASURES[measure].statistic}"
    y = np.arange(len(s))[::-1]
    status = s.get(f"status_{measure}", pd.Series([""] * len(s))).tolist()
    palette = {"meets": "#2b7a3d", "near": "#c58a00", "below": "#a03000", "above": "#a03000"}
    vals = s[col].astype(float).to_numpy()
    show = ~hidden & np.isfinite(vals)
    ax.scatter(
        vals[show],
        y[show],
        c=[palette.get(st, "#555") for st, ok in zip(status, show, strict=True) if ok],
        zorder=3,
        s=22,
    )
    for yi, hid in zip(y, hidden, strict=True):
        if hid:
            ax.text(
                0.02,
                yi,
                "suppressed",
                va="center",
                fontsize=7,
                color="#777",
                transform=ax.get_yaxis_transform(),
            )
    for which, style, color, name in (
        ("study", "-", "#555", "study"),
        ("user", "--", "#a03000", "target"),
    ):
        t = res.targets.get(measure, which)  # type: ignore[arg-type]
        if t is not None and t.low is not None:
            ax.axvline(
                t.low, color=color, linestyle=style, linewidth=1, label=f"{name}: {_short(t.low)}"
            )
    ax.set_yticks(y)
    ax.set_yticklabels(s["school_id"].astype(str), fontsize=7 if len(s) > 20 else 8)
    ax.set_xlabel(f"{MEASURES[measure].label}", fontsize=9)
    ax.set_xlim(left=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_weekly(res: FidelityResult, ax: Axes, k: int) -> Axes:
    """Level 2 and Level 1 contacts with program students per week."""
    import matplotlib.dates as mdates

    series = weekly_series(res, k)
    if res.elapsed_share < 1 and res.through is not None:
        # A mid-year log: the weeks after the data-through date are not zeros.
        series = {t: d[pd.to_datetime(d["week_start"]) <= res.through] for t, d in series.items()}
    for tier, color, label in (
        (2, "#00597c", "Level 2 (case-managed)"),
        (1, "#8fb3c4", "Level 1 (school-wide)"),
    ):
        d = series[tier]
        y = d["contacts"].astype(float).where(~d["suppressed"])
        ax.plot(
            pd.to_datetime(d["week_start"]),
            y,
            color=color,
            label=label,
            linewidth=1.6,
            marker="o",
            markersize=2.5,
        )
    ax.set_ylabel("Contacts per week", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))  # type: ignore[no-untyped-call]
    return ax


def monthly_series(res: FidelityResult, k: int) -> pd.DataFrame:
    """Per coordinator and month, with ``suppressed`` marking the months hidden for privacy.

    A month describes the program students the coordinator reached that month, so a
    month with fewer than ``k`` of them is hidden, with another of the same coordinator
    (the months add up to the coordinator's totals). A coordinator whose row is hidden
    in the coordinator table at one of their schools hides at least one month, so that
    row cannot be worked out from the months; hidden at every school, every month.
    """
    frame = res._monthly.copy()
    suppressed = np.zeros(len(frame), bool)
    frame["suppressed"] = suppressed
    if not len(frame):
        return frame
    coords = res._coordinators
    hidden_rows = coordinator_rows_hidden(res, k)
    any_hidden = pd.Series(hidden_rows, index=coords.index).groupby(coords["coordinator_id"]).any()
    all_hidden = pd.Series(hidden_rows, index=coords.index).groupby(coords["coordinator_id"]).all()
    network, _ = network_hidden(res, k)
    for cid, idx in frame.groupby("coordinator_id", sort=False).groups.items():
        pos = frame.index.get_indexer(idx)
        counts = frame["students"].to_numpy(float)[pos]
        if network or bool(all_hidden.get(cid, False)):
            suppressed[pos] = True
            continue
        n = len(pos)
        primary = np.append(np.zeros(n, bool), bool(any_hidden.get(cid, False)))
        mask = suppression_mask(
            np.append(counts, counts.sum()),
            min_cell=k,
            constraints=[(n, list(range(n)))],
            primary=primary,
        )
        suppressed[pos] = mask[:n]
    frame["suppressed"] = suppressed
    return frame


def charted_coordinators(res: FidelityResult) -> list[str]:
    """The coordinators drawn in the monthly figure.

    All of them, or the :data:`CHART_LINES` with most Level 2 contacts (every
    coordinator stays in the monthly table).
    """
    totals = res._monthly.groupby("coordinator_id", sort=True)["contacts"].sum()
    if len(totals) <= CHART_LINES:
        return [str(c) for c in totals.index]
    top = totals.sort_values(ascending=False, kind="stable").index[:CHART_LINES]
    return [str(c) for c in top]


def plot_monthly(res: FidelityResult, ax: Axes, k: int, what: str = "contacts") -> Axes:
    """Level 2 contacts (or hours, or students reached) per month, one line per coordinator."""
    import matplotlib.dates as mdates

    series = monthly_series(res, k)
    label = {"contacts": "Level 2 contacts", "hours": "Hours", "students": "Students reached"}
    shown = charted_coordinators(res)
    series = series[series["coordinator_id"].isin(shown)]
    for cid, d in series.groupby("coordinator_id", sort=True):
        y = d[what].astype(float).where(~d["suppressed"])
        ax.plot(
            pd.to_datetime(d["month"]),
            y,
            marker="o",
            markersize=3,
            linewidth=1.4,
            label=str(cid)[:30],
        )
    ax.set_ylabel(f"{label[what]} per month", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))  # type: ignore[no-untyped-call]
    ax.tick_params(axis="x", labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_dose_response(res: FidelityResult, ax: Axes, outcome: str, k: int) -> Axes:
    """An outcome by Level 2 dosage band (exploratory, non-experimental)."""
    label = {o.name: o.label for o in OUTCOMES}[outcome]
    ax.set_title("Exploratory, non-experimental", fontsize=9, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    if res._outcomes is None or outcome not in res._outcomes.columns:
        ax.text(0.5, 0.5, "no outcome data", ha="center", transform=ax.transAxes)
        return ax
    frame = dose_frame(res, {"program": dose_cuts(res, k), "control": []})
    hide = dose_masks(frame, k)[outcome].to_numpy()
    prog = (frame["arm"] == "program").to_numpy()
    vals = frame[outcome].to_numpy(float)
    xs = np.arange(int(prog.sum()))
    heights = np.where(hide[prog], 0.0, np.nan_to_num(vals[prog]))
    ax.bar(xs, heights, color=np.where(hide[prog], "#dddddd", "#5b8fa8"))
    for xi, hid in zip(xs, hide[prog], strict=True):
        if hid:
            ax.text(float(xi), 0, "suppressed", rotation=90, ha="center", va="bottom", fontsize=7)
    ctrl = np.flatnonzero(~prog)
    if ctrl.size and not hide[ctrl[0]]:
        ax.axhline(
            vals[ctrl[0]], color="#a03000", linestyle="--", linewidth=1, label="control group"
        )
        ax.legend(frameon=False, fontsize=8)
    names = [
        g.replace(" contacts", "").replace(" contact", "").replace("No Level 2", "none")
        for g in frame.loc[prog, "group"]
    ]
    ax.set_xticks(xs)
    ax.set_xticklabels(names, fontsize=8)
    ax.set_xlabel("Level 2 contacts (program group)", fontsize=9)
    ax.set_ylabel(label, fontsize=9)
    return ax


def figure(draw: Callable[[Axes], Axes], size: tuple[float, float]) -> Any:
    """A Matplotlib figure of ``size`` inches with one chart drawn by ``draw``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    draw(fig.add_subplot())
    fig.tight_layout()
    return fig


def figure_dosage(res: FidelityResult, k: int) -> Any:
    """The report's dosage figure: contacts, hours and weeks side by side."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 2.6))
    for ax, m in zip(fig.subplots(1, 3), ("contacts", "hours", "weeks"), strict=True):
        plot_dosage(res, ax, m, k)
    fig.tight_layout()
    return fig


CHART_ROWS = 40
"""Schools drawn one per row in the benchmark figure; a larger network is drawn as the
spread of its schools (every school stays in the table)."""
CHART_LINES = 12
"""Coordinators drawn one line each in the monthly figure (those with most contacts)."""


def plot_benchmark_spread(res: FidelityResult, ax: Axes, measure: str, k: int) -> Axes:
    """How many schools have each mean of one measure, against the benchmark and target.

    For a network too large for one row per school. Schools whose dosage is suppressed
    are left out (their means are hidden in the table too).
    """
    res = pooled(res, k)
    s = res.to_frame("school")
    hidden = row_masks(res, k).dosage
    vals = s[f"{measure}_{MEASURES[measure].statistic}"].astype(float).to_numpy()
    vals = vals[~hidden & np.isfinite(vals)]
    if vals.size:
        ax.hist(vals, bins=min(30, max(5, vals.size // 20)), color="#5b8fa8")
    for which, style, color, name in (
        ("study", "-", "#555", "study"),
        ("user", "--", "#a03000", "target"),
    ):
        t = res.targets.get(measure, which)  # type: ignore[arg-type]
        if t is not None and t.low is not None:
            ax.axvline(
                t.low, color=color, linestyle=style, linewidth=1, label=f"{name}: {_short(t.low)}"
            )
    ax.set_xlabel(f"{MEASURES[measure].label}", fontsize=9)
    ax.set_ylabel("Schools", fontsize=9)
    ax.set_xlim(left=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def figure_benchmarks(res: FidelityResult, k: int) -> Any:
    """The report's benchmark figure: schools on contacts, hours and weeks.

    One row per school up to :data:`CHART_ROWS` schools; beyond, the spread of the
    schools' means (a chart thousands of rows tall would be unreadable and huge).
    """
    from matplotlib.figure import Figure

    n = len(pooled(res, k)._schools)
    spread = n > CHART_ROWS
    fig = Figure(figsize=(9.0, 2.6 if spread else max(2.4, 0.2 * n + 1.0)))
    draw = plot_benchmark_spread if spread else plot_benchmarks
    axes = fig.subplots(1, 3, sharey=not spread)
    for ax, m in zip(axes, ("contacts", "hours", "weeks"), strict=True):
        draw(res, ax, m, k)
    fig.tight_layout()
    return fig
