"""``detector-artifacts``: list, show, verify and run published versions.

    detector-artifacts list [NAME]
    detector-artifacts show NAME[/vN|/latest] [--json]
    detector-artifacts verify NAME[/vN|/latest] [--sha256 HASH]
    detector-artifacts predict NAME[/vN|/latest] IMAGE_OR_FOLDER... [--format onnx] [--out DIR]
                               [--tile SIZE [--overlap F] [--batch N] [--full-frame|--no-full-frame]]

A version is named ``NAME`` (its latest), ``NAME/latest``, ``NAME/v3`` or by its folder's path.
Exit status: 0 ok, 1 ``verify`` found a difference (or ``list`` skipped a damaged manifest), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detector import config
from detector.artifacts import integrity, store
from detector.errors import DetectorError
from detector.tables import pct, table


def default_dir() -> str:
    """``paths.artifacts_dir`` of the paths config, the folder ``detector-export`` publishes into."""
    return str(config.compose("export", []).paths.artifacts_dir)


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(table([header, *rows]))


def _row(v: store.Version, latest: int) -> list[str]:
    m = v.manifest()
    fmt, met = m.get("format"), m.get("metrics", {})
    return [
        v.name,
        f"v{v.number}" + (" (latest)" if v.number == latest else ""),
        ", ".join(f for f in m.get("exports", {}) if f != "pytorch"),
        pct(met.get(fmt, {}).get("mAP50-95")),
        pct(met.get("pytorch", {}).get("mAP50-95")),
        f"{met.get(fmt, {}).get('latency_ms', float('nan')):.1f}",
        m.get("created", "-"),
        v.manifest_sha256[:16],
    ]


def cmd_list(args: argparse.Namespace) -> int:
    """Print every version (of one name, or all): formats, mAP, latency, date, manifest sha256.

    A version whose manifest cannot be read is reported and skipped; the others are listed.
    """
    rows, bad = [], []
    for name in [args.name] if args.name else store.names(args.dir):
        versions = store.Store(args.dir, name)
        numbers = versions.numbers()
        for n in numbers:
            try:
                rows.append(_row(store.Version(name, n, versions.root / f"v{n}"), numbers[-1]))
            except DetectorError as e:
                bad.append(f"  {name}/v{n}: {e}")
    if bad:
        print(f"{len(bad)} version(s) skipped, their manifest is damaged:", *bad, sep="\n", file=sys.stderr)
    if not rows:
        print(f"No published versions in {args.dir}.")
        return 1 if bad else 0
    header = ["name", "version", "formats", "mAP50-95", "PyTorch", "latency ms", "created", "manifest sha256"]
    print(_table(header, rows))
    return 1 if bad else 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one version's manifest, readable or as JSON."""
    v = store.resolve(args.ref, args.dir)
    m = v.manifest()
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    print(f"{v.label}  {v.path}\ncreated {m['created']}  git {(m.get('git') or {}).get('commit', '-')}")
    print(f"manifest sha256 {v.manifest_sha256}")
    print(f"classes {m['model']['names']}  imgsz {m['model']['imgsz']}  arch {m['model']['arch']}")
    print(f"data {m['data']['yaml']}  fingerprint {m['data']['fingerprint']['sha256'][:16]}")
    rows = [
        [
            f,
            m["exports"][f]["runtime"],
            m["exports"][f]["path"],
            pct(x["mAP50"]),
            pct(x["mAP50-95"]),
            f"{x['latency_ms']:.1f}",
        ]
        for f, x in m["metrics"].items()
    ]
    print(_table(["format", "runtime", "file", "mAP50", "mAP50-95", "latency ms"], rows))
    print("files:")
    print(
        _table(
            ["  path", "bytes", "sha256"], [[f"  {k}", e["size"], e["sha256"]] for k, e in m["files"].items()]
        )
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute every sha256 (and the manifest's own); return 1 naming each problem."""
    v = store.resolve(args.ref, args.dir)
    problems = integrity.verify(v, args.sha256)
    if problems:
        print(f"{v.label}: FAILED, {len(problems)} problem(s):", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 1
    checked = " and its sha256" if args.sha256 else ""
    print(
        f"{v.label}: OK, {len(v.manifest()['files'])} files match manifest.json{checked} ({v.manifest_sha256})"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Run the version's exported file on images; write annotated images and boxes.json."""
    from detector.artifacts.predict import predict

    v = store.resolve(args.ref, args.dir)
    out = Path(args.out) if args.out else Path("predictions") / v.name / f"v{v.number}"
    tile = {"size": args.tile, "overlap": args.overlap, "batch": args.batch, "full_frame": args.full_frame}
    boxes = predict(v, args.images, out, fmt=args.format, conf=args.conf, tile=tile)
    doc = json.loads(boxes.read_text())
    images = doc["images"]
    for s in doc["skipped"]:
        print(f"skipped {s['image']}: {s['reason']}", file=sys.stderr)
    print(
        f"{sum(len(i['boxes']) for i in images)} boxes in {len(images)} images; annotated images and boxes.json in:"
    )
    print(out)  # last line: scripts can capture the output folder
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser (public so the README's help text can be checked)."""
    p = argparse.ArgumentParser(prog="detector-artifacts", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", help="artifacts folder (default: paths.artifacts_dir of the config)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("list", help="name, version, formats, mAP, date")
    s.add_argument("name", nargs="?")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("show", help="a version's manifest, readable (or --json)")
    s.add_argument("ref")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_show)
    s = sub.add_parser("verify", help="recompute every sha256; exit 1 naming any file that differs")
    s.add_argument("ref")
    s.add_argument("--sha256", help="the manifest's sha256 as you recorded it elsewhere, checked too")
    s.set_defaults(fn=cmd_verify)
    s = sub.add_parser("predict", help="run the exported file with its runtime on images")
    s.add_argument("ref")
    s.add_argument("images", nargs="+", help="image files or folders")
    s.add_argument("--format", help="exported format to run (default: the version's)")
    s.add_argument("--out", help="output folder (default predictions/NAME/vN)")
    s.add_argument(
        "--conf",
        type=float,
        help="one confidence threshold for every class (default: the version's per-class thresholds, "
        "or 0.25 for a version that stores none)",
    )
    own = "default: the version's own, if trained on tiles, else configs/tile/default.yaml"
    s.add_argument(
        "--tile",
        type=int,
        metavar="SIZE",
        help="slice each image into SIZE px tiles (0: whole images; "
        "default: the version's own tile size when it was trained on tiles)",
    )
    s.add_argument("--overlap", type=float, help=f"share of a tile its neighbour overlaps ({own})")
    s.add_argument("--batch", type=int, help=f"tiles per runtime call ({own})")
    s.add_argument(
        "--full-frame",
        action=argparse.BooleanOptionalAction,
        help=f"add one pass over the whole image ({own})",
    )
    s.set_defaults(fn=cmd_predict)
    return p


def main(argv: list[str] | None = None) -> None:
    """``detector-artifacts``: see the module docstring."""
    args = parser().parse_args(argv)
    try:
        args.dir = args.dir or default_dir()
        code = args.fn(args)
    except DetectorError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
