"""``detector-eval``: MODEL (a run, ``latest`` or a published version) resolved and checked, a version's
frames sliced as it was trained, then :mod:`detector.eval`'s engine on them; above training and
artifacts, which use that engine themselves (test metrics, stored thresholds).

``resolve`` finds MODEL and its data; ``sliced`` feeds sliced predictions to the engine; ``app`` is
the command.
"""
