import GroupUnicast

/// Token buckets per source address in a table of fixed size, for control requests.
///
/// Keyed by IPv4 address or IPv6 /64 (one host has many ports, and an IPv6 host usually a /64),
/// in 4-way sets indexed by a per-process seeded hash, each set replacing its least recently
/// used entry. Memory stays fixed whatever the sources; an evicted source comes back with a full
/// bucket, which only ever errs towards letting a request through.
public struct RateLimiter: Sendable {
    public struct Limit: Hashable, Sendable {
        /// Requests per second refilled.
        public var rate: Double
        /// Bucket size: requests allowed in a burst.
        public var burst: Double
        public init(rate: Double, burst: Double) {
            self.rate = rate
            self.burst = burst
        }
    }

    struct Key: Hashable {
        var family: UInt8
        var bits: UInt64
    }

    struct Slot {
        var key: Key?
        var tokens: Double = 0
        var updated: UInt64 = 0
    }

    public let limit: Limit
    private static let ways = 4
    private var slots: [Slot]
    private let setMask: Int

    /// `sets` (rounded up to a power of two) x 4 entries.
    public init(limit: Limit, sets: Int = 1024) {
        precondition(limit.rate > 0 && limit.burst >= 1, "rate limit needs rate > 0 and burst >= 1")
        self.limit = limit
        var count = 1
        while count < sets { count <<= 1 }
        setMask = count - 1
        slots = Array(repeating: Slot(), count: count * Self.ways)
    }

    /// Entries the table can hold.
    public var capacity: Int { slots.count }

    static func key(_ address: SocketAddress) -> Key {
        switch address {
        case .ipv4(let ip, _): Key(family: 4, bits: UInt64(ip.value))
        case .ipv6(let ip, _, _):
            if let mapped = ip.ipv4Mapped { Key(family: 4, bits: UInt64(mapped.value)) } else { Key(family: 6, bits: ip.high) }
        }
    }

    /// Whether a request from `source` at `now` (monotonic ns) is within its limit; takes a token if so.
    public mutating func allow(_ source: SocketAddress, now: UInt64) -> Bool {
        let key = Self.key(source)
        let base = (key.hashValue & setMask) * Self.ways
        var victim = base
        for index in base..<base + Self.ways {
            if slots[index].key == key {
                return take(index, now: now)
            }
            if slots[index].key == nil || (slots[victim].key != nil && slots[index].updated < slots[victim].updated) {
                victim = index
            }
        }
        slots[victim] = Slot(key: key, tokens: limit.burst, updated: now)
        return take(victim, now: now)
    }

    private mutating func take(_ index: Int, now: UInt64) -> Bool {
        var slot = slots[index]
        if now > slot.updated {
            slot.tokens = min(limit.burst, slot.tokens + Double(now - slot.updated) * limit.rate / 1e9)
        }
        slot.updated = max(slot.updated, now)
        let allowed = slot.tokens >= 1
        if allowed { slot.tokens -= 1 }
        slots[index] = slot
        return allowed
    }
}
