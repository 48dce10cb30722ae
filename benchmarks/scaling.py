"""This machine's ceiling for more flow processes: the recogniser alone, in 1 and N
processes at once, on the same synthetic frames.

    python -m benchmarks.scaling                       # 1 and 2 processes, 2 rounds
    python -m benchmarks.scaling --processes 1 2 4 --frames 60 --json scaling.json

The pipeline benchmark's "2 processes vs 1" includes Kafka, Redis and the flow's own
work. This one runs only `read_frame` (the flow's settings: one model thread per
process), so its ratio is what the cores themselves give to model work: shared caches,
memory bandwidth, a hypervisor's placement. The pipeline's ratio over this one is the
flow's own scaling. Rounds alternate the process counts, so a noisy minute shows as a
spread between rounds instead of favouring one count.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import time
from collections.abc import Sequence
from typing import Any, get_args

from sim.synthetic_camera import ConditionsName

WARM_UP = 2


def _read_timed(
    frames: int, seed: int, conditions: str, start_together: Any, results: Any
) -> None:
    """In a fresh process: load the recogniser, render `frames` frames, read WARM_UP
    more, wait at `start_together` (a barrier: every process times the same seconds,
    none runs alone while another still loads), then put the frames/s it read on
    `results`."""
    import numpy as np  # imported here: each spawned process loads its own models

    from kernel.settings import Settings
    from recognizers import load_recognizer
    from recognizers.frame_reader import read_frame
    from sim.plate_render import random_plate
    from sim.scene import Conditions, render_frame

    settings = Settings()
    recognizer = load_recognizer(settings)
    rng = np.random.default_rng(seed)
    images = [
        render_frame(
            [(random_plate(rng), 0.5, 0.6, 1.0)],
            rng,
            Conditions.preset(conditions, rng),
            scene_seed=seed * 1000 + i,
        )
        for i in range(frames + WARM_UP)
    ]
    for image in images[:WARM_UP]:
        read_frame(recognizer, image, settings)
    start_together.wait()
    start = time.perf_counter()
    for image in images[WARM_UP:]:
        read_frame(recognizer, image, settings)
    results.put(frames / (time.perf_counter() - start))


def measure(
    process_counts: Sequence[int], frames: int, rounds: int, conditions: str
) -> list[dict[str, Any]]:
    """One row per (round, process count): frames/s of each process and in all."""
    spawn = multiprocessing.get_context("spawn")  # no model state shared by fork
    rows = []
    for round_no in range(1, rounds + 1):
        for count in process_counts:
            start_together, results = spawn.Barrier(count), spawn.Queue()
            procs = [
                spawn.Process(target=_read_timed,
                              args=(frames, 7, conditions, start_together, results))
                for _ in range(count)
            ]  # fmt: skip
            for proc in procs:
                proc.start()
            rates = [results.get(timeout=600) for _ in procs]
            for proc in procs:
                proc.join()
            rows.append({
                "round": round_no,
                "processes": count,
                "frames_per_s_each": [round(r, 2) for r in rates],
                "frames_per_s": round(sum(rates), 2),
            })
    return rows


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's total over the same round's one-process total (if measured)."""
    single = {r["round"]: r["frames_per_s"] for r in rows if r["processes"] == 1}
    for row in rows:
        base = single.get(row["round"])
        row["vs_1_process"] = round(row["frames_per_s"] / base, 2) if base else None
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=40, help="timed frames per process")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--conditions", default="typical", choices=get_args(ConditionsName))
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    if min(args.processes) < 1 or args.frames < 1 or args.rounds < 1:
        parser.error("--processes, --frames and --rounds must be at least 1")
    rows = with_ratios(measure(args.processes, args.frames, args.rounds, args.conditions))
    print(f"{'round':>5} {'processes':>9} {'frames/s':>9} {'vs 1':>6}  each")
    for r in rows:
        ratio = f"{r['vs_1_process']:.2f}x" if r["vs_1_process"] else "-"
        print(f"{r['round']:>5} {r['processes']:>9} {r['frames_per_s']:>9.2f} {ratio:>6}  "
              f"{r['frames_per_s_each']}")
    if args.json:
        out = {"machine": f"{platform.machine()} {platform.processor()}".strip(),
               "cpu_count": multiprocessing.cpu_count(), "conditions": args.conditions,
               "frames": args.frames, "rows": rows}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
