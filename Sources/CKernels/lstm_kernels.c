// AVX-512 kernels of the fused LSTM and GRU recurrences; see include/lstm_kernels.h.
//
// Forward, per step: for each block of 16 hidden units (its 4 gates are 4 zmm registers per
// row) and each tile of up to 4 rows, the recurrent product h_{t-1} W_hhᵀ is accumulated in
// 16 registers on top of the projected input, then the gates, c_t and h_t are computed
// from the same registers. W_hh is packed so that one block's weights (h x 64 floats, 16 KB
// for h = 64) are read contiguously and stay in L1 while every row tile uses them.
// Backward, per step (t descending): the cell backward for every row, `dh_{t-1} = da_t W_hh`
// and `dW_hh += da_tᵀ h_{t-1}` with register tiles of the same shape. The GRU's forward has
// the same shape with 3 gates per block; its backward shares `product`.
#include "lstm_kernels.h"
#include "avx512_math.h"
#include <stdlib.h>

#ifdef ASTRO_AVX512_KERNELS

/// `σ(k x) = 1 / (1 + e^(−k x))` for `k` = 1 or 2 (`exp16` clamps `|k x|` to 87, where σ is 0
/// or 1 to float precision).
KERNEL INLINE __m512 sigmoid_k(__m512 x, const float k) {
    return reciprocal16(_mm512_add_ps(_mm512_set1_ps(1), exp16(_mm512_mul_ps(x, _mm512_set1_ps(-k)))));
}

KERNEL INLINE __m512 sigmoid16(__m512 x) { return sigmoid_k(x, 1); }

/// `tanh x = 2 σ(2x) - 1` (absolute error ~3e-7).
KERNEL INLINE __m512 tanh16(__m512 x) {
    return _mm512_fmsub_ps(sigmoid_k(x, 2), _mm512_set1_ps(2), _mm512_set1_ps(1));
}

/// Prefetches `count` floats at `p` into L2.
KERNEL INLINE void prefetch(const float *p, long count) {
    for (long k = 0; k < count; k += 16) _mm_prefetch((const char *)(p + k), _MM_HINT_T1);
}

void astro_lstm_pack_recurrent(const float *w, long h, float *packed) {
    for (long b = 0; b < h / 16; b++)
        for (long k = 0; k < h; k++)
            for (long q = 0; q < 4; q++)
                for (long u = 0; u < 16; u++)
                    packed[((b * h + k) * 4 + q) * 16 + u] = w[(q * h + b * 16 + u) * h + k];
}

/// Packs `W_ih` `[4h, f]` and the summed biases `[4h]` for `astro_lstm_forward` (see the header).
void astro_lstm_pack_input(const float *w, const float *biasIH, const float *biasHH, long h, long f,
                           float *packed, float *packedBias) {
    for (long b = 0; b < h / 16; b++)
        for (long q = 0; q < 4; q++)
            for (long u = 0; u < 16; u++) {
                long row = q * h + b * 16 + u;
                for (long k = 0; k < f; k++) packed[((b * f + k) * 4 + q) * 16 + u] = w[row * f + k];
                packedBias[(b * 4 + q) * 16 + u] = (biasIH ? biasIH[row] : 0) + (biasHH ? biasHH[row] : 0);
            }
}

/// Where one step's input comes from: the projected input `p` (row stride `ps`), or else
/// `x` (row stride `xs`, `f` features) with the block's packed `W_ih` and biases.
typedef struct {
    const float *p; long ps;
    const float *x; long xs; long f;
    const float *wih, *bias;
} step_input;

/// One step for `R` rows and the 16 hidden units at `j`: `y` (and `g`, which may be NULL)
/// point at row 0's step `t`, `hp` at row 0's step `t - 1` (`(h, c)`, same row stride `ys`;
/// unused when `first`); `wb` is the block's packed `W_hh`.
KERNEL INLINE void forward_tile(const int R, step_input in, const float *wb, const float *hp, float *y, long ys,
                                float *g, long gs, long h, long j, int first) {
    __m512 acc[4][4];
    if (in.p) {
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_loadu_ps(in.p + r * in.ps + q * h + j);
    } else {
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_loadu_ps(in.bias + q * 16);
        for (long k = 0; k < in.f; k++) {
            const float *wk = in.wih + k * 64;
            __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
            __m512 w2 = _mm512_loadu_ps(wk + 32), w3 = _mm512_loadu_ps(wk + 48);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_set1_ps(in.x[r * in.xs + k]);
                acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(xv, w3, acc[r][3]);
            }
        }
    }
    if (!first) {
        for (long k = 0; k < h; k++) {
            const float *wk = wb + k * 64;
            __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
            __m512 w2 = _mm512_loadu_ps(wk + 32), w3 = _mm512_loadu_ps(wk + 48);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_set1_ps(hp[r * ys + k]);
                acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(xv, w3, acc[r][3]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        __m512 i = sigmoid16(acc[r][0]), f = sigmoid16(acc[r][1]);
        __m512 gg = tanh16(acc[r][2]), o = sigmoid16(acc[r][3]);
        if (g) {
            float *gr = g + r * gs + j;
            _mm512_storeu_ps(gr, i); _mm512_storeu_ps(gr + h, f);
            _mm512_storeu_ps(gr + 2 * h, gg); _mm512_storeu_ps(gr + 3 * h, o);
        }
        float *yr = y + r * ys + j;
        __m512 c = _mm512_mul_ps(i, gg);
        if (!first) c = _mm512_fmadd_ps(f, _mm512_loadu_ps(hp + r * ys + h + j), c);
        _mm512_storeu_ps(yr + h, c);
        _mm512_storeu_ps(yr, _mm512_mul_ps(o, tanh16(c)));
    }
}

KERNEL void astro_lstm_forward(const float *projected, long ps, const float *x, long xs, long features,
                               const float *packedIH, const float *packedBias, const float *packed,
                               float *states, long ys, int allSteps, float *gates, long gs,
                               long m, long steps, long h) {
    for (long t = 0; t < steps; t++) {
        int first = t == 0;
        long slot = allSteps ? t : (t & 1), previous = allSteps ? t - 1 : ((t - 1) & 1);
        // The next step's outputs are in other pages of every row: fetch their lines early.
        if (allSteps && t + 1 < steps)
            for (long r = 0; r < m; r++) {
                prefetch(states + r * ys + (t + 1) * 2 * h, 2 * h);
                if (gates) prefetch(gates + r * gs + (t + 1) * 4 * h, 4 * h);
            }
        for (long b = 0; b < h / 16; b++) {
            const float *wb = packed + b * h * 64;
            long j = b * 16;
            for (long r = 0; r < m;) {
                long rows = m - r >= 4 ? 4 : m - r;
                step_input in = {
                    projected ? projected + r * ps + t * 4 * h : 0, ps,
                    x ? x + r * xs + t * features : 0, xs, features,
                    packedIH ? packedIH + b * features * 64 : 0, packedBias ? packedBias + b * 64 : 0,
                };
                const float *hp = states + r * ys + previous * 2 * h;
                float *y = states + r * ys + slot * 2 * h, *g = gates ? gates + r * gs + t * 4 * h : 0;
                switch (rows) {
                case 4: forward_tile(4, in, wb, hp, y, ys, g, gs, h, j, first); break;
                case 3: forward_tile(3, in, wb, hp, y, ys, g, gs, h, j, first); break;
                case 2: forward_tile(2, in, wb, hp, y, ys, g, gs, h, j, first); break;
                default: forward_tile(1, in, wb, hp, y, ys, g, gs, h, j, first); break;
                }
                r += rows;
            }
        }
    }
}

/// `out[r, c0 ..< c0 + 16 NC] = Σ_k a[r, k] w[k, c0 ...]` for `R` rows (`a` row stride `as`,
/// `w` row stride `h`, `out` row stride `h`), `k < kn`.
KERNEL INLINE void product_tile(const int R, const int NC, const float *a, long as, const float *w, long kn,
                                float *out, long h, long c0) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    for (long k = 0; k < kn; k++) {
        __m512 wv[4];
        for (int c = 0; c < NC; c++) wv[c] = _mm512_loadu_ps(w + k * h + c0 + 16 * c);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[r * as + k]);
            for (int c = 0; c < NC; c++) acc[r][c] = _mm512_fmadd_ps(x, wv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NC; c++) _mm512_storeu_ps(out + r * h + c0 + 16 * c, acc[r][c]);
}

/// `product_tile` for `R` rows with `NC` chosen at run time (1 to 4).
KERNEL INLINE void product_rows(const int R, long nc, const float *a, long as, const float *w, long kn,
                                float *out, long h, long c0) {
    switch (nc) {
    case 4: product_tile(R, 4, a, as, w, kn, out, h, c0); break;
    case 3: product_tile(R, 3, a, as, w, kn, out, h, c0); break;
    case 2: product_tile(R, 2, a, as, w, kn, out, h, c0); break;
    default: product_tile(R, 1, a, as, w, kn, out, h, c0); break;
    }
}

/// `out [m, h] = a [m, kn] w [kn, h]` (`out` row stride `h`).
KERNEL static void product(const float *a, long as, const float *w, long kn, float *out, long m, long h) {
    for (long c0 = 0; c0 < h; c0 += 64) {
        long nc = (h - c0) / 16 > 4 ? 4 : (h - c0) / 16;
        long r = 0;
        for (; r + 4 <= m; r += 4) product_rows(4, nc, a + r * as, as, w, kn, out + r * h, h, c0);
        switch (m - r) {
        case 3: product_rows(3, nc, a + r * as, as, w, kn, out + r * h, h, c0); break;
        case 2: product_rows(2, nc, a + r * as, as, w, kn, out + r * h, h, c0); break;
        case 1: product_rows(1, nc, a + r * as, as, w, kn, out + r * h, h, c0); break;
        default: break;
        }
    }
}

/// `dW[g0 ..< g0 + 4, c0 ..< c0 + 16 NC] += Σ_r da[r, g] hp[r, c]` over `m` rows.
KERNEL INLINE void weight_tile(const int NC, const float *da, long das, const float *hp, long hs,
                               float *dw, long h, long g0, long c0, long m) {
    __m512 acc[4][4];
    for (int q = 0; q < 4; q++)
        for (int c = 0; c < NC; c++) acc[q][c] = _mm512_loadu_ps(dw + (g0 + q) * h + c0 + 16 * c);
    for (long r = 0; r < m; r++) {
        __m512 hv[4];
        for (int c = 0; c < NC; c++) hv[c] = _mm512_loadu_ps(hp + r * hs + c0 + 16 * c);
        for (int q = 0; q < 4; q++) {
            __m512 x = _mm512_set1_ps(da[r * das + g0 + q]);
            for (int c = 0; c < NC; c++) acc[q][c] = _mm512_fmadd_ps(x, hv[c], acc[q][c]);
        }
    }
    for (int q = 0; q < 4; q++)
        for (int c = 0; c < NC; c++) _mm512_storeu_ps(dw + (g0 + q) * h + c0 + 16 * c, acc[q][c]);
}

KERNEL void astro_lstm_backward(const float *gates, long gs, const float *states, long ys,
                                const float *gradient, long grs, const float *w,
                                float *dp, long dps, float *dw, float *scratch,
                                const float *x, long xs, long features, float *dWihT, float *dBias,
                                int gradientLastStepOnly, long m, long steps, long h) {
    float *dh = scratch, *dc = scratch + m * h;
    for (long k = 0; k < 2 * m * h; k++) scratch[k] = 0;
    const __m512 one = _mm512_set1_ps(1);
    for (long t = steps - 1; t >= 0; t--) {
        // Step t - 1's inputs (and t - 2's states) lie in other pages of every row.
        if (t > 0)
            for (long r = 0; r < m; r++) {
                prefetch(gates + r * gs + (t - 1) * 4 * h, 4 * h);
                if (t > 1) prefetch(states + r * ys + (t - 2) * 2 * h, 2 * h);
                if (!gradientLastStepOnly) prefetch(gradient + r * grs + (t - 1) * 2 * h, 2 * h);
                prefetch(dp + r * dps + (t - 1) * 4 * h, 4 * h);
            }
        int hasGradient = !gradientLastStepOnly || t == steps - 1;
        for (long r = 0; r < m; r++) {
            const float *a = gates + r * gs + t * 4 * h, *y = states + r * ys + t * 2 * h;
            const float *gy = gradient + r * grs + (gradientLastStepOnly ? 0 : t * 2 * h);
            float *d = dp + r * dps + t * 4 * h, *dhr = dh + r * h, *dcr = dc + r * h;
            for (long j = 0; j < h; j += 16) {
                __m512 i = _mm512_loadu_ps(a + j), f = _mm512_loadu_ps(a + h + j);
                __m512 gg = _mm512_loadu_ps(a + 2 * h + j), o = _mm512_loadu_ps(a + 3 * h + j);
                __m512 tc = tanh16(_mm512_loadu_ps(y + h + j));
                __m512 dhv = _mm512_loadu_ps(dhr + j), dcv = _mm512_loadu_ps(dcr + j);
                if (hasGradient) {
                    dhv = _mm512_add_ps(dhv, _mm512_loadu_ps(gy + j));
                    dcv = _mm512_add_ps(dcv, _mm512_loadu_ps(gy + h + j));
                }
                // dc = gy_c + dc_next + dh o (1 - tc²)
                dcv = _mm512_fmadd_ps(_mm512_mul_ps(dhv, o), _mm512_fnmadd_ps(tc, tc, one), dcv);
                __m512 cp = t > 0 ? _mm512_loadu_ps(y - h + j) : _mm512_setzero_ps();
                _mm512_storeu_ps(d + j, _mm512_mul_ps(_mm512_mul_ps(dcv, gg), _mm512_fnmadd_ps(i, i, i)));
                _mm512_storeu_ps(d + h + j, _mm512_mul_ps(_mm512_mul_ps(dcv, cp), _mm512_fnmadd_ps(f, f, f)));
                _mm512_storeu_ps(d + 2 * h + j, _mm512_mul_ps(_mm512_mul_ps(dcv, i), _mm512_fnmadd_ps(gg, gg, one)));
                _mm512_storeu_ps(d + 3 * h + j, _mm512_mul_ps(_mm512_mul_ps(dhv, tc), _mm512_fnmadd_ps(o, o, o)));
                _mm512_storeu_ps(dcr + j, _mm512_mul_ps(dcv, f));
            }
            // dW_ihᵀ += x_t ⊗ da_t, dBias += da_t.
            if (dBias) {
                const float *xr = x + r * xs + t * features;
                for (long q = 0; q < 4 * h; q += 16) {
                    __m512 dv = _mm512_loadu_ps(d + q);
                    _mm512_storeu_ps(dBias + q, _mm512_add_ps(_mm512_loadu_ps(dBias + q), dv));
                    for (long k = 0; k < features; k++) {
                        float *dwk = dWihT + k * 4 * h + q;
                        _mm512_storeu_ps(dwk, _mm512_fmadd_ps(_mm512_set1_ps(xr[k]), dv, _mm512_loadu_ps(dwk)));
                    }
                }
            }
        }
        if (t == 0) break;
        const float *da = dp + t * 4 * h;
        // dh_{t-1} = da_t W_hh.
        product(da, dps, w, 4 * h, dh, m, h);
        if (dw) {
            // dW_hh += da_tᵀ h_{t-1}.
            const float *hp = states + (t - 1) * 2 * h;
            for (long g0 = 0; g0 < 4 * h; g0 += 4)
                for (long c0 = 0; c0 < h; c0 += 64) {
                    long nc = (h - c0) / 16 > 4 ? 4 : (h - c0) / 16;
                    switch (nc) {
                    case 4: weight_tile(4, da, dps, hp, ys, dw, h, g0, c0, m); break;
                    case 3: weight_tile(3, da, dps, hp, ys, dw, h, g0, c0, m); break;
                    case 2: weight_tile(2, da, dps, hp, ys, dw, h, g0, c0, m); break;
                    default: weight_tile(1, da, dps, hp, ys, dw, h, g0, c0, m); break;
                    }
                }
        }
    }
}

// MARK: - GRU

void astro_gru_pack_recurrent(const float *w, long h, float *packed) {
    for (long b = 0; b < h / 16; b++)
        for (long k = 0; k < h; k++)
            for (long q = 0; q < 3; q++)
                for (long u = 0; u < 16; u++)
                    packed[((b * h + k) * 3 + q) * 16 + u] = w[(q * h + b * 16 + u) * h + k];
}

/// One GRU step for `R` rows and the 16 hidden units at `j`: `p` points at row 0's projected
/// input of step `t` (row stride `ps`), `y` and `g` (may be NULL) at row 0's step `t`, `hp` at
/// row 0's step `t - 1` (same row stride `ys`; unused when `first`); `wb` is the block's packed
/// `W_hh`.
KERNEL INLINE void gru_forward_tile(const int R, const float *p, long ps, const float *bias, const float *biasN,
                                    const float *wb, const float *hp, float *y, long ys, float *g, long gs, long h,
                                    long j, int first) {
    const __m512 bn = _mm512_loadu_ps(biasN + j);
    __m512 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 3; q++) acc[r][q] = _mm512_loadu_ps(bias + q * h + j);
    if (!first) {
        for (long k = 0; k < h; k++) {
            const float *wk = wb + k * 48;
            __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16), w2 = _mm512_loadu_ps(wk + 32);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_set1_ps(hp[r * ys + k]);
                acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        const float *pr = p + r * ps + j;
        __m512 rg = sigmoid16(_mm512_add_ps(_mm512_loadu_ps(pr), acc[r][0]));
        __m512 z = sigmoid16(_mm512_add_ps(_mm512_loadu_ps(pr + h), acc[r][1]));
        __m512 n = tanh16(_mm512_fmadd_ps(rg, acc[r][2], _mm512_add_ps(_mm512_loadu_ps(pr + 2 * h), bn)));
        if (g) {
            float *gr = g + r * gs + j;
            _mm512_storeu_ps(gr, rg); _mm512_storeu_ps(gr + h, z);
            _mm512_storeu_ps(gr + 2 * h, n); _mm512_storeu_ps(gr + 3 * h, acc[r][2]);
        }
        __m512 previous = first ? _mm512_setzero_ps() : _mm512_loadu_ps(hp + r * ys + j);
        _mm512_storeu_ps(y + r * ys + j, _mm512_fmadd_ps(z, _mm512_sub_ps(previous, n), n));
    }
}

KERNEL void astro_gru_forward(const float *projected, long ps, const float *packed, const float *biasHH,
                              const float *biasIH, float *states, long ys, float *gates, long gs, long m,
                              long steps, long h) {
    // The recurrent term starts at `bias` = (b_hr + b_ir, b_hz + b_iz, b_hn); b_in, which `r`
    // does not scale, is `biasN`, added to the projected input of the new gate.
    float *bias = malloc(4 * h * sizeof(float)), *biasN = bias + 3 * h;
    for (long k = 0; k < 3 * h; k++) bias[k] = biasHH[k] + (biasIH && k < 2 * h ? biasIH[k] : 0);
    for (long k = 0; k < h; k++) biasN[k] = biasIH ? biasIH[2 * h + k] : 0;
    for (long t = 0; t < steps; t++) {
        int first = t == 0;
        if (t + 1 < steps)
            for (long r = 0; r < m; r++) {
                prefetch(states + r * ys + (t + 1) * h, h);
                prefetch(projected + r * ps + (t + 1) * 3 * h, 3 * h);
                if (gates) prefetch(gates + r * gs + (t + 1) * 4 * h, 4 * h);
            }
        for (long b = 0; b < h / 16; b++) {
            const float *wb = packed + b * h * 48;
            long j = b * 16;
            for (long r = 0; r < m;) {
                long rows = m - r >= 4 ? 4 : m - r;
                const float *p = projected + r * ps + t * 3 * h;
                const float *hp = states + r * ys + (t - 1) * h;
                float *y = states + r * ys + t * h, *g = gates ? gates + r * gs + t * 4 * h : 0;
                switch (rows) {
                case 4: gru_forward_tile(4, p, ps, bias, biasN, wb, hp, y, ys, g, gs, h, j, first); break;
                case 3: gru_forward_tile(3, p, ps, bias, biasN, wb, hp, y, ys, g, gs, h, j, first); break;
                case 2: gru_forward_tile(2, p, ps, bias, biasN, wb, hp, y, ys, g, gs, h, j, first); break;
                default: gru_forward_tile(1, p, ps, bias, biasN, wb, hp, y, ys, g, gs, h, j, first); break;
                }
                r += rows;
            }
        }
    }
    free(bias);
}

KERNEL void astro_gru_backward(const float *gates, long gs, const float *states, long ys,
                               const float *gradient, long grs, const float *w,
                               float *dProjected, float *dRecurrent, long ds, float *scratch,
                               long m, long steps, long h) {
    float *dh = scratch, *product_out = scratch + m * h;
    for (long k = 0; k < m * h; k++) dh[k] = 0;
    const __m512 one = _mm512_set1_ps(1);
    for (long t = steps - 1; t >= 0; t--) {
        if (t > 0)
            for (long r = 0; r < m; r++) {
                prefetch(gates + r * gs + (t - 1) * 4 * h, 4 * h);
                prefetch(gradient + r * grs + (t - 1) * h, h);
                if (t > 1) prefetch(states + r * ys + (t - 2) * h, h);
            }
        for (long r = 0; r < m; r++) {
            const float *a = gates + r * gs + t * 4 * h, *y = states + r * ys + t * h;
            const float *gy = gradient + r * grs + t * h;
            float *dp = dProjected + r * ds + t * 3 * h, *da = dRecurrent + r * ds + t * 3 * h, *dhr = dh + r * h;
            for (long j = 0; j < h; j += 16) {
                __m512 rg = _mm512_loadu_ps(a + j), z = _mm512_loadu_ps(a + h + j);
                __m512 n = _mm512_loadu_ps(a + 2 * h + j), an = _mm512_loadu_ps(a + 3 * h + j);
                __m512 dhv = _mm512_add_ps(_mm512_loadu_ps(gy + j), _mm512_loadu_ps(dhr + j));
                __m512 previous = t > 0 ? _mm512_loadu_ps(y - h + j) : _mm512_setzero_ps();
                // dn = dh (1 - z)(1 - n²), dr = dn a_n r (1 - r), dz = dh (h_{t-1} - n) z (1 - z)
                __m512 dn = _mm512_mul_ps(_mm512_mul_ps(dhv, _mm512_sub_ps(one, z)), _mm512_fnmadd_ps(n, n, one));
                __m512 dr = _mm512_mul_ps(_mm512_mul_ps(dn, an), _mm512_fnmadd_ps(rg, rg, rg));
                __m512 dz = _mm512_mul_ps(_mm512_mul_ps(dhv, _mm512_sub_ps(previous, n)), _mm512_fnmadd_ps(z, z, z));
                _mm512_storeu_ps(dp + j, dr); _mm512_storeu_ps(dp + h + j, dz); _mm512_storeu_ps(dp + 2 * h + j, dn);
                _mm512_storeu_ps(da + j, dr); _mm512_storeu_ps(da + h + j, dz);
                _mm512_storeu_ps(da + 2 * h + j, _mm512_mul_ps(dn, rg));
                _mm512_storeu_ps(dhr + j, _mm512_mul_ps(dhv, z));
            }
        }
        if (t == 0) break;
        // dh_{t-1} = z dh_t (above) + da_t W_hh.
        product(dRecurrent + t * 3 * h, ds, w, 3 * h, product_out, m, h);
        for (long k = 0; k < m * h; k += 16)
            _mm512_storeu_ps(dh + k, _mm512_add_ps(_mm512_loadu_ps(dh + k), _mm512_loadu_ps(product_out + k)));
    }
}

#else

void astro_lstm_pack_recurrent(const float *w, long h, float *packed) { (void)w; (void)h; (void)packed; }
void astro_lstm_pack_input(const float *w, const float *biasIH, const float *biasHH, long h, long f,
                           float *packed, float *packedBias) {
    (void)w; (void)biasIH; (void)biasHH; (void)h; (void)f; (void)packed; (void)packedBias;
}
void astro_lstm_forward(const float *projected, long ps, const float *x, long xs, long features,
                        const float *packedIH, const float *packedBias, const float *packed,
                        float *states, long ys, int allSteps, float *gates, long gs,
                        long m, long steps, long h) {
    (void)projected; (void)ps; (void)x; (void)xs; (void)features; (void)packedIH; (void)packedBias;
    (void)packed; (void)states; (void)ys; (void)allSteps; (void)gates; (void)gs; (void)m; (void)steps; (void)h;
}
void astro_lstm_backward(const float *gates, long gs, const float *states, long ys, const float *gradient,
                         long grs, const float *w, float *dp, long dps, float *dw, float *scratch,
                         const float *x, long xs, long features, float *dWihT, float *dBias,
                         int gradientLastStepOnly, long m, long steps, long h) {
    (void)gradientLastStepOnly; (void)gates; (void)gs; (void)states; (void)ys; (void)gradient; (void)grs; (void)w; (void)dp;
    (void)dps; (void)dw; (void)scratch; (void)x; (void)xs; (void)features; (void)dWihT; (void)dBias;
    (void)m; (void)steps; (void)h;
}

void astro_gru_pack_recurrent(const float *w, long h, float *packed) { (void)w; (void)h; (void)packed; }
void astro_gru_forward(const float *projected, long ps, const float *packed, const float *biasHH,
                       const float *biasIH, float *states, long ys, float *gates, long gs, long m, long steps, long h) {
    (void)projected; (void)ps; (void)packed; (void)biasHH; (void)biasIH; (void)states; (void)ys; (void)gates; (void)gs;
    (void)m; (void)steps; (void)h;
}
void astro_gru_backward(const float *gates, long gs, const float *states, long ys, const float *gradient, long grs,
                        const float *w, float *dProjected, float *dRecurrent, long ds, float *scratch,
                        long m, long steps, long h) {
    (void)gates; (void)gs; (void)states; (void)ys; (void)gradient; (void)grs; (void)w; (void)dProjected;
    (void)dRecurrent; (void)ds; (void)scratch; (void)m; (void)steps; (void)h;
}

#endif
