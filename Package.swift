// swift-tools-version:6.0
import PackageDescription

// Hot numeric targets are built with -Ounchecked in release: bounds checks stay
// in debug builds, where the tests also run them.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "Astrolabe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "astrolabe", targets: ["astrolabe"]),
        .library(name: "AstroBase", targets: ["AstroBase"]),
        .library(name: "FITS", targets: ["FITS"]),
        .library(name: "Autograd", targets: ["Autograd"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "SkySim", targets: ["SkySim"]),
        .library(name: "Plotting", targets: ["Plotting"]),
        .library(name: "Preprocessing", targets: ["Preprocessing"]),
        .library(name: "Pipelines", targets: ["Pipelines"]),  // for fuzz/
        .library(name: "Explain", targets: ["Explain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.0"),
    ],
    targets: [
        // MARK: - System libraries (Debian: libcfitsio-dev, libopenblas-dev, wcslib-dev, libpng-dev)
        .systemLibrary(name: "CFITSIO", pkgConfig: "cfitsio",
                       providers: [.apt(["libcfitsio-dev"])]),
        // zlib (zlib1g-dev, which cfitsio links too): GZIP tiles are inflated with a bound
        // before cfitsio inflates them without one (FITSFile+Validation.swift).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CWCS", pkgConfig: "wcslib",
                       providers: [.apt(["wcslib-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // Open MPI (libopenmpi-dev, openmpi-bin): its own pkg-config file, ompi-c, gives the
        // include folder (Debian: /usr/lib/x86_64-linux-gnu/openmpi/include) and -lmpi.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // MARK: - Libraries, lowest first
        // C kernels compiled per function for AVX-512 and chosen at run time (Swift's SIMD
        // types compile to SSE2 without a target CPU); portable fallbacks stay in Swift.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),
        // Seeded random numbers, robust statistics, special functions, display stretches,
        // intervals and Lupton composites: shared by every module above it.
        .target(name: "AstroBase", dependencies: ["CKernels", "CBLAS"], swiftSettings: kernelSettings),
        .target(name: "FITS", dependencies: ["CFITSIO", "CZlib"], swiftSettings: kernelSettings),
        .target(name: "Autograd", dependencies: ["AstroBase", "CBLAS", "CKernels"], swiftSettings: kernelSettings),
        .target(name: "Plotting", dependencies: ["CPNG"], swiftSettings: kernelSettings),
        .target(name: "NN", dependencies: ["Autograd"], swiftSettings: kernelSettings),
        .target(name: "Preprocessing", dependencies: ["AstroBase", "FITS", "Autograd", "CWCS", .product(name: "CSV", package: "CSV.swift")],
                swiftSettings: kernelSettings),
        .target(name: "Training", dependencies: ["AstroBase", "Autograd", "NN", "Plotting", "CBLAS"], swiftSettings: kernelSettings),
        // The processes of an MPI job (or one process when not launched by mpirun/srun).
        .target(name: "Cluster", dependencies: ["CMPI"]),
        // Attributions (captum's methods), feature visualisation and sanity checks on any model.
        .target(name: "Explain", dependencies: ["AstroBase", "Autograd", "NN", "Plotting"], swiftSettings: kernelSettings),
        .target(name: "Pipelines", dependencies: ["AstroBase", "FITS", "Preprocessing", "NN", "Training", "Plotting", "SkySim", "Cluster", "Explain", "Yams",
                                             .product(name: "CSV", package: "CSV.swift")]),
        .target(name: "SkySim", dependencies: ["AstroBase", "FITS", "Plotting", "CBLAS", "CKernels"], swiftSettings: kernelSettings),

        // MARK: - Command-line tool
        .executableTarget(
            name: "astrolabe",
            dependencies: [
                "AstroBase", "FITS", "Autograd", "NN", "SkySim", "Plotting", "Preprocessing", "Training", "Pipelines", "CFITSIO",
                "Cluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["FITS", "Autograd"], path: "Tests/TestSupport"),
        .testTarget(name: "AstroBaseTests", dependencies: ["AstroBase"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FITSTests", dependencies: ["FITS", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AutogradTests", dependencies: ["Autograd", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PreprocessingTests", dependencies: ["Preprocessing", "Autograd", "FITS", "Yams", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "NN", "Autograd", "Plotting", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PipelinesTests", dependencies: ["Pipelines", "Preprocessing", "FITS", "NN", "Autograd", "Training", "SkySim", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Autograd", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ExplainTests", dependencies: ["Explain", "NN", "Autograd", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SkySimTests", dependencies: ["SkySim", "AstroBase", "FITS", "Plotting", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["FITS", "NN", "Autograd", "Pipelines", "Preprocessing", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
