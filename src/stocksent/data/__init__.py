"""Data: the data set's files, reading and writing tables, the seeded split, batches, the model directory."""
