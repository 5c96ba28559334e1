"""Pairwise image-quality judgements: schema, durable store and Hub sync,
active pair sampling, scaling with confidence intervals, rater quality control.

Light to import on purpose (no torch, no ``cvrkd``/``space``): model scores
arrive as plain numbers. Import the submodules you need, e.g.
``from annotations.store import AnnotationStore``; ``load_judgements`` reads
a store folder or Hub repo as it is now.
"""

from annotations.reading import load_judgements, load_table

__all__ = ["load_judgements", "load_table"]
