# The C engine's sources and flags: the one list that csrc/Makefile (the library alone, every target) and
# kwsint/_build_ffi.py (the Python extension) both build from. tests/test_c_library.py checks that every .c file
# under csrc is listed.
#
# Fast math and fused multiply-adds would round the float path differently (docs/arithmetic.md 10).
KWS_CFLAGS = -std=c11 -fno-fast-math -ffp-contract=off
# ISA directories guard themselves with #if: on other architectures they compile to nothing.
KWS_SOURCES = \
  avx2/affine.c \
  avx2/depthwise.c \
  avx2/fully_connected.c \
  avx2/fully_connected_f32.c \
  avx2/fully_connected_s1.c \
  avx2/fully_connected_s4.c \
  avx2/kernels.c \
  avx2/quantize.c \
  avx2/requantize.c \
  avx512/fully_connected.c \
  avx512/kernels.c \
  avxvnni/fully_connected.c \
  avxvnni/kernels.c \
  backends.c \
  blob.c \
  crc32.c \
  detector.c \
  float_model.c \
  fold_bias.c \
  graph.c \
  model.c \
  neon/affine.c \
  neon/depthwise.c \
  neon/fully_connected.c \
  neon/fully_connected_dot.c \
  neon/fully_connected_f32.c \
  neon/fully_connected_s1.c \
  neon/fully_connected_s4.c \
  neon/fully_connected_s4_dot.c \
  neon/kernels.c \
  neon/requantize.c \
  ops.c \
  plan.c \
  portable/affine.c \
  portable/depthwise.c \
  portable/fully_connected.c \
  portable/fully_connected_f32.c \
  portable/fully_connected_packed.c \
  portable/kernels.c \
  portable/quantize.c \
  portable/requantize.c \
  posterior.c \
  requantize.c \
  sse41/affine.c \
  sse41/depthwise.c \
  sse41/fully_connected.c \
  sse41/fully_connected_f32.c \
  sse41/fully_connected_nibbles.c \
  sse41/fully_connected_signs.c \
  sse41/kernels.c \
  sse41/requantize.c \
  stream.c \
  timing.c
