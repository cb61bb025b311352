"""Scoring: a trained model (Predictor), its scorers and the parts after the network, files in chunks."""
