"""``python -m detector.data``: the same as ``detector-data``."""

from detector.data.cli import main

raise SystemExit(main())
