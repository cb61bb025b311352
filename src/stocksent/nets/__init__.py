"""Networks: the LSTM classifier and its folded CPU form, the pretraining networks, devices."""
