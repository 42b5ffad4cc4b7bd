#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastFastPath
import GroupcastProtocol
import GroupcastSFU
import GroupcastSocketBackend
import GroupUnicast
import Logging
import Synchronization

/// The `xdp` backend: the in-kernel data plane of `bpf/groupcast.bpf.c` on the media
/// interface(s), programmed from every ``RoutingTable``, with a user-space slow path for what the
/// kernel passes up.
///
/// - Control plane → kernel: each ``Route`` becomes a `gc_route` (origin, stream type, the
///   subscribers with their resolved next hops, see ``NextHop``) in the route map of every
///   attached interface; routes that left the table are removed.
/// - A route goes to user space (`GC_ROUTE_F_USERSPACE`: origin still checked in the kernel,
///   replicated by the slow path) while any of its receivers cannot be reached from the kernel:
///   its neighbour is not resolved yet (resolution is started and retried every
///   ``ForwarderConfiguration/nextHopRetryInterval``), it is on another address family, or it is local; and above
///   `GC_MAX_SUBSCRIBERS` receivers.
/// - Slow path: a ``UserspaceForwarder`` (`sendmmsg`) on the media socket with the whole table,
///   so unknown SSRCs, RTCP, and user-space routes are handled and counted as on any backend.
/// - Statistics: the BPF per-CPU counters merged with the slow path's (``statistics()``).
/// - ``close()`` detaches the programs and removes their pins (also after a failed start).
public final class XDPForwarder: Forwarder {
    public var backend: ForwarderBackend { .xdp }
    public let configuration: ForwarderConfiguration
    /// Whether media is echoed to its origin (fixed at attach time: the programs' rodata).
    public let echo: Bool
    /// The interfaces the fast path is attached to.
    public let interfaces: [String]
    private let slowPath: UserspaceForwarder
    private let logger: Logger
    private let state: Mutex<State>
    private let closing = Atomic<Bool>(false)
    private let maintenanceDone = Atomic<Bool>(false)

    /// What the control plane programmed, under one lock (install() runs on the control thread,
    /// retries on the forwarder's).
    private struct State: @unchecked Sendable {  // FastPath handles are used only under the lock.
        var attachments: [FastPath]
        var table = RoutingTable.empty
        /// SSRC -> what is in the kernel's maps.
        var installed: [UInt32: Installed] = [:]
        /// Keyed by the receiver's address with port 0.
        var nextHops: [SocketAddress: (hop: Result<NextHop, FastPathError>, resolved: UInt64)] = [:]
        var lastRefresh: UInt64 = 0
        /// SSRCs a route map had no room for (warned about once).
        var full: Set<UInt32> = []
        /// Media the kernel counted on routes since removed, by room (read before removal).
        var removedMedia: [String: MediaCounters] = [:]
        var closed = false
    }

    private struct Installed: Equatable {
        /// The room of the stream (its kernel media counters are summed into it).
        var room: String
        var origin: SocketAddress
        /// The VLAN of the route back to the origin: the only one it may send on.
        var originVLAN: UInt16
        var type: StreamType
        /// nil: a user-space route.
        var subscribers: [FastPath.Subscriber]?
    }

    /// Binds the media socket, attaches the programs to the media interface(s) (matching the
    /// socket's port) and opens their maps.
    ///
    /// - Throws: ``SFUError/backendUnavailable(_:_:)`` naming what is missing (root, BPF, the
    ///   interface, an attachment left by another process), ``SFUError/socket(_:_:)``.
    /// The media socket is the slow path's, on `configuration.mediaAddress`; `echo` is fixed at
    /// attach time, so every table installed must have the same.
    public init(configuration: ForwarderConfiguration, echo: Bool, logger: Logger) throws(SFUError) {
        self.configuration = configuration
        self.echo = echo
        self.logger = logger
        var slowPathConfiguration = configuration
        slowPathConfiguration.backend = .sendmmsg
        slowPath = try UserspaceForwarder(configuration: slowPathConfiguration, logger: logger)
        let media: SocketAddress
        do { media = try slowPath.localAddress } catch {
            slowPath.close()
            throw error
        }
        let interfaces: [String]
        do throws(SFUError) {
            interfaces = configuration.interfaces.isEmpty ? try Self.interfaces(carrying: media) : configuration.interfaces
        } catch {
            slowPath.close()
            throw error
        }
        var attachments: [FastPath] = []
        for interface in interfaces {
            do {
                // A socket bound to one address: only media sent to it is replicated, with it as
                // the copies' source (the kernel would not deliver the rest to that socket).
                attachments.append(try FastPath.attach(
                    interface: interface, port: media.port, echo: echo, mode: configuration.xdpMode,
                    ingress: configuration.xdpIngress,
                    maxRoutes: configuration.xdpMaxRoutes, listen: media))
            } catch {
                for attached in attachments { try? attached.detach() }
                slowPath.close()
                throw .backendUnavailable(.xdp, Self.explain(error, interface: interface))
            }
        }
        self.interfaces = interfaces
        state = Mutex(State(attachments: attachments))
        startMaintenance()
        logger.info("xdp: attached to \(interfaces.joined(separator: ", ")) (\(configuration.xdpIngress == .tc ? "tc ingress" : "xdp ingress, \(configuration.xdpMode)")), media port \(media.port)")
    }

    private static func explain(_ error: FastPathError, interface: String) -> String {
        switch error {
        case .notRoot(let m): "\(m) (run the SFU as root)"
        case .alreadyAttached(let m): "\(m) (left by another SFU? `groupcast xdp detach \(interface)` removes it)"
        default: "attaching to \(interface): \(error)"
        }
    }

    /// The interfaces whose addresses include `address`, or for a wildcard address every up,
    /// non-loopback interface with an address of its family.
    static func interfaces(carrying address: SocketAddress) throws(SFUError) -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else {
            throw .backendUnavailable(.xdp, "getifaddrs: errno \(errno)")
        }
        defer { freeifaddrs(list) }
        let wanted: (family: Int32, bytes: [UInt8])
        let wildcard: Bool
        switch address {
        case .ipv4(let a, _): wanted = (AF_INET, a.bytes); wildcard = a == .any
        case .ipv6(let a, _, _): wanted = (AF_INET6, a.bytes); wildcard = a == .any
        }
        var names: [String] = []
        var loopback: String?
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let sa = entry.pointee.ifa_addr, Int32(sa.pointee.sa_family) == wanted.family else { continue }
            let name = String(cString: entry.pointee.ifa_name)
            let flags = Int32(entry.pointee.ifa_flags)
            let bytes: [UInt8] = wanted.family == AF_INET
                ? sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin_addr) { Array($0) } }
                : sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) } }
            let isLoopback = flags & Int32(IFF_LOOPBACK) != 0
            if wildcard {
                if !isLoopback && flags & Int32(IFF_UP) != 0 && !names.contains(name) { names.append(name) }
            } else if bytes == wanted.bytes {
                if isLoopback { loopback = name } else if !names.contains(name) { names.append(name) }
            }
        }
        if names.isEmpty {
            if let loopback {
                throw .backendUnavailable(.xdp, "the media address \(address) is on \(loopback): the xdp backend needs an Ethernet interface (a media address on one, or --interface)")
            }
            throw .backendUnavailable(.xdp, wildcard
                ? "no interface is up with an address for \(address) (name one with --interface)"
                : "no interface has the media address \(address) (name one with --interface)")
        }
        return names
    }

    public var localAddress: SocketAddress { get throws(SFUError) { try slowPath.localAddress } }

    public func install(_ table: RoutingTable) throws(SFUError) {
        guard table.echo == echo else {
            throw .configuration("the xdp backend was attached with echo \(echo ? "on" : "off"); a table with echo \(table.echo ? "on" : "off") needs a new attachment")
        }
        try slowPath.install(table)
        try state.withLock { state throws(SFUError) in
            state.table = table
            try program(&state, now: monotonicNanoseconds(), retryNow: true)
        }
    }

    /// Brings the kernel's route maps in line with `state.table`. `retryNow`: resolve unresolved
    /// next hops again whenever they were last tried (a control change often follows the
    /// exchange that resolved them).
    private func program(_ state: inout State, now: UInt64, retryNow: Bool = false) throws(SFUError) {
        guard !state.closed else { return }
        let refresh = now &- state.lastRefresh >= configuration.nextHopRefreshInterval.wholeNanoseconds
        if refresh {
            state.lastRefresh = now
            // The programs replicate only media sent to one of the interface's addresses: follow
            // addresses added or removed since attach (until then the slow path serves them).
            for fastPath in state.attachments {
                do { try fastPath.refreshLocalAddresses() } catch {
                    logger.warning("xdp: re-reading the addresses of \(fastPath.interface): \(error)")
                }
            }
        }
        var wanted: [UInt32: Installed] = [:]
        for (ssrc, route) in state.table.routes {
            guard let origin = kernelAddress(route.origin) else {
                continue  // cannot be expressed in gc_route: the slow path sees it as unknown
            }
            // The origin check includes the VLAN the origin is reached through: until its next
            // hop is known the stream stays out of the kernel (the slow path sees an unknown SSRC).
            guard let originHop = nextHop(origin.withPort(0), &state, now: now, refresh: refresh, retryNow: retryNow, sendable: false) else {
                continue
            }
            // Every receiver is resolved (so every unresolved one is probed), even once the
            // route is known to stay in user space.
            var subscribers: [FastPath.Subscriber]? = []
            for subscriber in route.subscribers {
                guard let destination = kernelAddress(subscriber.address), destination.family == origin.family,
                      let hop = nextHop(destination.withPort(0), &state, now: now, refresh: refresh, retryNow: retryNow)
                else {
                    subscribers = nil
                    continue
                }
                subscribers?.append(.init(interface: hop.interface, mac: hop.destinationMAC, address: destination, vlan: hop.vlan))
            }
            if let list = subscribers, list.count > FastPath.maxSubscribers { subscribers = nil }
            wanted[ssrc] = Installed(
                room: state.table.rooms[route.room], origin: origin, originVLAN: originHop.vlan, type: route.streamType,
                subscribers: subscribers)
        }
        // Stale routes first: they free room for new ones. Their media counters go with them:
        // kept by room (what the kernel counts between the read and the removal is lost).
        for (ssrc, entry) in state.installed where wanted[ssrc] == nil {
            for fastPath in state.attachments {
                if let media = try? fastPath.routeMedia(source: ssrc) {
                    state.removedMedia[entry.room, default: MediaCounters()] += media
                }
                do throws(FastPathError) { try fastPath.removeRoute(source: ssrc) } catch {
                    if case .noSuchRoute = error { continue }
                    throw .backendUnavailable(.xdp, "removing the route of SSRC \(ssrc) on \(fastPath.interface): \(error)")
                }
            }
            state.installed[ssrc] = nil
        }
        // In SSRC order: when a map fills up, which streams stay in user space is predictable.
        for (ssrc, entry) in wanted.sorted(by: { $0.key < $1.key }) where state.installed[ssrc] != entry {
            var complete = true
            for fastPath in state.attachments {
                do throws(FastPathError) {
                    if let subscribers = entry.subscribers {
                        try fastPath.setRoute(source: ssrc, origin: entry.origin, originVLAN: entry.originVLAN, type: entry.type,
                                              subscribers: subscribers)
                    } else {
                        try fastPath.setUserSpaceRoute(source: ssrc, origin: entry.origin, originVLAN: entry.originVLAN, type: entry.type)
                    }
                } catch {
                    guard case .routesFull = error else {
                        throw .backendUnavailable(.xdp, "route of SSRC \(ssrc) on \(fastPath.interface): \(error)")
                    }
                    // Not in that map: its packets pass up as an unknown SSRC and the slow path,
                    // which has the whole table, forwards them. Retried with every reprogramming.
                    if state.full.insert(ssrc).inserted {
                        logger.warning("xdp: route map of \(fastPath.interface) full, SSRC \(ssrc) forwarded in user space")
                    }
                    complete = false
                }
            }
            if complete {
                state.installed[ssrc] = entry
                state.full.remove(ssrc)
            }
        }
        if !state.removedMedia.isEmpty {
            let rooms = Set(state.table.rooms)
            state.removedMedia = state.removedMedia.filter { rooms.contains($0.key) }
        }
        // Forget next hops no route needs any more (participants that left).
        let referenced = Set(state.table.routes.values.flatMap { route in
            (route.subscribers.map(\.address) + [route.origin]).compactMap { kernelAddress($0)?.withPort(0) }
        })
        for address in state.nextHops.keys where !referenced.contains(address) {
            state.nextHops[address] = nil
        }
    }

    /// The next hop towards `address` if the kernel can send there itself (`sendable`; else any
    /// resolved one: an origin's only gives its VLAN); nil otherwise (unresolved: resolution
    /// started, retried by ``run()``).
    private func nextHop(
        _ address: SocketAddress, _ state: inout State, now: UInt64, refresh: Bool, retryNow: Bool, sendable: Bool = true
    ) -> NextHop? {
        if !refresh, let known = state.nextHops[address], case .success(let hop) = known.hop {
            return sendable ? usable(hop) : hop
        }
        if !refresh, !retryNow, let known = state.nextHops[address], now &- known.resolved < configuration.nextHopRetryInterval.wholeNanoseconds {
            return nil
        }
        let result = Result { () throws(FastPathError) in try NextHop.resolve(address, probe: true) }
        let previous = state.nextHops[address]
        state.nextHops[address] = (result, now)
        switch result {
        case .success(let hop):
            if case .success(let old)? = previous?.hop, old == hop {} else { logger.debug("xdp: \(address.hostDescription) \(hop)") }
            return sendable ? usable(hop) : hop
        case .failure(let error):
            if case .failure(let old)? = previous?.hop, old == error {} else {
                logger.debug("xdp: \(address.hostDescription) stays on the user-space path: \(error)")
            }
            return nil
        }
    }

    /// Loopback and local receivers are left to the stack (the slow path).
    private func usable(_ hop: NextHop) -> NextHop? {
        hop.isLocal || hop.isNoARP ? nil : hop
    }

    public func run() throws(SFUError) {
        try slowPath.run()
    }

    /// Retries unreachable receivers and refreshes next hops from attach to ``close()``,
    /// independently of ``run()``: the kernel forwards whether or not the slow path runs.
    private func startMaintenance() {
        let thread = Thread { [self] in
            while !closing.load(ordering: .acquiring) {
                usleep(UInt32(configuration.nextHopRetryInterval.wholeNanoseconds / 1000))
                do throws(SFUError) {
                    try state.withLock { state throws(SFUError) in try program(&state, now: monotonicNanoseconds()) }
                } catch {
                    logger.warning("xdp: reprogramming failed: \(error)")
                }
            }
            maintenanceDone.store(true, ordering: .releasing)
        }
        thread.name = "groupcast-xdp-routes"
        thread.start()
    }

    /// Routes in the kernel's maps, replicated there and passed to user space (an unreachable
    /// receiver, another family, or more than `GC_MAX_SUBSCRIBERS`).
    public var routeCounts: (kernel: Int, userSpace: Int) {
        state.withLock { state in
            let kernel = state.installed.values.filter { $0.subscribers != nil }.count
            return (kernel, state.installed.count - kernel)
        }
    }

    public func stop() { slowPath.stop() }

    /// The slow path's counters merged with the programs' (summed over CPUs and interfaces):
    /// - received: datagrams to the media port the programs saw (and IP datagrams they dropped
    ///   as malformed before the port could be read, so drops never exceed it), less those they
    ///   passed up, plus what reached the slow path (so a passed packet counts once, when it is
    ///   handled);
    /// - forwarded/echoed: copies sent by the kernel plus the slow path's;
    /// - drops: the programs' drop counters (`drop_<reason>`, by `enum gc_drop`) added to the slow
    ///   path's, reason by reason;
    /// - delay: the slow path's samples and the kernel's (XDP receive to the TC program's last
    ///   copy scheduled, `struct gc_delay_hist`), same buckets;
    /// - rooms: the slow path's per-room media and, per room, the kernel's media counters of its
    ///   routes (`struct gc_media_counters`), those of removed routes included.
    public func statistics() -> ForwarderStatistics {
        if let final = frozen.withLock({ $0 }) { return final }
        var merged = slowPath.statistics()
        let kernel = kernelCounters()
        let passed = kernel["pass_unknown_ssrc"] + kernel["pass_fanout_limit"] + kernel["pass_rtcp"] + kernel["pass_ipv6_ext"]
            + kernel["pass_ip_options"] + kernel["pass_udp_csum"] + kernel["pass_not_local"]
        let seen = kernel["rx"]
        merged.received = (seen > passed ? seen - passed : 0) &+ merged.received
        let kernelSent = kernel["forwarded"] &+ kernel["echoed"]
        merged.forwarded &+= kernel["forwarded"]
        merged.echoed &+= kernel["echoed"]
        merged.inKernel &+= kernelSent
        for reason in DropReason.allCases { merged[reason] &+= kernel["drop_\(reason)"] }
        for delay in kernelDelays() {
            merged.delay.merge(bucketCounts: delay.buckets, count: delay.count, sum: delay.sum, max: delay.max)
        }
        for (room, media) in kernelMedia() { merged.rooms[room, default: MediaCounters()] += media }
        return merged
    }

    /// The kernel's media counters summed per room: installed routes' and removed ones'.
    private func kernelMedia() -> [String: MediaCounters] {
        state.withLock { state in
            var rooms = state.removedMedia
            for (ssrc, entry) in state.installed {
                for fastPath in state.attachments {
                    guard let media = try? fastPath.routeMedia(source: ssrc) else { continue }
                    rooms[entry.room, default: MediaCounters()] += media
                }
            }
            return rooms
        }
    }

    private struct Counters {
        var values: [String: UInt64] = [:]
        subscript(name: String) -> UInt64 { values[name] ?? 0 }
    }

    private func kernelDelays() -> [DelayHistogram] {
        state.withLock { state in state.attachments.compactMap { try? $0.delay() } }
    }

    private func kernelCounters() -> Counters {
        state.withLock { state in
            var counters = Counters()
            for fastPath in state.attachments {
                guard let stats = try? fastPath.stats() else { continue }
                for (name, value) in stats.counters { counters.values[name, default: 0] &+= value }
            }
            return counters
        }
    }

    /// Detaches the programs (removing their pins) and closes the media socket. Idempotent.
    public func close() {
        if !closing.exchange(true, ordering: .acquiringAndReleasing) {
            while !maintenanceDone.load(ordering: .acquiring) { usleep(1000) }
        }
        let final = statistics()
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            for fastPath in state.attachments {
                do { try fastPath.detach() } catch { logger.error("xdp: detaching from \(fastPath.interface): \(error)") }
            }
            state.attachments = []
        }
        frozen.withLock { if $0 == nil { $0 = final } }
        slowPath.close()
    }

    /// The statistics at close (the maps are gone after it).
    private let frozen = Mutex<ForwarderStatistics?>(nil)
}

/// `address` if a `gc_route` can hold it: nil for an IPv4-mapped IPv6 address or a scoped one.
private func kernelAddress(_ address: SocketAddress) -> SocketAddress? {
    switch address {
    case .ipv4: address
    case .ipv6(let a, _, let scope): scope == 0 && a.ipv4Mapped == nil ? address : nil
    }
}

extension SocketAddress {
    /// The same address with `port`.
    fileprivate func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .ipv4(let a, _): .ipv4(a, port: port)
        case .ipv6(let a, _, let scope): .ipv6(a, port: port, scopeID: scope)
        }
    }
}
