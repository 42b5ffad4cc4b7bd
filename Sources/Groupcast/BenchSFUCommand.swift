#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// `groupcast bench sfu`: the pktswitch paper's Figures 3-5 for every SFU backend, the d(n) fit,
/// the Helix-style capacity search and the Amdahl prediction (Docs/benchmarks.md).
struct BenchSFUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfu",
        abstract: "SFU macro benchmark: CPU (user/system/softirq) and processing delay per backend, d(n) fit, capacity, Amdahl.",
        discussion: """
            Runs the SFU and NMP clients in throw-away network namespaces joined by veth (as `groupcast \
            demo`, no default route), the SFU pinned to --sfu-cpu and the clients to --client-cpu. \
            For every backend x clients x rate: CPU of the SFU process (user, system) and softirq of \
            its CPU over the measurement window, processing delay (receive to last copy scheduled) \
            p50/p99, delivered vs expected copies. Then d(n) = a + n*b per backend, the largest \
            broadcast audience each backend delivers (capacity), and the Amdahl prediction of each \
            backend's gain from the send micro benchmark. A backend that cannot run here is listed \
            as unavailable with the reason. Needs root. With --vm the whole set runs in a VM with \
            the sendgroup module (scripts/bench-sfu).
            """
    )

    @Option(parsing: .upToNextOption, help: "Backends to measure (socket sendmmsg sendgroup xdp ring).")
    var backends: [ForwarderBackend] = ForwarderBackend.allCases

    @Option(parsing: .upToNextOption, help: "Clients (participants, one namespace each) per session.")
    var clients: [Int] = [6, 8, 10]

    @Option(parsing: .upToNextOption, help: "Packets per second per client (all three streams together).")
    var rates: [Int] = [750, 1500]

    @Option(help: "RTP payload bytes per stream.")
    var sizes: SizesArgument = .init([.asq: 80, .vsq: 160, .vhq: 320])

    @Option(help: "Measurement window per run.")
    var duration: DurationArgument = .init(.seconds(10))

    @Option(help: "Clients send this long before the window opens (registration, warm caches).")
    var warmup: DurationArgument = .init(.seconds(1))

    @Flag(inversion: .prefixedNo, help: "Search each backend's capacity (largest broadcast audience delivered).")
    var capacity = true

    @Option(help: "Capacity: the broadcaster's packets per second (three streams).")
    var capacityRate: Int = 1500

    @Option(help: "Capacity: first audience size tried; it doubles until delivery fails, then bisects.")
    var capacityStart: Int = 16

    @Option(help: "Capacity: largest audience tried.")
    var capacityMax: Int = 2048

    @Option(help: "Capacity: measurement window per step.")
    var capacityDuration: DurationArgument = .init(.seconds(4))

    @Option(help: "Capacity: a step passes when at least this share of the expected copies arrive.")
    var capacityThreshold: Double = 0.95

    @Option(help: "CPU the SFU is pinned to (default: the last online CPU).")
    var sfuCPU: Int?

    @Option(help: "CPU the clients are pinned to (default: CPU 0 when there are two or more).")
    var clientCPU: Int?

    @Option(help: "Nice value of the SFU and the clients (-20...19): below 0 weighs them above other load on a shared machine without starving it (unlike real-time scheduling).")
    var nice: Int = 0

    @Option(help: "Send micro benchmark result (scripts/bench-send JSON) giving s for the Amdahl prediction (default: Docs/benchmarks/data/send-LABEL.json).")
    var micro: String?

    @Option(help: "How long the participants of one run may take to register (emulated VMs under load need minutes).")
    var registerTimeout: DurationArgument = .init(.seconds(30))

    @Option(help: "Name of this machine's results: sfu-LABEL.{json,csv,txt}.")
    var label: String = "host"

    @Option(help: "Directory for the results (default: Docs/benchmarks/data of the checkout; a temporary one with --quick).")
    var out: String?

    @Option(help: "Run the whole set in a VM on this kernel line (6.1, 6.12) with the sendgroup module loaded (scripts/bench-sfu).")
    var vm: String?

    @Flag(help: "Smoke run: a few seconds per backend (clients 3, one rate, short windows, two capacity steps).")
    var quick = false

    func validate() throws {
        guard !backends.isEmpty else { throw ValidationError("--backends: name at least one backend") }
        guard !clients.isEmpty, clients.allSatisfy({ (2...64).contains($0) }) else { throw ValidationError("--clients: each 2...64") }
        guard !rates.isEmpty, rates.allSatisfy({ (3...30_000).contains($0) }) else { throw ValidationError("--rates: each 3...30000 packets/s") }
        guard duration.value > .zero, capacityDuration.value > .zero else { throw ValidationError("--duration and --capacity-duration must be positive") }
        guard (0.0...1.0).contains(capacityThreshold) else { throw ValidationError("--capacity-threshold must be 0...1") }
        guard capacityStart >= 1, capacityMax >= capacityStart, capacityMax <= 5120 else {
            throw ValidationError("need 1 <= --capacity-start <= --capacity-max <= 5120")
        }
        guard (-20...19).contains(nice) else { throw ValidationError("--nice must be -20...19") }
        guard (3...30_000).contains(capacityRate) else { throw ValidationError("--capacity-rate must be 3...30000") }
        guard label.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { throw ValidationError("--label: letters, digits, - _ . only") }
        let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        for cpu in [sfuCPU, clientCPU].compactMap({ $0 }) where cpu < 0 || cpu >= online {
            throw ValidationError("CPU \(cpu) is not online (0...\(online - 1))")
        }
    }

    func run() throws {
        if let vm {
            // Everything but --vm goes to the same command inside the VM.
            var arguments = Array(CommandLine.arguments.dropFirst(3))
            if let index = arguments.firstIndex(of: "--vm") { arguments.removeSubrange(index...index + 1) }
            arguments.removeAll { $0.hasPrefix("--vm=") }
            try runScript(try repositoryRoot() + "/scripts/bench-sfu", ["--vm", vm] + arguments)
        }
        guard geteuid() == 0 else {
            FileHandle.standardError.write(Data("groupcast bench sfu needs root: it creates network namespaces and veth links\n".utf8))
            throw ExitCode(1)
        }
        let plan = try BenchPlan(command: self)
        let bench = try SFUBench(plan: plan)
        try bench.run()
    }
}

/// What one `bench sfu` invocation measures, with --quick applied.
struct BenchPlan {
    var backends: [ForwarderBackend]
    var clients: [Int]
    var rates: [Int]
    var sizes: [StreamType: Int]
    var window: Double
    var warmup: Double
    var capacity: Bool
    var capacityRate: Int
    var capacityStart: Int
    var capacityMax: Int
    var capacityWindow: Double
    var capacityThreshold: Double
    var capacitySteps: Int
    var sfuCPU: Int?
    var clientCPU: Int?
    var nice: Int
    var registerTimeout: Double
    var micro: String?
    var label: String
    var out: String
    var quick: Bool

    init(command c: BenchSFUCommand) throws {
        var seen = Set<ForwarderBackend>()
        backends = c.backends.filter { seen.insert($0).inserted }
        clients = c.clients
        rates = c.rates
        sizes = [.asq: 80, .vsq: 160, .vhq: 320].merging(c.sizes.sizes) { $1 }
        window = c.duration.value.seconds
        warmup = c.warmup.value.seconds
        capacity = c.capacity
        capacityRate = c.capacityRate
        capacityStart = c.capacityStart
        capacityMax = c.capacityMax
        capacityWindow = c.capacityDuration.value.seconds
        capacityThreshold = c.capacityThreshold
        capacitySteps = 12
        quick = c.quick
        if quick {
            clients = [3]
            rates = [c.rates.first ?? 750]
            window = 1
            warmup = 0.4
            capacityStart = min(capacityStart, 4)
            capacityWindow = 1
            capacitySteps = 2
        }
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        sfuCPU = c.sfuCPU ?? (online >= 2 ? online - 1 : nil)
        clientCPU = c.clientCPU ?? (online >= 2 ? 0 : nil)
        nice = c.nice
        registerTimeout = c.registerTimeout.value.seconds
        label = c.label
        let root = try? repositoryRoot()
        micro = c.micro ?? root.map { "\($0)/Docs/benchmarks/data/send-\(c.label).json" }
        if let out = c.out {
            self.out = out
        } else if quick || root == nil {
            self.out = NSTemporaryDirectory() + "groupcast-bench-\(getpid())"
        } else {
            self.out = root! + "/Docs/benchmarks/data"
        }
    }

    /// Seconds per stream packet for `rate` packets/s over three streams.
    func interval(rate: Int) -> Double { 3.0 / Double(rate) }
}

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

enum BenchError: Error, CustomStringConvertible {
    case backendUnavailable(String)
    var description: String {
        switch self {
        case .backendUnavailable(let reason): reason
        }
    }
}

/// Snapshots of /proc used over a measurement window.
struct ProcSample {
    var time: Double
    /// The SFU process's utime + stime, clock ticks.
    var user: UInt64
    var system: UInt64
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
        var runDelay: UInt64 = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8) {
                let parts = text.split(separator: " ")
                if parts.count > 1, let value = UInt64(parts[1]) { runDelay &+= value }
            }
        }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return ProcSample(time: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9, user: user, system: system, softirq: softirq, runDelay: runDelay)
    }
}

/// The SFU's statistics file, the fields the benchmark uses.
struct SFUSnapshot {
    var received: UInt64 = 0, copies: UInt64 = 0, dropped: UInt64 = 0, participants = 0
    var sendNs: UInt64 = 0, busyNs: UInt64 = 0, delayCount: UInt64 = 0, delaySum: UInt64 = 0
    var p50: UInt64 = 0, p99: UInt64 = 0, max: UInt64 = 0

    static func load(_ path: String) -> SFUSnapshot? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let delay = json["delay_ns"] as? [String: Any], let dropped = json["dropped"] as? [String: Any]
        else { return nil }
        func u(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }
        return SFUSnapshot(
            received: u(json["received"]), copies: u(json["forwarded"]) + u(json["echoed"]),
            dropped: dropped.values.reduce(0) { $0 + u($1) }, participants: (json["participants"] as? NSNumber)?.intValue ?? 0, sendNs: u(json["send_ns"]), busyNs: u(json["busy_ns"]),
            delayCount: u(delay["count"]), delaySum: u(delay["sum"]), p50: u(delay["p50"]), p99: u(delay["p99"]), max: u(delay["max"]))
    }
}

/// A progress bar on standard error: done/total runs, the current run, time left.
final class ProgressBar {
    private var done = 0.0
    private(set) var total: Double
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = Date.distantPast

    init(total: Double) { self.total = max(total, 1) }

    func grow(_ seconds: Double) { total += seconds }
    func advance(_ seconds: Double) { done += seconds }

    func draw(_ what: String, within: Double = 0, force: Bool = false) {
        let now = Date()
        // On a pipe, a line every few seconds is enough.
        guard force || isTerminal || now.timeIntervalSince(lastDraw) > 5 else { return }
        lastDraw = now
        let fraction = min(1, (done + within) / total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let left = fraction > 0.01 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "[%@] %3.0f%% %@ ~%.0fs left", bar, fraction * 100, what, left)
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1b}[K" : "") + line + (isTerminal ? "" : "\n")).utf8))
    }

    /// Clears the bar's line before other output.
    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Runs the plan: topology, grid, capacity, fits, Amdahl, output files.
final class SFUBench {
    let plan: BenchPlan
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let topology: Topology
    let stop = StopSignal()
    var progress: ProgressBar
    /// Namespaces the capacity runs spread the audience over (one client process each).
    static let capacityNamespaces = 4
    /// Every capacity step's measurements (kept in the JSON with kind `capacity`).
    var capacityRuns: [RunResult] = []

    init(plan: BenchPlan) throws {
        self.plan = plan
        topology = Topology(clients: max(plan.clients.max() ?? 1, Self.capacityNamespaces))
        let grid = Double(plan.clients.count * plan.rates.count) * (plan.window + plan.warmup + 1.5)
        let capacity = plan.capacity ? Double(min(plan.capacitySteps, 10)) * (plan.capacityWindow + plan.warmup + 2) : 0
        progress = ProgressBar(total: Double(plan.backends.count) * (grid + capacity))
    }

    func say(_ line: String, to output: inout String) {
        progress.clear()
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        output += line + "\n"
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: plan.out, withIntermediateDirectories: true)
        let loadStart = Self.loadavg()
        let started = ISO8601DateFormatter().string(from: Date())
        Topology.removeStale()
        var runs: [RunResult] = []
        var unavailable: [UnavailableBackend] = []
        var capacities: [CapacityResult] = []
        var text = ""
        var failure: Error?
        do {
            try topology.create()
            say("topology \(topology.prefix): SFU namespace + \(topology.clients) client namespaces over veth, no default route; SFU on CPU \(plan.sfuCPU.map(String.init) ?? "any"), clients on CPU \(plan.clientCPU.map(String.init) ?? "any"); load \(loadStart)", to: &text)
            backends: for (index, backend) in plan.backends.enumerated() {
                // A fresh topology per backend: an SFU killed on a timeout leaves its XDP/TC
                // programs on the veths, which would refuse the next interface backend.
                if index > 0 { try resetTopology() }
                for clients in plan.clients {
                    for rate in plan.rates {
                        if stop.received { break backends }
                        do {
                            let result = try measure(backend: backend, clients: clients, rate: rate)
                            runs.append(result)
                            say(Self.runLine(result), to: &text)
                        } catch let error as BenchError {
                            unavailable.append(UnavailableBackend(backend: backend.rawValue, reason: error.description))
                            say("\(backend): unavailable: \(error)", to: &text)
                            progress.advance(Double(plan.clients.count * plan.rates.count) * (plan.window + plan.warmup + 1.5))
                            continue backends
                        }
                    }
                }
                if plan.capacity && !stop.received {
                    let result = try searchCapacity(backend: backend)
                    capacities.append(result)
                    say("\(backend): capacity \(result.maxClients) receivers at \(plan.capacityRate) packets/s (steps \(result.steps.map(String.init).joined(separator: ","))\(result.firstFailure.map { ", first failure \($0)" } ?? ", no failure up to the cap"))", to: &text)
                }
            }
        } catch {
            failure = error
        }
        progress.finish()
        topology.destroy()
        if let failure {
            FileHandle.standardError.write(Data("groupcast bench sfu failed: \(failure)\n".utf8))
            throw ExitCode(1)
        }
        if stop.received {
            FileHandle.standardError.write(Data("interrupted: everything the benchmark created was removed; no results written\n".utf8))
            throw ExitCode(130)
        }
        runs += capacityRuns
        let fits = Self.fits(runs)
        let (amdahl, microSource, amdahlNote) = amdahlRows(runs)
        let report = BenchReport(
            meta: .init(
                label: plan.label, kernel: Self.kernelRelease(), machine: Self.machine,
                cpusOnline: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), sfuCPU: plan.sfuCPU, clientCPU: plan.clientCPU, nice: plan.nice, quick: plan.quick,
                windowSeconds: plan.window, warmupSeconds: plan.warmup,
                sizes: Dictionary(uniqueKeysWithValues: plan.sizes.map { ("\($0.key)", $0.value) }),
                capacityRate: plan.capacityRate, capacityThreshold: plan.capacityThreshold,
                loadavgStart: loadStart, loadavgEnd: Self.loadavg(), started: started, microSource: microSource),
            backends: plan.backends.map(\.rawValue), unavailable: unavailable, runs: runs, fits: fits, capacity: capacities, amdahl: amdahl)
        text += "\n" + Self.tables(report, amdahlNote: amdahlNote)
        FileHandle.standardOutput.write(Data(("\n" + Self.tables(report, amdahlNote: amdahlNote)).utf8))
        let base = plan.out + "/sfu-\(plan.label)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(report).write(to: URL(fileURLWithPath: base + ".json"))
        try Data(Self.csv(runs).utf8).write(to: URL(fileURLWithPath: base + ".csv"))
        try Data(text.utf8).write(to: URL(fileURLWithPath: base + ".txt"))
        FileHandle.standardOutput.write(Data("results: \(base).json .csv .txt\n".utf8))
        if runs.isEmpty {
            FileHandle.standardError.write(Data("no backend could run: nothing measured\n".utf8))
            throw ExitCode(1)
        }
    }

    func resetTopology() throws {
        topology.destroy()
        try topology.create()
    }

    // MARK: One run

    struct Session {
        var sfu: Process
        var statsFile: String
        var name: String
        /// The run's operator: the SFU checks join tokens, as a deployment would (the data path
        /// measured is the same either way).
        var issuer: TokenIssuer
    }

    /// Starts the SFU for `backend`; a backend that does not come up is unavailable (the reason is
    /// the last lines of its log).
    func startSFU(_ backend: ForwarderBackend, name: String, capacity: Int, processes: inout ProcessGroup) throws -> Session {
        let statsFile = topology.directory + "/\(name).json"
        try? FileManager.default.removeItem(atPath: statsFile)
        let keyPath = topology.directory + "/\(name).key"
        try? FileManager.default.removeItem(atPath: keyPath)
        let issuer = try TokenIssuer(keyPath: keyPath)
        // Hundreds of participants register from each client namespace's one address at once:
        // the per-address control rate limit is raised for them.
        var command = ["netns", "exec", topology.sfuNamespace, executable, "sfu", "--backend", backend.rawValue, "--stats-file", statsFile,
                       "--stats-interval", "100ms", "--log-level", "warning", "--capacity", "\(capacity + 8)", "--keepalive-timeout", "30s",
                       "--auth-key-file", keyPath, "--control-rate", "20000", "--control-burst", "20000"]
        command = pinned(plan.sfuCPU, ["/usr/sbin/ip"] + command)
        let sfu = try processes.start(command[0], Array(command.dropFirst()), output: topology.directory + "/\(name).log")
        let up = Date().addingTimeInterval(plan.quick ? 20 : 30)
        while !FileManager.default.fileExists(atPath: statsFile) {
            if !sfu.isRunning {
                sfu.waitUntilExit()
                // The SFU's last words, without the logger's timestamp and label.
                var log = topology.logTail("\(name).log").split(separator: "\n").suffix(2).joined(separator: " | ")
                if let range = log.range(of: "cannot start: ") { log = String(log[range.upperBound...]) }
                throw BenchError.backendUnavailable("the SFU with --backend \(backend) exited \(sfu.terminationStatus): \(log.isEmpty ? "no output" : log)")
            }
            guard Date() < up else { throw DemoError.processFailed("SFU (\(backend)) did not start in time", topology.logTail("\(name).log")) }
            usleep(20_000)
        }
        return Session(sfu: sfu, statsFile: statsFile, name: name, issuer: issuer)
    }

    /// `command` pinned to `cpu` (taskset) at the nice value; both exec, so the
    /// process id is the final program's.
    func pinned(_ cpu: Int?, _ command: [String]) -> [String] {
        var command = command
        if plan.nice != 0 { command = ["/usr/bin/nice", "-n", "\(plan.nice)"] + command }
        if let cpu { command = ["/usr/bin/taskset", "-c", "\(cpu)"] + command }
        return command
    }

    func startClient(namespace index: Int, participants: Int, send: String, receive: String, rate: Int, seconds: Double, name: String,
                     issuer: TokenIssuer, processes: inout ProcessGroup) throws -> (Process, String) {
        let tokens = topology.directory + "/\(name).tokens"
        try? FileManager.default.removeItem(atPath: tokens)
        try issuer.writeTokens(room: "bench", identityPrefix: name, count: participants, to: tokens)
        let sizes = plan.sizes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let json = topology.directory + "/\(name).json"
        try? FileManager.default.removeItem(atPath: json)
        let command = pinned(plan.clientCPU, [
            "/usr/sbin/ip", "netns", "exec", topology.clientNamespace(index), executable, "client", "--sfu", "10.199.\(index).1:7000",
            "--local", "10.199.\(index).2:0", "--participants", "\(participants)", "--duration", String(format: "%.3f", seconds),
            "--interval", String(format: "%.6f", plan.interval(rate: rate)), "--sizes", sizes, "--send", send, "--receive", receive,
            "--log-level", "warning", "--json-output", json, "--token-file", tokens,
        ])
        let process = try processes.start(command[0], Array(command.dropFirst()), output: topology.directory + "/\(name).log")
        return (process, json)
    }

    /// Waits `seconds`, drawing progress; fails early if the SFU died.
    func wait(_ seconds: Double, session: Session, what: String, base: Double) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stop.received { return }
            guard session.sfu.isRunning else { throw DemoError.processFailed("SFU exited during the run", topology.logTail("\(session.name).log")) }
            progress.draw(what, within: base + seconds - end.timeIntervalSinceNow)
            usleep(100_000)
        }
    }

    struct ClientTotals {
        var sent: UInt64 = 0, echoed: UInt64 = 0, received: UInt64 = 0, lost: UInt64 = 0
        static func load(_ path: String) -> ClientTotals? {
            guard let stats = DemoResult.ClientStats.load(path) else { return nil }
            return ClientTotals(sent: stats.sent, echoed: stats.echoed, received: stats.received, lost: stats.lost)
        }
    }

    /// One SFU with `sessionClients` participants sending; returns the window's measurements.
    /// `clientSpecs`: (namespace, participants, send, receive) per client process.
    func runSession(backend: ForwarderBackend, kind: String, sessionClients: Int, rate: Int, window: Double,
                    clientSpecs: [(Int, Int, String, String)], what: String) throws -> (RunResult, [ClientTotals]) {
        var processes = ProcessGroup()
        defer { processes.terminateAll() }
        let name = "\(kind)-\(backend)-\(sessionClients)-\(rate)"
        let session = try startSFU(backend, name: "sfu-" + name, capacity: sessionClients, processes: &processes)
        // Clients count their duration from their own registration; the window opens once all
        // are registered, the slack covers the spread of registrations between processes.
        // They are interrupted (SIGINT: stop, report) when the window closes.
        let clientSeconds = plan.registerTimeout + Double(sessionClients) / 10 + plan.warmup + window + 2
        var clientRuns: [(Process, String, String)] = []
        for (slot, spec) in clientSpecs.enumerated() {
            let clientName = "client-\(name)-\(slot)"
            let (process, json) = try startClient(namespace: spec.0, participants: spec.1, send: spec.2, receive: spec.3, rate: rate,
                                                  seconds: clientSeconds, name: clientName, issuer: session.issuer, processes: &processes)
            clientRuns.append((process, json, clientName))
        }
        let loadBefore = Double(Self.loadavg().split(separator: " ").first ?? "0") ?? 0
        let registered = Date().addingTimeInterval(plan.registerTimeout + Double(sessionClients) / 10)
        while (SFUSnapshot.load(session.statsFile)?.participants ?? 0) < sessionClients {
            guard session.sfu.isRunning else { throw DemoError.processFailed("SFU exited during registration", topology.logTail("\(session.name).log")) }
            if let failed = clientRuns.first(where: { !$0.0.isRunning }) {
                throw DemoError.processFailed("client \(failed.2) exited during registration", topology.logTail("\(failed.2).log"))
            }
            guard Date() < registered, !stop.received else {
                throw DemoError.processFailed("only \(SFUSnapshot.load(session.statsFile)?.participants ?? 0) of \(sessionClients) participants registered in time", "")
            }
            usleep(50_000)
        }
        try wait(plan.warmup, session: session, what: what, base: 0)
        guard let first = ProcSample.take(pid: session.sfu.processIdentifier) else {
            throw DemoError.processFailed("cannot read /proc of the SFU", topology.logTail("\(session.name).log"))
        }
        guard let statsFirst = SFUSnapshot.load(session.statsFile) else {
            let text = (try? String(contentsOfFile: session.statsFile, encoding: .utf8)) ?? "(missing)"
            throw DemoError.processFailed("cannot parse the SFU's statistics \(session.statsFile)", String(text.prefix(400)))
        }
        let firstStatsTime = Date()
        try wait(window, session: session, what: what, base: plan.warmup)
        guard let second = ProcSample.take(pid: session.sfu.processIdentifier) else {
            throw DemoError.processFailed("cannot read /proc of the SFU", topology.logTail("\(session.name).log"))
        }
        guard let statsSecond = SFUSnapshot.load(session.statsFile) else {
            let text = (try? String(contentsOfFile: session.statsFile, encoding: .utf8)) ?? "(missing)"
            throw DemoError.processFailed("cannot parse the SFU's statistics \(session.statsFile)", String(text.prefix(400)))
        }
        _ = firstStatsTime
        let loadAfter = Double(Self.loadavg().split(separator: " ").first ?? "0") ?? 0
        var totals: [ClientTotals] = []
        for (process, _, _) in clientRuns where process.isRunning { process.interrupt() }
        for (process, json, clientName) in clientRuns {
            let deadline = Date().addingTimeInterval(30 + Double(sessionClients) / 20)
            while process.isRunning && Date() < deadline && !stop.received { usleep(20_000) }
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
            if stop.received { break }
            guard process.terminationStatus == 0, let report = ClientTotals.load(json) else {
                throw DemoError.processFailed("client \(clientName) exited \(process.terminationStatus)", topology.logTail("\(clientName).log"))
            }
            totals.append(report)
        }
        session.sfu.interrupt()
        let deadline = Date().addingTimeInterval(5)
        while session.sfu.isRunning && Date() < deadline { usleep(20_000) }
        let final = SFUSnapshot.load(session.statsFile) ?? statsSecond

        let elapsed = max(second.time - first.time, 1e-3)
        let ticks = ProcSample.ticksPerSecond
        func percent(_ delta: UInt64) -> Double { Double(delta) / ticks / elapsed * 100 }
        func softirq(_ cpu: Int?) -> Double {
            guard let cpu, let a = first.softirq[cpu], let b = second.softirq[cpu] else { return 0 }
            return percent(b &- a)
        }
        let busyNs = Double(statsSecond.busyNs &- statsFirst.busyNs)
        let cpuNs = Double((second.user &- first.user) + (second.system &- first.system)) / ticks * 1e9
        let received = statsSecond.received &- statsFirst.received
        let copies = statsSecond.copies &- statsFirst.copies
        let delayCount = statsSecond.delayCount &- statsFirst.delayCount
        let sent = totals.reduce(0) { $0 + $1.sent }
        // Delivered: what the receivers got against what their sequence numbers say was sent to
        // them from their first packet on (registrations are staggered), and in a grid run the
        // echoes against the packets sent.
        let lost = totals.reduce(0) { $0 + $1.lost }, heard = totals.reduce(0) { $0 + $1.received }
        let echoed = totals.reduce(0) { $0 + $1.echoed }
        let expected = kind == "grid" ? heard + lost + sent : heard + lost
        let delivered = kind == "grid" ? heard + echoed : heard
        let result = RunResult(
            kind: kind, backend: backend.rawValue, clients: sessionClients, fanout: kind == "grid" ? sessionClients : sessionClients,
            rate: rate, windowSeconds: elapsed,
            cpuUser: percent(second.user &- first.user), cpuSystem: percent(second.system &- first.system),
            cpuSoftirq: softirq(plan.sfuCPU), cpuSoftirqClientCPU: softirq(plan.clientCPU),
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
        return (result, totals)
    }

    func measure(backend: ForwarderBackend, clients: Int, rate: Int) throws -> RunResult {
        let what = "\(backend) n=\(clients) \(rate)pps"
        let specs = (1...clients).map { ($0, 1, "all", "all") }
        // On a loaded machine a REGISTER can go unanswered within the client's retries: try the
        // run again (twice) before giving up on the whole benchmark.
        var attempt = 1
        while true {
            do {
                let (result, _) = try runSession(backend: backend, kind: "grid", sessionClients: clients, rate: rate, window: plan.window,
                                                 clientSpecs: specs, what: what)
                progress.advance(plan.window + plan.warmup + 1.5)
                return result
            } catch DemoError.processFailed(let what, let log) where attempt < 3 && !stop.received {
                try resetTopology()
                progress.clear()
                FileHandle.standardError.write(Data("\(backend) n=\(clients) \(rate)pps: \(what) (\(log.split(separator: "\n").last ?? "")); again (attempt \(attempt + 1) of 3)\n".utf8))
                attempt += 1
            }
        }
    }

    /// Helix-style broadcast: one participant sends all three streams, the audience receives them;
    /// the audience doubles until less than the threshold of its copies arrive, then bisects.
    func searchCapacity(backend: ForwarderBackend) throws -> CapacityResult {
        var passed = 0
        var failed: Int?
        var steps: [Int] = []
        var sfuCPUAtPass = 0.0
        var audience = plan.capacityStart
        let stepCost = plan.capacityWindow + plan.warmup + 2
        while steps.count < plan.capacitySteps && !stop.received {
            steps.append(audience)
            let namespaces = min(Self.capacityNamespaces, audience)
            // The audience first (registered before media flows), the broadcaster last.
            var specs: [(Int, Int, String, String)] = []
            for index in 0..<namespaces {
                let share = audience / namespaces + (index < audience % namespaces ? 1 : 0)
                if share > 0 { specs.append((index + 1, share, "none", "all")) }
            }
            specs.append((1, 1, "all", "none"))
            var ok = false
            var cpu = 0.0
            var outcome: String
            do {
                let (result, _) = try runSession(backend: backend, kind: "capacity", sessionClients: audience + 1, rate: plan.capacityRate,
                                                 window: plan.capacityWindow, clientSpecs: specs, what: "\(backend) capacity \(audience)")
                // Served: the audience got its copies (sequence gaps) and the SFU sent all of them.
                // Copies the SFU sent against rate x window x (audience + echo): shedding whole
                // streams leaves no sequence gaps at the receivers, but shows here.
                let offered = Double(result.copies) / (Double(plan.capacityRate) * result.windowSeconds * Double(audience + 1))
                ok = result.deliveredRatio >= plan.capacityThreshold && offered >= plan.capacityThreshold
                cpu = result.cpuUser + result.cpuSystem
                outcome = String(format: "delivered %.1f%%, copies sent %.1f%% of rate x audience (SFU CPU %.0f%%)", result.deliveredRatio * 100, offered * 100, cpu)
                capacityRuns.append(result)
            } catch DemoError.processFailed(let what, _) where !stop.received {
                // An overloaded SFU may not answer a REGISTER in time: this audience is not served.
                outcome = "not served: \(what)"
                try resetTopology()
            }
            progress.advance(stepCost)
            progress.clear()
            FileHandle.standardError.write(Data("capacity \(backend) \(audience) receivers: \(outcome) \(ok ? "pass" : "fail")\n".utf8))
            if ok {
                passed = audience
                sfuCPUAtPass = cpu
            } else {
                failed = min(failed ?? audience, audience)
            }
            // Next: double while everything passes, then bisect to about 1/16 of the bracket.
            if let failed {
                guard failed - passed > max(1, passed / 16) else { break }
                audience = (passed + failed) / 2
            } else {
                guard audience < plan.capacityMax else { break }
                audience = min(audience * 2, plan.capacityMax)
            }
            if steps.count >= 10 { progress.grow(stepCost) }
        }
        return CapacityResult(backend: backend.rawValue, maxClients: passed, firstFailure: failed,
                              cappedAt: failed == nil ? steps.last : nil, sfuCPUAtMax: sfuCPUAtPass, steps: steps)
    }

    // MARK: Analysis

    static func fits(_ runs: [RunResult]) -> [DelayFit] {
        var fits: [DelayFit] = []
        var order: [String] = []
        for run in runs where run.kind == "grid" && !order.contains(run.backend) { order.append(run.backend) }
        for backend in order {
            let points = runs.filter { $0.kind == "grid" && $0.backend == backend }
            let x = points.map { Double($0.fanout) }
            let p50 = leastSquares(x, points.map(\.delayP50)), mean = leastSquares(x, points.map(\.delayMean))
            fits.append(DelayFit(backend: backend, aP50: p50.a, bP50: p50.b, r2P50: p50.r2, aMean: mean.a, bMean: mean.b, points: points.count))
        }
        return fits
    }

    /// y = a + b*x by least squares; with one distinct x, a line through the origin's mean.
    static func leastSquares(_ x: [Double], _ y: [Double]) -> (a: Double, b: Double, r2: Double) {
        let n = Double(x.count)
        guard n > 0 else { return (0, 0, 0) }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        let sxx = zip(x, x).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - mx) }
        let sxy = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let syy = y.reduce(0) { $0 + ($1 - my) * ($1 - my) }
        guard sxx > 0 else { return (my, 0, 0) }
        let b = sxy / sxx
        return (my - b * mx, b, syy > 0 ? (sxy * sxy) / (sxx * syy) : 1)
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
                predicted: 1 / ((1 - f) + f / s),
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
