"""Helpers shared by the tests: paths, composing configs, calling the console scripts, datasets."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "sample"
SHARED = Path(os.environ.get("DETECTOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
WANDB_KEY = "wandbkey0123456789abcdef0123456789abcdef"  # a W&B API key's shape (40 characters)
SOLAR = SHARED / "solar_pv_gray416" / "data.yaml"
PCB = SHARED / "deeppcb" / "data.yaml"

# The console scripts of pyproject.toml, by name.
ENTRIES = {
    "detector-train": "detector.cli:train",
    "detector-export": "detector.cli:export",
    "detector-sweep": "detector.cli:sweep",
    "detector-augment-preview": "detector.cli:augment_preview",
    "detector-artifacts": "detector.artifacts.cli:main",
    "detector-data": "detector.data.cli:main",
    "detector-eval": "detector.cli:evaluate",
}


@dataclass
class Result:
    """What a command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        """The last line printed: every command prints its output folder there."""
        return self.stdout.strip().splitlines()[-1]


def compose(*overrides: str, config: str = "train"):
    """Compose ``configs/<config>.yaml`` the way the console scripts do (``train.X=`` passed through)."""
    from detector.config import compose as detector_compose

    return detector_compose(config, list(overrides))


def cli(command: str, *args: str) -> Result:
    """Run a console script in this process, as ``command args...`` on the command line.

    Much faster than a fresh interpreter (no torch/Ultralytics import each time). What the
    command prints through ``print`` is captured; Ultralytics' own log goes to pytest's capture.
    """
    module, func = ENTRIES[command].split(":")
    fn = getattr(importlib.import_module(module), func)
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = [command, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = fn(list(args)) if command == "detector-data" else fn()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return Result(code or 0, out.getvalue(), err.getvalue())


def run_script(name: str, *args: str) -> None:
    """Run ``scripts/<name>`` in this process, as ``python scripts/<name> args...`` would (a benchmark
    script's own runs still start their processes); a non-zero exit fails the test."""
    try:
        script(name, *args, main=True)
    except SystemExit as e:
        assert e.code in (None, 0), f"{name} exited with {e.code}"


def script(name: str, *args: str, main: bool = False) -> dict:
    """The globals of ``scripts/<name>`` after running it (``scripts/`` is not a package): as
    ``__main__`` with ``args`` as its command line, or imported only (its functions, for a test)."""
    import runpy

    argv, path = sys.argv, list(sys.path)
    sys.argv, sys.path[:0] = [name, *args], [str(ROOT / "scripts")]  # for its `import benchlib`
    try:
        return runpy.run_path(str(ROOT / "scripts" / name), run_name="__main__" if main else name)
    finally:
        sys.argv, sys.path[:] = argv, path


def run_cli(
    command: str, *args: str, env: dict | None = None, timeout: int = 600, cwd: Path | None = None
) -> Result:
    """Run a console script in a fresh interpreter, as a user would, in ``cwd`` (default: the working
    directory, a test's tmp_path). An ``env`` value of None unsets it."""
    module, func = ENTRIES[command].split(":")
    code = f"import sys; from {module} import {func} as f; sys.argv[0] = {command!r}; "
    code += "sys.exit(f())" if command == "detector-data" else "f()"
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},
        cwd=cwd or Path.cwd(),
    )
    return Result(res.returncode, res.stdout, res.stderr)


def tree_hash(root: Path) -> str:
    """sha256 over every file's relative path and bytes: changes if anything is added or modified."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def files_under(root: Path) -> list[Path]:
    """Every path under ``root``, relative and sorted (empty when ``root`` does not exist)."""
    return sorted(p.relative_to(root) for p in root.rglob("*")) if root.exists() else []


def require(data_yaml: Path) -> Path:
    """``data_yaml``, or skip the calling test when that shared dataset is absent (no ``../shared``)."""
    if not data_yaml.is_file():
        pytest.skip(f"shared dataset absent: {data_yaml}")
    return data_yaml


def mini(src_yaml: Path, dst: Path, n: dict[str, int], step: int = 7) -> Path:
    """Copy every ``step``-th image (and its label) of each split, up to ``n[split]``; returns data.yaml."""
    require(src_yaml)
    for split, count in n.items():
        images = sorted((src_yaml.parent / "images" / split).iterdir())[::step][:count]
        for sub in ("images", "labels"):
            (dst / sub / split).mkdir(parents=True, exist_ok=True)
        for im in images:
            shutil.copy(im, dst / "images" / split / im.name)
            lab = src_yaml.parent / "labels" / split / f"{im.stem}.txt"
            shutil.copy(lab, dst / "labels" / split / lab.name)
    names = yaml.safe_load(src_yaml.read_text())["names"]
    doc = {**{s: f"images/{s}" for s in n}, "names": names}
    (dst / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst / "data.yaml"


def boxes(label: Path) -> list[list[float]]:
    """The rows of a YOLO label file as floats, sorted."""
    return sorted([float(v) for v in line.split()] for line in label.read_text().splitlines() if line.strip())


class Interrupted(Exception):
    """Stands in for Ctrl-C or a killed job: raised after epoch 1 was saved."""


def interrupted_run(run_dir: Path, *overrides: str, callbacks: tuple = ()) -> None:
    """Start a 2-epoch smoke run the way Hydra would (config in .hydra/) and stop it after epoch 1.

    ``callbacks``: more Ultralytics event -> function dicts for the interrupted run.
    """
    from omegaconf import OmegaConf

    from detector.tracking import tracker
    from detector.train.run import run

    cfg = compose("debug=smoke", "train.epochs=2", *overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # what Hydra writes for every run

    def stop(trainer) -> None:
        if trainer.epoch == 0:
            raise Interrupted

    with pytest.raises(Interrupted), tracker.session(cfg, run_dir) as tracked:  # as detector-train runs it
        run(cfg, run_dir, callbacks=[tracked.callbacks, *callbacks, {"on_fit_epoch_end": stop}])


def optimizer_groups(trainer) -> list[dict]:
    """Each optimizer group's tag, base lr and the set of lr multiples its parameters should have."""
    from ultralytics.utils.torch_utils import unwrap_model

    layers = unwrap_model(trainer.model).model
    index = {id(p): i for i, layer in enumerate(layers) for p in layer.parameters()}
    return [
        {
            "tag": g["param_group"],
            "initial_lr": g["initial_lr"],
            "layers": {index[id(p)] for p in g["params"]},
        }
        for g in trainer.optimizer.param_groups
    ]


def sample_subset(dst: Path, n: dict[str, int], step: int = 3, classes: list[str] | None = None) -> Path:
    """Every ``step``-th image of the bundled sample (real solar images and labels); returns data.yaml.

    With ``classes``, each box is given class ``line index % len(classes)``: real images and boxes with
    several classes, for the tools that treat classes apart (convert, split, stats).
    """
    data = mini(SAMPLE / "data.yaml", dst, n, step)
    if classes:
        for lab in dst.glob("labels/*/*.txt"):
            rows = [line.split() for line in lab.read_text().splitlines() if line.strip()]
            lab.write_text("".join(f"{k % len(classes)} {' '.join(r[1:])}\n" for k, r in enumerate(rows)))
        doc = yaml.safe_load(data.read_text())
        data.write_text(yaml.safe_dump({**doc, "names": dict(enumerate(classes))}, sort_keys=False))
    return data


@contextlib.contextmanager
def http_server(files: dict[str, bytes], stall: tuple[str, ...] = ()):
    """A real HTTP server on 127.0.0.1 serving ``files`` by name; yields its base URL.

    A name in ``stall`` answers its headers and the first bytes, then sends nothing more (a mirror
    that hangs mid-file). Any other name is a 404.
    """
    import http.server
    import threading
    import time

    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/")
            if name not in files:
                self.send_error(404, "no such file")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[name])))
            self.end_headers()
            if name in stall:
                self.wfile.write(files[name][:100])
                self.wfile.flush()
                release.wait(60)
                return
            self.wfile.write(files[name])

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        time.sleep(0)  # let the stalled handler see the release


WHEEL_SOURCE = ("pyproject.toml", "README.md", "detector", "configs", "datasets")  # what the build reads


def run_ok(cmd: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (any program) in ``cwd``; fails the test with its output if it exits non-zero."""
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, f"{cmd[:3]}...\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


def install_wheel(root: Path) -> tuple[Path, list[str]]:
    """Build detector's wheel from a copy of this checkout and install it, without its dependencies,
    in a fresh virtual environment under ``root`` that sees the installed ones
    (``--system-site-packages``); returns the environment's bin/ and the wheel's file names.

    The build uses the installed setuptools (``--no-build-isolation``: the editable install in CI
    builds with isolation, so ``build-system.requires`` is checked there), and the environment gets
    no pip of its own: this interpreter's pip installs into it (``pip --python``).
    """
    import zipfile

    src = root / "src"  # a copy: the build writes build/ and *.egg-info/ beside the sources
    for name in WHEEL_SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip"]
    run_ok([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist", src], root)
    (wheel,) = (root / "dist").glob("detector-*.whl")
    venv = root / "venv"
    run_ok([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], root)
    run_ok([*pip, "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel], root)
    return venv / "bin", zipfile.ZipFile(wheel).namelist()
