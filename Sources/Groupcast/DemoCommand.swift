#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging

/// `groupcast demo`: a throw-away topology of network namespaces and veth links, the SFU and its
/// clients in it, a live status line, a final table; everything it created is removed at the end,
/// on Ctrl-C, and on failure.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the SFU and N clients in throw-away network namespaces and print delay, CPU and packets.",
        discussion: """
            Creates one namespace for the SFU and one per client, joined by veth links with private \
            addresses (10.199.N.1 SFU side, 10.199.N.2 client side) and no default route: no traffic \
            leaves the namespaces. Needs root. Removes the namespaces, links and processes it created \
            when it ends, when interrupted (Ctrl-C) and when something fails.
            """
    )

    @Option(help: "Client hosts (namespaces), each running --participants participants.")
    var clients: Int = 3

    @Option(help: "Participants per client host.")
    var participants: Int = 1

    @Option(help: "How long the clients send, per backend (e.g. 10s).")
    var duration: DurationArgument = .init(.seconds(10))

    @Option(help: "Send interval per stream.")
    var interval: DurationArgument = .init(.milliseconds(4))

    @Option(help: "Stream types every participant receives (asq,vsq,vhq | all).")
    var receive: StreamSet = .all

    @Option(parsing: .upToNextOption, help: "Backends to run one after the other (socket sendmmsg sendgroup xdp ring). Default: the fastest socket backend available. xdp attaches to every veth of the SFU namespace (one per client host).")
    var backends: [ForwarderBackend] = [.fastestAvailable]

    @Flag(inversion: .prefixedNo, help: "Run the SFU with authentication: a fresh key, one join token per participant (Docs/protocol.md, \"Join tokens\"). --no-auth runs it open.")
    var auth = true

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...200).contains(clients) else { throw ValidationError("--clients must be 1...200") }
        guard (1...64).contains(participants) else { throw ValidationError("--participants must be 1...64") }
        guard duration.value > .zero else { throw ValidationError("--duration must be positive") }
        for backend in backends {
            if backend == .sendgroup && !GroupSocket.isKernelModuleLoaded {
                throw ValidationError("--backends sendgroup: the sendgroup module is not loaded (/dev/sendgroup missing)")
            }
        }
    }

    func run() throws {
        guard geteuid() == 0 else {
            FileHandle.standardError.write(Data("groupcast demo needs root: it creates network namespaces and veth links (run it with sudo)\n".utf8))
            throw ExitCode(1)
        }
        _ = logging.bootstrap(label: "groupcast.demo")
        let topology = Topology(clients: clients)
        Topology.removeStale()
        let stop = StopSignal()
        var results: [DemoResult] = []
        var failure: String?
        do {
            try topology.create()
            say("topology \(topology.prefix): SFU namespace \(topology.sfuNamespace), \(clients) client namespaces, veth 10.199.N.1 <-> 10.199.N.2, no default route")
            say(auth ? "authentication on: a fresh key per backend, one join token per participant (--no-auth: open SFU)" : "authentication off (--no-auth): the SFU is open")
            for backend in backends {
                guard !stop.received else { break }
                results.append(try runOnce(backend: backend, topology: topology, stop: stop))
            }
        } catch {
            failure = "\(error)"
        }
        topology.destroy()
        if !results.isEmpty { say("\n" + DemoResult.table(results)) }
        if let failure {
            FileHandle.standardError.write(Data("groupcast demo failed: \(failure)\n".utf8))
            throw ExitCode(1)
        }
        if stop.received {
            say("interrupted (\(stop.signalName ?? "signal")): everything the demo created was removed")
            throw ExitCode(130)
        }
        say("removed namespaces and links \(topology.prefix)-*")
    }

    func runOnce(backend: ForwarderBackend, topology: Topology, stop: StopSignal) throws -> DemoResult {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let statsFile = topology.directory + "/sfu-\(backend).json"
        var processes = ProcessGroup()
        defer { processes.terminateAll() }
        // With authentication: a key for this run and a token file per client host.
        var sfuAuth: [String] = []
        var clientAuth: [Int: [String]] = [:]
        if auth {
            let issuer = try TokenIssuer(keyPath: topology.directory + "/key-\(backend)")
            sfuAuth = ["--auth-key-file", issuer.keyPath]
            for index in 1...clients {
                let path = topology.directory + "/tokens-\(backend)-\(index)"
                try issuer.writeTokens(room: "demo", identityPrefix: "host\(index)", count: participants, to: path)
                clientAuth[index] = ["--token-file", path]
            }
        }
        let sfu = try processes.start(
            "/usr/sbin/ip",
            ["netns", "exec", topology.sfuNamespace, executable, "sfu", "--backend", backend.rawValue, "--stats-file", statsFile,
             "--stats-interval", "250ms", "--log-level", "warning", "--capacity", "\(clients * participants + 8)"] + sfuAuth,
            output: topology.directory + "/sfu-\(backend).log")
        // The SFU writes its first statistics once it is up.
        let up = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: statsFile) {
            guard sfu.isRunning else { throw DemoError.processFailed("SFU", topology.logTail("sfu-\(backend).log")) }
            guard Date() < up else { throw DemoError.processFailed("SFU did not start in 10 s", topology.logTail("sfu-\(backend).log")) }
            if stop.received { return DemoResult(backend: backend, sfu: nil, clients: []) }
            usleep(50_000)
        }
        var clientProcesses: [Process] = []
        for index in 1...clients {
            clientProcesses.append(try processes.start(
                "/usr/sbin/ip",
                ["netns", "exec", topology.clientNamespace(index), executable, "client", "--sfu", "10.199.\(index).1:7000",
                 "--local", "10.199.\(index).2:0", "--participants", "\(participants)", "--duration", "\(duration.value.seconds)",
                 "--interval", "\(interval.value.seconds)", "--receive", receive.description, "--log-level", "warning",
                 "--json-output", topology.directory + "/client-\(backend)-\(index).json"] + (clientAuth[index] ?? []),
                output: topology.directory + "/client-\(backend)-\(index).log"))
        }
        let start = Date()
        let softirqStart = DemoResult.softirqTicks()
        var previous: (Date, UInt64, UInt64)?
        while clientProcesses.contains(where: \.isRunning) {
            if stop.received { break }
            guard sfu.isRunning else { throw DemoError.processFailed("SFU exited", topology.logTail("sfu-\(backend).log")) }
            if let stats = DemoResult.SFUStats.load(statsFile) {
                let now = Date()
                var rates = ""
                if let (time, received, sent) = previous, now.timeIntervalSince(time) > 0 {
                    let seconds = now.timeIntervalSince(time)
                    rates = String(format: " in %.0f/s out %.0f/s", Double(stats.received - min(stats.received, received)) / seconds, Double(stats.sent - min(stats.sent, sent)) / seconds)
                }
                previous = (now, stats.received, stats.sent)
                let line = String(
                    format: "\r[%@] %4.1fs/%.0fs participants %d%@ dropped %llu delay p50 %.1f p99 %.1f us cpu %.1f%%   ",
                    backend.rawValue, Date().timeIntervalSince(start), duration.value.seconds, stats.participants, rates, stats.dropped,
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
                throw DemoError.processFailed("client \(index + 1) exited \(process.terminationStatus)", topology.logTail("client-\(backend)-\(index + 1).log"))
            }
        }
        sfu.interrupt()  // SIGINT: clean shutdown, final statistics
        let deadline = Date().addingTimeInterval(5)
        while sfu.isRunning && Date() < deadline { usleep(20_000) }
        let sfuStats = DemoResult.SFUStats.load(statsFile)
        let reports = (1...clients).compactMap { DemoResult.ClientStats.load(topology.directory + "/client-\(backend)-\($0).json") }
        var softirq: Double?
        if let softirqStart, let softirqEnd = DemoResult.softirqTicks() {
            let seconds = Date().timeIntervalSince(start)
            softirq = seconds > 0 ? 100 * Double(softirqEnd - softirqStart) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds : nil
        }
        return DemoResult(backend: backend, sfu: sfuStats, clients: reports, softirqPercent: softirq)
    }
}

enum DemoError: Error, CustomStringConvertible {
    case command(String, Int32, String)
    case processFailed(String, String)
    var description: String {
        switch self {
        case .command(let command, let status, let output): "`\(command)` exited \(status): \(output)"
        case .processFailed(let what, let log): "\(what)\n\(log)"
        }
    }
}

/// Processes the demo started, ended by their ids (never by name).
struct ProcessGroup {
    private(set) var processes: [Process] = []

    mutating func start(_ path: String, _ arguments: [String], output: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.append(process)
        return process
    }

    func terminateAll() {
        for process in processes where process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(3)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// The namespaces and links of one demo run, named `gcd<pid>-…`.
struct Topology {
    let clients: Int
    let prefix: String
    let directory: String

    init(clients: Int) {
        self.clients = clients
        prefix = "gcd\(getpid())"
        directory = NSTemporaryDirectory() + prefix
    }

    var sfuNamespace: String { "\(prefix)-sfu" }
    func clientNamespace(_ index: Int) -> String { "\(prefix)-c\(index)" }
    /// Interface names fit IFNAMSIZ (15): `gc<pid%1e6>s<N>`.
    func link(_ side: String, _ index: Int) -> String { "gc\(getpid() % 1_000_000)\(side)\(index)" }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw DemoError.command("ip " + arguments.joined(separator: " "), process.terminationStatus, output)
        }
        return output
    }

    func create() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.ip(["netns", "add", sfuNamespace])
        try Self.ip(["-n", sfuNamespace, "link", "set", "lo", "up"])
        for index in 1...clients {
            let namespace = clientNamespace(index)
            try Self.ip(["netns", "add", namespace])
            try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
            // Both ends are created directly inside their namespaces: nothing appears on the host.
            try Self.ip(["link", "add", link("s", index), "netns", sfuNamespace, "type", "veth", "peer", "name", link("c", index), "netns", namespace])
            try Self.ip(["-n", sfuNamespace, "addr", "add", "10.199.\(index).1/24", "dev", link("s", index)])
            try Self.ip(["-n", namespace, "addr", "add", "10.199.\(index).2/24", "dev", link("c", index)])
            try Self.ip(["-n", sfuNamespace, "link", "set", link("s", index), "up"])
            try Self.ip(["-n", namespace, "link", "set", link("c", index), "up"])
        }
    }

    /// Deletes every namespace of this run (their veth links go with them) and the log directory.
    func destroy() {
        for namespace in [sfuNamespace] + (1...clients).map(clientNamespace) {
            _ = try? Self.ip(["netns", "del", namespace])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logTail(_ name: String) -> String {
        let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Removes namespaces left by demo runs whose process no longer exists (killed with SIGKILL).
    static func removeStale() {
        guard let list = try? ip(["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("gcd"), let dash = name.firstIndex(of: "-"),
                let pid = Int32(name[name.index(name.startIndex, offsetBy: 3)..<dash]), pid != getpid()
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                _ = try? ip(["netns", "del", name])
                say("removed stale namespace \(name) of an earlier demo (process \(pid) is gone)")
            }
        }
    }
}

/// One backend's outcome: the SFU's final statistics and the clients' reports.
struct DemoResult {
    struct SFUStats {
        var received: UInt64, sent: UInt64, dropped: UInt64, participants: Int
        var p50: UInt64, p99: UInt64, max: UInt64, cpuUser: Double, cpuSystem: Double

        static func load(_ path: String) -> SFUStats? {
            guard let data = FileManager.default.contents(atPath: path),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let delay = json["delay_ns"] as? [String: Any], let cpu = json["cpu_percent"] as? [String: Any],
                let dropped = json["dropped"] as? [String: Any]
            else { return nil }
            func u(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }
            return SFUStats(
                received: u(json["received"]), sent: u(json["forwarded"]) + u(json["echoed"]),
                dropped: dropped.values.reduce(0) { $0 + u($1) }, participants: (json["participants"] as? NSNumber)?.intValue ?? 0,
                p50: u(delay["p50"]), p99: u(delay["p99"]), max: u(delay["max"]),
                cpuUser: (cpu["user"] as? NSNumber)?.doubleValue ?? 0, cpuSystem: (cpu["system"] as? NSNumber)?.doubleValue ?? 0)
        }
    }

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

    var backend: ForwarderBackend
    var sfu: SFUStats?
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
            let p50s = result.clients.flatMap(\.rttP50).sorted(), p99s = result.clients.flatMap(\.rttP99)
            let rttP50 = p50s.isEmpty ? 0 : p50s[p50s.count / 2]
            let rttP99 = p99s.max() ?? 0
            func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }
            func percent(_ part: UInt64, _ whole: UInt64) -> String { whole == 0 ? "-" : String(format: "%.2f", 100 * Double(part) / Double(whole)) }
            lines.append([
                pad(result.backend.rawValue, 9, left: true), pad("\(sfu.received)", 8), pad("\(sfu.sent)", 9), pad("\(sfu.dropped)", 8),
                pad(us(sfu.p50), 10), pad(us(sfu.p99), 10), pad(us(sfu.max), 10), pad(String(format: "%.1f", sfu.cpuUser), 10),
                pad(String(format: "%.1f", sfu.cpuSystem), 9), pad(us(rttP50), 10), pad(us(rttP99), 10),
                pad(percent(sent - min(sent, echoed), sent), 11), pad(percent(lost, received + lost), 6),
                pad(result.softirqPercent.map { String(format: "%.1f", $0) } ?? "-", 9),
            ].joined(separator: " "))
        }
        lines.append("sfu-*: the SFU's per-packet processing delay (receive to last copy scheduled); rtt-*: client -> SFU -> client (echo), median of per-stream p50 and worst p99; cpu: the SFU process; softirq: the whole machine while the clients ran (% of one CPU).")
        return lines.joined(separator: "\n")
    }
}

func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    guard text.count < width else { return text }
    let fill = String(repeating: " ", count: width - text.count)
    return left ? text + fill : fill + text
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Writes a line to standard output unbuffered, in order with the status line.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
