"""Hotlist benchmark: 1M-entry NCIC import, lookup throughput, memory, alert quality.

    python -m benchmarks.hotlists                                   # import + lookups
    python -m benchmarks.hotlists --photos ../shared/data/openalpr-us-dev \\
                                  --photos ../shared/data/openalpr-eu --json out.json

1. Generates an NCIC-format extract of --entries realistic US plates (state formats
   weighted by registrations, list codes in realistic shares, a few immigration and
   malformed rows) in a temporary folder (never committed) and imports it through the
   real importer (hotlists.import_run.Importer): parse, checks, Redis write, atomic swap.
   Then a refresh with 1% of the plates changed (the twice-daily case: version swap and
   "added" diff).
2. Redis memory per entry (INFO used_memory before/after).
3. Lookups: batches of --batch reads through hotlists.matching.match_plates and through
   flows.hotlist_join.join_reads (PlateRead objects, as the flow calls it), default
   policies (exact + OCR equivalence everywhere, one extra character for priority-1).
   Synthetic false alerts: alerts per 1,000 reads of random plates not on the list.
4. With --photos: every ground-truth plate of each folder is planted in the 1M list; the
   recogniser (recognizers.load_recognizer) reads every image; each candidate is a read
   (alertable at the flow's alert_min_confidence, and at 0 for comparison). Reported:
   alert recall (the true plate alerted) and false alerts (an alert on any other entry)
   per 1,000 images, with the plates planted as routine NCIC entries (V: exact and
   OCR-equivalent matching) and as Amber alerts (NCMEC: one extra differing character).
   Recogniser output is cached in the work folder (--workdir) between runs.
   `--split test` keeps only the photos whose plates the plate reader neither trained
   nor chose settings on (recognizers/training/data.py): the held-out alert figures.

Run one heavy benchmark at a time: Redis and this process share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import string
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.accuracy import ground_truth as accuracy_truth
from flows.hotlist_join import join_reads
from hotlists.events import MemoryUpdatePublisher
from hotlists.import_run import Importer
from hotlists.importers.ncic import format_record
from hotlists.matching import match_plates
from hotlists.plates import EQUIVALENCE_CLASSES
from hotlists.store import HotlistStore
from kernel.contracts import HotlistEntry, HotlistSource, PlateRead
from recognizers.training.data import SPLITS, split_of
from sim.local_services import LocalRedis

# Most states skip I, O and Q on standard plates (too close to 1 and 0).
LETTERS = "".join(c for c in string.ascii_uppercase if c not in "IOQ")
DIGITS = string.digits
# (state, weight ~ registrations, formats: L letter, D digit).
STATE_FORMATS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("CA", 14, ("DLLLDDD",)), ("TX", 10, ("LLLDDDD", "LLDLDDD")), ("FL", 8, ("LLLLDD", "DDDLLL")),
    ("NY", 5, ("LLLDDDD",)), ("PA", 4, ("LLLDDDD",)), ("IL", 4, ("LLDDDDD", "LDDDDDD")),
    ("OH", 4, ("LLLDDDD",)), ("GA", 4, ("LLLDDDD", "DDDDLLL")), ("NC", 4, ("LLLDDDD",)),
    ("MI", 4, ("LLLDDDD", "DLLLDD")), ("NJ", 3, ("LDDLLL", "LLLDDLL")), ("VA", 3, ("LLLDDDD",)),
    ("WA", 3, ("LLLDDDD",)), ("AZ", 3, ("LLLDDDD",)), ("MA", 3, ("DLLLDD", "DLLDDD")),
    ("TN", 3, ("LLLDDD", "DLDDLD")), ("IN", 3, ("DDDLLL", "DDDLL")), ("MO", 3, ("LLDLDL",)),
    ("MD", 3, ("DLLDDDD",)), ("WI", 3, ("LLLDDDD",)), ("CO", 3, ("LLLDDD", "LLLLDD")),
    ("MN", 2, ("LLLDDD",)), ("SC", 2, ("LLLDDD",)), ("AL", 2, ("DDLLDDD",)), ("LA", 2, ("LLLDDD",)),
    ("KY", 2, ("LLLDDD",)), ("OR", 2, ("LLLDDD",)), ("OK", 2, ("LLLDDD",)), ("CT", 2, ("LLDDDDD",)),
    ("UT", 1, ("LDDDLL",)), ("IA", 1, ("LLLDDD",)), ("NV", 1, ("DLLDDD",)), ("AR", 1, ("LLLDDD",)),
    ("MS", 1, ("LLLDDD",)), ("KS", 1, ("DDDLLL",)), ("NM", 1, ("LLLDDD",)), ("NE", 1, ("LLLDDD",)),
    ("ID", 1, ("DLDDDDD",)), ("WV", 1, ("DLDDDD",)), ("HI", 1, ("LLLDDD",)),
    ("NH", 1, ("DDDDDDD",)),
    ("ME", 1, ("DDDDLL",)), ("MT", 1, ("DDLDDDL",)), ("RI", 1, ("LLDDD",)), ("DE", 1, ("DDDDDD",)),
    ("SD", 1, ("DLLDDD",)), ("ND", 1, ("LLLDDD",)), ("AK", 1, ("LLLDDD",)), ("VT", 1, ("LLLDDD",)),
    ("WY", 1, ("DDDDDD",)), ("DC", 1, ("LLDDDD",)),
)  # fmt: skip
# NCIC list codes in rough proportion (stolen vehicles and plates dominate).
CODE_WEIGHTS = (
    ("V", 560), ("P", 200), ("W", 80), ("F", 40), ("M", 30), ("R", 20), ("L", 15),
    ("T", 15), ("H", 15), ("K", 10), ("C", 8), ("X", 6), ("A", 1),
)  # fmt: skip
MAKES = (("HOND", "CIV"), ("TOYT", "CAM"), ("FORD", "F15"), ("CHEV", "MAL"), ("NISS", "ALT"))
COLOURS = ("BLK", "WHI", "SIL", "GRY", "BLU", "RED")
_CANON = str.maketrans({c: cls[0] for cls in EQUIVALENCE_CLASSES for c in cls[1:]})


class PlateGenerator:
    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._states = [s for s, _, _ in STATE_FORMATS]
        self._weights = [w for _, w, _ in STATE_FORMATS]
        self._formats = {s: f for s, _, f in STATE_FORMATS}

    def plate(self) -> tuple[str, str]:
        rng = self.rng
        state = rng.choices(self._states, self._weights)[0]
        fmt = rng.choice(self._formats[state])
        text = "".join(rng.choice(LETTERS if c == "L" else DIGITS) for c in fmt)
        return text, state


def generate_ncic(path: Path, entries: int, *, seed: int, planted: Sequence[str] = (),
                  change_share: float = 0.0, base_seed: int | None = None) -> dict[str, int]:
    """Write an extract of `entries` records (plus planted plates as V records), with
    0.2% immigration records and 0.01% malformed lines. With change_share, a share of
    the records of the `base_seed` file is replaced by new ones (a refresh)."""
    base = base_seed if base_seed is not None else seed
    # The base file's plates and list codes come from the base seed, so a refresh keeps
    # them (codes included) except for the changed share.
    gen = PlateGenerator(base)
    rng = random.Random(base)
    fresh = PlateGenerator(seed + 1_000_003)
    change = random.Random(seed)
    codes = [c for c, _ in CODE_WEIGHTS]
    weights = [w for _, w in CODE_WEIGHTS]
    counts = {"records": 0, "immigration": 0, "malformed": 0, "planted": 0}
    with open(path, "w", encoding="latin-1", newline="\n") as out:
        out.write("NCIC LPR EXTRACT " + time.strftime("%Y%m%d%H%M") + "\n")
        for i in range(entries):
            plate, state = gen.plate()
            if change_share and change.random() < change_share:
                plate, state = fresh.plate()
            roll = rng.random()
            if roll < 0.002:
                code = "I"
                counts["immigration"] += 1
            elif roll < 0.0021:
                out.write(f"?{i:09d} garbled line\n")
                counts["malformed"] += 1
                continue
            else:
                code = rng.choices(codes, weights)[0]
            make, model = MAKES[i % len(MAKES)]
            out.write(format_record(
                code, plate, state, record_id=f"{i:09d}CO0000000", incident="20240115",
                vehicle_year=str(2005 + i % 19), make=make, model=model,
                colour=COLOURS[i % len(COLOURS)]) + "\n")
            counts["records"] += 1
        for j, plate in enumerate(planted):
            # Any valid state: the photo reads carry none, so state never filters them.
            out.write(format_record("V", plate, "ZZ", record_id=f"P{j:08d}") + "\n")
            counts["planted"] += 1
    return counts


def used_memory(client: redis.Redis) -> int:
    """Redis used_memory once UNLINKed versions are actually freed (lazy free)."""
    for _ in range(100):
        info = client.info("memory")
        if not int(info.get("lazyfree_pending_objects", 0)):
            break
        time.sleep(0.1)
    return int(info["used_memory"])


# --- lookups ------------------------------------------------------------------------------


def misread(plate: str, rng: random.Random) -> str:
    """One character replaced by a non-equivalent one (an OCR misread)."""
    i = rng.randrange(len(plate))
    same = plate[i].translate(_CANON)
    choices = [c for c in LETTERS + DIGITS if c.translate(_CANON) != same]
    return plate[:i] + rng.choice(choices) + plate[i + 1 :]


def equivalent(plate: str, rng: random.Random) -> str:
    """A look-alike swap where possible (0->O, 8->B...), else the plate itself."""
    spots = [i for i, c in enumerate(plate) if any(c in cls for cls in EQUIVALENCE_CLASSES)]
    if not spots:
        return plate
    i = rng.choice(spots)
    cls = next(cls for cls in EQUIVALENCE_CLASSES if plate[i] in cls)
    return plate[:i] + rng.choice([c for c in cls if c != plate[i]]) + plate[i + 1 :]


def bench_lookups(store: HotlistStore, listed: list[str], amber: list[str],
                  on_list: set[str], *, reads: int, batch: int, seed: int) -> dict[str, Any]:
    """`listed`: plates to read as hits; `on_list`: every plate the list holds (a random
    read that happens to be one of them is a true hit, not a false alert)."""
    rng = random.Random(seed)
    gen = PlateGenerator(seed + 7)
    plates: list[str] = []
    kinds: list[str] = []
    for _ in range(reads):
        roll = rng.random()
        if roll < 0.01:
            plates.append(rng.choice(listed))
            kinds.append("listed")
        elif roll < 0.015:
            plates.append(equivalent(rng.choice(listed), rng))
            kinds.append("listed_lookalike")
        elif roll < 0.02 and amber:
            plates.append(misread(rng.choice(amber), rng))
            kinds.append("amber_misread")
        else:
            plate, _ = gen.plate()
            plates.append(plate)
            kinds.append("unlisted" if plate not in on_list else "listed")
    # Warm up (script load, connection).
    match_plates(store, plates[:batch])
    started = time.perf_counter()
    hits: list[list[Any]] = []
    for i in range(0, len(plates), batch):
        hits += match_plates(store, plates[i : i + batch])
    match_s = time.perf_counter() - started

    now = int(time.time() * 1000)
    read_objs = [
        PlateRead(read_id=f"r{i}", plate=p, confidence=0.95, char_confidences=[0.95] * len(p),
                  camera_id="bench", first_seen=now, last_seen=now, frames_used=["f"],
                  frame_count=1)
        for i, p in enumerate(plates)
    ]
    started = time.perf_counter()
    alerts = 0
    for i in range(0, len(read_objs), batch):
        alerts += len(join_reads(store, read_objs[i : i + batch]))
    join_s = time.perf_counter() - started

    by_kind: dict[str, dict[str, int]] = {}
    for kind, h in zip(kinds, hits, strict=True):
        row = by_kind.setdefault(kind, {"reads": 0, "alerted": 0, "alerts": 0})
        row["reads"] += 1
        row["alerted"] += bool(h)
        row["alerts"] += len(h)
        for hit in h:
            key = f"{hit.match.method}_p{hit.entry.priority}"
            row[key] = row.get(key, 0) + 1
    unlisted = by_kind.get("unlisted", {"reads": 0, "alerts": 0})
    methods: dict[str, int] = {}
    for h in hits:
        for hit in h:
            methods[hit.match.method] = methods.get(hit.match.method, 0) + 1
    return {
        "reads": reads,
        "batch": batch,
        "match_plates_reads_per_s": round(reads / match_s),
        "join_reads_reads_per_s": round(reads / join_s),
        "alerts": alerts,
        "by_kind": by_kind,
        "methods": methods,
        "false_alerts_per_1000_unlisted_reads": round(
            1000 * unlisted["alerts"] / max(1, unlisted["reads"]), 3
        ),
    }


# --- real photos ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhotoRead:
    image: str
    truth: str
    candidates: list[tuple[str, float]]  # (text, confidence), best first


def ground_truth(folder: Path, limit: int | None = None, split: str | None = None
                 ) -> dict[str, str]:
    """image name -> true plate, for the first `limit` images (by name) or all; with
    `split`, only the images of that split of the plate reader's training (by plate:
    `test` is what nothing was trained or tuned on)."""
    labelled = [(image, plate) for image, plate, _ in accuracy_truth(folder)
                if split is None or split_of(plate) == split]
    return {image.name: plate for image, plate in labelled[:limit]}


def recognise_folder(folder: Path, cache: Path, limit: int | None = None,
                     split: str | None = None) -> list[PhotoRead]:
    """The flow's per-frame reads of each image (recognizers.frame_reader), cached (the
    recogniser costs ~0.3 s per image)."""
    truth = ground_truth(folder, limit, split)
    cached: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [name for name in truth if name not in cached]
    if todo:
        import cv2

        from kernel.settings import get_settings
        from recognizers import load_recognizer
        from recognizers.frame_reader import read_frame

        settings = get_settings()
        recognizer = load_recognizer(settings)
        for n, name in enumerate(todo, 1):
            image = cv2.imread(str(folder / name))
            # The candidates the flow would keep from this frame, as it would read them.
            cands = [] if image is None else read_frame(recognizer, image, settings)
            cached[name] = [[c.text, c.confidence] for c in cands]
            if n % 20 == 0:
                print(f"  recognised {n}/{len(todo)} of {folder.name}", flush=True)
                cache.write_text(json.dumps(cached))
        cache.write_text(json.dumps(cached))
    return [PhotoRead(name, plate, [(t, float(c)) for t, c in cached[name]])
            for name, plate in truth.items()]


def alert_quality(store: HotlistStore, photos: list[PhotoRead], min_conf: float
                  ) -> dict[str, Any]:
    reads = [(p, text) for p in photos for text, conf in p.candidates if conf >= min_conf]
    hits = match_plates(store, [t for _, t in reads]) if reads else []
    alerted: set[str] = set()
    false_alerts: list[dict[str, Any]] = []
    methods: dict[str, int] = {}
    for (photo, text), found in zip(reads, hits, strict=True):
        for hit in found:
            if hit.entry.plate == photo.truth:
                alerted.add(photo.image)
                methods[hit.match.method] = methods.get(hit.match.method, 0) + 1
            else:
                false_alerts.append({"image": photo.image, "read": text,
                                     "entry": hit.entry.plate, "source": hit.entry.source,
                                     "method": hit.match.method})
    n = len(photos)
    top1 = sum(1 for p in photos if p.candidates and p.candidates[0][0] == p.truth)
    anywhere = sum(1 for p in photos if any(t == p.truth for t, _ in p.candidates))
    return {
        "images": n,
        "min_confidence": min_conf,
        "reads": len(reads),
        "recall": round(len(alerted) / n, 4) if n else None,
        "true_plate_alerted": len(alerted),
        "false_alerts": len(false_alerts),
        "false_alerts_per_1000_images": round(1000 * len(false_alerts) / n, 1) if n else None,
        "match_methods_of_true_alerts": methods,
        "recogniser_top1_exact": round(top1 / n, 4) if n else None,
        "recogniser_truth_among_candidates": round(anywhere / n, 4) if n else None,
        "false_alert_examples": false_alerts[:10],
        "missed": [{"image": p.image, "truth": p.truth,
                    "read": [t for t, _ in p.candidates][:3]}
                   for p in photos if p.image not in alerted][:40],
    }


# --- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="alpr-hotlist-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    folders = [Path(p) for p in args.photos]
    planted: list[str] = []
    for folder in folders:
        planted += sorted(set(ground_truth(folder, args.photo_limit, args.split).values()))
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or
                    platform.machine()},
        "entries_requested": args.entries,
    }
    server = None if args.redis else LocalRedis().start()
    try:
        url = args.redis or server.url  # type: ignore[union-attr]
        client = redis.Redis.from_url(url)
        client.flushdb()
        store = HotlistStore(client)
        events = MemoryUpdatePublisher()
        importer = Importer(store, publisher=events)

        path = workdir / "ncic-1.txt"
        started = time.perf_counter()
        gen_counts = generate_ncic(path, args.entries, seed=args.seed, planted=planted)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s: {gen_counts}", flush=True)
        before = used_memory(client)
        report = importer.import_file("ncic", path)
        after = used_memory(client)
        results["import"] = {
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "seconds": round(report.seconds, 2),
            "rows": report.stats.rows,
            "entries": report.entries,
            "rejected": report.stats.rejected_total,
            "refused": report.stats.refused_total,
            "index_depth": report.index_depth,
            "redis_bytes_per_entry": round((after - before) / max(1, report.entries), 1),
            "redis_used_memory_mb": round(after / 1e6, 1),
        }
        print("import:", results["import"], flush=True)

        if not args.no_refresh:
            path2 = workdir / "ncic-2.txt"
            generate_ncic(path2, args.entries, seed=args.seed + 1, base_seed=args.seed,
                          planted=planted, change_share=0.01)
            report2 = importer.import_file("ncic", path2)
            results["refresh"] = {
                "seconds": round(report2.seconds, 2),
                "entries": report2.entries,
                "added_plates": report2.added,
                "event_added_truncated": events.events[-1].added_truncated,
                "redis_used_memory_mb_after": round(used_memory(client) / 1e6, 1),
            }
            print("refresh:", results["refresh"], flush=True)
            path.unlink()
            path = path2  # the file now serving

        on_list = dict(_sample_plates(path, 10**9))
        listed = list(on_list)[:20_000]
        amber = [p for p, code in on_list.items() if code == "A"][:2000]
        results["lookups"] = bench_lookups(store, listed, amber, set(on_list),
                                           reads=args.reads, batch=args.batch, seed=args.seed)
        print("lookups:", {k: v for k, v in results["lookups"].items() if k != "by_kind"},
              flush=True)

        if folders:
            results["photos"] = photo_quality(store, folders, workdir, planted,
                                              args.photo_limit, args.split)
            results["photos_split"] = args.split or "all"
        if not args.keep_file:
            path.unlink()
    finally:
        if server is not None:
            server.stop()
    return results


def photo_quality(store: HotlistStore, folders: list[Path], workdir: Path,
                  planted: list[str], limit: int | None = None, split: str | None = None
                  ) -> dict[str, Any]:
    from kernel.settings import Settings

    threshold = Settings().alert_min_confidence
    out: dict[str, Any] = {}
    photos = {f.name: recognise_folder(f, workdir / f"recognised-{f.name}.json", limit, split)
              for f in folders}
    for config in ("routine_ncic", "amber_ncmec"):
        if config == "amber_ncmec":
            # The planted plates leave the NCIC list and become Amber alerts.
            for j, plate in enumerate(planted):
                store.remove(HotlistSource.NCIC, f"VP{j:08d}", plate)
                store.upsert(HotlistEntry(plate=plate, source=HotlistSource.NCMEC,
                                          reason="benchmark Amber alert",
                                          entry_id=f"AMBER-{j}", priority=1,
                                          category="amber_alert"))
        for name, reads in photos.items():
            for conf in (threshold, 0.0):
                key = f"{config}/{name}/min_conf_{conf:g}"
                out[key] = alert_quality(store, reads, conf)
                row = out[key]
                print(f"{key}: recall {row['recall']} false/1000 "
                      f"{row['false_alerts_per_1000_images']} (top1 "
                      f"{row['recogniser_top1_exact']}, among "
                      f"{row['recogniser_truth_among_candidates']})", flush=True)
    return out


def _sample_plates(path: Path, limit: int) -> Iterator[tuple[str, str]]:
    with open(path, encoding="latin-1") as f:
        next(f)
        for n, line in enumerate(f):
            if n >= limit:
                return
            if len(line) > 39 and line[0] in "VPWFMRLTHKCXA":
                yield line[27:37].strip(), line[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="reads per lookup batch")
    parser.add_argument("--photos", action="append", default=[], help="image folder (repeat)")
    parser.add_argument("--photo-limit", type=int,
                        help="only the first N images of each folder (a quick check of the path)")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="only the photos of this split of the plate reader's training "
                             "(report `test`: nothing was trained or tuned on it)")
    parser.add_argument("--redis", help="use this Redis (flushes its db!) instead of a new one")
    parser.add_argument("--workdir", help="where the generated file and caches go")
    parser.add_argument("--keep-file", action="store_true")
    parser.add_argument("--no-refresh", action="store_true", help="skip the 1%% refresh import")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = run(args)
    text = json.dumps(results, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
