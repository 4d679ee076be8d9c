// `astrolabe bench --workload fits`: the two FITS data-path workloads of BENCH.md.
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
        let threads = 2
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("astrolabe-bench-fits-\(getpid())")
        let cutouts = directory.appendingPathComponent("cutouts")
        try FileManager.default.createDirectory(at: cutouts, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        try writeCutouts(count: cutoutCount, into: cutouts)
        let bigPath = directory.appendingPathComponent("big.fits").path
        try writeBigImage(side: bigSide, to: bigPath)

        var cutoutSeconds = Double.infinity
        var checksum = 0.0
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            let batch = try readCutoutBatch(directory: cutouts.path, threads: threads)
            cutoutSeconds = min(cutoutSeconds, seconds(since: start))
            checksum = Double(batch[0]) + Double(batch[batch.count - 1])
        }
        var bigSeconds = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            let image = try FITSFile(path: bigPath).readImage()
            bigSeconds = min(bigSeconds, seconds(since: start))
            checksum += Double(image.pixels[image.pixels.count / 2])
        }
        guard checksum.isFinite else { throw BenchError.failed("non-finite pixels read") }
        let megabytes = Double(bigSide * bigSide * 4) / 1e6
        print("{\"fits_read_cutouts_per_s\":\(rounded(Double(cutoutCount) / cutoutSeconds)),"
              + "\"files\":\(cutoutCount),\"shape\":[64,64],\"threads\":\(threads)}")
        print("{\"fits_read_big_mb_per_s\":\(rounded(megabytes / bigSeconds)),"
              + "\"shape\":[\(bigSide),\(bigSide)],\"threads\":1}")
    }

    /// Reads every `.fits` file of `directory` (sorted by name) into one contiguous
    /// `[N, 64, 64]` batch and applies `asinh` scaling, on `threads` workers.
    ///
    /// cfitsio is reentrant (`FITSFile.isReentrant`), so the workers open and read
    /// different files at once; each writes its own slice of the batch, in place.
    func readCutoutBatch(directory: String, threads: Int) throws -> [Float] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".fits") }.sorted()
        let pixelsPerImage = 64 * 64
        var batch = [Float](repeating: 0, count: names.count * pixelsPerImage)
        let errors = ErrorBox()
        batch.withUnsafeMutableBufferPointer { buffer in
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
                    for offset in 0..<pixelsPerImage { slice[offset] = asinh(slice[offset]) }
                }
            }
        }
        if let error = errors.first { throw error }
        return batch
    }

    private func writeCutouts(count: Int, into directory: URL) throws {
        var generator = SplitMix64(seed: 7)
        var pixels = [Float](repeating: 0, count: 64 * 64)
        for index in 0..<count {
            for offset in pixels.indices {
                let x = Float(offset % 64) - 32, y = Float(offset / 64) - 32
                pixels[offset] = 100 * exp(-(x * x + y * y) / 50) + generator.nextFloat() * 5
            }
            let writer = try FITSWriter(path: directory.appendingPathComponent(String(format: "cutout%05d.fits", index)).path)
            try writer.appendImage(pixels, shape: [64, 64])
            try writer.commit()
        }
    }

    private func writeBigImage(side: Int, to path: String) throws {
        var generator = SplitMix64(seed: 11)
        let pixels = (0..<(side * side)).map { _ in generator.nextFloat() * 1000 }
        let writer = try FITSWriter(path: path)
        try writer.appendImage(pixels, shape: [side, side])
        try writer.commit()
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    private func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }
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

/// A small seeded generator (SplitMix64), so bench data are the same on every run.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
