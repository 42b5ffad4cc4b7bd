import ArgumentParser
import GroupcastCommandLine

/// `groupcast`: the reference SFU, its client, join tokens and the fast path's tool. Production only: the
/// demo and the benchmarks are `groupcast-lab` (GroupcastLab).
@main
struct Groupcast: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groupcast",
        abstract: "A selective forwarding unit for ultra-low-delay conferencing (Docs/protocol.md).",
        subcommands: [SFUCommand.self, ClientCommand.self, TokenCommand.self, XDPCommand.self]
    )
}
