#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastCommandLine
import GroupcastSFU

/// Processes the lab started, ended by their ids (never by name).
struct ProcessGroup {
    private(set) var processes: [Process] = []

    /// Starts `command` (its program's path first), its output and errors to the file `output`.
    mutating func start(_ command: [String], output: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        // Truncates or creates it; when that fails, opening it below throws the reason.
        _ = FileManager.default.createFile(atPath: output, contents: nil)
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

/// A run's directory of logs and statistics files (`$TMPDIR/PREFIX`), removed at the end.
struct RunDirectory {
    let path: String

    init(prefix: String) { path = NSTemporaryDirectory() + prefix }

    func create() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// The last 15 lines of the file `name`, for error messages.
    func tail(_ name: String) -> String {
        let text = (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }
}

/// The `groupcast` executable the lab runs as SFU and clients, beside this program (SwiftPM
/// builds them into one directory) or `GROUPCAST` when set, and the one place that writes their
/// command lines: the demo and the SFU benchmark run the same `groupcast sfu` and `groupcast
/// client` in a ``Topology``'s namespaces, each adding its own options.
struct GroupcastExecutable {
    let path: String

    init() throws(LabError) {
        if let path = ProcessInfo.processInfo.environment["GROUPCAST"], !path.isEmpty {
            self.path = path
            return
        }
        let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("groupcast").path
        guard FileManager.default.isExecutableFile(atPath: beside) else {
            throw .missingExecutable("no groupcast executable beside this program (\(beside)): build it (swift build --product groupcast) or set GROUPCAST")
        }
        path = beside
    }

    /// `groupcast sfu` in `topology`'s SFU namespace with `backend`, statistics to `statsFile`
    /// every `statsInterval`, room capacity `capacity`, then `options`.
    func sfu(in topology: Topology, backend: ForwarderBackend, statsFile: String, statsInterval: String, capacity: Int,
             options: [String] = []) -> [String] {
        sfu(namespace: topology.sfuNamespace, backend: backend, statsFile: statsFile, statsInterval: statsInterval, capacity: capacity,
            options: options)
    }

    /// `groupcast sfu` in the named namespace `namespace`, otherwise as above.
    func sfu(namespace: String, backend: ForwarderBackend, statsFile: String, statsInterval: String, capacity: Int,
             options: [String] = []) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", namespace, path, "sfu", "--backend", backend.rawValue,
         "--stats-file", statsFile, "--stats-interval", statsInterval, "--capacity", "\(capacity)", "--log-level", "warning"]
            + options
    }

    /// How waiting for a `groupcast sfu` to come up ended.
    enum Startup { case up, exited, timedOut, interrupted }

    /// Waits until `sfu` has written its first statistics to `statsFile` (it does once it is up),
    /// has exited, `seconds` have passed, or `stop` (when given) was received.
    func waitUntilUp(_ sfu: Process, statsFile: String, within seconds: Double, stop: StopSignal? = nil) -> Startup {
        let deadline = Date().addingTimeInterval(seconds)
        while !FileManager.default.fileExists(atPath: statsFile) {
            guard sfu.isRunning else { return .exited }
            guard Date() < deadline else { return .timedOut }
            if stop?.received == true { return .interrupted }
            usleep(20_000)
        }
        return .up
    }

    /// `groupcast client` in client namespace `index` of `topology`, against the SFU across its
    /// link: `participants` sending for `seconds` every `interval` seconds (per stream), receiving
    /// `receive`, the report as JSON to `report`, then `options`.
    func client(in topology: Topology, namespace index: Int, participants: Int, seconds: Double, interval: Double,
                receive: String, report: String, options: [String] = []) -> [String] {
        client(namespace: topology.clientNamespace(index), sfu: "\(topology.sfuAddress(client: index)):7000", local: topology.clientAddress(index),
               participants: participants, seconds: seconds, interval: interval, receive: receive, report: report, options: options)
    }

    /// `groupcast client` in the named namespace `namespace`, on address `local`, against the SFU
    /// at `sfu` (`IP:PORT`), otherwise as above.
    func client(namespace: String, sfu: String, local: String, participants: Int, seconds: Double, interval: Double,
                receive: String, report: String, options: [String] = []) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", namespace, path, "client", "--sfu", sfu, "--local", "\(local):0",
         "--participants", "\(participants)", "--duration", String(format: "%.3f", seconds),
         "--interval", String(format: "%.6f", interval), "--receive", receive, "--json-output", report, "--log-level", "warning"]
            + options
    }
}

/// The project checkout this program was built in (`.build/…/groupcast-lab` lives under it), or
/// `GROUPCAST_REPO`: the benchmarks' scripts, the kernel module and the result directory are there.
public func repositoryRoot() throws(LabError) -> String {
    if let root = ProcessInfo.processInfo.environment["GROUPCAST_REPO"], !root.isEmpty { return root }
    var url = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("scripts/bench/send").path) { return url.path }
        url.deleteLastPathComponent()
    }
    throw .noCheckout("cannot find the project checkout (scripts/bench/send) above this executable: run it from a checkout's build or set GROUPCAST_REPO")
}

/// Why a lab run failed; ``exitCode`` is the status the command exits with.
public enum LabError: Error, CustomStringConvertible {
    /// `ip ...` failed: the command, its status, its output.
    case command(String, Int32, String)
    /// A process of the run failed: what happened, the tail of its log.
    case processFailed(String, String)
    /// The SFU with a backend did not come up; the reason from its log.
    case backendUnavailable(String)
    case missingExecutable(String)
    case noCheckout(String)
    case failed(String)
    /// SIGINT or SIGTERM: everything created was removed.
    case interrupted(String)
    case nothingMeasured(String)

    public var description: String {
        switch self {
        case .command(let command, let status, let output): "`\(command)` exited \(status): \(output)"
        case .processFailed(let what, let log): log.isEmpty ? what : "\(what)\n\(log)"
        case .backendUnavailable(let reason), .missingExecutable(let reason), .noCheckout(let reason), .failed(let reason),
             .interrupted(let reason), .nothingMeasured(let reason):
            reason
        }
    }

    /// 130 for an interruption (as a shell reports SIGINT), 1 otherwise.
    public var exitCode: Int32 {
        if case .interrupted = self { return 130 }
        return 1
    }
}
