// Many files read from several threads at once.
import FITS
import Foundation
import TestSupport
import XCTest

final class FITSConcurrencyTests: XCTestCase {
    func testInstalledCFITSIOIsReentrant() {
        // Debian's libcfitsio is built with --enable-reentrant; the module relies on it.
        XCTAssertTrue(FITSFile.isReentrant)
    }

    /// 8 threads read every fixture (the same paths too) 20 times; results equal a
    /// serial read and no error is lost.
    func testConcurrentReadsMatchSerialReads() throws {
        let names = ["bitpix8.fits", "bitpix16.fits", "bitpix-32.fits", "scaled_int16.fits", "rice.fits",
                     "gzip.fits", "cube.fits", "mef.fits", "gzipped.fits.gz"]
        let serial = try names.map { name -> [Float] in
            let file = try FITSFile(path: fixture(name))
            let image = try file.hdus().first { $0.kind == .image && $0.elementCount > 0 }!
            return try file.readImage(.index(image.index)).pixels
        }
        let rounds = 20
        let lock = NSLock()
        var mismatches: [String] = []
        DispatchQueue.concurrentPerform(iterations: names.count * rounds) { job in
            let index = job % names.count
            do {
                let file = try FITSFile(path: fixture(names[index]))
                let image = try file.hdus().first { $0.kind == .image && $0.elementCount > 0 }!
                let pixels = try file.readImage(.index(image.index)).pixels
                let same = zip(pixels, serial[index]).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
                if !same || pixels.count != serial[index].count {
                    lock.lock(); mismatches.append(names[index]); lock.unlock()
                }
                // Errors from other threads must stay typed and name their own file.
                _ = try? FITSFile(path: fixture("garbage.fits"))
            } catch {
                lock.lock(); mismatches.append("\(names[index]): \(error)"); lock.unlock()
            }
        }
        XCTAssertEqual(mismatches, [])
    }

    /// The same path opened, read and closed by many threads at once: cfitsio attaches
    /// the second handle to the first's buffers, which the per-path lock protects.
    func testSamePathOpenedConcurrently() throws {
        let expected = try FITSFile(path: fixture("rice.fits")).readImage(1).pixels
        let lock = NSLock()
        var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            do {
                let pixels = try FITSFile(path: fixture("rice.fits")).readImage(1).pixels
                if pixels != expected { lock.lock(); failures.append("different pixels"); lock.unlock() }
            } catch {
                lock.lock(); failures.append("\(error)"); lock.unlock()
            }
        }
        XCTAssertEqual(failures, [])
    }

    /// One `FITSFile` shared by threads: its lock serialises the HDU moves.
    func testSharedHandle() throws {
        let file = try FITSFile(path: fixture("mef.fits"))
        let sci = try file.readImage("SCI").pixels
        let lock = NSLock()
        var failures = 0
        DispatchQueue.concurrentPerform(iterations: 64) { job in
            let ok = (try? (job % 2 == 0 ? file.readImage("SCI").pixels == sci
                                         : file.readImage("ERR").pixels.allSatisfy { $0 == 2.5 })) ?? false
            if !ok { lock.lock(); failures += 1; lock.unlock() }
        }
        XCTAssertEqual(failures, 0)
    }
}
