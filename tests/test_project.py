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


def test_the_readme_notebook_example_runs(root):
    import re

    import matplotlib.pyplot as plt

    text = (root / "README.md").read_text()
    block = re.search(r"## In a notebook\s+```python\n(.*?)```", text, re.DOTALL)
    assert block, "README lost its notebook example"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102
    plt.close("all")
    assert "itt" in namespace and namespace["itt"].to_frame().shape[0] == 6


def test_readme_command_lines_name_real_subcommands(root):
    import re

    from cis_eval.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = (root / "README.md").read_text()
    used = set(re.findall(r"^cis-eval (\w+)", text, re.MULTILINE))
    assert used and used <= set(sub.choices), used - set(sub.choices)
