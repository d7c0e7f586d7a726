"""Tests of kestimator.data."""
