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
                                 inputShape: [1, 64, 64],
                                 targetScaling: TargetScaling(names: ["sersic_n", "r_e"], mean: [3, 0.1], std: [1.5, 0.25],
                                                              logTargets: ["r_e"]),
                                 predictsUncertainty: true)
        // Shipped model files store "logTargets": the key must stay readable.
        XCTAssert(recipe.json.contains(#""logTargets":["r_e"]"#), recipe.json)
        let decoded = try ModelRecipe.decode(recipe.json, path: "m.safetensors")
        XCTAssertEqual(decoded, recipe)
        XCTAssertEqual(decoded.logTargets, ["r_e"])
        XCTAssertEqual(decoded.task, .regress)
        XCTAssertEqual(decoded.targetScaling, recipe.targetScaling)
        XCTAssertThrowsError(try ModelRecipe.decode("{}", path: "m.safetensors")) {
            XCTAssert($0.localizedDescription.hasPrefix("m.safetensors: its 'astrolabe.preprocessing' metadata is not"))
        }
    }
}
