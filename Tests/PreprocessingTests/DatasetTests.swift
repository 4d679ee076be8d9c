import Foundation
import TestSupport
import XCTest
@testable import Preprocessing

final class DatasetTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory("dataset")
        for i in 0..<10 { try Data().write(to: folder.appendingPathComponent(String(format: "img_%02d.fits", i))) }
        try Data().write(to: folder.appendingPathComponent("notes.txt"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func writeCatalog(_ text: String, name: String = "catalog.csv") throws -> URL {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A sample whose pixels encode its file index, so order and content can be checked.
    static let load: BatchLoader.Load = { entry in
        let index = Float(entry.name.dropFirst(4).prefix(2))!
        return Sample(image: PlanarImage(height: 2, width: 2, repeating: index), name: entry.name)
    }

    func testCatalogReadsLabelsByIndexOrNameAndTargets() throws {
        let url = try writeCatalog("file,label,mag\nimg_00.fits,2,19.5\nimg_01.fits,spiral,20\n")
        let catalog = try Catalog.csv(url, labelColumn: "label", classNames: ["elliptical", "spiral", "edge_on"],
                                      targetColumns: ["mag"])
        XCTAssertEqual(catalog.entries.map(\.label), [2, 1])
        XCTAssertEqual(catalog.entries.map(\.targets), [[19.5], [20]])
        XCTAssertEqual(catalog.entries[0].url, folder.appendingPathComponent("img_00.fits"))
        XCTAssertEqual(catalog.entries[0].name, "img_00.fits")
    }

    /// `outside` (none of the classes) is read as `OutsideClass.label` only when the caller trains
    /// with outlier exposure; otherwise the row is refused with what to do.
    func testCatalogReadsOutsideRowsOnlyWhenAsked() throws {
        let url = try writeCatalog("file,label\nimg_00.fits,spiral\nimg_01.fits,outside\n")
        let classes = ["elliptical", "spiral"]
        let catalog = try Catalog.csv(url, labelColumn: "label", classNames: classes, allowOutside: true)
        XCTAssertEqual(catalog.entries.map(\.label), [1, -1])
        XCTAssertThrowsError(try Catalog.csv(url, labelColumn: "label", classNames: classes)) {
            XCTAssert($0.localizedDescription.contains("line 3: column 'label' holds 'outside'"), $0.localizedDescription)
            XCTAssert($0.localizedDescription.contains("outside_weight"), $0.localizedDescription)
        }
        let numeric = try writeCatalog("file,label\nimg_00.fits,-1\n", name: "numeric.csv")
        XCTAssertThrowsError(try Catalog.csv(numeric, labelColumn: "label", classNames: classes)) {
            XCTAssert($0.localizedDescription.contains("expected a class index in 0..<2"), $0.localizedDescription)
        }
    }

    func testCatalogErrorsNameFileLineAndColumn() throws {
        let cases: [(String, [String], String)] = [
            ("file,lable\nimg_00.fits,1\n", [], "has no column 'label'. Did you mean 'lable'?"),
            ("file,label\nimg_00.fits,1\nmissing.fits,0\n", [], "line 3: the file 'missing.fits' does not exist"),
            ("file,label\nlost1.fits,1\nimg_00.fits,1\nlost2.fits,0\n", [],
             "2 listed files do not exist (line 2: lost1.fits; line 4: lost2.fits)."),
            ("file,label\nimg_00.fits,spiraal\n", ["spiral"], "line 2: column 'label' holds 'spiraal', expected a class index or one of spiral"),
            ("file,label\nimg_00.fits,7\n", ["a", "b"], "expected a class index in 0..<2"),
        ]
        for (text, classes, expected) in cases {
            let url = try writeCatalog(text)
            XCTAssertThrowsError(try Catalog.csv(url, labelColumn: "label", classNames: classes)) { error in
                XCTAssert(error.localizedDescription.contains(expected), "\(error.localizedDescription)")
                XCTAssert(error.localizedDescription.contains(url.path))
            }
        }
        XCTAssertThrowsError(try Catalog.csv(folder.appendingPathComponent("nope.csv"))) {
            XCTAssertEqual($0 as? DatasetError, .catalogNotFound(path: self.folder.appendingPathComponent("nope.csv").path))
        }
    }

    func testFolderAndGlobAndSplit() throws {
        let all = try Catalog.resolve(folder.path)
        XCTAssertEqual(all.count, 10, "only *.fits files")
        XCTAssertEqual(try Catalog.resolve(folder.appendingPathComponent("img_0[1-3].fits").path).count, 3)
        XCTAssertThrowsError(try Catalog.resolve(folder.appendingPathComponent("*.fz").path)) {
            XCTAssert($0.localizedDescription.contains("no file matches '*.fz'"))
        }
        let (train, validation) = all.split(validationFraction: 0.2, seed: 4)
        XCTAssertEqual(train.count, 8)
        XCTAssertEqual(validation.count, 2)
        XCTAssertEqual(Set(train.entries.map(\.name) + validation.entries.map(\.name)), Set(all.entries.map(\.name)))
        XCTAssertEqual(all.split(validationFraction: 0.2, seed: 4).validation, validation)
    }

    func testLoaderBatchesInOrderWithoutShuffling() throws {
        let loader = BatchLoader(catalog: try Catalog.resolve(folder.path), batchSize: 4, training: false,
                                 load: Self.load)
        var firstPixels = [Float]()
        var shapes = [[Int]]()
        while let batch = try loader.next() {
            shapes.append(batch.shape)
            firstPixels += stride(from: 0, to: batch.inputs.count, by: 4).map { batch.inputs[$0] }
        }
        XCTAssertEqual(shapes, [[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]])
        XCTAssertEqual(firstPixels, (0..<10).map(Float.init))
        XCTAssertNil(try loader.next())
    }

    func testShufflingIsSeededPerEpoch() throws {
        let catalog = try Catalog.resolve(folder.path)
        func order(seed: UInt64, epoch: Int) throws -> [String] {
            let loader = BatchLoader(catalog: catalog, batchSize: 3, training: true, seed: seed, epoch: epoch,
                                     load: Self.load)
            var names = [String]()
            while let batch = try loader.next() { names += batch.names }
            return names
        }
        let a = try order(seed: 1, epoch: 0)
        XCTAssertEqual(a, try order(seed: 1, epoch: 0))
        XCTAssertNotEqual(a, try order(seed: 1, epoch: 1))
        XCTAssertEqual(Set(a).count, 10)
    }

    func testFailingFileStopsOrIsSkipped() throws {
        let catalog = try Catalog.resolve(folder.path)
        struct Corrupt: Error, LocalizedError { var errorDescription: String? { "corrupt header" } }
        let flaky: BatchLoader.Load = { entry in
            if entry.name == "img_05.fits" { throw Corrupt() }
            return try Self.load(entry)
        }
        let strict = BatchLoader(catalog: catalog, batchSize: 4, training: false, load: flaky)
        XCTAssertNotNil(try strict.next())
        XCTAssertThrowsError(try strict.next()) {
            XCTAssertEqual($0.localizedDescription, "img_05.fits: corrupt header")
        }
        let lenient = BatchLoader(catalog: catalog, batchSize: 4, training: false, onFailure: .skip, load: flaky)
        var names = [String]()
        while let batch = try lenient.next() { names += batch.names }
        XCTAssertEqual(names.count, 9)
        XCTAssertFalse(names.contains("img_05.fits"))
        XCTAssertEqual(lenient.failures.map(\.file), ["img_05.fits"])
    }

    func testShapeMismatchIsReportedWithTheFile() throws {
        let catalog = try Catalog.resolve(folder.path)
        let mixed: BatchLoader.Load = { entry in
            var sample = try Self.load(entry)
            if entry.name == "img_02.fits" { sample.image = PlanarImage(height: 3, width: 2) }
            return sample
        }
        let loader = BatchLoader(catalog: catalog, batchSize: 5, training: false, load: mixed)
        XCTAssertThrowsError(try loader.next()) {
            XCTAssert($0.localizedDescription.contains("img_02.fits: image shape [1, 3, 2]"), $0.localizedDescription)
        }
    }

    func testPrefetchIsBounded() throws {
        let catalog = Catalog(entries: (0..<40).map {
            CatalogEntry(url: URL(fileURLWithPath: "/x/img_\(String(format: "%02d", $0)).fits"),
                         name: String(format: "img_%02d.fits", $0), label: nil, targets: [])
        })
        final class Counter: @unchecked Sendable { let lock = NSLock(); var loaded = 0 }
        let counter = Counter()
        let loader = BatchLoader(catalog: catalog, batchSize: 4, training: false, prefetch: 2) { entry in
            counter.lock.lock(); counter.loaded += 1; counter.lock.unlock()
            return try Self.load(entry)
        }
        _ = try loader.next()
        Thread.sleep(forTimeInterval: 0.2)
        counter.lock.lock(); let loaded = counter.loaded; counter.lock.unlock()
        // One batch taken, at most two more made ahead: 12 samples, not 40.
        XCTAssertLessThanOrEqual(loaded, 12)
        XCTAssertGreaterThanOrEqual(loaded, 8)
        loader.cancel()
    }
}
