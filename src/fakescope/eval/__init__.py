"""Metrics, cross-dataset and robustness evaluation, tables and plots."""
