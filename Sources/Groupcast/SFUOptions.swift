import ArgumentParser
import GroupcastBackends
import GroupcastCommandLine
import GroupcastConfiguration
import GroupcastFastPath
import GroupcastRingBackend
import GroupcastSFU
import GroupUnicast

// The flags of `groupcast sfu`. Each is optional: a flag given beats the configuration file
// (`--config`), one not given leaves the file's value or the default (GroupcastConfiguration's
// SFUSettings, which also checks them; the defaults quoted here are read from there).

private let server = SFUSettings.serverDefaults
private let forwarder = SFUSettings.forwarderDefaults

/// `groupcast sfu`'s control plane: its address, rooms, limits and keepalive.
struct ControlPlaneOptions: ParsableArguments {
    @Option(help: "Control address (REGISTER, SUBSCRIBE, ...). Default: \(SFUSettings.defaultControl).")
    var control: SocketAddress?

    @Option(help: "Room file (JSON): rooms, their capacity and static participants (Docs/protocol.md). In --config: `rooms`, a path or the rooms themselves.")
    var room: String?

    @Option(help: "Capacity of each room created on first join, and of declared rooms without their own. Default: \(server.capacity).")
    var capacity: Int?

    @Option(help: "Most participants in all rooms. Default: \(server.limits.maxParticipants).")
    var maxParticipants: Int?

    @Option(help: "Most rooms. Default: \(server.limits.maxRooms).")
    var maxRooms: Int?

    @Flag(inversion: .prefixedNo, help: "Create a room when a REGISTER names one that does not exist (with authentication: when a valid token names it). Off: only the declared rooms, or `default`. Default: on.")
    var roomCreation: Bool?

    @Option(help: "Control requests per second per source address (IPv4 address, IPv6 /64); 0: unlimited. Default: \(server.controlRateLimit.map { "\($0.rate)" } ?? "0").")
    var controlRate: Double?

    @Option(help: "Control requests a source address may send in a burst. Default: \(server.controlRateLimit.map { "\($0.burst)" } ?? "-").")
    var controlBurst: Double?

    @Option(help: "Remove a participant after this long without KEEPALIVE (e.g. 10s, 500ms). Default: the room file's keepaliveTimeoutMs, else \(server.keepaliveTimeout); given, it wins over the room file's.")
    var keepaliveTimeout: DurationArgument?

    @Flag(inversion: .prefixedNo, help: "Send every media packet back to its sender. Default: on.")
    var echo: Bool?

    func add(to settings: inout SFUSettings) {
        settings.control = control
        settings.rooms = room.map { .file($0) }
        settings.capacity = capacity
        settings.maxParticipants = maxParticipants
        settings.maxRooms = maxRooms
        settings.roomCreation = roomCreation
        settings.controlRate = controlRate
        settings.controlBurst = controlBurst
        settings.keepaliveTimeout = keepaliveTimeout?.value
        settings.echo = echo
    }
}

/// `groupcast sfu --cluster`: the node's membership in a cluster of SFUs (Docs/cluster.md).
struct ClusterOptions: ParsableArguments {
    @Option(help: "Join the cluster whose state is in this Redis: redis://[:PASSWORD@]HOST[:PORT][/DB]. The SFU publishes its participants and their streams there and relays media to and from the other nodes (socket, sendmmsg and sendgroup backends); local routing never waits for Redis and keeps working while it is down.")
    var cluster: String?

    @Option(help: "This node's name in the cluster (A-Z a-z 0-9 . _ -, unique). Default: the host name.")
    var node: String?

    @Option(help: "IP:PORT other nodes send relayed media to, and the only source they accept this node's streams from: this node's media address as others reach it (required with --cluster).")
    var advertise: SocketAddress?

    @Option(help: "How many other nodes this node relays one stream to before the cluster hands later nodes to other carriers of the stream with the lowest load (relay trees, Docs/cluster.md). Default: 0, no limit (every node takes a stream from its origin).")
    var relayFanout: Int?

    func add(to settings: inout SFUSettings) {
        settings.cluster = cluster
        settings.node = node
        settings.advertise = advertise
        settings.relayFanout = relayFanout
    }
}

/// `groupcast sfu`'s data plane, every backend's options.
struct ForwarderOptions: ParsableArguments {
    @Option(help: "Media (RTP) address. Default: \(SFUSettings.defaultMedia).")
    var media: SocketAddress?

    @Option(help: "Forwarding backend: socket (recvmsg + sendmsg per recipient), sendmmsg, sendgroup (kernel module), xdp (XDP/TC fast path in the kernel; root), ring (AF_XDP rings, Docs/ring.md). Default: the fastest socket backend available (here \(ForwarderBackend.fastestAvailable)).")
    var backend: ForwarderBackend?

    @Option(name: .customLong("interface"), help: "xdp, ring: attach to this interface (repeatable). Default: the interface carrying --media, or for a wildcard address every interface that is up with an address (loopback excluded).")
    var interfaces: [String] = []

    @Option(help: "xdp: XDP attach mode: auto (native where the driver supports it), native or generic. Default: \(forwarder.xdpMode).")
    var xdpMode: XDPMode?

    @Option(help: "xdp: the fast path's ingress: xdp (an XDP program judges every datagram before an skb exists, drops garbage early; for real NICs) or tc (no XDP program, the TC program alone verifies and replicates; for veth and other virtual devices, where native XDP copies each skb first; Docs/fastpath.md). Default: \(forwarder.xdpIngress).")
    var xdpIngress: FastPathIngress?

    @Option(help: "sendgroup: groups (one kernel group per route, one group send per route and recvmmsg batch) or oneshot (one SENDGROUP_IOC_SEND per packet). Default: \(forwarder.sendgroupMode).")
    var sendgroupMode: SendgroupMode?

    @Option(help: "Datagrams per recvmmsg (sendmmsg and sendgroup backends), RX descriptors per batch (ring). Default: \(forwarder.batchSize).")
    var batch: Int?

    @Option(help: "SO_RCVBUF of the media socket in bytes (the kernel doubles it, capped by net.core.rmem_max). Default: \(forwarder.receiveBufferSize.map { "\($0)" } ?? "the system's").")
    var receiveBuffer: Int?

    @Option(help: "SO_SNDBUF of the media socket in bytes (the kernel doubles it, capped by net.core.wmem_max). Default: the system's (net.core.wmem_default).")
    var sendBuffer: Int?

    @Option(help: "Receive-queue fill (0-1) above which VHQ is shed. Default: \(forwarder.shedVHQAt).")
    var shedVhq: Double?

    @Option(help: "Receive-queue fill (0-1) above which VSQ is shed too. Default: \(forwarder.shedVSQAt).")
    var shedVsq: Double?

    @Option(help: "Copies queued per slow receiver before its oldest are dropped. Default: \(forwarder.backlogCapacity).")
    var backlog: Int?

    @Option(help: "ring: the receive queue bound on each interface. Default: \(forwarder.ringQueue).")
    var ringQueue: UInt32?

    @Option(help: "ring: how the AF_XDP sockets bind: auto (zero-copy where the driver offers it, else copy), copy, zerocopy. Default: \(forwarder.ringMode).")
    var ringMode: RingMode?

    @Option(help: "ring: entries of each RX, TX, fill and completion ring (power of two). Default: \(forwarder.ringSize).")
    var ringSize: UInt32?

    @Option(name: [.customLong("ring-frame-count"), .customLong("ring-frames")], help: "ring: UMEM frames per interface (0: 2 x --ring-size + 2 x --batch); --ring-frames is its former name. Default: \(forwarder.ringFrameCount).")
    var ringFrameCount: UInt32?

    @Option(help: "ring: UMEM frame size, 2048 or 4096. Default: \(forwarder.ringFrameSize).")
    var ringFrameSize: UInt32?

    @Option(help: "ring: preferred busy polling (e.g. 50us; 0: off): SO_PREFER_BUSY_POLL, SO_BUSY_POLL this long and SO_BUSY_POLL_BUDGET = --batch on each AF_XDP socket, the NAPI polled before sleeping; set the device's napi_defer_hard_irqs and gro_flush_timeout with it (Docs/ring.md). Refused by the kernel: logged, the port runs without. Default: \(forwarder.ringBusyPoll).")
    var ringBusyPoll: DurationArgument?

    @Option(help: "ring: wake-up coalescing (e.g. 200us; 0: off): after a pass with less than a batch, sleep this long before waiting again, so more goes out per pass and kick; adds up to this much latency under load. Default: \(forwarder.ringCoalesce).")
    var ringCoalesce: DurationArgument?

    func add(to settings: inout SFUSettings) {
        settings.media = media
        settings.backend = backend
        settings.interfaces = interfaces.isEmpty ? nil : interfaces
        settings.xdpMode = xdpMode
        settings.xdpIngress = xdpIngress
        settings.sendgroupMode = sendgroupMode
        settings.batch = batch
        settings.receiveBuffer = receiveBuffer
        settings.sendBuffer = sendBuffer
        settings.shedVhq = shedVhq
        settings.shedVsq = shedVsq
        settings.backlog = backlog
        settings.ringQueue = ringQueue
        settings.ringMode = ringMode
        settings.ringSize = ringSize
        settings.ringFrameCount = ringFrameCount
        settings.ringFrameSize = ringFrameSize
        settings.ringBusyPoll = ringBusyPoll?.value
        settings.ringCoalesce = ringCoalesce?.value
    }
}

extension RingMode: ExpressibleByArgument {}
extension XDPMode: ExpressibleByArgument {}
extension FastPathIngress: ExpressibleByArgument {}
