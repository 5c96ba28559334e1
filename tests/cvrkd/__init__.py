"""Tests of the cvrkd library and its command line."""
