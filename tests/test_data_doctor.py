"""detector-data check: every problem class on corrupted copies of real images, the CLI, and training's pre-flight."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import PCB, SAMPLE, SOLAR, cli, files_under, require, sample_subset
from PIL import Image

from detector.data import check, spec
from detector.data.cli import main
from detector.data.fingerprint import fingerprint
from detector.errors import DetectorError


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    """8 train / 4 val real solar images of the bundled sample with their labels; returns data.yaml."""
    return sample_subset(tmp_path / "ds", {"train": 8, "val": 4})


def _files(root: Path, sub: str) -> list[Path]:
    return sorted((root.parent / sub).iterdir())


def _append(label: Path, line: str) -> tuple[Path, int]:
    """Append a label line; returns (file, its 1-based line number)."""
    rows = label.read_text().splitlines()
    label.write_text("\n".join([*rows, line]) + "\n")
    return label, len(rows) + 1


# Each case corrupts the dataset and returns (file, line) where the problem must be reported.
def missing_split(y: Path):
    doc = yaml.safe_load(y.read_text())
    del doc["val"]
    y.write_text(yaml.safe_dump(doc))
    return y, 0


def empty_split(y: Path):
    for f in _files(y, "images/val"):
        f.unlink()
    return y, 2  # the `val:` line of data.yaml


def missing_label(y: Path):
    img = _files(y, "images/train")[1]
    (y.parent / "labels" / "train" / f"{img.stem}.txt").unlink()
    return img, 0


def orphan_label(y: Path):
    img = _files(y, "images/train")[2]
    img.unlink()
    return y.parent / "labels" / "train" / f"{img.stem}.txt", 0


def no_labels(y: Path):
    (y.parent / "labels" / "val").rename(y.parent / "labels" / "val_old")
    return y, 0


def corrupt_image(y: Path):
    img = _files(y, "images/train")[0]
    img.write_bytes(os.urandom(2000))
    return img, 0


def truncated_image(y: Path):
    img = _files(y, "images/val")[0]
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    return img, 0


def unreadable_image(y: Path):
    img = _files(y, "images/train")[3]
    img.unlink()
    img.symlink_to(img.name)  # a symlink loop
    return img, 0


def image_too_small(y: Path):
    img = _files(y, "images/train")[4]
    with Image.open(img) as im:
        im.crop((0, 0, 8, 8)).save(img, "JPEG")
    return img, 0


def field_count(y: Path):
    return _append(_files(y, "labels/train")[0], "0 0.5 0.5 0.1")


def not_a_number(y: Path):
    return _append(_files(y, "labels/train")[0], "0 0.5 abc 0.1 0.1")


def out_of_bounds(y: Path):
    return _append(_files(y, "labels/val")[1], "0 0.5 1.2 0.1 0.1")


def zero_area(y: Path):
    return _append(_files(y, "labels/train")[5], "0 0.5 0.5 0.0 0.1")


def class_out_of_range(y: Path):
    return _append(_files(y, "labels/train")[6], "1 0.5 0.5 0.1 0.1")


def mixed_rows(y: Path):
    return _append(_files(y, "labels/train")[7], "0 0.1 0.1 0.3 0.1 0.2 0.3")


def not_text(y: Path):
    lab = _files(y, "labels/val")[2]
    lab.write_bytes(b"\x00\xff" + os.urandom(300))
    return lab, 0


def duplicate_image(y: Path):
    src = _files(y, "images/train")[0]
    dst = src.with_name("copy_" + src.name)
    dst.write_bytes(src.read_bytes())
    (y.parent / "labels" / "train" / f"{dst.stem}.txt").write_text("")
    return dst, 0


def duplicate_across_splits(y: Path):
    src = _files(y, "images/train")[1]
    dst = y.parent / "images" / "val" / ("leak_" + src.name)
    dst.write_bytes(src.read_bytes())
    (y.parent / "labels" / "val" / f"{dst.stem}.txt").write_text("")
    return dst, 0


def unused_class(y: Path):
    y.write_text(y.read_text().replace("0: solar-pv-panel", "0: solar-pv-panel\n  1: roof"))
    return y, 0


def class_not_in_train(y: Path):
    unused_class(y)
    _append(_files(y, "labels/val")[0], "1 0.5 0.5 0.1 0.1")
    return y, 0


CASES = {
    "missing-split": missing_split,
    "empty-split": empty_split,
    "missing-label": missing_label,
    "orphan-label": orphan_label,
    "no-labels": no_labels,
    "corrupt-image": corrupt_image,
    "truncated-image": truncated_image,
    "unreadable-image": unreadable_image,
    "image-too-small": image_too_small,
    "field-count": field_count,
    "not-a-number": not_a_number,
    "out-of-bounds": out_of_bounds,
    "zero-area": zero_area,
    "class-out-of-range": class_out_of_range,
    "mixed-rows": mixed_rows,
    "not-text": not_text,
    "duplicate-image": duplicate_image,
    "duplicate-across-splits": duplicate_across_splits,
    "unused-class": unused_class,
    "class-not-in-train": class_not_in_train,
}


def test_copy_is_clean(ds):
    report = check.check_dataset(spec.load(ds, strict=False))
    assert report.problems == []
    assert report.counts["train"]["images"] == 8 and report.counts["val"]["images"] == 4


@pytest.mark.parametrize("code", list(CASES))
def test_each_problem_is_reported_with_its_file(ds, code):
    file, line = CASES[code](ds)
    report = check.check_dataset(spec.load(ds, strict=False))
    hits = [p for p in report.problems if p.code == code]
    assert hits, f"{code} not reported; got {[str(p) for p in report.problems]}"
    assert (hits[0].file, hits[0].line) == (str(file.resolve() if file == ds else file), line)
    others = {p.code for p in report.errors} - {code}
    assert not others, f"unexpected errors besides {code}: {others}"


@pytest.mark.parametrize("yaml_path", [SOLAR, PCB], ids=["solar", "deeppcb"])
def test_shared_datasets_are_usable(yaml_path):
    report = check.check_dataset(spec.load(require(yaml_path), strict=False))
    assert report.errors == [] and report.warnings == []
    backgrounds = sum(c["backgrounds"] for c in report.counts.values())
    assert backgrounds == (3 if yaml_path == SOLAR else 0)
    if yaml_path == SOLAR:
        assert (report.counts["train"]["boxes"], report.counts["val"]["boxes"]) == (5074, 402)
        assert report.classes[0]["images"] == 1513 and report.classes[0]["median_w_px"] > 10
    else:
        assert [r["name"] for r in report.classes][:2] == ["open", "short"]
        assert sum(r["boxes"] for r in report.classes) == 6873 + 3140


def test_cli_exit_codes_and_json(ds, capsys):
    assert main(["check", str(ds)]) == 0
    assert "usable: no errors" in capsys.readouterr().out
    lab, _ = zero_area(ds)
    assert main(["check", str(ds), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["usable"] is False and [p["code"] for p in doc["problems"]] == ["zero-area"]
    assert doc["problems"][0]["file"] == str(lab) and len(doc["fingerprint"]) == 64
    assert main(["check", str(ds), "--allow", "zero-area"]) == 0
    assert main(["check", str(ds), "--allow", "zero-areas"]) == 2
    assert "did you mean zero-area" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "must be a YAML mapping"),
        (b"train: [unclosed\n", "not valid YAML"),
        (os.urandom(64) + b"\xff\xfe", "not valid YAML"),
    ],
    ids=["empty", "not-yaml", "binary"],
)
def test_unusable_yaml_exits_2(tmp_path, capsys, content, message):
    y = tmp_path / "data.yaml"
    y.write_bytes(content)
    assert main(["check", str(y)]) == 2
    assert message in capsys.readouterr().err


def test_yaml_symlink_loop_exits_2(tmp_path, capsys):
    (tmp_path / "data.yaml").symlink_to("data.yaml")
    assert main(["check", str(tmp_path / "data.yaml")]) == 2
    assert "symlink loop" in capsys.readouterr().err


def test_empty_label_is_a_background_not_an_error(ds):
    _files(ds, "labels/train")[0].write_text("")
    report = check.check_dataset(spec.load(ds))
    assert report.problems == [] and report.counts["train"]["backgrounds"] == 1


def test_non_utf8_file_name_is_reported_not_crashed(ds):
    src = _files(ds, "images/train")[0]
    odd = Path(os.fsdecode(bytes(ds.parent / "images" / "train") + b"/caf\xe9.jpg"))
    with Image.open(src) as im:
        im.rotate(90).save(odd, "JPEG")  # new bytes: not a duplicate
    out = subprocess.run(  # the one real detector-data process: python -m detector.data, bytes out
        [sys.executable, "-m", "detector.data", "check", str(ds)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=120,
    )
    text = out.stdout.decode()
    assert out.returncode == 0 and "missing-label" in text and "caf\\xe9.jpg" in text, out.stderr.decode()


def test_require_clean_lists_problems_and_allow_is_validated(ds):
    truncated_image(ds)
    with pytest.raises(DetectorError, match=r"truncated-image: .*images/val/.*\.jpg") as e:
        check.require_clean(spec.load(ds))
    assert "detector-data check" in str(e.value) and "data.allow" in str(e.value)
    assert not check.require_clean(spec.load(ds), allow=["truncated-image"]).errors
    with pytest.raises(DetectorError, match="did you mean truncated-image"):
        check.require_clean(spec.load(ds), allow=["truncated-images"])


def test_train_on_broken_dataset_fails_before_training(ds, tmp_path, no_training):
    corrupt_image(ds)
    lab, line = zero_area(ds)
    runs = tmp_path / "runs"
    out = cli("detector-train", "data=custom", f"data.yaml={ds}", "debug=smoke", f"paths.runs_dir={runs}")
    assert out.returncode == 2, out.stderr
    assert "corrupt-image" in out.stderr and f"zero-area: {lab}:{line}" in out.stderr
    assert files_under(runs) == []  # no half-made run folder


def test_report_survives_a_text_stream_without_utf8():
    """Problem text is made printable at creation, so even an ASCII-only stream can show it."""
    p = check.Problem("missing-label", os.fsdecode(b"/x/caf\xe9.jpg"), 0, os.fsdecode(b"no label caf\xe9"))
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    stream.write(str(p))
    assert "caf\\xe9" in str(p)


@pytest.mark.slow
def test_run_summary_records_the_fingerprint(smoke):  # the wheel's copy of the sample: the same data
    saved = json.loads((smoke.run / "summary.json").read_text())
    assert saved["data"]["fingerprint"] == fingerprint(SAMPLE / "data.yaml")


def test_relative_yaml_path_resolves_from_its_own_folder(ds, monkeypatch):
    monkeypatch.chdir(ds.parent.parent)
    s = spec.load(Path(ds.parent.name) / "data.yaml")
    assert s.root == ds.parent and len(s.splits["train"]) == 8
    assert main(["check", ds.parent.name]) == 0  # a folder holding data.yaml works too
