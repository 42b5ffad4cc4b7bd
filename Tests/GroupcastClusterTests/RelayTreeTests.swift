import Foundation
@testable import GroupcastCluster
import GroupcastProtocol
import GroupcastRedis
import GroupcastSFU
import Logging
import Testing

/// Relay trees in a real redis-server (Docs/cluster.md, "Relay trees"): the attach script's
/// choice of parent (fan-out, load, depth, no cycle), the pending edge a parent does not send
/// on, a dead parent's children attaching again, and what detaching and leaving clean up.
@Suite(.serialized) struct RelayTreeTests {
    static let ssrc: UInt32 = 1001

    /// The edges of the test stream's tree as Redis holds them: child -> `PARENT STATE`.
    static func edges(_ server: RedisServer) -> String? { server.command(["HGETALL", "groupcast:room:r:relay:\(ssrc)"]) }

    /// Waits until the first node sees them all alive, with these loads in their heartbeats.
    static func waitForNodes(_ nodes: [TestNode], loads: [String: Double] = [:]) async throws {
        let names = Set(nodes.map(\.node.configuration.name))
        try await waitUntil("all nodes live with their loads") {
            let seen = try await nodes[0].node.nodes()
            return names.isSubset(of: seen.map(\.name)) && loads.allSatisfy { name, load in seen.first { $0.name == name }?.load == load }
        }
    }

    /// The origin takes children up to its fan-out; later ones go to the carrier with room and
    /// the lowest reported load (ties: the shallowest, then the name), never deeper than the
    /// attaching node's maximum depth; a child keeps a parent that still reaches the origin;
    /// an edge is pending until confirmed, and only ready edges become the parent's children.
    @Test func parentsFollowFanOutLoadAndDepth() async throws {
        let server = try await RedisServer()
        let origin = try TestNode("o", server: server, port: 5010, relayFanout: 1)
        let a = try TestNode("a", server: server, port: 5011, relayFanout: 2)
        let b = try TestNode("b", server: server, port: 5012, relayFanout: 2)
        let c = try TestNode("c", server: server, port: 5013)
        let shallow = try TestNode("d", server: server, port: 5014, maxRelayDepth: 2)
        try await origin.publish(origin.participant(1, asq: Self.ssrc))
        try await Self.waitForNodes([origin, a, b, c, shallow])

        #expect(try await a.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o") == RelayEdge(parent: "o", ready: false))
        // Pending: the origin does not send to a yet.
        var room = try await origin.node.room("r")
        #expect(room.relays[Self.ssrc] == ["a": RelayEdge(parent: "o", ready: false)])
        #expect(ClusterRelay.relays(rooms: [room], localNode: "o", live: ["o", "a"]).isEmpty)
        #expect(try await a.node.confirmRelay(ssrc: Self.ssrc, room: "r", parent: "o"))
        room = try await origin.node.room("r")
        #expect(ClusterRelay.relays(rooms: [room], localNode: "o", live: ["o", "a"]) == [Self.ssrc: StreamRelay(children: ["a"])])
        // Attaching again keeps the parent and its state.
        #expect(try await a.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o") == RelayEdge(parent: "o", ready: true))

        // The origin is full (fan-out 1): b goes to the only carrier, a.
        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "a")
        // Two carriers with room, a (depth 1) and b (depth 2): the lower load wins.
        a.node.setLoad(500)
        b.node.setLoad(20)
        try await Self.waitForNodes([origin, a, b], loads: ["a": 500, "b": 20])
        #expect(try await c.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "b")
        // d may be at most 2 deep: b (depth 2) cannot be its parent, a can.
        #expect(try await shallow.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "a")
        #expect(try await origin.node.room("r").relays[Self.ssrc]?.mapValues(\.parent) == ["a": "o", "b": "a", "c": "b", "d": "a"])
    }

    /// A node whose parent is dead attaches again and never below itself: with the origin full
    /// and only its own child left as a carrier, it goes to the origin over the fan-out rather
    /// than form a cycle. Its child keeps it as parent. The reaper then deletes the dead node's
    /// edges.
    @Test func aDeadParentsChildAttachesAgainWithoutACycle() async throws {
        let server = try await RedisServer()
        let origin = try TestNode("o", server: server, port: 5020, relayFanout: 1)
        let a = try TestNode("a", server: server, port: 5021, relayFanout: 1)
        let b = try TestNode("b", server: server, port: 5022, relayFanout: 1)
        let c = try TestNode("c", server: server, port: 5023, relayFanout: 1)
        try await origin.publish(origin.participant(1, asq: Self.ssrc))
        for node in [a, b, c] { try await node.publish(node.participant(1)) }
        try await Self.waitForNodes([origin, a, b, c])
        for node in [a, b, c] {
            let edge = try #require(try await node.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o"))
            #expect(try await node.node.confirmRelay(ssrc: Self.ssrc, room: "r", parent: edge.parent))
        }
        #expect(try await origin.node.room("r").relays[Self.ssrc]?.mapValues(\.parent) == ["a": "o", "b": "a", "c": "b"])

        // a dies, and no reaper may forget it yet (it is out of the node index): its edge still
        // fills the origin, and b's only other candidate is c, in b's own subtree.
        a.stop()
        try await Task.sleep(for: .milliseconds(300))  // a heartbeat on its way lands first
        #expect(server.command(["SREM", "groupcast:nodes", "a"]) == "1")
        // Gone either way: deleted here, or already expired when the machine is loaded.
        _ = server.command(["DEL", "groupcast:node:a"])
        #expect(server.command(["EXISTS", "groupcast:node:a"]) == "0")
        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o") == RelayEdge(parent: "o", ready: false))
        #expect(try await c.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o") == RelayEdge(parent: "b", ready: true))

        // Back in the index, a is forgotten by the next reaper: its edge goes.
        #expect(server.command(["SADD", "groupcast:nodes", "a"]) == "1")
        try await waitUntil("a reaper forgot a") {
            try await origin.node.room("r").relays[Self.ssrc]?.mapValues(\.parent) == ["b": "o", "c": "b"]
        }
    }

    /// Detaching takes the node's children's edges too (they attach again); a node leaving
    /// takes its edges and its children's; the origin's participant leaving takes its trees.
    @Test func detachLeaveAndRemoveCleanUp() async throws {
        let server = try await RedisServer()
        let origin = try TestNode("o", server: server, port: 5030, relayFanout: 1)
        let a = try TestNode("a", server: server, port: 5031, relayFanout: 1)
        let b = try TestNode("b", server: server, port: 5032)
        try await origin.publish(origin.participant(1, asq: Self.ssrc))
        // a and b have participants in the room, as carriers do (the reaper finds them by room).
        try await a.publish(a.participant(1))
        try await b.publish(b.participant(1))
        try await Self.waitForNodes([origin, a, b])
        #expect(try await a.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "o")
        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "a")

        try await a.node.detachRelay(ssrc: Self.ssrc, room: "r")
        #expect(try await origin.node.room("r").relays[Self.ssrc] == nil)
        #expect(server.command(["SISMEMBER", "groupcast:room:r:relays", "\(Self.ssrc)"]) == "0")

        #expect(try await a.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "o")
        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "a")
        try await a.node.leave()
        #expect(try await origin.node.room("r").relays[Self.ssrc] == nil)

        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o")?.parent == "o")
        try await origin.node.remove(1)
        #expect(Self.edges(server) == "")
        #expect(server.command(["SISMEMBER", "groupcast:room:r:relays", "\(Self.ssrc)"]) == "0")
        // A dead origin's stream has no tree to attach to.
        try await origin.node.leave()
        #expect(try await b.node.attachRelay(ssrc: Self.ssrc, room: "r", origin: "o") == nil)
    }
}
