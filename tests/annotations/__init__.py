"""Tests of the annotations package (store, sampling, scaling, campaigns): torch-free."""
