#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Processes the lab started, ended by their ids (never by name).
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

/// The `groupcast` executable the lab runs as SFU and clients: beside this program (SwiftPM
/// builds them into one directory), or `GROUPCAST` when set.
enum GroupcastExecutable {
    static func path() throws(LabError) -> String {
        if let path = ProcessInfo.processInfo.environment["GROUPCAST"], !path.isEmpty { return path }
        let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("groupcast").path
        guard FileManager.default.isExecutableFile(atPath: beside) else {
            throw .missingExecutable("no groupcast executable beside this program (\(beside)): build it (swift build --product groupcast) or set GROUPCAST")
        }
        return beside
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
