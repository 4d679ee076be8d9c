// The switch between the AVX-512 C kernels (Sources/CKernels) and their portable loops.
import CKernels

/// Whether the AVX-512 C kernels (`Sources/CKernels`: the LSTM and GRU recurrences, the flow
/// sampler's spline inverse, the Gaussian-mixture images of `SceneFit`) run instead of their
/// portable loops: on by default wherever the CPU has AVX-512F and FMA. Process-wide on purpose (which kernels the CPU runs, not per-model state):
/// set once at start-up, and changed only by tests, to compare both paths while no kernel
/// runs, hence unsynchronised.
public enum AVX512Kernels {
    nonisolated(unsafe) public static var enabled = astro_avx512_available() != 0
}
