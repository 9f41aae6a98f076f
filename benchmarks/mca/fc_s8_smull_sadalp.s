// ARMv8.0 int8 FULLY_CONNECTED inner loop as csrc/neon/fully_connected.c writes it:
// 4 rows x 16 K per iteration (64 MACs), SMULL + SMLAL2 into int16, SADALP into int32.
  ldr    q0, [x0], #16
  ldr    q1, [x1], #16
  ldr    q2, [x2], #16
  ldr    q3, [x3], #16
  ldr    q4, [x4], #16
  smull  v5.8h, v1.8b, v0.8b
  smull  v6.8h, v2.8b, v0.8b
  smull  v7.8h, v3.8b, v0.8b
  smull  v16.8h, v4.8b, v0.8b
  smlal2 v5.8h, v1.16b, v0.16b
  smlal2 v6.8h, v2.16b, v0.16b
  smlal2 v7.8h, v3.16b, v0.16b
  smlal2 v16.8h, v4.16b, v0.16b
  sadalp v20.4s, v5.8h
  sadalp v21.4s, v6.8h
  sadalp v22.4s, v7.8h
  sadalp v23.4s, v16.8h
  subs   x5, x5, #16
  b.ne   .
