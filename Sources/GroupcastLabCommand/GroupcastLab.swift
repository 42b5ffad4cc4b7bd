import ArgumentParser

/// `groupcast-lab`: the test bench of the reference SFU (library GroupcastLab): the namespace
/// demo and the benchmarks. Production runs `groupcast`; this program starts it as SFU and
/// clients.
@main
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groupcast-lab",
        abstract: "The SFU's test bench: the namespace demo and the benchmarks (Docs/benchmarks.md).",
        subcommands: [DemoCommand.self, BenchCommand.self]
    )
}
