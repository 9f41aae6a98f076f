// The widening alternative: x and w sign-extended to int16 (SXTL/SXTL2), then
// SMLAL/SMLAL2 int16 x int16 -> int32 lanes. 4 rows x 16 K per iteration (64 MACs).
  ldr    q0, [x0], #16
  ldr    q1, [x1], #16
  ldr    q2, [x2], #16
  ldr    q3, [x3], #16
  ldr    q4, [x4], #16
  sxtl   v24.8h, v0.8b
  sxtl2  v25.8h, v0.16b
  sxtl   v5.8h, v1.8b
  sxtl2  v1.8h, v1.16b
  sxtl   v6.8h, v2.8b
  sxtl2  v2.8h, v2.16b
  sxtl   v7.8h, v3.8b
  sxtl2  v3.8h, v3.16b
  sxtl   v16.8h, v4.8b
  sxtl2  v4.8h, v4.16b
  smlal  v20.4s, v5.4h, v24.4h
  smlal2 v20.4s, v5.8h, v24.8h
  smlal  v20.4s, v1.4h, v25.4h
  smlal2 v20.4s, v1.8h, v25.8h
  smlal  v21.4s, v6.4h, v24.4h
  smlal2 v21.4s, v6.8h, v24.8h
  smlal  v21.4s, v2.4h, v25.4h
  smlal2 v21.4s, v2.8h, v25.8h
  smlal  v22.4s, v7.4h, v24.4h
  smlal2 v22.4s, v7.8h, v24.8h
  smlal  v22.4s, v3.4h, v25.4h
  smlal2 v22.4s, v3.8h, v25.8h
  smlal  v23.4s, v16.4h, v24.4h
  smlal2 v23.4s, v16.8h, v24.8h
  smlal  v23.4s, v4.4h, v25.4h
  smlal2 v23.4s, v4.8h, v25.8h
  subs   x5, x5, #16
  b.ne   .
