// OpenBLAS runs kernels the CPU supports (blas_core.c): never the pre-AVX fallback on an AVX2 machine.
import Autograd
import Foundation
import XCTest

final class BLASKernelsTests: XCTestCase {
    func testAVX2MachinesDoNotRunPreAVXKernels() throws {
        if let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            throw XCTSkip("OPENBLAS_CORETYPE=\(forced) is the user's choice")
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags")
        }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        guard flags.contains("avx2") && flags.contains("fma") else { throw XCTSkip("the CPU has no AVX2 and FMA") }
        let preAVX: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano", "Katmai",
                                   "Coppermine", "Northwood", "Banias", "Athlon", "Opteron", "Opteron(SSE3)", "Barcelona"]
        XCTAssertFalse(preAVX.contains(BLASKernels.core), "OpenBLAS runs \(BLASKernels.core) kernels on an AVX2 CPU")
        if let note = BLASKernels.note {
            XCTAssert(note.contains(BLASKernels.core) && note.contains("OPENBLAS_CORETYPE"), note)
        }
        // And the products are right with them: a 33 x 17 by 17 x 29 product against a double-precision loop.
        let a = Tensor.randomNormal([33, 17], seed: 1), b = Tensor.randomNormal([17, 29], seed: 2)
        let c = a.matmul(b).scalars, x = a.scalars, y = b.scalars
        for i in 0..<33 {
            for j in 0..<29 {
                let exact = (0..<17).reduce(0.0) { $0 + Double(x[i * 17 + $1]) * Double(y[$1 * 29 + j]) }
                XCTAssertEqual(Double(c[i * 29 + j]), exact, accuracy: 1e-4)
            }
        }
    }
}
