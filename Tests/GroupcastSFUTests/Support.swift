#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastSFU
import GroupUnicast
import Logging
import Testing

/// The backend every end-to-end test runs on: `GROUPCAST_SFU_BACKEND` (socket, sendmmsg,
/// sendgroup), default sendmmsg. A requested backend that cannot run here makes the tests fail
/// (the SFU refuses to start), never skip.
enum TestBackend {
    static let selected: ForwarderBackend = {
        guard let name = ProcessInfo.processInfo.environment["GROUPCAST_SFU_BACKEND"] else { return .sendmmsg }
        guard let backend = ForwarderBackend(rawValue: name) else {
            fatalError("GROUPCAST_SFU_BACKEND=\(name): not one of socket, sendmmsg, sendgroup")
        }
        return backend
    }()
}

let testLogger: Logger = {
    var logger = Logger(label: "groupcast.test")
    logger.logLevel = .warning
    return logger
}()

/// A running SFU on loopback with ephemeral ports; stopped on deinit.
final class TestSFU {
    let server: SFUServer
    let control: SocketAddress
    let media: SocketAddress

    init(
        capacity: Int = 16, keepalive: Duration = .seconds(10), echo: Bool = true, room: RoomFile? = nil,
        backend: ForwarderBackend = TestBackend.selected, host: SocketAddress = .ipv4(.loopback, port: 0)
    ) throws {
        var configuration = SFUServer.Configuration(controlAddress: host, mediaAddress: host, backend: backend)
        configuration.capacity = capacity
        configuration.keepaliveTimeout = keepalive
        configuration.echo = echo
        configuration.room = room
        server = try SFUServer(configuration: configuration, logger: testLogger)
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

/// A participant speaking the control protocol from its own loopback address (127.0.0.N).
final class TestParticipant {
    let socket: GroupSocket
    let channel: ControlChannel
    let sfu: TestSFU
    var id: UInt32 = 0
    var ssrcs = StreamSSRCs.none
    var sequence: UInt16 = 0
    private var nextRequest: UInt32 = 1

    init(_ sfu: TestSFU, host: UInt8, port: UInt16 = 0) throws {
        self.sfu = sfu
        let local: SocketAddress = sfu.control.family == .ipv4 ? .ipv4(IPv4Address(127, 0, 0, host), port: port) : .ipv6(.loopback, port: port)
        socket = try GroupSocket(
            bindingTo: local, backend: .sendmsgLoop, options: .init(nonBlocking: true, receiveBufferSize: 1 << 20))
        channel = ControlChannel(socket: socket, sfu: sfu.control)
    }

    var address: SocketAddress { get throws { try socket.localAddress } }

    func requestID() -> UInt32 {
        defer { nextRequest += 1 }
        return nextRequest
    }

    @discardableResult
    func register(receive: StreamSet = .all) throws -> TestParticipant {
        (id, ssrcs, _) = try channel.register(receive: receive, requestID: requestID())
        return self
    }

    func subscribe(to source: UInt32, _ streams: StreamSet) throws {
        try channel.expect(.subscribe(requestID: requestID(), participant: id, source: source, streams: streams), .subscribed)
    }

    /// Sends raw control bytes and returns the one reply.
    func rawControl(_ bytes: [UInt8]) throws -> ControlMessage? {
        try socket.send(bytes, to: sfu.control)
        let deadline = ContinuousClock.now.advanced(by: .seconds(2))
        while ContinuousClock.now < deadline {
            guard try socket.waitForReadable(timeout: .milliseconds(100)) else { continue }
            for datagram in try socket.receiveBatch() where datagram.source == sfu.control {
                return try ControlMessage.parse(datagram.bytes)
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

/// The `groupcast` executable, built next to this test binary.
enum GroupcastBinary {
    static var url: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("groupcast")
    }
}
