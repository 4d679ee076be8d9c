// The MPI communicator as the transport of data-parallel training.
import Cluster
import Training

extension Communicator.Request: PendingReduction {}

extension Communicator: TrainingCollectives {
    public func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingReduction {
        try startAllreduceSum(buffer)
    }

    public func sum(_ values: [Double]) throws -> [Double] { try allreduceSum(values) }
}
