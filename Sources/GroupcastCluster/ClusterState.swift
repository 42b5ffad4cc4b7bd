import Foundation
import GroupcastProtocol
import GroupcastSFU

/// A participant anywhere in the cluster: its node and its id there. Participant ids are
/// assigned by each node's ``SessionRegistry`` and unique only on that node; SSRCs are unique
/// in the whole cluster (claimed in Redis).
public struct ParticipantKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var node: String
    public var id: UInt32

    public init(node: String, id: UInt32) {
        self.node = node
        self.id = id
    }

    /// `NODE/ID`, the form used in Redis and in ``ClusterParticipant/perSource``.
    public var description: String { "\(node)/\(id)" }

    public init?(_ text: String) {
        guard let slash = text.lastIndex(of: "/"), let id = UInt32(text[text.index(after: slash)...]) else { return nil }
        self.init(node: String(text[..<slash]), id: id)
    }

    public static func < (lhs: ParticipantKey, rhs: ParticipantKey) -> Bool { (lhs.node, lhs.id) < (rhs.node, rhs.id) }
}

/// What the cluster knows of one participant: the fields of ``Participant`` other nodes need
/// to route to and from it (never its session secret nor its addresses: media between nodes
/// goes through the nodes' advertised addresses).
public struct ClusterParticipant: Hashable, Sendable {
    public var node: String
    public var id: UInt32
    public var room: String
    public var identity: String?
    public var ssrcs: StreamSSRCs
    public var receivable: StreamSet
    public var defaultStreams: StreamSet
    /// SUBSCRIBE overrides by source participant (on any node).
    public var perSource: [ParticipantKey: StreamSet]

    public init(
        node: String, id: UInt32, room: String, identity: String? = nil, ssrcs: StreamSSRCs, receivable: StreamSet = .all,
        defaultStreams: StreamSet = .all, perSource: [ParticipantKey: StreamSet] = [:]
    ) {
        self.node = node
        self.id = id
        self.room = room
        self.identity = identity
        self.ssrcs = ssrcs
        self.receivable = receivable
        self.defaultStreams = defaultStreams
        self.perSource = perSource
    }

    /// A local participant of `node` as the cluster sees it (its per-source overrides name
    /// local sources).
    public init(_ participant: Participant, node: String) {
        self.init(
            node: node, id: participant.id, room: participant.room, identity: participant.identity, ssrcs: participant.ssrcs,
            receivable: participant.receivable, defaultStreams: participant.defaultStreams,
            perSource: Dictionary(uniqueKeysWithValues: participant.perSource.map { (ParticipantKey(node: node, id: $0.key), $0.value) }))
    }

    public var key: ParticipantKey { ParticipantKey(node: node, id: id) }

    /// The stream types this participant receives from `source` (``Participant/streams(from:)``).
    public func streams(from source: ParticipantKey) -> StreamSet {
        (perSource[source] ?? defaultStreams).intersection(receivable)
    }
}

/// One stream of a room: an SSRC and where it comes from.
public struct ClusterStream: Hashable, Sendable {
    public var ssrc: UInt32
    public var streamType: StreamType
    /// The source participant (its node is the stream's origin node).
    public var participant: ParticipantKey

    public init(ssrc: UInt32, streamType: StreamType, participant: ParticipantKey) {
        self.ssrc = ssrc
        self.streamType = streamType
        self.participant = participant
    }
}

/// A node's entry: alive while its heartbeat key exists.
public struct ClusterNodeInfo: Hashable, Sendable {
    public var name: String
    /// Where other nodes send it relayed media (`IP:PORT`).
    public var advertise: String
    /// What the node reports of its load (participants, or the forwarder's share of a CPU).
    public var load: Double
    /// The node's wall clock at its last heartbeat, in milliseconds since 1970.
    public var heartbeatMilliseconds: Int64

    public init(name: String, advertise: String, load: Double = 0, heartbeatMilliseconds: Int64 = 0) {
        self.name = name
        self.advertise = advertise
        self.load = load
        self.heartbeatMilliseconds = heartbeatMilliseconds
    }
}

/// One edge of a stream's relay tree (Docs/cluster.md, "Relay trees"): the node a child node
/// takes the stream from.
public struct RelayEdge: Hashable, Sendable, CustomStringConvertible {
    /// The origin node, or a node relaying the stream.
    public var parent: String
    /// Whether the child has installed its route from ``parent`` (and confirmed it in Redis):
    /// only then does the parent send it the stream, so nothing arrives before the child
    /// accepts it.
    public var ready: Bool

    public init(parent: String, ready: Bool) {
        self.parent = parent
        self.ready = ready
    }

    /// `PARENT pending` or `PARENT ready`, as stored in `P:room:ROOM:relay:SSRC`.
    public var description: String { "\(parent) \(ready ? "ready" : "pending")" }

    public init?(_ text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, RoomName.isValid(String(parts[0])), parts[1] == "ready" || parts[1] == "pending" else { return nil }
        self.init(parent: String(parts[0]), ready: parts[1] == "ready")
    }
}

/// A room as the cluster sees it: the participants of every live node and the relay trees of
/// its streams.
public struct ClusterRoom: Hashable, Sendable {
    public var name: String
    public var participants: [ParticipantKey: ClusterParticipant]
    /// The relay tree of each stream that has one, by SSRC: child node -> its edge. Edges may
    /// still name a node that has died (until a reaper forgets it).
    public var relays: [UInt32: [String: RelayEdge]]

    public init(name: String, participants: [ParticipantKey: ClusterParticipant] = [:], relays: [UInt32: [String: RelayEdge]] = [:]) {
        self.name = name
        self.participants = participants
        self.relays = relays
    }

    /// The nodes with participants in the room.
    public var nodes: Set<String> { Set(participants.keys.map(\.node)) }

    /// Every stream of the room by SSRC.
    public var streams: [UInt32: ClusterStream] {
        var streams: [UInt32: ClusterStream] = [:]
        for participant in participants.values {
            for (type, ssrc) in participant.ssrcs.streams {
                streams[ssrc] = ClusterStream(ssrc: ssrc, streamType: type, participant: participant.key)
            }
        }
        return streams
    }
}

/// Why the cluster refused or could not read something.
public enum ClusterError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The SSRC is claimed by another participant (`NODE ROOM ID TYPE`) on a live node.
    case ssrcInUse(UInt32, owner: String)
    /// A node or room name outside `A-Z a-z 0-9 . _ -` (1-64 bytes): it would break the key schema.
    case invalidName(String)
    /// The participant belongs to another node or has an id the control protocol reserves.
    case notLocal(ParticipantKey)
    /// The node left the cluster (``ClusterNode/leave()``): it publishes nothing any more.
    case nodeLeft
    /// The node has not synchronized with Redis yet (reset and first heartbeat): the
    /// participant is kept and published when it has, as while Redis is unreachable.
    case notSynchronized

    public var description: String {
        switch self {
        case .ssrcInUse(let ssrc, let owner): "SSRC \(ssrc) is claimed by \(owner)"
        case .invalidName(let name): "\"\(name)\" is not 1-64 of A-Z a-z 0-9 . _ -"
        case .notLocal(let key): "participant \(key) is not this node's"
        case .nodeLeft: "the node left the cluster"
        case .notSynchronized: "the node has not synchronized with Redis yet: published when it has"
        }
    }
}

/// The JSON form stored in a room's hash (one field per participant).
struct ParticipantRecord: Codable {
    var node: String
    var id: UInt32
    var room: String
    var identity: String?
    /// Stream type name (`asq`, `vsq`, `vhq`) -> SSRC, only the streams the participant sends.
    var ssrcs: [String: UInt32]
    var receivable: UInt8
    var defaultStreams: UInt8
    /// `NODE/ID` -> stream bits.
    var perSource: [String: UInt8]

    init(_ participant: ClusterParticipant) {
        node = participant.node
        id = participant.id
        room = participant.room
        identity = participant.identity
        ssrcs = Dictionary(uniqueKeysWithValues: participant.ssrcs.streams.map { ("\($0.type)".lowercased(), $0.ssrc) })
        receivable = participant.receivable.rawValue
        defaultStreams = participant.defaultStreams.rawValue
        perSource = Dictionary(uniqueKeysWithValues: participant.perSource.map { ($0.key.description, $0.value.rawValue) })
    }

    /// Another node's record, checked: unknown stream types, bits or keys make it invalid.
    var participant: ClusterParticipant? {
        var streamSSRCs = StreamSSRCs.none
        for (name, ssrc) in ssrcs {
            guard let type = StreamType(name: name), ssrc != 0 else { return nil }
            streamSSRCs[type] = ssrc
        }
        guard receivable & ~StreamSet.validBits == 0, defaultStreams & ~StreamSet.validBits == 0 else { return nil }
        var sources: [ParticipantKey: StreamSet] = [:]
        for (text, bits) in perSource {
            guard let key = ParticipantKey(text), bits & ~StreamSet.validBits == 0 else { return nil }
            sources[key] = StreamSet(rawValue: bits)
        }
        return ClusterParticipant(
            node: node, id: id, room: room, identity: identity, ssrcs: streamSSRCs, receivable: StreamSet(rawValue: receivable),
            defaultStreams: StreamSet(rawValue: defaultStreams), perSource: sources)
    }

    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding plain strings and integers cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    static func decode(_ text: String) -> ClusterParticipant? {
        (try? JSONDecoder().decode(ParticipantRecord.self, from: Data(text.utf8)))?.participant
    }
}
