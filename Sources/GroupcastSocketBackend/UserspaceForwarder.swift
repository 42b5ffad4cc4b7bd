#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization
import SystemPackage

/// The `socket`, `sendmmsg` and `sendgroup` backends: a nonblocking ``GroupSocket`` on the media
/// port and a ``ForwardingEngine``.
///
/// | backend | receive | send per packet |
/// | --- | --- | --- |
/// | `socket` | `recvmsg`, one datagram per call | one `sendmsg` per recipient (`GroupSendBackend.socket`) |
/// | `sendmmsg` | `recvmmsg`, up to `batchSize` | one `sendmmsg` for all recipients |
/// | `sendgroup`, ``SendgroupMode/groups`` | `recvmmsg`, up to `batchSize` | one `ioctl(SENDGROUP_GROUP_IOC_SEND)` per route and batch (``RouteGroups``) |
/// | `sendgroup`, ``SendgroupMode/oneshot`` | `recvmmsg`, up to `batchSize` | one `ioctl(SENDGROUP_IOC_SEND)` (`GroupSendBackend.sendgroup`) |
///
/// In groups mode a copy queued for a slow receiver, and every packet while any receiver has a
/// queue, goes out one-shot (`SENDGROUP_IOC_SEND`), so each receiver keeps its order.
///
/// Overload: after every receive the forwarder reads how full the socket's receive queue is
/// (`getsockopt(SO_MEMINFO)`); above ``ForwarderConfiguration/shedVHQAt`` it sheds VHQ, above
/// ``ForwarderConfiguration/shedVSQAt`` VSQ too, never ASQ.
public final class UserspaceForwarder: Forwarder {
    public let backend: ForwarderBackend
    public let configuration: ForwarderConfiguration
    private let socket: GroupSocket
    private let logger: Logger
    /// The table for the next batch (``SendgroupMode/groups`` keeps it in ``routeGroups``).
    private let pendingTable = Mutex<RoutingTable?>(nil)
    /// The kernel group of every route (`sendgroup` in ``SendgroupMode/groups``), else `nil`.
    private let routeGroups: RouteGroups?
    private let published = Mutex(ForwarderStatistics())
    private let stopping = Atomic<Bool>(false)

    /// The forwarder of `configuration.backend` (socket, sendmmsg or sendgroup) on a media socket
    /// bound to `configuration.mediaAddress`.
    public init(configuration: ForwarderConfiguration, logger: Logger) throws(SFUError) {
        let backend = configuration.backend
        let socketBackend: GroupSendBackend
        switch backend {
        case .socket: socketBackend = .socket
        case .sendmmsg: socketBackend = .sendmmsg
        case .sendgroup:
            guard GroupSocket.isKernelModuleLoaded else {
                throw .backendUnavailable(.sendgroup, "the sendgroup module is not loaded (/dev/sendgroup missing)")
            }
            socketBackend = .sendgroup
        case .xdp, .ring:
            throw .backendUnavailable(backend, "not a user-space socket backend")
        }
        self.backend = backend
        self.configuration = configuration
        self.logger = logger
        let options = GroupSocket.Options(
            nonBlocking: true, receiveBufferSize: configuration.receiveBufferSize, sendBufferSize: configuration.sendBufferSize)
        do {
            socket = try GroupSocket(bindingTo: configuration.mediaAddress, backend: socketBackend, options: options, logger: logger)
        } catch .kernelModuleNotLoaded {
            throw .backendUnavailable(.sendgroup, GroupUnicastError.kernelModuleNotLoaded.description)
        } catch {
            throw .socket("media socket on \(configuration.mediaAddress)", error)
        }
        guard socket.backend == socketBackend else {
            throw .backendUnavailable(backend, "GroupSocket chose \(socket.backend) instead of \(socketBackend)")
        }
        if backend == .sendgroup && configuration.sendgroupMode == .groups {
            // Refuse at start, not per route later, when the module has no groups.
            do {
                try socket.makeGroup(backend: .sendgroup).close()
            } catch {
                try? socket.close()
                throw .backendUnavailable(.sendgroup, "--sendgroup-mode groups: \(error) (--sendgroup-mode oneshot needs no groups)")
            }
            routeGroups = RouteGroups(socket: socket, logger: logger)
        } else {
            routeGroups = nil
        }
        if let descriptor = try? socket.fileDescriptor.rawValue {
            SocketBufferGrant.log(
                SocketBufferGrant.read(
                    descriptor: descriptor, requestedReceive: configuration.receiveBufferSize, requestedSend: configuration.sendBufferSize),
                logger: logger)
        }
    }

    public var localAddress: SocketAddress {
        get throws(SFUError) {
            do { return try socket.localAddress } catch { throw .socket("getsockname(media)", error) }
        }
    }

    /// In groups mode the kernel groups are in step with `table` when this returns.
    public func install(_ table: RoutingTable) throws(SFUError) {
        if let routeGroups {
            routeGroups.install(table)
        } else {
            pendingTable.withLock { $0 = table }
        }
    }

    public func stop() { stopping.store(true, ordering: .releasing) }

    public func statistics() -> ForwarderStatistics { published.withLock { $0 } }

    /// Closes the kernel groups, then the media socket.
    public func close() {
        routeGroups?.close()
        try? socket.close()
    }

    /// The receive queue's fill, 0...1, from `SO_MEMINFO` (`rmem_alloc / rcvbuf`).
    func receiveQueueFill(_ descriptor: CInt) -> Double {
        // SO_MEMINFO (asm-generic/socket.h) returns SK_MEMINFO_VARS u32 counters
        // (linux/sock_diag.h): [0] rmem_alloc, [1] rcvbuf. Not exported by Glibc's module.
        let soMeminfo: CInt = 55
        var values = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        var length = socklen_t(MemoryLayout.size(ofValue: values))
        let result = getsockopt(descriptor, SOL_SOCKET, soMeminfo, &values, &length)
        guard result == 0, values.1 > 0 else { return 0 }
        return Double(values.0) / Double(values.1)
    }

    public func run() throws(SFUError) {
        var engine = ForwardingEngine(table: pendingTable.withLock { $0 ?? .empty }, backlogCapacity: configuration.backlogCapacity)
        let descriptor: CInt
        do { descriptor = try socket.fileDescriptor.rawValue } catch { throw .socket("media socket", error) }
        let batched = backend != .socket
        let batchSize = batched ? max(1, configuration.batchSize) : 1
        let send: ForwardingEngine.Send = { [socket] payload, recipients in
            do throws(GroupUnicastError) {
                return try socket.send(payload, to: recipients).errors
            } catch {
                // Only a closed socket or a refused call: every copy of this packet failed.
                return Array(repeating: error.errno ?? .badFileDescriptor, count: recipients.count)
            }
        }
        var lastPublish = monotonicNanoseconds()
        var lastPressureLog = 0
        defer { published.withLock { $0 = engine.snapshot() } }
        /// Runs `work` with the newest table installed in the engine and, in groups mode, with
        /// table changes held off and the route groups' send.
        func batch(_ work: (ForwardingEngine.RouteSend?) -> Void) {
            if let routeGroups {
                routeGroups.forward { table, routeSend in
                    if let table { engine.install(table) }
                    // `work` takes it as an optional, which Swift counts as escaping; it does not escape.
                    withoutActuallyEscaping(routeSend) { work($0) }
                }
            } else {
                if let table = pendingTable.withLock({ $0.take() }) { engine.install(table) }
                work(nil)
            }
        }

        while !stopping.load(ordering: .acquiring) {
            batch { _ in }
            var entry = pollfd(fd: descriptor, events: CShort(POLLIN) | (engine.hasBacklog ? CShort(POLLOUT) : 0), revents: 0)
            let ready = Glibc.poll(&entry, 1, 50)
            if ready < 0 {
                let error = Errno(rawValue: errno)
                if error == .interrupted { continue }
                throw .socket("poll(media)", .systemCall(call: "poll", errno: error))
            }
            if entry.revents & CShort(POLLNVAL) != 0 { throw .socket("poll(media)", .socketClosed) }
            // Busy time is added at every publication, so a forwarder that never waits shows it too.
            var busySince = monotonicNanoseconds()
            // A table installed while we slept applies to what woke us.
            batch { _ in
                if entry.revents & CShort(POLLOUT) != 0 { engine.flushBacklogs(send: send) }
            }
            if entry.revents & CShort(POLLIN) != 0 {
                var sinceCheck = 0
                drain: while true {
                    if sinceCheck == 0 {
                        let fill = receiveQueueFill(descriptor)
                        let level = fill > configuration.shedVSQAt ? 2 : fill > configuration.shedVHQAt ? 1 : 0
                        if level != engine.sheddingLevel {
                            if level > lastPressureLog || level == 0 {
                                logger.debug("receive queue \(Int(fill * 100))% full: shedding level \(level)")
                            }
                            lastPressureLog = level
                            engine.sheddingLevel = level
                        }
                    }
                    let datagrams: [ReceivedDatagram]
                    do {
                        datagrams = batched
                            ? try socket.receiveBatch(maxCount: batchSize, maxSize: configuration.maxDatagramSize)
                            : (try socket.receive(maxSize: configuration.maxDatagramSize)).map { [$0] } ?? []
                    } catch {
                        throw .socket(batched ? "recvmmsg(media)" : "recvmsg(media)", error)
                    }
                    if datagrams.isEmpty { break drain }
                    // Delay per packet: from the receive call's return, or within a batch from the
                    // moment the previous packet was done (waiting in the batch is not processing).
                    var pickup = monotonicNanoseconds()
                    batch { routeSend in
                        if let routeSend {
                            engine.processBatch(datagrams, pickup: pickup, send: send, routeSend: routeSend)
                        } else {
                            for datagram in datagrams { pickup = engine.process(datagram, pickup: pickup, send: send) }
                        }
                        if engine.hasBacklog { engine.flushBacklogs(send: send) }
                    }
                    sinceCheck = (sinceCheck + datagrams.count) >= 16 ? 0 : sinceCheck + datagrams.count
                    let now = monotonicNanoseconds()
                    if now &- lastPublish > 50_000_000 {
                        engine.statistics.busyNanoseconds &+= now &- busySince
                        busySince = now
                        published.withLock { $0 = engine.snapshot() }
                        lastPublish = now
                    }
                    if stopping.load(ordering: .relaxed) { break drain }
                }
            }
            lastPublish = monotonicNanoseconds()
            engine.statistics.busyNanoseconds &+= lastPublish &- busySince
            published.withLock { $0 = engine.snapshot() }
        }
    }
}
