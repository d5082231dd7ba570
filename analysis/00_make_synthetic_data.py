"""Step 00: write the shipped synthetic trial to data/synthetic/.

The trial is study-sized (28 schools, 2,230 students, 1,140 program : 1,090 control) and
follows the illustrative "interim" scenario: a 6 percentage-point reduction in chronic
absenteeism, no effect on the other outcomes. A test regenerates these files and compares
them byte for byte, so the shipped data cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path

import cis_eval as ce

# Recorded: changing it changes every shipped number. The first seed at or after 20130601
# whose realized trial shows the illustrative scenario's pattern at the 5% level (a
# significant drop in chronic absence, no other outcome with p < 0.2); 20130601 itself gave a
# chance "significant" drop in suspensions, whose true effect is zero.
SEED = 20130605
SCENARIO = "interim"
N_STUDENTS = 2230
N_SCHOOLS = 28
OUT = Path(__file__).resolve().parents[1] / "data" / "synthetic"


def main(out: Path = OUT) -> dict[str, Path]:
    trial = ce.simulate(seed=SEED, scenario=SCENARIO, n_students=N_STUDENTS, n_schools=N_SCHOOLS)
    paths = ce.write_trial(trial, out)
    paths["data_dictionary"] = ce.write_table(ce.data_dictionary(), out / "data_dictionary.csv")
    paths["truth"] = ce.write_table(trial.truth.to_frame(), out / "truth.csv")
    paths["README"] = ce.io.write_text(
        out / "README.md",
        ce.schema.render_dataset_readme(
            script="analysis/00_make_synthetic_data.py",
            seed=SEED,
            scenario=SCENARIO,
            version=ce.__version__,
            summary=repr(trial),
        ),
    )
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
