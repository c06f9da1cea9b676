"""Fine-tune Ultralytics YOLO detectors from Hydra configs. Importing this package has no side effects."""

__version__ = "0.1.0"
