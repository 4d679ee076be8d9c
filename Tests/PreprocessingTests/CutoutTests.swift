import Foundation
import XCTest
@testable import Preprocessing

/// WCS conversions and cutouts against astropy.wcs and astropy.nddata.Cutout2D.
final class CutoutTests: XCTestCase {
    var fixture: [String: Any]!

    override func setUpWithError() throws {
        let url = Bundle.module.url(forResource: "wcs_fixtures", withExtension: "json", subdirectory: "Fixtures")!
        fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
    }

    func wcs() throws -> WorldCoordinates {
        try WorldCoordinates(headerCards: fixture["header"] as! String, source: "fixture.fits")
    }

    func testPixelAndSkyConversionsMatchAstropy() throws {
        let wcs = try wcs()
        let points = fixture["points"] as! [[String: Double]]
        XCTAssertEqual(points.count, 4)
        for p in points {
            let (ra, dec) = try wcs.world(x: p["x"]!, y: p["y"]!)
            XCTAssertEqual(ra, p["ra"]!, accuracy: 1e-9)
            XCTAssertEqual(dec, p["dec"]!, accuracy: 1e-9)
            let (x, y) = try wcs.pixel(ra: p["ra"]!, dec: p["dec"]!)
            XCTAssertEqual(x, p["x"]!, accuracy: 1e-6)
            XCTAssertEqual(y, p["y"]!, accuracy: 1e-6)
        }
    }

    func testSkyCutoutsMatchCutout2DPixelsAndWCS() throws {
        let wcs = try wcs()
        let image = PlanarImage(height: 40, width: 50, pixels: (0..<2000).map(Float.init))
        for c in fixture["cutouts"] as! [[String: Any]] {
            let size = c["size"] as! [Int]
            let cut = try XCTUnwrap(image.cutout(ra: c["ra"] as! Double, dec: c["dec"] as! Double, wcs: wcs,
                                                 height: size[0], width: size[1]))
            let expected = FixtureValues.floats(c["data"])
            XCTAssertEqual(cut.image.pixels.count, expected.count)
            for (a, b) in zip(cut.image.pixels, expected) {
                if b.isNaN { XCTAssert(a.isNaN) } else { XCTAssertEqual(a, b) }
            }
            // The cutout's WCS: CRPIX shifted by the cutout's origin, as Cutout2D's.
            let crpix = c["crpix"] as! [Double]
            XCTAssertEqual(25.5 - Double(cut.originX), crpix[0])
            XCTAssertEqual(20.5 - Double(cut.originY), crpix[1])
            XCTAssertEqual(cut.mask != nil, expected.contains { $0.isNaN })
        }
    }

    func testSkipRefusesCutoutsThatCrossTheEdge() {
        let image = PlanarImage(height: 10, width: 10)
        XCTAssertNil(image.cutout(centerX: 1, centerY: 5, height: 4, width: 4, edges: .skip))
        XCTAssertNotNil(image.cutout(centerX: 5, centerY: 5, height: 4, width: 4, edges: .skip))
        XCTAssertNil(image.cutout(centerX: 50, centerY: 5, height: 4, width: 4), "no overlap at all")
    }

    func testHeaderWithoutWCSIsATypedError() {
        let card = { (s: String) in s.padding(toLength: 80, withPad: " ", startingAt: 0) }
        let header = card("SIMPLE  =                    T") + card("NAXIS   =                    2") + card("END")
        XCTAssertThrowsError(try WorldCoordinates(headerCards: header, source: "plain.fits")) { error in
            XCTAssertEqual(error as? WCSError, .noWCS(source: "plain.fits"))
            XCTAssert(error.localizedDescription.contains("plain.fits: the header has no world coordinate system"))
        }
    }
}
