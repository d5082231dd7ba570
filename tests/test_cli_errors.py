"""The command line's error boundary: every bad option, path or file is exit 2, one line.

The bad option values are generated from the parsers themselves, so an option added
later is covered without editing this file, and an option whose values are not checked
(a bare ``type=int``) fails the test.
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cis_eval.cli import _common
from cis_eval.cli.main import COMMANDS, bounded, command_parsers, main
from cis_eval.cli.power import school_sizes

PARSERS = command_parsers()
MAX_MESSAGE = 400


def options(parser: argparse.ArgumentParser):
    """The parser's options (not --help), each with its longest flag."""
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            yield max(action.option_strings, key=len), action


def bad_numbers(t: _common.Number) -> list[str]:
    """Values just outside the range of ``t``, and values that are no number at all."""
    values = ["abc", "nan", "inf", "", "1e999"]
    if t.kind is int:
        values.append("1.5")
    if t.low is not None:
        values.append(repr(t.low) if t.low_open else repr(t.low - 1))
    if t.high is not None:
        values.append(repr(t.high) if t.high_open else repr(t.high + 1))
    return values


def bad_values(flag: str, action: argparse.Action) -> list[list[str]]:
    """Argument lists that give ``flag`` a value it must refuse."""
    t = action.type
    if action.nargs == 2:  # --school-year FIRST LAST
        assert t is _common.iso_date, flag
        return [
            [flag, "abc", "def"],
            [flag, "2013-02-30", "2013-07-31"],
            [flag, "2013-07-31", "2012-08-01"],
            [flag, "2012-08-01", "2012-08-01"],
        ]
    if action.choices is not None:
        values = ["not-a-choice", ""]
    elif isinstance(t, _common.Number):
        values = bad_numbers(t)
    elif isinstance(t, _common.NameValues):
        values = ["chronic_absence", "=1", "x=", "x=abc", "x=nan", "x=1,,abc"]
        if not t.many:
            values.append("x=1,2")
    elif t is school_sizes:
        values = ["abc", "0", "-5,80", "80,nan", ","]
    elif t is _common.iso_date:  # one date, e.g. fidelity --through
        values = ["abc", "2013-02-30", "", "31/01/2013"]
    elif t is _common.output_folder or isinstance(t, _common.OutputFile):
        return []  # impossible paths are tested below
    elif t is None or t is str:
        return []  # free text (a file to read, a column name): checked when used
    else:
        pytest.fail(f"{flag} has a type= that no test knows; use one of cli._common's types")
    return [[f"{flag}={v}"] for v in values]


CASES = [
    pytest.param(name, argv, id=f"{name} {' '.join(argv)}")
    for name, parser in PARSERS.items()
    for flag, action in options(parser)
    for argv in bad_values(flag, action)
]


def test_every_command_is_covered():
    assert {c.NAME for c in COMMANDS} == set(PARSERS)
    assert len(CASES) > 150


def check_one_line(err: str, *words: str) -> None:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert len(err) < MAX_MESSAGE, err
    assert "Traceback" not in err and "internal error" not in err
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize(("command", "argv"), CASES)
def test_a_bad_option_value_is_one_line_and_exit_2(command, argv, capsys):
    assert main([command, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    check_one_line(captured.err, argv[0].split("=")[0])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["estimate", "--alpha", "2"], ["--alpha", "(0, 1)"]),
        (["estimate", "--sims", "-1"], ["--sims"]),
        (["estimate", "--chronic-threshold", "5"], ["--chronic-threshold"]),
        (["estimate", "--min-contacts", "-1"], ["--min-contacts"]),
        (["assign", "--p", "1.5"], ["--p"]),
        (["assign", "--p", "0"], ["--p"]),
        (["assign", "--seed", "-3"], ["--seed"]),
        (["simulate", "--effect", "chronic_absence"], ["--effect", "NAME=VALUE"]),
        (["validate", "--school-year", "abc", "def"], ["--school-year", "2012-08-01"]),
        (["validate", "--school-year", "2013-07-31", "2012-08-01"], ["ends"]),
        (["nonsense"], ["invalid choice"]),
        (["estimate", "--out", "x", "--nonsense"], ["unrecognized"]),
    ],
)
def test_the_reported_cases(argv, words, capsys):
    assert main(argv) == 2
    check_one_line(capsys.readouterr().err, *words)


def out_options():
    for name, parser in PARSERS.items():
        for flag, action in options(parser):
            if action.type is _common.output_folder or isinstance(action.type, _common.OutputFile):
                yield pytest.param(name, flag, action.type, id=f"{name} {flag}")


@pytest.mark.parametrize(("command", "flag", "kind"), list(out_options()))
def test_impossible_output_paths_are_exit_2(command, flag, kind, tmp_path, capsys):
    a_file = tmp_path / "a_file.html"
    a_file.write_text("x")
    a_folder = tmp_path / "a_folder.html"
    a_folder.mkdir()
    suffix = kind.suffixes[0] if isinstance(kind, _common.OutputFile) else ""
    impossible = [
        a_file / f"under_a_file{suffix}",
        a_folder if isinstance(kind, _common.OutputFile) else a_file,
    ]
    if isinstance(kind, _common.OutputFile):
        impossible.append(tmp_path / "wrong.suffix")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        impossible.append(locked / f"out{suffix}")
    for path in impossible:
        assert main([command, f"{flag}={path}"]) == 2, path
        check_one_line(capsys.readouterr().err, flag)
    assert not list((a_file.parent).glob("*.tmp"))


def input_files():
    for name, parser in PARSERS.items():
        files = [flag for flag, a in options(parser) if a.metavar == "FILE" and a.type is None]
        if files:
            yield pytest.param(name, parser, files, id=name)


@pytest.mark.parametrize(("command", "parser", "files"), list(input_files()))
def test_missing_input_files_are_exit_2_naming_them(
    command, parser, files, tmp_path, synthetic_dir, capsys
):
    filled = []
    for flag, action in options(parser):
        if not action.required or flag in files:
            continue
        if isinstance(action.type, _common.OutputFile):
            filled += [flag, str(tmp_path / f"out{action.type.suffixes[0]}")]
        elif action.type is _common.output_folder:
            filled += [flag, str(tmp_path / "out")]
        else:
            filled += [flag, "1"]
    for flag in files:
        missing = tmp_path / f"missing_{flag.strip('-')}.csv"
        argv = [command, *filled, flag, str(missing)]
        for other in files:  # the other tables are the shipped synthetic trial's
            table = synthetic_dir / f"{other.strip('-')}.csv"
            # --mapping names the tables itself
            if other != flag and table.is_file() and flag != "--mapping":
                argv += [other, str(table)]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, err
        assert "internal error" not in err and len(err.splitlines()) <= 26, err
        assert missing.name in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_exit_2_naming_the_file(tmp_path, monkeypatch, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    import cis_eval.io

    def full(prefix="", suffix="", dir=None):
        return os.open("/dev/full", os.O_WRONLY), str(Path(dir) / f"{prefix}x{suffix}")

    monkeypatch.setattr(cis_eval.io.tempfile, "mkstemp", full)
    out = tmp_path / "trial"
    argv = ["simulate", "--out", str(out), "--seed", "1", "--n-students", "60", "--n-schools", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    check_one_line(err, "no space left", str(out / "students.csv"))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_os_errors_are_bounded_user_errors(tmp_path, monkeypatch, capsys):
    from cis_eval.cli import validate

    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "roster.csv"))

    monkeypatch.setattr(validate, "run", denied)
    assert main(["validate", "--students", "roster.csv"]) == 2
    check_one_line(capsys.readouterr().err, "roster.csv", "Permission denied")


def test_a_bug_is_exit_1_without_traceback(monkeypatch, capsys):
    from cis_eval.cli import validate

    def bug(args):
        return {}["missing"]

    monkeypatch.setattr(validate, "run", bug)
    assert main(["validate", "--students", "x.csv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("internal error (KeyError)") and "Traceback" not in err
    with pytest.raises(KeyError):
        main(["--debug", "validate", "--students", "x.csv"])


def test_long_messages_are_cut():
    text = bounded("\n".join(["x" * 1000] * 100))
    lines = text.splitlines()
    assert len(lines) <= 26 and all(len(line) <= 300 for line in lines)
    assert "75 more line(s)" in lines[-1]
    assert bounded("short") == "short"


def test_a_bad_column_map_is_exit_2(tmp_path, synthetic_dir, capsys):
    students = str(synthetic_dir / "students.csv")
    cases = {
        "twice.json": '{"students": {"a": "student_id", "b": "student_id"}}',
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "broken.toml": "students = {",
        "shape.json": '{"students": ["student_id"]}',
        "section.json": '{"pupils": {}}',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        code = main(["validate", "--students", students, "--column-map", str(tmp_path / name)])
        assert code == 2, name
        check_one_line(capsys.readouterr().err, name)
    assert main(["validate", "--students", students, "--column-map", "absent.json"]) == 2
    check_one_line(capsys.readouterr().err, "absent.json")


def test_assign_refuses_to_overwrite_its_roster(tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,school_id\na,S\nb,S\n")
    assert main(["assign", "--students", str(roster), "--out", str(roster), "--seed", "1"]) == 2
    check_one_line(capsys.readouterr().err, "roster itself")
    assert roster.read_text() == "student_id,school_id\na,S\nb,S\n"


# ----------------------------------------------------------------------------- output folders


def write_run(folder: Path, files: dict[str, str], *, fail: bool = False) -> None:
    from cis_eval.io import atomic_folder, write_text

    with atomic_folder(folder, command="test") as tmp:
        for name, text in files.items():
            write_text(tmp / name, text)
        if fail:
            raise RuntimeError("the run failed")


def test_a_folder_is_written_as_a_unit(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        write_run(out, {"a.csv": "1"}, fail=True)
    assert not out.exists()  # a failed first run leaves nothing
    write_run(out, {"a.csv": "1", "sub/b.csv": "2"})
    assert (out / "a.csv").read_text() == "1" and (out / "sub" / "b.csv").read_text() == "2"
    with pytest.raises(RuntimeError):
        write_run(out, {"a.csv": "new"}, fail=True)
    assert (out / "a.csv").read_text() == "1"  # a failed rerun leaves the last run whole
    write_run(out, {"c.csv": "3"})
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [".cis-eval-run.json", "c.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary leftovers


def test_the_users_own_files_in_an_output_folder_are_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    write_run(out, {"a.csv": "1", "b.csv": "2"})
    write_run(out, {"a.csv": "one"})
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "a.csv").read_text() == "one"
    assert not (out / "b.csv").exists()  # the previous run's file, listed in its manifest


def test_a_failed_estimate_leaves_no_outputs_and_a_rerun_no_stale_ones(
    tmp_path, small_trial, capsys
):
    import cis_eval as ce

    ce.write_trial(small_trial, tmp_path)
    out = tmp_path / "e"
    base = ["estimate", "--students", str(tmp_path / "students.csv"), "--out", str(out)]
    assert main([*base, "--subgroups", "nonexistent"]) == 2
    capsys.readouterr()
    assert not out.exists()
    assert main([*base, "--subgroups", "school_level"]) == 0
    assert (out / "subgroups_school_level.csv").is_file()
    assert main(base) == 0
    capsys.readouterr()
    assert not list(out.glob("subgroups_*"))
    assert (out / "impacts.csv").is_file()


def test_version_and_help_do_not_import_the_library():
    code = (
        "import sys\n"
        "from cis_eval.cli.main import command_parsers, main\n"
        "heavy = ('numpy', 'pandas', 'scipy', 'statsmodels', 'matplotlib')\n"
        "main(['--version']); main(['--help'])\n"
        "print('TOP', sorted(m for m in heavy if m in sys.modules))\n"
        "command_parsers()\n"  # every subcommand's options, as its --help shows them
        "print('SUB', sorted(m for m in heavy[1:] if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "TOP []" in r.stdout and "SUB []" in r.stdout, r.stdout


def test_fidelity_reads_a_declared_number_format_and_encoding(
    tmp_path, small_trial, monkeypatch, capsys
):
    """``fidelity`` takes --decimal, --thousands and --encoding as validate does, also
    when its log is large enough to be read from disk (then the table reader reads it)."""
    import pandas as pd

    import cis_eval as ce
    from cis_eval.cli import fidelity

    files = ce.write_trial(small_trial, tmp_path / "data")
    for name, path in files.items():  # a European export: semicolons and decimal commas
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if name == "contacts":
            frame["note"] = "caf\u00e9"  # not UTF-8 once written in cp1252
        for c in frame.columns:
            frame[c] = frame[c].str.replace(".", ",", regex=False)
        path.write_bytes(frame.to_csv(index=False, sep=";").encode("cp1252"))
    base = ["fidelity", *(x for n, f in files.items() for x in (f"--{n}", str(f)))]
    base += ["--out", str(tmp_path / "report.html")]
    assert main([*base, "--encoding", "cp1252"]) == 2
    assert "decimal comma" in capsys.readouterr().err
    assert main([*base, "--decimal", ","]) == 2
    assert "--encoding cp1252" in capsys.readouterr().err
    declared = [*base, "--decimal", ",", "--encoding", "cp1252"]
    assert main(declared) == 0, capsys.readouterr().err
    capsys.readouterr()
    # a log over the size DuckDB reads straight from disk (UTF-8, '.' decimals only)
    monkeypatch.setattr(fidelity, "BIG_LOG_BYTES", 0)
    assert main(declared) == 0, capsys.readouterr().err


def test_a_number_format_beside_a_mapping_file_is_a_usage_error(tmp_path, capsys):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[roster]\nfile = "r.csv"\n')
    for flags in (["--decimal", ","], ["--encoding", "cp1252"], ["--thousands", ","]):
        assert main(["validate", "--mapping", str(mapping), *flags]) == 2
        check_one_line(capsys.readouterr().err, flags[0], "leave out")
