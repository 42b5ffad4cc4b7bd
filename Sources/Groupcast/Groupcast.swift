import ArgumentParser

/// `groupcast`: the reference SFU, its client and the namespace demo.
@main
struct Groupcast: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groupcast",
        abstract: "A selective forwarding unit for ultra-low-delay conferencing (Docs/protocol.md).",
        // `xdp` and `bench` are added here by their owners.
        subcommands: [SFUCommand.self, ClientCommand.self, TokenCommand.self, DemoCommand.self, XDPCommand.self, BenchCommand.self]
    )
}
