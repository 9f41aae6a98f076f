"""The engine's limits, read from the C header (csrc/include/kwsint.h) so that the Python checks and the C
checks cannot differ."""

from .._kwsint_c import lib

MAX_DIM: int = lib.KWS_MAX_DIM
"""Features per frame, and inputs and outputs per layer: 1..MAX_DIM."""
MAX_LAYERS: int = lib.KWS_MAX_LAYERS
"""Layers per model."""
MAX_SHIFT: dict[int, int] = {8: lib.KWS_MAX_SHIFT_S8, 16: lib.KWS_MAX_SHIFT_S16}
"""The largest requantization shift, by activation bits (docs/arithmetic.md)."""
BIAS_LIMIT: dict[int, int] = {8: lib.KWS_BIAS_LIMIT_S8, 16: lib.KWS_BIAS_LIMIT_S16}
"""|bias| <= BIAS_LIMIT[act_bits]: int32 biases with int8 activations, int64 with int16."""
MAX_SMOOTHING_STEPS: int = lib.KWS_MAX_SMOOTHING
"""The detector's moving-average window, in steps: 1..MAX_SMOOTHING_STEPS."""
MAX_GRAPH_TENSORS: int = lib.KWS_MAX_GRAPH_TENSORS
"""Tensors of a streaming graph (blob kind 1)."""
MAX_GRAPH_STATES: int = lib.KWS_MAX_GRAPH_STATES
"""States of a streaming graph."""
MAX_GRAPH_OPS: int = lib.KWS_MAX_GRAPH_OPS
"""Ops of a streaming graph."""
MAX_TENSOR_CODES: int = lib.KWS_MAX_TENSOR_CODES
"""frames x channels of one tensor or state of a streaming graph."""
