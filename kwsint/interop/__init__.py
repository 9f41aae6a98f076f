"""Other ecosystems: export to TFLite and ONNX (the ``interop`` extra) and the Wyoming wake word service
for Home Assistant (the ``wyoming`` extra)."""
