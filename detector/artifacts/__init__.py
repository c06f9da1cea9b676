"""Deployable versions: ``artifacts/<name>/v<N>/``, exported, checked, immutable and verifiable.

``target`` reads the export config (no Ultralytics import), ``export`` exports and checks a run's
weights, ``manifest`` describes a version, ``store`` numbers and seals versions, ``predict`` runs one
through its own runtime, and ``cli`` is ``detector-artifacts``.
"""
