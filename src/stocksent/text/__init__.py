"""Text: normalising messages into tokens, the vocabulary, and labels as callers give them."""
