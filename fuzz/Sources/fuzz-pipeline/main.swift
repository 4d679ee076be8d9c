// The pipeline YAML loader: any text gives a config or a located ConfigError.
import Foundation
import FuzzSupport
import Pipelines

runFuzzer { bytes in
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        _ = try PipelineLoader.parse(text, file: "fuzz.yaml")
        _ = try? PipelineLoader.parse(text, file: "fuzz.yaml", overrides: ["model.train.epochs=2"])
    } catch let error as ConfigError {
        _ = error.errorDescription
    } catch {
        _ = (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }
}
