from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.cli.main import build_parser, main


def run(*args):
    """Run the installed console script in a subprocess (as users do)."""
    return subprocess.run(
        [sys.executable, "-m", "cis_eval.cli", *args], capture_output=True, text=True, check=False
    )


def test_version_and_help_for_every_subcommand(capsys):
    assert main(["--version"]) == 0
    assert ce.__version__ in capsys.readouterr().out
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert main([name, "--help"]) == 0
        assert "usage: cis-eval " + name in capsys.readouterr().out


def test_no_command_and_bad_option_exit_2(capsys):
    assert main([]) == 2
    assert main(["validate", "--nonsense"]) == 2


def test_validate_exit_codes_and_readable_report(tmp_path, small_trial):
    ce.write_trial(small_trial, tmp_path)
    ok = run(
        "validate",
        "--students",
        str(tmp_path / "students.csv"),
        "--contacts",
        str(tmp_path / "contacts.csv"),
    )
    assert ok.returncode == 0, ok.stderr
    assert "Validation passed" in ok.stdout
    s = pd.read_csv(tmp_path / "students.csv", dtype=str)
    s.loc[3, "treatment"] = "yes please"
    s.to_csv(tmp_path / "bad.csv", index=False)
    bad = run("validate", "--students", str(tmp_path / "bad.csv"))
    assert bad.returncode == 2
    assert "bad.csv: column 'treatment'" in bad.stdout and "(row 5)" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    for sid in s["student_id"]:
        assert sid not in bad.stdout + bad.stderr


def test_missing_file_is_a_user_error_without_traceback(tmp_path):
    r = run("validate", "--students", str(tmp_path / "missing.csv"))
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and "missing.csv: file not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_assign_writes_roster_and_verifiable_audit(tmp_path):
    roster = pd.DataFrame(
        {"student_id": [f"x{i}" for i in range(20)], "school_id": ["A"] * 12 + ["B"] * 8}
    )
    roster.to_csv(tmp_path / "roster.csv", index=False)
    r = run(
        "assign",
        "--students",
        str(tmp_path / "roster.csv"),
        "--out",
        str(tmp_path / "assigned.csv"),
        "--seed",
        "42",
    )
    assert r.returncode == 0, r.stderr
    assigned = pd.read_csv(tmp_path / "assigned.csv", dtype={"student_id": str})
    assert assigned.groupby("school_id")["treatment"].sum().to_dict() == {"A": 6, "B": 4}
    audit = json.loads((tmp_path / "assigned.audit.json").read_text())
    assert audit["seed"] == 42
    assert ce.verify_assignment(assigned, audit)
    # the input roster is untouched
    assert list(pd.read_csv(tmp_path / "roster.csv").columns) == ["student_id", "school_id"]


def test_simulate_command(tmp_path):
    r = run(
        "simulate",
        "--out",
        str(tmp_path),
        "--seed",
        "3",
        "--n-students",
        "300",
        "--n-schools",
        "4",
        "--effect",
        "core_gpa=0.2",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "contacts.csv").is_file()
    bad = run("simulate", "--out", str(tmp_path), "--seed", "3", "--effect", "gpa=abc")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, synthetic_dir):
    r = run("demo", "--data", str(synthetic_dir), "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "synthetic" in html and "<table" in html
    students = pd.read_csv(synthetic_dir / "students.csv", dtype=str)
    for sid in students["student_id"]:
        assert sid not in html
    r2 = run("demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d2"))
    assert r2.returncode == 2 and "no students.csv" in r2.stderr


def test_estimate_writes_the_impact_table_and_figure(tmp_path, small_trial):
    ce.write_trial(small_trial, tmp_path)
    out = tmp_path / "impacts"
    r = run(
        "estimate",
        "--students",
        str(tmp_path / "students.csv"),
        "--contacts",
        str(tmp_path / "contacts.csv"),
        "--out",
        str(out),
        "--sims",
        "200",
        "--subgroups",
        "school_level",
    )
    assert r.returncode == 0, r.stderr
    assert "Impacts on students' outcomes" in r.stdout and "CACE" in r.stdout
    for name in ("impacts.csv", "impacts.md", "impacts.html", "impacts_tidy.csv", "cace.csv"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "impacts.png").read_bytes()[:4] == b"\x89PNG"
    tidy = pd.read_csv(out / "impacts_tidy.csv")
    # the file holds what the library computes on the same data
    checked = ce.validate(ce.load(tmp_path / "students.csv"))
    lib = ce.estimate_itt(checked.students, sims=200, seed=20130601).to_frame()
    pd.testing.assert_series_equal(tidy["estimate"], lib["estimate"], check_exact=False, rtol=1e-9)
    assert tidy["p_ri"].notna().all()
    for sid in small_trial.students["student_id"]:
        assert sid not in r.stdout


def test_estimate_bad_input_is_one_line(tmp_path, small_trial):
    ce.write_trial(small_trial, tmp_path)
    r = run(
        "estimate",
        "--students",
        str(tmp_path / "students.csv"),
        "--out",
        str(tmp_path / "x"),
        "--outcomes",
        "dropout",
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: unknown outcome 'dropout'")
    assert "Traceback" not in r.stderr
    r = run(
        "estimate",
        "--students",
        str(tmp_path / "students.csv"),
        "--out",
        str(tmp_path / "x"),
        "--se-type",
        "HC9",
    )
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_import_is_lazy_and_the_public_api_is_whole(root):
    """``import cis_eval`` loads nothing heavy; every public name still resolves."""
    import ast

    code = (
        "import sys, cis_eval as ce\n"
        "before = 'pandas' in sys.modules or 'numpy' in sys.modules\n"
        "import cis_eval.fidelity.verb\n"
        "from cis_eval.fidelity import FidelityResult\n"
        "print(before, callable(ce.fidelity), ce.fidelity.__module__, FidelityResult.__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    before, is_callable, module, result = r.stdout.split()
    assert before == "False" and is_callable == "True" and module.startswith("cis_eval.fidelity")
    assert result == "FidelityResult"
    # the function wins over the subpackage of the same name, whatever was imported first
    assert callable(ce.fidelity) and ce.fidelity.__name__ == "fidelity"
    for name in ce.__all__:
        assert getattr(ce, name) is not None, name
    assert set(ce.__all__) <= set(dir(ce))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = ce.no_such_name
    # the lazy table, the names type checkers see and __all__ agree
    tree = ast.parse((root / "src" / "cis_eval" / "__init__.py").read_text())
    checked = next(n for n in tree.body if isinstance(n, ast.If))
    seen = {
        a.asname or a.name
        for n in ast.walk(checked)
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    table = set(ce._WHERE) | set(ce._MODULES)
    assert seen == table and table | {"__version__"} == set(ce.__all__)
