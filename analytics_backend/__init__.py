"""Folds verdicts into running totals and publishes them to ``analytics_result``."""
