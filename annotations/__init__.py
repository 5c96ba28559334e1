"""Pairwise image-quality judgements: schema, durable store and Hub sync,
active pair sampling, scaling with confidence intervals, rater quality control.

Light to import on purpose (no torch, no ``cvrkd``/``space``): model scores
arrive as plain numbers. Import the submodules you need, e.g.
``from annotations.store import AnnotationStore``.
"""
