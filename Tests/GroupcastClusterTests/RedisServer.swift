#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastRedis
import Synchronization
import Testing

/// A real `redis-server` of the test's own (Debian's package; `scripts/setup test` installs it),
/// on a free loopback port, without persistence, in a temporary directory. A missing server
/// fails the test: the client is only ever tested against the real thing.
final class RedisServer: @unchecked Sendable {
    let port: Int
    /// The address it listens on: loopback, or its namespace's (``init(namespace:address:)``).
    let host: String
    /// The named network namespace it runs in; nil: the test's own.
    let namespace: String?
    private let directory: URL
    private var process: Process?

    static let executable = "/usr/bin/redis-server"

    init() async throws {
        namespace = nil
        host = "127.0.0.1"
        directory = try Self.makeDirectory()
        port = try Self.freePort()
        try await start()
    }

    /// A server inside the named network namespace `namespace`, on `address`:6379 (a
    /// ``GroupcastLab/Topology``'s, which has nothing else on it). The test process cannot
    /// reach it: it is asked with `redis-cli` run in that namespace (``command(_:)``).
    init(namespace: String, address: String) async throws {
        self.namespace = namespace
        host = address
        directory = try Self.makeDirectory()
        port = 6379
        try await start()
    }

    private static func makeDirectory() throws -> URL {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestFailure("\(Self.executable) is missing: `apt-get install redis-server` (scripts/setup test installs it)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("groupcast-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    var url: String { "redis://\(host):\(port)" }

    /// `redis-cli COMMAND...` in the server's namespace; its output, trimmed (nil: it failed).
    func command(_ arguments: [String]) -> String? {
        let process = inNamespace(["/usr/bin/redis-cli", "-h", host, "-p", String(port)] + arguments)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? text.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    var configuration: RedisConfiguration {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.reconnectDelay = .milliseconds(20)...(.milliseconds(200))
        configuration.commandTimeout = .seconds(5)
        return configuration
    }

    /// Starts the server (again, after ``stop()``: empty, as a restarted server without
    /// persistence is) and waits until it answers PING.
    func start() async throws {
        // `ip netns exec` execs the server: the process is the server itself.
        let process = inNamespace([
            Self.executable, "--port", String(port), "--bind", host, "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
            // Protected mode accepts loopback clients only; in its namespace only the bridge's
            // nodes reach it.
            "--protected-mode", namespace == nil ? "yes" : "no",
        ])
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if !process.isRunning { throw TestFailure("redis-server on port \(port) exited with status \(process.terminationStatus)") }
            if namespace != nil {
                if command(["PING"]) == "PONG" { return }
            } else if let connection = try? await RedisConnection.connect(configuration) {
                defer { connection.close() }
                if (try? await connection.ping()) == "PONG" { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        stop()
        throw TestFailure("redis-server on port \(port) did not answer PING within 10 s")
    }

    /// A process running `command` (its program's path first) in the server's namespace.
    private func inNamespace(_ command: [String]) -> Process {
        let command = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + command } ?? command
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        return process
    }

    /// SIGKILL, like a crash: connections drop, nothing is saved.
    func stop() {
        guard let process else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        self.process = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A port nothing uses now (TCP or UDP): bound by the kernel's choice, then released.
    static func freePort(udp: Bool = false) throws -> Int {
        let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("bind/getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `client` for the duration of `body`.
func withRunningClient<T: Sendable>(
    _ client: RedisClient, _ body: @Sendable () async throws -> T
) async throws -> T {
    let runner = Task { await client.run() }
    defer { runner.cancel() }
    try await waitUntil("the client connected") { client.isConnected }
    return try await body()
}

/// Polls `condition` every 10 ms until it holds; an error it throws counts as "not yet" (a
/// client reconnecting). Fails after `timeout`, with the last error if any.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestFailure("timed out after \(timeout) waiting until \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
}

/// Everything a stream yields, recorded by a task of its own until ``stop()``, for tests to
/// poll with ``waitUntil(_:timeout:_:)``.
final class Recorder<Element: Sendable>: Sendable {
    private final class Events: Sendable {
        let list = Mutex<[Element]>([])
    }
    private let events = Events()
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ stream: AsyncStream<Element>) {
        let events = self.events
        let task = Task {
            for await event in stream { events.list.withLock { $0.append(event) } }
        }
        self.task.withLock { $0 = task }
    }

    var all: [Element] { events.list.withLock { $0 } }

    func stop() {
        task.withLock { $0?.cancel() }
    }

    deinit { stop() }
}
