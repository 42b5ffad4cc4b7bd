import CGroupcastLayout
import GroupcastProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Monotonic time in nanoseconds (`clock_gettime(CLOCK_MONOTONIC)`), shared by every network
/// namespace of the host, so a client can stamp a packet and another process can read the stamp.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

extension Duration {
    /// The duration in whole nanoseconds, as ``monotonicNanoseconds()`` counts; 0 if negative.
    public var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}

/// A histogram of non-negative integer samples (nanoseconds) with about 3% relative error:
/// exact below 64, then 32 sub-buckets per power of two. Fixed size, no allocation per sample.
/// The buckets are those of every data plane (`groupcast_layout.h`: `GC_DELAY_*`,
/// `gc_delay_bucket()`), so their counts merge exactly.
public struct LatencyHistogram: Hashable, Sendable {
    static let exactLimit = UInt64(GC_DELAY_EXACT)
    static let subBuckets = Int(GC_DELAY_SUB_BUCKETS)
    static let bucketCount = Int(GC_DELAY_BUCKETS)

    private var buckets: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var sum: UInt64 = 0
    public private(set) var min: UInt64 = .max
    public private(set) var max: UInt64 = 0

    public init() {
        buckets = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    /// A histogram from raw bucket counts kept elsewhere with the same bucketing (the ring
    /// backend's C core, `GC_DELAY_BUCKETS`); `nil` when `buckets` has another size.
    public init?(buckets: some Collection<UInt64>, count: UInt64, sum: UInt64, min: UInt64, max: UInt64) {
        guard buckets.count == Self.bucketCount else { return nil }
        self.buckets = Array(buckets)
        self.count = count
        self.sum = sum
        self.min = count == 0 ? .max : min
        self.max = max
    }

    @inline(__always)
    static func index(of value: UInt64) -> Int { Int(gc_delay_bucket(value)) }

    /// The largest value that falls in bucket `index` (the inverse of `gc_delay_bucket()`).
    static func upperBound(of index: Int) -> UInt64 {
        if index < Int(exactLimit) { return UInt64(index) }
        let exponent = (index - Int(exactLimit)) / subBuckets + Int(GC_DELAY_EXACT_SHIFT)
        let top = UInt64((index - Int(exactLimit)) % subBuckets + subBuckets)
        let shift = UInt64(exponent - Int(GC_DELAY_SUB_SHIFT))
        let upper = (top + 1) << shift
        return upper == 0 ? .max : upper - 1  // the last bucket ends at UInt64.max
    }

    @inline(__always)
    public mutating func record(_ value: UInt64) {
        buckets[Self.index(of: value)] &+= 1
        count &+= 1
        sum &+= value
        if value < min { min = value }
        if value > max { max = value }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for index in buckets.indices { buckets[index] &+= other.buckets[index] }
        count &+= other.count
        sum &+= other.sum
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }

    /// Adds samples recorded elsewhere with this histogram's buckets (the in-kernel path's
    /// `struct gc_delay_hist`, whose layout follows ``index(of:)``): per-bucket counts from bucket
    /// 0, their count, sum and largest value.
    public mutating func merge(bucketCounts: [UInt64], count: UInt64, sum: UInt64, max: UInt64) {
        guard count > 0 else { return }
        precondition(bucketCounts.count <= buckets.count, "\(bucketCounts.count) buckets, this histogram has \(buckets.count)")
        var lowest: UInt64?
        for (index, n) in bucketCounts.enumerated() where n > 0 {
            buckets[index] &+= n
            if lowest == nil { lowest = index == 0 ? 0 : Self.upperBound(of: index - 1) + 1 }
        }
        self.count &+= count
        self.sum &+= sum
        self.min = Swift.min(self.min, lowest ?? 0)
        self.max = Swift.max(self.max, max)
    }

    /// Bucket layout parameters, for sources that fill the same buckets (tests compare them).
    public static var layout: (exactLimit: Int, subBuckets: Int, bucketCount: Int) {
        (Int(exactLimit), subBuckets, bucketCount)
    }

    /// The bucket `value` falls in.
    public static func bucket(of value: UInt64) -> Int { index(of: value) }

    /// The value at quantile `q` (0...1): the upper bound of the bucket holding that sample,
    /// never above the largest sample seen. 0 when empty.
    public func quantile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return Swift.min(Self.upperBound(of: index), max) }
        }
        return max
    }

    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// The samples recorded since `earlier` (a previous copy of this histogram), bucket by
    /// bucket: each non-empty bucket's value range and how many samples it gained. For exporters
    /// that keep their own coarser buckets (the Prometheus histogram of `groupcast sfu`).
    public func samples(since earlier: LatencyHistogram) -> [(lowest: UInt64, highest: UInt64, count: UInt64)] {
        var gained: [(lowest: UInt64, highest: UInt64, count: UInt64)] = []
        for index in buckets.indices where buckets[index] > earlier.buckets[index] {
            let lowest = index == 0 ? 0 : Self.upperBound(of: index - 1) + 1
            gained.append((lowest, Self.upperBound(of: index), buckets[index] - earlier.buckets[index]))
        }
        return gained
    }
}

/// Why the forwarder dropped a datagram (or one copy of it): a view of `enum gc_drop`, the one list
/// of drop reasons every data plane counts (bpf/include/groupcast_layout.h: the XDP/TC programs,
/// the AF_XDP ring core and this process), so a frame two backends drop for the same cause moves
/// the same counter. ``description`` is the reason's name there (`spoofed`, `unknown_ssrc`, ...).
public struct DropReason: RawRepresentable, CaseIterable, Hashable, Sendable, CustomStringConvertible, Codable {
    /// Index in `enum gc_drop`.
    public let rawValue: Int

    public init?(rawValue: Int) {
        guard (0..<Int(GC_DROP_MAX.rawValue)).contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(_ reason: gc_drop) { rawValue = Int(reason.rawValue) }

    /// Every reason, in `enum gc_drop` order.
    public static let allCases: [DropReason] = (0..<Int(GC_DROP_MAX.rawValue)).map { DropReason(rawValue: $0)! }

    /// The reason called `name` in `enum gc_drop` (`spoofed`), if any.
    public init?(name: String) {
        guard let reason = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = reason
    }

    public var description: String { String(cString: gc_drop_name(UInt32(rawValue))) }

    /// Frame or header shorter than it says; RTP shorter than its 12-byte fixed header.
    public static let truncated = DropReason(GC_DROP_TRUNCATED)
    public static let badIPHeader = DropReason(GC_DROP_BAD_IP_HEADER)
    public static let badIPChecksum = DropReason(GC_DROP_BAD_IP_CHECKSUM)
    public static let fragment = DropReason(GC_DROP_FRAGMENT)
    public static let udpLength = DropReason(GC_DROP_UDP_LENGTH)
    public static let udpChecksumZero6 = DropReason(GC_DROP_UDP_CSUM_ZERO6)
    public static let udpChecksum = DropReason(GC_DROP_UDP_CSUM)
    public static let ipOptions = DropReason(GC_DROP_IP_OPTIONS)
    public static let ipv6Extension = DropReason(GC_DROP_IPV6_EXT)
    public static let vlan = DropReason(GC_DROP_VLAN)
    public static let notLocal = DropReason(GC_DROP_NOT_LOCAL)
    /// RTP version bits not 2.
    public static let badRTPVersion = DropReason(GC_DROP_BAD_RTP_VERSION)
    /// RTP CSRC list or header extension past the end, padding count 0 or past the payload.
    public static let badRTPHeader = DropReason(GC_DROP_BAD_RTP_HEADER)
    /// Larger than the receive buffer (cut by the kernel, `MSG_TRUNC`), a UMEM frame or 9216 bytes.
    public static let tooLarge = DropReason(GC_DROP_TOO_LARGE)
    /// RTCP on the media port (not relayed by this SFU).
    public static let rtcp = DropReason(GC_DROP_RTCP)
    /// An SSRC no participant registered.
    public static let unknownSSRC = DropReason(GC_DROP_UNKNOWN_SSRC)
    /// A registered SSRC sent from an address other than its origin.
    public static let spoofed = DropReason(GC_DROP_SPOOFED)
    /// A VHQ packet shed because the SFU was behind.
    public static let shedVHQ = DropReason(GC_DROP_SHED_VHQ)
    /// A VSQ packet shed because the SFU was far behind.
    public static let shedVSQ = DropReason(GC_DROP_SHED_VSQ)
    /// A copy dropped from the head of a receiver's full backlog.
    public static let headDrop = DropReason(GC_DROP_HEAD_DROP)
    /// A copy to a subscriber of the other address family (in-kernel path).
    public static let family = DropReason(GC_DROP_FAMILY)
    /// A copy the kernel refused (unreachable, too large, redirect failed, no next hop).
    public static let sendFailed = DropReason(GC_DROP_SEND_FAILED)
    /// A copy lost because a header rewrite failed (in-kernel path).
    public static let rewriteFailed = DropReason(GC_DROP_REWRITE_FAILED)

    /// The reason `RTPHeader.parse` refused a datagram for.
    public init(_ error: RTPHeader.ParseError) {
        switch error {
        case .tooShort: self = .truncated
        case .badVersion: self = .badRTPVersion
        case .rtcp: self = .rtcp
        case .truncatedHeader, .badPadding: self = .badRTPHeader
        }
    }
}

/// The forwarder's counters and per-packet processing delay at one moment.
public struct ForwarderStatistics: Hashable, Sendable {
    /// Datagrams received on the media port.
    public var received: UInt64 = 0
    /// Copies sent to subscribing participants.
    public var forwarded: UInt64 = 0
    /// Copies sent back to their origin.
    public var echoed: UInt64 = 0
    /// Copies sent to other nodes of the cluster (Docs/cluster.md, "Relay trees").
    public var relayed: UInt64 = 0
    /// Of ``forwarded`` and ``echoed``: copies an in-kernel data plane sent without the SFU
    /// process seeing the packet (the `xdp` backend); the others went through a socket.
    public var inKernel: UInt64 = 0
    /// Copies queued in a receiver backlog because the socket buffer was full.
    public var deferred: UInt64 = 0
    /// Drops by reason (indexed by ``DropReason/rawValue``).
    public var drops: [UInt64] = Array(repeating: 0, count: DropReason.allCases.count)
    /// Media counters per room (by name), of the rooms in the routing table.
    public var rooms: [String: MediaCounters] = [:]
    /// Receive (pickup) to last copy scheduled, nanoseconds, one sample per forwarded packet.
    public var delay = LatencyHistogram()
    /// The routing table generation in use.
    public var tableGeneration: UInt64 = 0
    /// Times the forwarder had to wait for transmit space mid-batch (ring backend: TX ring or
    /// free UMEM frames exhausted; the pktswitch paper's wait for NTX buffers).
    public var transmitStalls: UInt64 = 0
    /// Time spent in those waits, nanoseconds.
    public var transmitStallNanoseconds: UInt64 = 0
    /// Wall time spent inside the backend's send calls (monotonic ns): with the CPU time of the
    /// process, the share of forwarding spent sending (Amdahl's f, Docs/benchmarks.md).
    public var sendNanoseconds: UInt64 = 0
    /// Send calls made (one per packet and backlog flush; a `socket` call loops over recipients).
    public var sendCalls: UInt64 = 0
    /// Wall time the forwarder was busy (from a wake-up to the next wait: receive, forward,
    /// flush), monotonic ns; `sendNanoseconds / busyNanoseconds` is the share of forwarding spent
    /// sending, both inflated alike when the thread is preempted. 0 if the backend does not count it.
    public var busyNanoseconds: UInt64 = 0

    public init() {}

    public subscript(reason: DropReason) -> UInt64 {
        get { drops[reason.rawValue] }
        set { drops[reason.rawValue] = newValue }
    }

    public var sent: UInt64 { forwarded + echoed + relayed }

    /// One copy sent, in the SFU-wide counters.
    @inline(__always)
    public mutating func countSent(_ kind: CopyKind) {
        switch kind {
        case .forwarded: forwarded &+= 1
        case .echo: echoed &+= 1
        case .relayed: relayed &+= 1
        }
    }
    public var dropped: UInt64 { drops.reduce(0, +) }
}

/// The media of one room (or one route): what its participants sent and what went to its
/// receivers. The fields of `struct gc_media_counters` (bpf/include/groupcast_layout.h), which the
/// in-kernel path and the ring core keep per route; a user-space backend counts per room.
public struct MediaCounters: Hashable, Sendable {
    /// Datagrams received from the room's participants: RTP of a registered stream from its origin.
    public var received: UInt64 = 0
    /// Their bytes (the UDP payload: the RTP packet).
    public var receivedBytes: UInt64 = 0
    /// Copies sent to the room's receivers (subscribers) and their bytes.
    public var forwarded: UInt64 = 0
    public var forwardedBytes: UInt64 = 0
    /// Copies sent back to their origin (echo) and their bytes.
    public var echoed: UInt64 = 0
    public var echoedBytes: UInt64 = 0
    /// Copies sent to other nodes of the cluster and their bytes (user-space backends only).
    public var relayed: UInt64 = 0
    public var relayedBytes: UInt64 = 0
    /// Of those datagrams and their copies, the ones dropped: shed (`shed_vhq`, `shed_vsq`) or
    /// copies lost (`head_drop`, `send_failed`, `family`, `rewrite_failed`).
    public var dropped: UInt64 = 0

    public init(
        received: UInt64 = 0, receivedBytes: UInt64 = 0, forwarded: UInt64 = 0, forwardedBytes: UInt64 = 0, echoed: UInt64 = 0,
        echoedBytes: UInt64 = 0, dropped: UInt64 = 0
    ) {
        self.received = received
        self.receivedBytes = receivedBytes
        self.forwarded = forwarded
        self.forwardedBytes = forwardedBytes
        self.echoed = echoed
        self.echoedBytes = echoedBytes
        self.dropped = dropped
    }

    /// The counters of `struct gc_media_counters` (a route's, from the kernel or the ring core).
    public init(_ counters: gc_media_counters) {
        self.init(
            received: counters.received, receivedBytes: counters.received_bytes, forwarded: counters.forwarded,
            forwardedBytes: counters.forwarded_bytes, echoed: counters.echoed, echoedBytes: counters.echoed_bytes,
            dropped: counters.dropped)
    }

    public var isZero: Bool { self == MediaCounters() }

    /// One copy of `bytes` bytes sent: to a receiver, back to its origin or to another node.
    @inline(__always)
    public mutating func countSent(_ kind: CopyKind, bytes: Int) {
        switch kind {
        case .forwarded:
            forwarded &+= 1
            forwardedBytes &+= UInt64(bytes)
        case .echo:
            echoed &+= 1
            echoedBytes &+= UInt64(bytes)
        case .relayed:
            relayed &+= 1
            relayedBytes &+= UInt64(bytes)
        }
    }

    public static func += (total: inout MediaCounters, other: MediaCounters) {
        total.received &+= other.received
        total.receivedBytes &+= other.receivedBytes
        total.forwarded &+= other.forwarded
        total.forwardedBytes &+= other.forwardedBytes
        total.echoed &+= other.echoed
        total.echoedBytes &+= other.echoedBytes
        total.relayed &+= other.relayed
        total.relayedBytes &+= other.relayedBytes
        total.dropped &+= other.dropped
    }
}

/// CPU time of this process (`getrusage(RUSAGE_SELF)`), in microseconds.
public struct CPUTime: Hashable, Sendable {
    public var user: UInt64
    public var system: UInt64

    public init(user: UInt64, system: UInt64) {
        self.user = user
        self.system = system
    }

    public static func now() -> CPUTime {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func micros(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000 + UInt64(t.tv_usec) }
        return CPUTime(user: micros(usage.ru_utime), system: micros(usage.ru_stime))
    }

    /// Percent of one core used between `earlier` and `self` over `elapsed` nanoseconds.
    public func percent(since earlier: CPUTime, elapsed: UInt64) -> (user: Double, system: Double) {
        guard elapsed > 0 else { return (0, 0) }
        let scale = 100_000.0 / Double(elapsed)  // microseconds over nanoseconds, in percent
        return (Double(user &- earlier.user) * scale, Double(system &- earlier.system) * scale)
    }
}
