#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastProtocol
import GroupcastLab

/// `groupcast-lab bench`: the send micro benchmark (`send`) and the SFU macro benchmark (`sfu`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: the send path (sendgroup paper Figs. 1-3) and the SFU (pktswitch paper Figs. 3-5).",
        discussion: "Results, method and published numbers: Docs/benchmarks.md.",
        subcommands: [BenchSendCommand.self, BenchSFUCommand.self]
    )
}

/// Runs `path arguments` with this process's standard streams and exits with its status.
func runScript(_ path: String, _ arguments: [String]) throws -> Never {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        FileHandle.standardError.write(Data("groupcast-lab: \(path) is missing or not executable (GROUPCAST_REPO names the checkout)\n".utf8))
        throw ExitCode(1)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    // Ctrl-C reaches the whole foreground group; wait for the script to clean up.
    signal(SIGINT, SIG_IGN)
    do { try process.run() } catch {
        FileHandle.standardError.write(Data("groupcast-lab: cannot run \(path): \(error)\n".utf8))
        throw ExitCode(1)
    }
    process.waitUntilExit()
    throw ExitCode(process.terminationStatus)
}

/// `groupcast-lab bench send`: `scripts/bench/send` (bench/sendbench.c) with the same options.
struct BenchSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send-path micro benchmark: sendmsg loop, sendmmsg, io_uring, sendgroup, kernel-resident group.",
        discussion: "Runs scripts/bench/send; every option after the ones below is passed on (--reps N, --time SEC, --sweeps, --out DIR, --sink xdp|tc, --no-host). Needs root."
    )

    @Option(help: "Also run in a VM on this kernel line (6.1, 6.12) with the sendgroup module.")
    var vm: String?

    @Flag(help: "Short smoke run (seconds).")
    var quick = false

    @Argument(parsing: .captureForPassthrough, help: "Options passed to scripts/bench/send.")
    var passthrough: [String] = []

    func run() throws {
        let root = try exitOnLabError("bench send") { try repositoryRoot() }
        var arguments: [String] = []
        if let vm { arguments += ["--vm", vm] }
        if quick { arguments.append("--quick") }
        try runScript(root + "/scripts/bench/send", arguments + passthrough)
    }
}

/// Runs `body`; an error becomes `groupcast-lab WHAT: MESSAGE` on standard error and the exit
/// status of a ``LabError`` (1, or 130 after an interruption), 1 for any other.
func exitOnLabError<T>(_ what: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data("groupcast-lab \(what): \(error)\n".utf8))
        throw ExitCode((error as? LabError)?.exitCode ?? 1)
    }
}
