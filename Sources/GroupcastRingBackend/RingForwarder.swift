import CGroupcastRing
import Foundation
import Glibc
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization
import SystemPackage

/// ``RingMode`` (GroupcastSFU, the forwarder's configuration) in the ring core's terms.
extension RingMode {
    var cValue: Int32 {
        switch self {
        case .automatic: Int32(GC_RING_MODE_AUTO.rawValue)
        case .copy: Int32(GC_RING_MODE_COPY.rawValue)
        case .zeroCopy: Int32(GC_RING_MODE_ZEROCOPY.rawValue)
        }
    }
}

/// One interface the ring serves: its AF_XDP socket and how it is bound.
public struct RingPort: Hashable, Sendable, CustomStringConvertible {
    public var interface: String
    public var ifindex: UInt32
    public var queue: UInt32
    /// `XDP_ZEROCOPY` (else `XDP_COPY`).
    public var zeroCopy: Bool
    /// The redirect program runs in driver mode (else generic/skb mode).
    public var nativeXDP: Bool
    /// `SO_BUSY_POLL` as the kernel holds it (`.zero`: the port wakes on interrupts).
    public var busyPoll: Duration = .zero

    public var description: String {
        "\(interface) queue \(queue) \(zeroCopy ? "zero-copy" : "copy") mode, \(nativeXDP ? "native" : "generic") XDP"
            + (busyPoll > .zero ? ", busy polling \(busyPoll)" : "")
    }
}

/// The `ring` backend (Docs/ring.md): the pktswitch paper's netmap SFU on AF_XDP.
///
/// The C core (`groupcast_ring.h`) owns the rings: per interface a UMEM, fill/completion/RX/TX
/// rings and `bpf/ring.bpf.c`, which moves frames for the media port into the RX ring and passes
/// everything else (the control plane's traffic) to the host stack. This class drives it from one
/// thread: wait, adopt the routing table ``install(_:)`` built (resolving each subscriber's next
/// hop on the caller's thread) and handed over, process a batch; and publishes the core's counters
/// as ``ForwarderStatistics``. Subscribers whose next hop is not known yet are looked up again by
/// a thread of their own (`groupcast-ring-routes`), which hands over a rebuilt table the same way:
/// the forwarding thread never waits for rtnetlink.
///
/// The media port stays bound by an ordinary UDP socket that never reads: it reserves the port (and
/// resolves port 0) in the host stack, so nothing else takes it and frames the program passes on
/// (none, normally) do not draw ICMP port-unreachable errors.
public final class RingForwarder: Forwarder {
    public let backend = ForwarderBackend.ring
    public let configuration: ForwarderConfiguration
    /// The interfaces served, in the order the core numbers them.
    public let ports: [RingPort]
    private let reservation: GroupSocket
    private let logger: Logger
    private nonisolated(unsafe) let ring: OpaquePointer
    /// Read by the C core while it waits for TX space; written by ``stop()``.
    private nonisolated(unsafe) let stopFlag: UnsafeMutablePointer<Int32>
    /// Held by ``install(_:)`` and the next-hop retry from building a table until the forwarder
    /// thread took it, and by ``close()``: the ring is never freed under a handover.
    private let installing = Mutex(InstallState())
    /// The generation of the table the forwarder thread installed (the core's table names it).
    private let generation = Atomic<UInt64>(0)
    private let closed = Atomic<Bool>(false)

    struct InstallState {
        var closed = false
        /// Addresses whose resolution was already waited for once.
        var waitedFor = Set<[UInt8]>()
        /// What the core table offered last was built from; its unresolved next hops are retried.
        var offered: Offered?
    }

    struct Offered {
        var table: RoutingTable
        var hops: NextHops
        var unresolved: Int
    }

    /// How long ``install(_:)`` waits for the forwarder thread to take a table (it wakes at once
    /// unless a batch is stuck waiting for TX space).
    static let handoverTimeoutMilliseconds: Int32 = 300

    /// Reserves `configuration.mediaAddress`'s port and opens the rings on `configuration.interfaces`
    /// (empty: those serving the media address).
    public init(configuration: ForwarderConfiguration, logger: Logger) throws(SFUError) {
        self.configuration = configuration
        self.logger = logger
        guard geteuid() == 0 else {
            throw .backendUnavailable(.ring, "AF_XDP and XDP need root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW)")
        }
        do {
            reservation = try GroupSocket(
                bindingTo: configuration.mediaAddress, backend: .socket, options: .init(nonBlocking: true, receiveBufferSize: 4096),
                logger: logger)
        } catch {
            throw .socket("media port reservation on \(configuration.mediaAddress)", error)
        }
        let port: UInt16
        do { port = try reservation.localAddress.port } catch {
            try? reservation.close()
            throw .socket("getsockname(media)", error)
        }
        let interfaces: [String]
        do throws(SFUError) {
            interfaces = configuration.interfaces.isEmpty
                ? try InterfaceAddresses.interfaces(serving: configuration.mediaAddress) : configuration.interfaces
        } catch {
            try? reservation.close()
            throw error
        }

        if let loopback = interfaces.first(where: InterfaceAddresses.isLoopback), !Self.loopbackAcceptsOwnFrames() {
            try? reservation.close()
            throw .backendUnavailable(
                .ring,
                "on \(loopback), frames sent from AF_XDP re-enter the stack as received and are dropped as martians: "
                    + "set net.ipv4.conf.{all,lo}.route_localnet=1 and accept_local=1 (in a test namespace), or serve a real interface")
        }
        var options = gc_ring_opts()
        gc_ring_opts_init(&options)
        options.port = port
        options.queue = configuration.ringQueue
        options.ring_size = configuration.ringSize
        options.frame_count = configuration.ringFrameCount
        options.frame_size = configuration.ringFrameSize
        options.batch = UInt32(clamping: configuration.batchSize)
        options.mode = configuration.ringMode.cValue
        options.shed_vhq_permille = UInt32((configuration.shedVHQAt * 1000).rounded())
        options.shed_vsq_permille = UInt32((configuration.shedVSQAt * 1000).rounded())
        options.busy_poll_us = Self.microseconds(configuration.ringBusyPoll)
        options.coalesce_us = Self.microseconds(configuration.ringCoalesce)
        // A reservation bound to one address: only media sent to it is served, with it as the
        // copies' source (the kernel would deliver nothing else to that socket either).
        if let bound = try? reservation.localAddress, !bound.addressBytes.allSatisfy({ $0 == 0 }) {
            options.listen.family = UInt8(bound.family == .ipv4 ? GC_FAMILY_IPV4 : GC_FAMILY_IPV6)
            withUnsafeMutableBytes(of: &options.listen.addr) { $0.copyBytes(from: bound.addressBytes) }
        }
        var error = gcfp_error()
        var opened: OpaquePointer?
        guard gc_ring_open(&options, &opened, &error) == 0, let opened else {
            try? reservation.close()
            throw .configuration("ring: \(Self.message(error))")
        }
        var ports: [RingPort] = []
        for name in interfaces {
            let index = gc_ring_add_interface(opened, name, &error)
            guard index >= 0 else {
                gc_ring_close(opened)
                try? reservation.close()
                throw .backendUnavailable(.ring, Self.message(error))
            }
            var info = gc_ring_port_info()
            gc_ring_port_info(opened, index, &info)
            let port = RingPort(
                interface: name, ifindex: info.ifindex, queue: info.queue, zeroCopy: info.zerocopy != 0, nativeXDP: info.xdp_native != 0,
                busyPoll: .microseconds(info.busy_poll_us))
            if info.zerocopy_errno != 0 {
                logger.info("ring: \(name) queue \(info.queue): no zero-copy (\(String(cString: strerror(info.zerocopy_errno)))), using copy mode")
            }
            if info.busy_poll_errno != 0 {
                let option = withUnsafeBytes(of: info.busy_poll_refused) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                logger.warning(
                    "ring: \(name): busy polling refused (\(option): \(String(cString: strerror(info.busy_poll_errno)))); this port wakes on interrupts")
            }
            logger.info("ring: \(port)")
            ports.append(port)
        }
        ring = opened
        self.ports = ports
        stopFlag = .allocate(capacity: 1)
        stopFlag.initialize(to: 0)
        startNextHopRetry()
    }

    deinit {
        close()
        stopFlag.deallocate()
    }

    /// Whether `lo` takes back what the ring transmits on it (see the error above).
    static func loopbackAcceptsOwnFrames() -> Bool {
        func enabled(_ setting: String) -> Bool {
            ["all", "lo"].contains { device in
                guard let file = fopen("/proc/sys/net/ipv4/conf/\(device)/\(setting)", "r") else { return false }
                defer { fclose(file) }
                var value: Int32 = 0
                return withUnsafeMutablePointer(to: &value) { fscanf_int(file, $0) } && value == 1
            }
        }
        return enabled("route_localnet") && enabled("accept_local")
    }

    /// `duration` in whole microseconds for the core (the settings cap it at 100 ms).
    static func microseconds(_ duration: Duration) -> UInt32 {
        UInt32(clamping: duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
    }

    static func message(_ error: gcfp_error) -> String {
        var error = error
        return withUnsafeBytes(of: &error.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    public var localAddress: SocketAddress {
        get throws(SFUError) {
            do { return try reservation.localAddress } catch { throw .socket("getsockname(media)", error) }
        }
    }

    /// Builds the core's table here, on the caller's (control) thread: the next-hop lookups and
    /// the wait for a fresh neighbour stay off the forwarder thread. Returns once the forwarder
    /// thread has adopted it, so a client answered after this call finds its routes (bounded: a
    /// warning after ``handoverTimeoutMilliseconds``); before ``run()`` starts, at once.
    public func install(_ table: RoutingTable) throws(SFUError) {
        installing.withLock { state in
            guard !state.closed else { return }
            var hops = nextHops(of: table)
            waitForFresh(&hops, of: table, waitedFor: &state.waitedFor)
            offer(table, hops: hops, &state)
        }
    }

    /// Builds the core's table for `table` and hands it to the forwarder thread (under
    /// `installing`).
    private func offer(_ table: RoutingTable, hops: NextHops, _ state: inout InstallState) {
        var hops = hops
        guard let (core, unresolved) = buildCore(table, hops: &hops) else { return }
        gc_ring_table_set_generation(core, table.generation)
        state.offered = Offered(table: table, hops: hops, unresolved: unresolved)
        if gc_ring_offer(ring, core, Self.handoverTimeoutMilliseconds) == Int32(GC_RING_TIMED_OUT.rawValue) {
            logger.warning(
                "ring: the forwarder thread has not taken routing table \(table.generation) within \(Self.handoverTimeoutMilliseconds) ms; until it does, media of new participants counts as unknown SSRCs")
        }
    }

    /// Looks up the next hops still unknown in the table offered last, every
    /// ``ForwarderConfiguration/nextHopRetryInterval`` from open to ``close()``, and offers a
    /// rebuilt table once one is known (the control plane's replies make the kernel learn them).
    /// Off the forwarder thread: with many unresolved subscribers the lookups take milliseconds.
    private func startNextHopRetry() {
        let thread = Thread { [self] in
            var running = true
            while running {
                usleep(UInt32(clamping: configuration.nextHopRetryInterval.wholeNanoseconds / 1000))
                running = installing.withLock { state in
                    guard !state.closed else { return false }
                    guard let offered = state.offered, offered.unresolved > 0 else { return true }
                    var hops = offered.hops
                    if !resolveMissing(&hops, of: offered.table).isEmpty { offer(offered.table, hops: hops, &state) }
                    return true
                }
            }
        }
        thread.name = "groupcast-ring-routes"
        thread.start()
    }

    public func stop() {
        // A plain store the C core polls as `const volatile int *`.
        gc_ring_store_int(stopFlag, 1)
    }

    public func close() {
        // Waits for an install() handing a table over; later ones do nothing.
        installing.withLock { $0.closed = true }
        // Under the statistics lock: statistics() never reads a closed ring.
        let wasOpen = published.withLock { last -> Bool in
            guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return false }
            last = readStatistics()
            gc_ring_close(ring)
            return true
        }
        if wasOpen { try? reservation.close() }
    }

    public func statistics() -> ForwarderStatistics {
        published.withLock { last in
            if !closed.load(ordering: .acquiring) { last = readStatistics() }
            return last
        }
    }

    /// The latest statistics; after ``close()``, the final ones.
    private let published = Mutex(ForwarderStatistics())

    private func readStatistics() -> ForwarderStatistics {
        let raw = UnsafeMutablePointer<gc_ring_stats>.allocate(capacity: 1)
        defer { raw.deallocate() }
        gc_ring_stats(ring, raw)
        var statistics = Self.convert(raw)
        statistics.tableGeneration = generation.load(ordering: .relaxed)
        statistics.rooms = roomMedia()
        return statistics
    }

    /// The core's per-room media counters, as last published.
    private func roomMedia() -> [String: MediaCounters] {
        var rooms: [String: MediaCounters] = [:]
        var name = [CChar](repeating: 0, count: Int(GC_RING_ROOM_NAME_MAX) + 1)
        var media = gc_media_counters()
        var index: Int32 = 0
        while index < gc_ring_room_media(ring, index, &name, &media) {
            rooms[String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)] = MediaCounters(media)
            index += 1
        }
        return rooms
    }

    static func convert(_ raw: UnsafeMutablePointer<gc_ring_stats>) -> ForwarderStatistics {
        var statistics = ForwarderStatistics()
        // Frames too long for a UMEM frame never reach the rings; the socket backends count
        // them as received and truncated.
        statistics.received = raw.pointee.received + raw.pointee.too_big
        statistics.forwarded = raw.pointee.forwarded
        statistics.echoed = raw.pointee.echoed
        // The core counts by enum gc_drop, as DropReason.
        withUnsafeBytes(of: &raw.pointee.drops) { bytes in
            for (index, count) in bytes.bindMemory(to: UInt64.self).enumerated() { statistics.drops[index] = count }
        }
        statistics[.tooLarge] += raw.pointee.too_big
        statistics.transmitStalls = raw.pointee.tx_stalls
        statistics.transmitStallNanoseconds = raw.pointee.tx_stall_ns
        let histogram = withUnsafeBytes(of: &raw.pointee.delay_buckets) { bytes in
            LatencyHistogram(
                buckets: bytes.bindMemory(to: UInt64.self), count: raw.pointee.delay_count, sum: raw.pointee.delay_sum,
                min: raw.pointee.delay_min, max: raw.pointee.delay_max)
        }
        if let histogram { statistics.delay = histogram }
        return statistics
    }

    public func run() throws(SFUError) {
        // The table offered last (install() or the next-hop retry), once the core has it.
        func adopt() {
            guard gc_ring_adopt(ring) == 1 else { return }
            generation.store(gc_ring_installed_generation(ring), ordering: .relaxed)
        }
        gc_ring_serving(ring, 1)
        defer { gc_ring_serving(ring, 0) }
        adopt()
        var lastAddresses = monotonicNanoseconds()
        while gc_ring_load_int(stopFlag) == 0 {
            // The ports serve media sent to their addresses: follow addresses added or removed.
            if monotonicNanoseconds() &- lastAddresses > 2_000_000_000 {
                lastAddresses = monotonicNanoseconds()
                var err = gcfp_error()
                if gc_ring_refresh_addresses(ring, &err) != 0 {
                    logger.warning("ring: re-reading the interfaces' addresses: \(Self.message(err))")
                }
            }
            // An offer ends the wait (the core's eventfd).
            let ready = gc_ring_wait(ring, 50)
            if ready < 0 {
                throw .socket("poll(AF_XDP)", .systemCall(call: "poll", errno: Errno(rawValue: -ready)))
            }
            // A table offered while we slept applies to what woke us.
            adopt()
            gc_ring_process(ring, stopFlag)
        }
        gc_ring_process(ring, stopFlag)
    }

    struct NextHopEntry: Equatable {
        var ifindex: UInt32
        var mac: [UInt8]
        /// The tag the copy carries: the route goes through that 802.1Q VLAN device (0: none).
        var vlan: UInt16
    }

    /// The VLAN of the route towards `address` (0: untagged), known once the route is, whether or
    /// not its neighbour is; nil without a route.
    private func routeVLAN(to address: SocketAddress) -> UInt16? {
        var out = gcfp_nexthop()
        var error = gcfp_error()
        let family = UInt8(address.family == .ipv4 ? GC_FAMILY_IPV4 : GC_FAMILY_IPV6)
        let result = address.addressBytes.withUnsafeBytes { raw in
            gcfp_resolve_nexthop(family, raw.baseAddress, 0, &out, &error)
        }
        return result == 0 || result == -Int32(GCFP_ERR_NEIGH_UNRESOLVED.rawValue) ? out.vlan_id : nil
    }

    /// The egress interface and next-hop MAC towards `address` (rtnetlink, groupcast_nexthop.h),
    /// asking the kernel to resolve a neighbour it does not know yet; `nil` while unresolved, or
    /// when the route leaves through an interface the ring does not serve.
    private func nextHop(for address: SocketAddress) -> NextHopEntry? {
        var out = gcfp_nexthop()
        var error = gcfp_error()
        let family = UInt8(address.family == .ipv4 ? GC_FAMILY_IPV4 : GC_FAMILY_IPV6)
        let result = address.addressBytes.withUnsafeBytes { raw in
            gcfp_resolve_nexthop(family, raw.baseAddress, UInt32(GCFP_RESOLVE_PROBE), &out, &error)
        }
        guard result == 0 else {
            logger.debug("ring: next hop of \(address): \(Self.message(error))")
            return nil
        }
        guard ports.contains(where: { $0.ifindex == out.ifindex }) else {
            logger.debug("ring: \(address) is reached through interface \(out.ifindex), which the ring does not serve")
            return nil
        }
        return NextHopEntry(ifindex: out.ifindex, mac: withUnsafeBytes(of: &out.dst_mac) { Array($0) }, vlan: out.vlan_id)
    }

    /// Next hops by address (nil: unresolved).
    typealias NextHops = [[UInt8]: NextHopEntry?]

    /// Every subscriber's next hop; the kernel was asked to resolve those it does not know (probe).
    private func nextHops(of table: RoutingTable) -> NextHops {
        var hops: NextHops = [:]
        for route in table.routes.values {
            for subscriber in route.subscribers where hops[subscriber.address.addressBytes] == nil {
                hops[subscriber.address.addressBytes] = nextHop(for: subscriber.address)
            }
        }
        return hops
    }

    /// Subscribers the kernel has not resolved yet (a static participant nobody has talked to):
    /// like the stack holding a packet for ARP, give each a moment once per address (up to 200
    /// ms, `waitedFor` remembers) before the first packets would be lost.
    private func waitForFresh(_ hops: inout NextHops, of table: RoutingTable, waitedFor: inout Set<[UInt8]>) {
        let fresh = Set(hops.compactMap { key, hop in hop == nil && !waitedFor.contains(key) ? key : nil })
        guard !fresh.isEmpty else { return }
        let deadline = monotonicNanoseconds() + 200_000_000
        var pending = fresh
        while !pending.isEmpty && monotonicNanoseconds() < deadline {
            usleep(2_000)
            pending.subtract(resolveMissing(&hops, of: table, among: pending))
        }
        waitedFor.formUnion(fresh)
    }

    /// Looks up, once each, the subscriber addresses of `table` that `hops` has no next hop for
    /// (of `candidates` only, when given); records those found. Returns the addresses learned.
    private func resolveMissing(_ hops: inout NextHops, of table: RoutingTable, among candidates: Set<[UInt8]>? = nil) -> Set<[UInt8]> {
        var tried = Set<[UInt8]>()
        var learned = Set<[UInt8]>()
        for route in table.routes.values {
            for subscriber in route.subscribers {
                let key = subscriber.address.addressBytes
                guard (hops[key] ?? nil) == nil, candidates?.contains(key) ?? true, tried.insert(key).inserted else { continue }
                guard let hop = nextHop(for: subscriber.address) else { continue }
                hops[key] = hop
                learned.insert(key)
            }
        }
        return learned
    }

    /// The core's table for `table` (nil: allocation failed, logged), and how many subscribers
    /// have no next hop in it.
    private func buildCore(_ table: RoutingTable, hops: inout NextHops) -> (core: OpaquePointer, unresolved: Int)? {
        guard let core = gc_ring_table_new(UInt32(max(1, table.routes.count)), table.echo ? 1 : 0) else {
            logger.error("ring: routing table allocation failed; keeping the previous one")
            return nil
        }
        // The rooms, for the core's per-room media counters (table.rooms indexes them alike).
        let roomIndices = table.rooms.map { name in Int(name.withCString { gc_ring_table_add_room(core, $0) }) }
        var unresolved = 0
        for route in table.routes.values.sorted(by: { $0.ssrc < $1.ssrc }) {
            var subscribers: [gc_subscriber] = []
            for subscriber in route.subscribers {
                var entry = gc_subscriber()
                entry.port = subscriber.address.port.bigEndian
                entry.family = UInt8(subscriber.address.family == .ipv4 ? GC_FAMILY_IPV4 : GC_FAMILY_IPV6)
                withUnsafeMutableBytes(of: &entry.addr) { $0.copyBytes(from: subscriber.address.addressBytes) }
                let key = subscriber.address.addressBytes
                let hop = hops[key] ?? nextHop(for: subscriber.address)
                hops[key] = hop
                if let hop {
                    entry.ifindex = hop.ifindex
                    entry.vlan_id = hop.vlan
                    withUnsafeMutableBytes(of: &entry.dst_mac) { $0.copyBytes(from: hop.mac) }
                } else {
                    unresolved += 1
                }
                subscribers.append(entry)
            }
            // The origin check includes the VLAN the origin is reached through; without a route
            // to it the stream is not served (its packets count as an unknown SSRC). An origin
            // that also subscribes was resolved above: its hop already says.
            guard let originVLAN = (hops[route.origin.addressBytes] ?? nil)?.vlan ?? routeVLAN(to: route.origin) else {
                logger.debug("ring: no route to the origin \(route.origin) of SSRC \(route.ssrc)")
                continue
            }
            var origin = [UInt8](repeating: 0, count: 16)
            origin.replaceSubrange(0..<route.origin.addressBytes.count, with: route.origin.addressBytes)
            let family = UInt8(route.origin.family == .ipv4 ? GC_FAMILY_IPV4 : GC_FAMILY_IPV6)
            let result = subscribers.withUnsafeBufferPointer { subs in
                gc_ring_table_add(
                    core, route.ssrc, family, route.streamType.rawValue, origin, route.origin.port.bigEndian, originVLAN,
                    subs.baseAddress, UInt32(subs.count))
            }
            if result != 0 { logger.error("ring: route for SSRC \(route.ssrc) refused (\(gcfp_code_name(-result).map { String(cString: $0) } ?? "\(result)"))") }
            if result == 0, roomIndices[route.room] >= 0 { gc_ring_table_route_room(core, route.ssrc, Int32(roomIndices[route.room])) }
        }
        if unresolved > 0 { logger.debug("ring: \(unresolved) subscribers without a known next hop yet") }
        return (core, unresolved)
    }
}

extension SocketAddress {
    /// The address in network byte order: 4 bytes (IPv4) or 16 (IPv6).
    var addressBytes: [UInt8] {
        switch self {
        case .ipv4(let address, _): address.bytes
        case .ipv6(let address, _, _): address.bytes
        }
    }
}

/// Which interfaces hold which addresses (`getifaddrs`).
enum InterfaceAddresses {
    static func isLoopback(_ name: String) -> Bool {
        var result = false
        forEach { ifa in
            if String(cString: ifa.ifa_name) == name { result = result || (ifa.ifa_flags & UInt32(IFF_LOOPBACK)) != 0 }
        }
        return result
    }

    static func forEach(_ body: (ifaddrs) -> Void) {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            body(entry.pointee)
            cursor = entry.pointee.ifa_next
        }
    }

    /// The interface holding `address`, or for the wildcard every interface that is up and has an
    /// address, loopback excluded.
    static func interfaces(serving address: SocketAddress) throws(SFUError) -> [String] {
        let wildcard = address.addressBytes.allSatisfy { $0 == 0 }
        var names: [String] = []
        forEach { ifa in
            guard let sa = ifa.ifa_addr, ifa.ifa_flags & UInt32(IFF_UP) != 0 else { return }
            let name = String(cString: ifa.ifa_name)
            var bytes: [UInt8] = []
            if sa.pointee.sa_family == sa_family_t(AF_INET) {
                bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    withUnsafeBytes(of: sin.pointee.sin_addr) { Array($0) }
                }
            } else if sa.pointee.sa_family == sa_family_t(AF_INET6) {
                bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafeBytes(of: sin6.pointee.sin6_addr) { Array($0) }
                }
            } else {
                return
            }
            let loopback = ifa.ifa_flags & UInt32(IFF_LOOPBACK) != 0
            let match = wildcard ? !loopback : bytes == address.addressBytes
            if match && !names.contains(name) { names.append(name) }
        }
        guard !names.isEmpty else {
            throw .configuration(
                wildcard ? "ring: no interface is up with an address (give the interfaces explicitly)"
                    : "ring: no interface holds \(address)")
        }
        return names
    }
}

/// Reads one decimal integer (`fscanf` is variadic and not callable from Swift).
private func fscanf_int(_ file: UnsafeMutablePointer<FILE>, _ value: UnsafeMutablePointer<Int32>) -> Bool {
    var buffer = [CChar](repeating: 0, count: 32)
    guard fgets(&buffer, 32, file) != nil else { return false }
    value.pointee = atoi(buffer)
    return true
}
