import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization

/// Media between nodes (Docs/cluster.md): watches every room this node has participants in
/// and hands the SFU the other nodes' participants there with their advertised addresses
/// (``SFUServer/setRemoteNodes(_:)``), which the routing table turns into one relayed copy
/// per remote node of each local stream it wants, and into relayed routes for their streams.
///
/// The SFU tells it its rooms (``update(rooms:)``, never blocking); ``run()`` keeps one
/// ``ClusterNode/watch(room:)`` per room and installs after every view that changes anything.
/// While Redis is down nothing changes: the routes installed keep forwarding.
public final class ClusterRelay: Sendable {
    private let node: ClusterNode
    private let logger: Logger
    private let install: @Sendable ([RemoteNode]) -> Void
    private let roomLists: AsyncStream<Set<String>>
    private let roomContinuation: AsyncStream<Set<String>>.Continuation
    /// The newest view of each watched room.
    private let views = Mutex<[String: ClusterRoom]>([:])
    /// Signalled when a view changed (or a read of the live nodes must be retried).
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation

    /// `install` gets the remote nodes after every change (``SFUServer/setRemoteNodes(_:)``).
    public init(node: ClusterNode, logger: Logger, install: @escaping @Sendable ([RemoteNode]) -> Void) {
        self.node = node
        self.logger = logger
        self.install = install
        (roomLists, roomContinuation) = AsyncStream.makeStream(of: Set<String>.self, bufferingPolicy: .bufferingNewest(1))
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The rooms the SFU's participants are in now.
    @Sendable public func update(rooms: Set<String>) {
        roomContinuation.yield(rooms)
    }

    /// The SFU's participants now (``SFUServer/Configuration/participantsChanged``): their rooms.
    @Sendable public func update(_ participants: [Participant]) {
        update(rooms: Set(participants.map(\.room)))
    }

    /// Watches and installs until cancelled.
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
                views.withLock { _ = $0.removeValue(forKey: room) }
                changed.yield()
            }
            for room in rooms where watchers[room] == nil {
                watchers[room] = Task {
                    for await view in node.watch(room: room) {
                        guard !Task.isCancelled else { break }
                        views.withLock { $0[room] = view }
                        changed.yield()
                    }
                }
            }
        }
    }

    private func installChanges() async {
        var installed: [RemoteNode]?
        for await _ in changes {
            let rooms = views.withLock { Array($0.values) }
            let nodes: [ClusterNodeInfo]
            do {
                nodes = try await node.nodes()
            } catch {
                // Redis is down: keep the routes; try again shortly (a reconnection re-reads
                // every room too).
                try? await Task.sleep(for: .milliseconds(100))
                changed.yield()
                continue
            }
            let remote = Self.remoteNodes(rooms: rooms, nodes: nodes, localNode: node.configuration.name, logger: logger)
            guard remote != installed else { continue }
            installed = remote
            install(remote)
        }
    }

    /// The other live nodes' participants in `rooms`, with their advertised addresses, as the
    /// routing table takes them. A node whose advertised address does not parse is left out and
    /// logged; a participant's SUBSCRIBE overrides naming another node's sources are dropped
    /// (they do not concern this node).
    public static func remoteNodes(rooms: [ClusterRoom], nodes: [ClusterNodeInfo], localNode: String, logger: Logger) -> [RemoteNode] {
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
        return nodes.compactMap { info -> RemoteNode? in
            guard let members = participants[info.name] else { return nil }
            guard let address = SocketAddress(info.advertise), address.port != 0 else {
                logger.warning("cluster node advertises an unusable address; not relaying to or from it", metadata: ["node": "\(info.name)", "advertise": "\(info.advertise)"])
                return nil
            }
            return RemoteNode(name: info.name, address: address, participants: members.sorted { ($0.room, $0.id) < ($1.room, $1.id) })
        }.sorted { $0.name < $1.name }
    }
}
