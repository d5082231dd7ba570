"""Fidelity for an affiliate: program rosters, mid-year logs, follow-up lists, print and Excel.

Every number checked here is computed again in the test from the inputs, with pandas (or
from the hand-made export with the standard library), not read back from cis_eval.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from matplotlib.figure import Figure

import cis_eval as ce
from cis_eval.cli.main import main
from cis_eval.errors import DataValidationError, DesignWarning, OptionError
from cis_eval.fidelity import fidelity
from cis_eval.fidelity.plots import plot_monthly
from cis_eval.fidelity.report import CONFIDENTIAL
from cis_eval.present.privacy import SUPPRESSED

YEAR = ("2012-08-01", "2013-07-31")
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "affiliate"
# Words a report for a program without a control group must not use.
TRIAL_WORDS = re.compile(r"random|control|complier", re.IGNORECASE)


@pytest.fixture(scope="module")
def trial() -> ce.SimulatedTrial:
    return ce.simulate(seed=23, n_students=480, n_schools=4)


def program_roster(trial: ce.SimulatedTrial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trial's program students as an affiliate roster (no treatment, no outcomes)."""
    s = trial.students
    prog = s[s["treatment"] == 1]
    roster = pd.DataFrame(
        {
            "student_id": prog["student_id"].to_numpy(),
            "school_id": prog["school_id"].to_numpy(),
            "service_start": prog["assignment_date"].to_numpy(),
        }
    )
    log = trial.contacts[trial.contacts["student_id"].isin(roster["student_id"])]
    return roster, log.reset_index(drop=True)


def quiet(*args: object, **kwargs: object) -> ce.FidelityResult:
    """``fidelity`` with its data warnings recorded rather than raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        return fidelity(*args, **kwargs)  # type: ignore[arg-type]


def every_output(res: ce.FidelityResult) -> str:
    """Build every table and the report; return the report's HTML."""
    for level in res.report_tables():
        assert res.table(level).data is not None  # type: ignore[arg-type]
    return res.report().to_html()


# ----------------------------------------------------------------------------- crashes


def test_a_school_with_one_student_is_reported_not_a_crash(trial):
    s = trial.students.copy()
    one = s.index[s["treatment"] == 1][0]
    s.loc[one, "school_id"] = "Lincon Middle"  # a typo'd campus: one student alone
    res = quiet(s, trial.contacts, trial.coordinators)
    every_output(res)
    assert (
        res.to_frame("school").set_index("school_id").loc["Lincon Middle", "program_students"] == 1
    )
    table = res.table("school").data.set_index("School")
    if "Lincon Middle" in table.index:  # shown alone, its counts are hidden
        row = table.loc["Lincon Middle"]
        assert row["Program students"] == SUPPRESSED and row["Reached"] == SUPPRESSED
    else:  # or pooled with the other small schools
        assert table.index.str.startswith("Other schools").any()


def test_a_coordinator_serving_two_schools_keeps_both_rows(trial):
    k = trial.coordinators.copy()
    first, second = k["school_id"].iloc[0], k["school_id"].iloc[1]
    cid = k["coordinator_id"].iloc[0]
    k.loc[0, "fte"] = 0.5
    extra = k.iloc[[0]].assign(school_id=second, fte=0.5, caseload=30)
    k = pd.concat([k, extra], ignore_index=True)
    # the coordinator also logs contacts at the second school
    c = trial.contacts.copy()
    at_second = c["student_id"].isin(
        trial.students.loc[trial.students["school_id"] == second, "student_id"]
    )
    c.loc[at_second & (c.index % 3 == 0), "coordinator_id"] = cid
    res = quiet(trial.students, c, k)
    every_output(res)
    rows = res.to_frame("coordinator").set_index(["coordinator_id", "school_id"])
    assert {(cid, first), (cid, second)} <= set(rows.index)
    # students served at each school, from the log with pandas
    s = trial.students.set_index("student_id")
    l2 = c[(c["tier"] == 2) & (c["coordinator_id"] == cid)]
    school = l2["student_id"].map(s["school_id"])
    program = l2["student_id"].map(s["treatment"]) == 1
    for sch in (first, second):
        expect = l2.loc[program & (school == sch), "student_id"].nunique()
        assert rows.loc[(cid, sch), "students_served"] == expect
    assert rows.loc[(cid, second), "caseload_per_fte"] == pytest.approx(30 / 0.5)
    assert rows.loc[(cid, first), "coordinator_fte"] == pytest.approx(1.0)
    table = res.table("coordinator").data
    assert (table["Coordinator"] == cid).sum() == 2


def test_a_roster_without_program_students_says_so(trial):
    s = trial.students.assign(treatment=0)
    res = quiet(s, trial.contacts, trial.coordinators)
    html = every_output(res)  # no ZeroDivisionError
    assert "The roster has no program students" in html
    assert "The roster has no program students" in res.summary()[0]
    assert list(res.report_tables()) == ["arm"]


def test_duplicate_coordinator_rows_and_percent_text_are_errors_not_dropped(trial):
    k = trial.coordinators.copy()
    k = pd.concat([k, k.iloc[[0]]], ignore_index=True)  # same coordinator and school twice
    with pytest.raises(DataValidationError, match="repeat a coordinator and school"):
        quiet(trial.students, trial.contacts, k)
    k = trial.coordinators.astype({"level2_time_share": object})
    k.loc[1, "level2_time_share"] = "45%"
    with pytest.raises(DataValidationError) as exc:
        quiet(trial.students, trial.contacts, k)
    assert any(p.column == "level2_time_share" and 3 in p.rows for p in exc.value.problems)


def test_unvalidated_frames_are_validated_first_and_inputs_untouched(trial):
    k = trial.coordinators.astype(str)  # every cell as text, as read from a file
    before = k.copy()
    res = quiet(trial.students, trial.contacts, k)
    pd.testing.assert_frame_equal(k, before)
    assert res.to_frame("coordinator")["fte"].notna().all()  # "1.0" read, not dropped


# ----------------------------------------------------------------------------- program roster


def test_a_program_roster_needs_only_ids_and_schools(trial):
    roster, log = program_roster(trial)
    rep = ce.validate(roster, log, contract="fidelity")
    assert rep.ok
    with pytest.raises(DataValidationError, match="'treatment'"):
        ce.validate(roster, log)  # the trial's contract still asks for it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fidelity(roster[["student_id", "school_id"]], log, school_year=YEAR)
    assert not [w for w in caught if "arm" in str(w.message)]
    assert not res.has_control
    assert res.to_frame("school")["program_students"].sum() == len(roster)


def test_the_program_report_never_speaks_of_a_trial(trial):
    roster, log = program_roster(trial)
    res = quiet(roster, log, trial.coordinators, school_year=YEAR, caseload_guide="standard")
    html = every_output(res)
    assert not TRIAL_WORDS.findall(html), TRIAL_WORDS.findall(html)[:5]
    assert "program students" in html and "start of services" in html
    assert "arm" not in res.report_tables()
    # the same data as a trial keeps the service contrast
    trial_html = quiet(trial.students, trial.contacts, trial.coordinators).report().to_html()
    assert "service contrast" in trial_html and "Control group" in trial_html


def test_days_to_first_contact_count_from_the_start_of_services(trial):
    roster, log = program_roster(trial)
    roster = roster.assign(service_start=pd.Timestamp("2012-09-03"))
    res = quiet(roster, log, school_year=YEAR)
    st = res.to_frame("student").set_index("student_id")
    first = log[log["tier"] == 2].groupby("student_id")["date"].min()
    expect = (first - pd.Timestamp("2012-09-03")).dt.days
    got = st.loc[expect.index, "days_to_first_contact"]
    np.testing.assert_array_equal(got.to_numpy(), expect.to_numpy(float))


# ----------------------------------------------------------------------------- mid-year


def mid_year(trial: ce.SimulatedTrial, last: str) -> pd.DataFrame:
    c = trial.contacts
    return c[c["date"] <= pd.Timestamp(last)].reset_index(drop=True)


def test_targets_are_pro_rated_to_the_share_of_the_year_elapsed(trial):
    log = mid_year(trial, "2013-01-31")
    last = log["date"].max()
    res = quiet(trial.students, log, trial.coordinators, school_year=YEAR)
    share = ((last - pd.Timestamp(YEAR[0])).days + 1) / 365  # 2012-08-01 .. 2013-07-31
    assert res.through == last and res.elapsed_share == pytest.approx(share)
    b = res.to_frame("benchmarks").set_index("measure")
    for measure, full in (("contacts", 19), ("hours", 16), ("weeks", 30)):
        t = res.targets.get(measure, "study")
        assert t.low == pytest.approx(full * share)
        assert f"pro-rated to {share:.0%} of the year" in b.loc[measure, "study_benchmark"]
    # rates, caseloads and days to first contact are not pro-rated
    assert res.targets.get("caseload", "study").high == 84
    text = " ".join(res.summary())
    assert f"through {last:%-d %B %Y}" in text and "July 2013" not in text
    assert f"pro-rated to {share:.0%}" in text


def test_through_sets_the_period_and_later_contacts_are_errors(trial):
    log = mid_year(trial, "2013-01-31")
    res = quiet(trial.students, log, school_year=YEAR, through="2013-03-31")
    assert res.elapsed_share == pytest.approx(
        ((pd.Timestamp("2013-03-31") - pd.Timestamp(YEAR[0])).days + 1) / 365
    )
    with pytest.raises(DataValidationError, match="after the data-through date"):
        quiet(trial.students, log, school_year=YEAR, through="2012-12-31")
    with pytest.raises(OptionError, match="through"):
        quiet(trial.students, log, school_year=YEAR, through="not a date")
    # a full year's log is not pro-rated
    full = quiet(trial.students, trial.contacts)
    assert full.elapsed_share == 1 and full.targets.get("contacts", "study").low == 19


def test_monthly_trends_per_coordinator_match_the_log(trial):
    log = mid_year(trial, "2013-01-31")
    res = quiet(trial.students, log, school_year=YEAR)
    got = res.to_frame("monthly").set_index(["coordinator_id", "month"])
    prog = trial.students.loc[trial.students["treatment"] == 1, "student_id"]
    l2 = log[(log["tier"] == 2) & log["student_id"].isin(prog)]
    month = l2["date"].dt.to_period("M").dt.to_timestamp()
    expect = l2.groupby([l2["coordinator_id"].astype(str), month]).agg(
        contacts=("contact_id", "size"),
        hours=("minutes", lambda m: m.sum() / 60),
        students=("student_id", "nunique"),
    )
    assert len(got) == len(expect)
    for key, row in expect.iterrows():
        g = got.loc[key]
        assert (g["contacts"], g["students"]) == (row["contacts"], row["students"])
        assert g["hours"] == pytest.approx(row["hours"])


@pytest.mark.parametrize("k", [10, 30])
def test_monthly_table_never_shows_a_small_month(trial, k):
    log = mid_year(trial, "2013-01-31")
    res = quiet(trial.students, log, school_year=YEAR, min_cell=k)
    t = res.table("monthly").data
    f = res.to_frame("monthly")
    shown = (t["Students reached"] != SUPPRESSED).to_numpy()
    assert all(n == 0 or n >= k for n in f["students"].to_numpy()[shown])
    for cid in f["coordinator_id"].unique():
        mine = (f["coordinator_id"] == cid).to_numpy()
        assert (~shown & mine).sum() != 1  # a hidden month never stands alone
    # the chart draws exactly the months the table shows
    fig = Figure()
    ax = plot_monthly(res, fig.add_subplot(), k)
    drawn = sum(int(np.isfinite(np.asarray(ln.get_ydata(), float)).sum()) for ln in ax.get_lines())
    assert drawn == int(shown.sum())


# ----------------------------------------------------------------------------- caseloads


def test_caseloads_per_fte_and_the_guide_explained_not_judged(trial):
    k = trial.coordinators.copy()
    k["caseload"] = 36
    k.loc[0, "fte"] = 0.5  # 36 students at half-time: 72 per FTE
    res = quiet(trial.students, trial.contacts, k, caseload_guide="standard")
    c = res.to_frame("coordinator").set_index("coordinator_id")
    cid = k["coordinator_id"].iloc[0]
    assert c.loc[cid, "caseload_per_fte"] == pytest.approx(72)
    b = res.to_frame("benchmarks").set_index("measure")
    per_fte = [36 / f for f in k["fte"]]
    assert b.loc["caseload", "value"] == pytest.approx(np.mean(per_fte))
    guide = res.report_tables()["coordinator"].data["Caseload guide"].tolist()
    assert all(g in ("", SUPPRESSED) or "guide's 50-100" in g for g in guide)
    assert any(g.startswith("under the guide's 50-100: more time for each student") for g in guide)
    assert "below" not in guide
    html = res.report().to_html()
    assert "It is a planning range, not a score" in html


# ----------------------------------------------------------------------------- follow-up


def follow_up_case(trial):
    log = mid_year(trial, "2013-01-31")
    s = trial.students.copy()
    s["student_id"] = "STU-" + s["student_id"].astype(str)
    log = log.assign(student_id="STU-" + log["student_id"].astype(str))
    # a formula typed as an identifier must reach the workbook as text
    evil = s.index[(s["treatment"] == 1)][0]
    bad_id = '=HYPERLINK("http://x")'
    log = log[log["student_id"] != s.loc[evil, "student_id"]]  # not yet reached: listed
    s.loc[evil, "student_id"] = bad_id
    return s, log


def test_follow_up_lists_students_by_reason(trial):
    s, log = follow_up_case(trial)
    res = quiet(s, log, trial.coordinators, school_year=YEAR)
    fu = res.follow_up(weeks=3)
    through = log["date"].max()
    target = 19 * (((through - pd.Timestamp(YEAR[0])).days + 1) / 365)
    prog = s.loc[s["treatment"] == 1, "student_id"]
    l2 = log[(log["tier"] == 2) & log["student_id"].isin(prog)]
    n = l2.groupby("student_id").size().reindex(prog, fill_value=0)
    last = l2.groupby("student_id")["date"].max().reindex(prog)
    not_reached = set(n.index[n == 0])
    below = set(n.index[(n > 0) & (n < target)])
    stale = set(last.index[(through - last).dt.days > 21])
    listed = fu.set_index("student_id")["reasons"]
    assert set(listed.index) == not_reached | below | stale
    for sid in not_reached:
        assert listed[sid] == "not yet reached"
    for sid in below:
        assert "below the contacts target" in listed[sid]
    for sid in stale:
        assert "no contact in the last 3 weeks" in listed[sid]
    # one coordinator per student: the one who logged most of their contacts
    main_c = res.to_frame("student").set_index("student_id")["coordinator_id"]
    reached = fu[fu["contacts"] > 0]
    assert (reached["coordinator_id"].to_numpy() == main_c[reached["student_id"]].to_numpy()).all()
    with pytest.raises(OptionError):
        res.follow_up(weeks=0)


def test_follow_up_workbook_is_confidential_and_the_report_has_no_identifier(trial, tmp_path):
    s, log = follow_up_case(trial)
    res = quiet(s, log, trial.coordinators, school_year=YEAR)
    path = res.write_follow_up(tmp_path / "follow_up.xlsx", weeks=4)
    wb = openpyxl.load_workbook(path)
    fu = res.follow_up(weeks=4)
    assert sorted(wb.sheetnames) == sorted(fu["coordinator_id"].unique())
    seen = []
    for ws in wb.worksheets:
        assert ws.cell(1, 1).value == CONFIDENTIAL
        assert "CONFIDENTIAL" in ws.cell(1, 1).value
        header = [c.value for c in ws[3]]
        assert header[0] == "Student"
        seen += [r[0] for r in ws.iter_rows(min_row=4, values_only=True) if r[0]]
    ids = [v for v in seen if isinstance(v, str) and v.startswith(("STU-", "'"))]
    assert sorted(ids) == sorted(
        "'" + v if v.startswith("=") else v for v in fu["student_id"].astype(str)
    )
    assert '\'=HYPERLINK("http://x")' in seen  # written as text, never as a formula
    html = res.report().to_html()
    assert "STU-" not in html and "HYPERLINK" not in html
    for table in res.report_tables().values():
        assert not table.data.astype(str).apply(lambda c: c.str.contains("STU-")).any().any()


# ----------------------------------------------------------------------------- Excel copy


def test_excel_workbook_has_every_table_as_text_safe_cells(trial, tmp_path):
    s = trial.students.copy()
    s["school_id"] = s["school_id"].replace({s["school_id"].iloc[0]: "=1+1"})
    k = trial.coordinators.replace({trial.students["school_id"].iloc[0]: "=1+1"})
    res = quiet(s, trial.contacts, k)
    path = res.to_excel(tmp_path / "tables.xlsx")
    wb = openpyxl.load_workbook(path)
    tables = res.report_tables()
    assert wb.sheetnames == [t.title[:31] for t in tables.values()]
    for ws, table in zip(wb.worksheets, tables.values(), strict=True):
        assert ws.cell(1, 1).value == table.title
        assert [c.value for c in ws[2]][: table.data.shape[1]] == list(table.data.columns)
        first = [ws.cell(3 + i, 1).value for i in range(len(table.data))]
        expect = ["'" + v if str(v).startswith("=") else v for v in table.data.iloc[:, 0]]
        assert first == expect
    values = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert "'=1+1" in values and "=1+1" not in values


# ----------------------------------------------------------------------------- command line


def test_cli_writes_report_workbook_and_follow_up(trial, tmp_path, capsys):
    ce.write_trial(trial, tmp_path)
    args = [
        "fidelity",
        "--students",
        str(tmp_path / "students.csv"),
        "--contacts",
        str(tmp_path / "contacts.csv"),
        "--coordinators",
        str(tmp_path / "coordinators.csv"),
        "--out",
        str(tmp_path / "r.html"),
        "--xlsx",
        str(tmp_path / "t.xlsx"),
        "--follow-up",
        str(tmp_path / "fu.xlsx"),
        "--through",
        "2013-07-31",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fu.xlsx" in out and "CONTAINS STUDENT IDENTIFIERS" in out
    assert (tmp_path / "t.xlsx").is_file() and (tmp_path / "fu.xlsx").is_file()
    html = (tmp_path / "r.html").read_text()
    assert not any(sid in html for sid in trial.students["student_id"].head(50))


# ----------------------------------------------------------------------------- affiliate export


def _export_numbers() -> dict[str, float]:
    """The fixture's figures, computed with the standard library from the raw files."""
    with open(FIXTURES / "service_log.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    head = next(i for i, r in enumerate(rows) if "Entry ID" in r)
    col = {name: j for j, name in enumerate(rows[head])}
    level2 = [r for r in rows[head + 1 :] if r and r[col["Tier"]] != "Tier 1 - Schoolwide"]
    wb = openpyxl.load_workbook(FIXTURES / "affiliate_export.xlsx", read_only=True)
    roster = list(wb["Roster"].iter_rows(values_only=True))
    start = next(i for i, r in enumerate(roster) if r and "Student ID" in r)
    students = [r for r in roster[start + 1 :] if r and r[0]]
    reached = {r[col["Student ID"]] for r in level2}
    minutes = sum(float(r[col["Duration (min)"]]) for r in level2)
    last = max(
        pd.Timestamp(r[col["Service Date"]]) for r in rows[head + 1 :] if r
    )  # US dates: month/day/year
    return {
        "students": len(students),
        "reached": len(reached),
        "contacts": len(level2) / len(reached),
        "hours": minutes / 60 / len(reached),
        "share": ((last - pd.Timestamp("2012-08-01")).days + 1) / 365,
        "last": last,
    }


@pytest.mark.skipif(not (FIXTURES / "mapping.toml").is_file(), reason="no affiliate fixture")
def test_affiliate_export_end_to_end(tmp_path, capsys):
    export = tmp_path / "export"
    shutil.copytree(FIXTURES, export)
    # 1. draft a mapping from the export; 2. the user's edited mapping is the fixture's
    draft = tmp_path / "draft.toml"
    files = [str(export / "affiliate_export.xlsx"), str(export / "service_log.csv")]
    assert main(["map", "--init", *files, "--out", str(draft)]) == 0
    assert draft.is_file()
    capsys.readouterr()
    out = tmp_path / "report.html"
    args = [
        "fidelity",
        "--mapping",
        str(export / "mapping.toml"),
        "--out",
        str(out),
        "--caseload-guide",
        "standard",
        "--xlsx",
        str(tmp_path / "tables.xlsx"),
        "--follow-up",
        str(tmp_path / "follow_up.xlsx"),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "CONTAINS STUDENT IDENTIFIERS" in printed
    html = out.read_text()
    want = _export_numbers()
    text = re.sub(r"\s+", " ", html)
    who = re.search(r"logged for (at least )?([\d,]+) program students in 3 schools", text)
    assert who is not None and "served by 3 site coordinators" in text
    n = int(who.group(2).replace(",", ""))  # exact, or a bound when the count is protected
    assert n == want["students"] if not who.group(1) else n <= want["students"]
    assert f"through {want['last']:%-d %B %Y}, {want['share']:.0%} of the school year" in text
    assert (
        f"received on average {want['contacts']:.1f} contacts" in text
        and f"{want['hours']:.1f} hours" in text
    )
    dosage = pd.read_excel(tmp_path / "tables.xlsx", sheet_name=None, header=1, engine="openpyxl")
    contacts = next(t for t in dosage.values() if "25th percentile" in t.columns)
    row = contacts.iloc[0]
    assert row["Measure"] == "Level 2 contacts per student"
    if row["Students"] != SUPPRESSED:  # hidden when it would reveal the few not reached
        assert int(str(row["Students"]).replace(",", "")) == want["reached"]
    assert float(row["Mean"]) == pytest.approx(want["contacts"], abs=0.05)
    assert f"about {19 * want['share']:.1f} (pro-rated to {want['share']:.0%} of the year)" in text
    assert not TRIAL_WORDS.findall(html)
    assert "S10001" not in html  # no student identifier from the roster
    wb = openpyxl.load_workbook(tmp_path / "follow_up.xlsx")
    assert {"Maria Lopez", "James Carter", "Dana Whitfield"} >= set(wb.sheetnames)
    assert all(ws.cell(1, 1).value == CONFIDENTIAL for ws in wb.worksheets)


# ----------------------------------------------------------------------------- print


PDFTOTEXT = shutil.which("pdftotext")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_report_prints_to_pdf_without_clipped_tables_or_orphaned_headings(trial, tmp_path):
    if CHROMIUM is None or PDFTOTEXT is None:
        pytest.skip("needs chromium and poppler-utils (apt-get install -y chromium poppler-utils)")
    res = quiet(trial.students, trial.contacts, trial.coordinators, caseload_guide="standard")
    rep = res.report()
    page = tmp_path / "report.html"
    page.write_text(rep.to_html(), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert pdf.is_file() and pdf.stat().st_size > 0
    text = subprocess.run(
        [PDFTOTEXT, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) >= 2
    flat = re.sub(r"\s+", "", text)
    # not clipped: the last column of every table, header and last cell, is on paper
    for kind, value in rep.blocks:
        if kind != "table":
            continue
        last_col = str(value.data.columns[-1])
        assert re.sub(r"\s+", "", last_col) in flat, last_col
        cell = str(value.data.iloc[-1, -1])
        if cell and cell != SUPPRESSED:
            assert re.sub(r"\s+", "", cell) in flat, (last_col, cell)
    # and no word lies beyond the right edge of its page
    boxes = subprocess.run(
        [PDFTOTEXT, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for page_box in re.finditer(r'<page width="([\d.]+)"[^>]*>(.*?)</page>', boxes, re.DOTALL):
        width = float(page_box.group(1))
        right = [float(x) for x in re.findall(r'xMax="([\d.]+)"', page_box.group(2))]
        assert right and max(right) <= width
    # no heading is the last thing on a page
    headings = {v for k, v in rep.blocks if k == "h2"}
    for p in pages[:-1]:
        lines = [ln.strip() for ln in p.splitlines() if ln.strip()]
        assert lines[-1] not in headings, lines[-1]
