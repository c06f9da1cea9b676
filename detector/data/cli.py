"""``detector-data``: check, convert, split, tile, plot and fingerprint datasets.

Exit status: 0 done (check: no errors), 1 check found errors, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from detector.data import balance
from detector.data.problems import CODES, validate_allow
from detector.data.write import LINKS
from detector.errors import DetectorError
from detector.tables import table


def format_report(report, seconds: float, per_code: int | None) -> str:
    """The human-readable check report: split counts, per-class table, problems, verdict."""
    rows = [["split", "images", "labels", "boxes", "backgrounds"]]
    for split, c in report.counts.items():
        share = c["backgrounds"] / c["images"] if c["images"] else 0
        rows.append(
            [split, *(str(c[k]) for k in ("images", "labels", "boxes")), f"{c['backgrounds']} ({share:.1%})"]
        )
    total = sum(c["images"] for c in report.counts.values())
    bg = sum(c["backgrounds"] for c in report.counts.values())
    rows.append(
        [
            "all",
            str(total),
            *(str(sum(c[k] for c in report.counts.values())) for k in ("labels", "boxes")),
            f"{bg} ({bg / max(total, 1):.1%})",
        ]
    )
    splits = list(report.counts)
    crows = [["id", "class", "images", "boxes", *splits, "median box w x h (px)"]]
    for r in report.classes:
        size = f"{r['median_w_px']:g} x {r['median_h_px']:g}" if r["median_w_px"] is not None else "-"
        crows.append(
            [
                str(r["id"]),
                r["name"],
                str(r["images"]),
                str(r["boxes"]),
                *(str(r["per_split"][s]) for s in splits),
                size,
            ]
        )
    out = [f"dataset      {report.yaml}", f"fingerprint  {report.fingerprint}", ""]
    out += [*table(rows, left=1), "", *table(crows, left=2), ""] if report.counts else []
    imb = report.imbalance()
    out += [balance.suggestion(imb), ""] if imb and report.counts else []
    for severity in ("error", "warning"):
        lines = report.summary_lines(severity, per_code)
        if lines:
            n = len(report.errors if severity == "error" else report.warnings)
            out += [f"{n} {severity}(s):", *(f"  {line}" for line in lines), ""]
    verdict = f"NOT USABLE: {len(report.errors)} error(s)" if report.errors else "usable: no errors"
    out.append(f"{verdict}, {len(report.warnings)} warning(s)  [{seconds:.2f} s]")
    return "\n".join(out)


def _check(args: argparse.Namespace) -> int:
    from detector.data import check, spec

    t0 = time.perf_counter()
    report = check.check_dataset(spec.load(args.data, strict=False)).allow(validate_allow(args.allow))
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps({**report.to_dict(), "seconds": round(seconds, 3)}, indent=2))
    else:
        print(format_report(report, seconds, None if args.all else 5))
    return 1 if report.errors else 0


def _sources(args: argparse.Namespace) -> dict[str, tuple[Path, Path | None]]:
    out = {}
    for split in ("train", "val", "test"):
        given = getattr(args, split)
        if given:
            if len(given) > 2:
                raise DetectorError(f"--{split} takes ANNOTATIONS [IMAGES_DIR], got {len(given)} values.")
            out[split] = (
                Path(given[0]).expanduser(),
                Path(given[1]).expanduser() if len(given) == 2 else None,
            )
    return out


def _convert(args: argparse.Namespace) -> int:
    from detector.data.convert import convert

    print(convert(args.format, args.out, _sources(args), args.data, args.names, args.link))
    return 0


def _split(args: argparse.Namespace) -> int:
    from detector.data.split import split

    print(split(args.src, args.out, args.val, args.test, args.seed, args.names, args.link))
    return 0


def format_tiles(data_yaml: Path, report) -> str:
    """What ``tile`` prints: per-split counts, skipped images, the new data.yaml."""
    rows = [["split", "images", "tiles", "empty kept", "empty dropped", "boxes in", "boxes out", "cut boxes"]]
    for split, n in report.counts.items():
        rows.append([split, *(str(v) for v in vars(n).values())])
    s = report.settings
    out = [f"source       {report.source}", f"fingerprint  {report.source_fingerprint}"]
    out += [f"tiles        {s['size']} px, overlap {s['overlap']}, min visibility {s['min_visibility']}", ""]
    out += [*table(rows, left=1), ""]
    if report.skipped:
        out += [f"{len(report.skipped)} image(s) could not be decoded and were skipped:"]
        out += [f"  {x['image']}: {x['reason']}" for x in report.skipped] + [""]
    if report.label_problems:
        out += [
            f"{report.label_problems} label problem(s) left out; see: detector-data check {report.source}",
            "",
        ]
    return "\n".join([*out, str(data_yaml)])


def _tile(args: argparse.Namespace) -> int:
    from detector.data.tile import defaults, settings, tile_dataset

    given = {"size": args.size, "overlap": args.overlap, "min_visibility": args.min_visibility}
    given |= {"empty_fraction": args.empty_fraction, "seed": args.seed}
    s = settings({k: v if v is not None else defaults()[k] for k, v in given.items()}, "tile")
    data_yaml, report = tile_dataset(args.data, args.out, s)
    print(format_tiles(data_yaml, report))  # last line: the new data.yaml
    if report.skipped:
        print(f"warning: {len(report.skipped)} undecodable image(s) skipped (listed above)", file=sys.stderr)
    return 0


def _balance_threshold() -> float:
    """``finetune.balance_threshold``'s default, read from the YAML that defines it."""
    from omegaconf import OmegaConf

    from detector.config import CONFIG_DIR

    return float(OmegaConf.load(Path(CONFIG_DIR) / "finetune" / "none.yaml").balance_threshold)


def _stats(args: argparse.Namespace) -> int:
    from detector.data import check, spec, stats

    data = spec.load(args.data)
    imb = check.check_dataset(data, decode=False).imbalance()
    if imb:
        print(balance.suggestion(imb))
    threshold = _balance_threshold() if args.balance_threshold is None else args.balance_threshold
    for path in stats.plot(data, args.out, args.samples, args.seed, threshold=threshold):
        print(path)
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    from detector.data.fingerprint import fingerprint

    print(fingerprint(args.data))
    return 0


def _tile_parser(sub) -> None:
    """``tile``'s arguments; their defaults come from configs/tile/default.yaml, read when it runs."""
    d = "default: configs/tile/default.yaml"
    t = sub.add_parser("tile", help="overlapping tiles of every image, boxes clipped: a new dataset")
    t.add_argument("data", help="data.yaml, or a folder holding one")
    t.add_argument("--out", required=True, help="new output folder (must not exist)")
    t.add_argument("--size", type=int, help=f"tile side in px, a multiple of 32 ({d})")
    t.add_argument("--overlap", type=float, help=f"share of a tile its neighbour overlaps, in [0, 0.9) ({d})")
    t.add_argument(
        "--min-visibility",
        type=float,
        help=f"keep a cut box when this share of it is in the tile, (0, 1] ({d})",
    )
    t.add_argument("--empty-fraction", type=float, help=f"share of tiles without boxes kept, [0, 1] ({d})")
    t.add_argument("--seed", type=int, help=f"picks the empty tiles kept ({d})")
    t.set_defaults(func=_tile)


def _writer_parsers(sub) -> None:
    """``convert`` and ``split``: the commands that write a new dataset folder."""
    v = sub.add_parser("convert", help="COCO JSON, Pascal VOC XML or YOLO polygons -> YOLO detection dataset")
    v.add_argument("format", choices=["coco", "voc", "polygons"])
    v.add_argument("--out", required=True, help="new output folder (must not exist)")
    for split in ("train", "val", "test"):
        v.add_argument(
            f"--{split}",
            nargs="+",
            metavar="PATH",
            help=f"coco/voc {split}: ANNOTATIONS (.json, or a folder of .xml) [IMAGES_DIR]",
        )
    v.add_argument("--data", help="polygons: the source data.yaml")
    v.add_argument("--names", nargs="+", help="voc: class names in id order (default: sorted object names)")
    v.add_argument("--link", choices=LINKS, default="copy", help="how images are placed (default: copy)")
    v.set_defaults(func=_convert)

    s = sub.add_parser("split", help="deterministic train/val(/test) split; duplicates stay together")
    s.add_argument("src", help="data.yaml (all splits pooled), or a folder of images with --names")
    s.add_argument("--out", required=True, help="new output folder (must not exist)")
    s.add_argument("--val", type=float, default=0.2, help="share of images for val (default 0.2)")
    s.add_argument("--test", type=float, default=0.0, help="share of images for test (default 0: none)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--names", nargs="+", help="class names, when SRC has no data.yaml")
    s.add_argument("--link", choices=LINKS, default="copy", help="how images are placed (default: copy)")
    s.set_defaults(func=_split)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="detector-data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="find every problem in a dataset, with file and line")
    c.add_argument("data", help="data.yaml, or a folder holding one")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument(
        "--allow",
        nargs="+",
        default=[],
        metavar="CODE",
        help=f"downgrade codes to warnings: {', '.join(CODES)}",
    )
    c.add_argument("--all", action="store_true", help="list every problem (default: 5 per code)")
    c.set_defaults(func=_check)

    _writer_parsers(sub)
    _tile_parser(sub)

    t = sub.add_parser(
        "stats",
        help="PNG plots: class counts and balance, box sizes, aspect ratios, boxes per image, samples",
    )
    t.add_argument("data", help="data.yaml, or a folder holding one")
    t.add_argument("--out", required=True, help="folder for the PNG files")
    t.add_argument("--samples", type=int, default=16, help="images in the sample grid (default 16)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--balance-threshold",
        type=float,
        help="t of the class balance plot (default: finetune.balance_threshold of configs/finetune/none.yaml)",
    )
    t.set_defaults(func=_stats)

    f = sub.add_parser("fingerprint", help="content hash of images, labels and names (file order ignored)")
    f.add_argument("data", help="data.yaml, or a folder holding one")
    f.set_defaults(func=_fingerprint)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``detector-data``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DetectorError as e:
        if getattr(args, "json", False):
            print(json.dumps({"data_yaml": str(args.data), "usable": False, "error": str(e)}, indent=2))
        print(f"error: {e}", file=sys.stderr)
        return 2
