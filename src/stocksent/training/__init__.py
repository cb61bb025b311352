"""Training: the loop, pretraining, runs (fit, train, seeds, tune), adaptation to a new market."""
