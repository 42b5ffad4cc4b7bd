#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastAuth
import GroupcastCommandLine
import GroupcastProtocol
import GroupcastSFU

/// Runs a ``BenchPlan``: topology, grid, capacity, fits, Amdahl, output files.
public final class SFUBench {
    let plan: BenchPlan
    let groupcast: GroupcastExecutable
    let topology: Topology
    let logs = RunDirectory(prefix: Topology.starPrefix)
    /// Client namespaces: enough for the largest grid session and the capacity runs.
    let clientNamespaces: Int
    let stop = StopSignal()
    var progress: ProgressBar
    /// Namespaces the capacity runs spread the audience over (one client process each).
    static let capacityNamespaces = 4
    /// Every capacity step's measurements (kept in the JSON with kind `capacity`).
    var capacityRuns: [RunResult] = []

    /// - Parameter plan: a resolved plan (``BenchPlan/resolved(repository:onlineCPUs:)``).
    /// - Throws: ``LabError/missingExecutable(_:)`` when `groupcast` is not beside this program.
    public init(plan: BenchPlan) throws {
        self.plan = plan
        groupcast = try GroupcastExecutable()
        clientNamespaces = max(plan.clients.max() ?? 1, Self.capacityNamespaces)
        topology = Topology.sfuStar(clients: clientNamespaces)
        let grid = Double(plan.clients.count * plan.rates.count) * (plan.window + plan.warmup + 1.5)
        let capacity = plan.capacity ? Double(min(plan.capacitySteps, 10)) * (plan.capacityWindow + plan.warmup + 2) : 0
        progress = ProgressBar(total: Double(plan.backends.count) * (grid + capacity))
    }

    func say(_ line: String, to output: inout String) {
        progress.clear()
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        output += line + "\n"
    }

    /// Measures everything the plan names and writes `sfu-LABEL.{json,csv,txt}`.
    ///
    /// - Throws: ``LabError`` (`.failed`, `.interrupted`: everything created was removed and
    ///   nothing written; `.nothingMeasured`: no backend could run).
    public func run() throws {
        try FileManager.default.createDirectory(atPath: plan.outputDirectory, withIntermediateDirectories: true)
        let loadStart = MachineInfo.loadavg()
        let started = ISO8601DateFormatter().string(from: Date())
        Topology.removeStale()
        var runs: [RunResult] = []
        var unavailable: [UnavailableBackend] = []
        var capacities: [CapacityResult] = []
        var text = ""
        var failure: Error?
        do {
            try logs.create()
            try topology.create()
            say("topology \(Topology.starPrefix): SFU namespace + \(clientNamespaces) client namespaces over veth, no default route; SFU on CPU \(plan.sfuCPU.map(String.init) ?? "any"), clients on CPU \(plan.clientCPU.map(String.init) ?? "any"); load \(loadStart)", to: &text)
            say("authentication on: every SFU checks join tokens (a fresh key per run, one token per participant)", to: &text)
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
                        } catch LabError.backendUnavailable(let reason) {
                            unavailable.append(UnavailableBackend(backend: backend.rawValue, reason: reason))
                            say("\(backend): unavailable: \(reason)", to: &text)
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
        logs.remove()
        if let failure {
            throw LabError.failed("\(failure)")
        }
        if stop.received {
            throw LabError.interrupted("everything the benchmark created was removed; no results written")
        }
        runs += capacityRuns
        let fits = Self.fits(runs)
        let (amdahl, microSource, amdahlNote) = amdahlRows(runs)
        let report = BenchReport(
            meta: .init(
                label: plan.label, kernel: MachineInfo.kernelRelease(), machine: MachineInfo.machine,
                cpusOnline: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), sfuCPU: plan.sfuCPU, clientCPU: plan.clientCPU, nice: plan.nice, quick: plan.quick,
                windowSeconds: plan.window, warmupSeconds: plan.warmup,
                sizes: Dictionary(uniqueKeysWithValues: plan.sizes.map { ("\($0.key)", $0.value) }),
                capacityRate: plan.capacityRate, capacityThreshold: plan.capacityThreshold,
                loadavgStart: loadStart, loadavgEnd: MachineInfo.loadavg(), started: started, microSource: microSource),
            backends: plan.backends.map(\.rawValue), unavailable: unavailable, runs: runs, fits: fits, capacity: capacities, amdahl: amdahl)
        text += "\n" + Self.tables(report, amdahlNote: amdahlNote)
        FileHandle.standardOutput.write(Data(("\n" + Self.tables(report, amdahlNote: amdahlNote)).utf8))
        let base = plan.outputDirectory + "/sfu-\(plan.label)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(report).write(to: URL(fileURLWithPath: base + ".json"))
        try Data(Self.csv(runs).utf8).write(to: URL(fileURLWithPath: base + ".csv"))
        try Data(text.utf8).write(to: URL(fileURLWithPath: base + ".txt"))
        FileHandle.standardOutput.write(Data("results: \(base).json .csv .txt\n".utf8))
        if runs.isEmpty {
            throw LabError.nothingMeasured("no backend could run: nothing measured")
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
        let statsFile = logs.path + "/\(name).json"
        try? FileManager.default.removeItem(atPath: statsFile)
        let keyPath = logs.path + "/\(name).key"
        try? FileManager.default.removeItem(atPath: keyPath)
        let issuer = try TokenIssuer(keyPath: keyPath)
        // Hundreds of participants register from each client namespace's one address at once:
        // the per-address control rate limit is raised for them.
        let command = pinned(plan.sfuCPU, groupcast.sfu(
            in: topology, backend: backend, statsFile: statsFile, statsInterval: "100ms", capacity: capacity + 8,
            options: ["--keepalive-timeout", "30s", "--auth-key-file", keyPath, "--control-rate", "20000", "--control-burst", "20000"]
                + (backend == .sendgroup ? ["--sendgroup-mode", plan.sendgroupMode.rawValue] : [])))
        let sfu = try processes.start(command, output: logs.path + "/\(name).log")
        switch groupcast.waitUntilUp(sfu, statsFile: statsFile, within: plan.quick ? 20 : 30) {
        case .up: break
        case .exited:
            sfu.waitUntilExit()
            // The SFU's last words, without the logger's timestamp and label.
            var log = logs.tail("\(name).log").split(separator: "\n").suffix(2).joined(separator: " | ")
            if let range = log.range(of: "cannot start: ") { log = String(log[range.upperBound...]) }
            throw LabError.backendUnavailable("the SFU with --backend \(backend) exited \(sfu.terminationStatus): \(log.isEmpty ? "no output" : log)")
        case .timedOut, .interrupted:
            throw LabError.processFailed("SFU (\(backend)) did not start in time", logs.tail("\(name).log"))
        }
        // The benchmark measures an SFU as deployed: REGISTER checks join tokens.
        guard SFUSnapshot.load(statsFile)?.authenticated == true else {
            throw LabError.processFailed("the SFU (\(backend)) does not report authentication on", logs.tail("\(name).log"))
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
        let tokens = logs.path + "/\(name).tokens"
        try? FileManager.default.removeItem(atPath: tokens)
        try issuer.writeTokens(room: "bench", identityPrefix: name, count: participants, to: tokens)
        let sizes = plan.sizes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let json = logs.path + "/\(name).json"
        try? FileManager.default.removeItem(atPath: json)
        let command = pinned(plan.clientCPU, groupcast.client(
            in: topology, namespace: index, participants: participants, seconds: seconds, interval: plan.interval(rate: rate),
            receive: receive, report: json, options: ["--sizes", sizes, "--send", send, "--token-file", tokens]))
        let process = try processes.start(command, output: logs.path + "/\(name).log")
        return (process, json)
    }

    /// Waits `seconds`, drawing progress; fails early if the SFU died.
    func wait(_ seconds: Double, session: Session, what: String, base: Double) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stop.received { return }
            guard session.sfu.isRunning else { throw LabError.processFailed("SFU exited during the run", logs.tail("\(session.name).log")) }
            progress.draw(what, within: base + seconds - end.timeIntervalSinceNow)
            usleep(100_000)
        }
    }

    /// One SFU with `sessionClients` participants sending; returns the window's measurements.
    /// `clientSpecs`: (namespace, participants, send, receive) per client process.
    func runSession(backend: ForwarderBackend, kind: String, sessionClients: Int, rate: Int, window: Double,
                    clientSpecs: [(Int, Int, String, String)], what: String) throws -> (RunResult, [ClientStats]) {
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
        let loadBefore = Double(MachineInfo.loadavg().split(separator: " ").first ?? "0") ?? 0
        let registered = Date().addingTimeInterval(plan.registerTimeout + Double(sessionClients) / 10)
        while (SFUSnapshot.load(session.statsFile)?.participants ?? 0) < sessionClients {
            guard session.sfu.isRunning else { throw LabError.processFailed("SFU exited during registration", logs.tail("\(session.name).log")) }
            if let failed = clientRuns.first(where: { !$0.0.isRunning }) {
                throw LabError.processFailed("client \(failed.2) exited during registration", logs.tail("\(failed.2).log"))
            }
            guard Date() < registered, !stop.received else {
                throw LabError.processFailed("only \(SFUSnapshot.load(session.statsFile)?.participants ?? 0) of \(sessionClients) participants registered in time", "")
            }
            usleep(50_000)
        }
        // The SFU's /proc sample, then its statistics: at the window's start and at its end.
        func sample() throws -> (ProcSample, SFUSnapshot) {
            guard let process = ProcSample.take(pid: session.sfu.processIdentifier) else {
                throw LabError.processFailed("cannot read /proc of the SFU", logs.tail("\(session.name).log"))
            }
            guard let statistics = SFUSnapshot.load(session.statsFile) else {
                let text = (try? String(contentsOfFile: session.statsFile, encoding: .utf8)) ?? "(missing)"
                throw LabError.processFailed("cannot parse the SFU's statistics \(session.statsFile)", String(text.prefix(400)))
            }
            return (process, statistics)
        }
        try wait(plan.warmup, session: session, what: what, base: 0)
        let (first, statsFirst) = try sample()
        try wait(window, session: session, what: what, base: plan.warmup)
        let (second, statsSecond) = try sample()
        let loadAfter = Double(MachineInfo.loadavg().split(separator: " ").first ?? "0") ?? 0
        var totals: [ClientStats] = []
        for (process, _, _) in clientRuns where process.isRunning { process.interrupt() }
        for (process, json, clientName) in clientRuns {
            let deadline = Date().addingTimeInterval(30 + Double(sessionClients) / 20)
            while process.isRunning && Date() < deadline && !stop.received { usleep(20_000) }
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
            if stop.received { break }
            guard process.terminationStatus == 0, let report = ClientStats.load(json) else {
                throw LabError.processFailed("client \(clientName) exited \(process.terminationStatus)", logs.tail("\(clientName).log"))
            }
            totals.append(report)
        }
        session.sfu.interrupt()
        let deadline = Date().addingTimeInterval(5)
        while session.sfu.isRunning && Date() < deadline { usleep(20_000) }
        let final = SFUSnapshot.load(session.statsFile) ?? statsSecond

        let result = RunResult(
            kind: kind, backend: backend, sessionClients: sessionClients, rate: rate, first: first, second: second,
            statsFirst: statsFirst, statsSecond: statsSecond, final: final, clients: totals,
            sfuCPU: plan.sfuCPU, clientCPU: plan.clientCPU, loadBefore: loadBefore, loadAfter: loadAfter)
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
            } catch LabError.processFailed(let what, let log) where attempt < 3 && !stop.received {
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
        var search = CapacitySearch(start: plan.capacityStart, maxAudience: plan.capacityMax, maxSteps: plan.capacitySteps)
        var sfuCPUAtPass = 0.0
        let stepCost = plan.capacityWindow + plan.warmup + 2
        while let audience = search.next, !stop.received {
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
            } catch LabError.processFailed(let what, _) where !stop.received {
                // An overloaded SFU may not answer a REGISTER in time: this audience is not served.
                outcome = "not served: \(what)"
                try resetTopology()
            }
            progress.advance(stepCost)
            progress.clear()
            FileHandle.standardError.write(Data("capacity \(backend) \(audience) receivers: \(outcome) \(ok ? "pass" : "fail")\n".utf8))
            if ok { sfuCPUAtPass = cpu }
            search.record(passed: ok)
            if search.steps.count >= 10 { progress.grow(stepCost) }
        }
        return CapacityResult(backend: backend.rawValue, maxClients: search.passed, firstFailure: search.firstFailure,
                              cappedAt: search.cappedAt, sfuCPUAtMax: sfuCPUAtPass, steps: search.steps)
    }
}
