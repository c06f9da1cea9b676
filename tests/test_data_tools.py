"""detector-data convert, split, fingerprint and stats on small copies of the bundled sample's real images."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from helpers import boxes, sample_subset, tree_hash
from PIL import Image

from detector.data import check, spec
from detector.data.cli import main
from detector.data.fingerprint import fingerprint
from detector.data.scan import scan
from detector.data.split import assign
from detector.errors import DetectorError


@pytest.fixture
def pcb(tmp_path: Path) -> Path:
    """10 train / 5 val real sample images with their boxes, spread over three classes; returns data.yaml."""
    return sample_subset(tmp_path / "pcb", {"train": 10, "val": 5}, classes=["open", "short", "spur"])


def _pixel_rows(label: Path, size: tuple[int, int]) -> list[tuple]:
    w, h = size
    return sorted((int(c), x * w, y * h, bw * w, bh * h) for c, x, y, bw, bh in boxes(label))


def _assert_same_boxes(src_yaml: Path, out_yaml: Path, tol_px: float) -> None:
    for split in ("train", "val"):
        src_imgs = sorted((src_yaml.parent / "images" / split).iterdir())
        assert sorted(p.name for p in (out_yaml.parent / "images" / split).iterdir()) == [
            p.name for p in src_imgs
        ]
        for img in src_imgs:
            with Image.open(img) as im:
                size = im.size
            a = _pixel_rows(src_yaml.parent / "labels" / split / f"{img.stem}.txt", size)
            b = _pixel_rows(out_yaml.parent / "labels" / split / f"{img.stem}.txt", size)
            assert len(a) == len(b) and a, img
            for ra, rb in zip(a, b, strict=True):
                assert (
                    ra[0] == rb[0] and max(abs(u - v) for u, v in zip(ra[1:], rb[1:], strict=True)) <= tol_px
                )


def _to_coco(y: Path, split: str) -> Path:
    """A COCO file for one split, Roboflow style: unused parent category 0, real classes from id 1."""
    names = yaml.safe_load(y.read_text())["names"]
    cats = [{"id": 0, "name": "pcb-defects", "supercategory": "none"}]
    cats += [{"id": i + 1, "name": n, "supercategory": "pcb-defects"} for i, n in names.items()]
    doc = {"images": [], "annotations": [], "categories": cats}
    for k, img in enumerate(sorted((y.parent / "images" / split).iterdir())):
        with Image.open(img) as im:
            w, h = im.size
        doc["images"].append({"id": k, "file_name": img.name, "width": w, "height": h})
        for c, x, yc, bw, bh in boxes(y.parent / "labels" / split / f"{img.stem}.txt"):
            bbox = [(x - bw / 2) * w, (yc - bh / 2) * h, bw * w, bh * h]
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]),
                    "image_id": k,
                    "category_id": int(c) + 1,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    out = y.parent.parent / f"coco_{split}.json"
    out.write_text(json.dumps(doc))
    return out


def test_coco_round_trip_within_one_pixel(pcb, tmp_path):
    before = tree_hash(pcb.parent)
    args = ["convert", "coco", "--out", str(tmp_path / "out")]
    for split in ("train", "val"):
        args += [f"--{split}", str(_to_coco(pcb, split)), str(pcb.parent / "images" / split)]
    assert main(args) == 0
    out = tmp_path / "out" / "data.yaml"
    assert yaml.safe_load(out.read_text())["names"] == yaml.safe_load(pcb.read_text())["names"]
    _assert_same_boxes(pcb, out, tol_px=1.0)
    assert tree_hash(pcb.parent) == before  # input untouched
    assert not check.check_dataset(spec.load(out)).errors


def _to_voc(y: Path, split: str) -> Path:
    """One Pascal VOC XML per image, integer pixel corners as VOC tools write them."""
    names = yaml.safe_load(y.read_text())["names"]
    folder = y.parent.parent / f"voc_{split}"
    folder.mkdir()
    for img in sorted((y.parent / "images" / split).iterdir()):
        with Image.open(img) as im:
            w, h = im.size
        ann = ET.Element("annotation")
        ET.SubElement(ann, "filename").text = img.name
        size = ET.SubElement(ann, "size")
        ET.SubElement(size, "width").text, ET.SubElement(size, "height").text = str(w), str(h)
        for c, x, yc, bw, bh in boxes(y.parent / "labels" / split / f"{img.stem}.txt"):
            obj = ET.SubElement(ann, "object")
            ET.SubElement(obj, "name").text = names[int(c)]
            bb = ET.SubElement(obj, "bndbox")
            for key, v in zip(
                ("xmin", "ymin", "xmax", "ymax"),
                ((x - bw / 2) * w, (yc - bh / 2) * h, (x + bw / 2) * w, (yc + bh / 2) * h),
                strict=True,
            ):
                ET.SubElement(bb, key).text = str(round(v))
        ET.ElementTree(ann).write(folder / f"{img.stem}.xml")
    return folder


def test_voc_round_trip_within_one_pixel(pcb, tmp_path):
    names = list(yaml.safe_load(pcb.read_text())["names"].values())
    args = ["convert", "voc", "--out", str(tmp_path / "out"), "--names", *names]
    for split in ("train", "val"):
        args += [f"--{split}", str(_to_voc(pcb, split)), str(pcb.parent / "images" / split)]
    assert main(args) == 0
    _assert_same_boxes(pcb, tmp_path / "out" / "data.yaml", tol_px=1.0)


def test_voc_unknown_name_is_refused(pcb, tmp_path):
    with pytest.raises(DetectorError, match=r"not in --names"):
        from detector.data.convert import convert

        convert(
            "voc",
            tmp_path / "out",
            {"train": (_to_voc(pcb, "train"), pcb.parent / "images" / "train")},
            names=["open"],
        )
    assert not (tmp_path / "out").exists()


def test_polygons_become_their_bounding_boxes(tmp_path):
    src = sample_subset(tmp_path / "seg", {"train": 4, "val": 2})
    expected = {}
    for lab in src.parent.glob("labels/*/*.txt"):
        rows = boxes(lab)
        expected[lab.relative_to(src.parent)] = rows
        # a diamond inside each box: its bounding box is the box
        poly = []
        for c, x, y, w, h in rows:
            xy = (x - w / 2, y, x, y - h / 2, x + w / 2, y, x, y + h / 2)
            poly.append(f"{int(c)} " + " ".join(f"{min(max(v, 0.0), 1.0):.7f}" for v in xy))
        lab.write_text("\n".join(poly) + "\n")
    assert (
        main(["convert", "polygons", "--data", str(src), "--out", str(tmp_path / "out"), "--link", "symlink"])
        == 0
    )
    for rel, rows in expected.items():
        got = boxes(tmp_path / "out" / rel)
        assert len(got) == len(rows)
        assert all(
            abs(a - b) < 1e-5 for r, g in zip(rows, got, strict=True) for a, b in zip(r, g, strict=True)
        )
    assert (tmp_path / "out" / "images" / "train").iterdir().__next__().is_symlink()


def test_convert_refuses_existing_output_and_bad_json(pcb, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert main(["convert", "coco", "--train", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not a COCO annotation file" in capsys.readouterr().err
    assert main(["convert", "polygons", "--data", str(pcb), "--out", str(pcb.parent)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*partial*"))


def test_split_is_deterministic_and_keeps_duplicates_together(pcb, tmp_path):
    images = pcb.parent / "images" / "train"
    for img in sorted(images.iterdir())[:3]:  # three duplicates under other names
        (images / f"dup_{img.name}").write_bytes(img.read_bytes())
        (pcb.parent / "labels" / "train" / f"dup_{img.stem}.txt").write_text("")
    items = scan(spec.load(pcb), decode=False)

    def sides(its):
        return {
            s: sorted(i.info.sha256 + i.image.name for i in v)
            for s, v in assign(its, 0.3, 0.2, seed=3).items()
        }

    first = sides(items)
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert sides(shuffled) == first  # listing order does not matter
    other = {
        s: sorted(i.info.sha256 + i.image.name for i in v) for s, v in assign(items, 0.3, 0.2, seed=4).items()
    }
    assert other != first  # the seed does
    where = {}
    for s, rows in first.items():
        for r in rows:
            where.setdefault(r[:64], set()).add(s)
    assert all(len(v) == 1 for v in where.values())  # every copy on one side
    assert len(first["val"]) >= 1 and len(first["test"]) >= 1


def test_split_covers_every_class_in_val_and_writes_a_usable_dataset(pcb, tmp_path):
    before = tree_hash(pcb.parent)
    assert main(["split", str(pcb), "--out", str(tmp_path / "out"), "--val", "0.2", "--seed", "0"]) == 0
    out = spec.load(tmp_path / "out" / "data.yaml")
    report = check.check_dataset(out)
    assert not report.errors and sum(len(v) for v in out.splits.values()) == 15
    assert all(r["per_split"]["val"] > 0 for r in report.classes)
    assert tree_hash(pcb.parent) == before
    again = tmp_path / "again"
    main(["split", str(pcb), "--out", str(again), "--val", "0.2", "--seed", "0"])
    assert sorted(p.name for p in (again / "images" / "val").iterdir()) == sorted(
        p.name for p in (tmp_path / "out" / "images" / "val").iterdir()
    )


def test_fingerprint_ignores_order_and_changes_with_one_label(pcb, tmp_path):
    base = fingerprint(pcb)
    assert len(base) == 64 and base == fingerprint(spec.load(pcb))
    # the same files listed in another order, from another place and under other names
    listed = tmp_path / "listed"
    for split in ("train", "val"):
        imgs = sorted((pcb.parent / "images" / split).iterdir())
        random.Random(0).shuffle(imgs)
        for sub in ("images", "labels"):
            (listed / sub / split).mkdir(parents=True)
        for k, img in enumerate(imgs):
            (listed / "images" / split / f"renamed_{k}.jpg").write_bytes(img.read_bytes())
            lab = pcb.parent / "labels" / split / f"{img.stem}.txt"
            (listed / "labels" / split / f"renamed_{k}.txt").write_text(lab.read_text().replace("\n", "\r\n"))
    (listed / "data.yaml").write_text(pcb.read_text())
    assert fingerprint(listed / "data.yaml") == base
    lab = sorted((pcb.parent / "labels" / "val").iterdir())[2]
    lab.write_text(lab.read_text().replace("0.", "0.0", 1))
    changed = fingerprint(pcb)
    assert changed != base
    pcb.write_text(pcb.read_text().replace("open", "opening"))
    assert fingerprint(pcb) not in (base, changed)


def test_fingerprint_cli_matches_check(pcb, capsys):
    assert main(["fingerprint", str(pcb)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == check.check_dataset(spec.load(pcb)).fingerprint


def test_stats_writes_six_pngs(pcb, tmp_path, capsys):
    assert main(["stats", str(pcb), "--out", str(tmp_path / "plots"), "--samples", "4"]) == 0
    assert capsys.readouterr().out.startswith("class balance (train): most/least frequent class")
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert written == [
        "aspect_ratios.png",
        "box_sizes.png",
        "boxes_per_image.png",
        "class_balance.png",
        "class_counts.png",
        "samples.png",
    ]
    for name in written:
        with Image.open(tmp_path / "plots" / name) as im:
            assert im.format == "PNG" and im.width > 200
