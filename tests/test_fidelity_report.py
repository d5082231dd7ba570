"""The affiliate workflow: `cis-eval fidelity`, its HTML report, privacy, and a real browser."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cis_eval as ce
from cis_eval import cli
from cis_eval.cli import fidelity as cli_fidelity
from cis_eval.errors import OptionError
from cis_eval.fidelity import fidelity
from cis_eval.fidelity.suppression import pooled
from cis_eval.present.privacy import SUPPRESSED

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not found: install the Debian package 'chromium' "
    "(.ci/run does) to run the browser tests",
)
TARGETS = 'name = "Affiliate targets"\ncontacts = 20\nshare_reached = 0.85\ncaseload = {max = 95}\n'


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cis_eval.cli", *args], capture_output=True, text=True, check=False
    )


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trial_files(tmp_path_factory):
    """A simulated trial whose identifiers are distinctive strings, so a scan means something."""
    folder = tmp_path_factory.mktemp("affiliate")
    t = ce.simulate(seed=404, n_students=900, n_schools=9)
    rng = np.random.default_rng(1)
    s, c, k = t.students, t.contacts, t.coordinators
    codes = rng.permutation(10**6)[: len(s)]
    sid = {old: f"STU{v:06X}Q" for old, v in zip(s["student_id"], codes, strict=True)}
    s = s.assign(student_id=s["student_id"].map(sid))
    c = c.assign(
        student_id=c["student_id"].astype(str).map(sid),
        contact_id=[f"CNT{v:07X}Z" for v in rng.permutation(10**7)[: len(c)]],
    )
    ce.write_table(s, folder / "students.csv")
    ce.write_table(c, folder / "contacts.csv")
    ce.write_table(k, folder / "coordinators.csv")
    c.to_parquet(folder / "contacts.parquet")
    (folder / "targets.toml").write_text(TARGETS)
    ids = [*s["student_id"], *c["contact_id"]]
    return folder, ids


def fidelity_args(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        "fidelity",
        "--students",
        str(folder / "students.csv"),
        "--contacts",
        str(folder / "contacts.csv"),
        "--coordinators",
        str(folder / "coordinators.csv"),
        "--targets",
        str(folder / "targets.toml"),
        "--caseload-guide",
        "standard",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def report(trial_files, tmp_path_factory):
    folder, _ = trial_files
    before = digest(folder)
    out = tmp_path_factory.mktemp("out") / "report.html"
    proc = run(*fidelity_args(folder, out, "--tables", str(out.parent / "tables")))
    assert proc.returncode == 0, proc.stderr
    assert digest(folder) == before  # inputs never modified
    return out, out.read_text(encoding="utf-8"), proc


# ----------------------------------------------------------------------------- the report


def test_cli_writes_one_self_contained_readable_report(report):
    path, html, proc = report
    assert proc.stdout.startswith(f"Wrote {path} (9 schools, 9 coordinators;")
    assert html.startswith("<!DOCTYPE html>")
    for words in (
        "Summary",
        "program students",
        "Fidelity at a glance",
        "Reach and dosage by school",
        "Caseloads by coordinator",
        "Dosage by coordinator",
        "Dosage per student reached",
        "Contacts over the school year",
        "Service mix by school",
        "the service contrast",
        "exploratory, non-experimental",
        "What the measures mean",
        "Corrin, W., Parise, L. M.",
        "NCEE 2017-4028",
        "Affiliate targets",
        "Student privacy: no student identifier appears in this report.",
    ):
        assert words in html, words
    assert html.count("<svg") >= 4  # benchmarks, dosage, weekly, dose-response
    tables = sorted(p.name for p in (path.parent / "tables").iterdir())
    assert "fidelity_school.csv" in tables and "fidelity_arm.csv" in tables


def test_report_makes_no_external_request(report):
    _, html, _ = report
    lowered = html.lower()
    for tag in ("<script", "<link", "<iframe", "<img", "<object", "<embed", "@import"):
        assert tag not in lowered
    for attr in re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)', html, flags=re.IGNORECASE):
        assert not re.match(r"(?i)(https?:)?//", attr), attr
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, flags=re.IGNORECASE)


def test_report_and_console_never_show_an_identifier(trial_files, report):
    _, ids = trial_files
    _, html, proc = report
    text = html + proc.stdout + proc.stderr
    found = [i for i in ids if i in text]
    assert found == []
    table_text = "".join(p.read_text() for p in (report[0].parent / "tables").iterdir())
    assert not [i for i in ids if i in table_text]


def test_report_is_deterministic(trial_files, report, tmp_path):
    folder, _ = trial_files
    proc = run(*fidelity_args(folder, tmp_path / "again.html"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == report[1]


def test_large_log_route_reads_the_file_directly_and_agrees(
    trial_files, report, tmp_path, monkeypatch
):
    folder, _ = trial_files
    monkeypatch.setattr(cli_fidelity, "BIG_LOG_BYTES", 0)
    args = fidelity_args(folder, tmp_path / "big.html")
    args[args.index("--contacts") + 1] = str(folder / "contacts.parquet")
    assert cli.main(args) == 0
    assert (tmp_path / "big.html").read_text(encoding="utf-8") == report[1]


def test_excel_roster_with_a_column_map(trial_files, report, tmp_path):
    folder, _ = trial_files
    roster = pd.read_csv(folder / "students.csv", dtype=str)
    roster = roster.rename(columns={"student_id": "Student Number", "school_id": "Campus"})
    roster.to_excel(tmp_path / "roster.xlsx", index=False)
    (tmp_path / "map.toml").write_text(
        '[students]\n"Student Number" = "student_id"\nCampus = "school_id"\n'
    )
    args = fidelity_args(folder, tmp_path / "xlsx.html", "--column-map", str(tmp_path / "map.toml"))
    args[args.index("--students") + 1] = str(tmp_path / "roster.xlsx")
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "xlsx.html").read_text(encoding="utf-8") == report[1]


def test_no_progress_bar_when_stderr_is_not_a_terminal(report, small_trial, capsys):
    assert "it/s" not in report[2].stderr and "%|" not in report[2].stderr
    fidelity(small_trial.students, small_trial.contacts, progress=True)
    assert "fidelity" in capsys.readouterr().err


def bad_log(folder: Path, tmp_path: Path, edit) -> Path:
    c = pd.read_csv(folder / "contacts.csv", dtype=str)
    c = edit(c)
    c.to_csv(tmp_path / "bad.csv", index=False)
    return tmp_path / "bad.csv"


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (
            lambda c: c.assign(service_type=c["service_type"].mask(c.index == 3, "astrology")),
            "column 'service_type'",
        ),
        (lambda c: c.assign(minutes=c["minutes"].mask(c.index == 3, "-20")), "column 'minutes'"),
        (lambda c: c.assign(minutes=c["minutes"].mask(c.index == 3, "1500")), "column 'minutes'"),
        (lambda c: c.assign(date=c["date"].mask(c.index == 3, "2019-05-05")), "column 'date'"),
        (
            lambda c: c.assign(student_id=c["student_id"].mask(c.index == 3, "STU-SECRET-1")),
            "not in the roster",
        ),
        (lambda c: c.iloc[:0], "has no rows"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(trial_files, tmp_path, edit, expect, capsys):
    folder, ids = trial_files
    path = bad_log(folder, tmp_path, edit)
    args = fidelity_args(folder, tmp_path / "r.html")
    args[args.index("--contacts") + 1] = str(path)
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and expect in err
    assert "Traceback" not in err + out
    assert "bad.csv" in err
    assert "STU-SECRET-1" not in err
    assert not [i for i in ids if i in err]
    assert not (tmp_path / "r.html").exists()


def test_a_user_error_in_a_real_process_is_one_message_without_traceback(trial_files, tmp_path):
    folder, _ = trial_files
    path = bad_log(folder, tmp_path, lambda c: c.assign(minutes="-3"))
    args = fidelity_args(folder, tmp_path / "r.html")
    args[args.index("--contacts") + 1] = str(path)
    proc = run(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (("--contacts", "missing.csv"), "missing.csv: file not found"),
        (("--min-cell", "0"), "--min-cell: expected a whole number of at least 1"),
        (("--out", "report.pdf"), "expected a file ending in .html"),
        (("--targets", "TARGETS:contacts_per_fortnight = 3"), "unknown target"),
        (("--targets", "TARGETS:contacts = [oops"), "could not be parsed"),
        (("--school-year", "2012-08-01"), ""),
    ],
)
def test_usage_errors_exit_2(trial_files, tmp_path, change, expect, capsys):
    folder, _ = trial_files
    args = fidelity_args(folder, tmp_path / "r.html")
    flag, value = change
    if value.startswith("TARGETS:"):
        (tmp_path / "t.toml").write_text(value.removeprefix("TARGETS:"))
        value = str(tmp_path / "t.toml")
    elif flag in ("--contacts", "--out"):
        value = str(tmp_path / value)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err


def test_demo_shows_dosage_against_the_benchmarks(synthetic_dir, tmp_path):
    assert cli.main(["demo", "--data", str(synthetic_dir), "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Implementation fidelity: summary" in html and "Fidelity at a glance" in html
    assert "about 19" in html
    assert (tmp_path / "fidelity_report.html").is_file()
    assert (tmp_path / "tables" / "fidelity_benchmarks.csv").is_file()
    ids = pd.read_csv(synthetic_dir / "students.csv", usecols=["student_id"])["student_id"]
    full = (tmp_path / "fidelity_report.html").read_text(encoding="utf-8")
    assert not [i for i in ids if i in full]


# ----------------------------------------------------------------------------- privacy of the tables


def _num(cell: str) -> float:
    # counts carry thousands separators and shares a percent sign
    return float(cell.replace(",", "").removesuffix("%"))


def _bands(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    return np.bincount(
        np.searchsorted(np.asarray(cuts, float), values, side="right"), minlength=len(cuts) + 1
    )


def _safe(n: float, k: int) -> bool:
    return n == 0 or n >= k


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n_schools=st.integers(2, 7),
    per_school=st.integers(12, 45),
    take_up=st.floats(0.55, 0.93),
    k=st.sampled_from([5, 10, 15]),
)
# Two schools hidden together, whose students not reached (3) followed from the totals.
@example(seed=125, n_schools=5, per_school=26, take_up=0.75, k=5)
# The network's program count hidden, its share reached shown beside the count reached.
@example(seed=12, n_schools=7, per_school=12, take_up=0.75, k=10)
def test_published_tables_never_reveal_a_small_group(seed, n_schools, per_school, take_up, k):
    trial = ce.simulate(
        seed=seed,
        n_students=n_schools * per_school,
        n_schools=n_schools,
        take_up=min(take_up, 0.93),
        school_size_range=(per_school // 2 + 2, per_school * 2),
        coordinators_per_school=2 if seed % 2 else 1,
    )
    res = fidelity(trial.students, trial.contacts, trial.coordinators, min_cell=k)
    sch = pooled(res, k).to_frame("school")  # small schools share a row
    t = res.table("school").data
    big = sch["program_students"].to_numpy(float)
    small = sch["students_reached"].to_numpy(float)
    reached_pub = (t["Reached"].iloc[:-1] != SUPPRESSED).to_numpy()
    n_pub = (t["Program students"].iloc[:-1] != SUPPRESSED).to_numpy()
    # 1. every published count, and the not-reached count a reader can derive, is safe
    assert all(_safe(v, k) for v in small[reached_pub])
    assert all(_safe(v, k) for v in big[n_pub])
    assert all(_safe(v, k) for v in (big - small)[n_pub & reached_pub])
    # 2. what subtraction from the published total reveals is safe, never one school alone
    if t["Reached"].iloc[-1] != SUPPRESSED:
        assert (~reached_pub).sum() != 1 and _safe(small[~reached_pub].sum(), k)
    if t["Program students"].iloc[-1] != SUPPRESSED:
        hidden = ~n_pub
        assert hidden.sum() != 1 and _safe(big[hidden].sum(), k)
        # their students not reached follow when the counts reached add up around them
        if t["Reached"].iloc[-1] != SUPPRESSED and (
            reached_pub[hidden].all() or reached_pub[~hidden].all()
        ):
            assert _safe((big - small)[hidden].sum(), k)
    # 3. coordinators within a published school
    coords = pooled(res, k).to_frame("coordinator")
    ct = res.table("coordinator").data
    served_pub = (ct["Program students served"] != SUPPRESSED).to_numpy()
    assert all(_safe(v, k) for v in coords["students_served"].to_numpy(float)[served_pub])
    for i, school in enumerate(sch["school_id"]):
        if reached_pub[i]:
            mine = (coords["school_id"] == school).to_numpy()
            hid = mine & ~served_pub
            assert hid.sum() != 1
            assert _safe(coords.loc[hid, "students_served"].sum(), k)
    # 4. research groups: bands between any published thresholds are safe
    stu = res.to_frame("student")
    arm = res.table("arm").data.set_index("Group")
    for name, z in (("Program group", 1), ("Control group", 0)):
        row = arm.loc[name]
        if row["Students"] == SUPPRESSED:
            # no total, nothing shown but a share of zero, which describes no student
            assert all(v == SUPPRESSED or _num(v) == 0 for v in row.drop("Students"))
            continue
        cuts = [1.0] if row["% received"] != SUPPRESSED else []
        cuts += [
            float(th) for th in res.thresholds[1:] if row[f"% with {th}+ contacts"] != SUPPRESSED
        ]
        values = stu.loc[stu["treatment"] == z, "contacts"].to_numpy(float)
        assert all(_safe(b, k) for b in _bands(values, sorted(cuts)))
    # 5. dose-response bands and the dosage table
    dose = res.table("dose_response").data
    if "Students" in dose:
        assert all(_safe(_num(v), k) for v in dose["Students"] if v != SUPPRESSED)
    dosage = res.table("dosage").data
    assert all(_safe(_num(v), k) for v in dosage["Students"] if v != SUPPRESSED)
    # 6. service mix by school: a hidden share never stands alone in a row or a column
    mix = res.table("school_service_mix").data.set_index("School")
    students = (
        pooled(res, k)
        .to_frame("school_service_mix")
        .pivot_table(index="school_id", columns="label", values="students", aggfunc="sum")
    )
    for school, row in mix.drop(index="All schools").iterrows():
        hidden = row == SUPPRESSED
        if hidden.all() or not hidden.any():
            continue
        assert hidden.sum() >= 2 and _safe(students.loc[school, hidden.index[hidden]].sum(), k)
    for area in mix.columns:
        if mix.loc["All schools", area] == SUPPRESSED:
            continue
        hidden = mix[area].drop(index="All schools") == SUPPRESSED
        n_hidden = students.loc[hidden.index[hidden], area].sum()
        assert hidden.sum() != 1 or n_hidden == 0  # a hidden zero reveals no student
        assert _safe(n_hidden, k)
    # 7. the summary never states a small count of students
    text = " ".join(res.summary())
    counts = re.findall(r"([\d,]+) of ([\d,]+) program students", text)
    counts += re.findall(r"(?:for|^|\. )([\d,]+)() program(?:-group)? students", text)
    for pair in counts:
        assert all(_safe(_num(n), k) for n in pair if n)


def test_student_table_is_never_published(small_trial):
    res = fidelity(small_trial.students, small_trial.contacts)
    with pytest.raises(OptionError, match="never published"):
        res.table("student")


def test_every_table_renders_and_suppression_is_explained(small_trial):
    res = fidelity(
        small_trial.students, small_trial.contacts, small_trial.coordinators, min_cell=40
    )
    for level in (
        "benchmarks",
        "school",
        "coordinator",
        "arm",
        "dosage",
        "service_mix",
        "school_service_mix",
        "dose_response",
    ):
        table = res.table(level)
        text = table.to_markdown() + table.to_html() + table.to_csv() + table.to_latex()
        assert "S000" not in text  # simulated student identifiers
        if (table.data == SUPPRESSED).to_numpy().any():
            assert any("Suppressed to protect student privacy" in n for n in table.notes)
    assert "min_cell=1" not in repr(res)
    shown = res.table("school", min_cell=1).data
    assert not (shown == SUPPRESSED).to_numpy().any()


# ----------------------------------------------------------------------------- a real browser


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def page_requests(netlog: Path) -> list[str]:
    """Network requests a page started (the browser's own update checks are not the page's)."""
    text = netlog.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short when the browser exits
        log = json.loads(text.rstrip(",") + "]}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for ev in log["events"]:
        p = ev.get("params") or {}
        if types.get(ev["type"]) != "URL_REQUEST_START_JOB" or "url" not in p:
            continue  # other events, and the end phase of a job (no parameters)
        if p.get("initiator") != "not an origin":
            urls.append(str(p["url"]))
    return urls


@pytest.mark.browser
@needs_chromium
def test_report_renders_in_chromium_without_network_requests(report, tmp_path):
    path, _, _ = report
    url = path.resolve().as_uri()
    shot = tmp_path / "report.png"
    r = chromium(
        url,
        tmp_path / "p1",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        f"--log-net-log={tmp_path / 'net1.json'}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1200, 2000)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    dom = chromium(url, tmp_path / "p2", "--dump-dom", f"--log-net-log={tmp_path / 'net2.json'}")
    assert dom.returncode == 0
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for words in (
        "Summary",
        "program students",
        "Fidelity at a glance",
        "Reach and dosage by school",
        "service contrast",
        "What the measures mean",
    ):
        assert words in text, words
    assert page_requests(tmp_path / "net1.json") == []
    assert page_requests(tmp_path / "net2.json") == []


@pytest.mark.browser
@needs_chromium
def test_the_request_check_catches_a_page_that_phones_home(tmp_path):
    page = tmp_path / "leak.html"
    page.write_text('<html><body><img src="https://example.com/pixel.png"></body></html>')
    r = chromium(
        page.as_uri(), tmp_path / "p", "--dump-dom", f"--log-net-log={tmp_path / 'n.json'}"
    )
    assert r.returncode == 0
    assert page_requests(tmp_path / "n.json") == ["https://example.com/pixel.png"]
