"""Time the offline demo (`python -m titlegen_assets.demo`) from an empty artifact root, with the time per asset.

    python benchmarks/demo_time.py [--home DIR]

Prints the whole wall time and each step's duration from the Dagster run's own step statistics. From an empty
artifact root, so it includes what a fresh machine pays once: assembling and de-quantizing the packaged Gemma 3 270M.
Goal: ≤ 8 minutes on a 2-core machine without AVX-512 (issue 30). ``--home`` keeps the artifact root (an empty or new
folder), so the run's merged model and GGUF files can be served and timed afterwards (benchmarks/serve_latency.py).
Results go in RESULTS.md.
"""

import argparse

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, help="keep the artifact root here (must be empty or new)")
    args = parser.parse_args()
    if args.home and args.home.exists() and any(args.home.iterdir()):
        parser.error(f"--home {args.home} is not empty: the run must start from nothing")
    with nullcontext(str(args.home)) if args.home else tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TITLEGEN_HOME": home, "DAGSTER_HOME": os.path.join(home, "dagster_home")}
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "titlegen_assets.demo"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in instance.get_run_step_stats(run.run_id)}
    print(json.dumps({"exit_code": code, "wall_seconds": round(wall, 1), "steps_seconds": steps}))


if __name__ == "__main__":
    main()
