import AstroBase
import Cluster
import Foundation
import Training

extension Bench {
    /// `mpirun -np N astrolabe bench --workload allreduce`: the time to sum each benchmark
    /// network's gradients (float32, one per parameter) over the N processes, as data-parallel
    /// training does (MPI_Iallreduce in buckets of `DataParallel.defaultBucketBytes`, all
    /// started, then waited for): median
    /// of 10 after 2 warm-ups. Rank 0 prints one JSON line per network; one process prints 0.
    func runAllReduceBench(quick: Bool) throws {
        let comm = Communicator.world
        let repeats = quick ? 3 : 10
        let bucket = DataParallel.defaultBucketBytes / MemoryLayout<Float>.stride
        for model in BenchModel.allCases {
            let count = model.make(seed: 1).parameterCount
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 1)
            var times: [Double] = []
            for repeat_ in 0..<(repeats + 2) {
                try comm.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                var requests: [Communicator.Request] = []
                var offset = 0
                while offset < count {
                    let n = min(bucket, count - offset)
                    requests.append(try comm.startAllreduceSum(UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + n)])))
                    offset += n
                }
                for r in requests { try r.wait() }
                if repeat_ >= 2 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
            }
            if comm.rank == 0 {
                print(benchJSON(["workload": "allreduce", "model": model.rawValue, "processes": comm.size,
                                 "parameters": count, "megabytes": rounded(Double(count * 4) / 1e6, 2),
                                 "buckets": (count + bucket - 1) / bucket,
                                 "allreduce_ms": rounded(PixelStatistics.median(times), 3)]))
            }
        }
    }
}
