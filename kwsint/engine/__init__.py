"""The runtime engine: the model spec and its blob format, the numpy reference arithmetic, the C backends
through cffi, models, streams, detectors and the audio listener. Needs only the runtime dependencies; never
imports training, data or evaluation code."""
