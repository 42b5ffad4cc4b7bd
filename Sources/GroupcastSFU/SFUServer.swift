import Foundation
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
    public var participants = 0
    public var routes = 0

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
    /// The control plane's configuration; the forwarder's is the backend's own (GroupcastBackends'
    /// `ForwarderConfiguration` builds any backend).
    public struct Configuration: Sendable {
        public var controlAddress: SocketAddress
        public var capacity: Int = 64
        public var keepaliveTimeout: Duration = .seconds(10)
        /// Whether routes send media back to its sender (the pktswitch SFU does).
        public var echo = true
        public var room: RoomFile?

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
    private let started = monotonicNanoseconds()

    struct ControlState: Sendable {
        var registry: SessionRegistry
        var statistics = ControlStatistics()
        var generation: UInt64 = 0
    }

    /// An SFU driving `forwarder` (any backend): the control plane installs every new routing
    /// table into it. On failure the forwarder is closed.
    public init(configuration: Configuration, forwarder: any Forwarder, logger: Logger) throws(SFUError) {
        self.configuration = configuration
        self.logger = logger
        var registry = SessionRegistry(capacity: configuration.room?.capacity ?? configuration.capacity, keepaliveTimeout: configuration.keepaliveTimeout)
        if let timeout = configuration.room?.keepaliveTimeoutMilliseconds {
            registry.keepaliveTimeout = UInt64(timeout) * 1_000_000
        }
        for participant in configuration.room?.participants ?? [] {
            do { try registry.addStatic(participant) } catch {
                forwarder.close()
                throw .configuration("room: \(error.reason)")
            }
        }
        state = Mutex(ControlState(registry: registry))
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

    /// Stops both threads and waits for them (at most ~1 s), then closes the sockets.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        forwarder.stop()
        let deadline = monotonicNanoseconds() + 2_000_000_000
        while monotonicNanoseconds() < deadline {
            let done = finished.withLock { $0.control && $0.forwarder }
            if done || !threadsStarted.load(ordering: .acquiring) { break }
            usleep(2_000)
        }
        forwarder.close()
        try? controlSocket.close()
    }

    public func statistics() -> SFUStatistics {
        let control = state.withLock { $0.statistics }
        return SFUStatistics(
            backend: forwarder.backend, forwarder: forwarder.statistics(), control: control, cpu: .now(),
            uptime: monotonicNanoseconds() - started)
    }

    /// The registry as it is now (for tests and status output).
    public func participants() -> [Participant] {
        state.withLock { $0.registry.participants.values.sorted { $0.id < $1.id } }
    }

    private func publishTable() throws(SFUError) {
        let table = state.withLock { state -> RoutingTable in
            state.generation += 1
            var table = state.registry.routingTable(echo: configuration.echo)
            table.generation = state.generation
            state.statistics.participants = state.registry.count
            state.statistics.routes = table.routes.count
            return table
        }
        try forwarder.install(table)
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
                var replies: [(ControlMessage, SocketAddress)] = []
                for datagram in datagrams {
                    let (reply, didChange) = handle(datagram)
                    changed = changed || didChange
                    replies.append((reply, datagram.source))
                }
                // Install before replying: once a client has its reply, its routes exist.
                if changed {
                    do { try publishTable() } catch { return error }
                }
                for (reply, destination) in replies {
                    do { try controlSocket.send(reply.encoded(), to: destination) } catch {
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
                    logger.info("participants \(expired) timed out (no KEEPALIVE for \(configuration.keepaliveTimeout))")
                    do { try publishTable() } catch { return error }
                }
            }
        }
        return nil
    }

    /// One request -> its reply, and whether the routing table must be rebuilt.
    func handle(_ datagram: ReceivedDatagram) -> (ControlMessage, Bool) {
        let now = monotonicNanoseconds()
        let source = datagram.source
        let message: ControlMessage
        do throws(ControlParseError) {
            guard !datagram.isTruncated else { throw ControlParseError(.malformed, requestID: 0, "datagram over 2,048 bytes") }
            message = try ControlMessage.parse(datagram.bytes)
        } catch {
            return (reject(error.code, requestID: error.requestID, error.reason, from: source), false)
        }
        return state.withLock { state -> (ControlMessage, Bool) in
            state.statistics.requests += 1
            do throws(RegistryError) {
                switch message {
                case .register(let id, let port, let receive):
                    let before = state.registry.count
                    let participant = try state.registry.register(from: source, mediaPort: port, receive: receive, now: now)
                    if state.registry.count > before {
                        state.statistics.registered += 1
                        logger.info("participant \(participant.id) registered from \(source), media \(participant.mediaAddress), \(participant.ssrcs)")
                    }
                    let timeout = UInt32(clamping: state.registry.keepaliveTimeout / 1_000_000)
                    return (.registered(requestID: id, participant: participant.id, ssrcs: participant.ssrcs, keepaliveTimeoutMilliseconds: timeout), true)
                case .subscribe(let id, let participant, let sourceID, let streams):
                    try state.registry.subscribe(participant, to: sourceID, streams: streams, from: source, now: now)
                    return (.subscribed(requestID: id, participant: participant, source: sourceID, streams: streams), true)
                case .leave(let id, let participant):
                    try state.registry.leave(participant, from: source)
                    state.statistics.left += 1
                    logger.info("participant \(participant) left")
                    return (.left(requestID: id, participant: participant), true)
                case .keepalive(let id, let participant):
                    try state.registry.keepalive(participant, from: source, now: now)
                    return (.keepaliveAck(requestID: id, participant: participant), false)
                case .roster(let id, let participant):
                    let entries = try state.registry.roster(for: participant, from: source)
                    return (.rosterReply(requestID: id, entries: entries), false)
                case .registered, .subscribed, .left, .keepaliveAck, .rosterReply, .error:
                    state.statistics.errors[.unknownType, default: 0] += 1
                    return (.error(requestID: message.requestID, code: .unknownType, message: "\(message.kind) is a reply, not a request"), false)
                }
            } catch {
                state.statistics.errors[error.code, default: 0] += 1
                return (.error(requestID: message.requestID, code: error.code, message: error.reason), false)
            }
        }
    }

    private func reject(_ code: ControlErrorCode, requestID: UInt32, _ reason: String, from source: SocketAddress) -> ControlMessage {
        state.withLock {
            $0.statistics.requests += 1
            $0.statistics.errors[code, default: 0] += 1
        }
        logger.debug("control request from \(source) refused: \(code): \(reason)")
        return .error(requestID: requestID, code: code, message: reason)
    }
}
