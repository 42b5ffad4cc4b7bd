#if canImport(Glibc)
import Glibc
#endif
import Foundation

struct ProcSample {
    var time: Double
    /// The SFU process's utime + stime, clock ticks: only their ratio is used (see `runTime`).
    var user: UInt64
    var system: UInt64
    /// The SFU's threads' time on a CPU (schedstat run time, summed), ns. The CPU figures come
    /// from this. /proc/PID/stat's utime + stime add up to the same run time (the kernel scales
    /// its tick samples to it, cputime_adjust()), but in 10 ms clock ticks and clamped to stay
    /// monotonic; only their ratio, the user/system split, comes from tick samples.
    var runTime: UInt64 = 0
    /// Per-CPU softirq, clock ticks.
    var softirq: [Int: UInt64]
    /// Time the SFU's threads were runnable but waiting for a CPU (schedstat run_delay), ns.
    var runDelay: UInt64

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func take(pid: Int32) -> ProcSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "pid (comm)": state is field 3, utime 14, stime 15 (proc(5)).
        guard fields.count > 13, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        var softirq: [Int: UInt64] = [:]
        if let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("cpu") && !line.hasPrefix("cpu ") {
                let parts = line.split(separator: " ")
                // cpuN user nice system idle iowait irq softirq ...
                if parts.count > 7, let cpu = Int(parts[0].dropFirst(3)), let value = UInt64(parts[7]) { softirq[cpu] = value }
            }
        }
        // /proc/PID/task/TID/schedstat: run time, run_delay, timeslices (ns, ns, count).
        var runTime: UInt64 = 0, runDelay: UInt64 = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8) {
                let parts = text.split(separator: " ")
                if parts.count > 1, let time = UInt64(parts[0]), let delay = UInt64(parts[1]) {
                    runTime &+= time
                    runDelay &+= delay
                }
            }
        }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return ProcSample(time: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9, user: user, system: system, runTime: runTime, softirq: softirq, runDelay: runDelay)
    }
}

/// A process's CPU between two ``ProcSample``s: its threads' run time, split into user and system
/// by the utime/stime ticks (a window no tick landed in counts as system).
struct CPUWindow {
    var seconds: Double
    var runNanoseconds: Double
    /// The user share of the ticks, 0...1.
    var userShare: Double

    init(from first: ProcSample, to second: ProcSample) {
        seconds = max(second.time - first.time, 1e-3)
        runNanoseconds = Double(second.runTime &- first.runTime)
        let userTicks = Double(second.user &- first.user), systemTicks = Double(second.system &- first.system)
        userShare = userTicks + systemTicks > 0 ? userTicks / (userTicks + systemTicks) : 0
    }

    /// Percent of one CPU.
    var percent: Double { runNanoseconds / 1e9 / seconds * 100 }
    var userPercent: Double { percent * userShare }
    var systemPercent: Double { percent * (1 - userShare) }
}

/// The SFU's statistics file, the fields the benchmark uses.
struct SFUSnapshot {
    var received: UInt64 = 0, copies: UInt64 = 0, dropped: UInt64 = 0, participants = 0
    var sendNs: UInt64 = 0, busyNs: UInt64 = 0, delayCount: UInt64 = 0, delaySum: UInt64 = 0
    var p50: UInt64 = 0, p99: UInt64 = 0, max: UInt64 = 0
    /// The SFU process's CPU since it started, percent of one CPU (the demo's status line).
    var cpuUser = 0.0, cpuSystem = 0.0
    /// REGISTER needs a join token (the SFU runs with `--auth-key-file`).
    var authenticated = false
    /// The drops by reason (the statistics file's `dropped` keys), only those not zero.
    var dropsByReason: [String: UInt64] = [:]
    /// `copies` by kind: to its own participants, echoes to senders, to other cluster nodes.
    var forwarded: UInt64 = 0, echoed: UInt64 = 0, relayed: UInt64 = 0

    static func load(_ path: String) -> SFUSnapshot? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let delay = json["delay_ns"] as? [String: Any], let dropped = json["dropped"] as? [String: Any]
        else { return nil }
        func u(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }
        let cpu = json["cpu_percent"] as? [String: Any]
        return SFUSnapshot(
            received: u(json["received"]), copies: u(json["forwarded"]) + u(json["echoed"]) + u(json["relayed"]),
            dropped: dropped.values.reduce(0) { $0 + u($1) }, participants: (json["participants"] as? NSNumber)?.intValue ?? 0, sendNs: u(json["send_ns"]), busyNs: u(json["busy_ns"]),
            delayCount: u(delay["count"]), delaySum: u(delay["sum"]), p50: u(delay["p50"]), p99: u(delay["p99"]), max: u(delay["max"]),
            cpuUser: (cpu?["user"] as? NSNumber)?.doubleValue ?? 0, cpuSystem: (cpu?["system"] as? NSNumber)?.doubleValue ?? 0,
            authenticated: (json["authenticated"] as? Bool) ?? false,
            dropsByReason: dropped.compactMapValues { u($0) == 0 ? nil : u($0) },
            forwarded: u(json["forwarded"]), echoed: u(json["echoed"]), relayed: u(json["relayed"]))
    }
}


/// Machine facts for the report header.
enum MachineInfo {
    static func loadavg() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func kernelRelease() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static var machine: String {
        var name = utsname()
        _ = Glibc.uname(&name)
        return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
