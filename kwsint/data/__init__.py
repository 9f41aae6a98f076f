"""Training data: the synthetic speech corpus (``kwsint-data synth``), toy windows, and the window dataset
format."""
