import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast

/// One server and N simulated clients on loopback. Every tick each client sends an input command,
/// the server applies the inputs it received and sends one world snapshot to all clients in one
/// group send, each datagram with the client's private header (client id, last acked input, tick).
/// Each client checks its header and the snapshot bytes.
@main
struct GameBroadcaster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "game-broadcaster",
        abstract: "Broadcast a game-state snapshot per tick to N loopback clients with private headers."
    )

    @Option(help: "Number of simulated clients.")
    var clients = 8

    @Option(help: "Number of ticks to run.")
    var ticks = 20

    @Option(help: "Milliseconds between ticks.")
    var tickInterval = 20

    @Option(help: "Bytes of shared world snapshot per tick.")
    var snapshotSize = 1200

    @Option(help: "Send backend: automatic, socket, sendmmsg or sendgroup.")
    var backend: GroupSendBackend = .automatic

    @Flag(help: "Use IPv6 loopback ([::1]) instead of 127.0.0.1.")
    var ipv6 = false

    func validate() throws {
        guard clients > 0 else { throw ValidationError("--clients must be positive") }
        guard ticks > 0 else { throw ValidationError("--ticks must be positive") }
        guard tickInterval >= 0 else { throw ValidationError("--tick-interval must not be negative") }
        guard snapshotSize >= 0, snapshotSize + ClientHeader.size <= GroupSocket.maxDatagramSize else {
            throw ValidationError("--snapshot-size must be 0...\(GroupSocket.maxDatagramSize - ClientHeader.size)")
        }
    }

    func run() throws {
        let loopback: SocketAddress = ipv6 ? .ipv6Loopback(port: 0) : .ipv4Loopback(port: 0)
        let server = try GroupSocket(bindingTo: loopback, backend: backend, options: .init(nonBlocking: true))
        let serverAddress = try server.localAddress
        let players = try (0..<clients).map { id in
            (id: UInt32(id), socket: try GroupSocket(bindingTo: loopback, backend: .socket, options: .init(nonBlocking: true)))
        }
        var clientIDs: [SocketAddress: UInt32] = [:]
        var recipients: [Recipient] = []
        for player in players {
            let address = try player.socket.localAddress
            clientIDs[address] = player.id
            recipients.append(Recipient(address))
        }
        print("game-broadcaster: server \(serverAddress), \(clients) clients, backend \(server.backend)")

        var lastAcked = [UInt32](repeating: 0, count: clients)
        var delivered = 0
        var verified = 0
        var sendFailures = 0
        for tick in 1...UInt32(ticks) {
            // Clients send this tick's input.
            for player in players {
                try player.socket.send(InputCommand(clientID: player.id, sequence: tick).bytes, to: serverAddress)
            }
            // Server applies the inputs that arrived.
            while try server.waitForReadable(timeout: .milliseconds(200)) {
                let datagrams = try server.receiveBatch(maxCount: 64, maxSize: 64)
                if datagrams.isEmpty { break }
                for datagram in datagrams {
                    guard let input = InputCommand(datagram.bytes), clientIDs[datagram.source] == input.clientID else {
                        continue
                    }
                    lastAcked[Int(input.clientID)] = max(lastAcked[Int(input.clientID)], input.sequence)
                }
                if lastAcked.allSatisfy({ $0 == tick }) { break }
            }
            // One shared snapshot, one private header per client, one group send.
            let snapshot = WorldSnapshot.bytes(tick: tick, size: snapshotSize)
            for (index, player) in players.enumerated() {
                recipients[index].prepend = ClientHeader(
                    clientID: player.id, lastAckedInput: lastAcked[index], tick: tick).bytes
            }
            let result = try server.send(snapshot, to: recipients)
            for failure in result.failures {
                sendFailures += 1
                print("tick \(tick): snapshot to client \(failure.recipient) at \(recipients[failure.recipient].address) failed: \(failure.error.symbolicName)")
            }
            // Clients check what they got.
            for player in players {
                guard try player.socket.waitForReadable(timeout: .seconds(1)),
                      let datagram = try player.socket.receive() else { continue }
                delivered += 1
                let expected = ClientHeader(clientID: player.id, lastAckedInput: tick, tick: tick)
                if ClientHeader(datagram.bytes) == expected,
                   datagram.bytes.dropFirst(ClientHeader.size).elementsEqual(snapshot),
                   datagram.source == serverAddress {
                    verified += 1
                } else {
                    print("tick \(tick): client \(player.id) got an unexpected datagram of \(datagram.bytes.count) bytes")
                }
            }
            if tickInterval > 0 && tick < UInt32(ticks) {
                usleep(useconds_t(tickInterval) * 1000)
            }
        }
        let expected = ticks * clients
        print("game-broadcaster: \(ticks) ticks, \(clients) clients, backend \(server.backend): "
              + "\(delivered)/\(expected) snapshots delivered, \(verified) verified, \(sendFailures) send failures")
        guard verified == expected else { throw ExitCode.failure }
    }
}

extension GroupSendBackend: ExpressibleByArgument {}
