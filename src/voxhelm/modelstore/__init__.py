"""The model store: known models, what is installed in the model cache, and pulls from the Hub."""
