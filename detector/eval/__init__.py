"""Evaluation: held-out figures with bootstrap intervals, paired comparisons, operating thresholds.

``stats`` collects per-image statistics from one Ultralytics val pass (its only Ultralytics import)
or from plain arrays (``from_predictions``); ``metrics`` and ``curves`` give Ultralytics' exact
figures for weighted resamples of the images; ``bootstrap`` gives intervals, paired differences and
verdicts; ``thresholds`` chooses per-class operating thresholds; ``resolve`` finds MODEL and its
split; ``run`` is the API scripts use (``evaluate_weights``, ``pass_stats``); ``app`` is
``detector-eval``; ``report``, ``plots`` and ``gallery`` make report.html.
"""
