// `astrolabe bench --workload conv`: conv2d forward/backward GFLOP/s on the resnet18 and
// unet layer shapes of BENCH.md, next to OpenBLAS sgemm on the same machine.
// `bench/conv_reference.py` times the same shapes in PyTorch.
import Autograd
import CBLAS
import Foundation

/// One convolution layer shape from the benchmark networks.
struct ConvBenchShape {
    let net: String, layer: String
    let batch, inChannels, outChannels, size, kernel, stride, padding: Int
    var transposed = false

    var outSize: Int { transposed ? size * stride : (size + 2 * padding - kernel) / stride + 1 }
    /// Multiply-adds x 2 of the forward pass; the backward (input + weight gradients) is twice this.
    var forwardFlops: Double {
        let pixels = transposed ? size * size : outSize * outSize
        return 2 * Double(batch * inChannels * outChannels * kernel * kernel * pixels)
    }

    /// The layer shapes, deduplicated, in network order (mirrors bench/conv_reference.py).
    static let all: [ConvBenchShape] = {
        var s: [ConvBenchShape] = []
        func r(_ layer: String, _ c: Int, _ f: Int, _ size: Int, _ k: Int, _ st: Int, _ p: Int) {
            s.append(ConvBenchShape(net: "resnet18", layer: layer, batch: 32, inChannels: c, outChannels: f,
                                    size: size, kernel: k, stride: st, padding: p))
        }
        r("conv1", 3, 64, 64, 7, 2, 3)
        r("layer1.conv", 64, 64, 16, 3, 1, 1)
        r("layer2.0.conv1", 64, 128, 16, 3, 2, 1); r("layer2.conv", 128, 128, 8, 3, 1, 1); r("layer2.0.downsample", 64, 128, 16, 1, 2, 0)
        r("layer3.0.conv1", 128, 256, 8, 3, 2, 1); r("layer3.conv", 256, 256, 4, 3, 1, 1); r("layer3.0.downsample", 128, 256, 8, 1, 2, 0)
        r("layer4.0.conv1", 256, 512, 4, 3, 2, 1); r("layer4.conv", 512, 512, 2, 3, 1, 1); r("layer4.0.downsample", 256, 512, 4, 1, 2, 0)
        func u(_ layer: String, _ c: Int, _ f: Int, _ size: Int, _ k: Int = 3, transposed: Bool = false) {
            s.append(ConvBenchShape(net: "unet", layer: layer, batch: 8, inChannels: c, outChannels: f, size: size,
                                    kernel: transposed ? 2 : k, stride: transposed ? 2 : 1,
                                    padding: k == 3 && !transposed ? 1 : 0, transposed: transposed))
        }
        u("down0.conv1", 1, 16, 256); u("down0.conv2", 16, 16, 256)
        u("down1.conv1", 16, 32, 128); u("down1.conv2", 32, 32, 128)
        u("down2.conv1", 32, 64, 64); u("down2.conv2", 64, 64, 64)
        u("down3.conv1", 64, 128, 32); u("down3.conv2", 128, 128, 32)
        u("bottleneck.conv1", 128, 256, 16); u("bottleneck.conv2", 256, 256, 16)
        u("up0", 256, 128, 16, transposed: true); u("up_conv0.conv1", 256, 128, 32)
        u("up3", 32, 16, 128, transposed: true); u("up_conv3.conv1", 32, 16, 256)
        u("head", 16, 3, 256, 1)
        return s
    }()
}

extension Bench {
    func runConvBench(quick: Bool) throws {
        let reps = quick ? 3 : 10
        let threads = Threading.workerCount
        print(benchJSON(["workload": "conv", "conv_backend": ConvolutionBackend.current.rawValue,
                    "threads": threads]))
        for (m, n, k) in [(1024, 1024, 1024), (128, 4096, 1152), (512, 64, 4608)] {
            print(benchJSON(["workload": "conv", "kernel": "sgemm", "m": m, "n": n, "k": k, "threads": threads,
                        "gflops": round1(sgemmGFLOPS(m: m, n: n, k: k, reps: reps))]))
        }
        runElementwiseBench(reps: reps)
        for shape in ConvBenchShape.all {
            let (fwd, bwd, fwdMin, bwdMin) = time(shape, reps: reps)
            print(benchJSON(["workload": "conv", "net": shape.net, "layer": shape.layer,
                        "shape": "\(shape.batch)x\(shape.inChannels)x\(shape.size)x\(shape.size)->\(shape.outChannels) k\(shape.kernel) s\(shape.stride)\(shape.transposed ? " transposed" : "")",
                        "forward_ms": round2(fwd * 1e3), "forward_gflops": round1(shape.forwardFlops / fwd / 1e9),
                        "backward_ms": round2(bwd * 1e3), "backward_gflops": round1(2 * shape.forwardFlops / bwd / 1e9),
                        "forward_min_ms": round2(fwdMin * 1e3), "backward_min_ms": round2(bwdMin * 1e3),
                        "threads": threads]))
        }
    }

    /// Memory-bound ops of the unet's largest activation [8, 16, 256, 256] (not convolution, but
    /// timed with the same protocol so that the layer work sees whether they matter).
    private func runElementwiseBench(reps: Int) {
        let shape = [8, 16, 256, 256]
        let x = Tensor.randomNormal(shape, seed: 1, requiresGrad: true)
        let gamma = Tensor.ones([16], requiresGrad: true), beta = Tensor.zeros([16], requiresGrad: true)
        let runningMean = Tensor.zeros([16]), runningVariance = Tensor.ones([16])
        let ops: [(String, () -> Tensor)] = [
            ("relu", { x.relu() }),
            ("batchNorm", { x.batchNorm(weight: gamma, bias: beta, runningMean: runningMean,
                                        runningVariance: runningVariance, training: true) }),
            ("maxPool2d", { x.maxPool2d(kernelSize: 2) }),
            ("add", { x + x }),
        ]
        for (name, op) in ops {
            let gout = Tensor.randomNormal(op().shape, seed: 3)
            var forwardTimes: [Double] = [], backwardTimes: [Double] = []
            for rep in 0..<(reps + 1) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let y = op()
                let t1 = DispatchTime.now().uptimeNanoseconds
                x.zeroGrad(); gamma.zeroGrad(); beta.zeroGrad()
                let t2 = DispatchTime.now().uptimeNanoseconds
                y.backward(gradient: gout)
                let t3 = DispatchTime.now().uptimeNanoseconds
                if rep > 0 { forwardTimes.append(Double(t1 - t0) * 1e-6); backwardTimes.append(Double(t3 - t2) * 1e-6) }
            }
            print(benchJSON(["workload": "conv", "kernel": name, "shape": "8x16x256x256", "threads": Threading.workerCount,
                        "forward_ms": round2(PixelStatistics.median(forwardTimes)), "backward_ms": round2(PixelStatistics.median(backwardTimes)),
                        "forward_min_ms": round2(forwardTimes.min()!), "backward_min_ms": round2(backwardTimes.min()!)]))
        }
    }

    /// Median and minimum forward and backward (input and weight gradients) seconds of one layer.
    private func time(_ s: ConvBenchShape, reps: Int) -> (Double, Double, Double, Double) {
        let x = Tensor.randomNormal([s.batch, s.inChannels, s.size, s.size], seed: 1, requiresGrad: true)
        let w = Tensor.randomNormal(s.transposed ? [s.inChannels, s.outChannels, s.kernel, s.kernel]
                                                 : [s.outChannels, s.inChannels, s.kernel, s.kernel],
                                    standardDeviation: 0.05, seed: 2, requiresGrad: true)
        func forward() -> Tensor {
            s.transposed ? x.transposedConv2d(weight: w, stride: Size2(s.stride, s.stride))
                : x.conv2d(weight: w, stride: Size2(s.stride, s.stride), padding: .explicit(Size2(s.padding, s.padding)))
        }
        let gout = Tensor.randomNormal(forward().shape, seed: 3)
        var forwardTimes: [Double] = [], backwardTimes: [Double] = []
        for rep in 0..<(reps + 1) {   // the first round warms up buffers and caches
            let t0 = DispatchTime.now().uptimeNanoseconds
            let y = forward()
            let t1 = DispatchTime.now().uptimeNanoseconds
            x.zeroGrad(); w.zeroGrad()
            let t2 = DispatchTime.now().uptimeNanoseconds
            y.backward(gradient: gout)
            let t3 = DispatchTime.now().uptimeNanoseconds
            if rep > 0 {
                forwardTimes.append(Double(t1 - t0) * 1e-9)
                backwardTimes.append(Double(t3 - t2) * 1e-9)
            }
        }
        return (PixelStatistics.median(forwardTimes), PixelStatistics.median(backwardTimes), forwardTimes.min()!, backwardTimes.min()!)
    }

    /// Row-major `C = A B` throughput with OpenBLAS at the configured thread count.
    private func sgemmGFLOPS(m: Int, n: Int, k: Int, reps: Int) -> Double {
        let a = Tensor.randomNormal([m, k], seed: 1), b = Tensor.randomNormal([k, n], seed: 2)
        let c = Tensor.zeros([m, n])
        var times: [Double] = []
        for rep in 0..<(reps + 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                        a.storage.pointer, Int32(k), b.storage.pointer, Int32(n), 0, c.storage.pointer, Int32(n))
            let t1 = DispatchTime.now().uptimeNanoseconds
            if rep > 0 { times.append(Double(t1 - t0) * 1e-9) }
        }
        return 2 * Double(m * n * k) / PixelStatistics.median(times) / 1e9
    }

    private func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
    private func round2(_ v: Double) -> Double { (v * 100).rounded() / 100 }

}
