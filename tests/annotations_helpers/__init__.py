"""Helpers for the annotations tests: a separate writer process and a local stand-in for the Hub."""
