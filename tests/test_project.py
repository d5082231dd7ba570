"""Project metadata stays consistent: citation, version, README commands, CI script."""

from __future__ import annotations

import tomllib

import yaml

import cis_eval as ce


def test_citation_is_complete_and_matches_the_version(root):
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == ce.__version__
    for key in ("title", "authors", "license", "repository-code", "date-released"):
        assert cff[key]
    titles = " ".join(r["title"] for r in cff["references"])
    assert "Communities In Schools Evaluation" in titles
    assert "Two Years of Case Management" in titles


def test_pyproject_version_matches_package(root):
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["version"] == ce.__version__


def test_readme_opens_with_the_two_commands(root):
    lines = (root / "README.md").read_text().splitlines()
    first_block = lines[: lines.index("```", 3) + 1]
    text = "\n".join(first_block)
    assert "make demo" in text and "make test" in text


def test_ci_runs_the_readme_commands(root):
    ci = (root / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "set -euo pipefail" in ci
