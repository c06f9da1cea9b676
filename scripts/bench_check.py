"""How long the dataset doctor takes, as ratios against reading every image once.

For each dataset (warm page cache: every file is read once before timing), in one run:

- ``read+sha256``: read and hash every image file, serially: the baseline, the cost of touching every byte;
- ``ultralytics verify``: Ultralytics' own per-image check (``verify_image_label``, what it runs to
  build its label cache) on the same number of threads (``--ultralytics``; imports torch);
- ``check``: ``check_dataset`` with an empty in-process cache (what ``detector-data check`` does);
- ``check again``: a second check in the same process (training's second pre-flight);
- ``fingerprint``: hashes only, empty cache;
- ``detector-data check (CLI)``: the command, interpreter start included.

    python scripts/bench_check.py                   # solar + deeppcb, JSON in benchmarks/check.json
    python scripts/bench_check.py --datasets sample --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detector import io  # noqa: E402
from detector.data import check, images, spec  # noqa: E402
from detector.data.fingerprint import fingerprint  # noqa: E402

SHARED = Path(os.environ.get("DETECTOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {
    "sample": ROOT / "datasets" / "sample" / "data.yaml",
    "solar": SHARED / "solar_pv_gray416" / "data.yaml",
    "deeppcb": SHARED / "deeppcb" / "data.yaml",
}


def _best(fn: Callable[[], object], repeat: int, cold: bool = True) -> float:
    """Fastest of ``repeat`` timed calls; ``cold`` empties the in-process image cache before each."""
    times = []
    for _ in range(repeat):
        if cold:
            images.forget()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _read_hash(paths: list[Path]) -> None:
    for p in paths:
        hashlib.sha256(p.read_bytes()).hexdigest()


def _ultralytics_verify(s: spec.DataSpec) -> Callable[[], object]:
    from detector import runtime

    runtime.configure()
    from ultralytics.data.utils import verify_image_label

    jobs = [
        (str(p), str(spec.label_path(p)), "", False, s.nc, 0, 0, False)
        for ps in s.splits.values()
        for p in ps
    ]
    return lambda: images.parallel_map(verify_image_label, jobs)


def measure(name: str, yaml_path: Path, repeat: int, ultralytics: bool) -> dict:
    s = spec.load(yaml_path)
    paths = [p for ps in s.splits.values() for p in ps]
    _read_hash(paths)  # warm the page cache
    base = _best(lambda: _read_hash(paths), repeat, cold=False)
    rows = {"read+sha256": base}
    if ultralytics:
        rows["ultralytics verify"] = _best(_ultralytics_verify(s), repeat, cold=False)
    rows["check"] = _best(lambda: check.check_dataset(s), repeat)
    rows["check again"] = _best(lambda: check.check_dataset(s), repeat, cold=False)
    rows["fingerprint"] = _best(lambda: fingerprint(s), repeat)

    def cli() -> None:
        subprocess.run(
            [sys.executable, "-m", "detector.data", "check", str(yaml_path)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    rows["detector-data check (CLI)"] = _best(cli, repeat, cold=False)
    report = check.check_dataset(s)
    return {
        "dataset": name,
        "data_yaml": str(yaml_path),
        "images": len(paths),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "backgrounds": sum(c["backgrounds"] for c in report.counts.values()),
        "fingerprint": report.fingerprint,
        "seconds": {k: round(v, 3) for k, v in rows.items()},
        "ratio_to_read": {k: round(v / base, 2) for k, v in rows.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["solar", "deeppcb"], choices=list(DATASETS))
    p.add_argument("--repeat", type=int, default=3, help="timed calls per figure; the fastest counts")
    p.add_argument("--ultralytics", action="store_true", help="also time Ultralytics' verify_image_label")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "check.json")
    args = p.parse_args()
    results = [measure(d, DATASETS[d], args.repeat, args.ultralytics) for d in args.datasets]
    doc = {"cpus": os.cpu_count(), "repeat": args.repeat, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(args.out, doc)
    for r in results:
        print(f"\n{r['dataset']}: {r['images']} images, {r['errors']} errors, {r['backgrounds']} backgrounds")
        print(f"  {'step':<28}{'seconds':>9}{'x read':>9}")
        for k, v in r["seconds"].items():
            print(f"  {k:<28}{v:>9.3f}{r['ratio_to_read'][k]:>9.2f}")
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
