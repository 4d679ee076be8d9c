import ArgumentParser

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the HDUs and header of FITS files.")
    @Argument(help: "FITS files.") var files: [String]
    func run() throws { throw ValidationError("inspect: not implemented yet") }
}
