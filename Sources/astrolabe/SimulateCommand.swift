import ArgumentParser

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate labelled images for one of the four tasks.")
    func run() throws { throw ValidationError("simulate: not implemented yet") }
}
