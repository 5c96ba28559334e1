"""The Gradio front door: the tabs, their components and the ``gradio_client`` API, over ``space.services``."""
