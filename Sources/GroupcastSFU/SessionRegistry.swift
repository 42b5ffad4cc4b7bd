import GroupcastProtocol
import GroupUnicast

/// One member of a room.
public struct Participant: Hashable, Sendable {
    public var id: UInt32
    /// The room it belongs to; routing, rosters and subscriptions never leave it.
    public var room: String
    /// The token's identity (`sub`); `nil` on an SFU without authentication and for static participants.
    public var identity: String?
    /// Where control requests must come from; `nil` for a static participant (room file), which
    /// cannot send control requests.
    public var controlAddress: SocketAddress?
    /// The secret every request but REGISTER must carry (REGISTERED told it); 0 for static participants.
    public var session: UInt64
    /// The only origin allowed to send on this participant's SSRCs, and where its copies go.
    /// For a dynamic participant it was verified (cookie) before it was stored here.
    public var mediaAddress: SocketAddress
    /// Only the types it may send have an SSRC.
    public var ssrcs: StreamSSRCs
    /// The types it may receive (its token's rights; every type without authentication).
    public var receivable: StreamSet
    /// What it receives from a source without an entry in ``perSource``.
    public var defaultStreams: StreamSet
    /// SUBSCRIBE overrides, by source participant id.
    public var perSource: [UInt32: StreamSet]
    /// Declared in the room file: never times out, cannot leave.
    public var isStatic: Bool
    /// Last control request (monotonic nanoseconds); static participants ignore it.
    public var lastSeen: UInt64

    /// The stream types this participant receives from `source`.
    public func streams(from source: UInt32) -> StreamSet {
        .received(override: perSource[source], defaults: defaultStreams, receivable: receivable)
    }
}

extension StreamSet {
    /// What a receiver gets from one source: its SUBSCRIBE override for that source if it has
    /// one, else its defaults, within what it can receive. The one rule for local participants
    /// and for other nodes' (``RemoteParticipant``).
    static func received(override: StreamSet?, defaults: StreamSet, receivable: StreamSet) -> StreamSet {
        (override ?? defaults).intersection(receivable)
    }
}

/// A control request the registry refused, with the code of its ERROR reply.
public struct RegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ControlErrorCode
    public var reason: String
    public init(_ code: ControlErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { "\(code): \(reason)" }
}

/// A room: its capacity, its members and its counters.
public struct Room: Hashable, Sendable {
    public var name: String
    public var capacity: Int
    /// Declared in the configuration: kept when empty. Rooms created on first join are removed
    /// with their last participant.
    public var isConfigured: Bool
    public fileprivate(set) var members: Set<UInt32> = []
    public var statistics = RoomStatistics()
}

/// Per-room control counters (the media counters per room are the data plane's: ``MediaCounters``).
public struct RoomStatistics: Hashable, Sendable {
    /// Which room of this name: one created again after it went has a new number, and its
    /// counters start again from 0 (a metrics exporter resets the room's series on a change).
    public var incarnation: UInt64 = 0
    public var participants = 0
    public var registered: UInt64 = 0
    public var left: UInt64 = 0
    public var expired: UInt64 = 0
    public init() {}
}

/// What a verified REGISTER asks for (the control plane checked the cookies and the token).
public struct JoinRequest: Sendable {
    public var source: SocketAddress
    /// The media address, already verified (the source itself, or a PROBEd port).
    public var mediaAddress: SocketAddress
    public var room: String
    public var identity: String?
    public var sendable: StreamSet
    public var receivable: StreamSet
    public var receive: StreamSet

    public init(
        source: SocketAddress, mediaAddress: SocketAddress? = nil, room: String = RoomName.defaultRoom, identity: String? = nil,
        sendable: StreamSet = .all, receivable: StreamSet = .all, receive: StreamSet
    ) {
        self.source = source
        self.mediaAddress = mediaAddress ?? source
        self.room = room
        self.identity = identity
        self.sendable = sendable
        self.receivable = receivable
        self.receive = receive
    }
}

/// Every room's participants: who is registered, where, with which SSRCs, rights and
/// subscriptions. Bounded: participants per room, participants in all, rooms.
///
/// A value type without locks or I/O: the control plane owns one, applies requests to it, and
/// after every change builds a new ``RoutingTable`` from it for the forwarder. Participant ids
/// and SSRCs are unique across rooms, so the data path never needs the room.
public struct SessionRegistry: Sendable {
    public struct Limits: Hashable, Sendable {
        /// Capacity of a room created on first join (configured rooms carry their own).
        public var roomCapacity = 64
        /// Participants in all rooms, static ones included.
        public var maxParticipants = 4096
        /// Rooms, configured ones included.
        public var maxRooms = 256
        /// Whether a REGISTER naming a room that does not exist creates it.
        public var allowRoomCreation = true
        public init() {}
    }

    public var limits: Limits
    /// Silence after which a dynamic participant is removed, in nanoseconds.
    public var keepaliveTimeout: UInt64
    public private(set) var participants: [UInt32: Participant] = [:]
    public private(set) var rooms: [String: Room] = [:]
    private var byControlAddress: [SocketAddress: UInt32] = [:]
    private var byMediaAddress: [SocketAddress: UInt32] = [:]
    private var byIdentity: [String: [String: UInt32]] = [:]  // room -> identity -> id
    private var ssrcOwners: [UInt32: UInt32] = [:]
    private var nextID: UInt32 = 1
    /// Rooms created so far: the next room's ``RoomStatistics/incarnation``.
    private var roomsCreated: UInt64 = 0
    private var generator: any RandomNumberGenerator & Sendable

    public init(limits: Limits = Limits(), keepaliveTimeout: Duration, generator: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.limits = limits
        self.keepaliveTimeout = keepaliveTimeout.wholeNanoseconds
        self.generator = generator
    }

    /// One room of `capacity` (the old single-room registry's shape).
    public init(capacity: Int, keepaliveTimeout: Duration, generator: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        var limits = Limits()
        limits.roomCapacity = capacity
        self.init(limits: limits, keepaliveTimeout: keepaliveTimeout, generator: generator)
    }

    public var count: Int { participants.count }

    /// Declares a room (room file, configuration): it exists before anyone joins and stays when empty.
    public mutating func addRoom(_ name: String, capacity: Int? = nil) throws(RegistryError) {
        guard RoomName.isValid(name) else { throw RegistryError(.malformed, "room name \"\(name)\" is not 1-64 of A-Z a-z 0-9 . _ -") }
        guard rooms[name] == nil else { throw RegistryError(.malformed, "room \(name) is declared twice") }
        guard rooms.count < limits.maxRooms else { throw RegistryError(.serverFull, "more than \(limits.maxRooms) rooms") }
        let capacity = capacity ?? limits.roomCapacity
        guard capacity >= 1 else { throw RegistryError(.malformed, "room \(name): capacity \(capacity) < 1") }
        rooms[name] = newRoom(name, capacity: capacity, isConfigured: true)
    }

    private mutating func newRoom(_ name: String, capacity: Int, isConfigured: Bool) -> Room {
        roomsCreated &+= 1
        var room = Room(name: name, capacity: capacity, isConfigured: isConfigured)
        room.statistics.incarnation = roomsCreated
        return room
    }

    /// Adds a participant from the room file to `room` (declared with ``addRoom(_:capacity:)``).
    public mutating func addStatic(_ participant: RoomFile.StaticParticipant, room name: String = RoomName.defaultRoom) throws(RegistryError) {
        guard let room = rooms[name] else { throw RegistryError(.unknownRoom, "room \(name) is not declared") }
        guard room.members.count < room.capacity else {
            throw RegistryError(.roomFull, "room \(name): capacity \(room.capacity) reached by static participants")
        }
        guard participants.count < limits.maxParticipants else { throw RegistryError(.serverFull, "more than \(limits.maxParticipants) participants") }
        if let other = byMediaAddress[participant.address] {
            throw RegistryError(.addressInUse, "participant \(participant.id): address \(participant.address) belongs to participant \(other)")
        }
        guard participants[participant.id] == nil, participant.id != ControlMessage.allSources, participant.id != 0 else {
            throw RegistryError(.malformed, "participant id \(participant.id) is reserved or used twice")
        }
        for (_, ssrc) in participant.ssrcs.streams where ssrcOwners[ssrc] != nil {
            throw RegistryError(.malformed, "SSRC \(ssrc) of participant \(participant.id) is used twice")
        }
        let entry = Participant(
            id: participant.id, room: name, identity: nil, controlAddress: nil, session: 0, mediaAddress: participant.address,
            ssrcs: participant.ssrcs, receivable: .all, defaultStreams: participant.receive, perSource: participant.perSource,
            isStatic: true, lastSeen: 0)
        insert(entry)
        nextID = max(nextID, participant.id &+ 1)
    }

    private mutating func insert(_ participant: Participant) {
        participants[participant.id] = participant
        if let address = participant.controlAddress { byControlAddress[address] = participant.id }
        byMediaAddress[participant.mediaAddress] = participant.id
        if let identity = participant.identity { byIdentity[participant.room, default: [:]][identity] = participant.id }
        for (_, ssrc) in participant.ssrcs.streams { ssrcOwners[ssrc] = participant.id }
        rooms[participant.room]?.members.insert(participant.id)
        rooms[participant.room]?.statistics.participants += 1
    }

    /// A verified REGISTER. A repeated REGISTER from the same control address (a lost reply, a
    /// refresh) returns the same participant, id, session and SSRCs, with the media address,
    /// receive rights and default subscriptions updated.
    public mutating func register(_ request: JoinRequest, now: UInt64) throws(RegistryError) -> Participant {
        let source = request.source, media = request.mediaAddress
        // One origin per media address: otherwise the spoof rule could not tell senders apart.
        if let other = byMediaAddress[media], participants[other]?.controlAddress != source {
            throw RegistryError(.addressInUse, "media address \(media) belongs to participant \(other)")
        }
        if let id = byControlAddress[source], var existing = participants[id] {
            guard existing.room == request.room else {
                throw RegistryError(.addressInUse, "\(source) is in room \(existing.room); LEAVE first")
            }
            guard existing.identity == request.identity else {
                throw RegistryError(.addressInUse, "\(source) joined as another identity; LEAVE first")
            }
            byMediaAddress.removeValue(forKey: existing.mediaAddress)
            existing.mediaAddress = media
            byMediaAddress[media] = id
            existing.receivable = request.receivable
            existing.defaultStreams = request.receive.intersection(request.receivable)
            existing.lastSeen = now
            participants[id] = existing
            return existing
        }
        if rooms[request.room] == nil {
            guard limits.allowRoomCreation else { throw RegistryError(.unknownRoom, "room \(request.room) does not exist") }
            guard rooms.count < limits.maxRooms else { throw RegistryError(.serverFull, "the SFU holds \(limits.maxRooms) rooms") }
        }
        let room = rooms[request.room] ?? newRoom(request.room, capacity: limits.roomCapacity, isConfigured: false)
        guard room.members.count < room.capacity else { throw RegistryError(.roomFull, "room \(room.name) is full (\(room.capacity))") }
        guard participants.count < limits.maxParticipants else {
            throw RegistryError(.serverFull, "the SFU holds \(limits.maxParticipants) participants")
        }
        if let identity = request.identity, let other = byIdentity[request.room]?[identity] {
            throw RegistryError(.identityInUse, "\(identity.prefix(24)) is participant \(other) from another address")
        }
        rooms[request.room] = room
        var id = nextID
        while participants[id] != nil || id == 0 || id == ControlMessage.allSources { id &+= 1 }
        nextID = id &+ 1
        var ssrcs = StreamSSRCs.none
        for type in request.sendable.types {
            var ssrc: UInt32
            repeat { ssrc = generator.next() } while ssrc == 0 || ssrcOwners[ssrc] != nil || ssrcs.streams.contains { $0.ssrc == ssrc }
            ssrcs[type] = ssrc
        }
        var session: UInt64
        repeat { session = generator.next() } while session == 0
        let participant = Participant(
            id: id, room: request.room, identity: request.identity, controlAddress: source, session: session, mediaAddress: media,
            ssrcs: ssrcs, receivable: request.receivable, defaultStreams: request.receive.intersection(request.receivable),
            perSource: [:], isStatic: false, lastSeen: now)
        insert(participant)
        rooms[request.room]?.statistics.registered += 1
        return participant
    }

    /// REGISTER from `source` on an SFU without authentication, in the default room (tests and
    /// the benchmarks' registries).
    public mutating func register(
        from source: SocketAddress, mediaPort: UInt16, receive: StreamSet, now: UInt64
    ) throws(RegistryError) -> Participant {
        try register(JoinRequest(source: source, mediaAddress: mediaPort == 0 ? source : source.withPort(mediaPort), receive: receive), now: now)
    }

    /// The participant `id` if the request came from its control address with its session.
    public func owned(_ id: UInt32, session: UInt64, by source: SocketAddress) throws(RegistryError) -> Participant {
        guard let participant = participants[id] else { throw RegistryError(.unknownParticipant, "participant \(id) is not registered") }
        guard participant.controlAddress == source, participant.session == session, session != 0 else {
            throw RegistryError(.notOwner, "participant \(id) is not registered from \(source) with this session")
        }
        return participant
    }

    public mutating func subscribe(
        _ id: UInt32, session: UInt64, to sourceID: UInt32, streams: StreamSet, from source: SocketAddress, now: UInt64
    ) throws(RegistryError) {
        var participant = try owned(id, session: session, by: source)
        guard streams.isSubset(of: participant.receivable) else {
            throw RegistryError(.forbidden, "may receive \(participant.receivable), asked for \(streams)")
        }
        if sourceID == ControlMessage.allSources {
            participant.defaultStreams = streams
        } else {
            guard let other = participants[sourceID], other.room == participant.room, sourceID != id else {
                throw RegistryError(.unknownSource, "source participant \(sourceID) is not in room \(participant.room)")
            }
            participant.perSource[sourceID] = streams
        }
        participant.lastSeen = now
        participants[id] = participant
    }

    public mutating func keepalive(_ id: UInt32, session: UInt64, from source: SocketAddress, now: UInt64) throws(RegistryError) {
        var participant = try owned(id, session: session, by: source)
        participant.lastSeen = now
        participants[id] = participant
    }

    /// One page of `id`'s room: members with an id above `after`, in id order, at most `limit`;
    /// `more` when others follow.
    public func roster(
        for id: UInt32, session: UInt64, from source: SocketAddress, after: UInt32, limit: Int = ControlMessage.maxRosterEntries
    ) throws(RegistryError) -> (entries: [RosterEntry], more: Bool) {
        let participant = try owned(id, session: session, by: source)
        let members = (rooms[participant.room]?.members ?? []).filter { $0 > after }.sorted()
        let page = members.prefix(limit).compactMap { member in
            participants[member].map { RosterEntry(participant: $0.id, ssrcs: $0.ssrcs) }
        }
        return (page, members.count > limit)
    }

    public mutating func leave(_ id: UInt32, session: UInt64, from source: SocketAddress) throws(RegistryError) {
        let participant = try owned(id, session: session, by: source)
        remove(id)
        rooms[participant.room]?.statistics.left += 1
        removeRoomIfDone(participant.room)
    }

    private mutating func remove(_ id: UInt32) {
        guard let participant = participants.removeValue(forKey: id) else { return }
        if let address = participant.controlAddress { byControlAddress.removeValue(forKey: address) }
        if byMediaAddress[participant.mediaAddress] == id { byMediaAddress.removeValue(forKey: participant.mediaAddress) }
        if let identity = participant.identity { byIdentity[participant.room]?.removeValue(forKey: identity) }
        for (_, ssrc) in participant.ssrcs.streams { ssrcOwners.removeValue(forKey: ssrc) }
        rooms[participant.room]?.members.remove(id)
        rooms[participant.room]?.statistics.participants -= 1
        for other in rooms[participant.room]?.members ?? [] { participants[other]?.perSource.removeValue(forKey: id) }
    }

    /// A room created on first join goes with its last participant (and its counters with it).
    private mutating func removeRoomIfDone(_ name: String) {
        guard let room = rooms[name], !room.isConfigured, room.members.isEmpty else { return }
        rooms.removeValue(forKey: name)
        byIdentity.removeValue(forKey: name)
    }

    /// Applies a reloaded configuration (`SIGHUP`) in one step, or nothing when it cannot apply:
    /// the new limits and keepalive timeout; `declared` (none: the room `default`) becomes the set
    /// of configured rooms with their capacities and static participants. Nobody registered is
    /// removed: a room no longer declared becomes an ordinary one (it goes with its last
    /// participant), a room over a lowered capacity or limit keeps its members and refuses new
    /// ones; rooms created on first join take the new `roomCapacity`. Static participants are
    /// replaced where their declaration changed, removed where it went, added where it is new.
    public mutating func reconfigure(limits: Limits, keepaliveTimeout: Duration, declaring declared: [RoomFile.Declaration]) throws(RegistryError) {
        var next = self
        next.limits = limits
        next.keepaliveTimeout = keepaliveTimeout.wholeNanoseconds
        let rooms = declared.isEmpty ? [RoomFile.Declaration(name: RoomName.defaultRoom)] : declared
        var wanted: [UInt32: (room: String, participant: RoomFile.StaticParticipant)] = [:]
        for room in rooms {
            for participant in room.participants {
                guard wanted[participant.id] == nil else { throw RegistryError(.malformed, "participant id \(participant.id) is declared twice") }
                wanted[participant.id] = (room.name, participant)
            }
        }
        for old in participants.values where old.isStatic {
            if let new = wanted[old.id], new.room == old.room, new.participant.address == old.mediaAddress, new.participant.ssrcs == old.ssrcs,
                new.participant.receive == old.defaultStreams, new.participant.perSource == old.perSource {
                wanted.removeValue(forKey: old.id)
            } else {
                next.remove(old.id)
            }
        }
        let names = Set(rooms.map(\.name))
        for (name, room) in next.rooms where room.isConfigured && !names.contains(name) {
            next.rooms[name]?.isConfigured = false
            next.removeRoomIfDone(name)
        }
        for (name, room) in next.rooms where !room.isConfigured { next.rooms[name]?.capacity = limits.roomCapacity }
        for room in rooms {
            if next.rooms[room.name] != nil {
                let capacity = room.capacity ?? limits.roomCapacity
                guard capacity >= 1 else { throw RegistryError(.malformed, "room \(room.name): capacity \(capacity) < 1") }
                next.rooms[room.name]?.capacity = capacity
                next.rooms[room.name]?.isConfigured = true
            } else {
                try next.addRoom(room.name, capacity: room.capacity)
            }
        }
        for room in rooms {
            for participant in room.participants where wanted[participant.id] != nil { try next.addStatic(participant, room: room.name) }
        }
        self = next
    }

    /// Removes dynamic participants silent for longer than the keepalive timeout; returns their ids.
    public mutating func expire(now: UInt64) -> [UInt32] {
        let expired = participants.values.filter {
            !$0.isStatic && now > $0.lastSeen && now - $0.lastSeen > keepaliveTimeout
        }.sorted { $0.id < $1.id }
        for participant in expired {
            remove(participant.id)
            rooms[participant.room]?.statistics.expired += 1
            removeRoomIfDone(participant.room)
        }
        return expired.map(\.id)
    }

    /// The routing table for the current participants (each room's routes; SSRCs are unique
    /// across rooms, so one table holds them all), with the cluster's other nodes, if any.
    public func routingTable(echo: Bool, remoteNodes: [RemoteNode] = [], relays: [UInt32: StreamRelay] = [:]) -> RoutingTable {
        RoutingTable(
            participants: participants.values.sorted { $0.id < $1.id }, remoteNodes: remoteNodes, relays: relays, echo: echo, rooms: rooms.keys)
    }
}

extension SocketAddress {
    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .ipv4(let address, _): .ipv4(address, port: port)
        case .ipv6(let address, _, let scope): .ipv6(address, port: port, scopeID: scope)
        }
    }

    /// Family, address and port as bytes: what an address-validation cookie is computed over.
    public var validationBytes: [UInt8] {
        switch self {
        case .ipv4(let address, let port): [4] + address.bytes + [UInt8(port >> 8), UInt8(port & 0xFF)]
        case .ipv6(let address, let port, let scope):
            [6] + address.bytes + [UInt8(port >> 8), UInt8(port & 0xFF)]
                + [UInt8(truncatingIfNeeded: scope >> 24), UInt8(truncatingIfNeeded: scope >> 16), UInt8(truncatingIfNeeded: scope >> 8), UInt8(truncatingIfNeeded: scope)]
        }
    }
}
