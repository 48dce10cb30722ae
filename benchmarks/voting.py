"""Multi-frame voting: per-frame vs per-pass exact reads on degraded synthetic passes.

    python -m benchmarks.voting --passes 60 --frames 5 --conditions hard --json vote.json

Each synthetic vehicle pass (sim.synthetic_camera: perspective, blur, noise,
night, as the conditions preset says) goes through the flow's own steps: every frame
through flows.pipeline.recognise, then the pass tracker (flows.passes) with the flow's
pass policy. By default every frame is read whole; with --motion-regions frames are
read as the flow reads them by default (the detector looks only where the frame moved
since the camera's last recognised frame; an unchanged frame would be skipped and count
as unread). Reported: single-frame exact % (the frame's best read equals the plate),
per-pass exact % (the pass's published read equals it; a pass split into several reads
counts as wrong), passes with no read, and the misread passes with each frame's best read.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import cv2
import numpy as np

from flows.frames import DecodedFrame
from flows.passes import PassPolicy, PassTracker
from flows.pipeline import recognise
from kernel.contracts import FrameMeta
from kernel.settings import Settings
from sim.synthetic_camera import ConditionsName, generate_passes


def run(
    passes: int, frames: int, conditions: str, seed: int, motion_regions: bool = False
) -> dict[str, Any]:
    # Every frame counts here, read whole; or as the flow reads it (flows.frame_filter).
    settings = Settings() if motion_regions else Settings(unchanged_frame_threshold=0)
    policy = PassPolicy(gap_ms=int(settings.pass_gap_s * 1000),
                        max_frames=settings.max_frames_per_pass,
                        settle_confidence=settings.alert_min_confidence,
                        alert_min_confidence=settings.alert_min_confidence)
    generated = generate_passes(passes, frames, seed=seed, conditions=conditions,
                                cameras=("cam-1",))
    frame_right = frame_total = pass_right = no_read = 0
    wrong: list[dict[str, Any]] = []
    started = time.perf_counter()
    for p in generated:
        tracker = PassTracker(policy)  # one tracker per pass: nothing leaks between them
        reads = []
        frame_reads: list[str] = []  # each frame's best read, for the misread report
        for f in p.frames:
            image = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
            meta = FrameMeta(camera_id=f.camera_id, captured_at=f.captured_at,
                             frame_id=f.frame_id)
            observations = recognise(settings, DecodedFrame(meta, image, len(f.jpeg)))
            frame_total += 1
            frame_right += bool(observations) and observations[0].text == p.plate
            frame_reads.append(
                f"{observations[0].text} {observations[0].confidence:.2f}" if observations else "-"
            )
            reads += tracker.observe_frame(meta, observations)
        reads += tracker.close_all()
        plates = [r.plate for r in reads]
        if not plates:
            no_read += 1
        if plates == [p.plate]:
            pass_right += 1
        else:
            wrong.append({"plate": p.plate, "reads": plates, "frames": frame_reads})
    seconds = time.perf_counter() - started
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "conditions": conditions, "passes": passes, "frames_per_pass": frames, "seed": seed,
        "motion_regions": motion_regions,
        "frame_exact": 100 * frame_right / frame_total,
        "pass_exact": 100 * pass_right / passes,
        "passes_without_read": no_read,
        "ms_per_frame": 1000 * seconds / frame_total,
        "wrong_passes": wrong,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=60)
    parser.add_argument("--frames", type=int, default=5, help="frames per pass")
    parser.add_argument("--conditions", default="hard",
                        choices=get_args(ConditionsName))
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--motion-regions", action="store_true",
                        help="detect only where each frame moved, as the flow does")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.passes, args.frames, args.conditions, args.seed, args.motion_regions)
    print(f"{'conditions':>10} {'passes':>6} {'frame exact %':>14} {'pass exact %':>13} "
          f"{'no read':>8} {'ms/frame':>9}")
    print(f"{result['conditions']:>10} {result['passes']:>6} {result['frame_exact']:14.1f} "
          f"{result['pass_exact']:13.1f} {result['passes_without_read']:>8} "
          f"{result['ms_per_frame']:9.0f}")
    for w in result["wrong_passes"]:
        print(f"  {w['plate']:>10} -> {w['reads']}   frames: {' | '.join(w['frames'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
