import CGroupcastFastPath
import Glibc
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// The in-kernel SFU data plane (Docs/fastpath.md): XDP validation and TC replication of the media
/// packets arriving for one UDP port on one interface, with per-subscriber rewrites and the echo.
///
/// State lives in BPF objects pinned under `/sys/fs/bpf/groupcast/<interface>`, so an attachment
/// outlives the process that made it and several processes (a CLI, the SFU) can drive it. A
/// `FastPath` value is an open handle on those pinned maps.
///
/// The corresponding C API is `groupcast_fastpath.h` (target `CGroupcastFastPath`).
public final class FastPath {
    /// The interface the fast path is attached to.
    public let interface: String
    private var handle: OpaquePointer?

    private init(interface: String, handle: OpaquePointer) {
        self.interface = interface
        self.handle = handle
    }

    deinit {
        gcfp_close(handle)
    }

    /// Loads the programs, pins their maps and attaches them to `interface` (XDP ingress + TC clsact
    /// ingress), then returns a handle on the new attachment.
    ///
    /// - Parameters:
    ///   - port: the SFU's media UDP port.
    ///   - echo: send every media packet back to its origin (the pktswitch SFU does).
    ///   - mode: native XDP, generic XDP, or native falling back to generic (`ingress` `.xdp`).
    ///   - ingress: the XDP program in front of the TC program (`.xdp`), or the TC program alone
    ///     (`.tc`: no XDP program attached; for veth and other virtual devices).
    ///   - maxRoutes: capacity of the route map (one entry per source SSRC); 0 for the default.
    ///   - verifierLogPath: where the verifier log goes if the kernel rejects the programs.
    ///   - listen: the address the SFU's media socket is bound to, the only destination replicated
    ///     for (and so the copies' source); nil for a wildcard socket (every address of the
    ///     interface and its VLAN devices). Its port is ignored.
    /// - Throws: ``FastPathError`` (`.notRoot`, `.noSuchDevice`, `.alreadyAttached`, `.busy`,
    ///   `.verifierRejected`, ...).
    public static func attach(
        interface: String, port: UInt16, echo: Bool = true, mode: XDPMode = .automatic,
        ingress: FastPathIngress = .xdp, maxRoutes: UInt32 = 0, verifierLogPath: String? = nil, listen: SocketAddress? = nil
    ) throws(FastPathError) -> FastPath {
        var err = gcfp_error()
        let ret: Int32 = interface.withCString { ifname in
            withOptionalCString(verifierLogPath) { logPath in
                var opts = gcfp_attach_opts()
                opts.ifname = ifname
                opts.port = port
                opts.echo = echo ? 1 : 0
                opts.xdp_mode = mode.cValue
                opts.ingress = ingress.cValue
                opts.max_routes = maxRoutes
                opts.verifier_log_path = logPath
                if let listen { opts.listen = listen.localAddressKey }
                return gcfp_attach(&opts, &err)
            }
        }
        if ret != 0 { throw FastPathError(err) }
        do {
            return try open(interface: interface)
        } catch {
            try? detach(interface: interface)  // never leave an attachment nobody holds
            throw error
        }
    }

    /// Opens the maps of an existing attachment on `interface`.
    ///
    /// - Throws: ``FastPathError/notAttached(_:)`` if nothing is pinned for it.
    public static func open(interface: String) throws(FastPathError) -> FastPath {
        var err = gcfp_error()
        var h: OpaquePointer?
        let ret = gcfp_open(interface, &h, &err)
        guard ret == 0, let h else { throw FastPathError(err) }
        return FastPath(interface: interface, handle: h)
    }

    /// The state of the attachment on `interface`.
    public static func status(interface: String) throws(FastPathError) -> FastPathStatus {
        var err = gcfp_error()
        var st = gcfp_status()
        if gcfp_status(interface, &st, &err) != 0 { throw FastPathError(err) }
        return FastPathStatus(st)
    }

    /// Detaches both programs from `interface` and removes its pins.
    public static func detach(interface: String) throws(FastPathError) {
        var err = gcfp_error()
        if gcfp_detach(interface, &err) != 0 { throw FastPathError(err) }
    }

    /// Detaches this attachment (see ``detach(interface:)``) and closes the handle.
    public func detach() throws(FastPathError) {
        gcfp_close(handle)
        handle = nil
        try FastPath.detach(interface: interface)
    }

    /// Installs or replaces the route of the stream whose RTP SSRC is `source`: only `origin` may
    /// send on it, on VLAN `originVLAN` (0: untagged; the VLAN of the route back to it,
    /// ``NextHop/vlan``); copies go to `subscribers`.
    ///
    /// - Returns: `.kernel`, or `.userSpace` when there are more subscribers than
    ///   ``FastPath/maxSubscribers``: then the kernel still drops spoofed packets but passes the
    ///   stream's packets to user space for the SFU to replicate.
    @discardableResult
    public func setRoute(
        source: UInt32, origin: SocketAddress, originVLAN: UInt16 = 0, type: StreamType, subscribers: [Subscriber]
    ) throws(FastPathError) -> RouteInstallation {
        let h = try open()
        var subs = [gc_subscriber](repeating: gc_subscriber(), count: subscribers.count)
        var err = gcfp_error()
        for (i, s) in subscribers.enumerated() {
            guard s.address.family == origin.family else {
                throw .invalidArgument("subscriber \(i) (\(s.address)) is not of the origin's family")
            }
            let ifindex = if_nametoindex(s.interface)
            if ifindex == 0 { throw .noSuchDevice("subscriber \(i): no such device '\(s.interface)'") }
            let ret = s.address.addressBytes.withUnsafeBytes { addr in
                s.mac.withUnsafeBufferPointer { mac in
                    gcfp_subscriber_init(&subs[i], s.address.fastPathFamily, addr.baseAddress, s.address.port,
                                         mac.baseAddress, ifindex, s.vlan, &err)
                }
            }
            if ret != 0 { throw FastPathError(err) }
        }
        let ret = origin.addressBytes.withUnsafeBytes { addr in
            gcfp_route_set(h, source, origin.fastPathFamily, addr.baseAddress, origin.port, originVLAN,
                           type.rawValue, subs, UInt32(subs.count), &err)
        }
        if ret < 0 { throw FastPathError(err) }
        return ret == 1 ? .userSpace : .kernel
    }

    /// Installs or replaces the route of `source` as a user-space route: the kernel drops packets
    /// on it from anywhere but `origin` and passes the others up (counted as
    /// `pass_fanout_limit`) for the SFU process to replicate. For streams whose receivers the
    /// kernel cannot reach yet (a neighbour not resolved) or at all.
    public func setUserSpaceRoute(
        source: UInt32, origin: SocketAddress, originVLAN: UInt16 = 0, type: StreamType
    ) throws(FastPathError) {
        let h = try open()
        var err = gcfp_error()
        let ret = origin.addressBytes.withUnsafeBytes { addr in
            gcfp_route_set_userspace(h, source, origin.fastPathFamily, addr.baseAddress, origin.port, originVLAN,
                                     type.rawValue, &err)
        }
        if ret < 0 { throw FastPathError(err) }
    }

    /// Removes the route of `source` and its media counters (``routeMedia(source:)``).
    ///
    /// - Throws: ``FastPathError/noSuchRoute(_:)`` if there is none.
    public func removeRoute(source: UInt32) throws(FastPathError) {
        let h = try open()
        var err = gcfp_error()
        if gcfp_route_remove(h, source, &err) != 0 { throw FastPathError(err) }
    }

    /// The media counters of the route of `source` (`struct gc_media_counters`, summed over CPUs):
    /// what the kernel replicated of it since it was installed.
    ///
    /// - Throws: ``FastPathError/noSuchRoute(_:)`` if there is none.
    public func routeMedia(source: UInt32) throws(FastPathError) -> MediaCounters {
        let h = try open()
        var err = gcfp_error()
        var counters = gc_media_counters()
        if gcfp_route_media(h, source, &counters, &err) != 0 { throw FastPathError(err) }
        return MediaCounters(counters)
    }

    /// Every installed route.
    public func routes() throws(FastPathError) -> [Route] {
        let h = try open()
        var err = gcfp_error()
        var out: [Route] = []
        var prev: UInt32 = 0
        var first = true
        let route = UnsafeMutablePointer<gc_route>.allocate(capacity: 1)
        defer { route.deallocate() }
        while true {
            var next: UInt32 = 0
            let r = first ? gcfp_route_next(h, nil, &next, &err) : gcfp_route_next(h, &prev, &next, &err)
            if r == 1 { break }
            if r < 0 { throw FastPathError(err) }
            first = false
            prev = next
            let g = gcfp_route_get(h, next, route, &err)
            if g == -Int32(GCFP_ERR_NO_ROUTE.rawValue) { continue }  // removed meanwhile
            if g != 0 { throw FastPathError(err) }
            out.append(Route(source: next, route.pointee))
        }
        return out
    }

    /// The per-CPU counters summed, by name (`forwarded`, `drop_spoofed`, ...).
    public func stats() throws(FastPathError) -> FastPathStats {
        let h = try open()
        var err = gcfp_error()
        var values = [UInt64](repeating: 0, count: Int(GC_STAT_MAX.rawValue))
        let ret = values.withUnsafeMutableBufferPointer { gcfp_stats(h, $0.baseAddress, &err) }
        if ret != 0 { throw FastPathError(err) }
        var counters: [(String, UInt64)] = []
        for (i, v) in values.enumerated() {
            counters.append((String(cString: gcfp_stat_name(UInt32(i))), v))
        }
        return FastPathStats(counters: counters)
    }

    /// Re-reads the interface's IPv4/IPv6 addresses into the fast path's local-address map (the
    /// only destinations it replicates for): an address added since attach is served from now on,
    /// a removed one no longer. Returns how many addresses the interface has.
    @discardableResult
    public func refreshLocalAddresses() throws(FastPathError) -> Int {
        let h = try open()
        var err = gcfp_error()
        let count = gcfp_local_refresh(h, &err)
        if count < 0 { throw FastPathError(err) }
        return Int(count)
    }

    /// The in-kernel path's processing delay (`struct gc_delay_hist`, summed over CPUs).
    public func delay() throws(FastPathError) -> DelayHistogram {
        let h = try open()
        var err = gcfp_error()
        let hist = UnsafeMutablePointer<gc_delay_hist>.allocate(capacity: 1)
        defer { hist.deallocate() }
        if gcfp_delay(h, hist, &err) != 0 { throw FastPathError(err) }
        let buckets = withUnsafeBytes(of: &hist.pointee.buckets) { Array($0.bindMemory(to: UInt64.self)) }
        return DelayHistogram(count: hist.pointee.count, sum: hist.pointee.sum, max: hist.pointee.max, buckets: buckets)
    }

    /// The most subscribers one route replicates to in the kernel (`GC_MAX_SUBSCRIBERS`).
    public static let maxSubscribers = Int(GC_MAX_SUBSCRIBERS)

    private func open() throws(FastPathError) -> OpaquePointer {
        guard let handle else { throw .notAttached("the fast path on \(interface) was detached") }
        return handle
    }
}

/// Receive to last copy scheduled in the kernel, ns: `struct gc_delay_hist` of `bpf/include/groupcast_layout.h`
/// (buckets: exact below ``exactLimit``, then ``subBuckets`` per power of two).
public struct DelayHistogram: Sendable, Equatable {
    public static let exactLimit = Int(GC_DELAY_EXACT)
    public static let subBuckets = Int(GC_DELAY_SUB_BUCKETS)
    public static let bucketCount = Int(GC_DELAY_BUCKETS)
    public var count: UInt64
    public var sum: UInt64
    public var max: UInt64
    /// `GC_DELAY_BUCKETS` counts.
    public var buckets: [UInt64]
}

/// How a route was installed.
public enum RouteInstallation: Sendable, Equatable {
    /// Replicated in the kernel.
    case kernel
    /// More subscribers than the kernel replicates to: origin-checked in the kernel, replicated in
    /// user space.
    case userSpace
}

/// ``FastPathIngress`` (GroupcastSFU, the forwarder's configuration) in the loader's terms.
extension FastPathIngress {
    /// `enum gc_ingress` of `groupcast_layout.h`.
    var cValue: UInt8 {
        switch self {
        case .xdp: UInt8(GC_INGRESS_XDP.rawValue)
        case .tc: UInt8(GC_INGRESS_TC.rawValue)
        }
    }

    init?(cValue: UInt8) {
        switch UInt32(cValue) {
        case GC_INGRESS_XDP.rawValue: self = .xdp
        case GC_INGRESS_TC.rawValue: self = .tc
        default: return nil
        }
    }
}

/// ``XDPMode`` (GroupcastSFU, the forwarder's configuration) in the loader's terms.
extension XDPMode {
    /// `enum gcfp_xdp_mode` of `groupcast_fastpath.h`.
    var cValue: UInt8 {
        switch self {
        case .automatic: UInt8(GCFP_XDP_AUTO.rawValue)
        case .native: UInt8(GCFP_XDP_NATIVE.rawValue)
        case .generic: UInt8(GCFP_XDP_GENERIC.rawValue)
        }
    }

    /// The mode of an attachment (`nil`: not attached, `GCFP_XDP_AUTO`).
    init?(cValue: UInt8) {
        switch UInt32(cValue) {
        case GCFP_XDP_NATIVE.rawValue: self = .native
        case GCFP_XDP_GENERIC.rawValue: self = .generic
        default: return nil
        }
    }
}

extension FastPath {
    /// A receiver of a stream as the kernel sends to it (`struct gc_subscriber`): the copy leaves through `interface` to `mac`, then `address`,
    /// tagged with VLAN `vlan` (0: untagged; the next hop's, ``NextHop/vlan``).
    public struct Subscriber: Sendable, Hashable {
        public var interface: String
        /// 6 bytes.
        public var mac: [UInt8]
        public var address: SocketAddress
        public var vlan: UInt16

        public init(interface: String, mac: [UInt8], address: SocketAddress, vlan: UInt16 = 0) {
            self.interface = interface
            self.mac = mac
            self.address = address
            self.vlan = vlan
        }
    }

    /// An installed route, as read back from the kernel (`struct gc_route`).
    public struct Route: Sendable, Hashable {
        public var source: UInt32
        public var origin: SocketAddress
        public var type: StreamType?
        /// Replicated in user space (more subscribers than the kernel replicates to).
        public var userSpace: Bool
        /// Egress interface index, MAC, destination of each subscriber.
        public var subscribers: [(ifindex: UInt32, mac: [UInt8], destination: SocketAddress)] {
            subs.map { ($0.ifindex, $0.mac, $0.destination) }
        }
        private var subs: [Sub]

        private struct Sub: Sendable, Hashable {
            var ifindex: UInt32
            var mac: [UInt8]
            var destination: SocketAddress
        }

        init(source: UInt32, _ r: gc_route) {
            self.source = source
            var r = r
            origin = withUnsafeBytes(of: &r.origin_addr) {
                SocketAddress(fastPathFamily: r.family, address: $0, port: UInt16(bigEndian: r.origin_port))
            }
            type = StreamType(rawValue: r.stream_type)
            userSpace = r.flags & UInt32(GC_ROUTE_F_USERSPACE) != 0
            let n = Int(min(r.n_subs, UInt32(GC_MAX_SUBSCRIBERS)))
            subs = withUnsafeBytes(of: &r.subs) { raw in
                let s = raw.bindMemory(to: gc_subscriber.self)
                return (0..<n).map { i in
                    var e = s[i]
                    let mac = withUnsafeBytes(of: &e.dst_mac) { Array($0) }
                    let dst = withUnsafeBytes(of: &e.addr) {
                        SocketAddress(fastPathFamily: e.family, address: $0, port: UInt16(bigEndian: e.port))
                    }
                    return Sub(ifindex: e.ifindex, mac: mac, destination: dst)
                }
            }
        }

        public static func == (a: Route, b: Route) -> Bool {
            a.source == b.source && a.origin == b.origin && a.type == b.type && a.userSpace == b.userSpace
                && a.subs == b.subs
        }

        public func hash(into h: inout Hasher) {
            h.combine(source)
            h.combine(origin)
            h.combine(subs)
        }
    }
}

public struct FastPathStatus: Sendable, Equatable {
    public var attached: Bool
    public var mode: XDPMode?
    /// The attachment's ingress (nil: a value this build does not know).
    public var ingress: FastPathIngress?
    public var xdpProgramID: UInt32
    public var tcProgramID: UInt32
    public var port: UInt16
    public var echo: Bool
    public var routeCount: UInt32
    public var maxRoutes: UInt32
    public var pinDirectory: String

    init(_ s: gcfp_status) {
        var s = s
        attached = s.attached != 0
        mode = XDPMode(cValue: s.xdp_mode)
        ingress = FastPathIngress(cValue: s.ingress)
        xdpProgramID = s.xdp_prog_id
        tcProgramID = s.tc_prog_id
        port = s.port
        echo = s.echo != 0
        routeCount = s.route_count
        maxRoutes = s.max_routes
        pinDirectory = cString(s.pin_dir)
    }
}

/// The fast path's counters, in `enum gc_stat` order.
public struct FastPathStats: Sendable {
    public let counters: [(name: String, value: UInt64)]

    public subscript(name: String) -> UInt64? {
        counters.first { $0.name == name }?.value
    }
}

/// Why a fast-path operation failed (`enum gcfp_code` of the loader: attaching, programming, and
/// resolving next hops); each case carries the loader's message, which names the interface or
/// address and the failing call.
public enum FastPathError: Error, Equatable, Sendable, CustomStringConvertible {
    case notRoot(String)
    case noSuchDevice(String)
    case alreadyAttached(String)
    /// Another XDP program or TC filter holds the hook.
    case busy(String)
    case notAttached(String)
    /// The kernel rejected the programs; the verifier log is at `logPath`.
    case verifierRejected(message: String, logPath: String)
    case invalidArgument(String)
    case noSuchRoute(String)
    case routesFull(String)
    case bpffsUnavailable(String)
    /// The pinned maps have another layout version: detach and attach again.
    case layoutMismatch(String)
    /// Next hops: no route to the address, or an unreachable/blackhole/prohibit one.
    case unreachable(String)
    /// Next hops: the route is known but the next hop's link-layer address is not (yet).
    case neighbourUnresolved(String)
    /// Next hops: the egress device is neither Ethernet nor loopback.
    case unsupportedLink(String)
    case systemCall(message: String, errno: Int32)

    init(_ e: gcfp_error) {
        let msg = e.messageText
        switch UInt32(e.code) {
        case GCFP_ERR_NOT_ROOT.rawValue: self = .notRoot(msg)
        case GCFP_ERR_NO_DEVICE.rawValue: self = .noSuchDevice(msg)
        case GCFP_ERR_ALREADY_ATTACHED.rawValue: self = .alreadyAttached(msg)
        case GCFP_ERR_BUSY.rawValue: self = .busy(msg)
        case GCFP_ERR_NOT_ATTACHED.rawValue: self = .notAttached(msg)
        case GCFP_ERR_VERIFIER.rawValue:
            self = .verifierRejected(message: msg, logPath: cString(e.log_path))
        case GCFP_ERR_INVALID.rawValue: self = .invalidArgument(msg)
        case GCFP_ERR_NO_ROUTE.rawValue: self = .noSuchRoute(msg)
        case GCFP_ERR_ROUTES_FULL.rawValue: self = .routesFull(msg)
        case GCFP_ERR_BPFFS.rawValue: self = .bpffsUnavailable(msg)
        case GCFP_ERR_ABI.rawValue: self = .layoutMismatch(msg)
        case GCFP_ERR_UNREACHABLE.rawValue: self = .unreachable(msg)
        case GCFP_ERR_NEIGH_UNRESOLVED.rawValue: self = .neighbourUnresolved(msg)
        case GCFP_ERR_UNSUPPORTED_LINK.rawValue: self = .unsupportedLink(msg)
        default: self = .systemCall(message: msg, errno: e.sys_errno)
        }
    }

    public var description: String {
        switch self {
        case .notRoot(let m), .noSuchDevice(let m), .alreadyAttached(let m), .busy(let m),
             .notAttached(let m), .invalidArgument(let m), .noSuchRoute(let m), .routesFull(let m),
             .bpffsUnavailable(let m), .layoutMismatch(let m), .unreachable(let m),
             .neighbourUnresolved(let m), .unsupportedLink(let m):
            return m
        case .verifierRejected(let m, _):
            return m
        case .systemCall(let m, _):
            return m
        }
    }
}

extension gcfp_error {
    /// The loader's message about the error.
    var messageText: String { cString(message) }
}

/// A NUL-terminated `char[N]` of a C struct (imported as a tuple) as a String.
func cString<Tuple>(_ bytes: Tuple) -> String {
    withUnsafeBytes(of: bytes) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
