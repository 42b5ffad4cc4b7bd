import GroupcastProtocol
import GroupUnicast

/// Where one stream's packets go: the forwarding entry of one source SSRC.
///
/// It carries what `struct gc_route` in `bpf/include/groupcast_layout.h` needs (origin address and port, stream
/// type, subscriber addresses), so an XDP forwarder can program its map from the same value.
public struct Route: Hashable, Sendable {
    public var ssrc: UInt32
    public var streamType: StreamType
    /// The source participant (on the stream's origin node when it is relayed: ids are node-local).
    public var participant: UInt32
    /// The room of the source (and of every subscriber): index in ``RoutingTable/rooms``.
    public var room: Int
    /// The only address and port allowed to send on ``ssrc``; others are spoofed. For a relayed
    /// stream, the advertised address of the node this node takes it from (its parent in the
    /// stream's relay tree: the origin node, or a node relaying it).
    public var origin: SocketAddress
    /// The receivers of this stream (the origin excluded): the local participants by id order,
    /// then this node's children in the stream's relay tree (``relayedCopies`` of them).
    public var subscribers: [Subscriber]
    /// What a user-space forwarder hands to `GroupSocket.send`: the origin first when
    /// ``echoes``, then every subscriber.
    public var recipients: [Recipient]
    /// `nil`: the source is a participant of this node. Otherwise the cluster node the stream
    /// comes from, its parent in the relay tree (Docs/cluster.md, "Relay trees"): the route is
    /// relayed, its subscribers are local participants and this node's children in the tree
    /// (never its parent nor the origin node: no loops), and it has no echo (the origin node
    /// echoes to its own participant).
    public var parentNode: String?
    /// Whether ``recipients`` starts with the origin (the table's echo, local sources only).
    public var echoes: Bool
    /// How many of the last ``recipients`` are other nodes (copies relayed, counted apart from
    /// those forwarded to participants).
    public var relayedCopies: Int

    /// What a copy to ``recipients``[`index`] is.
    @inline(__always)
    public func copyKind(ofRecipient index: Int) -> CopyKind {
        if echoes && index == 0 { return .echo }
        return index >= recipients.count - relayedCopies ? .relayed : .forwarded
    }
}

/// What one copy a forwarder sends is, for its counters.
public enum CopyKind: Hashable, Sendable {
    /// To a subscribing participant of this node.
    case forwarded
    /// Back to the stream's sender.
    case echo
    /// To another node of the cluster (a child in the stream's relay tree).
    case relayed
}

/// One receiver of a route.
public struct Subscriber: Hashable, Sendable {
    /// The local participant; 0 for a remote node.
    public var participant: UInt32
    public var address: SocketAddress
    /// `nil`: a local participant. Otherwise the cluster node this copy is relayed to, once for
    /// all of its participants that want the stream.
    public var node: String?

    public init(participant: UInt32, address: SocketAddress, node: String? = nil) {
        self.participant = participant
        self.address = address
        self.node = node
    }
}

/// Another node of the cluster as this node's routing table sees it (Docs/cluster.md): where it
/// receives relayed media and sends its own, and its participants in the rooms both nodes share.
/// Built by GroupcastCluster from Redis; plain values here, so the table stays pure.
public struct RemoteNode: Hashable, Sendable {
    public var name: String
    /// Its advertised address: where this node relays streams to it, and the only address its
    /// participants' streams may come from.
    public var address: SocketAddress
    public var participants: [RemoteParticipant]

    public init(name: String, address: SocketAddress, participants: [RemoteParticipant]) {
        self.name = name
        self.address = address
        self.participants = participants
    }
}

/// This node's place in one stream's relay tree (Docs/cluster.md, "Relay trees"), agreed in
/// Redis: the node it takes the stream from and the nodes it sends it to. A stream of another
/// node without one is not routed (this node has not attached to its tree); a local stream
/// without one goes to no other node.
public struct StreamRelay: Hashable, Sendable {
    /// The node this node takes the stream from (the origin node or a relaying node); `nil` for
    /// a stream of a local participant.
    public var parent: String?
    /// The nodes this node sends the stream to, once each.
    public var children: [String]

    public init(parent: String? = nil, children: [String] = []) {
        self.parent = parent
        self.children = children
    }
}

/// A participant of another node: what it sends and what it receives from this node's sources.
public struct RemoteParticipant: Hashable, Sendable {
    /// Its id on its own node (ids are node-local).
    public var id: UInt32
    public var room: String
    /// Its streams; SSRCs are unique in the whole cluster (claimed in Redis).
    public var ssrcs: StreamSSRCs
    public var receivable: StreamSet
    public var defaultStreams: StreamSet
    /// SUBSCRIBE overrides naming sources of *this* node, by their local id.
    public var perLocalSource: [UInt32: StreamSet]

    public init(
        id: UInt32, room: String, ssrcs: StreamSSRCs, receivable: StreamSet = .all, defaultStreams: StreamSet = .all,
        perLocalSource: [UInt32: StreamSet] = [:]
    ) {
        self.id = id
        self.room = room
        self.ssrcs = ssrcs
        self.receivable = receivable
        self.defaultStreams = defaultStreams
        self.perLocalSource = perLocalSource
    }

    /// The stream types it receives from local participant `source` (``Participant/streams(from:)``).
    public func streams(from source: UInt32) -> StreamSet {
        .received(override: perLocalSource[source], defaults: defaultStreams, receivable: receivable)
    }
}

extension Participant {
    /// The stream types it receives from a participant of another node. Its SUBSCRIBE overrides
    /// name local ids only (a remote participant's id may equal a local one), so they never
    /// apply: it gets its defaults (Docs/cluster.md).
    public var streamsFromOtherNodes: StreamSet { .received(override: nil, defaults: defaultStreams, receivable: receivable) }
}

/// The forwarding state: source SSRC -> route. Immutable; rebuilt from the ``SessionRegistry``
/// (and, in a cluster, the ``RemoteNode``s) after every change and handed to the ``Forwarder`` whole.
public struct RoutingTable: Sendable {
    public let routes: [UInt32: Route]
    /// The rooms, sorted: those of the registry (an empty declared room too) and of every
    /// participant. ``Route/room`` indexes it, so a data plane counts per room without hashing
    /// names per packet; the media counters of a room no longer here are forgotten.
    public let rooms: [String]
    /// Whether every media packet of a local source also goes back to its origin.
    public let echo: Bool
    /// Increases with every table the control plane builds.
    public var generation: UInt64 = 0

    public static let empty = RoutingTable(participants: [], echo: true)

    /// Routes of the local `participants`' streams and, in a cluster, of `remoteNodes`'
    /// participants' streams, along the `relays` trees. A local stream also goes to its
    /// children; a remote stream is routed only when it has a parent here, comes from that
    /// parent's address only and goes to the local participants of its room that want it and
    /// to its children (never to its parent or origin node). A child or parent that is not one
    /// of `remoteNodes` (no address known) is left out. A remote SSRC equal to a local one is
    /// left out (the cluster claims SSRCs, so it only happens while a claim is refused; the
    /// local participant keeps it). `rooms`: rooms that exist without participants (the
    /// registry's); the participants' own (local and remote) are added.
    public init(
        participants: [Participant], remoteNodes: [RemoteNode] = [], relays: [UInt32: StreamRelay] = [:], echo: Bool,
        rooms: some Sequence<String> = []
    ) {
        self.echo = echo
        let rooms = Set(rooms).union(participants.map(\.room)).union(remoteNodes.flatMap { $0.participants.map(\.room) }).sorted()
        self.rooms = rooms
        let roomIndex = Dictionary(uniqueKeysWithValues: rooms.enumerated().map { ($1, $0) })
        let nodes = Dictionary(remoteNodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        // The children of `ssrc` this node can address, never `excluded` (its parent, its origin node).
        func children(of ssrc: UInt32, excluding excluded: Set<String> = []) -> [Subscriber] {
            (relays[ssrc]?.children ?? []).filter { !excluded.contains($0) }.compactMap { name in
                nodes[name].map { Subscriber(participant: 0, address: $0.address, node: name) }
            }
        }
        var routes: [UInt32: Route] = [:]
        for source in participants {
            for (type, ssrc) in source.ssrcs.streams {
                // Rooms never mix: only members of the source's room subscribe.
                let local = participants.filter { $0.id != source.id && $0.room == source.room && $0.streams(from: source.id).contains(type) }
                    .map { Subscriber(participant: $0.id, address: $0.mediaAddress) }
                let remote = children(of: ssrc)
                routes[ssrc] = Route(
                    ssrc: ssrc, streamType: type, participant: source.id, room: roomIndex[source.room]!, origin: source.mediaAddress,
                    subscribers: local + remote, echoes: echo, relayedCopies: remote.count)
            }
        }
        for node in remoteNodes {
            for source in node.participants {
                for (type, ssrc) in source.ssrcs.streams where routes[ssrc] == nil {
                    guard let parentName = relays[ssrc]?.parent, let parent = nodes[parentName] else { continue }
                    let local = participants.filter { $0.room == source.room && $0.streamsFromOtherNodes.contains(type) }
                        .map { Subscriber(participant: $0.id, address: $0.mediaAddress) }
                    let remote = children(of: ssrc, excluding: [parentName, node.name])
                    routes[ssrc] = Route(
                        ssrc: ssrc, streamType: type, participant: source.id, room: roomIndex[source.room]!, origin: parent.address,
                        subscribers: local + remote, parentNode: parentName, echoes: false, relayedCopies: remote.count)
                }
            }
        }
        self.routes = routes
    }

    @inline(__always)
    public subscript(ssrc: UInt32) -> Route? { routes[ssrc] }
}

extension Route {
    /// A route whose ``recipients`` are derived: the origin first when `echoes`, then the
    /// subscribers, the last `relayedCopies` of them other nodes.
    init(
        ssrc: UInt32, streamType: StreamType, participant: UInt32, room: Int, origin: SocketAddress, subscribers: [Subscriber],
        parentNode: String? = nil, echoes: Bool, relayedCopies: Int = 0
    ) {
        self.init(
            ssrc: ssrc, streamType: streamType, participant: participant, room: room, origin: origin, subscribers: subscribers,
            recipients: (echoes ? [Recipient(origin)] : []) + subscribers.map { Recipient($0.address) }, parentNode: parentNode,
            echoes: echoes, relayedCopies: relayedCopies)
    }
}
