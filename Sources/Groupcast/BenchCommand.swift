#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// `groupcast bench`: the send micro benchmark (`send`) and the SFU macro benchmark (`sfu`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: the send path (sendgroup paper Figs. 1-3) and the SFU (pktswitch paper Figs. 3-5).",
        discussion: "Results, method and published numbers: Docs/benchmarks.md.",
        subcommands: [BenchSendCommand.self, BenchSFUCommand.self]
    )
}

/// The project checkout this binary was built in (`.build/…/groupcast` lives under it), or
/// `GROUPCAST_REPO`: the benchmarks' scripts, the kernel module and the result directory are there.
func repositoryRoot() throws -> String {
    if let root = ProcessInfo.processInfo.environment["GROUPCAST_REPO"], !root.isEmpty { return root }
    var url = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("scripts/bench-send").path) { return url.path }
        url.deleteLastPathComponent()
    }
    throw ValidationError("cannot find the project checkout (scripts/bench-send) above this executable: set GROUPCAST_REPO")
}

/// Runs `path arguments` with this process's standard streams and exits with its status.
func runScript(_ path: String, _ arguments: [String]) throws -> Never {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw ValidationError("\(path) is missing or not executable (GROUPCAST_REPO names the checkout)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    // Ctrl-C reaches the whole foreground group; wait for the script to clean up.
    signal(SIGINT, SIG_IGN)
    do { try process.run() } catch { throw ValidationError("cannot run \(path): \(error)") }
    process.waitUntilExit()
    throw ExitCode(process.terminationStatus)
}

/// `groupcast bench send`: `scripts/bench-send` (bench/sendbench.c) with the same options.
struct BenchSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send-path micro benchmark: sendmsg loop, sendmmsg, io_uring, sendgroup, kernel-resident group.",
        discussion: "Runs scripts/bench-send; every option after the ones below is passed on (--reps N, --time SEC, --sweeps, --out DIR, --sink xdp|tc, --no-host). Needs root."
    )

    @Option(help: "Also run in a VM on this kernel line (6.1, 6.12) with the sendgroup module.")
    var vm: String?

    @Flag(help: "Short smoke run (seconds).")
    var quick = false

    @Argument(parsing: .captureForPassthrough, help: "Options passed to scripts/bench-send.")
    var passthrough: [String] = []

    func run() throws {
        let root = try repositoryRoot()
        var arguments: [String] = []
        if let vm { arguments += ["--vm", vm] }
        if quick { arguments.append("--quick") }
        try runScript(root + "/scripts/bench-send", arguments + passthrough)
    }
}
