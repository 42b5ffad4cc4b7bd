import GroupcastProtocol
/// The SFU's statistics in the Prometheus text exposition format (version 0.0.4), for
/// `groupcast sfu --metrics-listen`. Pure: statistics in, text out.
public enum PrometheusText {
    public static func render(_ s: SFUStatistics) -> String {
        let f = s.forwarder
        let backend = "backend=\"\(s.backend)\""
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for sample in samples { lines.append(sample.labels.isEmpty ? "\(name) \(sample.value)" : "\(name){\(sample.labels)} \(sample.value)") }
        }
        metric("groupcast_sfu_packets_received_total", "counter", "Datagrams received on the media port.", [(backend, "\(f.received)")])
        metric("groupcast_sfu_packets_sent_total", "counter", "Copies sent, by kind.",
               [("\(backend),kind=\"forwarded\"", "\(f.forwarded)"), ("\(backend),kind=\"echo\"", "\(f.echoed)")])
        metric("groupcast_sfu_packets_sent_in_kernel_total", "counter", "Of the copies sent: made by an in-kernel data plane (xdp backend).", [(backend, "\(f.inKernel)")])
        metric("groupcast_sfu_packets_deferred_total", "counter", "Copies queued in a receiver backlog (socket buffer full).", [(backend, "\(f.deferred)")])
        metric("groupcast_sfu_packets_dropped_total", "counter", "Datagrams or copies dropped, by reason.",
               DropReason.allCases.map { ("\(backend),reason=\"\($0)\"", "\(f[$0])") })
        metric("groupcast_sfu_tx_stalls_total", "counter", "Waits for transmit space in the middle of a batch (ring backend: TX ring or UMEM frames exhausted).",
               [(backend, "\(f.transmitStalls)")])
        metric("groupcast_sfu_tx_stall_seconds_total", "counter", "Time spent in those waits.", [(backend, seconds(f.transmitStallNanoseconds))])
        // The delay histogram as a summary: quantiles from the log-linear buckets.
        let quantiles: [Double] = [0.5, 0.9, 0.99, 0.999]
        metric("groupcast_sfu_processing_delay_seconds", "summary", "Pickup to last copy scheduled, per forwarded packet.",
               quantiles.map { ("\(backend),quantile=\"\($0)\"", seconds(f.delay.quantile($0))) })
        lines.append("groupcast_sfu_processing_delay_seconds_sum{\(backend)} \(seconds(f.delay.sum))")
        lines.append("groupcast_sfu_processing_delay_seconds_count{\(backend)} \(f.delay.count)")
        metric("groupcast_sfu_processing_delay_max_seconds", "gauge", "Largest processing delay seen.",
               [(backend, seconds(f.delay.count == 0 ? 0 : f.delay.max))])
        metric("groupcast_sfu_cpu_seconds_total", "counter", "CPU time of the SFU process, by mode.",
               [("mode=\"user\"", seconds(s.cpu.user * 1000)), ("mode=\"system\"", seconds(s.cpu.system * 1000))])
        metric("groupcast_sfu_participants", "gauge", "Participants in all rooms.", [("", "\(s.control.participants)")])
        metric("groupcast_sfu_routes", "gauge", "Routes (source SSRCs) in the routing table.", [("", "\(s.control.routes)")])
        metric("groupcast_sfu_control_requests_total", "counter", "Control datagrams handled.", [("", "\(s.control.requests)")])
        metric("groupcast_sfu_control_errors_total", "counter", "ERROR replies sent, by code.",
               ControlErrorCode.allCases.map { ("code=\"\($0.metricName)\"", "\(s.control.errors[$0] ?? 0)") })
        metric("groupcast_sfu_control_challenges_total", "counter", "CHALLENGE replies sent (REGISTER without a valid cookie, PROBE).", [("", "\(s.control.challenges)")])
        metric("groupcast_sfu_control_rate_limited_total", "counter", "Control requests dropped: source address over its rate limit.", [("", "\(s.control.rateLimited)")])
        metric("groupcast_sfu_control_unanswered_total", "counter", "Control datagrams too short to answer an unverified sender.", [("", "\(s.control.unanswered)")])
        // Room names are A-Z a-z 0-9 . _ - (the protocol's rule): safe as label values.
        let rooms = s.control.rooms.sorted { $0.key < $1.key }
        metric("groupcast_sfu_room_participants", "gauge", "Participants per room.", rooms.map { ("room=\"\($0.key)\"", "\($0.value.participants)") })
        metric("groupcast_sfu_room_joins_total", "counter", "Participants that joined, per room (a room created on first join starts at 0).",
               rooms.map { ("room=\"\($0.key)\"", "\($0.value.registered)") })
        metric("groupcast_sfu_participants_removed_total", "counter", "Participants removed, by cause.",
               [("cause=\"leave\"", "\(s.control.left)"), ("cause=\"timeout\"", "\(s.control.expired)")])
        return lines.joined(separator: "\n") + "\n"
    }

    /// Nanoseconds as decimal seconds, exactly (no floating point rounding).
    static func seconds(_ nanoseconds: UInt64) -> String {
        let fraction = String(nanoseconds % 1_000_000_000)
        return "\(nanoseconds / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction
    }
}

