#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastCommandLine
import GroupcastMetrics
import GroupcastProtocol
import GroupcastSFU
import GroupcastSocketBackend
import GroupUnicast
import Logging
import Synchronization
import Testing

/// Logs, metrics and health as an operator reads them (Docs/operations.md), in process: the log
/// formats, the socket-buffer report, the Prometheus registry, the HTTP endpoint.
@Suite struct OperationsTests {
    // MARK: Logs

    // MARK: Shutdown

    /// stop() closes the sockets only after the threads using them returned, however long the
    /// forwarder takes (here 2.5 s past stop(), longer than the old fixed 2 s wait).
    @Test func stopClosesTheForwarderOnlyAfterItsThreadReturned() throws {
        let forwarder = try LingeringForwarder(lingering: 2_500_000)
        let server = try SFUServer(
            configuration: .init(controlAddress: .ipv4(.loopback, port: 0)), forwarder: forwarder, logger: testLogger)
        server.start()
        while !forwarder.running.load(ordering: .acquiring) { usleep(1_000) }
        server.stop()
        let closed = forwarder.closed.load(ordering: .acquiring)
        let closedWhileRunning = forwarder.closedWhileRunning.load(ordering: .acquiring)
        #expect(closed)
        #expect(!closedWhileRunning, "close() called while run() still ran")
    }

    @Test func jsonLinesParseAndCarryTimestampLevelAndMetadata() throws {
        let line = LineLogHandler.format(
            .json, timestamp: "2026-11-29T04:30:00.123456Z", level: .warning, label: "groupcast.sfu",
            message: "say \"hi\"\nthen\tleave \u{1}", metadata: ["room": "a b", "msg": "clash"])
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["ts"] == "2026-11-29T04:30:00.123456Z")
        #expect(object["level"] == "warning" && object["logger"] == "groupcast.sfu")
        #expect(object["msg"] == "say \"hi\"\nthen\tleave \u{1}")
        #expect(object["room"] == "a b" && object["_msg"] == "clash")
    }

    @Test func logfmtQuotesWhatWouldBreakAPair() {
        let line = LineLogHandler.format(
            .logfmt, timestamp: "T", level: .info, label: "l", message: "two words",
            metadata: ["plain": "v", "spaced": "a b", "eq": "k=v", "empty": "", "bad key": "x"])
        #expect(line == "ts=T level=info logger=l msg=\"two words\" bad_key=x empty=\"\" eq=\"k=v\" plain=v spaced=\"a b\"\n")
    }

    @Test func textLinesStartWithAnRFC3339Timestamp() throws {
        let stamp = LineLogHandler.timestamp()
        let pattern = try Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"#)
        #expect(stamp.wholeMatch(of: pattern) != nil, "\(stamp)")
        let line = LineLogHandler.format(.text, timestamp: stamp, level: .notice, label: "groupcast.sfu", message: "up", metadata: ["k": "v w"])
        #expect(line == "\(stamp) notice groupcast.sfu: up k=\"v w\"\n")
    }

    // MARK: Socket buffers

    @Test func aCappedBufferNamesTheSysctlThatLiftsIt() {
        // Stock Debian: rmem_max 212992, a 4 MiB request gets 2 x 212992.
        let capped = SocketBufferGrant(option: "SO_RCVBUF", requested: 4 << 20, granted: 425_984, sysctl: "net.core.rmem_max", sysctlValue: 212_992)
        #expect(capped.isCapped)
        #expect(capped.message.contains("425984 bytes granted for 4194304 requested: capped by net.core.rmem_max = 212992"))
        #expect(capped.message.contains("sysctl -w net.core.rmem_max=4194304"))
        let granted = SocketBufferGrant(option: "SO_RCVBUF", requested: 65536, granted: 131_072, sysctl: "net.core.rmem_max", sysctlValue: 212_992)
        #expect(!granted.isCapped && !granted.message.contains("sysctl -w"))
        let byDefault = SocketBufferGrant(option: "SO_SNDBUF", requested: nil, granted: 212_992, sysctl: "net.core.wmem_max", sysctlValue: 212_992)
        #expect(!byDefault.isCapped && byDefault.message.contains("system default, net.core.wmem_default"))
    }

    @Test func theKernelsGrantIsReadBack() throws {
        let socket = try GroupSocket(bindingTo: .ipv4(.loopback, port: 0), backend: .socket, options: .init(receiveBufferSize: 1 << 30))
        defer { try? socket.close() }
        let grants = SocketBufferGrant.read(descriptor: try socket.fileDescriptor.rawValue, requestedReceive: 1 << 30, requestedSend: nil)
        let receive = try #require(grants.first { $0.option == "SO_RCVBUF" })
        let limit = try #require(receive.sysctlValue)
        // 1 GiB is above any stock rmem_max: the kernel granted twice the cap (root: SO_RCVBUF still caps).
        #expect(receive.granted == 2 * limit || limit >= 1 << 30, "\(receive)")
        #expect(receive.isCapped == (limit < 1 << 30))
    }

    // MARK: Metrics

    static func statistics(received: UInt64, delays: [UInt64], room: Int) -> SFUStatistics {
        var forwarder = ForwarderStatistics()
        forwarder.received = received
        forwarder.forwarded = received * 2
        forwarder[.spoofed] = received / 2
        forwarder.rooms["standup"] = MediaCounters(received: received, receivedBytes: received * 28)
        for delay in delays { forwarder.delay.record(delay) }
        var control = ControlStatistics()
        control.participants = room
        var stats = RoomStatistics()
        stats.participants = room
        stats.registered = UInt64(room)
        control.rooms["standup"] = stats
        return SFUStatistics(backend: .sendmmsg, forwarder: forwarder, control: control, cpu: CPUTime(user: 1_500_000, system: 0), uptime: 2_000_000_000)
    }

    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func countersFollowTheStatisticsAndDelaysAreAHistogram() throws {
        let source = Mutex(Self.statistics(received: 10, delays: [800, 3_000, 3_000], room: 2))
        let metrics = SFUMetrics { source.withLock { $0 } }
        var text = metrics.render()
        #expect(text.contains("# TYPE groupcast_sfu_processing_delay_seconds histogram"))
        #expect(!text.contains("summary"))
        #expect(Self.sample(text, #"groupcast_sfu_packets_received_total{backend="sendmmsg"}"#) == 10)
        #expect(Self.sample(text, #"groupcast_sfu_packets_dropped_total{backend="sendmmsg",reason="spoofed"}"#) == 5)
        #expect(Self.sample(text, #"groupcast_sfu_packets_dropped_total{backend="sendmmsg",reason="head_drop"}"#) == 0)
        #expect(Self.sample(text, #"groupcast_sfu_room_participants{room="standup"}"#) == 2)
        #expect(Self.sample(text, #"groupcast_sfu_room_joins_total{room="standup"}"#) == 2)
        #expect(Self.sample(text, #"groupcast_sfu_cpu_seconds_total{mode="user"}"#) == 1.5)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_bucket{backend="sendmmsg",le="0.000001"}"#) == 1)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_bucket{backend="sendmmsg",le="0.000005"}"#) == 3)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_count{backend="sendmmsg"}"#) == 3)

        // A second scrape adds only what was gained since the first.
        source.withLock { $0 = Self.statistics(received: 25, delays: [800, 3_000, 3_000, 40_000], room: 1) }
        text = metrics.render()
        #expect(Self.sample(text, #"groupcast_sfu_packets_received_total{backend="sendmmsg"}"#) == 25)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_count{backend="sendmmsg"}"#) == 4)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_bucket{backend="sendmmsg",le="0.00005"}"#) == 4)
        #expect(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_bucket{backend="sendmmsg",le="0.00002"}"#) == 3)
        #expect(Self.sample(text, #"groupcast_sfu_room_participants{room="standup"}"#) == 1)
        let sum = try #require(Self.sample(text, #"groupcast_sfu_processing_delay_seconds_sum{backend="sendmmsg"}"#))
        #expect(abs(sum - 46_800e-9) < 46_800e-9 * 0.03, "\(sum)")
        #expect(Self.sample(text, #"groupcast_sfu_room_packets_received_total{backend="sendmmsg",room="standup"}"#) == 25)

        // The room goes (its last participant left, the routing table no longer has it): its
        // series leave the registry, the others stay.
        source.withLock {
            $0.control.rooms = [:]
            $0.forwarder.rooms = [:]
        }
        text = metrics.render()
        #expect(!text.contains(#"room="standup""#), "\(text)")
        #expect(Self.sample(text, #"groupcast_sfu_packets_received_total{backend="sendmmsg"}"#) == 25)

        // It comes back: fresh series, from the new room's counts.
        source.withLock {
            $0.forwarder.rooms["standup"] = MediaCounters(received: 3, receivedBytes: 3 * 28)
            var room = RoomStatistics()
            room.participants = 1
            room.registered = 1
            $0.control.rooms["standup"] = room
        }
        text = metrics.render()
        #expect(Self.sample(text, #"groupcast_sfu_room_packets_received_total{backend="sendmmsg",room="standup"}"#) == 3)
        #expect(Self.sample(text, #"groupcast_sfu_room_joins_total{room="standup"}"#) == 1)
        #expect(Self.sample(text, #"groupcast_sfu_room_participants{room="standup"}"#) == 1)

        // It goes and comes back between two scrapes (another incarnation), with more than the old
        // room had: the series grow by all of the new room's counts, not by the difference.
        source.withLock {
            $0.forwarder.rooms["standup"] = MediaCounters(received: 5, receivedBytes: 5 * 28)
            $0.control.rooms["standup"]?.registered = 2
            $0.control.rooms["standup"]?.incarnation += 1
        }
        text = metrics.render()
        #expect(Self.sample(text, #"groupcast_sfu_room_packets_received_total{backend="sendmmsg",room="standup"}"#) == 8)  // 3 + 5
        #expect(Self.sample(text, #"groupcast_sfu_room_joins_total{room="standup"}"#) == 3)  // 1 + 2
    }

    /// A room created again gets another incarnation; a room that stays keeps its own.
    @Test func aRoomCreatedAgainIsAnotherIncarnation() throws {
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(1))
        let address = SocketAddress.ipv4(IPv4Address(10, 0, 0, 9), port: 1000)
        let first = try registry.register(JoinRequest(source: address, room: "pop-up", receive: .all), now: 0)
        let incarnation = try #require(registry.rooms["pop-up"]?.statistics.incarnation)
        _ = try registry.register(JoinRequest(source: address, room: "pop-up", receive: .all), now: 1)  // a refresh
        #expect(registry.rooms["pop-up"]?.statistics.incarnation == incarnation)
        try registry.leave(first.id, session: first.session, from: address)
        #expect(registry.rooms["pop-up"] == nil)
        _ = try registry.register(JoinRequest(source: address, room: "pop-up", receive: .all), now: 2)
        let again = try #require(registry.rooms["pop-up"]?.statistics.incarnation)
        #expect(again != incarnation)
    }

    @Test func samplesSinceCountOnlyTheNewOnes() {
        var earlier = LatencyHistogram()
        earlier.record(100)
        var later = earlier
        later.record(100)
        later.record(5_000)
        let gained = later.samples(since: earlier)
        #expect(gained.map(\.count).reduce(0, +) == 2)
        #expect(gained.allSatisfy { $0.lowest <= $0.highest })
        #expect(gained.contains { $0.lowest <= 5_000 && 5_000 <= $0.highest && $0.count == 1 })
    }

    // MARK: The endpoint

    @Test func healthIs503UntilReadyAndConnectionsAreServedSideBySide() throws {
        let ready = Mutex(false)
        let server = try MetricsHTTPServer(
            listeningOn: .ipv4(.loopback, port: 0), logger: Logger(label: "test"), metrics: { "m 1\n" },
            health: { ready.withLock { $0 } ? .ready : .notReady("starting") })
        defer { server.stop() }
        let port = UInt16(server.localPort)
        #expect(try #require(httpGet(port: port, path: "/healthz")).hasPrefix("HTTP/1.0 503"))
        ready.withLock { $0 = true }

        // A client that connects and sends half a request holds up no one else.
        let idle = try #require(connectLoopback(port: port))
        defer { close(idle) }
        _ = "GET /metrics HTTP/1.1\r\nHost: x\r\n".withCString { send(idle, $0, strlen($0), 0) }
        let started = monotonicNanoseconds()
        let health = try #require(httpGet(port: port, path: "/healthz"))
        #expect(health.hasPrefix("HTTP/1.0 200") && health.hasSuffix("ok\n"), "\(health)")
        #expect(try #require(httpGet(port: port, path: "/metrics")).hasSuffix("\r\n\r\nm 1\n"))
        #expect(monotonicNanoseconds() - started < 5_000_000_000)
        // The half-sent request completes afterwards, on its keep-alive connection, twice.
        _ = "\r\n".withCString { send(idle, $0, strlen($0), 0) }
        let first = receive(idle, until: "m 1\n")
        #expect(first.hasPrefix("HTTP/1.1 200") && first.contains("version=0.0.4") && first.contains("keep-alive"), "\(first)")
        _ = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(idle, $0, strlen($0), 0) }
        #expect(receive(idle, until: "ok\n").hasPrefix("HTTP/1.1 200"))

        #expect(try #require(httpGet(port: port, path: "/other")).hasPrefix("HTTP/1.0 404"))
    }

    func connectLoopback(port: UInt16) -> CInt? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return descriptor
    }

    func receive(_ descriptor: CInt, until suffix: String) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.hasSuffix(suffix) {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return text
    }
}

/// A forwarder whose run() returns `lingering` microseconds after stop() (a batch still draining).
private final class LingeringForwarder: Forwarder {
    let backend = ForwarderBackend.socket
    let lingering: UInt32
    let running = Atomic(false)
    let stopped = Atomic(false)
    let closed = Atomic(false)
    let closedWhileRunning = Atomic(false)
    private let socket: GroupSocket

    init(lingering: UInt32) throws {
        self.lingering = lingering
        socket = try GroupSocket(bindingTo: .ipv4(.loopback, port: 0), backend: .socket, options: .init(nonBlocking: true))
    }

    var localAddress: SocketAddress {
        get throws(SFUError) {
            do { return try socket.localAddress } catch { throw .socket("getsockname", error) }
        }
    }

    func install(_ table: RoutingTable) throws(SFUError) {}

    func run() throws(SFUError) {
        running.store(true, ordering: .releasing)
        while !stopped.load(ordering: .acquiring) { usleep(1_000) }
        usleep(lingering)
        running.store(false, ordering: .releasing)
    }

    func stop() { stopped.store(true, ordering: .releasing) }

    func statistics() -> ForwarderStatistics { ForwarderStatistics() }

    func close() {
        if running.load(ordering: .acquiring) { closedWhileRunning.store(true, ordering: .releasing) }
        closed.store(true, ordering: .releasing)
        try? socket.close()
    }
}
