// AVX-512 kernels for the fused LSTM and GRU recurrences (Sources/Autograd/Tensor+LSTM.swift,
// Tensor+GRU.swift).
//
// Run only where `astro_avx512_available()` (avx512.h) says so; elsewhere the Swift code keeps
// its portable path. Shapes: hidden size `h` a multiple of 16; gates in PyTorch's
// order (LSTM: i, f, g, o; GRU: r, z, n); every pointer is to row-major float32 and every stride is in floats.
#ifndef ASTROLABE_LSTM_KERNELS_H
#define ASTROLABE_LSTM_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// Packs `W_hh` `[4h, h]` for `astro_lstm_forward`: for each block of 16 hidden units `b`
/// and each `k < h`, the 64 weights `W[q h + 16 b + u, k]`, `q` the gate, `u < 16`.
/// `packed` holds `4 h h` floats.
void astro_lstm_pack_recurrent(const float *w, long h, float *packed);

/// Packs `W_ih` `[4h, f]` and `b_ih + b_hh` (`[4h]` each; either may be NULL) as
/// `astro_lstm_pack_recurrent` packs `W_hh`: `packed` `[h / 16][f][4][16]` (`4 h f` floats),
/// `packedBias` `[h / 16][4][16]` (`4 h` floats).
void astro_lstm_pack_input(const float *w, const float *biasIH, const float *biasHH, long h, long f,
                           float *packed, float *packedBias);

/// The whole recurrence for `m` sequences (rows). The gate pre-activations of row `r`, step
/// `t` start from `projected + r * projectedStride + t * 4h` (`x_t W_ihᵀ + b`) or, if
/// `projected` is NULL, are computed from `x + r * xStride + t * features` with
/// `packedIH` and `packedBias` (`astro_lstm_pack_input`). `packed` is `W_hh` packed by
/// `astro_lstm_pack_recurrent`. `(h_t, c_t)` goes to `states + r * stateStride + s * 2h`,
/// `s = t` if `allSteps`, else `s = t mod 2` (a two-step ring: the last step is at
/// `(steps - 1) mod 2`). If `gates` is not NULL, the gate activations
/// `(σ(i), σ(f), tanh(g), σ(o))` go to `gates + r * gateStride + t * 4h`. `h_{-1} = c_{-1} = 0`.
void astro_lstm_forward(const float *projected, long projectedStride, const float *x, long xStride, long features,
                        const float *packedIH, const float *packedBias, const float *packed,
                        float *states, long stateStride, int allSteps, float *gates, long gateStride,
                        long m, long steps, long h);

/// Backpropagation through time for `m` rows laid out as in `astro_lstm_forward` (all
/// steps kept): `gradient` (row stride `gradientStride`, `[T, 2h]` per row) is
/// `∂L/∂(h_t, c_t)`; writes `∂L/∂a_t` (the gate pre-activations) to `dProjected` (row stride
/// `dProjectedStride`, `[T, 4h]` per row). If `dW` is not NULL, adds `Σ_t ∂L/∂a_tᵀ h_{t-1}`
/// over these rows to `dW` `[4h, h]`; if `dBias` is not NULL, adds `Σ_t ∂L/∂a_t` to
/// `dBias` `[4h]` and `Σ_t x_t ⊗ ∂L/∂a_t` to `dWihT` `[features, 4h]` (`x` as in the
/// forward). `w` is `W_hh` `[4h, h]` unpacked; `scratch` holds `2 m h` floats. With
/// `gradientLastStepOnly`, `gradient` holds only step `T - 1`'s `[2h]` per row (the others
/// are zero).
void astro_lstm_backward(const float *gates, long gateStride, const float *states, long stateStride,
                         const float *gradient, long gradientStride, const float *w,
                         float *dProjected, long dProjectedStride, float *dW, float *scratch,
                         const float *x, long xStride, long features, float *dWihT, float *dBias,
                         int gradientLastStepOnly, long m, long steps, long h);

/// Packs the GRU's `W_hh` `[3h, h]` for `astro_gru_forward`, as `astro_lstm_pack_recurrent`
/// with 3 gates: `packed` `[h / 16][h][3][16]` (`3 h h` floats).
void astro_gru_pack_recurrent(const float *w, long h, float *packed);

/// The whole GRU recurrence (gates r, z, n) for `m` rows: the projected input
/// `x_t W_ihᵀ` of row `r`, step `t` at `projected + r * projectedStride + t * 3h`, plus
/// `biasIH` `[3h]` (NULL: the projection includes `b_ih` already);
/// `packed` from `astro_gru_pack_recurrent`; `biasHH` `[3h]`. `h_t` goes to
/// `states + r * stateStride + t * h`; if `gates` is not NULL, `(r, z, n, a_n)` (`a_n` the
/// recurrent term of the new gate, `h_{t-1} W_hnᵀ + b_hn`) to `gates + r * gateStride + t * 4h`.
/// `h_{-1} = 0`.
void astro_gru_forward(const float *projected, long projectedStride, const float *packed, const float *biasHH,
                       const float *biasIH, float *states, long stateStride, float *gates, long gateStride, long m, long steps, long h);

/// Backpropagation through time for `m` rows laid out as in `astro_gru_forward` (gates kept):
/// `gradient` (`[T, h]` per row, row stride `gradientStride`) is `∂L/∂h_t`; writes the
/// gradient of the projected input to `dProjected` and that of the recurrent term
/// `h_{t-1} W_hhᵀ + b_hh` to `dRecurrent` (both `[T, 3h]` per row, row stride `dStride`).
/// `w` is `W_hh` `[3h, h]` unpacked; `scratch` holds `2 m h` floats.
void astro_gru_backward(const float *gates, long gateStride, const float *states, long stateStride,
                        const float *gradient, long gradientStride, const float *w,
                        float *dProjected, float *dRecurrent, long dStride, float *scratch,
                        long m, long steps, long h);

/// Restricts the calling thread to the `slot`-th CPU of its current mask, saving the mask
/// into `saved` (`astro_affinity_bytes()` bytes). Returns 0 on success (-1: no such CPU,
/// nothing changed). Used by the workers of every parallel region (Storage.swift), not
/// only by the LSTM; declared here to keep CKernels a single-header module.
int astro_thread_pin(int slot, unsigned char *saved);

/// Restores a mask saved by `astro_thread_pin`.
void astro_thread_restore(const unsigned char *saved);

/// Bytes of a saved CPU mask.
long astro_affinity_bytes(void);

/// What `blas_core.c` did about OpenBLAS's kernels before main: empty when OpenBLAS's own
/// choice stands, else a sentence naming its choice and the one used instead.
const char *astro_blas_core_note(void);

#ifdef __cplusplus
}
#endif

#endif
