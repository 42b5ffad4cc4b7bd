import GroupcastFastPath
import GroupcastRingBackend
import GroupcastSFU
import GroupcastSocketBackend
import GroupcastXDPBackend
import GroupUnicast
import Logging

/// What a forwarder is configured with, whichever backend it is: one value for `groupcast sfu`,
/// the tests and the benchmarks; ``Backends/makeForwarder(_:echo:logger:)`` hands each backend
/// the fields it uses. Fields a backend does not use are ignored by it.
public struct ForwarderConfiguration: Sendable {
    /// Which data plane forwards.
    public var backend: ForwarderBackend
    /// The media address (UDP): the socket of a user-space backend, the port the xdp programs
    /// and the ring match.
    public var mediaAddress: SocketAddress
    /// Datagrams per `recvmmsg` (sendmmsg, sendgroup), RX descriptors per batch (ring).
    public var batchSize = 64
    /// Receive-queue fill (0...1) above which VHQ is shed: the media socket's queue, the ring's
    /// RX ring. VSQ is shed above ``shedVSQAt``, ASQ never.
    public var shedVHQAt = 0.5
    public var shedVSQAt = 0.75

    // MARK: Sockets (socket, sendmmsg, sendgroup, and the xdp backend's slow path)

    /// `SO_RCVBUF` of the media socket; `nil`: the system default.
    public var receiveBufferSize: Int? = 4 << 20
    /// `SO_SNDBUF` of the media socket; `nil`: the system default.
    public var sendBufferSize: Int?
    /// Copies queued per slow receiver before its oldest are dropped.
    public var backlogCapacity = 64

    // MARK: Interfaces (xdp, ring)

    /// Interfaces to attach to; empty: those carrying ``mediaAddress`` (for a wildcard address,
    /// every interface that is up with an address, loopback excluded).
    public var interfaces: [String] = []
    /// How the XDP programs attach (xdp).
    public var xdpMode: XDPMode = .automatic
    /// Capacity of each route map; 0: `GC_DEFAULT_MAX_ROUTES` (xdp).
    public var xdpMaxRoutes: UInt32 = 0
    /// The receive queue bound on each interface (ring).
    public var ringQueue: UInt32 = 0
    /// How the AF_XDP sockets bind (ring).
    public var ringBindMode: RingBindMode = .automatic
    /// Entries of each RX, TX, fill and completion ring, a power of two (ring).
    public var ringSize: UInt32 = 4096
    /// UMEM frames per interface; 0: 2 x ``ringSize`` + 2 x ``batchSize`` (ring).
    public var ringFrameCount: UInt32 = 0
    /// UMEM frame size, 2048 or 4096 (ring).
    public var ringFrameSize: UInt32 = 2048

    public init(backend: ForwarderBackend, mediaAddress: SocketAddress) {
        self.backend = backend
        self.mediaAddress = mediaAddress
    }

    /// The socket backends' view (also the xdp backend's slow path).
    var socket: UserspaceForwarder.Configuration {
        var socket = UserspaceForwarder.Configuration(bindAddress: mediaAddress)
        socket.batchSize = batchSize
        socket.receiveBufferSize = receiveBufferSize
        socket.sendBufferSize = sendBufferSize
        socket.shedVHQAt = shedVHQAt
        socket.shedVSQAt = shedVSQAt
        socket.backlogCapacity = backlogCapacity
        return socket
    }

    func xdp(echo: Bool) -> XDPForwarder.Configuration {
        var xdp = XDPForwarder.Configuration(slowPath: socket)
        xdp.interfaces = interfaces
        xdp.mode = xdpMode
        xdp.maxRoutes = xdpMaxRoutes
        xdp.echo = echo
        return xdp
    }

    var ring: RingForwarder.Configuration {
        var ring = RingForwarder.Configuration(bindAddress: mediaAddress)
        ring.interfaces = interfaces
        ring.queue = ringQueue
        ring.bindMode = ringBindMode
        ring.ringSize = ringSize
        ring.frameCount = ringFrameCount
        ring.frameSize = ringFrameSize
        ring.batchSize = batchSize
        ring.shedVHQAt = shedVHQAt
        ring.shedVSQAt = shedVSQAt
        return ring
    }
}

/// The one place that turns a ``ForwarderConfiguration`` into its ``Forwarder``: the socket
/// backends (GroupcastSocketBackend), xdp (GroupcastXDPBackend), ring (GroupcastRingBackend).
public enum Backends {
    /// The forwarder of `configuration.backend`. `echo`: whether the routing tables it will be
    /// given send media back to its sender (the xdp backend fixes it at attach time).
    public static func makeForwarder(
        _ configuration: ForwarderConfiguration, echo: Bool = true, logger: Logger
    ) throws(SFUError) -> any Forwarder {
        switch configuration.backend {
        case .socket, .sendmmsg, .sendgroup:
            return try UserspaceForwarder(backend: configuration.backend, configuration: configuration.socket, logger: logger)
        case .xdp:
            return try XDPForwarder(configuration: configuration.xdp(echo: echo), logger: logger)
        case .ring:
            return try RingForwarder(configuration: configuration.ring, logger: logger)
        }
    }

    /// An SFU: the control plane of `server` driving the forwarder of `forwarder`.
    public static func makeServer(
        _ server: SFUServer.Configuration, forwarder: ForwarderConfiguration, logger: Logger
    ) throws(SFUError) -> SFUServer {
        let made = try makeForwarder(forwarder, echo: server.echo, logger: logger)
        return try SFUServer(configuration: server, forwarder: made, logger: logger)
    }
}
