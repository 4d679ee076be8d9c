// The processes of an MPI job (Open MPI), or a single process when the tool was not
// started by mpirun/srun: every collective is then the identity, so the CLI and the tests
// behave exactly as without MPI.
import CMPI
import Foundation

/// Why a collective operation failed.
public enum ClusterError: Error, LocalizedError, Equatable {
    /// An MPI call returned an error (with MPI's own message).
    case mpi(call: String, message: String)

    public var errorDescription: String? {
        switch self {
        case let .mpi(call, message): return "\(call) failed: \(message)"
        }
    }
}

/// `MPI_COMM_WORLD` of this job, or one process. All collectives are called by every rank
/// in the same order (MPI's rule), from the training thread. Open MPI moves a non-blocking
/// collective on only inside MPI calls, so the gradient sums (`startAllreduceSum`) run on a
/// communicator of their own (a duplicate of the world's) and a progress thread calls
/// `MPI_Test` on them while the training thread computes (`MPI_THREAD_MULTIPLE`); without
/// that thread level they progress only when the training thread tests or waits.
public final class Communicator: @unchecked Sendable {
    /// This process's place in the job: 0..<size.
    public let rank: Int
    public let size: Int
    /// Ranks on this machine and this process's index among them (for sharing the cores).
    public let localRank: Int
    public let localSize: Int
    /// Whether MPI was initialised (the process was launched by mpirun or srun).
    public let isLaunched: Bool
    /// Longest wait for one collective before the job is ended as hung: a rank that stopped
    /// answering (a dead node, a deadlock) ends the job with a message instead of a hang.
    /// `ASTROLABE_MPI_TIMEOUT` (seconds, default 600).
    public var timeout: TimeInterval
    private var comm: MPI_Comm?
    /// The gradient sums' communicator (progressed by `progress`).
    private var gradientComm: MPI_Comm?
    /// The thread that completes the gradient sums in the background (nil: one process, or
    /// MPI without `MPI_THREAD_MULTIPLE`).
    private var progress: ProgressThread?
    private var finalized = false

    /// The job's communicator, initialised on first use: MPI starts only when the
    /// environment says this process was launched by an MPI launcher.
    public static let world = Communicator(environment: ProcessInfo.processInfo.environment)

    /// Whether `environment` is that of a process started by mpirun (Open MPI) or by a PMIx
    /// launcher (srun --mpi=pmix).
    public static func launchedByMPI(_ environment: [String: String]) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    /// A single process (no MPI).
    public init() {
        rank = 0; size = 1; localRank = 0; localSize = 1; isLaunched = false; timeout = 600
    }

    private init(environment: [String: String]) {
        timeout = environment["ASTROLABE_MPI_TIMEOUT"].flatMap(TimeInterval.init) ?? 600
        guard Self.launchedByMPI(environment) else {
            rank = 0; size = 1; localRank = 0; localSize = 1; isLaunched = false
            return
        }
        var provided: Int32 = 0
        var argc: Int32 = 0
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let status = MPI_Init_thread(&argc, &argv, astro_mpi_thread_multiple(), &provided)
        guard status == MPI_SUCCESS else {
            FileHandle.standardError.write(Data("astrolabe: MPI_Init_thread failed (\(status)); is Open MPI installed?\n".utf8))
            exit(1)
        }
        let world = astro_mpi_comm_world()
        // Errors come back as return codes (turned into ClusterError), not as MPI's own abort.
        MPI_Comm_set_errhandler(world, astro_mpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        var local: MPI_Comm? = nil
        var lr: Int32 = 0, ls: Int32 = 1
        if MPI_Comm_split_type(world, astro_mpi_comm_type_shared(), r, astro_mpi_info_null(), &local) == MPI_SUCCESS {
            MPI_Comm_rank(local, &lr)
            MPI_Comm_size(local, &ls)
            MPI_Comm_free(&local)
        }
        rank = Int(r); size = Int(s); localRank = Int(lr); localSize = Int(ls)
        isLaunched = true
        comm = world
        if provided >= astro_mpi_thread_multiple() && size > 1 && environment["ASTROLABE_MPI_PROGRESS"] != "0" {
            var duplicate: MPI_Comm? = nil
            if MPI_Comm_dup(world, &duplicate) == MPI_SUCCESS {
                MPI_Comm_set_errhandler(duplicate, astro_mpi_errors_return())
                gradientComm = duplicate
                let pause = environment["ASTROLABE_MPI_POLL_US"].flatMap(UInt32.init) ?? 20
                progress = ProgressThread(pauseMicroseconds: pause)
            }
        }
        atexit { Communicator.world.finalize() }
    }

    /// Ends MPI (once; every rank, after its last collective).
    public func finalize() {
        guard isLaunched, !finalized else { return }
        finalized = true
        progress?.stop()
        MPI_Finalize()
    }

    /// Ends every process of the job with `code` after printing `message` (a rank that
    /// cannot go on must not leave the others waiting in a collective).
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("astrolabe: rank \(rank) of \(size): \(message)\n".utf8))
        if isLaunched && !finalized { MPI_Abort(astro_mpi_comm_world(), code) }
        exit(code)
    }

    // MARK: - Requests

    /// A collective in flight (`MPI_I...`): `wait()` completes it.
    public final class Request {
        let communicator: Communicator
        let operation: String
        var handle: MPI_Request?
        var done: Bool
        /// Set when the progress thread owns the handle: it completes the operation and
        /// records the outcome here (guarded by its lock).
        var progress: ProgressThread?
        var completed = false
        var failure: Int32 = MPI_SUCCESS
        var finishedAt: UInt64 = 0
        /// When the operation was started and when it was seen complete (uptime, ns).
        public let startedAt = DispatchTime.now().uptimeNanoseconds
        public private(set) var completedAt: UInt64?

        init(_ communicator: Communicator, _ operation: String, handle: MPI_Request?) {
            self.communicator = communicator
            self.operation = operation
            self.handle = handle
            done = handle == nil
        }

        /// Lets MPI progress the operation; true once it completed.
        @discardableResult
        public func test() throws -> Bool {
            guard !done else { return true }
            if let progress {
                let (finished, status) = progress.outcome(of: self)
                if finished {
                    completedAt = progress.completionTime(of: self)
                    try communicator.check(status, operation)
                }
                done = finished
                return done
            }
            var flag: Int32 = 0
            try communicator.check(MPI_Test(&handle, &flag, astro_mpi_status_ignore()), operation)
            done = flag != 0
            if done { completedAt = DispatchTime.now().uptimeNanoseconds }
            return done
        }

        /// Blocks until the operation completed, or ends the job after `timeout` seconds.
        /// Open MPI moves a non-blocking collective on only inside MPI calls: an operation the
        /// progress thread owns is waited for on its condition; otherwise this polls without
        /// sleeping (as `MPI_Wait` does), yielding the CPU to other runnable threads.
        public func wait() throws {
            if let progress {
                guard !done else { return }
                guard let status = progress.wait(for: self, timeout: communicator.timeout) else {
                    communicator.abort("waited \(Int(communicator.timeout)) s in \(operation): another rank stopped answering "
                        + "(it died or hangs); ending the job (ASTROLABE_MPI_TIMEOUT sets the limit)")
                }
                done = true
                completedAt = progress.completionTime(of: self)
                try communicator.check(status, operation)
                return
            }
            let start = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while try !test() {
                spins += 1
                sched_yield()
                if spins % 1024 == 0 {
                    let waited = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    if waited > communicator.timeout {
                        communicator.abort("waited \(Int(waited)) s in \(operation): another rank stopped answering "
                            + "(it died or hangs); ending the job (ASTROLABE_MPI_TIMEOUT sets the limit)")
                    }
                }
            }
        }
    }

    func check(_ status: Int32, _ call: String) throws {
        guard status != MPI_SUCCESS else { return }
        var length: Int32 = 0
        var text = [CChar](repeating: 0, count: Int(astro_mpi_max_error_string()) + 1)
        MPI_Error_string(status, &text, &length)
        throw ClusterError.mpi(call: call, message: String(cString: text))
    }

    // MARK: - Collectives

    /// Starts summing `buffer` over all ranks in place (`MPI_Iallreduce`); the buffer must
    /// stay alive and untouched until the request completed.
    /// With a progress thread the operation runs on the gradient communicator and the thread
    /// completes it while the caller computes.
    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> Request {
        guard let comm, size > 1, buffer.count > 0 else { return Request(self, "MPI_Iallreduce", handle: nil) }
        var request: MPI_Request? = astro_mpi_request_null()
        try check(MPI_Iallreduce(astro_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), astro_mpi_float(),
                                 astro_mpi_sum(), gradientComm ?? comm, &request), "MPI_Iallreduce")
        let result = Request(self, "MPI_Iallreduce of \(buffer.count) floats", handle: request)
        progress?.adopt(result)
        return result
    }

    /// Whether a progress thread completes the gradient sums in the background.
    public var progressesInBackground: Bool { progress != nil }

    /// Sums `buffer` over all ranks in place.
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try startAllreduceSum(buffer).wait()
    }

    /// Sums doubles over all ranks.
    public func allreduceSum(_ values: [Double]) throws -> [Double] {
        guard let comm, size > 1, !values.isEmpty else { return values }
        var out = values
        var request: MPI_Request? = astro_mpi_request_null()
        try out.withUnsafeMutableBufferPointer { b in
            try check(MPI_Iallreduce(astro_mpi_in_place(), b.baseAddress, Int32(b.count), astro_mpi_double(),
                                     astro_mpi_sum(), comm, &request), "MPI_Iallreduce")
            try Request(self, "MPI_Iallreduce of \(b.count) doubles", handle: request).wait()
        }
        return out
    }

    /// Copies `root`'s bytes into every rank's `buffer` (same size everywhere).
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int = 0) throws {
        guard let comm, size > 1, buffer.count > 0 else { return }
        var request: MPI_Request? = astro_mpi_request_null()
        try check(MPI_Ibcast(buffer.baseAddress, Int32(buffer.count), astro_mpi_byte(), Int32(root), comm, &request),
                  "MPI_Ibcast")
        try Request(self, "MPI_Ibcast of \(buffer.count) bytes", handle: request).wait()
    }

    /// `root`'s floats on every rank.
    public func broadcast(_ values: inout [Float], root: Int = 0) throws {
        try values.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    /// Waits until every rank arrived.
    public func barrier() throws {
        guard let comm, size > 1 else { return }
        var request: MPI_Request? = astro_mpi_request_null()
        try check(MPI_Ibarrier(comm, &request), "MPI_Ibarrier")
        try Request(self, "MPI_Ibarrier", handle: request).wait()
    }

    /// Every rank's bytes, in rank order, on every rank (`MPI_Allgatherv`; sizes may differ).
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        guard let comm, size > 1 else { return [bytes] }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(bytes.count)
        var request: MPI_Request? = astro_mpi_request_null()
        try counts.withUnsafeMutableBufferPointer { c in
            try check(MPI_Iallgather(&mine, 1, astro_mpi_int(), c.baseAddress, 1, astro_mpi_int(), comm, &request),
                      "MPI_Iallgather")
            try Request(self, "MPI_Iallgather of sizes", handle: request).wait()
        }
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<size { displacements[i] = displacements[i - 1] + counts[i - 1] }
        let total = Int(displacements[size - 1] + counts[size - 1])
        var all = [UInt8](repeating: 0, count: Swift.max(1, total))
        try bytes.withUnsafeBytes { send in
            try all.withUnsafeMutableBytes { receive in
                try check(MPI_Iallgatherv(send.baseAddress, mine, astro_mpi_byte(), receive.baseAddress, counts,
                                          displacements, astro_mpi_byte(), comm, &request), "MPI_Iallgatherv")
                try Request(self, "MPI_Iallgatherv of \(total) bytes", handle: request).wait()
            }
        }
        return (0..<size).map { Array(all[Int(displacements[$0])..<Int(displacements[$0] + counts[$0])]) }
    }

    /// Every rank's bytes, in rank order, on `root` (nil on the others).
    public func gather(_ bytes: [UInt8], root: Int = 0) throws -> [[UInt8]]? {
        let all = try allGather(bytes)
        return rank == root ? all : nil
    }
}

/// Completes non-blocking collectives in the background: Open MPI (without its own
/// asynchronous progress) moves an `MPI_Iallreduce` on only inside MPI calls, so without this
/// thread a bucket started during backward would wait until the training thread next called
/// MPI. The thread owns the handles it adopted: it calls `MPI_Test` on each in turn, pausing
/// `pauseMicroseconds` between rounds in which nothing completed (so that it takes little
/// CPU from the computation), and records each outcome for `Request.test`/`wait`.
final class ProgressThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var active: [Communicator.Request] = []
    private var stopping = false
    private let pause: UInt32
    private var thread: Thread?
    private let exited = DispatchSemaphore(value: 0)

    init(pauseMicroseconds: UInt32) {
        pause = pauseMicroseconds
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "astrolabe MPI progress"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Hands `request`'s handle to the thread.
    func adopt(_ request: Communicator.Request) {
        guard !request.done else { return }
        condition.lock()
        request.progress = self
        active.append(request)
        condition.signal()
        condition.unlock()
    }

    /// When the thread saw `request` complete (uptime, ns).
    func completionTime(of request: Communicator.Request) -> UInt64 {
        condition.lock(); defer { condition.unlock() }
        return request.finishedAt
    }

    /// Whether `request` completed, and MPI's status for it.
    func outcome(of request: Communicator.Request) -> (Bool, Int32) {
        condition.lock(); defer { condition.unlock() }
        return (request.completed, request.failure)
    }

    /// Waits until `request` completed: MPI's status, or nil after `timeout` seconds.
    func wait(for request: Communicator.Request, timeout: TimeInterval) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock(); defer { condition.unlock() }
        while !request.completed {
            if !condition.wait(until: deadline) && !request.completed { return nil }
        }
        return request.failure
    }

    /// Ends the thread once nothing is in flight (before `MPI_Finalize`).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        _ = exited.wait(timeout: .now() + 1)
    }

    private func loop() {
        while true {
            condition.lock()
            while active.isEmpty && !stopping { condition.wait() }
            if stopping && active.isEmpty { condition.unlock(); exited.signal(); return }
            let current = active
            condition.unlock()
            var finished: [(Communicator.Request, Int32)] = []
            for request in current {
                var flag: Int32 = 0
                let status = MPI_Test(&request.handle, &flag, astro_mpi_status_ignore())
                if status != MPI_SUCCESS || flag != 0 { finished.append((request, status)) }
            }
            if finished.isEmpty {
                if pause > 0 { usleep(pause) } else { sched_yield() }
                continue
            }
            let now = DispatchTime.now().uptimeNanoseconds
            condition.lock()
            for (request, status) in finished {
                request.finishedAt = now
                request.completed = true
                request.failure = status
            }
            let done = Set(finished.map { ObjectIdentifier($0.0) })
            active.removeAll { done.contains(ObjectIdentifier($0)) }
            condition.broadcast()
            condition.unlock()
        }
    }
}
