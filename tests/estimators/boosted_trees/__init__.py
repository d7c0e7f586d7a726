"""Tests of kestimator.estimators.boosted_trees (a package so its test module names stay unique)."""
