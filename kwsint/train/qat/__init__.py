"""2-stage sub-8-bit quantization-aware training (Zeng et al. 2022) in PyTorch.

PyTorch is an optional dependency (the ``train`` extra; README, "Install", for its CPU build); the
engine itself never needs it.
"""

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("kwsint.train.qat needs PyTorch: pip install 'kwsint[train]' (on Linux, its CPU build first: "
                      "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)") from e

from .model import STAGES, KWSNet, NetConfig, paper_config
from .quantizers import SIGMA_T

__all__ = ["KWSNet", "NetConfig", "SIGMA_T", "STAGES", "paper_config"]
