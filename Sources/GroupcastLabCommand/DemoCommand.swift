#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastCommandLine
import GroupcastLab
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging

/// `groupcast-lab demo`: the ``Demo`` of GroupcastLab.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the SFU and N clients in throw-away network namespaces and print delay, CPU and packets.",
        discussion: """
            Creates one namespace for the SFU and one per client, joined by veth links with private \
            addresses (10.199.N.1 SFU side, 10.199.N.2 client side) and no default route: no traffic \
            leaves the namespaces. Needs root. Removes the namespaces, links and processes it created \
            when it ends, when interrupted (Ctrl-C) and when something fails. \
            With --nodes N (1-16) the SFU is a cluster (Docs/cluster.md): N `groupcast sfu --cluster` \
            nodes and a redis-server, each in a namespace on one bridge (10.198.0.11... nodes, \
            10.198.0.1 Redis), the --clients hosts spread over the nodes, a row per node in the table.
            """
    )

    /// The library's defaults are the command's.
    private static var defaults: Demo { Demo() }

    @Option(help: "Client hosts (namespaces), each running --participants participants.")
    var clients: Int = Self.defaults.clients

    @Option(help: "Run a cluster of this many SFU nodes (1-16; 1: a cluster of one) with its own redis-server, the client hosts spread over the nodes (needs redis-server; socket, sendmmsg and sendgroup backends). Default: one SFU, no cluster.")
    var nodes: Int?

    @Option(help: "With --nodes: every node's `groupcast sfu --relay-fanout` (the most nodes it relays a stream to; 0: no limit, a star from each stream's origin; 1: a chain). Default: the SFU's (0).")
    var relayFanout: Int?

    @Flag(help: "A broadcast: client host 1 is one speaker sending every stream type, the other hosts its audience (--participants each), sending nothing.")
    var broadcast = false

    @Option(help: "Participants per client host.")
    var participants: Int = Self.defaults.participants

    @Option(help: "How long the clients send, per backend (e.g. 10s).")
    var duration: DurationArgument = .init(Self.defaults.duration)

    @Option(help: "Send interval per stream.")
    var interval: DurationArgument = .init(Self.defaults.interval)

    @Option(help: "Stream types every participant receives (asq,vsq,vhq | all).")
    var receive: StreamSet = Self.defaults.receive

    @Option(parsing: .upToNextOption, help: "Backends to run one after the other (socket sendmmsg sendgroup xdp ring). Default: the fastest socket backend available. xdp attaches to every veth of the SFU namespace (one per client host).")
    var backends: [ForwarderBackend] = Self.defaults.backends

    @Flag(inversion: .prefixedNo, help: "Run the SFU with authentication: a fresh key, one join token per participant (Docs/protocol.md, \"Join tokens\"). --no-auth runs it open.")
    var auth = Self.defaults.auth

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...200).contains(clients) else { throw ValidationError("--clients must be 1...200") }
        if let nodes {
            guard (1...16).contains(nodes) else { throw ValidationError("--nodes must be 1...16") }
            guard clients >= nodes + (broadcast ? 1 : 0) else {
                throw ValidationError("--nodes \(nodes) needs a client host per node or more (--clients; one more for the speaker with --broadcast)")
            }
        }
        if let relayFanout {
            guard nodes != nil else { throw ValidationError("--relay-fanout needs --nodes (it is a cluster node's option)") }
            guard relayFanout >= 0 else { throw ValidationError("--relay-fanout must be 0 (no limit) or more") }
        }
        guard clients >= 2 || !broadcast else { throw ValidationError("--broadcast needs --clients 2 or more (a speaker and an audience)") }
        guard (1...64).contains(participants) else { throw ValidationError("--participants must be 1...64") }
        guard duration.value > .zero else { throw ValidationError("--duration must be positive") }
        for backend in backends {
            if backend == .sendgroup && !GroupSocket.isKernelModuleLoaded {
                throw ValidationError("--backends sendgroup: the sendgroup module is not loaded (/dev/sendgroup missing)")
            }
        }
    }

    func run() throws {
        _ = logging.bootstrap(label: "groupcast.demo")
        var demo = Demo()
        demo.clients = clients
        demo.participants = participants
        demo.nodes = nodes
        demo.broadcast = broadcast
        demo.relayFanout = relayFanout
        demo.duration = duration.value
        demo.interval = interval.value
        demo.receive = receive
        demo.backends = backends
        demo.auth = auth
        try exitOnLabError("demo") { try demo.run() }
    }
}
