"""The shipped synthetic data are exactly what the recorded script and seed produce."""

from __future__ import annotations

import importlib.util

import pytest

import cis_eval as ce


@pytest.mark.slow
def test_regenerated_data_match_the_shipped_files_byte_for_byte(root, synthetic_dir, tmp_path):
    written = _script(root).main(tmp_path)
    assert {p.name for p in written.values()} == {
        "students.csv",
        "contacts.csv",
        "coordinators.csv",
        "data_dictionary.csv",
        "truth.csv",
        "README.md",
    }
    for path in written.values():
        shipped = synthetic_dir / path.name
        assert shipped.read_bytes() == path.read_bytes(), f"{path.name} differs: run `make data`"


def _script(root):
    spec = importlib.util.spec_from_file_location(
        "make_data", root / "analysis" / "00_make_synthetic_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_data_are_study_sized_and_valid(root, synthetic_dir):
    report = ce.validate(
        *(ce.load(synthetic_dir / f"{n}.csv") for n in ("students", "contacts", "coordinators"))
    )
    s = report.students
    assert len(s) == 2230 and s["school_id"].nunique() == 28
    readme = (synthetic_dir / "README.md").read_text()
    seed = _script(root).SEED
    assert f"Seed: `{seed}`" in readme and "analysis/00_make_synthetic_data.py" in readme
    assert f"cis_eval {ce.__version__}" in readme
