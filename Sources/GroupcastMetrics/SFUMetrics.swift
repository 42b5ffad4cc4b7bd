import Foundation
import GroupcastProtocol
import GroupcastSFU
import Prometheus

/// The SFU's statistics as Prometheus metrics, in a swift-prometheus registry (the swift-metrics
/// Prometheus backend). Every metric is listed in Docs/operations.md.
///
/// The data planes count in their own places (a forwarder thread's counters, BPF maps, the ring's
/// C core), so the registry is brought up to date from ``SFUStatistics`` when it is scraped:
/// counters advance by what the statistics gained since the previous scrape, gauges are set, and
/// the processing-delay samples the data plane recorded since then are added to the Prometheus
/// histogram (each at the middle of its fine bucket: boundaries within the data plane's ~3%).
/// Series the statistics no longer report (a room's, once the room is gone) are unregistered, so
/// rooms that come and go do not accumulate in the registry; a room that comes back starts at 0.
/// A room that went and came back between two scrapes (its ``RoomStatistics/incarnation``
/// changed) keeps its series, which grow by all of the new room's counts: a counter never goes
/// down, and what the new room counted is not taken for what the old one had.
public final class SFUMetrics: @unchecked Sendable {
    /// The registry `/metrics` renders; `MetricsSystem` is bootstrapped onto it too, so metrics
    /// that libraries emit through swift-metrics appear beside these.
    public let registry: PrometheusCollectorRegistry
    private let statistics: @Sendable () -> SFUStatistics
    private let lock = NSLock()
    private var counters: [SeriesKey: (counter: Counter, value: UInt64)] = [:]
    private var gauges: [SeriesKey: Gauge] = [:]
    /// The series the statistics being applied report; the others are unregistered after.
    private var reported: Set<SeriesKey> = []
    /// Each room's incarnation at the previous scrape.
    private var roomIncarnations: [String: UInt64] = [:]
    private var delay: DurationHistogram?
    private var delaySeen = LatencyHistogram()

    /// Processing-delay buckets: from 1 us (a short fan-out) to 100 ms (a stalled SFU).
    public static let delayBuckets: [Duration] = [
        .microseconds(1), .microseconds(2), .microseconds(5), .microseconds(10), .microseconds(20), .microseconds(50),
        .microseconds(100), .microseconds(200), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100),
    ]

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [String]
        init(_ name: String, _ labels: [(String, String)]) {
            self.name = name
            self.labels = labels.flatMap { [$0.0, $0.1] }
        }
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), statistics: @escaping @Sendable () -> SFUStatistics) {
        self.registry = registry
        self.statistics = statistics
    }

    /// Brings the registry up to date and renders it (text format 0.0.4). Concurrent scrapes
    /// are serialised here, so no sample is added twice.
    public func render() -> String {
        lock.lock()
        defer { lock.unlock() }
        update(statistics())
        forgetUnreported()
        return registry.emitToString()
    }

    private static func descriptor(_ name: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "groupcast", subsystem: "sfu", metricName: name, unitName: unit, helpText: help)
    }

    /// Advances the counter `name{labels}` to `value` (a running total kept by the SFU).
    private func count(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        advance(name, unit: "total", help, labels, to: value) { counter, gained in counter.increment(by: Int64(clamping: gained)) }
    }

    /// Advances the seconds counter `name{labels}` to `nanoseconds`.
    private func countSeconds(_ name: String, _ help: String, _ labels: [(String, String)] = [], nanoseconds: UInt64) {
        advance(name, unit: "seconds_total", help, labels, to: nanoseconds) { counter, gained in counter.increment(by: Double(gained) / 1e9) }
    }

    private func advance(
        _ name: String, unit: String, _ help: String, _ labels: [(String, String)], to value: UInt64, increment: (Counter, UInt64) -> Void
    ) {
        let descriptor = Self.descriptor(name, unit: unit, help)
        let key = SeriesKey(descriptor.name, labels)
        reported.insert(key)
        var entry = counters[key] ?? (registry.makeCounter(descriptor: descriptor, labels: labels), 0)
        // Totals only grow; a smaller one means the source restarted (a backend re-created).
        if value < entry.value {
            entry.counter.reset()
            entry.value = 0
        }
        if value > entry.value { increment(entry.counter, value - entry.value) }
        entry.value = value
        counters[key] = entry
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
        let descriptor = Self.descriptor(name, help)
        let key = SeriesKey(descriptor.name, labels)
        reported.insert(key)
        let gauge = gauges[key] ?? registry.makeGauge(descriptor: descriptor, labels: labels)
        gauges[key] = gauge
        gauge.set(value)
    }

    /// Unregisters the series ``update(_:)`` did not report this time: those of a room gone from
    /// the SFU (the registry drops a room with its last participant, the forwarder its media
    /// counters with the routing table that no longer has it).
    private func forgetUnreported() {
        defer { reported.removeAll(keepingCapacity: true) }
        guard counters.count + gauges.count > reported.count else { return }
        for (key, entry) in counters where !reported.contains(key) {
            registry.unregisterCounter(entry.counter)
            counters.removeValue(forKey: key)
        }
        for (key, gauge) in gauges where !reported.contains(key) {
            registry.unregisterGauge(gauge)
            gauges.removeValue(forKey: key)
        }
    }

    /// The counters of a room that is not the one the previous scrape saw (it went and a room of
    /// the same name was created since) count the new room's totals from 0.
    private func rebaseReplacedRooms(_ rooms: [String: RoomStatistics]) {
        let replaced = Set(rooms.compactMap { name, room in roomIncarnations[name].map { $0 == room.incarnation ? nil : name } ?? nil })
        roomIncarnations = rooms.mapValues(\.incarnation)
        guard !replaced.isEmpty else { return }
        func ofReplacedRoom(_ key: SeriesKey) -> Bool {
            stride(from: 0, to: key.labels.count - 1, by: 2).contains { key.labels[$0] == "room" && replaced.contains(key.labels[$0 + 1]) }
        }
        for key in counters.keys where ofReplacedRoom(key) { counters[key]?.value = 0 }
    }

    private func update(_ s: SFUStatistics) {
        rebaseReplacedRooms(s.control.rooms)
        let f = s.forwarder
        let backend = [("backend", "\(s.backend)")]
        count("packets_received", "Datagrams received on the media port.", backend, f.received)
        let sentHelp = "Copies sent, by kind (forwarded to subscribers, echoed to their sender, relayed to other cluster nodes)."
        count("packets_sent", sentHelp, backend + [("kind", "forwarded")], f.forwarded)
        count("packets_sent", sentHelp, backend + [("kind", "echo")], f.echoed)
        count("packets_sent", sentHelp, backend + [("kind", "relayed")], f.relayed)
        count("packets_sent_in_kernel", "Of the copies sent: made by an in-kernel data plane (xdp backend).", backend, f.inKernel)
        count("packets_deferred", "Copies queued in a receiver backlog (socket buffer full).", backend, f.deferred)
        for reason in DropReason.allCases {
            count("packets_dropped", "Datagrams or copies dropped, by reason.", backend + [("reason", "\(reason)")], f[reason])
        }
        count("tx_stalls", "Waits for transmit space in the middle of a batch (ring backend: TX ring or UMEM frames exhausted).", backend, f.transmitStalls)
        countSeconds("tx_stall", "Time spent in those waits.", backend, nanoseconds: f.transmitStallNanoseconds)
        countSeconds("cpu", "CPU time of the SFU process, by mode.", [("mode", "user")], nanoseconds: s.cpu.user * 1000)
        countSeconds("cpu", "CPU time of the SFU process, by mode.", [("mode", "system")], nanoseconds: s.cpu.system * 1000)

        let histogram = delay ?? registry.makeDurationHistogram(
            descriptor: Self.descriptor("processing_delay", unit: "seconds", "Pickup to last copy scheduled, per forwarded packet."),
            labels: backend, buckets: Self.delayBuckets)
        delay = histogram
        if f.delay.count < delaySeen.count { delaySeen = LatencyHistogram() }
        for gained in f.delay.samples(since: delaySeen) {
            let middle = Duration.nanoseconds(Int64(clamping: gained.lowest + (gained.highest - gained.lowest) / 2))
            for _ in 0..<gained.count { histogram.record(middle) }
        }
        delaySeen = f.delay

        gauge("participants", "Participants in all rooms.", [], Double(s.control.participants))
        gauge("routes", "Routes (source SSRCs) in the routing table.", [], Double(s.control.routes))
        gauge("uptime_seconds", "Seconds since the SFU started.", [], Double(s.uptime) / 1e9)
        count("control_requests", "Control datagrams handled.", [], s.control.requests)
        for code in ControlErrorCode.allCases {
            count("control_errors", "ERROR replies sent, by code.", [("code", code.metricName)], s.control.errors[code] ?? 0)
        }
        count("control_challenges", "CHALLENGE replies sent (REGISTER without a valid cookie, PROBE).", [], s.control.challenges)
        count("control_rate_limited", "Control requests dropped: source address over its rate limit.", [], s.control.rateLimited)
        count("control_unanswered", "Control datagrams too short to answer an unverified sender.", [], s.control.unanswered)
        count("participants_removed", "Participants removed, by cause.", [("cause", "leave")], s.control.left)
        count("participants_removed", "Participants removed, by cause.", [("cause", "timeout")], s.control.expired)
        // Room names are A-Z a-z 0-9 . _ - (the protocol's rule): safe as label values.
        for (name, media) in f.rooms.sorted(by: { $0.key < $1.key }) {
            let room = backend + [("room", name)]
            count("room_packets_received", "Media datagrams received from the room's participants (registered streams, from their origin).", room, media.received)
            count("room_bytes_received", "Bytes of those datagrams (UDP payload).", room, media.receivedBytes)
            let roomSentHelp = "Copies of the room's media sent, by kind (forwarded to its receivers, echoed to their sender, relayed to other cluster nodes)."
            count("room_packets_sent", roomSentHelp, room + [("kind", "forwarded")], media.forwarded)
            count("room_packets_sent", roomSentHelp, room + [("kind", "echo")], media.echoed)
            count("room_packets_sent", roomSentHelp, room + [("kind", "relayed")], media.relayed)
            count("room_bytes_sent", "Bytes of those copies (UDP payload), by kind.", room + [("kind", "forwarded")], media.forwardedBytes)
            count("room_bytes_sent", "Bytes of those copies (UDP payload), by kind.", room + [("kind", "echo")], media.echoedBytes)
            count("room_bytes_sent", "Bytes of those copies (UDP payload), by kind.", room + [("kind", "relayed")], media.relayedBytes)
            count("room_packets_dropped", "The room's media datagrams shed and copies lost (shed_vhq, shed_vsq, head_drop, send_failed, family, rewrite_failed).", room, media.dropped)
        }
        for (name, room) in s.control.rooms.sorted(by: { $0.key < $1.key }) {
            let label = [("room", name)]
            gauge("room_participants", "Participants per room.", label, Double(room.participants))
            count("room_joins", "Participants that joined, per room.", label, room.registered)
            count("room_participants_removed", "Participants removed, per room and cause.", label + [("cause", "leave")], room.left)
            count("room_participants_removed", "Participants removed, per room and cause.", label + [("cause", "timeout")], room.expired)
        }
    }
}
