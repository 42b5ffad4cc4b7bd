import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization

/// Media between nodes (Docs/cluster.md, "Media between nodes", "Relay trees"): watches every
/// room this node has participants in, attaches this node to the relay tree of each other
/// node's stream its participants want (and leaves the trees of the streams they no longer
/// want), and hands the SFU the other nodes with their advertised addresses and this node's
/// place in every tree (``SFUServer/setRemoteNodes(_:relays:)``): the routing table then
/// takes each such stream from its parent only and sends every stream to this node's children.
///
/// A new edge is pending in Redis until this node has installed the route from its parent;
/// only then does it confirm it and the parent start sending, so nothing arrives before this
/// node accepts it (no `unknown_ssrc` at start). Leaving a tree mirrors it: a node whose
/// participants no longer want a stream (or that has none left in its room) detaches in Redis
/// but keeps accepting the stream from its former parent for ``drainTime``, the packets the
/// parent sent before it read the detach (no `unknown_ssrc` at the end). The SFU tells it its participants
/// (``update(_:)``, never blocking); ``run()`` keeps one ``ClusterNode/watch(room:)`` per room
/// and works after every view that changes anything. While Redis is down nothing changes: the
/// routes installed keep forwarding.
public final class ClusterRelay: Sendable {
    private let node: ClusterNode
    private let logger: Logger
    private let install: @Sendable ([RemoteNode], [UInt32: StreamRelay]) -> Void
    private let roomLists: AsyncStream<Set<String>>
    private let roomContinuation: AsyncStream<Set<String>>.Continuation
    /// The SFU's participants, as of the last ``update(_:)``.
    private let participants = Mutex<[Participant]>([])
    /// The newest view of each watched room, and the last view of each room this node's
    /// participants have all left until it has detached from that room's trees.
    private let views = Mutex<RoomViews>(RoomViews())
    /// Signalled when a view or the participants changed (or Redis work must be retried).
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation

    /// How long a node that detached from a stream's tree still accepts the stream from its
    /// former parent: the parent stops once it has read the detach (a Redis round trip or two).
    public static let drainTime: Duration = .seconds(2)

    struct RoomViews {
        var watched: [String: ClusterRoom] = [:]
        var departed: [String: ClusterRoom] = [:]
    }

    /// A stream this node detached from, still accepted from `parent` until `until`.
    struct Drain {
        var room: String
        var parent: String
        var until: ContinuousClock.Instant
    }

    /// `install` gets the remote nodes and this node's relay trees after every change
    /// (``SFUServer/setRemoteNodes(_:relays:)``); it must have installed them when it returns.
    public init(node: ClusterNode, logger: Logger, install: @escaping @Sendable ([RemoteNode], [UInt32: StreamRelay]) -> Void) {
        self.node = node
        self.logger = logger
        self.install = install
        (roomLists, roomContinuation) = AsyncStream.makeStream(of: Set<String>.self, bufferingPolicy: .bufferingNewest(1))
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The SFU's participants now (``SFUServer/Configuration/participantsChanged``): their
    /// rooms are watched, and what they receive decides the trees this node attaches to.
    @Sendable public func update(_ participants: [Participant]) {
        self.participants.withLock { $0 = participants }
        roomContinuation.yield(Set(participants.map(\.room)))
        changed.yield()
    }

    /// Watches, attaches and installs until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchRooms() }
            group.addTask { await self.installChanges() }
        }
    }

    private func watchRooms() async {
        var watchers: [String: Task<Void, Never>] = [:]
        defer { watchers.values.forEach { $0.cancel() } }
        for await rooms in roomLists {
            for (room, watcher) in watchers where !rooms.contains(room) {
                watcher.cancel()
                watchers.removeValue(forKey: room)
                // Its last view stays until this node has detached from the room's trees.
                views.withLock {
                    if let view = $0.watched.removeValue(forKey: room) { $0.departed[room] = view }
                }
                changed.yield()
            }
            for room in rooms where watchers[room] == nil {
                views.withLock { _ = $0.departed.removeValue(forKey: room) }
                watchers[room] = Task {
                    for await view in node.watch(room: room) {
                        guard !Task.isCancelled else { break }
                        views.withLock { $0.watched[room] = view }
                        changed.yield()
                    }
                }
            }
        }
    }

    private func installChanges() async {
        var installed: (nodes: [RemoteNode], relays: [UInt32: StreamRelay])?
        var draining: [UInt32: Drain] = [:]
        var wakeUp: Task<Void, Never>?
        defer { wakeUp?.cancel() }
        for await _ in changes {
            let (watched, departed) = views.withLock { ($0.watched, $0.departed) }
            var rooms = (Array(watched.values) + departed.values.filter { watched[$0.name] == nil }).sorted { $0.name < $1.name }
            let participants = self.participants.withLock { $0 }
            let local = node.configuration.name
            let now = ContinuousClock.now
            draining = draining.filter { $0.value.until > now }
            do {
                let nodes = try await node.nodes()
                let live = Set(nodes.map(\.name))
                for index in rooms.indices {
                    let room = rooms[index]
                    for stream in Self.streamsToAttach(room: room, participants: participants, localNode: local, live: live) {
                        let edge = try await node.attachRelay(ssrc: stream.ssrc, room: room.name, origin: stream.participant.node)
                        rooms[index].relays[stream.ssrc, default: [:]][local] = edge
                    }
                    for ssrc in Self.streamsToDetach(room: room, participants: participants, localNode: local) {
                        let parent = room.relays[ssrc]?[local]?.parent
                        try await node.detachRelay(ssrc: ssrc, room: room.name)
                        rooms[index].relays[ssrc]?[local] = nil
                        if let parent { draining[ssrc] = Drain(room: room.name, parent: parent, until: now + Self.drainTime) }
                    }
                }
                var relays = Self.relays(rooms: rooms, localNode: local, live: live)
                // Still accept what the former parents sent before they read the detach.
                for (ssrc, drain) in draining where relays[ssrc]?.parent == nil && live.contains(drain.parent) {
                    relays[ssrc, default: StreamRelay()].parent = drain.parent
                }
                let remote = Self.remoteNodes(rooms: rooms, nodes: nodes, relays: relays, localNode: local, logger: logger)
                if installed?.nodes != remote || installed?.relays != relays {
                    install(remote, relays)
                    installed = (remote, relays)
                }
                // The routes from the new parents are in: they may send now.
                let addressed = Set(remote.map(\.name))
                for room in rooms {
                    for (ssrc, edges) in room.relays {
                        guard let edge = edges[local], !edge.ready, relays[ssrc]?.parent == edge.parent, addressed.contains(edge.parent)
                        else { continue }
                        try await node.confirmRelay(ssrc: ssrc, room: room.name, parent: edge.parent)
                    }
                }
                // A departed room is detached from: its view goes once nothing drains from it.
                let finished = views.withLock { views in
                    departed.filter { name, view in views.departed[name] == view && !draining.values.contains { $0.room == name } }.keys
                        .map { views.departed.removeValue(forKey: $0) }.count
                }
                if finished > 0 { changed.yield() }
                if let next = draining.values.map(\.until).min() {
                    wakeUp?.cancel()
                    wakeUp = Task { [changed = self.changed] in
                        try? await Task.sleep(until: next, clock: .continuous)
                        if !Task.isCancelled { changed.yield() }
                    }
                }
            } catch {
                // Redis is down: keep the routes; try again shortly (a reconnection re-reads
                // every room too).
                logger.debug("cluster relay: Redis unavailable, retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(100))
                changed.yield()
            }
        }
    }

    /// The other nodes' streams of `room` some local participant wants whose tree this node is
    /// not (validly) attached to: no edge, or its parent is dead or has left the tree.
    static func streamsToAttach(room: ClusterRoom, participants: [Participant], localNode: String, live: Set<String>) -> [ClusterStream] {
        room.streams.values.filter { stream in
            let origin = stream.participant.node
            guard origin != localNode, live.contains(origin), wanted(stream, in: room.name, by: participants) else { return false }
            guard let edge = room.relays[stream.ssrc]?[localNode] else { return true }
            return !live.contains(edge.parent) || (edge.parent != origin && room.relays[stream.ssrc]?[edge.parent] == nil)
        }.sorted { $0.ssrc < $1.ssrc }
    }

    /// The trees of `room` this node is attached to although no local participant wants their
    /// stream any more (or it has gone).
    static func streamsToDetach(room: ClusterRoom, participants: [Participant], localNode: String) -> [UInt32] {
        let streams = room.streams
        return room.relays.compactMap { ssrc, edges in
            guard edges[localNode] != nil else { return nil }
            guard let stream = streams[ssrc], stream.participant.node != localNode, wanted(stream, in: room.name, by: participants) else { return ssrc }
            return nil
        }.sorted()
    }

    static func wanted(_ stream: ClusterStream, in room: String, by participants: [Participant]) -> Bool {
        participants.contains { $0.room == room && $0.streamsFromOtherNodes.contains(stream.streamType) }
    }

    /// This node's place in every tree of `rooms`: for another node's stream, the parent it is
    /// attached to (pending or ready: the route from it must be in before it is confirmed);
    /// for every stream, the live children whose edge to this node is ready (never the parent
    /// nor the origin node).
    public static func relays(rooms: [ClusterRoom], localNode: String, live: Set<String>) -> [UInt32: StreamRelay] {
        var relays: [UInt32: StreamRelay] = [:]
        for room in rooms {
            for (ssrc, stream) in room.streams {
                let edges = room.relays[ssrc] ?? [:]
                let origin = stream.participant.node
                var relay = StreamRelay()
                if origin != localNode {
                    guard let edge = edges[localNode], live.contains(edge.parent) else { continue }
                    relay.parent = edge.parent
                }
                relay.children = edges.filter { child, edge in
                    edge.parent == localNode && edge.ready && live.contains(child) && child != localNode && child != origin
                        && child != relay.parent
                }.keys.sorted()
                if relay.parent != nil || !relay.children.isEmpty { relays[ssrc] = relay }
            }
        }
        return relays
    }

    /// The other live nodes' participants in `rooms`, and the nodes of this node's `relays`
    /// (parents and children) with their advertised addresses, as the routing table takes
    /// them. A node whose advertised address does not parse is left out and logged; a
    /// participant's SUBSCRIBE overrides naming another node's sources are dropped (they do
    /// not concern this node).
    public static func remoteNodes(
        rooms: [ClusterRoom], nodes: [ClusterNodeInfo], relays: [UInt32: StreamRelay] = [:], localNode: String, logger: Logger
    ) -> [RemoteNode] {
        var participants: [String: [RemoteParticipant]] = [:]
        for room in rooms {
            for participant in room.participants.values where participant.node != localNode {
                let overrides = participant.perSource.filter { $0.key.node == localNode }
                participants[participant.node, default: []].append(RemoteParticipant(
                    id: participant.id, room: participant.room, ssrcs: participant.ssrcs, receivable: participant.receivable,
                    defaultStreams: participant.defaultStreams,
                    perLocalSource: Dictionary(uniqueKeysWithValues: overrides.map { ($0.key.id, $0.value) })))
            }
        }
        let inTrees = Set(relays.values.flatMap { $0.children + ($0.parent.map { [$0] } ?? []) })
        return nodes.compactMap { info -> RemoteNode? in
            guard info.name != localNode, participants[info.name] != nil || inTrees.contains(info.name) else { return nil }
            guard let address = SocketAddress(info.advertise), address.port != 0 else {
                logger.warning("cluster node advertises an unusable address; not relaying to or from it", metadata: ["node": "\(info.name)", "advertise": "\(info.advertise)"])
                return nil
            }
            let members = participants[info.name] ?? []
            return RemoteNode(name: info.name, address: address, participants: members.sorted { ($0.room, $0.id) < ($1.room, $1.id) })
        }.sorted { $0.name < $1.name }
    }
}
