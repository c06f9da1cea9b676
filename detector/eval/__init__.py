"""Evaluation engine: held-out figures with bootstrap intervals, paired comparisons, operating thresholds.

``stats`` collects per-image statistics from one Ultralytics val pass (its only Ultralytics import)
or from plain arrays (``from_predictions``); ``metrics`` and ``curves`` give Ultralytics' exact
figures for weighted resamples of the images; ``bootstrap`` gives intervals, paired differences and
verdicts; ``thresholds`` chooses per-class operating thresholds; ``splits`` picks the split to
score; ``run`` is the API training, export, sweeps and scripts use (``evaluate_weights``,
``pass_stats``, ``choose_thresholds``); ``report``, ``plots`` and ``gallery`` make report.html.
Below training and artifacts: it knows data.yaml files and weights, never runs or versions
(that is :mod:`detector.review`, ``detector-eval``).
"""
