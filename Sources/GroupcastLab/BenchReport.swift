import Foundation
import GroupcastSFU


/// One SFU run's measurements.
struct RunResult: Codable {
    /// `grid` (Figs. 3-5) or `capacity` (broadcast audience search).
    var kind: String
    var backend: String
    /// Participants in the session; in a grid run every packet goes to all of them (n-1 others
    /// and the echo), so it is also the fan-out n of d(n).
    var clients: Int
    var fanout: Int
    /// Packets per second each sending participant offers.
    var rate: Int
    var windowSeconds: Double
    // CPU over the window, percent of one core.
    var cpuUser: Double
    var cpuSystem: Double
    /// Softirq on the SFU's CPU (/proc/stat), all of it: see Docs/benchmarks.md for the attribution.
    var cpuSoftirq: Double
    /// Softirq on the clients' CPU (where the SFU's receive path runs, see the docs).
    var cpuSoftirqClientCPU: Double
    /// Time the SFU's threads waited runnable for a CPU, percent of the window (other load).
    var runqueueWait: Double
    // SFU counters over the window.
    var received: UInt64
    var copies: UInt64
    var dropped: UInt64
    /// Processing delay per packet (receive to last copy scheduled), microseconds; percentiles
    /// over the whole run, mean over the window.
    var delayP50: Double
    var delayP99: Double
    var delayMax: Double
    var delayMean: Double
    /// Share of the forwarder's busy time (wake-up to next wait) spent inside send calls (Amdahl's f).
    var sendShare: Double
    /// SFU CPU (user + system) per received packet and per copy, nanoseconds.
    var cpuNsPerPacket: Double
    var cpuNsPerCopy: Double
    /// The forwarder's busy time (wake-up to next wait) per received packet, nanoseconds: the
    /// forwarding work without the idle process's overhead (poll timeouts, statistics).
    var busyNsPerPacket: Double
    // The clients' view (whole run).
    var clientsSent: UInt64
    var expectedCopies: UInt64
    var deliveredCopies: UInt64
    var deliveredRatio: Double
    var lossPercent: Double
    var loadavgBefore: Double
    var loadavgAfter: Double
}

/// A backend that could not run here, and why.
struct UnavailableBackend: Codable {
    var backend: String
    var reason: String
}

struct DelayFit: Codable {
    var backend: String
    /// d(n) = a + n*b over the grid runs, microseconds; on the p50 and on the mean delay.
    var aP50: Double, bP50: Double, r2P50: Double
    var aMean: Double, bMean: Double
    var points: Int
}

struct CapacityResult: Codable {
    var backend: String
    /// The largest audience that passed (0: none did).
    var maxClients: Int
    /// The smallest that failed (nil: none failed up to the cap).
    var firstFailure: Int?
    var cappedAt: Int?
    var sfuCPUAtMax: Double
    var steps: [Int]
}

struct AmdahlRow: Codable {
    var backend: String
    var clients: Int
    var rate: Int
    /// Micro benchmark: the backend's send method over the sendmsg loop at group size `group`.
    var microMethod: String
    var group: Int
    var s: Double
    /// Share of the socket backend's CPU spent in send calls at this point.
    var f: Double
    var predicted: Double
    /// socket CPU per packet / this backend's CPU per packet, same clients and rate.
    var measuredCPU: Double
    /// socket busy time per packet / this backend's (the time f is a share of).
    var measuredBusy: Double
    /// socket mean delay / this backend's mean delay.
    var measuredDelay: Double
}

struct BenchReport: Codable {
    struct Meta: Codable {
        var label: String
        var kernel: String
        var machine: String
        var cpusOnline: Int
        var sfuCPU: Int?
        var clientCPU: Int?
        var nice: Int
        var quick: Bool
        var windowSeconds: Double
        var warmupSeconds: Double
        var sizes: [String: Int]
        var capacityRate: Int
        var capacityThreshold: Double
        var loadavgStart: String
        var loadavgEnd: String
        var started: String
        var microSource: String?
    }
    var meta: Meta
    var backends: [String]
    var unavailable: [UnavailableBackend]
    var runs: [RunResult]
    var fits: [DelayFit]
    var capacity: [CapacityResult]
    var amdahl: [AmdahlRow]
}

extension RunResult {
    /// One window's measurements from its samples: the SFU process's CPU and the softirq of the
    /// SFU's and the clients' CPUs between `first` and `second` (/proc), the SFU's counters between
    /// `statsFirst` and `statsSecond` (its percentiles from `final`, the whole run), the clients'
    /// reports. Delivered: what the receivers got against what their sequence numbers say was
    /// sent to them from their first packet on (registrations are staggered), and in a grid run
    /// (every participant sends and receives everything, echo included) the echoes against the
    /// packets sent.
    init(
        kind: String, backend: ForwarderBackend, sessionClients: Int, rate: Int, first: ProcSample, second: ProcSample,
        statsFirst: SFUSnapshot, statsSecond: SFUSnapshot, final: SFUSnapshot, clients totals: [ClientStats],
        sfuCPU: Int?, clientCPU: Int?, loadBefore: Double, loadAfter: Double, ticksPerSecond ticks: Double = ProcSample.ticksPerSecond
    ) {
        let elapsed = max(second.time - first.time, 1e-3)
        func percent(_ delta: UInt64) -> Double { Double(delta) / ticks / elapsed * 100 }
        func softirq(_ cpu: Int?) -> Double {
            guard let cpu, let a = first.softirq[cpu], let b = second.softirq[cpu] else { return 0 }
            return percent(b &- a)
        }
        let busyNs = Double(statsSecond.busyNs &- statsFirst.busyNs)
        // The SFU's CPU time is its threads' run time; the ticks only split it into user and system.
        let cpu = CPUWindow(from: first, to: second)
        let cpuNs = cpu.runNanoseconds
        let received = statsSecond.received &- statsFirst.received
        let copies = statsSecond.copies &- statsFirst.copies
        let delayCount = statsSecond.delayCount &- statsFirst.delayCount
        let sent = totals.reduce(0) { $0 + $1.sent }
        let lost = totals.reduce(0) { $0 + $1.lost }, heard = totals.reduce(0) { $0 + $1.received }
        let echoed = totals.reduce(0) { $0 + $1.echoed }
        let expected = kind == "grid" ? heard + lost + sent : heard + lost
        let delivered = kind == "grid" ? heard + echoed : heard
        self.init(
            kind: kind, backend: backend.rawValue, clients: sessionClients, fanout: sessionClients,
            rate: rate, windowSeconds: elapsed,
            cpuUser: cpu.userPercent, cpuSystem: cpu.systemPercent,
            cpuSoftirq: softirq(sfuCPU), cpuSoftirqClientCPU: softirq(clientCPU),
            runqueueWait: Double(second.runDelay &- first.runDelay) / 1e9 / elapsed * 100,
            received: received, copies: copies, dropped: statsSecond.dropped &- statsFirst.dropped,
            delayP50: Double(final.p50) / 1000, delayP99: Double(final.p99) / 1000, delayMax: Double(final.max) / 1000,
            delayMean: delayCount == 0 ? 0 : Double(statsSecond.delaySum &- statsFirst.delaySum) / Double(delayCount) / 1000,
            sendShare: busyNs > 0 ? min(1, Double(statsSecond.sendNs &- statsFirst.sendNs) / busyNs) : 0,
            cpuNsPerPacket: received == 0 ? 0 : cpuNs / Double(received), cpuNsPerCopy: copies == 0 ? 0 : cpuNs / Double(copies),
            busyNsPerPacket: received == 0 ? 0 : busyNs / Double(received),
            clientsSent: sent, expectedCopies: expected, deliveredCopies: delivered,
            deliveredRatio: expected == 0 ? 0 : Double(delivered) / Double(expected),
            lossPercent: heard + lost == 0 ? 0 : 100 * Double(lost) / Double(heard + lost),
            loadavgBefore: loadBefore, loadavgAfter: loadAfter)
    }
}

/// The analysis and the report formats of ``SFUBench``.
extension SFUBench {
    // MARK: Analysis

    static func fits(_ runs: [RunResult]) -> [DelayFit] {
        var fits: [DelayFit] = []
        var order: [String] = []
        for run in runs where run.kind == "grid" && !order.contains(run.backend) { order.append(run.backend) }
        for backend in order {
            let points = runs.filter { $0.kind == "grid" && $0.backend == backend }
            let x = points.map { Double($0.fanout) }
            let p50 = LinearFit(x: x, y: points.map(\.delayP50)), mean = LinearFit(x: x, y: points.map(\.delayMean))
            fits.append(DelayFit(backend: backend, aP50: p50.a, bP50: p50.b, r2P50: p50.r2, aMean: mean.a, bMean: mean.b, points: points.count))
        }
        return fits
    }

    /// Amdahl: s from the micro benchmark (the backend's send method over the sendmsg loop at the
    /// group size nearest the fan-out, 300-byte payload), f from the socket backend's run at the
    /// same point; measured: socket over the backend, CPU per packet and mean delay.
    func amdahlRows(_ runs: [RunResult]) -> ([AmdahlRow], String?, String) {
        let methods: [String: String] = ["sendmmsg": "sendmmsg", "sendgroup": "sendgroup"]
        guard let path = plan.micro, let data = FileManager.default.contents(atPath: path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let summary = json["summary"] as? [[String: Any]]
        else {
            return ([], nil, "Amdahl prediction: no send micro benchmark result at \(plan.micro ?? "(none)") (run `groupcast bench send` first or pass --micro FILE)")
        }
        func factor(_ method: String, near group: Int) -> (Int, Double)? {
            let rows = summary.filter { ($0["sweep"] as? String) == "group" && ($0["method"] as? String) == method && ($0["shared"] as? Int) == 300 }
            guard let row = rows.min(by: {
                abs(log2(Double(($0["group"] as? Int) ?? 1)) - log2(Double(group))) < abs(log2(Double(($1["group"] as? Int) ?? 1)) - log2(Double(group)))
            }), let g = row["group"] as? Int, let s = (row["factor_median"] as? NSNumber)?.doubleValue ?? (row["factor"] as? NSNumber)?.doubleValue
            else { return nil }
            return (g, s)
        }
        var rows: [AmdahlRow] = []
        var missing: [String] = []
        for run in runs where run.kind == "grid" {
            guard let method = methods[run.backend] else { continue }
            guard let base = runs.first(where: { $0.kind == "grid" && $0.backend == "socket" && $0.clients == run.clients && $0.rate == run.rate }) else { continue }
            guard let (group, s) = factor(method, near: run.fanout) else {
                if !missing.contains(method) { missing.append(method) }
                continue
            }
            let f = base.sendShare
            rows.append(AmdahlRow(
                backend: run.backend, clients: run.clients, rate: run.rate, microMethod: method, group: group, s: s, f: f,
                predicted: amdahlSpeedup(f: f, s: s),
                measuredCPU: run.cpuNsPerPacket > 0 ? base.cpuNsPerPacket / run.cpuNsPerPacket : 0,
                measuredBusy: run.busyNsPerPacket > 0 ? base.busyNsPerPacket / run.busyNsPerPacket : 0,
                measuredDelay: run.delayMean > 0 ? base.delayMean / run.delayMean : 0))
        }
        var note = "Amdahl prediction: s from \(path) (group sweep, 300-byte payload, median factor over the sendmsg loop), f = socket backend's send-call time / its busy time"
        if !missing.isEmpty { note += "; no micro result for \(missing.joined(separator: ", ")) in that file" }
        return (rows, path, note)
    }

    // MARK: Output

    static func runLine(_ r: RunResult) -> String {
        String(format: "%@ n=%d %dpps: cpu user %.1f%% sys %.1f%% softirq %.1f%% rq-wait %.1f%% | delay p50 %.1f p99 %.1f mean %.2f us | send share %.2f | delivered %.1f%% loss %.2f%% dropped %llu",
               r.backend, r.clients, r.rate, r.cpuUser, r.cpuSystem, r.cpuSoftirq, r.runqueueWait, r.delayP50, r.delayP99, r.delayMean, r.sendShare,
               r.deliveredRatio * 100, r.lossPercent, r.dropped)
    }

    static func tables(_ report: BenchReport, amdahlNote: String) -> String {
        var lines: [String] = []
        lines.append("SFU benchmark (\(report.meta.label), kernel \(report.meta.kernel), \(report.meta.cpusOnline) CPUs, load \(report.meta.loadavgStart) -> \(report.meta.loadavgEnd))")
        lines.append("backend    clients  pps   user%   sys%  softirq%  rq-wait%  p50us  p99us  meanus  send-f  ns/pkt  delivered%  dropped")
        for r in report.runs where r.kind == "grid" {
            lines.append(pad(r.backend, 9, left: true) + String(format: " %7d %5d %7.1f %6.1f %9.1f %9.1f %6.1f %6.1f %7.2f %7.2f %7.0f %10.1f %8llu",
                                r.clients, r.rate, r.cpuUser, r.cpuSystem, r.cpuSoftirq, r.runqueueWait, r.delayP50, r.delayP99, r.delayMean,
                                r.sendShare, r.cpuNsPerPacket, r.deliveredRatio * 100, r.dropped))
        }
        lines.append("")
        lines.append("d(n) = a + n*b, n = recipients per packet (the other participants and the echo); paper: socket 0.7 + n*2.3 us, netmap 0.3 + n*0.2 us")
        lines.append("backend    a(p50)us  b(p50)us   r2    a(mean)us  b(mean)us  points")
        for f in report.fits {
            lines.append(pad(f.backend, 9, left: true) + String(format: " %9.2f %9.3f %6.2f %10.2f %10.3f %7d", f.aP50, f.bP50, f.r2P50, f.aMean, f.bMean, f.points))
        }
        if !report.capacity.isEmpty {
            lines.append("")
            lines.append(String(format: "capacity: one broadcaster at %d packets/s, the audience doubles then bisects; passes while >= %.0f%% of its copies arrive", report.meta.capacityRate, report.meta.capacityThreshold * 100))
            lines.append("backend    max-receivers  first-failure  SFU-cpu%-at-max  steps")
            for c in report.capacity {
                lines.append(pad(c.backend, 9, left: true) + String(format: " %14d ", c.maxClients) + pad(c.firstFailure.map { "\($0)" } ?? "none<=\(c.cappedAt ?? 0)", 14) + String(format: " %16.0f  %@", c.sfuCPUAtMax,
                                    c.steps.map(String.init).joined(separator: ",")))
            }
        }
        lines.append("")
        lines.append(amdahlNote)
        if !report.amdahl.isEmpty {
            lines.append("backend    clients  pps  group      s      f   predicted  measured-busy  measured-cpu  measured-delay")
            for a in report.amdahl {
                lines.append(pad(a.backend, 9, left: true) + String(format: " %7d %5d %6d %6.3f %6.3f %11.3f %14.3f %13.3f %15.3f", a.clients, a.rate, a.group, a.s, a.f, a.predicted, a.measuredBusy, a.measuredCPU, a.measuredDelay))
            }
        }
        if report.unavailable.isEmpty {
            lines.append("all requested backends ran: \(report.backends.joined(separator: ", "))")
        } else {
            for u in report.unavailable { lines.append("UNAVAILABLE: \(u.backend): \(u.reason)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csv(_ runs: [RunResult]) -> String {
        var lines = ["kind,backend,clients,fanout,rate,window_s,cpu_user,cpu_system,cpu_softirq,cpu_softirq_client_cpu,runqueue_wait,received,copies,dropped,delay_p50_us,delay_p99_us,delay_max_us,delay_mean_us,send_share,cpu_ns_per_packet,cpu_ns_per_copy,busy_ns_per_packet,clients_sent,expected_copies,delivered_copies,delivered_ratio,loss_percent,loadavg_before,loadavg_after"]
        for r in runs {
            lines.append([
                r.kind, r.backend, "\(r.clients)", "\(r.fanout)", "\(r.rate)", String(format: "%.3f", r.windowSeconds),
                String(format: "%.2f", r.cpuUser), String(format: "%.2f", r.cpuSystem), String(format: "%.2f", r.cpuSoftirq),
                String(format: "%.2f", r.cpuSoftirqClientCPU), String(format: "%.2f", r.runqueueWait), "\(r.received)", "\(r.copies)", "\(r.dropped)",
                String(format: "%.3f", r.delayP50), String(format: "%.3f", r.delayP99), String(format: "%.3f", r.delayMax),
                String(format: "%.3f", r.delayMean), String(format: "%.4f", r.sendShare), String(format: "%.1f", r.cpuNsPerPacket),
                String(format: "%.1f", r.cpuNsPerCopy), String(format: "%.1f", r.busyNsPerPacket), "\(r.clientsSent)", "\(r.expectedCopies)", "\(r.deliveredCopies)",
                String(format: "%.4f", r.deliveredRatio), String(format: "%.3f", r.lossPercent),
                String(format: "%.2f", r.loadavgBefore), String(format: "%.2f", r.loadavgAfter),
            ].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
