"""Where reading the survey workbooks on two processes starts to pay (pipeline/io/inputs.py,
PARALLEL_READ_MIN_BYTES): generated districts of a few sizes, each read serially and by a pool of
one process per core, alternated, every read in a fresh process so the pool pays its fork server's
start as a run does. Prints wall time, and the CPU of the process and everything it started
(the fork server's workers are not its children) from a cpuacct cgroup where one can be made
(root, cgroup v1; else "nan"), per size.

    .venv/bin/python bench/ingest_pool.py [--households 300 900 2000 8000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

READ = r"""
import json, sys, time
from pathlib import Path

from pipeline.io import inputs


def main():
    root, workers = Path(sys.argv[1]), int(sys.argv[2])
    ready, _ = inputs.scan_survey_files(root, settle=False)
    started = time.perf_counter()
    inputs.read_survey_files(root, ready, workers=workers)
    print(json.dumps({"files": len(ready), "wall": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
"""


def read_once(raw: Path, workers: int, script: Path) -> dict:
    cgroup = Path("/sys/fs/cgroup/cpuacct") / f"ingest_pool_{time.monotonic_ns()}"
    try:
        cgroup.mkdir()
    except OSError:
        cgroup = None
    proc = subprocess.Popen([sys.executable, str(script), str(raw), str(workers)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: (cgroup / "tasks").write_text("0")) if cgroup else None)
    out, _ = proc.communicate()
    row = json.loads(out.strip().splitlines()[-1])
    if cgroup is not None:
        time.sleep(0.3)  # the fork server ends with its parent
        row["cpu"] = int((cgroup / "cpuacct.usage").read_text()) / 1e9
        for pid in (cgroup / "tasks").read_text().split():
            (cgroup.parent / "tasks").write_text(pid)
        cgroup.rmdir()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[300, 900, 2000, 8000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pipeline.sample.generator import generate

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "read.py"
        script.write_text(READ)
        print("households  bytes      files  serial wall  2-proc wall  serial CPU  2-proc CPU")
        for households in args.households:
            raw = Path(tmp) / f"raw_{households}"
            generate(raw, households=households, seed=2019)
            size = sum(p.stat().st_size for p in (raw / "surveys").rglob("*.xlsx"))
            rows = {1: [], 2: []}
            for _ in range(args.repeat):
                for workers in (1, 2):
                    rows[workers].append(read_once(raw, workers, script))
            med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "files"} for w, rs in rows.items()}
            cpu = [f"{med[w].get('cpu', float('nan')):10.2f}" for w in (1, 2)]
            print(f"{households:10d}  {size:9d}  {rows[1][0]['files']:5d}  {med[1]['wall']:11.2f}  {med[2]['wall']:11.2f}  "
                  f"{cpu[0]}  {cpu[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
