import Autograd
import FITS
import NN
import Foundation
import Preprocessing
import TestSupport
import XCTest
@testable import Pipelines

/// Outputs never leave the output folder, never overwrite an input, and a run's
/// journal is locked against a second writer.
final class OutputSafetyTests: XCTestCase {
    let segmentationModel = repositoryRoot.appendingPathComponent("samples/models/segmentation.safetensors").path

    /// A 64×64 noise map with a header the shipped segmentation recipe reads (SKYSIG).
    func writeMap(_ url: URL, seed: UInt64 = 1) throws {
        var rng = SeededGenerator(seed: seed)
        let pixels = (0..<(64 * 64)).map { _ in Float(10 * rng.normal()) }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try FITSWriter(path: url.path)
        try writer.appendImage(pixels, shape: [64, 64], header: FITSHeader([HeaderRecord("SKYSIG", .float(10))]))
        try writer.commit()
    }

    /// A segmentation pipeline in `folder` on `input`, small tiles so it runs fast.
    func runner(_ folder: URL, input: String, output: String, extra: String = "") throws -> PipelineRunner {
        let pipeline = folder.appendingPathComponent("seg.yaml")
        try """
        task: segment
        model: {weights: \(segmentationModel)}
        tiling: {tile: 64, overlap: 16}
        \(extra)
        """.write(to: pipeline, atomically: true, encoding: .utf8)
        return try PipelineRunner(pipelinePath: pipeline.path, options: RunOptions(input: input, output: output, quiet: true))
    }

    func testDotDotInACatalogNameStaysInsideTheOutputFolder() throws {
        let root = try makeTemporaryDirectory("dotdot")
        let map = root.appendingPathComponent("x.fits")
        try writeMap(map)
        let before = try Data(contentsOf: map)
        let catalogs = root.appendingPathComponent("cat")
        try FileManager.default.createDirectory(at: catalogs, withIntermediateDirectories: true)
        try "file\n../x.fits\n".write(to: catalogs.appendingPathComponent("catalog.csv"), atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("out")
        // OUTPUT/../x.fits would be the input itself.
        let run = try runner(root, input: catalogs.appendingPathComponent("catalog.csv").path, output: out.path).predictAll()
        XCTAssertEqual(run.summary.failed, 0)
        XCTAssertEqual(try Data(contentsOf: map), before, "the input is untouched")
        let written = try FITSFile(path: out.appendingPathComponent("x.fits").path).readImage(0, as: Float.self)
        XCTAssertEqual(written.shape, [64, 64])
        XCTAssertEqual(run.results.map(\.prediction), [.segmentation(SegmentationMap(output: "x.fits"))])
    }

    func testAbsoluteCatalogNamesAreKeptInsideTheOutputFolder() throws {
        let root = try makeTemporaryDirectory("absolute")
        let map = root.appendingPathComponent("maps/y.fits")
        try writeMap(map)
        try "file\n\(map.path)\n".write(to: root.appendingPathComponent("catalog.csv"), atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("out")
        _ = try runner(root, input: root.appendingPathComponent("catalog.csv").path, output: out.path).predictAll()
        let relative = OutputSafety.relativeOutputName(map.path)
        XCTAssertFalse(relative.hasPrefix("/"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(relative).path))
        XCTAssertEqual(OutputSafety.relativeOutputName("../../a/./b/../c.fits"), "a/b/c.fits")
    }

    func testOutputFolderEqualToTheInputFolderIsRefusedBeforeAnyWork() throws {
        let root = try makeTemporaryDirectory("samefolder")
        let maps = root.appendingPathComponent("maps")
        try writeMap(maps.appendingPathComponent("a.fits"))
        let before = try Data(contentsOf: maps.appendingPathComponent("a.fits"))
        XCTAssertThrowsError(try runner(root, input: maps.path, output: maps.path).predictAll()) { error in
            guard case let PipelineError.outputIsInput(output, input)? = error as? PipelineError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(output, maps.appendingPathComponent("a.fits").path)
            XCTAssertEqual(input, maps.appendingPathComponent("a.fits").path)
            XCTAssert(error.localizedDescription.contains("would overwrite the input"), error.localizedDescription)
        }
        XCTAssertEqual(try Data(contentsOf: maps.appendingPathComponent("a.fits")), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: maps.path), ["a.fits"], "nothing was written")
    }

    func testAnOutputFolderLinkedToTheInputFolderIsRefused() throws {
        let root = try makeTemporaryDirectory("linked")
        let maps = root.appendingPathComponent("maps")
        try writeMap(maps.appendingPathComponent("a.fits"))
        let link = root.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: maps)
        XCTAssertThrowsError(try runner(root, input: maps.path, output: link.path).predictAll()) {
            XCTAssertEqual($0 as? PipelineError, .outputIsInput(output: link.appendingPathComponent("a.fits").path,
                                                               input: maps.appendingPathComponent("a.fits").path))
        }
        XCTAssertEqual(OutputSafety.real(link.appendingPathComponent("new/b.fits")),
                       OutputSafety.real(maps) + "/new/b.fits", "links resolve through folders that do not exist yet")
    }

    func testAnOutputFileThatIsAnInputIsRefused() throws {
        let root = try makeTemporaryDirectory("outputisinput")
        let morphology = root.appendingPathComponent("morphology")
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("samples/morphology"), to: morphology)
        let catalog = morphology.appendingPathComponent("catalog.csv")
        let before = try Data(contentsOf: catalog)
        let pipeline = root.appendingPathComponent("p.yaml")
        try "task: classify\nmodel: {weights: \(repositoryRoot.path)/samples/models/morphology.safetensors}\n"
            .write(to: pipeline, atomically: true, encoding: .utf8)
        let first = try XCTUnwrap(try Catalog.resolve(catalog.path).entries.first).url
        for output in [catalog, first] {
            let runner = try PipelineRunner(pipelinePath: pipeline.path,
                                            options: RunOptions(input: catalog.path, output: output.path, quiet: true))
            XCTAssertThrowsError(try runner.predictAll()) {
                XCTAssertEqual($0 as? PipelineError, .outputIsInput(output: output.path, input: output.path))
            }
        }
        XCTAssertEqual(try Data(contentsOf: catalog), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: morphology.appendingPathComponent(".catalog.csv.journal").path))
    }

    func testTwoNamesForOneOutputAreRefused() throws {
        let root = try makeTemporaryDirectory("collision")
        try writeMap(root.appendingPathComponent("cat/a.fits"))
        try writeMap(root.appendingPathComponent("a.fits"))
        // Both names become OUTPUT/a.fits.
        try "file\na.fits\n../a.fits\n".write(to: root.appendingPathComponent("cat/catalog.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try runner(root, input: root.appendingPathComponent("cat/catalog.csv").path,
                                        output: root.appendingPathComponent("out").path).predictAll()) {
            XCTAssert($0.localizedDescription.contains("would both be written there"), $0.localizedDescription)
        }
    }

    func testClassNamesComeFromThePipelineOrTheRecipe() throws {
        let root = try makeTemporaryDirectory("classes")
        try writeMap(root.appendingPathComponent("maps/m.fits"))
        let out = root.appendingPathComponent("out")
        _ = try runner(root, input: root.appendingPathComponent("maps").path, output: out.path,
                       extra: "input: {class_names: [sky, point, extended]}").predictAll()
        let header = try FITSFile(path: out.appendingPathComponent("m.fits").path).header()
        XCTAssertEqual(header["CLASSES"], .string("0=sky,1=point,2=extended"))
        XCTAssertThrowsError(try runner(root, input: root.appendingPathComponent("maps").path, output: out.path,
                                        extra: "input: {class_names: [sky, source]}").predictAll()) {
            XCTAssert($0.localizedDescription.contains("it has 3 classes, but input.class_names"), $0.localizedDescription)
        }

        // A model file whose recipe names the classes, run by a pipeline that does not.
        let file = try ModelFile(contentsOf: URL(fileURLWithPath: segmentationModel))
        var recipe = try ModelRecipe.decode(try XCTUnwrap(file.preprocessing), path: segmentationModel)
        recipe.classNames = ["background", "star", "galaxy"]
        let named = root.appendingPathComponent("named.safetensors")
        try ModelFile(model: file.model, architecture: file.architecture, preprocessing: recipe.json).write(to: named)
        let predictor = try Predictor(contentsOf: named)
        XCTAssertEqual(predictor.classNames, ["background", "star", "galaxy"])
        try predictor.segment(CatalogEntry(url: root.appendingPathComponent("maps/m.fits"), name: "m.fits"),
                              to: root.appendingPathComponent("m2.fits"),
                              tiling: TilingConfig(tile: 64, overlap: 16, weighting: .smooth), batchSize: 2, probabilities: false)
        XCTAssertEqual(try FITSFile(path: root.appendingPathComponent("m2.fits").path).header()["CLASSES"],
                       .string("0=background,1=star,2=galaxy"))
    }

    func testSegmentationReadsTheRecipesBands() throws {
        // A 2-plane cube against a 1-band model: refused, naming the file and both shapes.
        let root = try makeTemporaryDirectory("bands")
        let cube = root.appendingPathComponent("maps/cube.fits")
        try FileManager.default.createDirectory(at: cube.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try FITSWriter(path: cube.path)
        try writer.appendImage([Float](repeating: 1, count: 2 * 64 * 64), shape: [64, 64, 2],
                               header: FITSHeader([HeaderRecord("SKYSIG", .float(10))]))
        try writer.commit()
        XCTAssertThrowsError(try runner(root, input: root.appendingPathComponent("maps").path,
                                        output: root.appendingPathComponent("out").path).predictAll()) {
            XCTAssertEqual($0 as? PipelineError, .inputMismatch(file: "cube.fits", received: [2, 64, 64], expected: [1, -1, -1],
                                                               model: self.segmentationModel))
        }
        // Bands named in the pipeline must match the cube's planes, as for every other task:
        // the file is recorded as failed, with the reader's message.
        let run = try runner(root, input: root.appendingPathComponent("maps").path,
                             output: root.appendingPathComponent("out2").path, extra: "input: {bands: [g, r, i]}").predictAll()
        XCTAssertEqual(run.summary.failed, 1)
        let errors = try String(contentsOfFile: try XCTUnwrap(run.summary.errorsFile), encoding: .utf8)
        XCTAssert(errors.contains("cube.fits: the image has 2 plane(s), but the input names 3 bands"), errors)
    }

    func testASecondRunnerOnTheSameOutputStopsNamingTheHolder() throws {
        let root = try makeTemporaryDirectory("lock")
        try writeMap(root.appendingPathComponent("maps/m.fits"))
        let out = root.appendingPathComponent("out")
        let holder = try RunJournal(url: root.appendingPathComponent(".out.journal"), resume: true)
        XCTAssertThrowsError(try runner(root, input: root.appendingPathComponent("maps").path, output: out.path).predictAll()) {
            XCTAssertEqual($0 as? PipelineError, .outputBusy(output: out.path, journal: root.appendingPathComponent(".out.journal").path,
                                                            pid: getpid()))
            XCTAssert($0.localizedDescription.contains("(PID \(getpid()))"), $0.localizedDescription)
        }
        try holder.finish()
        let run = try runner(root, input: root.appendingPathComponent("maps").path, output: out.path).predictAll()
        XCTAssertEqual(run.summary.done, 1, "the lock is released when the holder finishes")
    }
}
