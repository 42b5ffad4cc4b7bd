import GroupcastProtocol
import GroupUnicast

/// Where one stream's packets go: the forwarding entry of one source SSRC.
///
/// It carries what `struct gc_route` in `bpf/include/groupcast_layout.h` needs (origin address and port, stream
/// type, subscriber addresses), so an XDP forwarder can program its map from the same value.
public struct Route: Hashable, Sendable {
    public var ssrc: UInt32
    public var streamType: StreamType
    /// The source participant.
    public var participant: UInt32
    /// The room of the source (and of every subscriber): index in ``RoutingTable/rooms``.
    public var room: Int
    /// The only address and port allowed to send on ``ssrc``; others are spoofed.
    public var origin: SocketAddress
    /// The participants that receive this stream (the origin excluded), by id order.
    public var subscribers: [Subscriber]
    /// What a user-space forwarder hands to `GroupSocket.send`: the origin first when echo is
    /// on, then every subscriber.
    public var recipients: [Recipient]
}

/// One receiver of a route.
public struct Subscriber: Hashable, Sendable {
    public var participant: UInt32
    public var address: SocketAddress
}

/// The forwarding state: source SSRC -> route. Immutable; rebuilt from the ``SessionRegistry``
/// after every control change and handed to the ``Forwarder`` whole.
public struct RoutingTable: Sendable {
    public let routes: [UInt32: Route]
    /// The rooms, sorted: those of the registry (an empty declared room too) and of every
    /// participant. ``Route/room`` indexes it, so a data plane counts per room without hashing
    /// names per packet; the media counters of a room no longer here are forgotten.
    public let rooms: [String]
    /// Whether every media packet also goes back to its origin.
    public let echo: Bool
    /// Increases with every table the control plane builds.
    public var generation: UInt64 = 0

    public static let empty = RoutingTable(participants: [], echo: true)

    /// `rooms`: rooms that exist without participants (the registry's); the participants' own are
    /// added.
    public init(participants: [Participant], echo: Bool, rooms: some Sequence<String> = []) {
        self.echo = echo
        let rooms = Set(rooms).union(participants.map(\.room)).sorted()
        self.rooms = rooms
        let roomIndex = Dictionary(uniqueKeysWithValues: rooms.enumerated().map { ($1, $0) })
        var routes: [UInt32: Route] = [:]
        for source in participants {
            for (type, ssrc) in source.ssrcs.streams {
                // Rooms never mix: only members of the source's room subscribe.
                let subscribers = participants.filter { $0.id != source.id && $0.room == source.room && $0.streams(from: source.id).contains(type) }
                    .map { Subscriber(participant: $0.id, address: $0.mediaAddress) }
                let recipients = (echo ? [Recipient(source.mediaAddress)] : [])
                    + subscribers.map { Recipient($0.address) }
                routes[ssrc] = Route(
                    ssrc: ssrc, streamType: type, participant: source.id, room: roomIndex[source.room]!, origin: source.mediaAddress,
                    subscribers: subscribers, recipients: recipients)
            }
        }
        self.routes = routes
    }

    @inline(__always)
    public subscript(ssrc: UInt32) -> Route? { routes[ssrc] }
}
