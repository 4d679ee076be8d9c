import FITS
import Foundation
import TestSupport
import XCTest
@testable import Preprocessing

final class FITSLoadingTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory("fitsload")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func write(_ name: String, pixels: [Float], shape: [Int], header: FITSHeader = FITSHeader()) throws {
        let writer = try FITSWriter(path: folder.appendingPathComponent(name).path)
        try writer.appendImage(pixels, shape: shape, header: header)
        try writer.commit()
    }

    func entry(_ name: String) -> CatalogEntry {
        CatalogEntry(url: folder.appendingPathComponent(name), name: name, label: nil, targets: [])
    }

    func testCubeLoadsAsChannelsWithHeaderValues() throws {
        // 4 wide, 3 high, 2 planes; pixel value = 100·plane + 10·y + x.
        var pixels = [Float]()
        for p in 0..<2 { for y in 0..<3 { for x in 0..<4 { pixels.append(Float(100 * p + 10 * y + x)) } } }
        try write("cube.fits", pixels: pixels, shape: [4, 3, 2],
                  header: FITSHeader([HeaderRecord("SKYSIG", .float(7.5)), HeaderRecord("BANDS", .string("g,r"))]))
        let sample = try Sample.load(entry("cube.fits"), input: FITSInput(bands: ["g", "r"]))
        XCTAssertEqual(sample.image.shape, [2, 3, 4])
        XCTAssertEqual(sample.image[1, 2, 3], 123)
        XCTAssertEqual(sample.image[0, 1, 0], 10)
        XCTAssertEqual(sample.header["SKYSIG"], 7.5)
        XCTAssertThrowsError(try Sample.load(entry("cube.fits"), input: FITSInput(bands: ["g", "r", "i"]))) {
            XCTAssertEqual($0 as? InputError, .wrongBandCount(file: "cube.fits", planes: 2, bands: ["g", "r", "i"]))
            XCTAssert($0.localizedDescription.contains("cube.fits: the image has 2 plane(s), but the input names 3 bands"))
        }
    }

    func testBandsFromSeparateFilesStackInOrderWithPerBandKeywords() throws {
        try write("obj1_g.fits", pixels: [1, 2, 3, 4], shape: [2, 2], header: FITSHeader([HeaderRecord("SKYSIG", .float(5))]))
        try write("obj1_r.fits", pixels: [5, 6, 7, 8], shape: [2, 2], header: FITSHeader([HeaderRecord("SKYSIG", .float(9))]))
        try write("obj1.fits", pixels: [0, 0, 0, 0], shape: [2, 2])
        let input = FITSInput(bands: ["r", "g"], bandFiles: ["g": "{stem}_g.fits", "r": "{stem}_r.fits"])
        let sample = try Sample.load(entry("obj1.fits"), input: input)
        XCTAssertEqual(sample.image.pixels, [5, 6, 7, 8, 1, 2, 3, 4])
        XCTAssertEqual(sample.header["SKYSIG_G"], 5)
        XCTAssertEqual(sample.header["SKYSIG_R"], 9)
        try write("obj2_g.fits", pixels: [1, 2, 3, 4, 5, 6], shape: [3, 2])
        try write("obj2_r.fits", pixels: [1, 2, 3, 4], shape: [2, 2])
        XCTAssertThrowsError(try Sample.load(entry("obj2.fits"), input: input)) {
            XCTAssert($0.localizedDescription.contains("band 'g' has shape [1, 2, 3], unlike the first band's [1, 2, 2]"),
                      $0.localizedDescription)
        }
    }

    func testMissingFileAndWrongHDUAreTypedFITSErrors() throws {
        XCTAssertThrowsError(try Sample.load(entry("absent.fits"))) {
            guard case .fileNotFound? = $0 as? FITSError else { return XCTFail("\($0)") }
        }
        try write("one.fits", pixels: [1], shape: [1, 1])
        XCTAssertThrowsError(try Sample.load(entry("one.fits"), input: FITSInput(hdu: "SCI"))) {
            guard case .hduNotFound? = $0 as? FITSError else { return XCTFail("\($0)") }
        }
    }

    /// Cutouts written from a FITS map match astropy's Cutout2D (pixels and CRPIX).
    func testCutoutFilesMatchCutout2DAndKeepTheWCS() throws {
        let url = Bundle.module.url(forResource: "wcs_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        // The fixture's WCS cards, as header records.
        let cards = fixture["header"] as! String
        var header = FITSHeader()
        for i in stride(from: 0, to: cards.count, by: 80) {
            let start = cards.index(cards.startIndex, offsetBy: i)
            let card = String(cards[start..<cards.index(start, offsetBy: 80)])
            let key = card.prefix(8).trimmingCharacters(in: .whitespaces)
            guard FITSHeader.isWCSKeyword(key), card.dropFirst(8).hasPrefix("= ") else { continue }
            let value = card.dropFirst(10).split(separator: "/")[0].trimmingCharacters(in: .whitespaces)
            header.set(key, value.hasPrefix("'") ? .string(value.trimmingCharacters(in: CharacterSet(charactersIn: "' ")))
                                                 : .float(Double(value)!))
        }
        try write("map.fits", pixels: (0..<2000).map(Float.init), shape: [50, 40], header: header)
        let mapPath = folder.appendingPathComponent("map.fits").path
        let cutouts = fixture["cutouts"] as! [[String: Any]]
        let positions = cutouts.enumerated().map { (id: "c\($0.offset)", position: CutoutPosition.sky(
            ra: $0.element["ra"] as! Double, dec: $0.element["dec"] as! Double)) }
        let out = folder.appendingPathComponent("cutouts")
        let result = try writeCutouts(mapPath: mapPath, positions: positions, size: 9, edges: .pad, folder: out)
        XCTAssertEqual(result.written, ["c0", "c1", "c2", "c3"])
        let mapWCS = try WorldCoordinates(header: try FITSFile(path: mapPath).header(), source: mapPath)
        for (k, c) in cutouts.enumerated() {
            // Cutout2D(size=(9, 8)) differs in width; compare the 9×9 cutout's columns where both exist.
            let file = try FITSFile(path: out.appendingPathComponent("c\(k).fits").path)
            let image = try file.readImage(0, as: Float.self)
            XCTAssertEqual(image.shape, [9, 9])
            let crpix = c["crpix"] as! [Double]
            XCTAssertEqual(image.header.double("CRPIX2"), crpix[1], "rows: same origin as Cutout2D")
            // Sky coordinates agree: pixel (i, j) of the cutout is the map's (i + x0, j + y0).
            let cutWCS = try WorldCoordinates(header: image.header, source: "c\(k)")
            let x0 = image.header.integer("CUTOUTX")!, y0 = image.header.integer("CUTOUTY")!
            let a = try cutWCS.world(x: 4, y: 4), b = try mapWCS.world(x: Double(4 + x0), y: Double(4 + y0))
            XCTAssertEqual(a.ra, b.ra, accuracy: 1e-10)
            XCTAssertEqual(a.dec, b.dec, accuracy: 1e-10)
            for j in 0..<9 { for i in 0..<9 {
                let v = image.pixels[j * 9 + i]
                let (mx, my) = (i + x0, j + y0)
                if (0..<50).contains(mx) && (0..<40).contains(my) { XCTAssertEqual(v, Float(my * 50 + mx)) } else { XCTAssert(v.isNaN) }
            } }
            XCTAssertEqual(try file.hduCount() == 2, !(0...41).contains(x0) || !(0...31).contains(y0),
                           "a MASK extension exactly when the cutout crosses the edge")
        }
        // .skip leaves out the cutouts that cross the edge; rewriting without overwrite is refused.
        let skipped = try writeCutouts(mapPath: mapPath, positions: positions, size: 9, edges: .skip,
                                       folder: folder.appendingPathComponent("strict"))
        XCTAssertEqual(skipped.written, ["c0", "c3"])
        XCTAssertThrowsError(try writeCutouts(mapPath: mapPath, positions: positions, size: 9, folder: out)) {
            guard case .outputExists? = $0 as? FITSError else { return XCTFail("\($0)") }
        }
    }
}
