"""Training: the 2-stage QAT models and checkpoints (``qat``, the ``train`` extra: PyTorch), export of
trained networks to kwsint models, and the paper's model configurations (``generate``)."""
