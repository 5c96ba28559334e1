"""The training side of CVRKD-IQA: synthetic training sets and FR pseudo-labels, training
loops (teacher, student, human labels), the reproducible pipeline, re-distillation on
crowd judgements and the model registry.

Nothing on the scoring path (``cvrkd.scorer`` and what it imports) imports this package.
"""
