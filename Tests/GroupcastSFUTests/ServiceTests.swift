#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastClient
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Synchronization
import Testing

/// `groupcast sfu` run as a service (Docs/operations.md): its log lines, its statistics line off
/// by default without a terminal, the socket buffers it logs at start, its metrics scraped and
/// parsed as Prometheus does. Loopback, the default backend.
@Suite(.serialized) struct ServiceTests {
    static let basePort = 30_000 + Int(getpid() % 20_000)

    /// What one run printed.
    struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var errorLines: [String] { standardError.split(separator: "\n").map(String.init) }
    }

    /// Runs `groupcast sfu ARGUMENTS` for `seconds` (calling `during` meanwhile with its pid), then
    /// SIGTERM; through `launcher` (a command that execs its last argument, like `prlimit`) if given.
    static func runSFU(
        _ arguments: [String], port: Int, seconds: Double = 1, launcher: [String] = [], during: (pid_t) throws -> Void = { _ in }
    ) throws -> Run {
        let process = Process()
        let sfu = ["sfu", "--control", "127.0.0.1:\(port)", "--media", "127.0.0.1:\(port + 1)"] + arguments
        if let command = launcher.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(launcher.dropFirst()) + [GroupcastBinary.url.path] + sfu
        } else {
            process.executableURL = GroupcastBinary.url
            process.arguments = sfu
        }
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        usleep(UInt32(seconds * 1_000_000))
        try during(process.processIdentifier)
        kill(process.processIdentifier, SIGTERM)
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Run(status: process.terminationStatus, standardOutput: out, standardError: err)
    }

    @Test func jsonLogsWithTheGrantedBuffersAndNoStatsLineWithoutATerminal() throws {
        let run = try Self.runSFU(["--log-format", "json", "--receive-buffer", "1073741824", "--send-buffer", "65536"], port: Self.basePort, seconds: 1.5)
        #expect(run.status == 0, "\(run.standardError)")
        var records: [[String: String]] = []
        for line in run.errorLines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            records.append(try #require(object, "not a JSON log line: \(line)"))
        }
        #expect(records.allSatisfy { $0["ts"]?.hasSuffix("Z") == true && $0["level"] != nil && $0["msg"] != nil })
        let receive = try #require(records.first { $0["option"] == "SO_RCVBUF" }, "\(run.standardError)")
        #expect(receive["requested"] == "1073741824")
        #expect(receive["capped"] == "true" && receive["level"] == "warning", "\(receive)")
        #expect(receive["msg"]?.contains("sysctl -w net.core.rmem_max=1073741824") == true, "\(receive)")
        let send = try #require(records.first { $0["option"] == "SO_SNDBUF" })
        #expect(send["requested"] == "65536" && send["granted"] == "131072" && send["capped"] == "false", "\(send)")
        // Not a terminal: no periodic statistics, the final line only (stdout).
        #expect(!records.contains { $0["msg"] == "stats" }, "\(run.standardError)")
        #expect(run.standardOutput.hasPrefix("final: "), "\(run.standardOutput)")
    }

    /// Kernel groups take a descriptor per route: a soft limit of 256 under a hard one of 4096
    /// would leave routes without their group from about 80 participants on.
    @Test func theOpenFileLimitIsRaisedToTheHardOneAtStart() throws {
        var limits = ""
        let run = try Self.runSFU(
            ["--log-format", "json"], port: Self.basePort + 60, seconds: 1.2, launcher: ["/usr/bin/prlimit", "--nofile=256:4096"]
        ) { pid in
            limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        }
        #expect(run.status == 0, "\(run.standardError)")
        let openFiles = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }
        let values = openFiles?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).prefix(2).map(String.init)
        #expect(values == ["4096", "4096"], "\(limits)")
        let record = try run.errorLines.compactMap { line in
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        }.first { $0["msg"]?.hasPrefix("open-file limit raised") == true }
        #expect(record?["was"] == "256" && record?["soft"] == "4096", "\(run.standardError)")
    }

    @Test func logfmtStatsLinesWhenAnIntervalIsGiven() throws {
        let run = try Self.runSFU(["--log-format", "logfmt", "--stats-interval", "200ms"], port: Self.basePort + 10, seconds: 1.2)
        #expect(run.status == 0, "\(run.standardError)")
        let stats = run.errorLines.filter { $0.contains(" msg=stats ") }
        #expect(stats.count >= 3, "\(run.standardError)")
        for line in stats {
            #expect(line.hasPrefix("ts=") && line.contains(" level=info logger=groupcast.sfu.stats "), "\(line)")
            #expect(line.contains(" received=0 ") && line.contains(" delay_p99_us=0.0 "), "\(line)")
        }
    }

    @Test func metricsScrapedAndParsedByPrometheusClient() throws {
        let port = Self.basePort + 20
        var parsed: [String: Any] = [:]
        var health = ""
        let run = try Self.runSFU(["--metrics-listen", "127.0.0.1:\(port + 2)", "--log-level", "warning"], port: port) { _ in
            parsed = try scrapeMetrics(port: UInt16(port + 2))
            health = httpGet(port: UInt16(port + 2), path: "/healthz") ?? ""
        }
        #expect(run.status == 0, "\(run.standardError)")
        #expect(health.hasPrefix("HTTP/1.0 200") && health.hasSuffix("ok\n"), "\(health)")
        #expect(parsed["status"] as? Int == 200)
        #expect((parsed["content_type"] as? String)?.hasPrefix("text/plain; version=0.0.4") == true)
        let families = try #require(parsed["families"] as? [String: [String: Any]])
        // prometheus_client names a counter family without `_total`.
        for (name, type) in [
            ("groupcast_sfu_processing_delay_seconds", "histogram"), ("groupcast_sfu_packets_received", "counter"),
            ("groupcast_sfu_packets_dropped", "counter"), ("groupcast_sfu_participants", "gauge"),
            ("groupcast_sfu_control_errors", "counter"), ("groupcast_sfu_cpu_seconds", "counter"),
        ] {
            #expect(families[name]?["type"] as? String == type, "\(name): \(families[name] ?? [:])")
            let help = families[name]?["help"] as? String ?? ""
            #expect(help.count > 0, "\(name) has no HELP")
        }
        let dropped = try #require(families["groupcast_sfu_packets_dropped"]?["samples"] as? [[Any]])
        let reasons = Set(dropped.compactMap { ($0[1] as? [String: String])?["reason"] })
        #expect(reasons.isSuperset(of: ["truncated", "bad_rtp_version", "spoofed", "shed_vhq", "head_drop", "send_failed"]), "\(reasons)")
    }
}

extension ServiceTests {
    /// The keepalive timeout an SFU hands a participant that REGISTERs from this process.
    static func grantedKeepalive(control port: Int) throws -> UInt32 {
        let socket = try GroupSocket(bindingTo: .ipv4(.loopback, port: 0), backend: .socket)
        defer { try? socket.close() }
        let channel = ControlChannel(socket: socket, sfu: .ipv4(.loopback, port: UInt16(port)))
        return try channel.register(JoinParameters(), requestID: 1).keepaliveTimeoutMilliseconds
    }

    /// Precedence (Docs/operations.md): --keepalive-timeout beats the room file's
    /// keepaliveTimeoutMs (before: the room file won silently), and the decision is logged; a
    /// room's own capacity beats --capacity, and that is logged too.
    @Test func keepaliveFlagBeatsTheRoomFileAndEveryOverrideIsLogged() throws {
        let directory = NSTemporaryDirectory() + "groupcast-precedence-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rooms = directory + "/rooms.json"
        try #"{"keepaliveTimeoutMs": 5000, "rooms": [{"name": "default", "capacity": 3}]}"#.write(toFile: rooms, atomically: true, encoding: .utf8)

        let port = Self.basePort + 30
        var granted: UInt32 = 0
        let run = try Self.runSFU(["--room", rooms, "--keepalive-timeout", "2s", "--capacity", "8", "--log-format", "logfmt"], port: port) { _ in
            granted = try Self.grantedKeepalive(control: port)
        }
        #expect(run.status == 0, "\(run.standardError)")
        #expect(granted == 2000)
        #expect(run.standardError.contains("keepalive timeout 2.0 seconds (--keepalive-timeout) overrides the room file's keepaliveTimeoutMs 5000"), "\(run.standardError)")
        #expect(run.standardError.contains("room default: capacity 3 from the room file (--capacity 8 is for rooms without their own)"), "\(run.standardError)")

        // Without the flag the room file's value holds.
        let fallback = try Self.runSFU(["--room", rooms], port: port + 5) { _ in
            granted = try Self.grantedKeepalive(control: port + 5)
        }
        #expect(fallback.status == 0, "\(fallback.standardError)")
        #expect(granted == 5000)
    }
}

/// `scripts/lib/scrape-metrics`: urllib + prometheus_client's text parser, as JSON.
func scrapeMetrics(port: UInt16) throws -> [String: Any] {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/lib/scrape-metrics").path
    let venv = "/opt/groupunicast/venv/bin/python3"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3")
    process.arguments = [script, "http://127.0.0.1:\(port)/metrics"]
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let message = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ScrapeFailure(status: process.terminationStatus, message: message)
    }
    return object
}

struct ScrapeFailure: Error, CustomStringConvertible {
    var status: Int32
    var message: String
    var description: String { "scrape-metrics exited \(status): \(message)" }
}

/// `SIGHUP` (`systemctl reload`): `groupcast sfu --config FILE` on loopback with a sender
/// streaming to a receiver through it. A reload lowers `max-participants` and changes the backend
/// in the file: the new limit refuses the next REGISTER, the backend change is logged as needing
/// a restart, and every packet sent across the reload arrives (no participant dropped, no route
/// lost). A reload of a broken file is refused with its line, and the running limit stays.
extension ServiceTests {
    /// Streams ASQ from `sender` to `receiver` (both registered, 500 packets/s) until `until`
    /// says so; returns the sequence numbers that arrived and the largest gap between arrivals.
    static func stream(
        from sender: GroupSocket, ssrc: UInt32, to receiver: GroupSocket, media: SocketAddress, until done: @escaping @Sendable () -> Bool
    ) throws -> (sent: Int, received: Set<UInt16>, largestGap: Duration) {
        let sending = Thread {
            var sequence: UInt16 = 0
            while !done() {
                let packet = RTPHeader.packet(payloadType: StreamType.asq.rtpPayloadType, sequenceNumber: sequence, timestamp: 0, ssrc: ssrc, payload: [UInt8](repeating: 1, count: 40))
                if (try? sender.send(packet, to: media)) != nil { sequence &+= 1 }
                usleep(2_000)
            }
            sentCount.withLock { $0 = Int(sequence) }
        }
        sentCount.withLock { $0 = -1 }
        sending.start()
        var received = Set<UInt16>()
        var last: ContinuousClock.Instant?
        var largestGap = Duration.zero
        var quietSince: ContinuousClock.Instant?
        // Until the sender stopped and nothing came for 300 ms.
        while true {
            if try receiver.waitForReadable(timeout: .milliseconds(20)) {
                for datagram in try receiver.receiveBatch(maxCount: 64) where datagram.source == media {
                    guard let header = try? RTPHeader.parse(datagram.bytes), header.ssrc == ssrc else { continue }
                    let now = ContinuousClock.now
                    if let last { largestGap = max(largestGap, last.duration(to: now)) }
                    last = now
                    quietSince = nil
                    received.insert(header.sequenceNumber)
                }
            } else if sentCount.withLock({ $0 }) >= 0 {
                if let quietSince, quietSince.duration(to: .now) > .milliseconds(300) { break }
                if quietSince == nil { quietSince = .now }
            }
        }
        return (sentCount.withLock { $0 }, received, largestGap)
    }
    static let sentCount = Mutex<Int>(-1)

    @Test func sighupReloadsRoomsAndLimitsWithoutDroppingMedia() throws {
        let port = Self.basePort + 40
        let directory = NSTemporaryDirectory() + "groupcast-reload-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/sfu.yaml"
        let common = "control: 127.0.0.1:\(port)\nmedia: 127.0.0.1:\(port + 1)\nlog-format: logfmt\n"
        try (common + "max-participants: 10\nrooms:\n  - name: default\n    capacity: 10\n").write(toFile: config, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = GroupcastBinary.url
        process.arguments = ["sfu", "--config", config]
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let control = SocketAddress.ipv4(.loopback, port: UInt16(port)), media = SocketAddress.ipv4(.loopback, port: UInt16(port + 1))

        func participant() throws -> (GroupSocket, ControlChannel) {
            let socket = try GroupSocket(bindingTo: .ipv4(.loopback, port: 0), backend: .socket, options: .init(nonBlocking: true, receiveBufferSize: 1 << 20))
            return (socket, ControlChannel(socket: socket, sfu: control))
        }
        func register(_ channel: ControlChannel, id: UInt32) throws(ClientError) -> Membership {
            try channel.register(JoinParameters(), requestID: id)
        }
        let (senderSocket, senderChannel) = try participant()
        let (receiverSocket, receiverChannel) = try participant()
        defer { try? senderSocket.close(); try? receiverSocket.close() }
        var sender: Membership?
        for _ in 0..<50 where sender == nil {  // until the SFU is up
            sender = try? register(senderChannel, id: 1)
            if sender == nil { usleep(100_000) }
        }
        let senderMembership = try #require(sender, "the SFU did not come up")
        _ = try register(receiverChannel, id: 1)

        // Reload while streaming: the limit drops to the two registered, the backend changes.
        let stop = Mutex(false)
        let pid = process.processIdentifier
        let reloader = Thread {
            usleep(400_000)
            try? (common + "max-participants: 2\nbackend: socket\nrooms:\n  - name: default\n    capacity: 10\n  - name: added\n").write(toFile: config, atomically: true, encoding: .utf8)
            kill(pid, SIGHUP)
            usleep(600_000)
            stop.withLock { $0 = true }
        }
        reloader.start()
        let run = try Self.stream(from: senderSocket, ssrc: senderMembership.ssrcs[.asq], to: receiverSocket, media: media) { stop.withLock { $0 } }
        print("reload under media: \(run.sent) sent, \(run.received.count) received, largest gap between arrivals \(run.largestGap)")
        #expect(run.sent > 200)
        #expect(run.received.count == run.sent, "lost across the reload: \(Set(0..<UInt16(max(0, run.sent))).subtracting(run.received).sorted().prefix(20))")

        // The new limit applies.
        let (thirdSocket, thirdChannel) = try participant()
        defer { try? thirdSocket.close() }
        #expect {
            _ = try register(thirdChannel, id: 1)
        } throws: { error in
            guard case .refused(_, let code, _) = error as? ClientError else { return false }
            return code == .serverFull
        }

        // A broken file: refused with its line, the running limit stays (a REGISTER is still
        // refused for it, not admitted under a default), media still flows.
        try (common + "max-participants: 2\ncapacity: none\n").write(toFile: config, atomically: true, encoding: .utf8)
        kill(pid, SIGHUP)
        usleep(300_000)
        #expect {
            _ = try register(thirdChannel, id: 2)
        } throws: { error in
            guard case .refused(_, let code, _) = error as? ClientError else { return false }
            return code == .serverFull
        }
        stop.withLock { $0 = false }
        let again = Thread { usleep(300_000); stop.withLock { $0 = true } }
        again.start()
        let after = try Self.stream(from: senderSocket, ssrc: senderMembership.ssrcs[.asq], to: receiverSocket, media: media) { stop.withLock { $0 } }
        #expect(after.sent > 50 && after.received.count == after.sent, "\(after.sent) sent, \(after.received.count) received after the refused reload")

        kill(pid, SIGTERM)
        let log = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        _ = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(log)")
        #expect(log.contains("configuration reloaded from \(config): rooms added,default, capacity 64, max-participants 2"), "\(log)")
        // The backend before: the fastest available here (sendmmsg, or sendgroup with the module).
        #expect(log.contains("reload: backend \(ForwarderBackend.fastestAvailable) -> socket needs a restart") && log.contains("needs_restart=true"), "\(log)")
        #expect(log.contains("reload refused, the running configuration stays: \(config):5: capacity: expected an integer, got \\\"none\\\""), "\(log)")
    }
}
