"""The app's use cases: rating, voting, contributions, moderation, campaigns, scoring, the trainer.

Every front door (a Gradio tab, the Gradio API, the rating page) calls these
and translates their results and typed errors into its own form. Nothing here
imports gradio, fastapi, ``space.ui`` or ``space.web`` (``tests`` check it).
"""
