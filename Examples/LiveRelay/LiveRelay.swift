import ArgumentParser
import GroupUnicast

/// Receives a datagram stream on one address and fans every datagram out to all subscribers with
/// one group send per address family (a batch of up to 64 received datagrams per `recvmmsg`).
@main
struct LiveRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live-relay",
        abstract: "Receive a UDP stream on one address and fan it out to N subscribers.",
        discussion: """
            Subscribers come from --subscriber (repeatable) and --subscribers-file (one HOST:PORT or \
            [IPv6]:PORT per line, # comments). The relay prints "live-relay: listening on ADDRESS" \
            once ready.
            """
    )

    @Option(help: "Address to receive the stream on, such as 127.0.0.1:9000 or [::1]:9000 (port 0: any).")
    var listen: String

    @Option(name: .customLong("subscriber"), help: "A subscriber address; repeat for more.")
    var subscriberAddresses: [String] = []

    @Option(help: "A file of subscriber addresses, one per line.")
    var subscribersFile: String?

    @Option(help: "Exit after relaying this many datagrams (default: run until stopped).")
    var count: Int?

    @Option(help: "Exit when no datagram arrives for this many seconds (default: wait forever).")
    var idleTimeout: Int?

    @Option(help: "Send backend: automatic, socket, sendmmsg or sendgroup.")
    var backend: GroupSendBackend = .automatic

    func validate() throws {
        if let count, count <= 0 { throw ValidationError("--count must be positive") }
        if let idleTimeout, idleTimeout <= 0 { throw ValidationError("--idle-timeout must be positive") }
    }

    func run() throws {
        let listenAddress: SocketAddress
        do {
            listenAddress = try SocketAddress(parsing: listen)
        } catch {
            throw ValidationError("--listen: \(error)")
        }
        var subscribers: [SocketAddress] = []
        for text in subscriberAddresses {
            do {
                subscribers.append(try SocketAddress(parsing: text))
            } catch {
                throw ValidationError("--subscriber: \(error)")
            }
        }
        if let subscribersFile {
            subscribers += try Subscribers.load(path: subscribersFile)
        }
        guard !subscribers.isEmpty else {
            throw ValidationError("no subscribers: give --subscriber or --subscribers-file")
        }

        let relay = try Relay(listen: listenAddress, subscribers: subscribers, backend: backend)
        print("live-relay: listening on \(try relay.input.localAddress), \(subscribers.count) subscribers, "
              + "backend \(relay.backendDescription)")
        flushStandardOutput()
        let summary = try relay.run(count: count, idleTimeout: idleTimeout.map { .seconds($0) })
        print("live-relay: relayed \(summary.received) datagrams to \(subscribers.count) subscribers: "
              + "\(summary.sent) sent, \(summary.failed) failed")
        if summary.failed > 0 { throw ExitCode.failure }
    }
}

/// The relay proper: one input socket, one output socket per subscriber address family.
struct Relay {
    struct Summary {
        var received = 0
        var sent = 0
        var failed = 0
    }

    let input: GroupSocket
    private let outputs: [(socket: GroupSocket, recipients: [Recipient])]

    init(listen: SocketAddress, subscribers: [SocketAddress], backend: GroupSendBackend) throws {
        input = try GroupSocket(bindingTo: listen, backend: backend)
        var outputs: [(GroupSocket, [Recipient])] = []
        for family in [AddressFamily.ipv4, .ipv6] {
            let recipients = subscribers.filter { $0.family == family }.map { Recipient($0) }
            if recipients.isEmpty { continue }
            outputs.append((try GroupSocket(family: family, backend: backend), recipients))
        }
        self.outputs = outputs
    }

    var backendDescription: String {
        outputs.map { "\($0.socket.family) \($0.socket.backend)" }.joined(separator: ", ")
    }

    func run(count: Int?, idleTimeout: Duration?) throws -> Summary {
        var summary = Summary()
        while count.map({ summary.received < $0 }) ?? true {
            guard try input.waitForReadable(timeout: idleTimeout) else {
                printError("live-relay: no datagram for \(idleTimeout!); stopping")
                break
            }
            let limit = count.map { min(64, $0 - summary.received) } ?? 64
            for datagram in try input.receiveBatch(maxCount: limit) {
                summary.received += 1
                for output in outputs {
                    let result = try output.socket.send(datagram.bytes, to: output.recipients)
                    summary.sent += result.sentCount
                    summary.failed += result.recipientCount - result.sentCount
                    for failure in result.failures {
                        printError("live-relay: to \(output.recipients[failure.recipient].address): \(failure.error.symbolicName) (\(failure.error))")
                    }
                }
            }
        }
        return summary
    }
}
