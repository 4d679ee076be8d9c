import Foundation
import Preprocessing
import XCTest
@testable import Pipelines

final class ModelRecipeTests: XCTestCase {
    func testRecipeRoundTripsThroughItsJSONKeys() throws {
        var input = try PipelineLoader.parse("""
            task: regress
            input: {target_columns: [sersic_n, r_e], log_targets: [r_e]}
            model: {weights: x.safetensors}
            """, file: "r.yaml").input
        input.bands = ["g"]
        let recipe = ModelRecipe(task: .regress, stages: [.asinh(AsinhScaling(softening: 3))], input: input,
                                 inputShape: [1, 64, 64], targetNames: ["sersic_n", "r_e"], targetMean: [3, 0.1],
                                 targetStd: [1.5, 0.25], predictsUncertainty: true)
        // Shipped model files store "logTargets": the key must stay readable.
        XCTAssert(recipe.json.contains(#""logTargets":["r_e"]"#), recipe.json)
        let decoded = try ModelRecipe.decode(recipe.json, path: "m.safetensors")
        XCTAssertEqual(decoded, recipe)
        XCTAssertEqual(decoded.logTargets, ["r_e"])
        XCTAssertThrowsError(try ModelRecipe.decode("{}", path: "m.safetensors")) {
            XCTAssert($0.localizedDescription.hasPrefix("m.safetensors: its 'astrolabe.preprocessing' metadata is not"))
        }
    }
}
