// `astrolabe bench --workload fits`: the two FITS data-path workloads of BENCH.md.
import AstroBase
import Dispatch
import FITS
import Foundation

/// Why a benchmark could not run.
enum BenchError: Error, LocalizedError {
    case notImplemented(String)
    case failed(String)

    var errorDescription: String? {
        switch self {
        case let .notImplemented(workload): return "bench workload \(workload) is not implemented yet"
        case let .failed(reason): return "bench failed: \(reason)"
        }
    }
}

extension Bench {
    /// Prints `fits_read_cutouts_per_s` and `fits_read_big_mb_per_s` (BENCH.md) as JSON lines.
    ///
    /// The data are generated into a temporary directory first, outside the timing:
    /// 5,000 float32 64 x 64 cutouts, one file each (`--quick`: 500), and one 4096 x 4096
    /// float32 image (`--quick`: 1024 x 1024). Each figure is the best of 3 runs (1 with
    /// `--quick`); the files are in the page cache, as in `bench/fits_reference.py`.
    func runFITSBench(quick: Bool) throws {
        let cutoutCount = quick ? 500 : 5_000
        let bigSide = quick ? 1_024 : 4_096
        let repeats = quick ? 1 : 3
        // BENCH.md: 2 threads (the machine's cores); ASTROLABE_BENCH_THREADS overrides it.
        let threads = ProcessInfo.processInfo.environment["ASTROLABE_BENCH_THREADS"].flatMap { Int($0) } ?? 2
        // ASTROLABE_BENCH_FITS_DIR: use existing data (cutouts/*.fits and big.fits, as
        // bench/fits_reference.py writes them) so that both sides read the same files.
        let given = ProcessInfo.processInfo.environment["ASTROLABE_BENCH_FITS_DIR"]
        let directory = given.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("astrolabe-bench-fits-\(getpid())")
        let cutouts = directory.appendingPathComponent("cutouts")
        let bigPath = directory.appendingPathComponent("big.fits").path
        if given == nil {
            try FileManager.default.createDirectory(at: cutouts, withIntermediateDirectories: true)
            try writeCutouts(count: cutoutCount, into: cutouts)
            try writeBigImage(side: bigSide, to: bigPath)
        }
        defer { if given == nil { try? FileManager.default.removeItem(at: directory) } }

        try checkAsinh(original: (0..<4096).map { Float($0 - 2048) * 0.37 } + [0, 1e-3, -1e-5, 3e20, 0.5])
        var cutoutSeconds = Double.infinity
        var fileCount = cutoutCount
        var checksum = 0.0
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            let batch = try readCutoutBatch(directory: cutouts.path, threads: threads)
            fileCount = batch.count / 4096
            cutoutSeconds = min(cutoutSeconds, seconds(since: start))
            checksum = Double(batch[0]) + Double(batch[batch.count - 1])
        }
        var bigSeconds = Double.infinity
        var bigShape = [bigSide, bigSide]
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            let image = try FITSFile(path: bigPath).readImage()
            bigSeconds = min(bigSeconds, seconds(since: start))
            checksum += Double(image.pixels[image.pixels.count / 2])
            bigShape = image.shape
        }
        guard checksum.isFinite else { throw BenchError.failed("non-finite pixels read") }
        let megabytes = Double(bigShape.reduce(4, *)) / 1e6
        print("{\"fits_read_cutouts_per_s\":\(rounded(Double(fileCount) / cutoutSeconds)),"
              + "\"files\":\(fileCount),\"shape\":[64,64],\"threads\":\(threads)}")
        print("{\"fits_read_big_mb_per_s\":\(rounded(megabytes / bigSeconds)),"
              + "\"shape\":[\(bigShape.map(String.init).joined(separator: ","))],\"threads\":1}")
    }

    /// Reads every `.fits` file of `directory` (sorted by name) into one contiguous
    /// `[N, 64, 64]` batch and applies `asinh` scaling, on `threads` workers.
    ///
    /// cfitsio is reentrant (`FITSFile.isReentrant`), so the workers open and read
    /// different files at once; each writes its own slice of the batch, in place.
    func readCutoutBatch(directory: String, threads: Int) throws -> [Float] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".fits") }.sorted()
        guard !names.isEmpty else { throw BenchError.failed("no .fits files in \(directory)") }
        let pixelsPerImage = 64 * 64
        let errors = ErrorBox()
        // Uninitialised (every element is read into) and on 2 MiB pages: zeroing and
        // faulting in 82 MB of 4 KiB pages would cost a tenth of the whole read.
        let batch = [Float](unsafeUninitializedCapacity: names.count * pixelsPerImage) { buffer, count in
            count = buffer.count
            adviseHugePages(UnsafeMutableRawBufferPointer(buffer))
            let base = buffer.baseAddress!
            DispatchQueue.concurrentPerform(iterations: threads) { worker in
                // Contiguous chunks: each worker fills one region of the batch.
                let chunk = (names.count + threads - 1) / threads
                let range = min(worker * chunk, names.count)..<min((worker + 1) * chunk, names.count)
                for index in range {
                    let slice = UnsafeMutableBufferPointer(start: base + index * pixelsPerImage, count: pixelsPerImage)
                    do {
                        try FITSFile(path: directory + "/" + names[index]).readImage(into: slice)
                    } catch {
                        errors.record(error)
                        return
                    }
                    asinhInPlace(slice)
                }
            }
        }
        if let error = errors.first { throw error }
        return batch
    }

    /// Checks the fast `asinh` against the C library's on the values of one image.
    func checkAsinh(original: [Float]) throws {
        var scaled = original
        scaled.withUnsafeMutableBufferPointer { asinhInPlace($0) }
        for (value, result) in zip(original, scaled) where abs(result - asinh(value)) > 1e-6 * max(1, abs(result)) {
            throw BenchError.failed("asinh(\(value)) = \(result), libm says \(asinh(value))")
        }
    }

    private func writeCutouts(count: Int, into directory: URL) throws {
        var generator = SeededGenerator(seed: 7)
        var pixels = [Float](repeating: 0, count: 64 * 64)
        for index in 0..<count {
            for offset in pixels.indices {
                let x = Float(offset % 64) - 32, y = Float(offset / 64) - 32
                pixels[offset] = 100 * exp(-(x * x + y * y) / 50) + generator.nextUnit() * 5
            }
            let writer = try FITSWriter(path: directory.appendingPathComponent(String(format: "cutout%05d.fits", index)).path)
            try writer.appendImage(pixels, shape: [64, 64])
            try writer.commit()
        }
    }

    private func writeBigImage(side: Int, to path: String) throws {
        var generator = SeededGenerator(seed: 11)
        let pixels = (0..<(side * side)).map { _ in generator.nextUnit() * 1000 }
        let writer = try FITSWriter(path: path)
        try writer.appendImage(pixels, shape: [side, side])
        try writer.commit()
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    private func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}

/// `asinh` of every element, in place, in a loop the compiler vectorises.
///
/// libm's `asinhf` is a scalar call of about 4 ns, as long as cfitsio's whole read of a
/// 64 x 64 cutout. Here `asinh(x) = sign(x) log(|x| + sqrt(x² + 1))` with Cephes' `logf`
/// polynomial (exponent and mantissa from the bit pattern) and no branches, so each
/// lane computes both sides of every select. Near 0 the sum `|x| + sqrt(x² + 1)` rounds
/// to 1 ulp of 1: below |x| = 1e-2 the series `x - x³/6` is used instead. Above 1e18,
/// where x² overflows, `log(2|x|)`. Error: below 2e-7 relative (checked on bench data
/// against libm in `checkAsinh`).
@inline(__always)
func asinhInPlace(_ buffer: UnsafeMutableBufferPointer<Float>) {
    guard let base = buffer.baseAddress else { return }
    for index in 0..<buffer.count {
        let x = base[index]
        let a = abs(x)
        let huge = a > 1e18
        let argument = huge ? a + a : a + (a * a + 1).squareRoot()
        var result = fastLog(argument)
        let series = a - a * a * a * (1 / 6)
        result = a < 1e-2 ? series : result
        base[index] = x < 0 ? -result : result
    }
}

/// Natural logarithm of a positive normal float (Cephes `logf`, about 1 ulp).
@inline(__always)
func fastLog(_ value: Float) -> Float {
    let bits = value.bitPattern
    var exponent = Float(Int32(bitPattern: (bits >> 23) & 0xff) - 126)
    var m = Float(bitPattern: (bits & 0x007f_ffff) | 0x3f00_0000)  // [0.5, 1)
    let below = m < 0.707_106_78
    exponent = below ? exponent - 1 : exponent
    m = below ? m + m - 1 : m - 1
    let z = m * m
    var y: Float = 7.037_683_629_2e-2
    y = y * m - 1.151_461_031_0e-1
    y = y * m + 1.167_699_874_0e-1
    y = y * m - 1.242_014_084_6e-1
    y = y * m + 1.424_932_278_7e-1
    y = y * m - 1.666_805_766_5e-1
    y = y * m + 2.000_071_476_5e-1
    y = y * m - 2.499_999_399_3e-1
    y = y * m + 3.333_333_117_4e-1
    y = y * m * z
    y += -2.121_944_40e-4 * exponent
    y += -0.5 * z
    return m + y + 0.693_359_375 * exponent
}

/// The first error raised by any worker.
private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?

    func record(_ error: Error) {
        lock.lock()
        if first == nil { first = error }
        lock.unlock()
    }
}
