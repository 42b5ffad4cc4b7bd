#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastAuth
import GroupcastCommandLine
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// The demo (`groupcast-lab demo`, `make demo`): a throw-away ``Topology``, the SFU and its
/// clients in it, a live status line, a final table; everything it created is removed at the end,
/// on Ctrl-C, and on failure.
public struct Demo {
    public var clients = 3
    public var participants = 1
    public var duration: Duration = .seconds(10)
    public var interval: Duration = .milliseconds(4)
    public var receive: StreamSet = .all
    public var backends: [ForwarderBackend] = [.fastestAvailable]
    /// Run the SFU with authentication: a fresh key per backend, one join token per participant
    /// (Docs/protocol.md, "Join tokens"); false runs it open.
    public var auth = true

    public init() {}

    /// Runs every backend in turn and prints the table.
    ///
    /// - Throws: ``LabError`` (`.interrupted` after SIGINT/SIGTERM, with everything removed).
    public func run() throws(LabError) {
        guard geteuid() == 0 else {
            throw .failed("needs root: it creates network namespaces and veth links (run it with sudo)")
        }
        let groupcast = try GroupcastExecutable()
        let topology = Topology.sfuStar(clients: clients)
        let logs = RunDirectory(prefix: Topology.starPrefix)
        Topology.removeStale()
        let stop = StopSignal()
        var results: [DemoResult] = []
        var failure: String?
        do {
            try logs.create()
            try topology.create()
            say("topology \(Topology.starPrefix): SFU namespace \(topology.sfuNamespace), \(clients) client namespaces, veth 10.199.N.1 <-> 10.199.N.2, no default route")
            say(auth ? "authentication on: a fresh key per backend, one join token per participant (--no-auth: open SFU)" : "authentication off (--no-auth): the SFU is open")
            for backend in backends {
                guard !stop.received else { break }
                results.append(try runOnce(backend: backend, topology: topology, logs: logs, stop: stop, groupcast: groupcast))
            }
        } catch {
            failure = "\(error)"
        }
        topology.destroy()
        logs.remove()
        if !results.isEmpty { say("\n" + DemoResult.table(results)) }
        if let failure { throw .failed(failure) }
        if stop.received {
            throw .interrupted("interrupted (\(stop.signalName ?? "signal")): everything the demo created was removed")
        }
        say("removed namespaces and links \(Topology.starPrefix)-*")
    }

    func runOnce(backend: ForwarderBackend, topology: Topology, logs: RunDirectory, stop: StopSignal, groupcast: GroupcastExecutable) throws -> DemoResult {
        let statsFile = logs.path + "/sfu-\(backend).json"
        var processes = ProcessGroup()
        defer { processes.terminateAll() }
        // With authentication: a key for this run and a token file per client host.
        var sfuAuth: [String] = []
        var clientAuth: [Int: [String]] = [:]
        if auth {
            let issuer = try TokenIssuer(keyPath: logs.path + "/key-\(backend)")
            sfuAuth = ["--auth-key-file", issuer.keyPath]
            for index in 1...clients {
                let path = logs.path + "/tokens-\(backend)-\(index)"
                try issuer.writeTokens(room: "demo", identityPrefix: "host\(index)", count: participants, to: path)
                clientAuth[index] = ["--token-file", path]
            }
        }
        let sfu = try processes.start(
            groupcast.sfu(in: topology, backend: backend, statsFile: statsFile, statsInterval: "250ms",
                          capacity: clients * participants + 8, options: sfuAuth),
            output: logs.path + "/sfu-\(backend).log")
        switch groupcast.waitUntilUp(sfu, statsFile: statsFile, within: 10, stop: stop) {
        case .up: break
        case .exited: throw LabError.processFailed("SFU", logs.tail("sfu-\(backend).log"))
        case .timedOut: throw LabError.processFailed("SFU did not start in 10 s", logs.tail("sfu-\(backend).log"))
        case .interrupted: return DemoResult(backend: backend, sfu: nil, clients: [])
        }
        // What the SFU says it runs with, not what it was asked to: tokens checked or not.
        guard let first = SFUSnapshot.load(statsFile), first.authenticated == auth else {
            throw LabError.failed("the SFU (\(backend)) does not report authentication \(auth ? "on" : "off") in \(statsFile)")
        }
        var clientProcesses: [Process] = []
        for index in 1...clients {
            clientProcesses.append(try processes.start(
                groupcast.client(in: topology, namespace: index, participants: participants, seconds: duration.seconds,
                                 interval: interval.seconds, receive: receive.description,
                                 report: logs.path + "/client-\(backend)-\(index).json", options: clientAuth[index] ?? []),
                output: logs.path + "/client-\(backend)-\(index).log"))
        }
        let start = Date()
        let softirqStart = DemoResult.softirqTicks()
        var previous: (Date, UInt64, UInt64)?
        while clientProcesses.contains(where: \.isRunning) {
            if stop.received { break }
            guard sfu.isRunning else { throw LabError.processFailed("SFU exited", logs.tail("sfu-\(backend).log")) }
            if let stats = SFUSnapshot.load(statsFile) {
                let now = Date()
                var rates = ""
                if let (time, received, sent) = previous, now.timeIntervalSince(time) > 0 {
                    let seconds = now.timeIntervalSince(time)
                    rates = String(format: " in %.0f/s out %.0f/s", Double(stats.received - min(stats.received, received)) / seconds, Double(stats.copies - min(stats.copies, sent)) / seconds)
                }
                previous = (now, stats.received, stats.copies)
                let line = String(
                    format: "\r[%@] %4.1fs/%.0fs participants %d%@ dropped %llu delay p50 %.1f p99 %.1f us cpu %.1f%%   ",
                    backend.rawValue, Date().timeIntervalSince(start), duration.seconds, stats.participants, rates, stats.dropped,
                    Double(stats.p50) / 1000, Double(stats.p99) / 1000, stats.cpuUser + stats.cpuSystem)
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            usleep(250_000)
        }
        say("")
        if stop.received {
            // Interrupted: the clients stop sending, report what they have, and leave.
            for process in clientProcesses where process.isRunning { process.interrupt() }
        }
        for (index, process) in clientProcesses.enumerated() {
            process.waitUntilExit()
            if process.terminationStatus != 0 && !stop.received {
                throw LabError.processFailed("client \(index + 1) exited \(process.terminationStatus)", logs.tail("client-\(backend)-\(index + 1).log"))
            }
        }
        sfu.interrupt()  // SIGINT: clean shutdown, final statistics
        let deadline = Date().addingTimeInterval(5)
        while sfu.isRunning && Date() < deadline { usleep(20_000) }
        let sfuStats = SFUSnapshot.load(statsFile)
        let reports = (1...clients).compactMap { ClientStats.load(logs.path + "/client-\(backend)-\($0).json") }
        var softirq: Double?
        if let softirqStart, let softirqEnd = DemoResult.softirqTicks() {
            let seconds = Date().timeIntervalSince(start)
            softirq = seconds > 0 ? 100 * Double(softirqEnd - softirqStart) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds : nil
        }
        return DemoResult(backend: backend, sfu: sfuStats, clients: reports, softirqPercent: softirq)
    }
}

/// One backend's outcome: the SFU's final statistics and the clients' reports.
struct DemoResult {
    var backend: ForwarderBackend
    var sfu: SFUSnapshot?
    var clients: [ClientStats]
    /// Softirq time of the whole machine (every CPU) while the clients ran, percent of one CPU.
    var softirqPercent: Double? = nil

    /// The `softirq` column of `/proc/stat`'s `cpu` line (all CPUs), in clock ticks.
    static func softirqTicks() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        // cpu user nice system idle iowait irq softirq ...
        let fields = line.split(separator: " ")
        return fields.count > 7 ? UInt64(fields[7]) : nil
    }

    static func table(_ results: [DemoResult]) -> String {
        var lines = ["backend    pkts-in  pkts-out  dropped  sfu-p50us  sfu-p99us  sfu-maxus  cpu-user%  cpu-sys%  rtt-p50us  rtt-p99us  echo-loss%  loss%  softirq%"]
        for result in results {
            guard let sfu = result.sfu else {
                lines.append(pad(result.backend.rawValue, 9) + "  (no statistics: interrupted before the SFU reported)")
                continue
            }
            let sent = result.clients.reduce(0) { $0 + $1.sent }, echoed = result.clients.reduce(0) { $0 + $1.echoed }
            let received = result.clients.reduce(0) { $0 + $1.received }, lost = result.clients.reduce(0) { $0 + $1.lost }
            let rttP50 = percentile(result.clients.flatMap(\.rttP50), 0.5) ?? 0
            let rttP99 = percentile(result.clients.flatMap(\.rttP99), 1) ?? 0
            func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }
            func percent(_ part: UInt64, _ whole: UInt64) -> String { whole == 0 ? "-" : String(format: "%.2f", 100 * Double(part) / Double(whole)) }
            lines.append([
                pad(result.backend.rawValue, 9, left: true), pad("\(sfu.received)", 8), pad("\(sfu.copies)", 9), pad("\(sfu.dropped)", 8),
                pad(us(sfu.p50), 10), pad(us(sfu.p99), 10), pad(us(sfu.max), 10), pad(String(format: "%.1f", sfu.cpuUser), 10),
                pad(String(format: "%.1f", sfu.cpuSystem), 9), pad(us(rttP50), 10), pad(us(rttP99), 10),
                pad(percent(sent - min(sent, echoed), sent), 11), pad(percent(lost, received + lost), 6),
                pad(result.softirqPercent.map { String(format: "%.1f", $0) } ?? "-", 9),
            ].joined(separator: " "))
        }
        // A drop is named, not only counted: which reason, on which backend.
        for result in results {
            guard let sfu = result.sfu, !sfu.dropsByReason.isEmpty else { continue }
            let reasons = sfu.dropsByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            lines.append("\(result.backend.rawValue) dropped: \(reasons.joined(separator: ", "))")
        }
        lines.append("sfu-*: the SFU's per-packet processing delay (receive to last copy scheduled); rtt-*: client -> SFU -> client (echo), median of per-stream p50 and worst p99; cpu: the SFU process; softirq: the whole machine while the clients ran (% of one CPU).")
        return lines.joined(separator: "\n")
    }
}

/// A `groupcast client --json-output` report, summed over its streams.
struct ClientStats {
    var sent: UInt64 = 0, echoed: UInt64 = 0, received: UInt64 = 0, lost: UInt64 = 0
    var rttP50: [UInt64] = [], rttP99: [UInt64] = []

    static func load(_ path: String) -> ClientStats? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let streams = json["streams"] as? [[String: Any]]
        else { return nil }
        var stats = ClientStats()
        for row in streams {
            func u(_ key: String) -> UInt64 { (row[key] as? NSNumber)?.uint64Value ?? 0 }
            stats.sent += u("sent")
            stats.echoed += u("echoed")
            stats.received += u("received")
            stats.lost += u("lost")
            if u("echoed") > 0 {
                stats.rttP50.append(u("rtt_p50_ns"))
                stats.rttP99.append(u("rtt_p99_ns"))
            }
        }
        return stats
    }
}

func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    guard text.count < width else { return text }
    let fill = String(repeating: " ", count: width - text.count)
    return left ? text + fill : fill + text
}

/// Writes a line to standard output unbuffered, in order with the status line.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
