import GroupcastProtocol
import GroupUnicast

/// One member of the room.
public struct Participant: Hashable, Sendable {
    public var id: UInt32
    /// Where control requests must come from; `nil` for a static participant (room file), which
    /// cannot send control requests.
    public var controlAddress: SocketAddress?
    /// The only origin allowed to send on this participant's SSRCs, and where its copies go.
    public var mediaAddress: SocketAddress
    public var ssrcs: StreamSSRCs
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
        perSource[source] ?? defaultStreams
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

/// The room's participants: who is registered, from where, with which SSRCs and subscriptions.
///
/// A value type without locks or I/O: the control plane owns one, applies requests to it, and
/// after every change builds a new ``RoutingTable`` from it for the forwarder.
public struct SessionRegistry: Sendable {
    /// Most participants (static ones included).
    public var capacity: Int
    /// Silence after which a dynamic participant is removed, in nanoseconds.
    public var keepaliveTimeout: UInt64
    public private(set) var participants: [UInt32: Participant] = [:]
    private var byControlAddress: [SocketAddress: UInt32] = [:]
    private var ssrcOwners: [UInt32: UInt32] = [:]
    private var nextID: UInt32 = 1
    private var generator: any RandomNumberGenerator & Sendable

    public init(capacity: Int, keepaliveTimeout: Duration, generator: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.capacity = capacity
        let (seconds, attoseconds) = keepaliveTimeout.components
        self.keepaliveTimeout = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        self.generator = generator
    }

    public var count: Int { participants.count }

    /// Adds a participant from the room file.
    public mutating func addStatic(_ participant: RoomFile.StaticParticipant) throws(RegistryError) {
        guard participants.count < capacity else { throw RegistryError(.roomFull, "room capacity \(capacity) reached by static participants") }
        if let other = participants.values.first(where: { $0.mediaAddress == participant.address }) {
            throw RegistryError(.addressInUse, "participant \(participant.id): address \(participant.address) belongs to participant \(other.id)")
        }
        guard participants[participant.id] == nil, participant.id != ControlMessage.allSources, participant.id != 0 else {
            throw RegistryError(.malformed, "participant id \(participant.id) is reserved or used twice")
        }
        for (_, ssrc) in participant.ssrcs.streams where ssrcOwners[ssrc] != nil {
            throw RegistryError(.malformed, "SSRC \(ssrc) of participant \(participant.id) is used twice")
        }
        let entry = Participant(
            id: participant.id, controlAddress: nil, mediaAddress: participant.address, ssrcs: participant.ssrcs,
            defaultStreams: participant.receive, perSource: participant.perSource, isStatic: true, lastSeen: 0)
        insert(entry)
        nextID = max(nextID, participant.id &+ 1)
    }

    private mutating func insert(_ participant: Participant) {
        participants[participant.id] = participant
        if let address = participant.controlAddress { byControlAddress[address] = participant.id }
        for (_, ssrc) in participant.ssrcs.streams { ssrcOwners[ssrc] = participant.id }
    }

    /// REGISTER from `source`. A repeated REGISTER from the same address (a lost reply) returns the
    /// same participant, with `mediaAddress` and default subscriptions updated.
    public mutating func register(
        from source: SocketAddress, mediaPort: UInt16, receive: StreamSet, now: UInt64
    ) throws(RegistryError) -> Participant {
        let media = mediaPort == 0 ? source : source.withPort(mediaPort)
        // One origin per media address: otherwise the spoof rule could not tell senders apart.
        if let other = participants.values.first(where: { $0.mediaAddress == media && $0.controlAddress != source }) {
            throw RegistryError(.addressInUse, "media address \(media) belongs to participant \(other.id)")
        }
        if let id = byControlAddress[source], var existing = participants[id] {
            existing.mediaAddress = media
            existing.defaultStreams = receive
            existing.lastSeen = now
            participants[id] = existing
            return existing
        }
        guard participants.count < capacity else { throw RegistryError(.roomFull, "room is full (\(capacity))") }
        var id = nextID
        while participants[id] != nil || id == 0 || id == ControlMessage.allSources { id &+= 1 }
        nextID = id &+ 1
        var ssrcs = StreamSSRCs.none
        for type in StreamType.allCases {
            var ssrc: UInt32
            repeat { ssrc = generator.next() } while ssrc == 0 || ssrcOwners[ssrc] != nil || ssrcs.streams.contains { $0.ssrc == ssrc }
            ssrcs[type] = ssrc
        }
        let participant = Participant(
            id: id, controlAddress: source, mediaAddress: media, ssrcs: ssrcs, defaultStreams: receive, perSource: [:],
            isStatic: false, lastSeen: now)
        insert(participant)
        return participant
    }

    /// The participant `id` if `source` may act for it.
    private func owned(_ id: UInt32, by source: SocketAddress) throws(RegistryError) -> Participant {
        guard let participant = participants[id] else { throw RegistryError(.unknownParticipant, "participant \(id) is not registered") }
        guard participant.controlAddress == source else {
            throw RegistryError(.notOwner, "participant \(id) is not registered from \(source)")
        }
        return participant
    }

    public mutating func subscribe(
        _ id: UInt32, to sourceID: UInt32, streams: StreamSet, from source: SocketAddress, now: UInt64
    ) throws(RegistryError) {
        var participant = try owned(id, by: source)
        if sourceID == ControlMessage.allSources {
            participant.defaultStreams = streams
        } else {
            guard participants[sourceID] != nil, sourceID != id else {
                throw RegistryError(.unknownSource, "source participant \(sourceID) is not in the room")
            }
            participant.perSource[sourceID] = streams
        }
        participant.lastSeen = now
        participants[id] = participant
    }

    public mutating func keepalive(_ id: UInt32, from source: SocketAddress, now: UInt64) throws(RegistryError) {
        var participant = try owned(id, by: source)
        participant.lastSeen = now
        participants[id] = participant
    }

    public func roster(for id: UInt32, from source: SocketAddress) throws(RegistryError) -> [RosterEntry] {
        _ = try owned(id, by: source)
        return participants.values.sorted { $0.id < $1.id }.map { RosterEntry(participant: $0.id, ssrcs: $0.ssrcs) }
    }

    public mutating func leave(_ id: UInt32, from source: SocketAddress) throws(RegistryError) {
        _ = try owned(id, by: source)
        remove(id)
    }

    private mutating func remove(_ id: UInt32) {
        guard let participant = participants.removeValue(forKey: id) else { return }
        if let address = participant.controlAddress { byControlAddress.removeValue(forKey: address) }
        for (_, ssrc) in participant.ssrcs.streams { ssrcOwners.removeValue(forKey: ssrc) }
        for other in participants.keys { participants[other]?.perSource.removeValue(forKey: id) }
    }

    /// Removes dynamic participants silent for longer than the keepalive timeout; returns their ids.
    public mutating func expire(now: UInt64) -> [UInt32] {
        let expired = participants.values.filter {
            !$0.isStatic && now > $0.lastSeen && now - $0.lastSeen > keepaliveTimeout
        }.map(\.id).sorted()
        for id in expired { remove(id) }
        return expired
    }

    /// The routing table for the current participants.
    public func routingTable(echo: Bool) -> RoutingTable {
        RoutingTable(participants: participants.values.sorted { $0.id < $1.id }, echo: echo)
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
}
