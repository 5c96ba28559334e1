"""The Gradio app, in three layers: ``ui`` (Gradio) and ``web`` (the rating page) over ``services``.

``space.app.create_app`` builds it; ``app.py`` at the repository root launches it.
Nothing outside this package imports it. ``docs/architecture.md`` draws the layers.
"""
