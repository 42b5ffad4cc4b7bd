import Foundation
import GroupcastProtocol
import GroupcastRedis
import Logging
import Synchronization

/// One SFU node's membership in a cluster (Docs/cluster.md): its heartbeat, its local
/// participants and their streams published in Redis, and the views of the other nodes and of
/// rooms.
///
/// The node keeps what it published in memory and writes it again whenever Redis may have lost
/// it (a reconnect, a heartbeat finding its keys gone), so the cluster converges after a Redis
/// restart. While Redis is unreachable, ``publish(_:)`` and ``remove(_:room:)`` record the
/// change locally and throw ``RedisError/notConnected``; it reaches Redis on reconnection.
public final class ClusterNode: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// The node's name, unique in the cluster (`A-Z a-z 0-9 . _ -`, 1-64 bytes).
        public var name: String
        /// `IP:PORT` other nodes send relayed media to.
        public var advertise: String
        /// All keys start with it; one Redis can hold several clusters under different prefixes.
        public var prefix: String = "groupcast"
        public var heartbeatInterval: Duration = .seconds(1)
        /// A node whose heartbeat is this old is dead: its participants leave every room.
        public var nodeTimeout: Duration = .seconds(3)
        /// How many other nodes this node prefers to relay one stream to (its children in the
        /// stream's relay tree); later ones attach to other carriers (Docs/cluster.md, "Relay
        /// trees"). 0: no limit (every node takes the stream from its origin).
        public var relayFanout: Int = 0
        /// The deepest a node may be in a relay tree (the origin's children are at depth 1).
        public var maxRelayDepth: Int = 8

        public init(name: String, advertise: String) {
            self.name = name
            self.advertise = advertise
        }
    }

    public let configuration: Configuration
    private let client: RedisClient
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// What this node published (or will, once Redis is back), by participant id.
        var participants: [UInt32: ClusterParticipant] = [:]
        /// Removals Redis has not seen yet (it was unreachable), by participant id.
        var removals: [UInt32: (room: String, ssrcs: [UInt32])] = [:]
        var load: Double = 0
        /// Whether this run of the node has dropped an earlier run's leftovers.
        var reset = false
        /// Whether this run's first synchronization wrote the heartbeat after the reset: only
        /// then may a publish write; an earlier record would be deleted by the reset, and its
        /// claims would look like a dead node's until the heartbeat.
        var synchronized = false
        /// After ``leave()``: nothing is written any more.
        var left = false
    }

    public init(configuration: Configuration, client: RedisClient, logger: Logger = Logger(label: "groupcast.cluster")) throws(ClusterError) {
        guard RoomName.isValid(configuration.name) else { throw ClusterError.invalidName(configuration.name) }
        guard RoomName.isValid(configuration.prefix) else { throw ClusterError.invalidName(configuration.prefix) }
        self.configuration = configuration
        self.client = client
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.name)"
        self.logger = logger
    }

    private var prefix: String { configuration.prefix }
    private var name: String { configuration.name }
    private var ttlMilliseconds: String { String(Self.milliseconds(configuration.nodeTimeout)) }

    /// The Redis channel on which changes to `room` are announced.
    public func channel(of room: String) -> String { "\(prefix):room:\(room):events" }

    /// Heartbeats, forgets dead nodes and re-publishes after reconnections until cancelled. The
    /// ``RedisClient`` must be running. Cancelling is what a crash looks like to the others:
    /// the node's state expires after ``Configuration/nodeTimeout``; ``leave()`` is the
    /// graceful way out.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in self.client.connectionEvents() where event == .connected {
                    await self.synchronize()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    await self.tick()
                    try? await Task.sleep(for: self.configuration.heartbeatInterval)
                }
            }
        }
    }

    /// What the heartbeat reports as this node's load.
    public func setLoad(_ load: Double) {
        state.withLock { $0.load = load }
    }

    /// The participants this node publishes.
    public var localParticipants: [ClusterParticipant] {
        state.withLock { $0.participants.values.sorted { $0.id < $1.id } }
    }

    /// Publishes a local participant (new or changed) and claims its SSRCs cluster-wide, all or
    /// none. Throws ``ClusterError/ssrcInUse(_:owner:)`` when another participant of a live
    /// node holds one of them (nothing is stored then), or the Redis error (the participant is
    /// kept and published on reconnection). Before this run's first synchronization (reset and
    /// heartbeat, right after ``run()`` connects) the participant is kept and published by it,
    /// and ``ClusterError/notSynchronized`` is thrown.
    public func publish(_ participant: ClusterParticipant) async throws {
        guard participant.node == name, participant.id != 0 else { throw ClusterError.notLocal(participant.key) }
        guard !state.withLock({ $0.left }) else { throw ClusterError.nodeLeft }
        guard RoomName.isValid(participant.room) else { throw ClusterError.invalidName(participant.room) }
        // Before the first synchronization the participant waits in memory, atomically with
        // the check: the synchronization sets `synchronized` before it republishes.
        let previous: ClusterParticipant?? = state.withLock { state in
            guard state.synchronized else {
                state.participants[participant.id] = participant
                return nil
            }
            return .some(state.participants[participant.id])
        }
        guard let previous else { throw ClusterError.notSynchronized }
        do {
            try await write(participant)
        } catch let error as ClusterError {
            throw error
        } catch {
            state.withLock { $0.participants[participant.id] = participant }
            throw error
        }
        state.withLock { state in
            state.participants[participant.id] = participant
            // A pending removal of this id is older than this participant.
            if let removal = state.removals[participant.id], removal.room != participant.room { return }
            state.removals.removeValue(forKey: participant.id)
        }
        // A participant that changed rooms (the SFU never does this, but the API allows it)
        // leaves its old room's hash; claims it gave up are released.
        if let previous {
            let dropped = Set(previous.ssrcs.streams.map(\.ssrc)).subtracting(participant.ssrcs.streams.map(\.ssrc))
            if previous.room != participant.room || !dropped.isEmpty {
                try await erase(id: previous.id, room: previous.room == participant.room ? nil : previous.room, ssrcs: Array(dropped))
            }
        }
    }

    /// Removes a local participant from its room and releases its SSRCs. Without Redis, the
    /// removal is kept and done on reconnection (the error is thrown all the same).
    public func remove(_ id: UInt32) async throws {
        guard let participant = state.withLock({ $0.participants.removeValue(forKey: id) }) else { return }
        let removal = (room: participant.room, ssrcs: participant.ssrcs.streams.map(\.ssrc))
        do {
            try await erase(id: id, room: removal.room, ssrcs: removal.ssrcs)
        } catch {
            state.withLock { $0.removals[id] = removal }
            throw error
        }
    }

    /// Leaves the cluster at once: every local participant and the node's heartbeat go.
    public func leave() async throws {
        state.withLock { state in
            state.participants = [:]
            state.removals = [:]
            state.left = true
        }
        _ = try await client.eval(ClusterScripts.leaveNode, arguments: [prefix, name, ttlMilliseconds])
    }

    /// The live nodes (heartbeat not expired), by name.
    public func nodes() async throws -> [ClusterNodeInfo] {
        let reply = try await client.eval(ClusterScripts.liveNodes, arguments: [prefix])
        return try Self.pairs(reply, command: "live nodes").compactMap { node, fields in
            guard let advertise = fields["advertise"], let load = fields["load"].flatMap(Double.init),
                let heartbeat = fields["heartbeat"].flatMap(Int64.init)
            else {
                logger.warning("malformed node entry in Redis", metadata: ["entry": "\(node)"])
                return nil
            }
            return ClusterNodeInfo(name: node, advertise: advertise, load: load, heartbeatMilliseconds: heartbeat)
        }.sorted { $0.name < $1.name }
    }

    /// The participants of `room` on every live node. Records that do not decode (another
    /// version, a forged write) are left out and logged.
    public func room(_ room: String) async throws -> ClusterRoom {
        guard RoomName.isValid(room) else { throw ClusterError.invalidName(room) }
        let reply = try await client.eval(ClusterScripts.roomView, arguments: [prefix, room])
        var view = ClusterRoom(name: room)
        for (node, records) in try Self.pairs(reply, command: "room view") {
            if node.hasPrefix("relay:") {
                guard let ssrc = UInt32(node.dropFirst("relay:".count)) else { continue }
                for (child, text) in records {
                    guard RoomName.isValid(child), let edge = RelayEdge(text) else {
                        logger.warning("malformed relay edge in Redis", metadata: ["room": "\(room)", "ssrc": "\(ssrc)", "child": "\(child)"])
                        continue
                    }
                    view.relays[ssrc, default: [:]][child] = edge
                }
                continue
            }
            for (field, record) in records {
                guard let participant = ParticipantRecord.decode(record), participant.node == node, participant.room == room,
                    String(participant.id) == field
                else {
                    logger.warning("malformed participant record in Redis", metadata: ["room": "\(room)", "node": "\(node)", "field": "\(field)"])
                    continue
                }
                view.participants[participant.key] = participant
            }
        }
        return view
    }

    /// The room after every change announced on its channel, and after every (re)subscription
    /// (messages may have been missed meanwhile), read again until the read succeeds; a view
    /// equal to the last one is not repeated. Ends when the ``RedisClient`` stops.
    public func watch(room name: String) -> AsyncStream<ClusterRoom> {
        let events = client.subscribe(to: channel(of: name))
        let (stream, continuation) = AsyncStream.makeStream(of: ClusterRoom.self, bufferingPolicy: .bufferingNewest(64))
        let task = Task {
            var last: ClusterRoom?
            for await _ in events {
                // The read must succeed: after a re-subscription no message may follow (the
                // changes happened before it), and the command connection may come back after
                // the pub/sub one.
                var view: ClusterRoom?
                while view == nil, !Task.isCancelled {
                    do { view = try await room(name) } catch { try? await Task.sleep(for: .milliseconds(50)) }
                }
                guard let view, view != last else { continue }
                last = view
                continuation.yield(view)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    // MARK: Relay trees

    /// Attaches this node to the relay tree of `ssrc`, a stream of node `origin` in `room`
    /// (``ClusterScripts/attachRelay``): its current parent if that still reaches the origin,
    /// else the one Redis picks by fan-out and load. `nil` when the origin node is not alive.
    /// A new edge is pending until ``confirmRelay(ssrc:room:parent:)``.
    public func attachRelay(ssrc: UInt32, room: String, origin: String) async throws -> RelayEdge? {
        guard !state.withLock({ $0.left }) else { throw ClusterError.nodeLeft }
        let reply = try await client.eval(
            ClusterScripts.attachRelay,
            arguments: [prefix, room, String(ssrc), name, origin, String(max(1, configuration.maxRelayDepth))])
        guard case .array(let parts) = reply, let first = parts.first?.string else { throw RedisError.unexpectedReply("attach relay", reply) }
        if first == "none", parts.count == 1 { return nil }
        guard parts.count == 2, let state = parts[1].string, let edge = RelayEdge("\(first) \(state)") else {
            throw RedisError.unexpectedReply("attach relay", reply)
        }
        return edge
    }

    /// This node installed its route of `ssrc` from `parent`: the pending edge becomes ready
    /// and the parent starts sending. Returns false if the edge changed meanwhile.
    @discardableResult
    public func confirmRelay(ssrc: UInt32, room: String, parent: String) async throws -> Bool {
        let reply = try await client.eval(ClusterScripts.confirmRelay, arguments: [prefix, room, String(ssrc), name, parent])
        guard case .integer(let confirmed) = reply else { throw RedisError.unexpectedReply("confirm relay", reply) }
        return confirmed == 1
    }

    /// This node no longer takes `ssrc`: its edge goes, and its children attach elsewhere.
    public func detachRelay(ssrc: UInt32, room: String) async throws {
        _ = try await client.eval(ClusterScripts.detachRelay, arguments: [prefix, room, String(ssrc), name])
    }

    // MARK: Redis writes

    private func write(_ participant: ClusterParticipant) async throws {
        var arguments = [prefix, name, participant.room, String(participant.id), ParticipantRecord(participant).encoded(), ttlMilliseconds]
        for (type, ssrc) in participant.ssrcs.streams { arguments += [String(ssrc), "\(type)".lowercased()] }
        let reply = try await client.eval(ClusterScripts.publishParticipant, arguments: arguments)
        guard case .array(let parts) = reply, let status = parts.first?.string else {
            throw RedisError.unexpectedReply("publish participant", reply)
        }
        if status == "left" { throw ClusterError.nodeLeft }
        if status == "conflict", parts.count == 3, let ssrc = parts[1].string.flatMap(UInt32.init), let owner = parts[2].string {
            throw ClusterError.ssrcInUse(ssrc, owner: owner)
        }
        guard status == "ok" else { throw RedisError.unexpectedReply("publish participant", reply) }
    }

    /// Removes participant `id` from `room` (if given) and releases `ssrcs` it holds.
    private func erase(id: UInt32, room: String?, ssrcs: [UInt32]) async throws {
        // A room this node is not in has no hash of it; the script only releases the claims.
        _ = try await client.eval(
            ClusterScripts.removeParticipant, arguments: [prefix, name, room ?? "", String(id)] + ssrcs.map { String($0) })
    }

    /// After (re)connecting: the first time, drop what an earlier run of this node left; then
    /// write the heartbeat and every local participant.
    private func synchronize() async {
        guard !state.withLock({ $0.left }) else { return }
        do {
            if !state.withLock({ $0.reset }) {
                _ = try await client.eval(ClusterScripts.resetNode, arguments: [prefix, name])
                state.withLock { $0.reset = true }
            }
            _ = try await heartbeat()
            state.withLock { $0.synchronized = true }
            try await republish()
        } catch {
            logger.warning("cluster synchronization failed; retried on the next heartbeat", metadata: ["error": "\(error)"])
        }
    }

    private func republish() async throws {
        for (id, removal) in state.withLock({ $0.removals }) {
            try await erase(id: id, room: removal.room, ssrcs: removal.ssrcs)
            state.withLock { _ = $0.removals.removeValue(forKey: id) }
        }
        for participant in localParticipants {
            do {
                try await write(participant)
            } catch let error as ClusterError {
                // Another node claimed the SSRC while Redis had forgotten ours: the participant
                // stays local only (Docs/cluster.md, "Failure behaviour").
                logger.error("cannot publish participant again", metadata: ["participant": "\(participant.key)", "error": "\(error)"])
            }
        }
    }

    /// Returns how many of the node's keys Redis had lost.
    private func heartbeat() async throws -> Int {
        let (rooms, load) = state.withLock { state in (Set(state.participants.values.map(\.room)).sorted(), state.load) }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let reply = try await client.eval(
            ClusterScripts.heartbeat,
            arguments: [prefix, name, ttlMilliseconds, configuration.advertise, String(load), String(now), String(max(0, configuration.relayFanout))]
                + rooms)
        guard case .integer(let missing) = reply else { throw RedisError.unexpectedReply("heartbeat", reply) }
        return Int(missing)
    }

    private func tick() async {
        guard client.isConnected, !state.withLock({ $0.left }) else { return }
        do {
            if !state.withLock({ $0.synchronized }) {
                await synchronize()
                return
            }
            if try await heartbeat() > 0 {
                logger.info("Redis lost this node's state; publishing it again")
                try await republish()
            } else if !state.withLock({ $0.removals.isEmpty }) {
                try await republish()
            }
            let reaped = try await client.eval(ClusterScripts.reap, arguments: [prefix])
            if case .array(let names) = reaped, !names.isEmpty {
                logger.info("nodes expired", metadata: ["nodes": "\(names.compactMap(\.string))"])
            }
        } catch {
            logger.debug("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Helpers

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// `{NAME, {field, value, ...}, ...}` as pairs.
    static func pairs(_ reply: RESPValue, command: String) throws -> [(String, [String: String])] {
        guard case .array(let elements) = reply, elements.count % 2 == 0 else { throw RedisError.unexpectedReply(command, reply) }
        return try stride(from: 0, to: elements.count, by: 2).map { index in
            guard let name = elements[index].string else { throw RedisError.unexpectedReply(command, reply) }
            return (name, try RedisClient.fieldMap(elements[index + 1], command: command))
        }
    }
}
