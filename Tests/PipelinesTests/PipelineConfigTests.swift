import Foundation
import Preprocessing
import XCTest
@testable import Pipelines

final class PipelineConfigTests: XCTestCase {
    let valid = """
    name: classify-galaxies
    task: classify
    input:
      path: ../samples/morphology/catalog.csv
      label_column: label
      class_names: [elliptical, spiral, edge_on, irregular, star]
    stages:
      - fill_blanks: {fill: zero}
      - scale_by_noise: {keyword: SKYSIG}
      - asinh: {softening: 1.0}
    model:
      weights: ../samples/models/morphology.safetensors
    outputs:
      csv: predictions.csv
    run:
      batch_size: 32
      on_error: skip
    """

    func testValidPipelineDecodes() throws {
        let config = try PipelineLoader.parse(valid, file: "p.yaml")
        XCTAssertEqual(config.task, .classify)
        XCTAssertEqual(config.input.classNames.count, 5)
        XCTAssertEqual(config.stages, [.fillBlanks(.zero, appendMask: false),
                                       .scaleByNoise(.header(keyword: "SKYSIG", bandKeywords: [])),
                                       .asinh(AsinhScaling(softening: 1))])
        XCTAssertEqual(config.model.weights, "../samples/models/morphology.safetensors")
        XCTAssertNil(config.model.inferencePrecision, "the model file's precision unless the pipeline names one")
        XCTAssertEqual(try PipelineLoader.parse(valid, file: "p.yaml", overrides: ["model.inference_precision=bfloat16"])
                        .model.inferencePrecision, .bfloat16)
        XCTAssertEqual(config.run.batchSize, 32)
        XCTAssertEqual(config.outputs.csv, "predictions.csv")
        XCTAssertNil(config.tiling)
    }

    func testTrainBlockDecodes() throws {
        let config = try PipelineLoader.parse("""
        task: segment
        model:
          architecture: {name: unet, in_channels: 1, classes: 3, widths: [8, 16, 32]}
          train:
            data: ../data/seg
            epochs: 4
            optimizer: {sgd: {momentum: 0.8, nesterov: true}}
            loss: {pixel_cross_entropy: {dice_weight: 0.5}}
            schedule: {cosine: {warmup_epochs: 1}}
            save: model.safetensors
        """, file: "t.yaml")
        let train = try XCTUnwrap(config.model.train)
        XCTAssertEqual(train.optimizer, .sgd(momentum: 0.8, nesterov: true))
        XCTAssertEqual(train.loss, .pixelCrossEntropy(diceWeight: 0.5))
        XCTAssertEqual(train.schedule, .cosine(warmupEpochs: 1, minimum: 0))
        XCTAssertEqual(train.epochs, 4)
        XCTAssertEqual(config.tiling, TilingConfig(tile: 256, overlap: 32, weighting: .smooth), "segment tiles by default")
    }

    func testSetOverridesApplyBeforeValidation() throws {
        let config = try PipelineLoader.parse(valid, file: "p.yaml", overrides: [
            "run.batch_size=8", "stages[2].asinh.softening=3", "input.path=/data/new", "outputs.report=rep"])
        XCTAssertEqual(config.run.batchSize, 8)
        XCTAssertEqual(config.stages[2], .asinh(AsinhScaling(softening: 3)))
        XCTAssertEqual(config.input.path, "/data/new")
        XCTAssertEqual(config.outputs.report, "rep")
        XCTAssertThrowsError(try PipelineLoader.parse(valid, file: "p.yaml", overrides: ["run.batch_size=abc"])) {
            XCTAssert($0.localizedDescription.contains("run.batch_size"), $0.localizedDescription)
        }
    }

    /// Each mistake, the message it must give, and the line it must point at.
    func testErrorsGiveLineColumnKeyPathAndSuggestion() {
        let cases: [(from: String, to: String, message: String, line: Int)] = [
            ("task: classify", "task: clasify", "'clasify' is not a valid task in the pipeline. Did you mean 'classify'?", 2),
            ("  label_column: label", "  lable_column: label", "input.lable_column: Unknown key 'lable_column' in input. Did you mean 'label_column'?", 5),
            ("  - asinh: {softening: 1.0}", "  - asinhh: {softening: 1.0}", "stages[2]: Unknown stage 'asinhh'. Did you mean 'asinh'?", 10),
            ("  batch_size: 32", "  batch_size: many", "run.batch_size: expected an integer, found 'many'.", 16),
            ("  on_error: skip", "  on_error: ignore", "'ignore' is not a valid on_error in run", 17),
            ("outputs:", "output:", "Unknown key 'output' in the pipeline. Did you mean 'outputs'?", 13),
            ("  weights: ../samples/models/morphology.safetensors", "  weight: x", "Unknown key 'weight' in model. Did you mean 'weights'?", 12),
            ("  csv: predictions.csv", "  csv: [a, b]", "outputs.csv: expected a single value, found a list.", 14),
            ("  - fill_blanks: {fill: zero}", "  - fill_blanks: {fill: zero", "not valid YAML", 8),
            ("  - asinh: {softening: 1.0}", "  - asinh: {softening: 0}", "asinh: softening must be a positive number", 10),
            ("  weights: ../samples/models/morphology.safetensors",
             "  weights: ../samples/models/morphology.safetensors\n  inference_precision: float16",
             "'float16' is not a valid inference_precision in model. Did you mean 'bfloat16'? Choose one of: bfloat16, float32.", 13),
        ]
        for c in cases {
            let text = valid.replacingOccurrences(of: c.from, with: c.to)
            XCTAssertNotEqual(text, valid, "fixture line '\(c.from)' not found")
            XCTAssertThrowsError(try PipelineLoader.parse(text, file: "pipelines/p.yaml")) { error in
                let e = error as? ConfigError
                XCTAssertNotNil(e, "\(error)")
                let description = error.localizedDescription
                XCTAssert(description.contains(c.message), "\(c.to)\n  gave: \(description)\n  expected: \(c.message)")
                XCTAssert(description.hasPrefix("pipelines/p.yaml:"), description)
                if c.message != "not valid YAML" { XCTAssertEqual(e?.line, c.line, "\(c.to): \(description)") }
            }
        }
    }

    func testResNetStemOptionsDecode() throws {
        func architecture(_ text: String) throws -> ArchitectureConfig {
            let config = try PipelineLoader.parse("task: regress\nmodel:\n  architecture: \(text)\n  train: {save: m.safetensors}\n",
                                                  file: "a.yaml")
            return try XCTUnwrap(config.model.architecture)
        }
        let plain = try architecture("{name: resnet18, width: 16, classes: 8}")
        XCTAssertTrue(plain.stemPool, "torchvision's max-pool by default")
        XCTAssertFalse(plain.smallImageStem)
        let unpooled = try architecture("{name: resnet18, width: 16, stem_pool: false, classes: 8}")
        XCTAssertFalse(unpooled.stemPool)
        XCTAssertThrowsError(try architecture("{name: resnet18, stem_pol: false, classes: 8}")) {
            XCTAssert($0.localizedDescription.contains("stem_pol"), $0.localizedDescription)
        }
    }

    func testMissingRequiredPiecesAreNamed() {
        XCTAssertThrowsError(try PipelineLoader.parse("task: classify\n", file: "a.yaml")) {
            XCTAssert($0.localizedDescription.contains("a.yaml:1:1: the pipeline needs the key 'model'."), $0.localizedDescription)
        }
        XCTAssertThrowsError(try PipelineLoader.parse("model: {weights: a.safetensors}\n", file: "a.yaml")) {
            XCTAssert($0.localizedDescription.contains("needs a 'task'"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try PipelineLoader.parse("task: regress\nmodel: {architecture: {name: resnet18, classes: 4}}\n", file: "a.yaml")) {
            XCTAssert($0.localizedDescription.contains("must have a 'train' block"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try PipelineLoader.parse("task: regress\nmodel: {architecture: {name: resnet81, classes: 4}}\n", file: "a.yaml")) {
            XCTAssert($0.localizedDescription.contains("Did you mean 'resnet18'?"), $0.localizedDescription)
        }
        XCTAssertThrowsError(try PipelineLoader.load("/nonexistent/pipe.yaml")) {
            XCTAssert($0.localizedDescription.contains("/nonexistent/pipe.yaml: cannot read the pipeline file"))
        }
        XCTAssertThrowsError(try PipelineLoader.parse("", file: "e.yaml")) {
            XCTAssert($0.localizedDescription.contains("e.yaml: the file is empty"))
        }
    }

    /// Optimizer, loss and schedule names and their parameters are checked like every other key.
    func testTrainChoicesAreStrict() {
        let cases: [(train: String, message: String)] = [
            ("optimizer: adamm", "Unknown optimizer 'adamm'. Did you mean 'adam'? Known: sgd, adam, adamw, rmsprop."),
            ("optimizer: {sgd: {momentun: 0.9}}", "Unknown key 'momentun' in optimizer sgd. Did you mean 'momentum'?"),
            ("loss: {mse: {delta: 1}}", "Unknown key 'delta' in loss mse. loss mse takes no keys."),
            ("loss: {huber: {delat: 1}}", "Unknown key 'delat' in loss huber. Did you mean 'delta'?"),
            ("schedule: {cosine: {warmup: 2}}", "Unknown key 'warmup' in schedule cosine. Known keys: warmup_epochs, minimum."),
            ("schedule: onecycle", "Unknown schedule 'onecycle'. Did you mean 'one_cycle'?"),
            ("epoch: 3", "Unknown key 'epoch' in model.train. Did you mean 'epochs'?"),
        ]
        for c in cases {
            let text = "task: regress\nmodel:\n  architecture: {name: cnn, classes: 4}\n  train: {save: m.safetensors, \(c.train)}\n"
            XCTAssertThrowsError(try PipelineLoader.parse(text, file: "t.yaml"), c.train) {
                XCTAssert($0.localizedDescription.contains(c.message), "\(c.train)\n  gave: \($0.localizedDescription)")
            }
        }
        let config = try? PipelineLoader.parse(
            "task: regress\nmodel:\n  architecture: {name: cnn, classes: 4}\n"
            + "  train: {save: m.safetensors, loss: {huber: {delta: 2}}, schedule: {step: {every_epochs: 3}}}\n", file: "t.yaml")
        XCTAssertEqual(config?.model.train?.loss, .huber(delta: 2))
        for (loss, message) in [("{cross_entropy: {outside_weight: -0.5}}", "outside_weight must be a non-negative number, got -0.5"),
                                ("{cross_entropy: {label_smoothing: 1.5}}", "label_smoothing must be in [0, 1), got 1.5"),
                                ("{cross_entropy: {outside_wieght: 1}}", "Did you mean 'outside_weight'?")] {
            XCTAssertThrowsError(try PipelineLoader.parse(
                "task: classify\nmodel:\n  architecture: {name: cnn, classes: 4}\n  train: {save: m.safetensors, loss: \(loss)}\n",
                file: "t.yaml"), loss) { XCTAssert($0.localizedDescription.contains(message), $0.localizedDescription) }
        }
        let exposure = try? PipelineLoader.parse("task: classify\nmodel:\n  architecture: {name: cnn, classes: 4}\n"
                                                 + "  train: {save: m.safetensors, loss: {cross_entropy: {outside_weight: 0.5}}}\n",
                                                 file: "t.yaml")
        XCTAssertEqual(exposure?.model.train?.loss, .crossEntropy(labelSmoothing: 0, outsideWeight: 0.5))
        XCTAssertEqual(config?.model.train?.schedule, .step(everyEpochs: 3, gamma: 0.1))
    }
}
