import Foundation
import GroupUnicast
import Testing

/// The example executables, run as a user would: built next to this test binary.
enum ExampleBinary {
    static func url(_ name: String) -> URL {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Runs `name` with `arguments` to completion (killed after `timeout`), returning status and output.
    static func run(_ name: String, _ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = url(name)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(timeout.components.seconds)), execute: watchdog)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension ExampleBinary {
    /// Starts `name` with `arguments`, its standard output piped, and returns it with its first
    /// output line (the examples that listen print their address there).
    static func start(_ name: String, _ arguments: [String]) throws -> (process: Process, output: Pipe, firstLine: String) {
        let process = Process()
        process.executableURL = url(name)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var firstLine = Data()
        while !firstLine.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            firstLine.append(chunk)
        }
        return (process, output, String(decoding: firstLine.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self))
    }
}

extension GroupUnicastTests {
    @Suite("Examples")
    struct Examples {
        @Test("game-broadcaster delivers every snapshot with each client's header",
              arguments: [["--backend", "sendmmsg"], ["--backend", "socket", "--ipv6"], ["--ipv6"]])
        func gameBroadcaster(arguments: [String]) throws {
            let (status, output) = try ExampleBinary.run(
                "game-broadcaster", ["--clients", "6", "--ticks", "5", "--tick-interval", "1"] + arguments)
            #expect(status == 0, "\(output)")
            #expect(output.contains("5 ticks, 6 clients"), "\(output)")
            #expect(output.contains("30/30 snapshots delivered, 30 verified, 0 send failures"), "\(output)")
        }

        @Test("game-broadcaster rejects bad options")
        func gameBroadcasterValidation() throws {
            let (status, output) = try ExampleBinary.run("game-broadcaster", ["--clients", "0"])
            #expect(status != 0)
            #expect(output.contains("--clients must be positive"), "\(output)")
        }

        @Test("live-relay fans a stream out to subscribers from the CLI and a file")
        func liveRelay() throws {
            let subscribers4 = try Receivers(count: 3, family: .ipv4)
            let subscribers6 = try Receivers(count: 2, family: .ipv6)
            let file = FileManager.default.temporaryDirectory
                .appendingPathComponent("live-relay-subscribers-\(getpid()).txt")
            defer { try? FileManager.default.removeItem(at: file) }
            let lines = ["# subscribers of the test stream", "\(subscribers4.addresses[0])",
                         "  \(subscribers6.addresses[0])  # IPv6 one", "", "\(subscribers4.addresses[1])"]
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)

            // "live-relay: listening on 127.0.0.1:PORT, ..."
            let (process, output, banner) = try ExampleBinary.start("live-relay", [
                "--listen", "127.0.0.1:0", "--subscribers-file", file.path,
                "--subscriber", "\(subscribers4.addresses[2])", "--subscriber", "\(subscribers6.addresses[1])",
                "--count", "20", "--idle-timeout", "10",
            ])
            defer { if process.isRunning { process.terminate() } }
            let listening = try #require(banner.split(separator: " ").dropFirst(3).first.map { String($0.dropLast()) },
                                         "banner: \(banner)")
            let relayAddress = try SocketAddress(parsing: listening)
            #expect(banner.contains("5 subscribers"), "\(banner)")

            let source = try GroupSocket(family: .ipv4, backend: .socket)
            let stream = (0..<20).map { pattern(100 + $0, seed: $0) }
            for datagram in stream { try source.send(datagram, to: relayAddress) }

            for receivers in [subscribers4, subscribers6] {
                for index in receivers.sockets.indices {
                    let got = try receivers.drain(index, expected: 20, timeout: .seconds(10)).map(\.bytes)
                    #expect(got == stream, "subscriber \(receivers.addresses[index]) got \(got.count) datagrams")
                }
            }
            let rest = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(String(decoding: rest, as: UTF8.self).contains("relayed 20 datagrams to 5 subscribers: 100 sent, 0 failed"))
        }

        @Test("async-echo (top-level try await on AsyncGroupSocket) echoes every datagram")
        func asyncEcho() throws {
            // "async-echo: listening on 127.0.0.1:PORT"
            let (process, output, banner) = try ExampleBinary.start("async-echo", ["3"])
            defer { if process.isRunning { process.terminate() } }
            let echoAddress = try SocketAddress(parsing: try #require(
                banner.split(separator: " ").last.map(String.init), "banner: \(banner)"))

            let client = try Receivers(count: 1, family: .ipv4)
            let datagrams = (0..<3).map { pattern(10 + $0, seed: $0) }
            var echoes: [[UInt8]] = []
            for datagram in datagrams {
                try client.sockets[0].send(datagram, to: echoAddress)
                echoes += try client.drain(0, expected: 1, timeout: .seconds(10)).map(\.bytes)
            }
            #expect(echoes == datagrams)
            let rest = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(String(decoding: rest, as: UTF8.self).contains("async-echo: echoed 3 datagrams"))
        }

        @Test("live-relay reports a bad subscribers file with its line")
        func liveRelayBadFile() throws {
            let file = FileManager.default.temporaryDirectory
                .appendingPathComponent("live-relay-bad-\(getpid()).txt")
            defer { try? FileManager.default.removeItem(at: file) }
            try "127.0.0.1:9\nlocalhost:9\n".write(to: file, atomically: true, encoding: .utf8)
            let (status, output) = try ExampleBinary.run(
                "live-relay", ["--listen", "127.0.0.1:0", "--subscribers-file", file.path])
            #expect(status != 0)
            #expect(output.contains("\(file.path):2: invalid socket address \"localhost:9\""), "\(output)")
        }
    }
}
