import Foundation
@testable import GroupcastCluster
import GroupcastProtocol
import GroupcastRedis
import GroupcastSFU
import Logging
import Testing

/// One node of a test cluster: its own Redis client (as a separate process would have) and
/// its ClusterNode, both running until ``stop()`` (a crash, as far as the others can tell).
final class TestNode: Sendable {
    let client: RedisClient
    let node: ClusterNode
    private let tasks: [Task<Void, Never>]

    init(
        _ name: String, server: RedisServer, port: Int = 5000, nodeTimeout: Duration = .milliseconds(600), relayFanout: Int = 0,
        maxRelayDepth: Int = 8
    ) throws {
        client = RedisClient(configuration: server.configuration)
        var configuration = ClusterNode.Configuration(name: name, advertise: "127.0.0.1:\(port)")
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.nodeTimeout = nodeTimeout
        configuration.relayFanout = relayFanout
        configuration.maxRelayDepth = maxRelayDepth
        node = try ClusterNode(configuration: configuration, client: client)
        let client = self.client, node = self.node
        tasks = [Task { await client.run() }, Task { await node.run() }]
    }

    func stop() {
        tasks.forEach { $0.cancel() }
    }

    deinit { stop() }

    /// Participant `id` of this node in `room` sending the given streams.
    func participant(_ id: UInt32, room: String = "r", asq: UInt32 = 0, vsq: UInt32 = 0, vhq: UInt32 = 0) -> ClusterParticipant {
        ClusterParticipant(node: node.configuration.name, id: id, room: room, ssrcs: StreamSSRCs(asq: asq, vsq: vsq, vhq: vhq))
    }

    /// Publishes once the node is live (its first synchronization ran: reset, then heartbeat).
    /// Earlier, the reset would delete the record again until the republish after it, and the
    /// claims would look like a dead node's (Docs/cluster.md, known gaps).
    func publish(_ participant: ClusterParticipant) async throws {
        let name = node.configuration.name
        try await waitUntil("\(name) is live") { try await node.nodes().contains { $0.name == name } }
        try await node.publish(participant)
    }

    /// The room's participant keys as this node reads them now.
    func members(of room: String = "r") async throws -> Set<ParticipantKey> {
        Set(try await node.room(room).participants.keys)
    }
}

func keys(_ pairs: (String, UInt32)...) -> Set<ParticipantKey> {
    Set(pairs.map { ParticipantKey(node: $0.0, id: $0.1) })
}

/// The cluster state in a real redis-server: two nodes in one process, each with its own
/// connections, as two SFU processes would have.
@Suite(.serialized) struct ClusterNodeTests {
    @Test func twoNodesSeeEachOthersParticipantsAndStreams() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server, port: 5001), b = try TestNode("node-b", server: server, port: 5002)
        let watched = Recorder(b.node.watch(room: "r"))
        defer { watched.stop() }

        var alice = a.participant(1, asq: 1001, vsq: 1002)
        alice.identity = "alice"
        try await a.publish(alice)
        var bob = b.participant(1, asq: 2001)
        bob.perSource = [alice.key: [.asq]]
        bob.defaultStreams = [.asq, .vsq]
        try await b.publish(bob)
        try await a.publish(a.participant(2, room: "other", vhq: 1003))

        try await waitUntil("b's watch shows both") { watched.all.last?.participants.count == 2 }
        let room = try await a.node.room("r")
        #expect(room.participants[alice.key] == alice)
        #expect(room.participants[bob.key] == bob)
        #expect(room.nodes == ["node-a", "node-b"])
        #expect(room.streams[1001] == ClusterStream(ssrc: 1001, streamType: .asq, participant: alice.key))
        #expect(room.streams[1002]?.streamType == .vsq)
        #expect(room.streams[2001]?.participant == bob.key)
        #expect(room.streams[1003] == nil)  // another room's stream
        #expect(room.participants[bob.key]?.streams(from: alice.key) == [.asq])
        #expect(room.participants[bob.key]?.streams(from: ParticipantKey(node: "node-a", id: 9)) == [.asq, .vsq])
        #expect(try await a.members(of: "other") == keys(("node-a", 2)))

        try await waitUntil("both heartbeats") { try await a.node.nodes().map(\.name) == ["node-a", "node-b"] }
        #expect(try await b.node.nodes().map(\.advertise) == ["127.0.0.1:5001", "127.0.0.1:5002"])
        b.node.setLoad(0.25)
        try await waitUntil("b's load") { try await a.node.nodes().last?.load == 0.25 }
    }

    /// A participant of the SFU's own registry maps onto the cluster's with the same names.
    @Test func sessionRegistryParticipantMapsOntoTheCluster() throws {
        var registry = SessionRegistry(capacity: 8, keepaliveTimeout: .seconds(10))
        let first = try registry.register(from: .ipv4(.loopback, port: 4000), mediaPort: 0, receive: .all, now: 1)
        let second = try registry.register(from: .ipv4(.loopback, port: 4001), mediaPort: 0, receive: [.asq], now: 1)
        try registry.subscribe(second.id, session: second.session, to: first.id, streams: [.vhq], from: .ipv4(.loopback, port: 4001), now: 2)
        let mapped = ClusterParticipant(registry.participants[second.id]!, node: "n1")
        #expect(mapped.key == ParticipantKey(node: "n1", id: second.id))
        #expect(mapped.ssrcs == second.ssrcs && mapped.room == RoomName.defaultRoom)
        #expect(mapped.defaultStreams == [.asq])
        #expect(mapped.perSource == [ParticipantKey(node: "n1", id: first.id): [.vhq]])
        #expect(ParticipantKey("node.x-1/42") == ParticipantKey(node: "node.x-1", id: 42))
        #expect(ParticipantKey("nothing") == nil)
    }

    /// An SSRC belongs to one participant in the whole cluster; a publish claiming a taken one
    /// is refused whole (none of its other SSRCs is claimed, nothing is stored).
    @Test func ssrcConflictsAreRefusedAtomically() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server), b = try TestNode("node-b", server: server)
        try await a.publish(a.participant(1, asq: 1001, vsq: 1002))
        try await waitUntil("a's heartbeat") { try await b.node.nodes().contains { $0.name == "node-a" } }

        await #expect(throws: ClusterError.ssrcInUse(1002, owner: "node-a r 1 vsq")) {
            try await b.publish(b.participant(7, asq: 3001, vsq: 1002))
        }
        #expect(b.node.localParticipants.isEmpty)
        #expect(try await b.members() == keys(("node-a", 1)))
        #expect(try await b.client.hget("groupcast:ssrcs", field: "3001") == nil)
        // The same node's other participant cannot take it either.
        await #expect(throws: ClusterError.ssrcInUse(1001, owner: "node-a r 1 asq")) {
            try await a.publish(a.participant(2, asq: 1001))
        }
        // Publishing a participant again (an update) keeps its own claims.
        var changed = a.participant(1, asq: 1001, vsq: 1002)
        changed.defaultStreams = [.vhq]
        try await a.publish(changed)
        #expect(try await b.node.room("r").participants[changed.key]?.defaultStreams == [.vhq])
        // After a removal the SSRC is free.
        try await a.node.remove(1)
        try await b.publish(b.participant(7, asq: 3001, vsq: 1002))
        #expect(try await a.members() == keys(("node-b", 7)))
        #expect(try await a.client.hget("groupcast:ssrcs", field: "1002") == "node-b r 7 vsq")
        #expect(try await a.client.hget("groupcast:ssrcs", field: "1001") == nil)
    }

    /// A publish before the node's first synchronization is kept and written by it, after the
    /// reset: before, it was written at once, deleted by the reset and written back, its claims
    /// looking like a dead node's meanwhile (another node could take one over).
    @Test func publishBeforeTheFirstSynchronizationIsWrittenByIt() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: server.configuration)
        var configuration = ClusterNode.Configuration(name: "node-a", advertise: "127.0.0.1:5000")
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.nodeTimeout = .milliseconds(600)
        let node = try ClusterNode(configuration: configuration, client: client)
        let clientTask = Task { await client.run() }
        defer { clientTask.cancel() }
        try await waitUntil("connected") { client.isConnected }

        let participant = ClusterParticipant(node: "node-a", id: 1, room: "r", ssrcs: StreamSSRCs(asq: 1001, vsq: 0, vhq: 0))
        await #expect(throws: ClusterError.notSynchronized) { try await node.publish(participant) }
        #expect(node.localParticipants == [participant])
        #expect(try await client.hget("groupcast:ssrcs", field: "1001") == nil)

        let nodeTask = Task { await node.run() }
        defer { nodeTask.cancel() }
        try await waitUntil("published by the synchronization") {
            try await client.hget("groupcast:ssrcs", field: "1001") == "node-a r 1 asq"
        }
        #expect(try await node.room("r").participants[participant.key] != nil)
        // Once synchronized, a publish writes at once.
        try await node.publish(ClusterParticipant(node: "node-a", id: 2, room: "r", ssrcs: StreamSSRCs(asq: 1002, vsq: 0, vhq: 0)))
        #expect(try await client.hget("groupcast:ssrcs", field: "1002") == "node-a r 2 asq")
    }

    /// Two nodes race for one SSRC: exactly one wins.
    @Test func concurrentClaimsHaveOneWinner() async throws {
        let server = try await RedisServer()
        let nodes = try (0..<4).map { try TestNode("n\($0)", server: server) }
        // Live first: a claim of a node without a heartbeat key is a dead node's, taken over.
        try await waitUntil("all four nodes are live") { try await nodes[0].node.nodes().count == 4 }
        let results = await withTaskGroup(of: Bool.self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask { (try? await node.node.publish(node.participant(UInt32(index + 1), asq: 777))) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        #expect(try await nodes[0].members().count == 1)
    }

    /// A node that stops heartbeating (its process died) leaves every room once its heartbeat
    /// expires: the watchers hear it, its SSRCs are free, the node list drops it.
    @Test func deadNodeDisappearsAfterExpiry() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server), b = try TestNode("node-b", server: server)
        let gone = Recorder(b.client.subscribe(to: b.node.channel(of: "r")))
        let watched = Recorder(b.node.watch(room: "r"))
        defer {
            gone.stop()
            watched.stop()
        }
        try await a.publish(a.participant(1, asq: 1001))
        try await b.publish(b.participant(1, asq: 2001))
        try await waitUntil("both in b's view") { watched.all.last?.participants.count == 2 }
        try await waitUntil("both alive") { try await b.node.nodes().count == 2 }

        let heartbeat = try #require(try await b.node.nodes().first { $0.name == "node-a" }).heartbeatMilliseconds
        a.stop()
        try await waitUntil("b's view without a") { watched.all.last.map { Set($0.participants.keys) } == keys(("node-b", 1)) }
        // Not before a's heartbeat expired: 600 ms after the one read above (a later one, still
        // on its way when a stopped, only moves the expiry later). Measured from the heartbeat,
        // not from the stop: under load the last heartbeat can be well before the stop.
        #expect(Int64(Date().timeIntervalSince1970 * 1000) >= heartbeat + 600)
        #expect(try await b.node.nodes().map(\.name) == ["node-b"])
        try await waitUntil("the reaper announced it") {
            gone.all.contains(.message(RedisPubSubMessage(channel: b.node.channel(of: "r"), payload: Array("gone node-a".utf8))))
        }
        try await b.publish(b.participant(2, asq: 1001))  // a's SSRC is free
        #expect(try await b.client.smembers("groupcast:room:r:nodes") == ["node-b"])
        #expect(try await b.client.exists(["groupcast:room:r:node:node-a", "groupcast:node:node-a:ssrcs", "groupcast:node:node-a:rooms"]) == 0)
    }

    /// A node that restarts under its name drops what its earlier run left at once, without
    /// waiting for the expiry, then publishes what it has now.
    @Test func restartedNodeReplacesItsEarlierState() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server), b = try TestNode("node-b", server: server)
        try await a.publish(a.participant(1, asq: 1001))
        try await a.publish(a.participant(2, asq: 1002))
        a.stop()
        let again = try TestNode("node-a", server: server)
        try await waitUntil("a's leftovers are gone") { try await b.members() == [] }
        try await again.publish(again.participant(1, asq: 1002))
        #expect(try await b.members() == keys(("node-a", 1)))
        #expect(try await b.node.room("r").streams.keys.sorted() == [1002])
    }

    /// A graceful leave removes the node and its participants at once, and its heartbeat
    /// (still running until the process ends) does not bring it back.
    @Test func leaveIsImmediateAndFinal() async throws {
        let server = try await RedisServer()
        // The leave mark lasts one node timeout: long enough here for the checks below.
        let a = try TestNode("node-a", server: server, nodeTimeout: .seconds(30)), b = try TestNode("node-b", server: server)
        try await a.publish(a.participant(1, asq: 1001))
        try await waitUntil("a alive") { try await b.node.nodes().map(\.name).contains("node-a") }
        try await a.node.leave()
        #expect(try await b.members() == [])
        #expect(try await b.node.nodes().map(\.name).contains("node-a") == false)
        try await Task.sleep(for: .milliseconds(300))  // three of a's heartbeat intervals
        #expect(try await b.node.nodes().map(\.name).contains("node-a") == false)
        await #expect(throws: ClusterError.nodeLeft) { try await a.node.publish(a.participant(2, asq: 1002)) }
        // A heartbeat or publish of the run that left, already on its way, is refused by Redis.
        #expect(try await b.client.eval(ClusterScripts.heartbeat, arguments: ["groupcast", "node-a", "30000", "x", "0", "0", "r"]) == .integer(-1))
        let record = ParticipantRecord(a.participant(2, asq: 1002)).encoded()
        #expect(
            try await b.client.eval(ClusterScripts.publishParticipant, arguments: ["groupcast", "node-a", "r", "2", record, "30000", "1002", "asq"])
                == .array([.bulkString(Array("left".utf8))]))
        #expect(try await b.client.exists(["groupcast:node:node-a", "groupcast:room:r:node:node-a"]) == 0)
        a.stop()
        // The node's next run starts afresh.
        let again = try TestNode("node-a", server: server)
        try await again.publish(again.participant(1, asq: 1001))
        #expect(try await b.members() == keys(("node-a", 1)))
    }

    /// Redis restarts empty: both nodes reconnect and publish their state again; the watchers
    /// re-subscribe and see the same room as before.
    @Test func redisRestartConverges() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server), b = try TestNode("node-b", server: server)
        let watched = Recorder(b.node.watch(room: "r"))
        defer { watched.stop() }
        try await a.publish(a.participant(1, asq: 1001, vsq: 1002))
        try await b.publish(b.participant(1, asq: 2001))
        try await waitUntil("both in the view") { watched.all.last?.participants.count == 2 }
        let before = try await b.node.room("r")

        server.stop()
        try await waitUntil("both saw Redis go") { !a.client.isConnected && !b.client.isConnected }
        // A change while Redis is down is kept and published on return.
        await #expect(throws: RedisError.notConnected) { try await a.node.publish(a.participant(2, asq: 1003)) }
        await #expect(throws: RedisError.notConnected) { try await b.node.remove(1) }
        try await server.start()

        try await waitUntil("the room converged") { try await b.members() == keys(("node-a", 1), ("node-a", 2)) }
        #expect(try await a.node.room("r").participants[before.participants.keys.sorted().first!] == before.participants.values.sorted { $0.key < $1.key }.first)
        #expect(try await a.node.room("r").streams.keys.sorted() == [1001, 1002, 1003])
        try await waitUntil("the watch converged") { watched.all.last.map { Set($0.participants.keys) } == keys(("node-a", 1), ("node-a", 2)) }
        try await waitUntil("both nodes alive again") { try await b.node.nodes().count == 2 }
        #expect(try await b.client.hget("groupcast:ssrcs", field: "2001") == nil)
    }

    /// The keys Docs/cluster.md names, with their expiries.
    @Test func schemaAsDocumented() async throws {
        let server = try await RedisServer()
        let a = try TestNode("node-a", server: server)
        try await a.publish(a.participant(3, room: "lobby", asq: 11, vhq: 12))
        try await waitUntil("heartbeat") { try await a.client.exists(["groupcast:node:node-a"]) == 1 }
        let client = a.client
        #expect(try await client.smembers("groupcast:nodes") == ["node-a"])
        let node = try await client.hgetall("groupcast:node:node-a")
        #expect(node["advertise"] == "127.0.0.1:5000" && node["load"] == "0.0" && node["heartbeat"] != nil)
        #expect((1...600).contains(try await client.pttl("groupcast:node:node-a")))
        #expect((1...600).contains(try await client.pttl("groupcast:room:lobby:node:node-a")))
        let record = try #require(try await client.hget("groupcast:room:lobby:node:node-a", field: "3"))
        #expect(record == #"{"defaultStreams":7,"id":3,"node":"node-a","perSource":{},"receivable":7,"room":"lobby","ssrcs":{"asq":11,"vhq":12}}"#)
        #expect(try await client.hgetall("groupcast:ssrcs") == ["11": "node-a lobby 3 asq", "12": "node-a lobby 3 vhq"])
        #expect(try await client.smembers("groupcast:node:node-a:ssrcs") == ["11", "12"])
        #expect(try await client.smembers("groupcast:node:node-a:rooms") == ["lobby"])
        #expect(try await client.smembers("groupcast:room:lobby:nodes") == ["node-a"])
        // Forged records are left out of the view, not trusted.
        try await client.hset("groupcast:room:lobby:node:node-a", [("4", #"{"id":4}"#), ("5", "not json")])
        #expect(try await a.members(of: "lobby") == keys(("node-a", 3)))
        // Names that would break the schema are refused.
        #expect(throws: ClusterError.invalidName("a:b")) { try ClusterNode(configuration: .init(name: "a:b", advertise: "x"), client: client) }
        await #expect(throws: ClusterError.invalidName("no room")) { try await a.node.publish(a.participant(5, room: "no room")) }
        await #expect(throws: ClusterError.notLocal(ParticipantKey(node: "other", id: 1))) {
            try await a.node.publish(ClusterParticipant(node: "other", id: 1, room: "r", ssrcs: .none))
        }
    }
}
