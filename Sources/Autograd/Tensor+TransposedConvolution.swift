// Transposed 2-D convolution (the adjoint of conv2d), fused for the same reasons.

extension Tensor {
    /// Transposed convolution, as PyTorch's `conv_transpose2d`: each input pixel scatters
    /// `weight[c]` into the output.
    ///
    /// - `self` (input): `[N, Cin, H, W]`; `weight`: `[Cin, Cout, KH, KW]` (PyTorch's layout);
    ///   `bias`: `[Cout]`.
    /// - Returns `[N, Cout, H', W']`, `H' = (H - 1) s - 2p + d(KH - 1) + outputPadding + 1`.
    public func transposedConv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Size2 = 0,
                                 outputPadding: Size2 = 0, dilation: Size2 = 1) -> Tensor {
        precondition(rank == 4 && weight.rank == 4 && weight.shape[0] == shape[1],
                     "transposedConv2d: input \(shape) and weight \(weight.shape) must be [N, Cin, H, W] and [Cin, Cout, KH, KW]")
        let (n, cin, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let cout = weight.shape[1]
        if let bias { precondition(bias.shape == [cout], "transposedConv2d: bias \(bias.shape) for \(cout) channels") }
        let kernel = Size2(weight.shape[2], weight.shape[3])
        let oh = (h - 1) * stride.height - 2 * padding.height + dilation.height * (kernel.height - 1) + outputPadding.height + 1
        let ow = (w - 1) * stride.width - 2 * padding.width + dilation.width * (kernel.width - 1) + outputPadding.width + 1
        precondition(oh > 0 && ow > 0, "transposedConv2d: output size [\(oh), \(ow)] from input \(shape)")
        // The convolution whose adjoint this is: it maps the [Cout, H', W'] output to [H, W].
        let g = ConvGeometry(channels: cout, height: oh, width: ow, kernel: kernel, stride: stride,
                             padTop: padding.height, padLeft: padding.width, dilation: dilation, outH: h, outW: w)
        if let out = convolvedWithOneDNN(transposed: true, weight: weight, bias: bias, outputShape: [n, cout, oh, ow],
                                         stride: stride, dilation: dilation, padBefore: padding,
                                         padAfter: Size2(padding.height - outputPadding.height, padding.width - outputPadding.width)) {
            return out
        }
        let out = Tensor(repeating: 0, shape: [n, cout, oh, ow])
        let x = storage.pointer, wp = weight.storage.pointer, o = out.storage.pointer
        let inStride = cin * h * w, outStride = cout * oh * ow, hw = h * w
        Threading.parallelChunks(n, costPerItem: 1 << 20) { worker, images in
            let cols = Workspace.shared.buffer(worker: worker, slot: 0, count: g.patch * hw)
            for i in images {
                gemm(transA: true, m: g.patch, n: hw, k: cin, a: wp, lda: g.patch, b: x + i * inStride, ldb: hw,
                     c: cols, ldc: hw)
                col2im(cols, ld: hw, g, o + i * outStride)
                if let bias {
                    let b = bias.storage.pointer
                    for c in 0..<cout {
                        let row = o + i * outStride + c * oh * ow, v = b[c]
                        for p in 0..<(oh * ow) { row[p] += v }
                    }
                }
            }
        }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let (saved, inShape, needsInputGradient) = (savedForBackward, shape, tracksGradient)
        return Tensor.record("transposedConv2d", inputs, out) { gOut in
            let input = saved.values()
            defer { withExtendedLifetime(input) {} }
            let x = input.storage.pointer
            let gp = gOut.storage.pointer
            let dx = needsInputGradient ? Tensor(uninitializedShape: inShape) : nil
            let needW = weight.tracksGradient
            let workers = Swift.max(1, Swift.min(Threading.workerCount, n))
            let dwParts = needW ? (0..<workers).map { _ in Tensor(repeating: 0, shape: weight.shape) } : []
            Threading.parallelChunks(n, costPerItem: 1 << 20) { worker, images in
                let cols = Workspace.shared.buffer(worker: worker, slot: 0, count: g.patch * hw)
                for i in images {
                    im2col(gp + i * outStride, g, cols, ld: hw)
                    if let dx {
                        gemm(m: cin, n: hw, k: g.patch, a: wp, lda: g.patch, b: cols, ldb: hw,
                             c: dx.storage.pointer + i * inStride, ldc: hw)
                    }
                    if needW {
                        gemm(transB: true, m: cin, n: g.patch, k: hw, a: x + i * inStride, lda: hw, b: cols, ldb: hw,
                             beta: 1, c: dwParts[worker].storage.pointer, ldc: g.patch)
                    }
                }
            }
            var dw: Tensor? = nil
            if needW {
                dw = dwParts[0]
                for part in dwParts.dropFirst() {
                    let p = dw!.storage.pointer, q = part.storage.pointer
                    for j in 0..<weight.count { p[j] += q[j] }
                }
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias { grads.append(bias.tracksGradient ? gOut.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }
}
