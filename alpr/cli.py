"""`alpr`: one command, a subcommand per operator job."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from hotlists.cli import register_hotlist_commands
from kernel.cli_errors import log_to_stderr
from safeguards.cli import register as register_safeguards

app = typer.Typer(
    help="Real-time licence-plate hotlist alerting with civil-liberties safeguards.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def global_options(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log debug messages, and tracebacks with warnings.")] = False,
) -> None:
    # Nothing else configures logging: without this, a warning logged with its exception
    # (a cleanup that failed in an outage) is a raw traceback from Python's last resort.
    ctx.call_on_close(log_to_stderr(verbose=verbose))

hotlist_app = typer.Typer(help="Hotlists: import and inspect.", no_args_is_help=True)
app.add_typer(hotlist_app, name="hotlist")
# import (ncic|ccic|ncmec|csv), status, watch: hotlists/cli.py.
register_hotlist_commands(hotlist_app)


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Seconds to run; Ctrl-C stops earlier.")] = 90,
    kafka: Annotated[str | None, typer.Option(help="Use this broker instead of starting one.")]
    = None,
    redis_url: Annotated[str | None, typer.Option("--redis", help="Use this Redis URL.")] = None,
    workers: Annotated[
        int, typer.Option(help="Flow processes of one worker each (one per core is fastest).")
    ] = 2,
    # Half of what 2 cores read (about 6 frames/s at ~300 ms each on a slow 2-core box):
    # offered more, frames queue and the latency shown is the queue's, not the system's.
    fps: Annotated[
        float, typer.Option(help="Synthetic camera frames per second, all cameras together.")
    ] = 3.0,
    cameras: Annotated[int, typer.Option(help="Synthetic cameras.")] = 2,
) -> None:
    """Run the whole system locally on synthetic traffic and print alerts as they arrive."""
    from alpr.demo import run_demo

    run_demo(duration, kafka=kafka, redis_url=redis_url, workers=workers, fps=fps,
             cameras=cameras)


# help= rather than a docstring: rich help keeps a docstring's line breaks.
@app.command(help=(
    "Run the dataflow (settings from ALPR_* environment variables). If any process exits "
    "with an error, the others are stopped and this command exits non-zero; SIGTERM or "
    "Ctrl-C stops them all."))
def flow(
    processes: Annotated[int, typer.Option(
        min=1, help="Flow processes to start on this host, forming one cluster; process i "
        "serves /metrics on ALPR_METRICS_PORT + i. One per core is fastest.")] = 1,
    workers: Annotated[int, typer.Option(
        "-w", "--workers", min=1, help="Worker threads per process (1 is fastest: threads "
        "share the GIL).")] = 1,
    process_id: Annotated[int | None, typer.Option(
        "-i", help="Multi-host only, with --processes 1: this process's index.")] = None,
    addresses: Annotated[str | None, typer.Option(
        "-a", help="Multi-host only: all processes' host:port, ';'-separated.")] = None,
    recovery_dir: Annotated[Path | None, typer.Option(
        "-r", help="Recovery folder (default ALPR_RECOVERY_DIR, ~/.alpr/recovery): the "
        "flow's state per frames topic, made on first start, resumed on restart; the "
        "same folder for every process.")] = None,
) -> None:
    from alpr.launcher import launch

    if processes > 1 and (process_id is not None or addresses):
        raise typer.BadParameter("-i/-a name one process of a multi-host cluster; "
                                 "--processes starts a whole cluster on this host",
                                 param_hint="--processes")
    extra: list[str] = []
    if process_id is not None and addresses:
        extra += ["-i", str(process_id), "-a", addresses]
    env = os.environ.copy()
    if recovery_dir is not None:
        env["ALPR_RECOVERY_DIR"] = str(recovery_dir)
    raise typer.Exit(launch(env, processes=processes, workers=workers, extra_args=extra))


@app.command()
def camera(
    kafka: Annotated[str, typer.Option(help="Broker bootstrap address.")],
    passes: Annotated[int, typer.Option(help="Vehicles to send.")] = 20,
    frames_per_pass: Annotated[int, typer.Option(help="Frames per vehicle.")] = 5,
    fps: Annotated[float, typer.Option(help="Frames per second; 0 = as fast as possible.")]
    = 5.0,
    cameras: Annotated[int, typer.Option(help="Cameras.")] = 1,
    conditions: Annotated[str, typer.Option(help="clean, typical or hard.")] = "typical",
    seed: Annotated[int, typer.Option(help="Same seed, same frames.")] = 0,
    truth: Annotated[Path | None, typer.Option(help="Write ground truth JSON here.")] = None,
) -> None:
    """Publish synthetic camera frames (with ground truth) to the frames topic."""
    from connectors.kafka import ensure_topics, make_producer
    from kernel.settings import Topics
    from sim.synthetic_camera import generate_passes, iter_frames, publish_frames

    topic = Topics().frames
    ensure_topics(kafka, [topic])
    generated = generate_passes(passes, frames_per_pass, seed=seed, conditions=conditions,
                                cameras=[f"cam-{i + 1}" for i in range(cameras)])
    sent = publish_frames(make_producer(kafka), topic, iter_frames(generated),
                          rate_fps=fps or None, rewrite_time=True)
    if truth:
        truth.write_text(json.dumps(
            [{"camera_id": p.camera_id, "plate": p.plate, "pass": p.pass_index} for p in generated],
            indent=1))
    typer.echo(f"sent {sent} frames of {len(generated)} vehicles to {topic}")


# The safeguards' commands (search, audit, agency, user, serve, retention) live with them.
register_safeguards(app)

if __name__ == "__main__":
    app()
