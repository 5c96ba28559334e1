"""Maintenance scripts, run as files (``python scripts/NAME.py``); a package so that tests can import what a script measures."""
