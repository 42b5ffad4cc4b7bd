import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupUnicast
import Logging
import Synchronization

/// Control-plane counters.
public struct ControlStatistics: Hashable, Sendable {
    public var requests: UInt64 = 0
    /// ERROR replies sent, by code.
    public var errors: [ControlErrorCode: UInt64] = [:]
    public var registered: UInt64 = 0
    public var left: UInt64 = 0
    public var expired: UInt64 = 0
    /// CHALLENGE replies sent (REGISTER without a valid cookie, PROBE).
    public var challenges: UInt64 = 0
    /// Requests dropped unanswered because their source address was over its rate limit.
    public var rateLimited: UInt64 = 0
    /// Datagrams from an unverified sender too short to answer (an ERROR would be larger).
    public var unanswered: UInt64 = 0
    public var participants = 0
    public var routes = 0
    /// In a cluster: the copies of each packet round the table sends to other nodes, one per
    /// stream and child node in its relay tree (Docs/cluster.md, "Relay trees").
    public var relayChildren = 0
    /// Per room, by name.
    public var rooms: [String: RoomStatistics] = [:]

    public init() {}
}

/// Everything the SFU reports: forwarder, control plane, CPU.
public struct SFUStatistics: Sendable {
    public var backend: ForwarderBackend
    public var forwarder: ForwarderStatistics
    public var control: ControlStatistics
    public var cpu: CPUTime
    /// Monotonic ns since the SFU started.
    public var uptime: UInt64

    public init(backend: ForwarderBackend, forwarder: ForwarderStatistics, control: ControlStatistics, cpu: CPUTime, uptime: UInt64) {
        self.backend = backend
        self.forwarder = forwarder
        self.control = control
        self.cpu = cpu
        self.uptime = uptime
    }
}

/// The SFU: a control plane (session registry and routing table on the control port) and a
/// ``Forwarder`` on the media port, each on its own thread.
public final class SFUServer: Sendable {
    /// The control plane's configuration (the forwarder's is a ``ForwarderConfiguration``). Its
    /// defaults are `groupcast sfu`'s.
    public struct Configuration: Sendable {
        public var controlAddress: SocketAddress
        /// Participants, rooms and room creation.
        public var limits = SessionRegistry.Limits()
        public var keepaliveTimeout: Duration = .seconds(10)
        /// Whether routes send media back to its sender (the pktswitch SFU does).
        public var echo = true
        public var room: RoomFile?
        /// With a key, REGISTER needs a join token signed with it; without, the SFU is open (for
        /// trusted networks: Docs/protocol.md, "Security").
        public var authKey: TokenKey?
        /// Control requests per source address (IPv4 address, IPv6 /64); nil: unlimited.
        public var controlRateLimit: RateLimiter.Limit? = RateLimiter.Limit(rate: 200, burst: 400)
        /// How long a cookie's epoch lasts (a cookie is accepted for one to two of them).
        public var cookiePeriod: Duration = .seconds(30)
        /// Seconds since the Unix epoch, for token expiry (tests move it).
        public var wallClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
        /// Told every participant after each routing table is installed (`groupcast sfu
        /// --cluster` publishes them, Docs/cluster.md). Runs on the control thread: it must
        /// return at once (hand the list to another task), never wait for I/O.
        public var participantsChanged: (@Sendable ([Participant]) -> Void)?

        /// Capacity of each room created on first join (and of `default`).
        public var capacity: Int {
            get { limits.roomCapacity }
            set { limits.roomCapacity = newValue }
        }

        public init(controlAddress: SocketAddress) {
            self.controlAddress = controlAddress
        }
    }

    public let configuration: Configuration
    public let forwarder: any Forwarder
    private let controlSocket: GroupSocket
    private let logger: Logger
    private let state: Mutex<ControlState>
    private let stopping = Atomic<Bool>(false)
    private let threadsStarted = Atomic<Bool>(false)
    private let finished = Mutex<(control: Bool, forwarder: Bool, error: SFUError?)>((false, false, nil))
    /// Held from building a routing table to its install: the control thread and a reload
    /// install in generation order.
    private let publishing = Mutex<Void>(())
    private let started = monotonicNanoseconds()

    struct ControlState: Sendable {
        var registry: SessionRegistry
        var validator: AddressValidator
        var limiter: RateLimiter?
        var statistics = ControlStatistics()
        var generation: UInt64 = 0
        /// `configuration.echo` until a reload changes it.
        var echo: Bool
        /// `configuration.controlRateLimit` until a reload changes it.
        var rateLimit: RateLimiter.Limit?
        /// The cluster's other nodes (``setRemoteNodes(_:relays:)``), by name order.
        var remoteNodes: [RemoteNode] = []
        /// This node's places in the streams' relay trees, by SSRC.
        var relays: [UInt32: StreamRelay] = [:]
    }

    /// An SFU driving `forwarder` (any backend): the control plane installs every new routing
    /// table into it. On failure the forwarder is closed.
    public init(configuration: Configuration, forwarder: any Forwarder, logger: Logger) throws(SFUError) {
        self.configuration = configuration
        self.logger = logger
        // The room file's keepaliveTimeoutMs is not read here: `groupcast sfu` decides between it
        // and --keepalive-timeout (the flag wins) and hands over the result.
        var registry = SessionRegistry(limits: configuration.limits, keepaliveTimeout: configuration.keepaliveTimeout)
        let declared = configuration.room?.rooms ?? []
        do throws(RegistryError) {
            for room in declared {
                try registry.addRoom(room.name, capacity: room.capacity)
                for participant in room.participants { try registry.addStatic(participant, room: room.name) }
            }
            if declared.isEmpty { try registry.addRoom(RoomName.defaultRoom) }
        } catch {
            forwarder.close()
            throw .configuration("room: \(error.reason)")
        }
        let period = configuration.cookiePeriod.components
        let periodNs = UInt64(max(1, period.seconds)) * 1_000_000_000 + UInt64(max(0, period.attoseconds) / 1_000_000_000)
        state = Mutex(ControlState(
            registry: registry, validator: AddressValidator(period: periodNs, now: monotonicNanoseconds()),
            limiter: configuration.controlRateLimit.map { RateLimiter(limit: $0) }, echo: configuration.echo,
            rateLimit: configuration.controlRateLimit))
        self.forwarder = forwarder
        do {
            controlSocket = try GroupSocket(
                bindingTo: configuration.controlAddress, backend: .socket, options: .init(nonBlocking: true), logger: logger)
        } catch {
            forwarder.close()
            throw .socket("control socket on \(configuration.controlAddress)", error)
        }
        try publishTable()
    }

    public var controlAddress: SocketAddress {
        get throws(SFUError) {
            do { return try controlSocket.localAddress } catch { throw .socket("getsockname(control)", error) }
        }
    }

    public var mediaAddress: SocketAddress { get throws(SFUError) { try forwarder.localAddress } }

    /// Starts the control and forwarder threads.
    public func start() {
        let control = Thread { [self] in
            let error = runControl()
            finished.withLock { $0.control = true; if $0.error == nil { $0.error = error } }
        }
        control.name = "groupcast-control"
        let data = Thread { [self] in
            var failure: SFUError?
            do throws(SFUError) { try forwarder.run() } catch { failure = error }
            if let failure { logger.error("forwarder stopped: \(failure)") }
            finished.withLock { $0.forwarder = true; if $0.error == nil { $0.error = failure } }
        }
        data.name = "groupcast-forwarder"
        threadsStarted.store(true, ordering: .releasing)
        control.start()
        data.start()
    }

    /// Whether a thread ended on its own (an error), and which error.
    public var failure: SFUError? { finished.withLock { $0.error } }

    /// Stops both threads, waits for them, then closes the sockets: never under a thread still
    /// using them (the ring's memory and a reused descriptor number would be another's). Each
    /// returns within a poll interval of ``Forwarder/stop()``; one that has not after 2 s is named in
    /// a warning, and after ``stopGiveUpSeconds`` the SFU gives up and leaves its sockets open
    /// (an error says so) rather than closing them under it.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        forwarder.stop()
        let start = monotonicNanoseconds()
        var warned = false
        while threadsStarted.load(ordering: .acquiring) {
            let (control, data) = finished.withLock { ($0.control, $0.forwarder) }
            if control && data { break }
            let running = [control ? nil : "control", data ? nil : "forwarder"].compactMap { $0 }.joined(separator: " and ")
            let waited = monotonicNanoseconds() - start
            if waited > UInt64(Self.stopGiveUpSeconds) * 1_000_000_000 {
                logger.error("stop: the \(running) thread still runs after \(Self.stopGiveUpSeconds) s; its sockets stay open")
                return
            }
            if !warned && waited > 2_000_000_000 {
                logger.warning("stop: the \(running) thread has not returned after 2 s; waiting for it before closing the sockets")
                warned = true
            }
            usleep(2_000)
        }
        forwarder.close()
        try? controlSocket.close()
    }

    /// How long ``stop()`` waits for the threads before it leaves the sockets open.
    public static let stopGiveUpSeconds = 30

    public func statistics() -> SFUStatistics {
        let control = state.withLock { state in
            var statistics = state.statistics
            statistics.rooms = state.registry.rooms.mapValues(\.statistics)
            return statistics
        }
        return SFUStatistics(
            backend: forwarder.backend, forwarder: forwarder.statistics(), control: control, cpu: .now(),
            uptime: monotonicNanoseconds() - started)
    }

    /// The registry as it is now (for tests and status output).
    public func participants() -> [Participant] {
        state.withLock { $0.registry.participants.values.sorted { $0.id < $1.id } }
    }

    /// The rooms as they are now.
    public func rooms() -> [Room] {
        state.withLock { $0.registry.rooms.values.sorted { $0.name < $1.name } }
    }

    /// Applies what a reloaded configuration may change while media flows (`SIGHUP`,
    /// Docs/operations.md): the limits, room capacity, declared rooms and static participants,
    /// keepalive timeout, echo and the control rate limit, then installs the routing table they
    /// give. Everything else in `new` (addresses, key, clock) is not read: it needs a restart.
    /// Refused as a whole (nothing changes) when the rooms do not fit, e.g. a static participant
    /// over a room's capacity.
    public func reload(_ new: Configuration) throws(SFUError) {
        try state.withLock { state throws(SFUError) in
            do throws(RegistryError) {
                try state.registry.reconfigure(limits: new.limits, keepaliveTimeout: new.keepaliveTimeout, declaring: new.room?.rooms ?? [])
            } catch {
                throw .configuration("room: \(error.reason)")
            }
            state.echo = new.echo
            if new.controlRateLimit != state.rateLimit {
                state.rateLimit = new.controlRateLimit
                state.limiter = new.controlRateLimit.map { RateLimiter(limit: $0) }
            }
        }
        try publishTable()
    }

    /// In a cluster (Docs/cluster.md, "Media between nodes", "Relay trees"): the other nodes'
    /// participants this node shares rooms with and the nodes of its relay trees, with their
    /// advertised addresses, and this node's place in each stream's relay tree. The next
    /// routing table sends each stream to this node's children in its tree (one copy each) and
    /// takes another node's stream from its parent's address only; installed at once when it
    /// changes anything. Only the user-space backends forward between nodes: the xdp and ring
    /// data planes would echo a relayed stream back to its origin node, so they refuse it.
    public func setRemoteNodes(_ nodes: [RemoteNode], relays: [UInt32: StreamRelay]) throws(SFUError) {
        guard !forwarder.backend.needsInterface else {
            throw .configuration("media between cluster nodes needs the socket, sendmmsg or sendgroup backend, not \(forwarder.backend)")
        }
        let sorted = nodes.sorted { $0.name < $1.name }
        let changed = state.withLock { state in
            guard state.remoteNodes != sorted || state.relays != relays else { return false }
            state.remoteNodes = sorted
            state.relays = relays
            return true
        }
        if changed { try publishTable() }
    }

    private func publishTable() throws(SFUError) {
        try publishing.withLock { _ throws(SFUError) in
            let observer = configuration.participantsChanged
            let (table, participants) = state.withLock { state -> (RoutingTable, [Participant]) in
                state.generation += 1
                var table = state.registry.routingTable(echo: state.echo, remoteNodes: state.remoteNodes, relays: state.relays)
                table.generation = state.generation
                state.statistics.participants = state.registry.count
                state.statistics.routes = table.routes.count
                state.statistics.relayChildren = table.routes.values.reduce(0) { $0 + $1.relayedCopies }
                return (table, observer == nil ? [] : Array(state.registry.participants.values))
            }
            try forwarder.install(table)
            observer?(participants)
        }
    }

    private func runControl() -> SFUError? {
        var lastExpiry = monotonicNanoseconds()
        while !stopping.load(ordering: .acquiring) {
            let readable: Bool
            do { readable = try controlSocket.waitForReadable(timeout: .milliseconds(50)) } catch {
                return stopping.load(ordering: .acquiring) ? nil : .socket("poll(control)", error)
            }
            if readable {
                let datagrams: [ReceivedDatagram]
                do { datagrams = try controlSocket.receiveBatch(maxCount: 32, maxSize: 2048) } catch {
                    return stopping.load(ordering: .acquiring) ? nil : .socket("recvmmsg(control)", error)
                }
                var changed = false
                var replies: [([UInt8], SocketAddress)] = []
                for datagram in datagrams {
                    let (reply, didChange) = handle(datagram)
                    changed = changed || didChange
                    if let reply { replies.append((reply, datagram.source)) }
                }
                // Install before replying: once a client has its reply, its routes exist.
                if changed {
                    do { try publishTable() } catch { return error }
                }
                for (reply, destination) in replies {
                    do { try controlSocket.send(reply, to: destination) } catch {
                        logger.warning("control reply to \(destination) not sent: \(error)")
                    }
                }
            }
            let now = monotonicNanoseconds()
            if now - lastExpiry > 100_000_000 {
                lastExpiry = now
                let expired = state.withLock { state -> [UInt32] in
                    let ids = state.registry.expire(now: now)
                    state.statistics.expired += UInt64(ids.count)
                    return ids
                }
                if !expired.isEmpty {
                    logger.info("participants \(expired) timed out (no KEEPALIVE for \(Duration.nanoseconds(state.withLock { $0.registry.keepaliveTimeout })))")
                    do { try publishTable() } catch { return error }
                }
            }
        }
        return nil
    }

    /// One datagram -> its reply's bytes (nil: none is sent), and whether the routing table must
    /// be rebuilt.
    ///
    /// Order (Docs/protocol.md, "Control"): rate limit per source address (over it: dropped,
    /// unanswered); parse as a request; REGISTER and PROBE answered with a CHALLENGE until the
    /// source address proves itself with its cookie; other requests need the participant's session
    /// from its control address. A reply to a sender that has not proven its address (no valid
    /// cookie or session) is never larger than the datagram it answers.
    func handle(_ datagram: ReceivedDatagram) -> ([UInt8]?, Bool) {
        let now = monotonicNanoseconds()
        let source = datagram.source
        let size = datagram.isTruncated ? Int.max : datagram.bytes.count
        return state.withLock { state -> ([UInt8]?, Bool) in
            if state.limiter?.allow(source, now: now) == false {
                state.statistics.rateLimited += 1
                return (nil, false)
            }
            state.statistics.requests += 1
            let message: ControlMessage
            do throws(ControlParseError) {
                guard !datagram.isTruncated else { throw ControlParseError(.malformed, requestID: 0, "datagram over 2,048 bytes") }
                message = try ControlMessage.parse(datagram.bytes, expecting: .request)
            } catch {
                logger.debug("control request from \(source) refused: \(error)")
                return (refuse(error.code, requestID: error.requestID, error.reason, version: error.version, limit: size, state: &state), false)
            }
            state.validator.advance(to: now)
            var verified = false
            do throws(RegistryError) {
                switch message {
                case .probe(let id):
                    state.statistics.challenges += 1
                    return (ControlMessage.challenge(requestID: id, cookie: state.validator.cookie(for: source.validationBytes)).encoded(), false)
                case .register(let registration):
                    guard state.validator.isValid(registration.cookie, for: source.validationBytes) else {
                        state.statistics.challenges += 1
                        return (ControlMessage.challenge(requestID: registration.requestID, cookie: state.validator.cookie(for: source.validationBytes)).encoded(), false)
                    }
                    verified = true
                    let join = try joinRequest(registration, from: source, validator: state.validator)
                    let before = state.registry.count
                    let participant = try state.registry.register(join, now: now)
                    if state.registry.count > before {
                        state.statistics.registered += 1
                        logger.info("participant \(participant.id)\(participant.identity.map { " (\($0))" } ?? "") joined room \(participant.room) from \(source), media \(participant.mediaAddress), \(participant.ssrcs)")
                    }
                    let timeout = UInt32(clamping: state.registry.keepaliveTimeout / 1_000_000)
                    let reply = Registered(
                        requestID: registration.requestID, participant: participant.id, ssrcs: participant.ssrcs,
                        keepaliveTimeoutMilliseconds: timeout, session: participant.session, send: join.sendable,
                        receive: participant.receivable)
                    return (ControlMessage.registered(reply).encoded(), true)
                case .subscribe(let id, let participant, let session, let sourceID, let streams):
                    _ = try state.registry.owned(participant, session: session, by: source)
                    verified = true
                    try state.registry.subscribe(participant, session: session, to: sourceID, streams: streams, from: source, now: now)
                    return (ControlMessage.subscribed(requestID: id, participant: participant, source: sourceID, streams: streams).encoded(), true)
                case .leave(let id, let participant, let session):
                    try state.registry.leave(participant, session: session, from: source)
                    state.statistics.left += 1
                    logger.info("participant \(participant) left")
                    return (ControlMessage.left(requestID: id, participant: participant).encoded(), true)
                case .keepalive(let id, let participant, let session):
                    try state.registry.keepalive(participant, session: session, from: source, now: now)
                    return (ControlMessage.keepaliveAck(requestID: id, participant: participant).encoded(), false)
                case .roster(let id, let participant, let session, let after):
                    let (entries, more) = try state.registry.roster(for: participant, session: session, from: source, after: after)
                    return (ControlMessage.rosterReply(requestID: id, entries: entries, more: more).encoded(), false)
                case .registered, .subscribed, .left, .keepaliveAck, .rosterReply, .challenge, .error:
                    // parse(expecting: .request) refuses replies; kept total.
                    return (refuse(.unknownType, requestID: message.requestID, "\(message.kind) is a reply", limit: size, state: &state), false)
                }
            } catch {
                logger.debug("control request from \(source) refused: \(error)")
                return (refuse(error.code, requestID: message.requestID, error.reason, limit: verified ? .max : size, state: &state), false)
            }
        }
    }

    /// The registry's view of a REGISTER whose source cookie was valid: the media address
    /// (verified by its own cookie when it is another port), room, identity and rights (from the
    /// token when authentication is on).
    private func joinRequest(_ registration: Registration, from source: SocketAddress, validator: AddressValidator) throws(RegistryError) -> JoinRequest {
        var media = source
        if registration.mediaPort != 0 && registration.mediaPort != source.port {
            media = source.withPort(registration.mediaPort)
            guard validator.isValid(registration.mediaCookie, for: media.validationBytes) else {
                throw RegistryError(.mediaUnverified, "no valid cookie for media port \(registration.mediaPort): PROBE from it")
            }
        }
        guard let key = configuration.authKey else {
            return JoinRequest(
                source: source, mediaAddress: media, room: registration.room.isEmpty ? RoomName.defaultRoom : registration.room,
                receive: registration.receive)
        }
        guard !registration.token.isEmpty else { throw RegistryError(.unauthorized, "this SFU needs a join token") }
        let claims: JoinClaims
        do { claims = try JoinToken.verify(registration.token, key: key, now: configuration.wallClock()) } catch {
            throw RegistryError(.unauthorized, error.description)
        }
        let room = registration.room.isEmpty ? claims.room : registration.room
        guard room == claims.room else { throw RegistryError(.unauthorized, "the token is for room \(claims.room)") }
        return JoinRequest(
            source: source, mediaAddress: media, room: room, identity: claims.identity, sendable: claims.sendable,
            receivable: claims.receivable, receive: registration.receive)
    }

    /// An ERROR of at most `limit` bytes (its text cut to fit), or nothing when even the 12-byte
    /// ERROR is larger: a sender that has not proven its address never gets more than it sent.
    private func refuse(
        _ code: ControlErrorCode, requestID: UInt32, _ reason: String, version: UInt8 = ControlMessage.version, limit: Int,
        state: inout ControlState
    ) -> [UInt8]? {
        state.statistics.errors[code, default: 0] += 1
        guard limit >= 12 else {
            state.statistics.unanswered += 1
            return nil
        }
        return ControlMessage.error(requestID: requestID, code: code, message: reason).encoded(maxSize: limit, version: version)
    }
}
