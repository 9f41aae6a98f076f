// MLAL-lane alternative: weights packed k-major for 4 rows (w[k][row]), widened to int16;
// each SMLAL by element adds 4 rows' products with one x value (the element register must
// be v0-v15 for 16-bit lanes), rotating over 4 accumulators. 4 rows x 16 K (64 MACs).
  ldr    q0, [x0], #16
  ldr    q1, [x1], #16
  ldr    q2, [x1], #16
  ldr    q3, [x1], #16
  ldr    q4, [x1], #16
  sxtl   v14.8h, v0.8b
  sxtl2  v15.8h, v0.16b
  sxtl   v5.8h, v1.8b
  sxtl2  v6.8h, v1.16b
  sxtl   v7.8h, v2.8b
  sxtl2  v8.8h, v2.16b
  sxtl   v9.8h, v3.8b
  sxtl2  v10.8h, v3.16b
  sxtl   v11.8h, v4.8b
  sxtl2  v12.8h, v4.16b
  smlal  v20.4s, v5.4h, v14.h[0]
  smlal2 v21.4s, v5.8h, v14.h[1]
  smlal  v22.4s, v6.4h, v14.h[2]
  smlal2 v23.4s, v6.8h, v14.h[3]
  smlal  v20.4s, v7.4h, v14.h[4]
  smlal2 v21.4s, v7.8h, v14.h[5]
  smlal  v22.4s, v8.4h, v14.h[6]
  smlal2 v23.4s, v8.8h, v14.h[7]
  smlal  v20.4s, v9.4h, v15.h[0]
  smlal2 v21.4s, v9.8h, v15.h[1]
  smlal  v22.4s, v10.4h, v15.h[2]
  smlal2 v23.4s, v10.8h, v15.h[3]
  smlal  v20.4s, v11.4h, v15.h[4]
  smlal2 v21.4s, v11.8h, v15.h[5]
  smlal  v22.4s, v12.4h, v15.h[6]
  smlal2 v23.4s, v12.8h, v15.h[7]
  subs   x5, x5, #16
  b.ne   .
