"""Run the analysis pipeline: every numbered step in this folder, in order.

Steps are found, not listed: every file named ``NN_<name>.py`` (two digits, an
underscore) is a step, run in the order of its number. Step 00 writes the shipped
synthetic data (``make data``); it is not re-run here, but the data files it wrote are
logged as inputs with its recorded seed.

Each step is a module with

* constants at the top, including ``INPUTS`` (the files it reads) and ``SEED`` (the seed
  of any random numbers it draws, or None);
* ``main(out: Path) -> dict[str, Path]``, which writes its tables and figures into
  ``out`` atomically and returns them.

After the steps, ``replication_log.csv`` and ``replication_log.md`` list every input and
output with the step that made it, the seeds, the cis_eval version and the file's SHA-256
(no dates or times, so the log changes only when a file does).

Usage: ``python analysis/run_all.py [--out FOLDER]`` (``make analysis``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pandas as pd

import cis_eval as ce

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "output"
DATA_STEP = "00_make_synthetic_data.py"
STEP_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.py$")
LOG_NAME = "replication_log"
LOG_COLUMNS = ["file", "role", "step", "data_seed", "step_seed", "cis_eval_version", "sha256"]


def discover(folder: Path = HERE) -> list[Path]:
    """The analysis steps in ``folder``, in the order of their numbers (step 00 excluded)."""
    return sorted(p for p in folder.iterdir() if STEP_NAME.match(p.name) and p.name != DATA_STEP)


def load_step(path: Path) -> ModuleType:
    """Import a step file as a module (its name starts with a digit, so no plain import)."""
    spec = importlib.util.spec_from_file_location(f"analysis_step_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load analysis step {path.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shown(path: Path, base: Path) -> str:
    """Path as written in the log: relative to ``base`` when inside it."""
    path = path.resolve()
    try:
        return path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def run(out: Path = OUT, folder: Path = HERE) -> dict[str, Path]:
    """Run every step into ``out`` and write the replication log; return name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    data_step = load_step(folder / DATA_STEP)
    data_dir = Path(data_step.OUT).resolve()
    data_seed = int(data_step.SEED)
    inputs: dict[Path, str] = {}
    outputs: list[dict[str, object]] = []
    written: dict[str, Path] = {}
    for step_path in discover(folder):
        step = load_step(step_path)
        for path in getattr(step, "INPUTS", ()):
            inputs.setdefault(Path(path).resolve(), step_path.name)
        step_inputs = [Path(p).resolve() for p in getattr(step, "INPUTS", ())]
        from_shipped = bool(step_inputs) and all(p.is_relative_to(data_dir) for p in step_inputs)
        produced = step.main(out)
        for name, path in produced.items():
            written[f"{step_path.stem}:{name}"] = path
        for path in sorted(produced.values(), key=lambda p: p.name):
            seed = getattr(step, "SEED", None)
            outputs.append(
                {
                    "file": _shown(path, out),
                    "role": "output",
                    "step": step_path.name,
                    "data_seed": data_seed if from_shipped else None,
                    "step_seed": seed,
                    "cis_eval_version": ce.__version__,
                    "sha256": sha256(path),
                }
            )
    rows = [
        {
            "file": _shown(path, ROOT),
            "role": "input",
            "step": DATA_STEP if path.is_relative_to(data_dir) else "",
            "data_seed": data_seed if path.is_relative_to(data_dir) else None,
            "step_seed": None,
            "cis_eval_version": ce.__version__,
            "sha256": sha256(path),
        }
        for path in sorted(inputs, key=lambda p: _shown(p, ROOT))
    ]
    log = pd.DataFrame(rows + outputs, columns=LOG_COLUMNS)
    for column in ("data_seed", "step_seed"):
        log[column] = log[column].astype("Int64")
    written["log_csv"] = ce.write_table(log, out / f"{LOG_NAME}.csv")
    shown = log.copy()
    for column in ("data_seed", "step_seed"):  # seeds are labels: no thousands separators
        shown[column] = shown[column].astype("string").fillna("")
    table = ce.Table(
        shown,
        title="Replication log",
        notes=(
            "Inputs are the files the steps read; outputs are the files they wrote.",
            "data_seed: seed of the synthetic data (analysis/00_make_synthetic_data.py); "
            "step_seed: seed of random numbers drawn by the step itself (blank: none).",
            "Regenerate with `make analysis`; the SHA-256 identifies each file's bytes.",
        ),
    )
    written["log_md"] = ce.io.write_text(out / f"{LOG_NAME}.md", table.to_markdown())
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="output folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for name, path in run(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
