#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastClient
import GroupcastLab
import GroupcastSFU
import GroupcastSocketBackend
import GroupcastBackends
import GroupUnicast
import Logging
import Testing

/// The backend every end-to-end test runs on: `GROUPCAST_SFU_BACKEND` (socket, sendmmsg,
/// sendgroup, xdp, ring), default sendmmsg. A requested backend that cannot run here makes the
/// tests fail (the SFU refuses to start), never skip.
enum TestBackend {
    static let selected: ForwarderBackend = {
        guard let name = ProcessInfo.processInfo.environment["GROUPCAST_SFU_BACKEND"] else { return .sendmmsg }
        guard let backend = ForwarderBackend(rawValue: name) else {
            fatalError("GROUPCAST_SFU_BACKEND=\(name): not one of \(ForwarderBackend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return backend
    }()

    /// How a sendgroup SFU sends: `GROUPCAST_SENDGROUP_MODE` (groups, oneshot), default groups.
    static let sendgroupMode: SendgroupMode = {
        guard let name = ProcessInfo.processInfo.environment["GROUPCAST_SENDGROUP_MODE"] else { return .groups }
        guard let mode = SendgroupMode(rawValue: name) else {
            fatalError("GROUPCAST_SENDGROUP_MODE=\(name): not one of \(SendgroupMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return mode
    }()

    /// The xdp backend's fast-path ingress: `GROUPCAST_XDP_INGRESS` (xdp, tc), default xdp.
    static let xdpIngress: FastPathIngress = {
        guard let name = ProcessInfo.processInfo.environment["GROUPCAST_XDP_INGRESS"] else { return .xdp }
        guard let ingress = FastPathIngress(rawValue: name) else {
            fatalError("GROUPCAST_XDP_INGRESS=\(name): not one of \(FastPathIngress.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return ingress
    }()

    /// The backend's name in reports: `xdp-tc` for the xdp backend with the TC ingress.
    static func label(_ backend: ForwarderBackend) -> String {
        backend == .xdp && xdpIngress == .tc ? "xdp-tc" : backend.rawValue
    }

    /// The forwarder configuration of `backend` on `mediaAddress`, in the selected sendgroup mode
    /// and xdp ingress.
    static func configuration(_ backend: ForwarderBackend = selected, mediaAddress: SocketAddress) -> ForwarderConfiguration {
        var configuration = ForwarderConfiguration(backend: backend, mediaAddress: mediaAddress)
        configuration.sendgroupMode = sendgroupMode
        configuration.xdpIngress = xdpIngress
        return configuration
    }
}

/// Where the test SFU and its participants live.
///
/// - `loopback`: everything on `lo` of the test's network namespace (127.0.0.N, ::1).
/// - `veth`: what an interface backend (``ForwarderBackend/needsInterface``) needs, a real device
///   path: the SFU's addresses are on `gcsfu0` (10.203.0.1, fd20:3::1) in the test's namespace;
///   the participants' sockets live in a peer namespace behind the veth (10.203.0.N,
///   fd20:3::N on `gcpeer0`). No default route on either side. Created once per test process
///   (scripts/test/sfu runs each backend's tests in a fresh namespace) and removed with it: the
///   peer namespace has no name, only this process's file descriptor keeps it alive.
///   `GROUPCAST_SFU_TOPOLOGY=veth` selects it for the socket backends too.
enum TestNetwork {
    case loopback, veth

    static let selected: TestNetwork =
        TestBackend.selected.needsInterface || ProcessInfo.processInfo.environment["GROUPCAST_SFU_TOPOLOGY"] == "veth"
        ? .veth : .loopback

    /// The SFU's address (port 0: ephemeral) of `family`.
    func sfuHost(_ family: AddressFamily = .ipv4, port: UInt16 = 0) -> SocketAddress {
        if self == .veth { _ = VethTopology.shared }  // the address exists once the veth does
        switch (self, family) {
        case (.loopback, .ipv4): return .ipv4(.loopback, port: port)
        case (.loopback, .ipv6): return .ipv6(.loopback, port: port)
        case (.veth, .ipv4): return .ipv4(IPv4Address(10, 203, 0, 1), port: port)
        case (.veth, .ipv6): return .ipv6(VethTopology.ipv6(1), port: port)
        }
    }

    /// Participant number `host` (2...99; 0 means 2): 127.0.0.N or ::1 on loopback.
    func participantAddress(host: UInt8, family: AddressFamily, port: UInt16 = 0) -> SocketAddress {
        let host = host == 0 ? 2 : host
        switch (self, family) {
        case (.loopback, .ipv4): return .ipv4(IPv4Address(127, 0, 0, host), port: port)
        case (.loopback, .ipv6): return .ipv6(.loopback, port: port)
        case (.veth, .ipv4): return .ipv4(IPv4Address(10, 203, 0, host), port: port)
        case (.veth, .ipv6): return .ipv6(VethTopology.ipv6(host), port: port)
        }
    }

    /// A participant's socket bound to `address`, created in the participants' namespace (a socket
    /// stays in the namespace it was created in, whichever thread uses it later).
    func participantSocket(
        bindingTo address: SocketAddress, options: GroupSocket.Options = .init(nonBlocking: true)
    ) throws -> GroupSocket {
        switch self {
        case .loopback:
            return try GroupSocket(bindingTo: address, backend: .socket, options: options)
        case .veth:
            return try VethTopology.shared.inPeer { try GroupSocket(bindingTo: address, backend: .socket, options: options) }
        }
    }

    /// argv that runs `arguments` where the participants live (`nsenter` into the peer namespace).
    func participantCommand(_ arguments: [String]) -> (executable: URL, arguments: [String]) {
        switch self {
        case .loopback:
            return (URL(fileURLWithPath: arguments[0]), Array(arguments.dropFirst()))
        case .veth:
            return (URL(fileURLWithPath: "/usr/bin/nsenter"), ["--net=\(VethTopology.shared.peerPath)"] + arguments)
        }
    }
}

/// The veth topology of ``TestNetwork/veth``: GroupcastLab's ``Topology`` with this process's
/// namespace as the hub (`gcsfu0`) and one anonymous peer namespace (`gcpeer0`, 98 addresses of
/// each family), which lives as long as this process.
final class VethTopology: @unchecked Sendable {
    static let shared: VethTopology = {
        do { return try VethTopology() } catch { fatalError("test topology: \(error)") }
    }()

    static func ipv6(_ host: UInt8) -> IPv6Address { IPv6Address(high: 0xfd20_0003_0000_0000, low: UInt64(host)) }

    /// A test-setup failure (a socket the topology's users could not make).
    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    let topology: Topology
    /// `/proc/PID/fd/N` of the peer namespace, for `nsenter --net=`.
    let peerPath: String

    private init() throws {
        topology = Topology(hub: .caller, spokes: [
            Topology.Spoke(
                placement: .anonymous, hubInterface: "gcsfu0", interface: "gcpeer0",
                hubAddresses: ["10.203.0.1/24", "fd20:3::1/64"],
                addresses: (2...99).flatMap { host in ["10.203.0.\(host)/24", "fd20:3::\(String(host, radix: 16))/64"] })
        ])
        try topology.create()
        peerPath = topology.spokePath(0)!
    }

    /// Runs `body` on this thread inside the peer namespace, then switches back.
    func inPeer<T>(_ body: () throws -> T) throws -> T {
        try topology.inSpoke(0, body)
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "groupcast.test")
    logger.logLevel = .warning
    return logger
}()

/// An interface backend attaches to `gcsfu0`, and one interface takes one attachment: the suites
/// (which swift-testing runs in parallel) take turns. Held by a ``TestSFU`` for its lifetime, by
/// tests that start `groupcast sfu` for theirs; a no-op for the socket backends.
final class InterfaceTurn: @unchecked Sendable {
    private static let semaphore = DispatchSemaphore(value: 1)
    private let held: Bool

    init(backend: ForwarderBackend = TestBackend.selected) {
        held = backend.needsInterface
        if held { Self.semaphore.wait() }
    }

    deinit { if held { Self.semaphore.signal() } }
}

/// A running SFU on the test network (``TestNetwork``) with ephemeral ports; stopped on deinit.
final class TestSFU {
    let turn: InterfaceTurn
    let server: SFUServer
    let control: SocketAddress
    let media: SocketAddress

    init(
        capacity: Int = 16, keepalive: Duration = .seconds(10), echo: Bool = true, room: RoomFile? = nil,
        backend: ForwarderBackend = TestBackend.selected, host: SocketAddress = TestNetwork.selected.sfuHost(),
        configure: (inout SFUServer.Configuration) -> Void = { _ in },
        forwarder: (inout ForwarderConfiguration) -> Void = { _ in }
    ) throws {
        turn = InterfaceTurn(backend: backend)
        var configuration = SFUServer.Configuration(controlAddress: host)
        configuration.capacity = capacity
        configuration.keepaliveTimeout = keepalive
        configuration.echo = echo
        configuration.room = room
        configure(&configuration)
        var forwarderConfiguration = TestBackend.configuration(backend, mediaAddress: host)
        forwarder(&forwarderConfiguration)
        server = try Backends.makeServer(configuration, forwarder: forwarderConfiguration, logger: testLogger)
        control = try server.controlAddress
        media = try server.mediaAddress
        server.start()
    }

    deinit { server.stop() }

    var stats: ForwarderStatistics { server.statistics().forwarder }

    /// Waits until the forwarder has published `received` datagrams (it publishes after each drain).
    func waitForReceived(_ count: UInt64, timeout: Duration = .seconds(3)) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if stats.received >= count { return true }
            usleep(2_000)
        }
        return false
    }
}

/// A participant speaking the control protocol from its own address (127.0.0.N, or 10.203.0.N in
/// the peer namespace of the veth topology).
final class TestParticipant {
    let socket: GroupSocket
    let channel: ControlChannel
    let sfu: TestSFU
    var membership: Membership?
    var id: UInt32 { membership?.id ?? 0 }
    var ssrcs: StreamSSRCs { membership?.ssrcs ?? .none }
    var session: UInt64 { membership?.session ?? 0 }
    var sequence: UInt16 = 0
    private var nextRequest: UInt32 = 1

    init(_ sfu: TestSFU, host: UInt8, port: UInt16 = 0) throws {
        self.sfu = sfu
        let local = TestNetwork.selected.participantAddress(host: host, family: sfu.control.family, port: port)
        socket = try TestNetwork.selected.participantSocket(bindingTo: local, options: .init(nonBlocking: true, receiveBufferSize: 1 << 20))
        channel = ControlChannel(socket: socket, sfu: sfu.control)
    }

    var address: SocketAddress { get throws { try socket.localAddress } }

    func requestID() -> UInt32 {
        defer { nextRequest += 1 }
        return nextRequest
    }

    @discardableResult
    func register(receive: StreamSet = .all, room: String = "", token: String = "") throws -> TestParticipant {
        membership = try channel.register(JoinParameters(room: room, token: Array(token.utf8), receive: receive), requestID: requestID())
        return self
    }

    func subscribe(to source: UInt32, _ streams: StreamSet) throws {
        try channel.expect(.subscribe(requestID: requestID(), participant: id, session: session, source: source, streams: streams), .subscribed)
    }

    /// Every member of this participant's room (ROSTER, page by page).
    func roster() throws -> [RosterEntry] {
        try channel.roster(participant: try #require(membership), requestID: requestID() << 16)
    }

    /// Sends raw control bytes and returns the one reply's bytes, or nil when none came in `wait`.
    func rawControlBytes(_ bytes: [UInt8], wait: Duration = .seconds(2)) throws -> [UInt8]? {
        try socket.send(bytes, to: sfu.control)
        let deadline = ContinuousClock.now.advanced(by: wait)
        while ContinuousClock.now < deadline {
            guard try socket.waitForReadable(timeout: .milliseconds(50)) else { continue }
            for datagram in try socket.receiveBatch() where datagram.source == sfu.control { return datagram.bytes }
        }
        return nil
    }

    /// Sends raw control bytes and returns the one reply.
    func rawControl(_ bytes: [UInt8]) throws -> ControlMessage? {
        try socket.send(bytes, to: sfu.control)
        let deadline = ContinuousClock.now.advanced(by: .seconds(2))
        while ContinuousClock.now < deadline {
            guard try socket.waitForReadable(timeout: .milliseconds(100)) else { continue }
            for datagram in try socket.receiveBatch() where datagram.source == sfu.control {
                return try ControlMessage.parse(datagram.bytes, expecting: .reply)
            }
        }
        return nil
    }

    /// Sends one RTP packet of `type` (SSRC from the registration unless given).
    func sendMedia(_ type: StreamType, ssrc: UInt32? = nil, payload: [UInt8]? = nil) throws {
        let packet = RTPHeader.packet(
            payloadType: type.rtpPayloadType, sequenceNumber: sequence, timestamp: 0, ssrc: ssrc ?? ssrcs[type],
            payload: payload ?? [UInt8](repeating: type.rawValue, count: 16))
        sequence &+= 1
        try socket.send(packet, to: sfu.media)
    }

    /// Every RTP packet that arrives within `window`, as (ssrc, bytes).
    func collectMedia(for window: Duration = .milliseconds(300)) throws -> [(ssrc: UInt32, bytes: [UInt8])] {
        var packets: [(UInt32, [UInt8])] = []
        let deadline = ContinuousClock.now.advanced(by: window)
        while case let left = ContinuousClock.now.duration(to: deadline), left > .zero {
            guard try socket.waitForReadable(timeout: left) else { break }
            for datagram in try socket.receiveBatch(maxCount: 256) where datagram.source == sfu.media {
                if let header = try? RTPHeader.parse(datagram.bytes) { packets.append((header.ssrc, datagram.bytes)) }
            }
        }
        return packets
    }
}

extension Array where Element == (ssrc: UInt32, bytes: [UInt8]) {
    func count(of ssrc: UInt32) -> Int { filter { $0.ssrc == ssrc }.count }
}

/// The `groupcast` and `groupcast-lab` executables, built next to this test binary.
enum GroupcastBinary {
    static var url: URL { beside("groupcast") }
    static var lab: URL { beside("groupcast-lab") }

    private static func beside(_ name: String) -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
    }
}

/// Sends UDP datagrams with a forged IPv4 source address and port (a raw socket with
/// `IPPROTO_RAW`, so the test writes the IP header): the off-path attacker, who can send as any
/// address but receives nothing sent there. Created where the participants live.
final class SpoofingSender {
    let descriptor: CInt

    init() throws {
        let create = { socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_RAW)) }
        descriptor = try TestNetwork.selected == .veth ? VethTopology.shared.inPeer(create) : create()
        guard descriptor >= 0 else { throw VethTopology.SetupError(description: "socket(SOCK_RAW): errno \(errno) (needs CAP_NET_RAW)") }
    }

    deinit { close(descriptor) }

    /// One UDP datagram from `source` to `destination` (both IPv4).
    func send(_ payload: [UInt8], from source: SocketAddress, to destination: SocketAddress) throws {
        guard case .ipv4(let from, let sourcePort) = source, case .ipv4(let to, let destinationPort) = destination else {
            throw VethTopology.SetupError(description: "SpoofingSender: IPv4 only")
        }
        let total = 20 + 8 + payload.count
        var packet: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 17, 0, 0]
        packet += from.bytes + to.bytes
        packet += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
        packet += [UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xFF), 0, 0]  // UDP checksum 0: none (IPv4)
        packet += payload
        // A raw socket takes the destination from the header; the address says where to route it.
        let sent = packet.withUnsafeBytes { bytes in
            SocketAddress.ipv4(to, port: 0).withSockAddr { sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, $1) }
        }
        guard sent == packet.count else { throw VethTopology.SetupError(description: "sendto(raw): errno \(errno)") }
    }
}

/// The operator's key and tokens for tests.
enum TestAuth {
    static let key = try! TokenKey(text: "test-operator-key-0123456789abcdef-0123456789")
    static let otherKey = try! TokenKey(text: "another-operator-key-0123456789abcdef-01234567")

    static func token(
        room: String, identity: String, rights: JoinRights = .all, streams: StreamSet = .all, expiresIn: Int64 = 3600,
        key: TokenKey = TestAuth.key
    ) -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return JoinToken.mint(JoinClaims(room: room, identity: identity, expires: now + expiresIn, issuedAt: now, rights: rights, streams: streams), key: key)
    }
}
