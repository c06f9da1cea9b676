"""Training: config -> validated plan -> Ultralytics -> one run folder with its ``summary.json``.

``plan`` resolves and checks everything (keys, data, checkpoint, freezing, EMA, per-layer lrs,
augmentation, one device) before any long work; ``fit`` runs one stage through Ultralytics;
``run`` drives the stages, resume included, and writes the summary that ``rundir`` defines.
"""
