#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastClient
import GroupcastLab
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Synchronization
import Testing

/// Three `groupcast sfu --cluster` nodes, each in a network namespace of its own on one bridge,
/// with redis-server in the bridge's namespace (``Topology/cluster(nodes:)``: no default route,
/// nothing reachable but the bridge), and clients on every node (Docs/cluster.md, "Tests").
@Suite(.serialized) struct ThreeNodeClusterTests {
    /// Packets every sender sends per phase, one per sender per millisecond.
    static let packets = 200

    /// Every client receives every other client's stream exactly once, in sequence order, from
    /// its own node, and its own echo; every node's counters are what the routing implies (each
    /// stream crosses to each other node once); the delay a node-to-node hop adds is printed.
    /// Then the faults: node 3 SIGKILLed leaves every room once its heartbeat expired and gets
    /// nothing more; restarted, it rejoins and its new clients receive again; redis-server
    /// killed, media keeps flowing; back (empty), the nodes publish everything again and a
    /// client joining then reaches the other nodes.
    @Test func threeNodesInNamespacesWithFaults() async throws {
        try #require(geteuid() == 0, "needs root (network namespaces); CI runs the suite as root")
        let cluster = try await NamespacedCluster(nodes: 3)
        defer { cluster.shutdown() }
        for node in 1...3 { try cluster.startNode(node) }
        var clients = try (1...3).flatMap { node in try (1...2).map { try ClusterClient("n\(node)c\($0)", node: node, cluster: cluster) } }
        defer { for client in clients { client.close() } }
        try await cluster.waitForTrees(of: clients)

        // 1. Three nodes, six clients: exactly once, in order; counters; per-hop delay.
        let delays = try await cluster.exchange(clients, count: Self.packets, firstSequence: 65_400, phase: "three nodes")
        let local = delays.local.sorted(), remote = delays.remote.sorted()
        print(String(
            format: "delay, receiver on the origin node (one SFU): p50 %.1f us p99 %.1f us (%d packets); on another node (two SFUs, one relay hop): p50 %.1f us p99 %.1f us (%d packets); added per hop: p50 %.1f us p99 %.1f us",
            microseconds(local, 0.5), microseconds(local, 0.99), local.count, microseconds(remote, 0.5), microseconds(remote, 0.99), remote.count,
            microseconds(remote, 0.5) - microseconds(local, 0.5), microseconds(remote, 0.99) - microseconds(local, 0.99)))

        // 2. Node 3 dies: nodes 1 and 2 drop its clients' routes once its heartbeat expired
        // (3 s), and their counters show no copy to node 3 (they are exact for two nodes).
        let killed = ContinuousClock.now
        cluster.killNode(3)
        try await cluster.waitForTrees(of: clients.filter { $0.node != 3 })
        print("node 3 SIGKILLed: gone from nodes 1 and 2 after \(ContinuousClock.now - killed)")
        try await waitUntil("a reaper deleted node 3's participants from Redis") {
            cluster.redis.command(["EXISTS", "groupcast:room:default:node:node3"]) == "0"
                && cluster.redis.command(["SISMEMBER", "groupcast:room:default:nodes", "node3"]) == "0"
        }
        let orphans = clients.filter { $0.node == 3 }
        clients.removeAll { $0.node == 3 }
        _ = try await cluster.exchange(clients, silent: orphans, count: Self.packets, firstSequence: 0, phase: "node 3 dead")
        for client in orphans { client.close() }

        // 3. Node 3 restarts under its name: new clients there receive and are received.
        try cluster.startNode(3)
        clients += try (1...2).map { try ClusterClient("n3c\($0)-again", node: 3, cluster: cluster) }
        try await cluster.waitForTrees(of: clients)
        _ = try await cluster.exchange(clients, count: Self.packets, firstSequence: 1000, phase: "node 3 restarted")

        // 4. Redis dies: the routes installed keep forwarding.
        cluster.redis.stop()
        _ = try await cluster.exchange(clients, count: Self.packets, firstSequence: 2000, phase: "redis-server killed")
        // Redis returns empty: every node publishes its participants again, and a change made
        // now (a client joining node 2) reaches the other nodes through it.
        try await cluster.redis.start()
        for node in 1...3 {
            try await waitUntil("node \(node) published its two participants again") {
                cluster.redis.command(["HLEN", "groupcast:room:default:node:node\(node)"]) == "2"
            }
        }
        clients.append(try ClusterClient("n2c3", node: 2, cluster: cluster))
        try await cluster.waitForTrees(of: clients)
        _ = try await cluster.exchange(clients, count: Self.packets, firstSequence: 3000, phase: "redis-server back")
        cluster.stopNodes()
    }

    /// Relay trees (Docs/cluster.md): with `--relay-fanout 1` node 1 relays the speaker's
    /// stream to one node and that node to the third, so the third node's listeners get it
    /// three hops from its origin (node 1 -> relay node -> relay node -> client), exactly once,
    /// in order, from their own node; each node sends each packet once to its one child and
    /// nothing back to its parent (node 1 receives the speaker's packets only). Then the middle
    /// node dies: once its heartbeat expired, the last node attaches to node 1 directly and
    /// its listeners receive again.
    @Test func relayTreeCarriesABroadcastThreeHops() async throws {
        try #require(geteuid() == 0, "needs root (network namespaces); CI runs the suite as root")
        let cluster = try await NamespacedCluster(nodes: 3)
        defer { cluster.shutdown() }
        for node in 1...3 { try cluster.startNode(node, extra: ["--relay-fanout", "1"]) }
        let speaker = try ClusterClient("speaker", node: 1, cluster: cluster)
        var listeners = try [2, 3].flatMap { node in try (1...2).map { try ClusterClient("n\(node)l\($0)", node: node, cluster: cluster) } }
        let everyone = [speaker] + listeners
        defer { for client in everyone { client.close() } }
        try await cluster.waitForTrees(of: [speaker] + listeners)

        let tree = cluster.tree(of: speaker.ssrc)
        let middle = try #require(tree.first { $0.value == "node1" }?.key), last = try #require(tree.first { $0.value == middle }?.key)
        #expect(tree.count == 2, "the speaker's tree: \(tree)")
        print("relay tree of the speaker's stream: node1 -> \(middle) -> \(last)")
        let middleNode = Int(middle.dropFirst("node".count))!, lastNode = Int(last.dropFirst("node".count))!

        let delays = try await cluster.broadcast(
            from: speaker, to: listeners, count: Self.packets, firstSequence: 65_500, phase: "relay tree",
            copies: [1: (forwarded: 0, relayed: 1), middleNode: (forwarded: 2, relayed: 1), lastNode: (forwarded: 2, relayed: 0)])
        let oneRelay = delays.filter { $0.node == middleNode }.flatMap(\.delays).sorted()
        let twoRelays = delays.filter { $0.node == lastNode }.flatMap(\.delays).sorted()
        print(String(
            format: "delay, speaker on node 1 to listeners on %@ (two SFUs): p50 %.1f us p99 %.1f us; on %@ (three SFUs, three hops): p50 %.1f us p99 %.1f us",
            middle, microseconds(oneRelay, 0.5), microseconds(oneRelay, 0.99), last, microseconds(twoRelays, 0.5), microseconds(twoRelays, 0.99)))

        // The middle node dies: the last node attaches to node 1 once the heartbeat expired.
        let killed = ContinuousClock.now
        cluster.killNode(middleNode)
        let orphans = listeners.filter { $0.node == middleNode }
        listeners.removeAll { $0.node == middleNode }
        try await cluster.waitForTrees(of: [speaker] + listeners)
        #expect(cluster.tree(of: speaker.ssrc) == [last: "node1"])
        print("\(middle) SIGKILLed: \(last) takes the stream from node1 after \(ContinuousClock.now - killed)")
        _ = try await cluster.broadcast(
            from: speaker, to: listeners, silent: orphans, count: Self.packets, firstSequence: 0, phase: "parent dead",
            copies: [1: (forwarded: 0, relayed: 1), lastNode: (forwarded: 2, relayed: 0)])
        for client in orphans { client.close() }
        cluster.stopNodes()
    }
}

func microseconds(_ sorted: [UInt64], _ quantile: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]) / 1000
}

/// redis-server and `groupcast sfu --cluster --backend sendmmsg` nodes in a ``Topology/cluster(nodes:)``.
final class NamespacedCluster: @unchecked Sendable {
    let topology: Topology
    let redis: RedisServer
    let scratch: String
    private var processes: [Int: Process] = [:]

    init(nodes: Int) async throws {
        Topology.removeStale()
        topology = Topology.cluster(nodes: nodes)
        try topology.create()
        scratch = NSTemporaryDirectory() + "groupcast-cluster-netns-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            redis = try await RedisServer(namespace: topology.hubName ?? "", address: topology.redisAddress)
        } catch {
            topology.destroy()
            throw error
        }
    }

    func address(_ node: Int) -> IPv4Address {
        let octets = topology.nodeAddress(node).split(separator: ".").compactMap { UInt8($0) }
        return IPv4Address(octets[0], octets[1], octets[2], octets[3])
    }
    func control(_ node: Int) -> SocketAddress { .ipv4(address(node), port: 7000) }
    func media(_ node: Int) -> SocketAddress { .ipv4(address(node), port: 7002) }
    func statsFile(_ node: Int) -> String { "\(scratch)/node\(node).json" }
    func log(_ node: Int) -> String { "\(scratch)/node\(node).log" }

    func startNode(_ node: Int, extra: [String] = []) throws {
        try? FileManager.default.removeItem(atPath: statsFile(node))
        FileManager.default.createFile(atPath: log(node), contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log(node)))
        let process = Process()
        // `ip netns exec` execs the SFU: the process is the node itself (SIGKILL reaches it).
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = [
            "netns", "exec", topology.nodeNamespace(node), SFUClusterTests.groupcast.path, "sfu", "--control", "\(control(node))",
            "--media", "\(media(node))", "--backend", "sendmmsg", "--log-level", "warning", "--keepalive-timeout", "120s",
            "--stats-interval", "50ms", "--stats-file", statsFile(node), "--cluster", redis.url, "--node", "node\(node)",
            "--advertise", "\(media(node))",
        ] + extra
        process.standardOutput = output
        process.standardError = output
        try process.run()
        processes[node] = process
    }

    func killNode(_ node: Int) {
        guard let process = processes.removeValue(forKey: node) else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM: the nodes leave the cluster and exit 0.
    func stopNodes() {
        for (node, process) in processes.sorted(by: { $0.key < $1.key }) {
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "node \(node): \(tail(node))")
        }
        processes = [:]
    }

    func shutdown() {
        for process in processes.values where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        processes = [:]
        redis.stop()
        topology.destroy()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func tail(_ node: Int) -> String {
        ((try? String(contentsOfFile: log(node), encoding: .utf8)) ?? "").split(separator: "\n").suffix(10).joined(separator: "\n")
    }

    func counters(_ node: Int) -> NodeCounters? {
        guard let data = FileManager.default.contents(atPath: statsFile(node)),
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            let dropped = json["dropped"] as? [String: Any]
        else { return nil }
        func count(_ value: Any?) -> Int { (value as? NSNumber)?.intValue ?? 0 }
        return NodeCounters(
            received: count(json["received"]), forwarded: count(json["forwarded"]), echoed: count(json["echoed"]),
            relayed: count(json["relayed"]), dropped: dropped.values.reduce(0) { $0 + count($1) }, routes: count(json["routes"]),
            relayChildren: count(json["relay_children"]))
    }

    /// The ready edges of every relay tree of the room in Redis, by SSRC: child node -> parent
    /// node (one `redis-cli` call).
    func trees() -> [UInt32: [String: String]] {
        let script = """
            local out = {}
            for _, ssrc in ipairs(redis.call('SMEMBERS', 'groupcast:room:default:relays')) do
              local edges = redis.call('HGETALL', 'groupcast:room:default:relay:' .. ssrc)
              for i = 1, #edges, 2 do table.insert(out, ssrc .. ' ' .. edges[i] .. ' ' .. edges[i + 1]) end
            end
            return out
            """
        var trees: [UInt32: [String: String]] = [:]
        for line in (redis.command(["EVAL", script, "0"]) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let ssrc = UInt32(fields[0]), fields[3] == "ready" else { continue }
            trees[ssrc, default: [:]][String(fields[1])] = String(fields[2])
        }
        return trees
    }

    /// The ready edges of `ssrc`'s relay tree: child node -> parent node.
    func tree(of ssrc: UInt32) -> [String: String] { trees()[ssrc] ?? [:] }

    /// Waits until every stream of `clients` (three each) has a tree in Redis with a ready edge
    /// for each other node with clients (and no other edge), and every node routes all the
    /// streams and sends each to the children Redis records for it.
    func waitForTrees(of clients: [ClusterClient]) async throws {
        let nodes = Set(clients.map(\.node)), ssrcs = clients.flatMap(\.ssrcs)
        // Each stream's children in Redis: the nodes with clients but its own.
        var expected: [UInt32: Set<String>] = [:]
        for client in clients {
            for ssrc in client.ssrcs { expected[ssrc] = Set(nodes.subtracting([client.node]).map { "node\($0)" }) }
        }
        try await waitUntil("every stream's tree reaches every other node with clients (\(nodes.sorted()))") { [expected] in
            let trees = self.trees()
            return expected.allSatisfy { ssrc, children in Set(trees[ssrc, default: [:]].keys) == children }
        }
        let trees = self.trees()
        for node in nodes.sorted() {
            let children = ssrcs.reduce(0) { $0 + trees[$1, default: [:]].values.filter { $0 == "node\(node)" }.count }
            try await waitUntil("node \(node) routes \(ssrcs.count) streams to \(children) children (\(counters(node).map { "\($0.routes), \($0.relayChildren)" } ?? "no statistics")); log: \(tail(node))") {
                self.counters(node).map { $0.routes == ssrcs.count && $0.relayChildren == children } ?? false
            }
        }
    }

    /// Every sender sends `count` packets (sequence numbers from `firstSequence`, one packet
    /// per sender per millisecond, a send time stamp in the payload). Checks that every sender
    /// receives every stream exactly once, in order, from its own node (its own as the echo),
    /// that `silent` clients receive nothing, and that each node's counters grew by what the
    /// routing implies; prints them. Returns the one-way delays (ns) of the copies received on
    /// the origin node and on another node.
    func exchange(
        _ clients: [ClusterClient], silent: [ClusterClient] = [], count: Int, firstSequence: Int, phase: String
    ) async throws -> (local: [UInt64], remote: [UInt64]) {
        let nodes = Set(clients.map(\.node)).sorted()
        var before: [Int: NodeCounters] = [:]
        for node in nodes { before[node] = try #require(counters(node), "node \(node) writes no statistics") }
        for client in clients + silent { _ = client.take() }
        for index in 0..<count {
            for client in clients { try client.send(sequence: UInt16(truncatingIfNeeded: firstSequence + index), to: media(client.node)) }
            usleep(1000)
        }
        let expected = clients.count * count
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline && clients.contains(where: { $0.arrivedCount < expected }) { usleep(10_000) }
        usleep(200_000)  // anything extra (a duplicate) arrives too, and four statistics intervals pass

        var local: [UInt64] = [], remote: [UInt64] = []
        let sequences = (0..<count).map { UInt16(truncatingIfNeeded: firstSequence + $0) }
        for receiver in clients {
            let arrived = receiver.take()
            for sender in clients {
                let stream = arrived.filter { $0.ssrc == sender.ssrc }
                #expect(stream.map(\.sequence) == sequences, "\(phase): \(receiver.name) got \(stream.count) of \(count) packets of \(sender.name), in this order: \(stream.map(\.sequence).prefix(20))…")
                if sender.node == receiver.node { local += stream.map(\.delay) } else { remote += stream.map(\.delay) }
            }
            #expect(arrived.count == expected, "\(phase): \(receiver.name) got \(arrived.count) packets, \(expected) expected")
            let sources = Set(arrived.map(\.source))
            #expect(sources == [media(receiver.node)], "\(phase): \(receiver.name) got packets from \(sources), only from its node \(media(receiver.node)) expected")
        }
        for client in silent {
            let arrived = client.take()
            #expect(arrived.isEmpty, "\(phase): \(client.name) (node \(client.node), dead) got \(arrived.count) packets")
        }

        // Each node: its clients' packets plus one copy of every other node's stream; copies to
        // its other clients, one per other node per stream, and its relayed streams to its clients.
        print("\(phase): node  clients  received (relayed in)  forwarded (to its clients)  relayed (to other nodes)  echoed  dropped")
        for node in nodes {
            let mine = clients.filter { $0.node == node }.count, others = clients.count - mine, otherNodes = nodes.count - 1
            let after = try #require(counters(node)), growth = after - before[node]!
            let toNodes = mine * otherNodes * count, toClients = (mine * (mine - 1) + others * mine) * count
            let want = NodeCounters(
                received: (mine + others) * count, forwarded: toClients, echoed: mine * count, relayed: toNodes, dropped: 0, routes: growth.routes,
                relayChildren: growth.relayChildren)
            print("\(phase):   \(node)     \(mine)        \(growth.received) (\(growth.received - mine * count))      \(growth.forwarded)      \(growth.relayed)      \(growth.echoed)  \(growth.dropped)")
            #expect(growth == want, "\(phase): node \(node) counted \(growth), the routing implies \(want)")
        }
        return (local, remote)
    }

    /// `speaker` sends `count` packets (one a millisecond, sequence numbers from
    /// `firstSequence`): it receives its echo from its node, every listener receives each
    /// packet exactly once, in order, from its own node, `silent` clients nothing, and each
    /// node's counters grow by `copies` per packet (to its listeners, to its children), one
    /// received per packet and no drop. Returns each listener's one-way delays (ns).
    func broadcast(
        from speaker: ClusterClient, to listeners: [ClusterClient], silent: [ClusterClient] = [], count: Int, firstSequence: Int, phase: String,
        copies: [Int: (forwarded: Int, relayed: Int)]
    ) async throws -> [(node: Int, delays: [UInt64])] {
        var before: [Int: NodeCounters] = [:]
        for node in copies.keys { before[node] = try #require(counters(node), "node \(node) writes no statistics") }
        for client in [speaker] + listeners + silent { _ = client.take() }
        for index in 0..<count {
            try speaker.send(sequence: UInt16(truncatingIfNeeded: firstSequence + index), to: media(speaker.node))
            usleep(1000)
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline && ([speaker] + listeners).contains(where: { $0.arrivedCount < count }) { usleep(10_000) }
        usleep(200_000)  // anything extra (a duplicate) arrives too, and four statistics intervals pass

        let sequences = (0..<count).map { UInt16(truncatingIfNeeded: firstSequence + $0) }
        var delays: [(node: Int, delays: [UInt64])] = []
        for receiver in [speaker] + listeners {
            let arrived = receiver.take()
            #expect(arrived.map(\.ssrc) == Array(repeating: speaker.ssrc, count: arrived.count), "\(phase): \(receiver.name) got another stream")
            #expect(arrived.map(\.sequence) == sequences, "\(phase): \(receiver.name) got \(arrived.count) of \(count) packets, in this order: \(arrived.map(\.sequence).prefix(20))…")
            #expect(Set(arrived.map(\.source)) == [media(receiver.node)], "\(phase): \(receiver.name) got packets from \(Set(arrived.map(\.source))), only from its node expected")
            if receiver !== speaker { delays.append((receiver.node, arrived.map(\.delay))) }
        }
        for client in silent {
            let arrived = client.take()
            #expect(arrived.isEmpty, "\(phase): \(client.name) (node \(client.node), dead) got \(arrived.count) packets")
        }
        print("\(phase): node  received  forwarded (to its listeners)  relayed (to its children)  echoed  dropped")
        for (node, perPacket) in copies.sorted(by: { $0.key < $1.key }) {
            let growth = try #require(counters(node)) - before[node]!
            let want = NodeCounters(
                received: count, forwarded: perPacket.forwarded * count, echoed: node == speaker.node ? count : 0, relayed: perPacket.relayed * count,
                dropped: 0, routes: growth.routes, relayChildren: growth.relayChildren)
            print("\(phase):   \(node)     \(growth.received)     \(growth.forwarded)     \(growth.relayed)     \(growth.echoed)  \(growth.dropped)")
            #expect(growth == want, "\(phase): node \(node) counted \(growth), the tree implies \(want)")
        }
        return delays
    }
}

/// A node's statistics (`--stats-file`): totals, and the routes and relay children in its table.
struct NodeCounters: Equatable, CustomStringConvertible {
    var received: Int, forwarded: Int, echoed: Int, relayed: Int, dropped: Int, routes: Int, relayChildren: Int

    /// The totals' growth from `earlier` (routes and relay children: this one's).
    static func - (later: NodeCounters, earlier: NodeCounters) -> NodeCounters {
        NodeCounters(
            received: later.received - earlier.received, forwarded: later.forwarded - earlier.forwarded, echoed: later.echoed - earlier.echoed,
            relayed: later.relayed - earlier.relayed, dropped: later.dropped - earlier.dropped, routes: later.routes,
            relayChildren: later.relayChildren)
    }

    var description: String { "received \(received), forwarded \(forwarded), echoed \(echoed), relayed \(relayed), dropped \(dropped)" }
}

/// A participant in its node's namespace, on the node's address: registered with the node,
/// sending its ASQ stream with a send time stamp, and recording what arrives on a thread of
/// its own (so the arrival time is when it arrived, not when the test looked).
final class ClusterClient: @unchecked Sendable {
    struct Arrival {
        var ssrc: UInt32
        var sequence: UInt16
        var source: SocketAddress
        /// Receive time minus the send time stamp (one clock: CLOCK_MONOTONIC is machine-wide).
        var delay: UInt64
    }

    let name: String
    let node: Int
    /// Its ASQ stream's SSRC (the one it sends).
    let ssrc: UInt32
    /// All three of its streams' SSRCs.
    let ssrcs: [UInt32]
    private let socket: GroupSocket
    private let arrivals = Mutex<[Arrival]>([])
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private var closed = false

    init(_ name: String, node: Int, cluster: NamespacedCluster) throws {
        self.name = name
        self.node = node
        let address = cluster.address(node)
        socket = try Topology.inNamespace(path: "/run/netns/\(cluster.topology.nodeNamespace(node))") {
            try GroupSocket(bindingTo: .ipv4(address, port: 0), backend: .socket, options: .init(nonBlocking: true))
        }
        let membership = try ControlChannel(socket: socket, sfu: cluster.control(node)).register(JoinParameters(), requestID: 1)
        ssrc = membership.ssrcs[.asq]
        ssrcs = StreamType.allCases.map { membership.ssrcs[$0] }.filter { $0 != 0 }
        let thread = Thread { [self] in receive() }
        thread.start()
    }

    private func receive() {
        while !stopping.load(ordering: .acquiring) {
            guard (try? socket.waitForReadable(timeout: .milliseconds(20))) == true else { continue }
            let now = monotonicNanoseconds()
            for datagram in (try? socket.receiveBatch(maxCount: 64, maxSize: 2048)) ?? [] {
                guard let header = try? RTPHeader.parse(datagram.bytes), header.payloadLength >= 8 else { continue }
                let stamp = datagram.bytes[header.payloadOffset..<header.payloadOffset + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let arrival = Arrival(ssrc: header.ssrc, sequence: header.sequenceNumber, source: datagram.source, delay: now &- stamp)
                arrivals.withLock { $0.append(arrival) }
            }
        }
        stopped.signal()
    }

    var arrivedCount: Int { arrivals.withLock { $0.count } }

    /// What arrived since the last call.
    func take() -> [Arrival] { arrivals.withLock { list in defer { list = [] }; return list } }

    func send(sequence: UInt16, to media: SocketAddress) throws {
        let stamp = monotonicNanoseconds()
        let payload = (0..<8).map { UInt8(truncatingIfNeeded: stamp >> UInt64(56 - 8 * $0)) } + [UInt8](repeating: 0, count: 92)
        try socket.send(RTPHeader.packet(payloadType: 96, sequenceNumber: sequence, timestamp: 0, ssrc: ssrc, payload: payload), to: media)
    }

    func close() {
        guard !closed else { return }
        closed = true
        stopping.store(true, ordering: .releasing)
        stopped.wait()
        try? socket.close()
    }
}
