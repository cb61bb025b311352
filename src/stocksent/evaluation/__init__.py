"""Evaluation: a saved model scored on its data, the baselines, and the report."""
