"""The Gradio app: a thin UI over ``cvrkd`` (scoring) and ``annotations`` (judgements).

``space.app.create_app`` builds it; ``app.py`` at the repository root launches it.
Nothing outside this package imports it.
"""
