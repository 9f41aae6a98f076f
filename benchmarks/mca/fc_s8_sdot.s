// ARMv8.2 dot-product inner loop as csrc/neon/fully_connected_dot.c writes it:
// 4 rows x 16 K per iteration (64 MACs), one SDOT per row.
  ldr    q0, [x0], #16
  ldr    q1, [x1], #16
  ldr    q2, [x2], #16
  ldr    q3, [x3], #16
  ldr    q4, [x4], #16
  sdot   v20.4s, v1.16b, v0.16b
  sdot   v21.4s, v2.16b, v0.16b
  sdot   v22.4s, v3.16b, v0.16b
  sdot   v23.4s, v4.16b, v0.16b
  subs   x5, x5, #16
  b.ne   .
