"""The analysis pipeline: steps are discovered, outputs match the library, the log is honest.

The pipeline runs once per session into a temporary folder. Its numbers are checked
against a fresh computation with the public cis_eval API, and the outputs committed in
analysis/output/ are checked to be exactly what the pipeline writes today.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cis_eval as ce

FIGURES = {".png", ".svg"}


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run_all(root):
    return _module(root / "analysis" / "run_all.py", "analysis_run_all")


@pytest.fixture(scope="session")
def pipeline(run_all, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis_output")
    written = run_all.run(out)
    return out, written


@pytest.fixture(scope="session")
def summary(synthetic_dir):
    """The shipped trial described again, straight from the public API."""
    tables = [ce.load(synthetic_dir / f"{n}.csv") for n in ("students", "contacts", "coordinators")]
    checked = ce.validate(*tables)
    return ce.describe(checked.students, checked.contacts)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- discovery


def test_steps_are_discovered_in_numeric_order_without_a_hand_list(run_all, tmp_path):
    for name in ("02_b.py", "10_c.py", "01_a.py", "00_make_synthetic_data.py", "helper.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "3_not_a_step.py").write_text("")
    assert [p.name for p in run_all.discover(tmp_path)] == ["01_a.py", "02_b.py", "10_c.py"]


def test_every_numbered_script_in_analysis_is_a_step(run_all, root):
    steps = run_all.discover(root / "analysis")
    numbered = sorted(
        p.name for p in (root / "analysis").glob("[0-9][0-9]_*.py") if p.name != run_all.DATA_STEP
    )
    assert [p.name for p in steps] == numbered
    assert steps, "no analysis steps found"


def test_steps_have_constants_a_main_and_a_docstring(run_all, root):
    for path in run_all.discover(root / "analysis"):
        step = _module(path, f"check_{path.stem}")
        assert (step.__doc__ or "").strip(), f"{path.name}: no module docstring"
        assert hasattr(step, "SEED"), f"{path.name}: no SEED constant (None if not random)"
        assert step.INPUTS and all(p.is_file() for p in step.INPUTS), path.name
        params = inspect.signature(step.main).parameters
        assert "out" in params, f"{path.name}: main() must take the output folder as `out`"


def test_steps_use_only_the_public_api(run_all, root):
    public = set(ce.__all__)
    for path in [*run_all.discover(root / "analysis"), root / "analysis" / "run_all.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("cis_eval"), (
                    f"{path.name}: `from {node.module} import ...`; use `import cis_eval as ce`"
                )
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("cis_eval"):
                        assert (alias.name, alias.asname) == ("cis_eval", "ce"), path.name
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ce"
            ):
                assert node.attr in public, f"{path.name}: ce.{node.attr} is not public"
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "ce"
            ):
                module = getattr(ce, node.value.attr)
                assert node.attr in module.__all__, (
                    f"{path.name}: ce.{node.value.attr}.{node.attr} is not public"
                )


# --------------------------------------------------------------------------- the run


def test_every_output_exists_and_the_log_lists_each_with_its_hash(pipeline, root):
    out, written = pipeline
    seed = _module(root / "analysis" / "00_make_synthetic_data.py", "make_data").SEED
    for path in written.values():
        assert path.is_file() and path.stat().st_size > 0, path
    log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    assert list(log.columns) == [
        "file",
        "role",
        "step",
        "data_seed",
        "step_seed",
        "cis_eval_version",
        "sha256",
    ]
    outputs = log[log["role"] == "output"]
    on_disk = {p.name for p in out.iterdir()} - {"replication_log.csv", "replication_log.md"}
    assert set(outputs["file"]) == on_disk
    for row in outputs.itertuples():
        assert _sha(out / row.file) == row.sha256, row.file
        assert row.cis_eval_version == ce.__version__
        assert row.data_seed == str(seed)  # the shipped data's recorded seed


def test_the_log_records_the_inputs_as_read(pipeline, root):
    out, _ = pipeline
    log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    inputs = log[log["role"] == "input"]
    assert set(inputs["file"]) == {
        "data/synthetic/students.csv",
        "data/synthetic/contacts.csv",
        "data/synthetic/coordinators.csv",
    }
    for row in inputs.itertuples():
        assert _sha(root / row.file) == row.sha256, f"{row.file} changed while the pipeline ran"
        assert row.step == "00_make_synthetic_data.py"


def test_the_log_has_no_timestamps(pipeline):
    out, _ = pipeline
    text = (out / "replication_log.csv").read_text() + (out / "replication_log.md").read_text()
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d", text)


def test_sample_by_school_matches_the_library(pipeline, summary):
    out, _ = pipeline
    table = pd.read_csv(out / "01_sample_by_school.csv")
    expected = summary.by_school.reset_index()
    assert table["school_id"].tolist() == expected["school_id"].tolist()
    for column in ("students", "program", "control"):
        assert table[column].tolist() == expected[column].astype(int).tolist(), column
    assert (table["program"] + table["control"] == table["students"]).all()
    assert table["students"].sum() == 2230 and len(table) == 28


def test_baseline_by_arm_matches_the_library(pipeline, summary):
    out, _ = pipeline
    table = pd.read_csv(out / "01_baseline_by_arm.csv")
    expected = summary.baseline
    assert table["variable"].tolist() == expected["variable"].tolist()
    for column in ("mean_program", "mean_control", "difference", "sd_program", "sd_control"):
        # CSV floats carry 10 significant digits
        np.testing.assert_allclose(table[column], expected[column], rtol=1e-9, err_msg=column)
    for column in ("n_program", "n_control"):
        assert table[column].tolist() == expected[column].tolist(), column


def test_markdown_tables_are_the_library_tables(pipeline, summary):
    out, _ = pipeline
    assert (out / "01_baseline_by_arm.md").read_text() == summary.tables()["baseline"].to_markdown()
    sample = (out / "01_sample_by_school.md").read_text()
    t = summary.by_school.sum()
    row = f"| All schools | {t['students']:,} | {t['program']:,} | {t['control']:,} |"
    assert row in sample


def test_figures_are_png_files(pipeline):
    out, _ = pipeline
    figures = [p for p in out.iterdir() if p.suffix in FIGURES]
    assert figures
    for path in figures:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
            assert b"Software" not in path.read_bytes()[:200], "PNG names its writer"


def test_rerunning_gives_identical_bytes(run_all, pipeline, tmp_path):
    out, _ = pipeline
    run_all.run(tmp_path)
    for path in out.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_committed_outputs_are_current(pipeline, root):
    """analysis/output/ is committed; it must be what `make analysis` writes today.

    Tables and the log are compared byte for byte. Figures are compared by presence only
    (their pixels depend on the matplotlib and FreeType versions; the numbers they show
    are in the tables beside them), so the log's hashes of figures are not compared.
    """
    out, _ = pipeline
    committed = root / "analysis" / "output"
    assert committed.is_dir(), "analysis/output/ is missing: run `make analysis` and commit it"
    fresh_names = {p.name for p in out.iterdir()}
    committed_names = {p.name for p in committed.iterdir() if not p.name.startswith(".")}
    assert committed_names == fresh_names, "analysis/output is stale: run `make analysis`"
    fresh_log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    kept_log = pd.read_csv(committed / "replication_log.csv", dtype=str, keep_default_na=False)
    kept_sha = dict(zip(kept_log["file"], kept_log["sha256"], strict=True))
    swap = {
        row.sha256: kept_sha.get(row.file, "")
        for row in fresh_log.itertuples()
        if row.file.endswith(tuple(FIGURES))
    }
    for path in out.iterdir():
        if path.suffix in FIGURES:
            continue
        text = path.read_text()
        if path.name.startswith("replication_log"):
            for fresh, kept in swap.items():
                text = text.replace(fresh, kept)
        assert (committed / path.name).read_text() == text, (
            f"analysis/output/{path.name} is stale: run `make analysis`"
        )


def test_the_pipeline_leaves_its_inputs_alone(run_all, root, tmp_path):
    before = {p.name: _sha(p) for p in (root / "data" / "synthetic").iterdir()}
    run_all.run(tmp_path)
    after = {p.name: _sha(p) for p in (root / "data" / "synthetic").iterdir()}
    assert before == after


# --------------------------------------------------------------------------- steps 05-08
# Each step's CSV is compared with the same result computed here through the public API,
# with the step's own constants (seed, permutations, thresholds, assumptions).


@pytest.fixture(scope="session")
def checked(synthetic_dir):
    """The shipped trial, loaded and validated straight from the public API."""
    tables = [ce.load(synthetic_dir / f"{n}.csv") for n in ("students", "contacts", "coordinators")]
    return ce.validate(*tables)


def _step(root, name):
    return _module(root / "analysis" / f"{name}.py", f"check_step_{name}")


def _assert_frame_matches(path, expected, rtol=1e-9):
    """A CSV written by ce.write_table holds the frame's columns and values (10 digits)."""
    table = pd.read_csv(path)
    assert list(table.columns) == list(expected.columns), path.name
    assert len(table) == len(expected), path.name
    for column in expected.columns:
        want = expected[column]
        if pd.api.types.is_bool_dtype(want):
            assert table[column].tolist() == want.tolist(), column
        elif pd.api.types.is_numeric_dtype(want):
            np.testing.assert_allclose(
                table[column].to_numpy(float),
                want.to_numpy(float),
                rtol=rtol,
                atol=1e-12,
                equal_nan=True,
                err_msg=f"{path.name}: {column}",
            )
        else:
            got = table[column].fillna("").astype(str).tolist()
            assert got == want.fillna("").astype(str).tolist(), f"{path.name}: {column}"


def test_impacts_match_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "05_impacts")
    itt = ce.estimate_itt(
        checked.students,
        se_type=step.SE_TYPE,
        estimand=step.ESTIMAND,
        mtp_family=step.MTP_FAMILY,
        sims=step.PERMUTATIONS,
        seed=step.SEED,
    )
    _assert_frame_matches(out / "05_impacts.csv", itt.to_frame())
    assert (out / "05_impacts.md").read_text() == itt.table().to_markdown()
    table = pd.read_csv(out / "05_impacts.csv").set_index("outcome")
    assert list(table.index) == list(ce.OUTCOME_NAMES)
    # randomization inference: P permutations give p-values on the grid k / (P + 1)
    grid = table["p_ri"] * (step.PERMUTATIONS + 1)
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-5)
    confirmatory = table["role"] == "confirmatory"
    assert table.loc[confirmatory, ["p_holm", "p_wy"]].notna().all().all()
    assert table.loc[~confirmatory, ["p_holm", "p_wy"]].isna().all().all()
    assert (table["p_holm"].dropna() >= table["p_value"][confirmatory] - 1e-12).all()
    assert f"seed {step.SEED}" in (out / "05_impacts.md").read_text()


def test_impacts_record_the_seed_in_the_replication_log(pipeline, root):
    out, _ = pipeline
    step = _step(root, "05_impacts")
    log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    rows = log[log["step"] == "05_impacts.py"]
    assert set(rows["file"]) == {
        "05_impacts.csv",
        "05_impacts.md",
        "05_impacts.png",
        "05_sensitivity.csv",
        "05_sensitivity.md",
    }
    assert (rows["step_seed"] == str(step.SEED)).all()
    for name in ("06_subgroups.py", "07_cace.py", "08_power.py"):
        assert (log.loc[log["step"] == name, "step_seed"] == "").all(), name


def test_sensitivity_matches_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "05_impacts")
    sensitivity = ce.estimate_sensitivity(checked.students)
    # iterative fits: the step keeps SENSITIVITY_DIGITS significant digits
    rtol = 0.6 * 10.0 ** (1 - step.SENSITIVITY_DIGITS)
    _assert_frame_matches(out / "05_sensitivity.csv", sensitivity.to_frame(), rtol=rtol)
    assert (out / "05_sensitivity.md").read_text() == sensitivity.table().to_markdown()
    table = pd.read_csv(out / "05_sensitivity.csv")
    assert table["model"].tolist() == ["logit", "logit", "Poisson"]


def test_subgroups_match_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "06_subgroups")
    students = checked.students
    gender = students["female"].astype("Int64").map({1: "female", 0: "male"})
    data = students.assign(gender=gender.astype("string"))
    no_female = {
        o.name: [c for c in ce.default_covariates(o) if c != "female"] for o in ce.OUTCOMES
    }
    results = {
        "school_level": ce.estimate_subgroups(data, "school_level", se_type=step.SE_TYPE),
        "baseline_risk": ce.estimate_subgroups(data, "baseline_risk", se_type=step.SE_TYPE),
        "gender": ce.estimate_subgroups(data, "gender", covariates=no_female, se_type=step.SE_TYPE),
    }
    assert list(results) == list(step.SPLITS)
    estimates = pd.concat(
        [r.to_frame().assign(split=by) for by, r in results.items()], ignore_index=True
    )
    tests = pd.concat([r.tests().assign(split=by) for by, r in results.items()], ignore_index=True)
    _assert_frame_matches(
        out / "06_subgroups.csv",
        estimates[["split"] + [c for c in estimates.columns if c != "split"]],
    )
    _assert_frame_matches(
        out / "06_subgroup_tests.csv", tests[["split"] + [c for c in tests.columns if c != "split"]]
    )
    written = pd.read_csv(out / "06_subgroups.csv")
    assert set(written.loc[written["split"] == "gender", "subgroup"]) == {"female", "male"}
    # core credits are a high-school outcome: no middle-school row
    level = written[written["split"] == "school_level"]
    assert not ((level["outcome"] == "core_credits") & (level["subgroup"] == "middle")).any()
    markdown = (out / "06_subgroups.md").read_text()
    assert markdown.count("(exploratory)**") == 3
    assert "collinear" not in markdown  # gender's own covariate is left out on purpose


def test_cace_matches_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "07_cace")
    cace = ce.estimate_cace(
        checked.students,
        checked.contacts,
        min_contacts=step.MIN_CONTACTS,
        tier=step.TIER,
        se_type=step.SE_TYPE,
    )
    _assert_frame_matches(out / "07_cace.csv", cace.to_frame())
    assert (out / "07_cace.md").read_text() == cace.table().to_markdown()
    table = pd.read_csv(out / "07_cace.csv").set_index("outcome")
    # one instrument: the CACE is the ITT impact over the first stage
    np.testing.assert_allclose(table["estimate"], table["itt"] / table["first_stage"], rtol=1e-8)
    itt = ce.estimate_itt(checked.students)
    np.testing.assert_allclose(table["itt"], itt.estimate.loc[table.index], rtol=1e-9)


def test_power_matches_the_library_and_the_formula(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "08_power")
    students = checked.students
    sizes = students.groupby("school_id").size() * step.RESPONSE_RATE
    high = students.loc[students["school_level"] == "high", "school_id"].unique()
    share = float(students["treatment"].mean())
    derived = ce.derive_outcomes(students)
    rate = derived[derived["treatment"] == 0][["chronic_absence", "core_course_failure"]].mean()
    everywhere = [n for n in ce.OUTCOME_NAMES if n != "core_credits"]
    common = {
        "share_treated": share,
        "icc": step.ICC,
        "model": step.MODEL,
        "n_covariates": step.N_COVARIATES,
        "alpha": step.ALPHA,
        "target_power": step.TARGET_POWER,
    }
    expected = pd.concat(
        [
            ce.mdes(
                students_per_school=sizes.tolist(),
                r2=[step.R2[n] for n in everywhere],
                outcomes=everywhere,
                control_rate=[rate.get(n) for n in everywhere],
                **common,
            ).to_frame(),
            ce.mdes(
                students_per_school=sizes[sizes.index.isin(high)].tolist(),
                r2=step.R2["core_credits"],
                outcomes=["core_credits"],
                **common,
            ).to_frame(),
        ],
        ignore_index=True,
    )
    order = {n: k for k, n in enumerate(ce.OUTCOME_NAMES)}
    expected = expected.sort_values("outcome", key=lambda s: s.map(order), ignore_index=True)
    _assert_frame_matches(out / "08_power.csv", expected)
    # and by hand: Bloom's multiplier times the constant-impact standard error
    table = pd.read_csv(out / "08_power.csv").set_index("outcome")
    for outcome, row in table.iterrows():
        school_sizes = sizes[sizes.index.isin(high)] if outcome == "core_credits" else sizes
        j, n = len(school_sizes), len(school_sizes) / (1 / school_sizes).sum()
        df = j * (n - 1) - step.N_COVARIATES - 1
        se = np.sqrt((1 - step.ICC) * (1 - step.R2[outcome]) / (share * (1 - share) * j * n))
        m = stats.t.ppf(1 - step.ALPHA / 2, df) + stats.t.ppf(step.TARGET_POWER, df)
        assert row["mdes"] == pytest.approx(m * se, rel=1e-8), outcome
        if outcome in rate.index:
            pp = 100 * m * se * np.sqrt(rate[outcome] * (1 - rate[outcome]))
            assert row["mde_pp"] == pytest.approx(pp, rel=1e-8), outcome
    text = (out / "08_power.md").read_text()
    assert "Assumptions:" in text and "core credits (high schools only)" in text


# --------------------------------------------------------------------------- steps 02-03


def _outcome_first(frame):
    return frame[["outcome"] + [c for c in frame.columns if c != "outcome"]]


def test_baseline_equivalence_matches_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "02_baseline_equivalence")
    results = {
        o.name: ce.baseline_equivalence(
            checked.students,
            outcome=o.name,
            basis=step.BASIS,
            sims=step.PERMUTATIONS,
            seed=step.SEED,
        )
        for o in ce.OUTCOMES
    }
    rows = pd.concat([r.to_frame().assign(outcome=n) for n, r in results.items()])
    tests = pd.concat([r.omnibus().assign(outcome=n) for n, r in results.items()])
    _assert_frame_matches(out / "02_baseline_equivalence.csv", _outcome_first(rows))
    _assert_frame_matches(out / "02_baseline_omnibus.csv", _outcome_first(tests))
    markdown = (out / "02_baseline_equivalence.md").read_text()
    assert markdown == "\n".join(r.table().to_markdown() for r in results.values())
    table = pd.read_csv(out / "02_baseline_equivalence.csv")
    assert list(dict.fromkeys(table["outcome"])) == list(ce.OUTCOME_NAMES)
    # the WWC category follows the effect size on the chosen basis (0.05 / 0.25)
    chars = table[table["kind"] != "missing"]
    size = chars["effect_size"].abs()
    expected = np.select(
        [size <= 0.05, size <= 0.25], ["satisfied", "requires adjustment"], "not satisfied"
    )
    assert chars["wwc_category"].tolist() == expected.tolist()
    np.testing.assert_allclose(chars["effect_size"], chars[f"effect_size_{step.BASIS}"])
    # each outcome's prior-year measure is the required characteristic of its sample
    required = chars[chars["required"]].set_index("outcome")["characteristic"]
    assert required.to_dict() == {o.name: o.prior for o in ce.OUTCOMES}
    # randomization test: P permutations give p-values on the grid k / (P + 1)
    omnibus = pd.read_csv(out / "02_baseline_omnibus.csv")
    ri = omnibus[omnibus["test"] == "randomization"]
    assert len(ri) == len(ce.OUTCOMES) and (ri["permutations"] == step.PERMUTATIONS).all()
    grid = ri["p_value"] * (step.PERMUTATIONS + 1)
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-5)


def test_attrition_and_wwc_review_match_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "03_attrition")
    students = checked.students
    attrition = ce.attrition(students, boundary=step.BOUNDARY)
    review = ce.wwc_review(
        students, boundary=step.BOUNDARY, randomization_intact=step.RANDOMIZATION_INTACT
    )
    _assert_frame_matches(out / "03_attrition.csv", attrition.to_frame())
    _assert_frame_matches(out / "03_wwc_review.csv", review.to_frame())
    assert (out / "03_attrition.md").read_text() == attrition.table().to_markdown()
    assert (out / "03_wwc_review.md").read_text() == review.table().to_markdown()
    # and by hand: attrition from the counts, the boundary from the shipped table
    table = pd.read_csv(out / "03_attrition.csv").set_index("outcome")
    assert list(table.index) == list(ce.OUTCOME_NAMES)
    derived = ce.derive_outcomes(students)
    high = (students["school_level"] == "high").to_numpy()
    z = students["treatment"].to_numpy()
    boundary = ce.attrition_boundaries(step.BOUNDARY).set_index("overall_attrition")
    for o in ce.OUTCOMES:
        randomized = high if o.population == "high" else np.ones(len(students), dtype=bool)
        kept = randomized & derived[o.name].notna().to_numpy()
        lost = [1 - kept[randomized & (z == arm)].mean() for arm in (1, 0)]
        overall = 100 * (1 - kept.sum() / randomized.sum())
        row = table.loc[o.name]
        assert row["overall_attrition"] == pytest.approx(overall, rel=1e-9), o.name
        assert row["differential_attrition"] == pytest.approx(100 * abs(lost[0] - lost[1]))
        limit = boundary["max_differential"].reindex([np.floor(overall), np.ceil(overall)]).min()
        assert row["max_differential"] == pytest.approx(limit), o.name
        level = "low" if row["differential_attrition"] <= limit else "high"
        assert row["attrition_level"] == level, o.name
    # the rating follows the WWC decision for an intact randomized trial
    rated = pd.read_csv(out / "03_wwc_review.csv").set_index("outcome")
    low = rated["attrition_level"] == "low"
    assert (rated.loc[low, "rating"] == "Meets WWC standards without reservations").all()
    assert (rated.loc[~low, "rating"] != "Meets WWC standards without reservations").all()
    assert not rated.loc[low, "equivalence_required"].any()


def test_integrity_steps_record_their_seeds(pipeline, root):
    out, _ = pipeline
    log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    baseline = log[log["step"] == "02_baseline_equivalence.py"]
    assert set(baseline["file"]) == {
        "02_baseline_equivalence.csv",
        "02_baseline_equivalence.md",
        "02_baseline_equivalence.png",
        "02_baseline_omnibus.csv",
    }
    assert (baseline["step_seed"] == str(_step(root, "02_baseline_equivalence").SEED)).all()
    assert (
        f"{_step(root, '02_baseline_equivalence').PERMUTATIONS:,} within-school"
        in (out / "02_baseline_equivalence.md").read_text()
    )
    attrition = log[log["step"] == "03_attrition.py"]
    assert len(attrition) == 5 and (attrition["step_seed"] == "").all()


# --------------------------------------------------------------------------- step 04


def _assert_csv_is_frame(path, expected):
    """Like _assert_frame_matches, but text columns may be empty throughout (no targets)."""
    numbers = pd.read_csv(path)
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(text.columns) == list(expected.columns), path.name
    assert len(text) == len(expected), path.name
    for column in expected.columns:
        want = expected[column]
        if pd.api.types.is_numeric_dtype(want) and not pd.api.types.is_bool_dtype(want):
            np.testing.assert_allclose(
                numbers[column].to_numpy(float),
                want.to_numpy(float),
                rtol=1e-9,
                atol=1e-12,
                equal_nan=True,
                err_msg=f"{path.name}: {column}",
            )
        else:
            got = text[column].tolist()
            assert got == want.astype("string").fillna("").tolist(), f"{path.name}: {column}"


def test_implementation_matches_the_library(pipeline, checked, root):
    out, _ = pipeline
    step = _step(root, "04_implementation")
    fid = ce.fidelity(
        checked.students,
        checked.contacts,
        checked.coordinators,
        caseload_guide=step.CASELOAD_GUIDE,
        thresholds=step.THRESHOLDS,
        min_cell=step.MIN_CELL,
    )
    assert set(step.LEVELS) == {
        "benchmarks",
        "dosage",
        "service_mix",
        "school",
        "coordinator",
        "arm",
    }
    for level, name in step.LEVELS.items():
        _assert_csv_is_frame(out / f"{name}.csv", fid.to_frame(level))
        assert (out / f"{name}.md").read_text() == fid.table(level).to_markdown(), name
    assert (out / "04_implementation.png").is_file()


def test_implementation_numbers_match_the_log_by_hand(pipeline, checked):
    """Dosage, service mix and the service contrast recomputed from the raw log."""
    out, _ = pipeline
    students, log = checked.students, checked.contacts
    program = set(students.loc[students["treatment"] == 1, "student_id"])
    level2 = log[(log["tier"] == 2) & log["student_id"].isin(program)]
    per_student = level2.groupby("student_id", observed=True).agg(
        contacts=("minutes", "size"),
        minutes=("minutes", "sum"),
        first=("date", "min"),
        last=("date", "max"),
    )
    weeks = (per_student["last"] - per_student["first"]).dt.days / 7
    bench = pd.read_csv(out / "04_benchmarks.csv").set_index("measure")["value"]
    assert bench["contacts"] == pytest.approx(per_student["contacts"].mean(), rel=1e-9)
    assert bench["hours"] == pytest.approx(per_student["minutes"].mean() / 60, rel=1e-9)
    assert bench["weeks"] == pytest.approx(weeks.mean(), rel=1e-9)
    assert bench["share_reached"] == pytest.approx(len(per_student) / len(program), rel=1e-9)
    assert bench["caseload"] == pytest.approx(checked.coordinators["caseload"].mean(), rel=1e-9)
    # service mix: share of program Level 2 contacts in each service area
    mix = pd.read_csv(out / "04_service_mix.csv")
    areas = mix[
        (mix["arm"] == "program") & (mix["tier"] == 2) & (mix["dimension"] == "service_area")
    ]
    by_hand = level2["service_type"].astype(str).value_counts(normalize=True)
    got = areas.set_index("code")["share_of_contacts"]
    np.testing.assert_allclose(got, by_hand.reindex(got.index).fillna(0), rtol=1e-9)
    assert list(got.index) == list(ce.SERVICE_TYPES)
    # service contrast: receipt of at least 1 and at least 19 Level 2 contacts by group
    contrast = pd.read_csv(out / "04_service_contrast.csv").set_index("arm")
    for k in (1, 19):
        received = ce.service_receipt(students, log, min_contacts=k)
        share = received.groupby(students["treatment"].map({1: "program", 0: "control"})).mean()
        column = "share_received" if k == 1 else f"share_at_least_{k}"
        np.testing.assert_allclose(contrast.loc[share.index, column], share, rtol=1e-9)
    # schools: the program students add up to the program group; caseloads as reported
    schools = pd.read_csv(out / "04_schools.csv")
    assert schools["program_students"].sum() == len(program)
    assert schools["students_reached"].sum() == len(per_student)
    reported = checked.coordinators.groupby("school_id")["caseload"].sum()
    np.testing.assert_allclose(
        schools.set_index("school_id")["reported_caseload"], reported.reindex(schools["school_id"])
    )


def test_implementation_tables_suppress_small_cells(pipeline, root):
    out, _ = pipeline
    step = _step(root, "04_implementation")
    contrast = pd.read_csv(out / "04_service_contrast.csv").set_index("arm")
    control_30 = contrast.loc["control", "share_at_least_30"] * contrast.loc["control", "students"]
    assert 0 < round(control_30) < step.MIN_CELL  # a small cell exists ...
    row = next(
        line
        for line in (out / "04_service_contrast.md").read_text().splitlines()
        if line.startswith("| Control group")
    )
    assert row.split("|")[7].strip() == "*"  # ... and the published table hides it
    log = pd.read_csv(out / "replication_log.csv", dtype=str, keep_default_na=False)
    rows = log[log["step"] == "04_implementation.py"]
    assert len(rows) == 2 * len(step.LEVELS) + 1
    assert (rows["step_seed"] == "").all()
