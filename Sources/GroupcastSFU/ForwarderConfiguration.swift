import GroupUnicast

/// What a forwarder is configured with, whichever backend it is: one value for `groupcast sfu`,
/// the tests and the benchmarks. Every backend's initializer takes it as it is (through the one
/// factory, `Backends.makeForwarder` in GroupcastBackends); fields a backend does not use are
/// ignored by it.
public struct ForwarderConfiguration: Sendable {
    /// Which data plane forwards.
    public var backend: ForwarderBackend
    /// The media address (UDP): the socket of a user-space backend and of the xdp backend's slow
    /// path, the port the xdp programs and the ring match. For xdp and ring a specific address
    /// selects the interface holding it, the wildcard every interface that is up with an address
    /// (loopback excluded).
    public var mediaAddress: SocketAddress
    /// Datagrams per `recvmmsg` (sendmmsg, sendgroup), RX descriptors per batch (ring).
    public var batchSize = 64
    /// How the sendgroup backend uses the module: a kernel group per route, or a one-shot call
    /// per packet.
    public var sendgroupMode: SendgroupMode = .groups
    /// Receive-queue fill (0...1) above which VHQ is shed: the media socket's queue, the ring's
    /// RX ring. VSQ is shed above ``shedVSQAt``, ASQ never.
    public var shedVHQAt = 0.5
    public var shedVSQAt = 0.75

    // MARK: Sockets (socket, sendmmsg, sendgroup, and the xdp backend's slow path)

    /// `SO_RCVBUF` of the media socket (the kernel doubles it and caps the request at
    /// `net.core.rmem_max`); `nil`: the system default. The default asks for 4 MiB: room for a
    /// scheduling hiccup before the shedding thresholds are reached.
    public var receiveBufferSize: Int? = 4 << 20
    /// `SO_SNDBUF` of the media socket; `nil`: the system default.
    public var sendBufferSize: Int?
    /// Copies queued per slow receiver before its oldest are dropped.
    public var backlogCapacity = 64
    /// Largest media datagram forwarded (jumbo frames fit); larger ones are dropped as
    /// ``DropReason/tooLarge``.
    public var maxDatagramSize = 9216

    // MARK: Interfaces (xdp, ring)

    /// Interfaces to attach to; empty: those carrying ``mediaAddress`` (for a wildcard address,
    /// every interface that is up with an address, loopback excluded).
    public var interfaces: [String] = []
    /// How the XDP programs attach (xdp).
    public var xdpMode: XDPMode = .automatic
    /// Which program of the fast path judges a datagram first (xdp): XDP, then TC (real NICs), or
    /// the TC program alone (veth and other virtual devices).
    public var xdpIngress: FastPathIngress = .xdp
    /// Capacity of each route map; 0: `GC_DEFAULT_MAX_ROUTES` (xdp).
    public var xdpMaxRoutes: UInt32 = 0
    /// How often receivers the kernel cannot reach yet are resolved again (xdp).
    public var nextHopRetryInterval: Duration = .milliseconds(25)
    /// How often every next hop is resolved again (a neighbour may change its MAC address) and the
    /// interfaces' addresses re-read into the programs' local-address map (xdp).
    public var nextHopRefreshInterval: Duration = .seconds(2)
    /// The receive queue bound on each interface (ring).
    public var ringQueue: UInt32 = 0
    /// How the AF_XDP sockets bind (ring).
    public var ringMode: RingMode = .automatic
    /// Entries of each RX, TX, fill and completion ring, a power of two (ring). 4096: at half
    /// full the ring sheds (like the socket backends at half their buffer), which leaves about
    /// 2,000 packets of slack.
    public var ringSize: UInt32 = 4096
    /// UMEM frames per interface; 0: 2 x ``ringSize`` + 2 x ``batchSize`` (ring).
    public var ringFrameCount: UInt32 = 0
    /// UMEM frame size, 2048 or 4096 (ring).
    public var ringFrameSize: UInt32 = 2048
    /// Preferred busy polling (ring): `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` this long and
    /// `SO_BUSY_POLL_BUDGET` = ``batchSize`` on each AF_XDP socket, the device's NAPI polled from
    /// the forwarder thread before it sleeps (Docs/ring.md: it pays off with the device's
    /// `napi_defer_hard_irqs` and `gro_flush_timeout`); `.zero`: off. A kernel that refuses it
    /// leaves the port on wake-ups (logged).
    public var ringBusyPoll: Duration = .zero
    /// Wake-up coalescing (ring): after a pass that found less than a batch the forwarder
    /// thread sleeps this long before it waits again, so what arrives meanwhile goes out in one
    /// pass and one kick; adds up to this much latency under load, none when idle. `.zero`: off.
    public var ringCoalesce: Duration = .zero

    public init(backend: ForwarderBackend, mediaAddress: SocketAddress) {
        self.backend = backend
        self.mediaAddress = mediaAddress
    }
}

/// How the sendgroup backend sends (`--sendgroup-mode groups|oneshot`).
public enum SendgroupMode: String, CaseIterable, Sendable, CustomStringConvertible {
    /// One kernel group per route (`SENDGROUP_IOC_GROUP_CREATE`), its members kept equal to the
    /// route's recipients on every table change (`SENDGROUP_GROUP_IOC_ADD`, `_UPDATE`,
    /// `_REMOVE`); a `recvmmsg` batch's packets of one route leave in one
    /// `SENDGROUP_GROUP_IOC_SEND`.
    case groups
    /// One `SENDGROUP_IOC_SEND` per packet, its recipient array copied in every time.
    case oneshot

    public var description: String { rawValue }
}

/// How the XDP programs attach: in the driver (`native`), in the generic (skb) path, or native
/// where the driver supports it and generic elsewhere (`automatic`); `enum gcfp_xdp_mode` of
/// `groupcast_fastpath.h`. Raw values are the command line's spelling (`--xdp-mode
/// auto|native|generic`).
public enum XDPMode: String, Sendable, CaseIterable, CustomStringConvertible {
    case automatic = "auto"
    case native
    case generic

    public var description: String { rawValue }
}

/// The fast path's ingress (`enum gc_ingress` of `groupcast_layout.h`; Docs/fastpath.md): `xdp`,
/// the XDP program judges every datagram before an skb exists (drops garbage at the cheapest
/// point, counts it) and the TC program behind it replicates, the choice for a real NIC; `tc`,
/// no XDP program, the TC program alone verifies, counts and replicates, the choice for veth and
/// other virtual devices, where native XDP first copies each skb into a page. Raw values are
/// the command line's spelling (`--xdp-ingress xdp|tc`, `groupcast xdp attach --ingress xdp|tc`).
public enum FastPathIngress: String, Sendable, CaseIterable, CustomStringConvertible {
    case xdp
    case tc

    public var description: String { rawValue }
}

/// How the ring's AF_XDP sockets bind (`XDP_COPY` or `XDP_ZEROCOPY`): zero-copy where the driver
/// offers it and copy elsewhere (`automatic`), or forced; `enum gc_ring_mode` of
/// `groupcast_ring.h`. Raw values are the command line's spelling (`--ring-mode
/// auto|copy|zerocopy`).
public enum RingMode: String, CaseIterable, Sendable, CustomStringConvertible {
    case automatic = "auto"
    case copy
    case zeroCopy = "zerocopy"

    public var description: String { rawValue }
}
