"""The augment group: every option builds, bad pipelines are refused, boxes move with the pixels, preview."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import ROOT, SAMPLE, Interrupted, cli, compose, files_under, run_cli

from detector.errors import DetectorError
from detector.train import augment

OPTIONS = sorted(p.stem for p in (ROOT / "configs" / "augment").glob("*.yaml"))
# A real labelled image of the bundled sample with three panels (one line per box: class cx cy w h).
KNOWN = SAMPLE / "images" / "train" / "001_jpg.rf.599cb0b459b63429e99decd14c2b05d5.jpg"


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_composes_and_builds(option):
    import albumentations as A

    cfg = compose(f"augment={option}")
    built = augment.build(cfg.augment)
    if option == "ultralytics":
        assert built is None and augment.to_dict(built) is None  # Ultralytics' default: pass nothing
    else:
        assert isinstance(built, list) and all(isinstance(t, A.BasicTransform | A.BaseCompose) for t in built)
        names = [t["__class_fullname__"] for t in augment.to_dict(built)["transform"]["transforms"]]
        assert names == [n["_target_"].rpartition(".")[2] for n in cfg.augment.transforms]
    assert (option == "none") == (built == [])


def test_aerial_has_what_the_issue_lists():
    names = {type(t).__name__ for t in augment.build(compose("augment=aerial").augment)}
    assert {"HorizontalFlip", "VerticalFlip", "RandomRotate90", "Affine", "GaussNoise", "OneOf"} <= names
    assert {"RandomBrightnessContrast", "RandomGamma"} <= names


def test_solar_example_uses_aerial():
    cfg = compose("experiment=solar_panels")
    assert cfg.augment == compose("augment=aerial").augment


def test_the_pipeline_reaches_ultralytics_train_kwargs():
    from detector.train.plan import check_inputs

    kwargs, _, _ = check_inputs(compose("augment=light"))
    assert [type(t).__name__ for t in kwargs["augmentations"]][:2] == [
        "RandomBrightnessContrast",
        "RandomGamma",
    ]
    kwargs, _, _ = check_inputs(compose())
    assert "augmentations" not in kwargs  # augment=ultralytics leaves Ultralytics' default alone


BAD = {
    "unknown transform": (
        "[{_target_:albumentations.HorizonalFlip,p:0.5}]",
        r"augment.transforms[0]: 'albumentations.HorizonalFlip' is not an albumentations transform "
        r"(did you mean albumentations.HorizontalFlip",
    ),
    "unknown argument": (
        "[{_target_:albumentations.RandomGamma,gama_limit:[80,120]}]",
        r"augment.transforms[0] (RandomGamma): unknown argument(s) 'gama_limit' (did you mean gamma_limit?)",
    ),
    "1.x argument albumentations 2 ignores": (
        "[{_target_:albumentations.GaussNoise,var_limit:[10,50]}]",
        r"(GaussNoise): unknown argument(s) 'var_limit'. albumentations 2.x would ignore them",
    ),
    "probability above 1": (
        "[{_target_:albumentations.HorizontalFlip,p:1.5}]",
        r"augment.transforms[0] (HorizontalFlip): probability p=1.5 must be a number between 0 and 1",
    ),
    "negative probability": (
        "[{_target_:albumentations.VerticalFlip,p:-0.1}]",
        r"(VerticalFlip): probability p=-0.1 must be a number between 0 and 1",
    ),
    "bad argument value": (
        "[{_target_:albumentations.RandomBrightnessContrast,brightness_limit:bright}]",
        r"augment.transforms[0] (RandomBrightnessContrast): bad argument",
    ),
    "nested unknown transform": (
        "[{_target_:albumentations.OneOf,transforms:[{_target_:albumentations.Blurr}]}]",
        r"augment.transforms[0] (OneOf).transforms[0]: 'albumentations.Blurr' is not an albumentations "
        r"transform (did you mean albumentations.Blur",
    ),
    "size-changing transform": (
        "[{_target_:albumentations.RandomCrop,height:32,width:32,p:0.5}]",
        "augment.transforms turn a 96x96x3 uint8 image into 32x32x3 uint8",
    ),
    "not a mapping": ("[HorizontalFlip]", "each transform is a mapping with `_target_`"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_pipeline_names_the_transform(case):
    override, message = BAD[case]
    with pytest.raises(DetectorError) as e:
        augment.build(compose(f"augment.transforms={override}").augment)
    assert message in str(e.value)


def test_cli_bad_pipeline_exits_2_before_training_and_leaves_no_folder(tmp_path, no_training):
    res = cli(
        "detector-train",
        "augment=aerial",
        "+augment.transforms.7.var_limit=[10,50]",
        f"paths.runs_dir={tmp_path}",
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert "augment.transforms[7] (GaussNoise): unknown argument(s) 'var_limit'" in res.stderr
    assert files_under(tmp_path) == [], "a failed run left a folder"


# --- boxes follow the pixels, checked through Ultralytics' own Albumentations wrapper ---------------


def _labelled(image: Path) -> dict:
    """An image and its boxes in the form Ultralytics' transforms receive them: inside the image, as
    Ultralytics' own earlier steps (mosaic, affine) leave them, since a label may overrun by 1e-7."""
    from ultralytics.utils.instance import Instances

    rows = np.loadtxt(str(image).replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt", ndmin=2)
    instances = Instances(
        rows[:, 1:].astype(np.float32),
        np.zeros((0, 1000, 2), np.float32),
        bbox_format="xywh",
        normalized=True,
    )
    instances.convert_bbox("xyxy")
    instances.clip(1, 1)
    instances.convert_bbox("xywh")
    return {"img": cv2.imread(str(image)), "cls": rows[:, :1].astype(np.float32), "instances": instances}


def _wrap(overrides: str | list[dict]):
    """Ultralytics' Albumentations step (ultralytics/data/augment.py) around our built pipeline."""
    from ultralytics.data.augment import Albumentations

    node = {"transforms": overrides} if isinstance(overrides, list) else compose(overrides).augment
    return Albumentations(p=1.0, transforms=augment.build(node))


def _apply(step, labels: dict) -> tuple[np.ndarray, np.ndarray]:
    """Run the step as the training dataloader does; returns (image, boxes as normalised xywh)."""
    out = step(labels)
    inst = out["instances"]
    inst.convert_bbox("xywh")
    inst.normalize(*out["img"].shape[:2][::-1])
    return out["img"], inst.bboxes


def _rot90(boxes: np.ndarray, k: int) -> np.ndarray:
    """np.rot90(image, k) (counter-clockwise) applied to normalised xywh boxes."""
    b = boxes.copy()
    for _ in range(k % 4):
        b = np.stack([b[:, 1], 1 - b[:, 0], b[:, 3], b[:, 2]], 1)
    return b


@pytest.mark.parametrize(
    ("target", "pixels", "boxes"),
    [
        ("HorizontalFlip", lambda im: im[:, ::-1], lambda b: np.c_[1 - b[:, 0], b[:, 1:]]),
        ("VerticalFlip", lambda im: im[::-1], lambda b: np.c_[b[:, 0], 1 - b[:, 1], b[:, 2:]]),
    ],
    ids=["hflip", "vflip"],
)
def test_flip_moves_known_boxes_with_the_pixels(target, pixels, boxes):
    labels = _labelled(KNOWN)
    before_img, before = labels["img"].copy(), labels["instances"].bboxes.copy()
    img, after = _apply(_wrap([{"_target_": f"albumentations.{target}", "p": 1.0}]), labels)
    assert np.array_equal(img, pixels(before_img)), "the pixels did not move as expected"
    np.testing.assert_allclose(after, boxes(before), atol=1e-5)
    if target == "HorizontalFlip":  # the first panel, worked out by hand from its label line
        np.testing.assert_allclose(after[0], [1 - 0.331250, 0.474980, 0.156250, 0.312459], atol=1e-5)


@pytest.mark.parametrize(
    "spec", [[{"_target_": "albumentations.RandomRotate90", "p": 1.0}], "augment=rot90"], ids=["p1", "preset"]
)
def test_rotate90_moves_known_boxes_with_the_pixels(spec):
    seen = set()
    step = _wrap(spec)
    for _ in range(24):  # the quarter turn is random: identify it from the pixels, then check the boxes
        labels = _labelled(KNOWN)
        before_img, before = labels["img"].copy(), labels["instances"].bboxes.copy()
        img, after = _apply(step, labels)
        k = next(k for k in range(4) if np.array_equal(img, np.rot90(before_img, k)))
        np.testing.assert_allclose(after, _rot90(before, k), atol=1e-5)
        seen.add(k)
    assert len(seen) >= 2


def test_aerial_keeps_every_box_inside_the_image_on_real_solar_images():
    step = _wrap("augment=aerial")
    images = sorted((SAMPLE / "images" / "train").glob("*.jpg"))[::2][:30]
    kept = total = 0
    for image in images:
        labels = _labelled(image)
        n = len(labels["cls"])
        img, boxes = _apply(step, labels)
        assert img.shape == (416, 416, 3)
        x1, y1 = boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2
        x2, y2 = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
        assert (
            (x1 >= -1e-6).all() and (y1 >= -1e-6).all() and (x2 <= 1 + 1e-6).all() and (y2 <= 1 + 1e-6).all()
        )
        assert (boxes[:, 2] > 0).all() and (boxes[:, 3] > 0).all()
        kept, total = kept + len(boxes), total + n
    assert kept >= 0.95 * total  # a 1.1x zoom may push a box at the border out; flips and turns never do


# --- preview ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_preview_png_shows_augmented_images_with_boxes(tmp_path):
    """The one real detector-augment-preview process."""
    args = ["augment=aerial", "preview.n=4", "train.imgsz=128", f"paths.runs_dir={tmp_path}"]
    res = run_cli("detector-augment-preview", *args, env={"YOLO_OFFLINE": "true"})
    assert res.returncode == 0, res.stderr[-2000:]
    out = Path(res.last_line)  # the default place: <runs>/preview/<option>/<time>/
    assert out.name == "augment_preview.png" and out.parent.parent == tmp_path / "preview" / "aerial"
    img = cv2.imread(str(out))  # BGR
    assert img is not None and img.shape[0] >= 256 and img.shape[1] >= 256
    assert img.std() > 20, "the grid is blank"
    b, g, r = (img[..., i].astype(int) for i in range(3))
    box_pixels = ((b - r > 80) & (b - g > 80)).sum()  # Ultralytics draws class 0 in blue; the photos are grey
    assert box_pixels > 200, "no boxes drawn"


# --- the training dataloader runs the configured pipeline ------------------------------------------


@pytest.mark.slow
def test_smoke_run_dataloader_applies_the_configured_transforms(tmp_path):
    """InvertImg at p=1 with every Ultralytics augmentation off: each training image must be 255 - image.
    (What the summary records of a pipeline is checked on the resumed run in test_resume.)"""
    from detector.train.run import run

    seen: dict = {}

    def inspect_loader(trainer) -> None:  # the dataloader is all this needs: no training
        ds = trainer.train_loader.dataset
        seen["pipeline"] = augment.applied(ds)
        for i in range(3):
            item = ds[i]["img"].numpy().transpose(1, 2, 0)  # CHW RGB tensor -> HWC
            plain = ds.load_image(i)[0][..., ::-1]  # the resized image before any transform, BGR -> RGB
            seen.setdefault("inverted", []).append(np.array_equal(item, 255 - plain))
        raise Interrupted

    off = ["mosaic", "fliplr", "flipud", "hsv_h", "hsv_s", "hsv_v", "scale", "translate"]
    cfg = compose(
        "debug=smoke",
        "augment.transforms=[{_target_:albumentations.InvertImg,p:1.0}]",
        *(f"train.{k}=0" for k in off),
    )
    with pytest.raises(Interrupted):
        run(cfg, tmp_path / "run", callbacks=[{"on_pretrain_routine_end": inspect_loader}])

    pipe = seen["pipeline"]
    assert [(type(t).__name__, t.p) for t in pipe.transforms] == [("InvertImg", 1.0)]
    assert seen["inverted"] == [True, True, True], "the dataloader's images were not inverted"


@pytest.mark.slow
def test_spatial_pipeline_reaches_the_dataloader_with_bbox_params(tmp_path):
    from detector.train.run import run

    seen: dict = {}

    def built(trainer) -> None:  # the training dataloader's pipeline; no need to train with it
        seen.update(pipe=augment.applied(trainer.train_loader.dataset))
        raise Interrupted

    with pytest.raises(Interrupted):
        run(
            compose("debug=smoke", "augment=aerial"),
            tmp_path / "run",
            callbacks=[{"on_pretrain_routine_end": built}],
        )
    pipe = seen["pipe"]
    assert [type(t).__name__ for t in pipe.transforms] == [
        n["_target_"].rpartition(".")[2] for n in compose("augment=aerial").augment.transforms
    ]
    bbox = pipe.processors["bboxes"].params  # Ultralytics added YOLO-format box handling for the flips
    assert bbox.format == "yolo"
