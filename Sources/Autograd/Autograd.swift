// Tensor and reverse-mode autograd engine (Float32, NCHW) on OpenBLAS.
import CBLAS
