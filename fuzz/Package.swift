// swift-tools-version:6.0
// libFuzzer harnesses for the FITS reader and the pipeline loader. A package of its
// own, so that the main package's `swift build` never sees the sanitizer flags:
//
//     cd fuzz && swift build -Xswiftc -sanitize=fuzzer,address   (scripts/fuzz.sh does it)
//
// Each harness is an executable that hands libFuzzer's driver one function.
import PackageDescription

let harnesses: [(name: String, product: String)] = [
    ("fuzz-fits-header", "FITS"), ("fuzz-fits-image", "FITS"), ("fuzz-fits-table", "FITS"),
    ("fuzz-fits-compressed", "FITS"), ("fuzz-pipeline", "Pipelines"),
]

let package = Package(
    name: "AstrolabeFuzz",
    dependencies: [.package(name: "Astrolabe", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "FITS", package: "Astrolabe")]),
    ] + harnesses.map { harness in
        .executableTarget(name: harness.name,
                          dependencies: ["FuzzSupport", .product(name: harness.product, package: "Astrolabe")])
    },
    swiftLanguageModes: [.v5]
)
