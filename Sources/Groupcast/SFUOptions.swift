import ArgumentParser
import GroupcastBackends
import GroupcastCommandLine
import GroupcastFastPath
import GroupcastRingBackend
import GroupcastSFU
import GroupUnicast

/// `groupcast sfu`'s control plane: its address, rooms, limits and keepalive; an
/// ``SFUServer/Configuration`` (the key comes from ``AuthKeyOptions``).
struct ControlPlaneOptions: ParsableArguments {
    @Option(help: "Control address (REGISTER, SUBSCRIBE, ...).")
    var control: SocketAddress = .ipv4(.any, port: 7000)

    @Option(help: "Room file (JSON): rooms, their capacity and static participants (Docs/protocol.md).")
    var room: String?

    @Option(help: "Capacity of each room created on first join, and of the room `default`.")
    var capacity: Int = 64

    @Option(help: "Most participants in all rooms.")
    var maxParticipants: Int = 4096

    @Option(help: "Most rooms.")
    var maxRooms: Int = 256

    @Flag(inversion: .prefixedNo, help: "Create a room when a REGISTER names one that does not exist (with authentication: when a valid token names it). Off: only the room file's rooms, or `default`.")
    var roomCreation = true

    @Option(help: "Control requests per second per source address (IPv4 address, IPv6 /64); 0: unlimited.")
    var controlRate: Double = 200

    @Option(help: "Control requests a source address may send in a burst.")
    var controlBurst: Double = 400

    @Option(help: "Remove a participant after this long without KEEPALIVE (e.g. 10s, 500ms). Default: the room file's keepaliveTimeoutMs, else 10s; given, it wins over the room file's.")
    var keepaliveTimeout: DurationArgument?

    @Flag(inversion: .prefixedNo, help: "Send every media packet back to its sender.")
    var echo = true

    func validate() throws {
        guard capacity >= 1 else { throw ValidationError("--capacity must be at least 1") }
        guard maxParticipants >= 1 && maxRooms >= 1 else { throw ValidationError("--max-participants and --max-rooms must be at least 1") }
        guard controlRate >= 0, controlRate == 0 || controlBurst >= 1 else { throw ValidationError("--control-rate must be >= 0 and --control-burst >= 1") }
    }

    /// The server's configuration without a key; a room file that does not load is a usage error.
    /// Precedence (Docs/operations.md): a flag beats the room file's SFU-wide `keepaliveTimeoutMs`;
    /// a room's own `capacity` beats `--capacity`, which is the capacity of every room without one.
    /// `notes`: each setting the room file decides against a flag, to be logged at start.
    func configuration() throws(ValidationError) -> (configuration: SFUServer.Configuration, notes: [String]) {
        var notes: [String] = []
        var configuration = SFUServer.Configuration(controlAddress: control)
        configuration.capacity = capacity
        configuration.limits.maxParticipants = maxParticipants
        configuration.limits.maxRooms = maxRooms
        configuration.limits.allowRoomCreation = roomCreation
        configuration.controlRateLimit = controlRate > 0 ? RateLimiter.Limit(rate: controlRate, burst: controlBurst) : nil
        configuration.echo = echo
        if let room {
            do { configuration.room = try RoomFile.load(path: room) } catch { throw ValidationError(error.description) }
        }
        let fileTimeout = configuration.room?.keepaliveTimeoutMilliseconds
        configuration.keepaliveTimeout = keepaliveTimeout?.value ?? fileTimeout.map { .milliseconds($0) } ?? .seconds(10)
        if let fileTimeout, let keepaliveTimeout, keepaliveTimeout.value != .milliseconds(fileTimeout) {
            notes.append("keepalive timeout \(keepaliveTimeout.value) (--keepalive-timeout) overrides the room file's keepaliveTimeoutMs \(fileTimeout)")
        }
        for declared in configuration.room?.rooms ?? [] {
            if let own = declared.capacity, own != capacity {
                notes.append("room \(declared.name): capacity \(own) from the room file (--capacity \(capacity) is for rooms without their own)")
            }
        }
        return (configuration, notes)
    }
}

/// `groupcast sfu`'s data plane, every backend's options: a ``ForwarderConfiguration``.
struct ForwarderOptions: ParsableArguments {
    @Option(help: "Media (RTP) address.")
    var media: SocketAddress = .ipv4(.any, port: 7002)

    @Option(help: "Forwarding backend: socket (recvmsg + sendmsg per recipient), sendmmsg, sendgroup (kernel module), xdp (XDP/TC fast path in the kernel; root), ring (AF_XDP rings, Docs/ring.md). Default: the fastest socket backend available.")
    var backend: ForwarderBackend = .fastestAvailable

    @Option(name: .customLong("interface"), help: "xdp, ring: attach to this interface (repeatable). Default: the interface carrying --media, or for a wildcard address every interface that is up with an address (loopback excluded).")
    var interfaces: [String] = []

    @Option(help: "xdp: XDP attach mode: auto (native where the driver supports it), native or generic.")
    var xdpMode: XDPMode = .automatic

    @Option(help: "Datagrams per recvmmsg (sendmmsg and sendgroup backends), RX descriptors per batch (ring).")
    var batch: Int = 64

    @Option(help: "SO_RCVBUF of the media socket in bytes (the kernel doubles it, capped by net.core.rmem_max).")
    var receiveBuffer: Int = 4 << 20

    @Option(help: "SO_SNDBUF of the media socket in bytes (the kernel doubles it, capped by net.core.wmem_max). Default: the system's (net.core.wmem_default).")
    var sendBuffer: Int?

    @Option(help: "Receive-queue fill (0-1) above which VHQ is shed.")
    var shedVhq: Double = 0.5

    @Option(help: "Receive-queue fill (0-1) above which VSQ is shed too.")
    var shedVsq: Double = 0.75

    @Option(help: "Copies queued per slow receiver before its oldest are dropped.")
    var backlog: Int = 64

    @Option(help: "ring: the receive queue bound on each interface.")
    var ringQueue: UInt32 = 0

    @Option(help: "ring: how the AF_XDP sockets bind: auto (zero-copy where the driver offers it, else copy), copy, zerocopy.")
    var ringMode: RingMode = .automatic

    @Option(help: "ring: entries of each RX, TX, fill and completion ring (power of two).")
    var ringSize: UInt32 = 4096

    @Option(name: [.customLong("ring-frame-count"), .customLong("ring-frames")], help: "ring: UMEM frames per interface (0: 2 x --ring-size + 2 x --batch); --ring-frames is its former name.")
    var ringFrameCount: UInt32 = 0

    @Option(help: "ring: UMEM frame size, 2048 or 4096.")
    var ringFrameSize: UInt32 = 2048

    func validate() throws {
        guard batch >= 1 && batch <= 1024 else { throw ValidationError("--batch must be 1...1024") }
        guard receiveBuffer >= 1 && (sendBuffer ?? 1) >= 1 else { throw ValidationError("--receive-buffer and --send-buffer must be at least 1") }
        guard backlog >= 1 else { throw ValidationError("--backlog must be at least 1") }
        guard ringSize.nonzeroBitCount == 1, ringSize <= 65536 else { throw ValidationError("--ring-size must be a power of two up to 65536") }
        guard ringFrameSize == 2048 || ringFrameSize == 4096 else { throw ValidationError("--ring-frame-size must be 2048 or 4096") }
        guard batch <= Int(ringSize) || backend != .ring else { throw ValidationError("--batch must not exceed --ring-size") }
        guard 0 < shedVhq && shedVhq <= shedVsq && shedVsq <= 1 else {
            throw ValidationError("need 0 < --shed-vhq <= --shed-vsq <= 1")
        }
        if !backend.needsInterface && (!interfaces.isEmpty || xdpMode != .automatic) {
            throw ValidationError("--interface and --xdp-mode apply to the xdp backend, not \(backend)")
        }
    }

    var configuration: ForwarderConfiguration {
        var forwarder = ForwarderConfiguration(backend: backend, mediaAddress: media)
        forwarder.batchSize = batch
        forwarder.receiveBufferSize = receiveBuffer
        forwarder.sendBufferSize = sendBuffer
        forwarder.shedVHQAt = shedVhq
        forwarder.shedVSQAt = shedVsq
        forwarder.backlogCapacity = backlog
        forwarder.interfaces = interfaces
        forwarder.xdpMode = xdpMode
        forwarder.ringQueue = ringQueue
        forwarder.ringMode = ringMode
        forwarder.ringSize = ringSize
        forwarder.ringFrameCount = ringFrameCount
        forwarder.ringFrameSize = ringFrameSize
        return forwarder
    }
}

extension RingMode: ExpressibleByArgument {}
extension XDPMode: ExpressibleByArgument {}
