import GroupcastProtocol
import GroupUnicast
import SystemPackage

/// How the SFU moves media packets. One name per backend, used by `--backend` and
/// `GROUPCAST_SFU_BACKEND`.
public enum ForwarderBackend: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// `recvmsg` one datagram per call, one `sendmsg` per recipient: the pktswitch paper's baseline.
    case socket
    /// `recvmmsg` batches, one `sendmmsg` per packet for all its recipients.
    case sendmmsg
    /// `recvmmsg` batches through the sendgroup module: by default one kernel group per route and
    /// one `ioctl(SENDGROUP_GROUP_IOC_SEND)` per route and batch, or one
    /// `ioctl(SENDGROUP_IOC_SEND)` per packet (``SendgroupMode``).
    case sendgroup
    /// The XDP/TC fast path (`bpf/groupcast.bpf.c`): the control plane programs its route map,
    /// the kernel replicates; what it passes up is forwarded by a user-space slow path
    /// (`XDPForwarder` in GroupcastXDPBackend).
    case xdp
    /// AF_XDP rings (the pktswitch paper's netmap model): batch receive, n copies into TX slots
    /// (`RingForwarder` in GroupcastRingBackend, Docs/ring.md).
    case ring

    public var description: String { rawValue }

    /// Whether the data plane runs on a network interface (XDP, AF_XDP) rather than on a socket:
    /// such a backend needs a real device path to its receivers (not loopback) and attaches to
    /// the interface(s) the media address is on.
    public var needsInterface: Bool {
        switch self {
        case .socket, .sendmmsg, .sendgroup: false
        case .xdp, .ring: true
        }
    }

    /// The fastest backend that works here: `sendgroup` when `/dev/sendgroup` exists, else `sendmmsg`.
    public static var fastestAvailable: ForwarderBackend {
        GroupSocket.isKernelModuleLoaded ? .sendgroup : .sendmmsg
    }
}

/// The data plane of the SFU: receives media, checks origins, replicates per the routing table.
///
/// The control plane never touches packets; it only hands the forwarder a new ``RoutingTable``
/// after every change. A user-space forwarder replicates with ``Route/recipients``; an XDP
/// forwarder writes each ``Route`` into the `gc_route` map of `bpf/include/groupcast_layout.h` instead.
public protocol Forwarder: AnyObject, Sendable {
    var backend: ForwarderBackend { get }
    /// The media socket's local address (the port clients send media to).
    var localAddress: SocketAddress { get throws(SFUError) }
    /// Replaces the routing table; takes effect for the next packet.
    func install(_ table: RoutingTable) throws(SFUError)
    /// Forwards until ``stop()``; returns then, after publishing final statistics.
    func run() throws(SFUError)
    /// Asks ``run()`` to return (from any thread) and closes nothing.
    func stop()
    /// The latest published counters.
    func statistics() -> ForwarderStatistics
    /// Closes the media socket; call after ``run()`` returned.
    func close()
}

/// Errors of the SFU, each naming what failed.
public enum SFUError: Error, CustomStringConvertible, Sendable {
    /// A socket operation failed.
    case socket(String, GroupUnicastError)
    /// The backend cannot run here (for example `sendgroup` without the module).
    case backendUnavailable(ForwarderBackend, String)
    /// The room file or configuration was refused.
    case configuration(String)

    public var description: String {
        switch self {
        case .socket(let what, let error): "\(what): \(error)"
        case .backendUnavailable(let backend, let reason): "backend \(backend) unavailable: \(reason)"
        case .configuration(let reason): "configuration: \(reason)"
        }
    }
}

/// A bounded FIFO of copies waiting for one receiver; full, it drops its oldest (head drop), so a
/// slow receiver loses its own oldest packets and nobody else's.
public struct ReceiverBacklog: Sendable {
    public struct Entry: Sendable {
        public var bytes: [UInt8]
        public var kind: CopyKind
        /// The room of the stream (its media counters get the copy when it is sent or dropped).
        public var room: String
    }
    public let capacity: Int
    private var entries: [Entry?]
    private var head = 0
    public private(set) var count = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "backlog capacity must be positive")
        self.capacity = capacity
        entries = Array(repeating: nil, count: capacity)
    }

    /// Appends `entry`; returns the entry dropped from the head to make room, if any.
    @discardableResult
    public mutating func append(_ entry: Entry) -> Entry? {
        var dropped: Entry?
        if count == capacity {
            dropped = entries[head]
            entries[head] = nil
            head = (head + 1) % capacity
            count -= 1
        }
        entries[(head + count) % capacity] = entry
        count += 1
        return dropped
    }

    public var first: Entry? { count == 0 ? nil : entries[head] }

    public mutating func removeFirst() {
        guard count > 0 else { return }
        entries[head] = nil
        head = (head + 1) % capacity
        count -= 1
    }

    public var isEmpty: Bool { count == 0 }
}

/// What one group send of a route's payloads did (``ForwardingEngine/RouteSend``).
public struct RouteDelivery: Sendable {
    /// A copy the kernel refused: which payload, to which member, why.
    public struct Failure: Sendable {
        public var payloadIndex: Int
        public var address: SocketAddress
        /// Whether the member is the route's origin (its echo).
        public var isEcho: Bool
        public var error: Errno

        public init(payloadIndex: Int, address: SocketAddress, isEcho: Bool, error: Errno) {
            self.payloadIndex = payloadIndex
            self.address = address
            self.isEcho = isEcho
            self.error = error
        }
    }

    /// The members every payload went to (0: the route has no group, nothing was sent).
    public var memberCount: Int
    /// Whether the route's origin is a member (the table echoes).
    public var echoIsMember: Bool
    /// Every refused copy; each payload reached the other members.
    public var failures: [Failure]

    public init(memberCount: Int, echoIsMember: Bool, failures: [Failure]) {
        self.memberCount = memberCount
        self.echoIsMember = echoIsMember
        self.failures = failures
    }
}

/// The forwarding decisions, without I/O: parse, look up, check origin, shed, replicate through a
/// `send` function, queue what the kernel refused for lack of buffer, count everything.
///
/// Every user-space backend runs this; tests drive it with a fake `send`.
///
/// Media is counted per room too: per packet into an array indexed by ``Route/room`` (no lookup
/// by name, no allocation), folded into ``ForwarderStatistics/rooms`` by name when a table is
/// installed and when the statistics are published (``snapshot()``).
public struct ForwardingEngine: Sendable {
    /// `send(payload, recipients) -> per-recipient errno` (a `GroupSocket.send`).
    public typealias Send = (UnsafeRawBufferPointer, [Recipient]) -> [Errno?]
    /// `routeSend(route, payloads)`: every payload, in order, to every member of the route's
    /// kernel group (a `MemberGroup.sendBatch`), which the forwarder keeps equal to the
    /// installed table's ``Route/recipients``; `nil` when the route has no group (the packets
    /// then go through `send` one by one).
    public typealias RouteSend = (Route, [[UInt8]]) -> RouteDelivery?

    public private(set) var table: RoutingTable
    /// The counters; the per-room ones (``ForwarderStatistics/rooms``) as of the last
    /// ``snapshot()`` or ``install(_:)``.
    public var statistics = ForwarderStatistics()
    /// Per-room media counted since the last fold, indexed like `table.rooms`.
    private var roomCounters: [MediaCounters]
    /// 0: forward all; 1: shed VHQ; 2: shed VHQ and VSQ. ASQ is never shed.
    public var sheddingLevel = 0
    public let backlogCapacity: Int
    private var backlogs: [SocketAddress: ReceiverBacklog] = [:]
    /// Receivers with a non-empty backlog, oldest first (flush order).
    private var backlogged: [SocketAddress] = []
    /// The table's rooms: a queued copy whose room has gone since is counted in no room.
    private var liveRooms: Set<String>

    public init(table: RoutingTable, backlogCapacity: Int) {
        self.table = table
        self.backlogCapacity = backlogCapacity
        roomCounters = Array(repeating: MediaCounters(), count: table.rooms.count)
        liveRooms = Set(table.rooms)
        statistics.tableGeneration = table.generation
    }

    /// The statistics with every room's media counted so far.
    public mutating func snapshot() -> ForwarderStatistics {
        foldRoomCounters()
        return statistics
    }

    /// Adds the per-room counts since the last fold to ``ForwarderStatistics/rooms``.
    private mutating func foldRoomCounters() {
        for index in roomCounters.indices where !roomCounters[index].isZero {
            statistics.rooms[table.rooms[index], default: MediaCounters()] += roomCounters[index]
            roomCounters[index] = MediaCounters()
        }
    }

    public var hasBacklog: Bool { !backlogged.isEmpty }

    /// Copies queued for `address`.
    public func backlogCount(for address: SocketAddress) -> Int { backlogs[address]?.count ?? 0 }

    /// Whether an errno means "no buffer now, try later" rather than a failed copy.
    @inline(__always)
    static func isBackpressure(_ error: Errno) -> Bool {
        error == .wouldBlock || error == .noBufferSpace
    }

    /// Handles one received datagram picked up at `pickup` (monotonic ns: when the receive call
    /// returned or, inside a batch, when the previous packet was done). Returns when this one was
    /// done (its last copy scheduled), or `pickup` for a packet dropped before any copy.
    @discardableResult
    public mutating func process(_ datagram: ReceivedDatagram, pickup: UInt64, send: Send) -> UInt64 {
        statistics.received &+= 1
        if datagram.isTruncated {
            statistics[.tooLarge] &+= 1
            return pickup
        }
        return datagram.bytes.withUnsafeBytes { bytes in
            process(bytes, from: datagram.source, pickup: pickup, send: send)
        }
    }

    @inline(__always)
    mutating func process(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress, pickup: UInt64, send: Send) -> UInt64 {
        guard let route = admit(bytes, from: source) else { return pickup }
        replicate(bytes, along: route, send: send)
        let done = monotonicNanoseconds()
        statistics.delay.record(done &- pickup)
        return done
    }

    /// Handles one `recvmmsg` batch picked up at `pickup`: every packet is checked as by
    /// ``process(_:pickup:send:)``, then the packets of one route leave in one `routeSend`, in
    /// order, routes in the order of their first packet. While a receiver has a backlog, the
    /// packets of every route go through `send` one by one instead, so they queue behind it.
    /// A packet's delay runs from the end of the previous route's send. Returns when the last
    /// route was done.
    ///
    /// One difference from ``process(_:pickup:send:)``: a receiver refused for lack of buffer on
    /// one payload of a group send is not skipped for the later payloads of the same call (the
    /// kernel goes on), so it may get those before its queued copy.
    @discardableResult
    public mutating func processBatch(_ datagrams: [ReceivedDatagram], pickup: UInt64, send: Send, routeSend: RouteSend) -> UInt64 {
        // Route slots in order of first packet; a batch holds a few streams, so a linear scan wins.
        var routes: [Route] = []
        var payloads: [[[UInt8]]] = []
        for datagram in datagrams {
            statistics.received &+= 1
            if datagram.isTruncated {
                statistics[.tooLarge] &+= 1
                continue
            }
            guard let route = datagram.bytes.withUnsafeBytes({ admit($0, from: datagram.source) }) else { continue }
            if let slot = routes.firstIndex(where: { $0.ssrc == route.ssrc }) {
                payloads[slot].append(datagram.bytes)
            } else {
                routes.append(route)
                payloads.append([datagram.bytes])
            }
        }
        var pickup = pickup
        for (route, packets) in zip(routes, payloads) {
            if !route.recipients.isEmpty && backlogged.isEmpty, let delivery = timedRouteSend(routeSend, route, packets) {
                record(delivery, of: packets, route: route)
            } else {
                for packet in packets { packet.withUnsafeBytes { replicate($0, along: route, send: send) } }
            }
            let done = monotonicNanoseconds()
            for _ in packets { statistics.delay.record(done &- pickup) }
            pickup = done
        }
        return pickup
    }

    /// Parses, looks up, checks the origin and sheds; counts a refused packet under its reason
    /// and an admitted one as received by its room. The route to replicate along, or `nil`.
    @inline(__always)
    private mutating func admit(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress) -> Route? {
        let header: RTPHeader
        do {
            header = try RTPHeader.parse(bytes)
        } catch {
            statistics[DropReason(error)] &+= 1
            return nil
        }
        guard let route = table[header.ssrc] else {
            statistics[.unknownSSRC] &+= 1
            return nil
        }
        guard route.origin == source else {
            statistics[.spoofed] &+= 1
            return nil
        }
        let room = route.room
        roomCounters[room].received &+= 1
        roomCounters[room].receivedBytes &+= UInt64(bytes.count)
        switch route.streamType {
        case .vhq where sheddingLevel >= 1:
            statistics[.shedVHQ] &+= 1
            roomCounters[room].dropped &+= 1
            return nil
        case .vsq where sheddingLevel >= 2:
            statistics[.shedVSQ] &+= 1
            roomCounters[room].dropped &+= 1
            return nil
        default:
            return route
        }
    }

    /// One packet to every recipient of `route` through `send`, receivers with a backlog queued.
    @inline(__always)
    private mutating func replicate(_ bytes: UnsafeRawBufferPointer, along route: Route, send: Send) {
        let recipients = route.recipients
        guard !recipients.isEmpty else { return }
        let room = route.room
        if backlogged.isEmpty {
            let errors = timedSend(send, bytes, recipients)
            for (index, error) in errors.enumerated() {
                record(error, kind: route.copyKind(ofRecipient: index), address: recipients[index].address, bytes: bytes, room: room)
            }
        } else {
            // Keep each receiver's order: receivers with a backlog queue behind it.
            var direct: [Recipient] = []
            var directIndices: [Int] = []
            for (index, recipient) in recipients.enumerated() {
                if backlogs[recipient.address].map({ !$0.isEmpty }) ?? false {
                    enqueue(bytes, for: recipient.address, kind: route.copyKind(ofRecipient: index), room: room)
                } else {
                    direct.append(recipient)
                    directIndices.append(index)
                }
            }
            if !direct.isEmpty {
                let errors = timedSend(send, bytes, direct)
                for (slot, error) in errors.enumerated() {
                    record(error, kind: route.copyKind(ofRecipient: directIndices[slot]), address: direct[slot].address, bytes: bytes, room: room)
                }
            }
        }
    }

    /// Counts a group send's copies: every member got every payload but the failures; a failure
    /// for lack of buffer is queued for its receiver, any other one dropped.
    private mutating func record(_ delivery: RouteDelivery, of packets: [[UInt8]], route: Route) {
        let room = route.room
        var failedEcho = [Bool](repeating: false, count: packets.count)
        var failed = [Int](repeating: 0, count: packets.count)
        var failedRelays = [Int](repeating: 0, count: packets.count)
        // The other nodes among the members (rarely more than a few).
        let nodes = route.subscribers.suffix(route.relayedCopies).map(\.address)
        for failure in delivery.failures {
            failed[failure.payloadIndex] += 1
            let kind: CopyKind
            if failure.isEcho {
                failedEcho[failure.payloadIndex] = true
                kind = .echo
            } else if nodes.contains(failure.address) {
                failedRelays[failure.payloadIndex] += 1
                kind = .relayed
            } else {
                kind = .forwarded
            }
            packets[failure.payloadIndex].withUnsafeBytes {
                record(failure.error, kind: kind, address: failure.address, bytes: $0, room: room)
            }
        }
        for (index, packet) in packets.enumerated() {
            let echoed = delivery.echoIsMember && !failedEcho[index]
            if echoed {
                statistics.countSent(.echo)
                roomCounters[room].countSent(.echo, bytes: packet.count)
            }
            // A group's members are the route's recipients (RouteSend).
            let relayed = UInt64(max(0, min(delivery.memberCount, route.relayedCopies) - failedRelays[index]))
            let forwarded = UInt64(max(0, delivery.memberCount - failed[index] - (echoed ? 1 : 0) - Int(relayed)))
            statistics.forwarded &+= forwarded
            statistics.relayed &+= relayed
            roomCounters[room].forwarded &+= forwarded
            roomCounters[room].forwardedBytes &+= forwarded &* UInt64(packet.count)
            roomCounters[room].relayed &+= relayed
            roomCounters[room].relayedBytes &+= relayed &* UInt64(packet.count)
        }
    }

    /// `routeSend`, its duration added to ``ForwarderStatistics/sendNanoseconds`` when it sent.
    @inline(__always)
    private mutating func timedRouteSend(_ routeSend: RouteSend, _ route: Route, _ packets: [[UInt8]]) -> RouteDelivery? {
        let start = monotonicNanoseconds()
        guard let delivery = routeSend(route, packets) else { return nil }
        statistics.sendNanoseconds &+= monotonicNanoseconds() &- start
        statistics.sendCalls &+= 1
        return delivery
    }

    /// `send`, with its duration added to ``ForwarderStatistics/sendNanoseconds``.
    @inline(__always)
    private mutating func timedSend(_ send: Send, _ bytes: UnsafeRawBufferPointer, _ recipients: [Recipient]) -> [Errno?] {
        let start = monotonicNanoseconds()
        let errors = send(bytes, recipients)
        statistics.sendNanoseconds &+= monotonicNanoseconds() &- start
        statistics.sendCalls &+= 1
        return errors
    }

    @inline(__always)
    private mutating func record(_ error: Errno?, kind: CopyKind, address: SocketAddress, bytes: UnsafeRawBufferPointer, room: Int) {
        guard let error else {
            statistics.countSent(kind)
            roomCounters[room].countSent(kind, bytes: bytes.count)
            return
        }
        if Self.isBackpressure(error) {
            enqueue(bytes, for: address, kind: kind, room: room)
        } else {
            statistics[.sendFailed] &+= 1
            roomCounters[room].dropped &+= 1
        }
    }

    private mutating func enqueue(_ bytes: UnsafeRawBufferPointer, for address: SocketAddress, kind: CopyKind, room: Int) {
        statistics.deferred &+= 1
        var backlog = backlogs.removeValue(forKey: address) ?? ReceiverBacklog(capacity: backlogCapacity)
        if backlog.isEmpty { backlogged.append(address) }
        if let dropped = backlog.append(.init(bytes: Array(bytes), kind: kind, room: table.rooms[room])) {
            statistics[.headDrop] &+= 1
            countQueued(in: dropped.room) { $0.dropped &+= 1 }
        }
        backlogs[address] = backlog
    }

    /// Sends queued copies, oldest receiver first, until the kernel pushes back again.
    public mutating func flushBacklogs(send: Send) {
        var index = 0
        while index < backlogged.count {
            let address = backlogged[index]
            guard var backlog = backlogs.removeValue(forKey: address) else { backlogged.remove(at: index); continue }
            var blocked = false
            while let entry = backlog.first {
                let error = entry.bytes.withUnsafeBytes { timedSend(send, $0, [Recipient(address)]) }.first ?? nil
                if let error, Self.isBackpressure(error) {
                    blocked = true
                    break
                }
                backlog.removeFirst()
                if error != nil {
                    statistics[.sendFailed] &+= 1
                    countQueued(in: entry.room) { $0.dropped &+= 1 }
                } else {
                    statistics.countSent(entry.kind)
                    countQueued(in: entry.room) { $0.countSent(entry.kind, bytes: entry.bytes.count) }
                }
            }
            if backlog.isEmpty {
                backlogged.remove(at: index)
            } else {
                backlogs[address] = backlog
                index += 1
            }
            if blocked { return }
        }
    }

    /// Counts a queued copy's fate in its room, by name (off the per-packet path: the receiver was
    /// backlogged), unless the room has left the table since the copy was queued: a gone room's
    /// counters are forgotten with it and must not come back.
    private mutating func countQueued(in room: String, _ update: (inout MediaCounters) -> Void) {
        guard liveRooms.contains(room) else { return }
        update(&statistics.rooms[room, default: MediaCounters()])
    }

    /// Installs a new table; backlogs of receivers no longer in any route are dropped (head drops).
    /// The media counters of rooms no longer in the table are forgotten (a room goes with its
    /// last participant, its control counters too).
    public mutating func install(_ newTable: RoutingTable) {
        foldRoomCounters()
        table = newTable
        liveRooms = Set(newTable.rooms)
        statistics.tableGeneration = newTable.generation
        if roomCounters.count != newTable.rooms.count {
            roomCounters = Array(repeating: MediaCounters(), count: newTable.rooms.count)
        }
        if statistics.rooms.count > 0 {
            statistics.rooms = statistics.rooms.filter { liveRooms.contains($0.key) }
        }
        guard !backlogged.isEmpty else { return }
        var live = Set<SocketAddress>()
        for route in newTable.routes.values { for recipient in route.recipients { live.insert(recipient.address) } }
        for address in backlogged where !live.contains(address) {
            guard var backlog = backlogs.removeValue(forKey: address) else { continue }
            statistics[.headDrop] &+= UInt64(backlog.count)
            while let entry = backlog.first {
                countQueued(in: entry.room) { $0.dropped &+= 1 }
                backlog.removeFirst()
            }
        }
        backlogged.removeAll { !live.contains($0) }
    }
}
