"""Both loaders accept an int16 accumulation claim exactly when the spec calls it safe (docs/arithmetic.md
5.6: 128 * sum |w| <= 32767 over every aligned block of the claimed size): every claim from 2^4 to 2^14
products, on every dense layer of a model with 4-bit and 1-bit weights."""

import pytest

import kwsint
from kwsint import FormatError, reference
from kwsint._kwsint_c import lib
from kwsint.train.generate import random_model

from .test_acc16 import _layer_byte
from .test_format import c_load, refresh_crc


def test_every_claim_is_accepted_exactly_when_safe():
    spec = random_model((400, 87), weight_bits=[4, 1, 4], window_frames=9, feature_dim=10, frame_stride=1)
    blob = kwsint.write_blob(spec)
    refused = 0
    for index, layer in enumerate(spec.layers):
        if layer.kind != "dense":
            continue
        at = _layer_byte(blob, spec, index)
        for claim in range(reference.ACC16_MIN_LOG2, reference.ACC16_MAX_LOG2 + 1):
            edited = refresh_crc(blob[:at] + bytes([claim]) + blob[at + 1:])
            safe = reference.acc16_safe(layer.weights, claim)
            where = f"layers[{index}] claiming 2^{claim}"
            if safe:
                assert kwsint.read_blob(edited).layers[index].acc16_block == claim, where
            else:
                with pytest.raises(FormatError, match=rf"layers\[{index}\]\.acc16_block"):
                    kwsint.read_blob(edited)
                refused += 1
            assert (c_load(edited) == lib.KWS_OK) == safe, where
    assert refused  # the model has unsafe claims to refuse, or the test shows nothing
