"""The synthetic sample district (南芬区 210505): a complete data root and its answer key.

``generate(out, households, seed)`` writes, under ``out``, everything inputs.md describes —
``villages.csv``, ``registry/*.xlsx``, ``surveys/<办事处名称>/<file>.xlsx|.xls`` and
``departments/<dept>/*`` for all nine departments (no ``exceptions.csv``) — carrying the mess
real village and department files carry, and writes the answer key to ``out/.answer_key.json``
(a dot-file, so the pipeline never treats it as input).

The answer key is computed from the generator's own ground truth (the people, households and
department records it made), by the rules of rules.md with the given Settings, and never by
pipeline code. Same seed and size give byte-identical files (xlsx creation time, zip entry
times and file modification times are fixed), however many worker processes write them.

Order of work (each step only looks at what earlier steps fixed), and the module that does it:

1. villages and subdistricts; the roles a few villages play (no survey, corrected resubmission,
   legacy .xls, bunching, ...) — ``model``;
2. households and people (registry status, members, health, school, work, guarantees), each
   household's true net income in cents — ``model``;
3. planted incomes: exact boundary households, a 算账式脱贫 village and a near-miss village —
   ``plant``;
4. planted data problems (B1–B9, warnings) on a few percent of households — ``plant``;
5. no accidental bunching elsewhere (households nudged until no other village triggers W6) —
   ``plant``;
6. participation (是否申请纳入, 民主评议结果, 主要致贫原因) for the households that need it —
   ``plant``;
7. planted cross-check hits and decoys — ``departments``; then each household's income items —
   ``model``;
8. the files, written by forked worker processes (each file from the finished model and its own
   seeded RNG, so the bytes never depend on which worker writes it or when) — ``render``;
   meanwhile the answer key, evaluating the rules on the truth, and last the rows it cites, as
   the workers report them — ``answer_key``.

This module runs the steps, in that order.

Large districts (a million people) are the benchmark's: the model is built once in this process,
the xlsx cells go through ``xlsxfast`` (XlsxWriter's output, byte for byte, at a fraction of the
cost per cell) and a worker holds one workbook at a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from pipeline import schema as S
from pipeline.sample import answer_key, plant
from pipeline.sample import departments as dep
from pipeline.sample.model import District, make_households, make_villages, split_income
from pipeline.sample.render import Files
from pipeline.settings import Settings

ANSWER_KEY = ".answer_key.json"


def generate(out: Path, households: int = 8000, seed: int = 2019, settings: Settings | None = None,
             workers: int | None = None) -> dict:
    """Write the sample district under ``out`` and return (and write) its answer key.

    The files are written by ``workers`` processes (default: one per CPU; 1 writes them in this
    process); the output is the same whatever the number."""
    out = Path(out)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    d = District(households, seed, settings or Settings())
    _prepare_out(out)
    make_villages(d)
    make_households(d)
    plant.plant_incomes(d)
    plants = plant.plant_problems(d)
    plant.no_accidental_bunching(d)
    plant.participation(d)
    book = dep.Extracts(d, d.rng_for("departments"))
    book.plant(d.rng_for("plant"))
    for hh in d.households + d.missed_households:
        split_income(d, hh)
    book.normal_records(d.households)
    book.unrelated(d.count(1200, 60))

    files = Files(d, book, out, workers)
    files.write_villages_csv()
    jobs = files.plan()
    warnings = answer_key.find_warnings(d)  # after plan(): they cite the latest file of each village
    path = out / ANSWER_KEY
    drafted: list = []

    # the key needs only the model, so it is worked out while the workers write; the rows it
    # cites are filled in from what they report
    def meanwhile():
        drafted.append(answer_key.draft(d, book, plants, warnings, files))
        answer_key.write_json_head(path, drafted[0][0], stream="households")  # all before "problems" is final

    files.write(jobs, answer_key.cited_rows(warnings, plants), meanwhile=meanwhile)
    key = answer_key.finish(*drafted[0], files.rowmap)
    answer_key.write_json_tail(path, key, stream="households")
    files.touch(path, 0)
    return key


def _prepare_out(out: Path) -> None:
    """An empty folder, or an earlier sample cleared; anything else is refused."""
    if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):  # .gitkeep is no data
        if not (out / ANSWER_KEY).exists():
            raise FileExistsError(f"{out} is not empty and holds no earlier sample; choose an empty folder")
        for name in (S.REGISTRY_DIR, S.SURVEYS_DIR, S.DEPARTMENTS_DIR):
            if (out / name).exists():
                shutil.rmtree(out / name)
        for name in (S.VILLAGES_FILE, ANSWER_KEY):
            if (out / name).exists():
                (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.sample.generator",
                                 description="Write the synthetic sample district and its answer key.")
    ap.add_argument("--out", required=True, type=Path, help="data root to write (empty or an earlier sample)")
    ap.add_argument("--households", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=2019)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    key = generate(args.out, args.households, args.seed)
    c = key["counts"]
    print(f"{args.out}: {c['villages']} villages, {c['survey_files']} survey files, {c['households']} households, "
          f"{c['persons']} persons, {sum(c['problems_by_rule'].values())} planted problems "
          f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
