"""Tests of the Gradio app (space/) in process and over HTTP."""
