#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastProtocol
import GroupcastFastPath
import GroupcastClient
import GroupcastSFU
import GroupcastSocketBackend
import GroupUnicast
import Testing

/// `groupcast sfu` and `groupcast client` as a user runs them, on the selected backend.
@Suite(.serialized) struct CommandLineTests {
    /// Ports unlikely to collide when the suite runs outside a private namespace.
    static let basePort = 20_000 + Int(getpid() % 20_000)

    /// Runs `groupcast ARGUMENTS` (in the participants' namespace when `asParticipant`).
    static func start(_ arguments: [String], output: Pipe, asParticipant: Bool = false) throws -> Process {
        let process = Process()
        if asParticipant {
            (process.executableURL, process.arguments) = TestNetwork.selected.participantCommand([GroupcastBinary.url.path] + arguments)
        } else {
            process.executableURL = GroupcastBinary.url
            process.arguments = arguments
        }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    @Test func sfuAndThreeClientsThenCleanShutdownOnSIGTERM() throws {
        let network = TestNetwork.selected
        let control = "\(network.sfuHost(port: UInt16(Self.basePort)))", media = "\(network.sfuHost(port: UInt16(Self.basePort + 1)))"
        let statsFile = NSTemporaryDirectory() + "groupcast-test-\(getpid()).json"
        let reportFile = NSTemporaryDirectory() + "groupcast-test-client-\(getpid()).json"
        defer {
            try? FileManager.default.removeItem(atPath: statsFile)
            try? FileManager.default.removeItem(atPath: reportFile)
        }
        let turn = InterfaceTurn()
        defer { withExtendedLifetime(turn) {} }
        let sfuOutput = Pipe()
        let metricsPort = UInt16(Self.basePort + 2)
        let sfu = try Self.start(
            ["sfu", "--control", control, "--media", media, "--backend", TestBackend.selected.rawValue,
             "--stats-interval", "200ms", "--stats-file", statsFile, "--log-level", "warning",
             "--metrics-listen", "127.0.0.1:\(metricsPort)"], output: sfuOutput)
        defer { if sfu.isRunning { sfu.terminate() } }
        let clientOutput = Pipe()
        let client = try Self.start(
            ["client", "--sfu", control, "--media", media, "--local", "\(network.participantAddress(host: 2, family: .ipv4))", "-n", "3",
             "--duration", "1s", "--receive", "asq,vsq", "--json-output", reportFile, "--log-level", "warning"],
            output: clientOutput, asParticipant: true)
        let clientText = String(decoding: clientOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "\(clientText)")

        // The report: echoes for every stream, VHQ never received (not subscribed), ASQ/VSQ from both others.
        let data = try #require(FileManager.default.contents(atPath: reportFile))
        let rows = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["streams"] as? [[String: Any]])
        #expect(rows.count == 9)
        for row in rows {
            let sent = (row["sent"] as? Int) ?? 0, echoed = (row["echoed"] as? Int) ?? 0, received = (row["received"] as? Int) ?? 0
            #expect(sent >= 200, "\(row)")
            #expect(echoed >= sent * 95 / 100, "\(row)")
            if row["stream"] as? String == "VHQ" {
                #expect(received == 0, "\(row)")
            } else {
                #expect(received >= 2 * sent * 95 / 100 && (row["sources"] as? Int) == 2, "\(row)")
            }
        }

        // The Prometheus endpoint reports what the forwarder counted.
        let metrics = try #require(httpGet(port: metricsPort, path: "/metrics"))
        #expect(metrics.hasPrefix("HTTP/1.0 200 OK"), "\(metrics.prefix(200))")
        #expect(metrics.contains("groupcast_sfu_packets_received_total{backend=\"\(TestBackend.selected)\"} "))
        #expect(try #require(httpGet(port: metricsPort, path: "/other")).hasPrefix("HTTP/1.0 404"))
        // Per-room metrics: the clients joined the declared room `default` (and have left).
        #expect(metrics.contains("groupcast_sfu_room_participants{room=\"default\"} 0.0\n"), "\(metrics)")
        #expect(metrics.contains("groupcast_sfu_room_joins_total{room=\"default\"} 3\n"), "\(metrics)")
        #expect(metrics.contains("groupcast_sfu_control_challenges_total 3\n"), "\(metrics)")
        // Parsed as Prometheus does: the delay is a histogram that counted the forwarded packets.
        let families = try #require(try scrapeMetrics(port: metricsPort)["families"] as? [String: [String: Any]])
        let delayFamily = try #require(families["groupcast_sfu_processing_delay_seconds"])
        #expect(delayFamily["type"] as? String == "histogram")
        let delaySamples = try #require(delayFamily["samples"] as? [[Any]])
        let delayCount = delaySamples.first { $0[0] as? String == "groupcast_sfu_processing_delay_seconds_count" }?[2] as? Double
        #expect((delayCount ?? 0) > 0, "\(delaySamples)")
        #expect(delaySamples.contains { ($0[1] as? [String: String])?["le"] == "+Inf" && $0[2] as? Double == delayCount })
        #expect(try #require(httpGet(port: metricsPort, path: "/healthz")).hasPrefix("HTTP/1.0 200"))
        // Per-room media: every stream was in room `default`, so its copies are all the SFU's.
        func sample(_ family: String, _ labels: [String: String]) -> Double? {
            let samples = (families[family]?["samples"] as? [[Any]]) ?? []
            return samples.first { ($0[1] as? [String: String]) == labels.merging(["backend": TestBackend.selected.rawValue]) { $1 } }?[2] as? Double
        }
        for kind in ["forwarded", "echo"] {
            let room = sample("groupcast_sfu_room_packets_sent", ["room": "default", "kind": kind])
            let all = sample("groupcast_sfu_packets_sent", ["kind": kind])
            #expect(room != nil && room == all && (room ?? 0) > 0, "\(kind): room default \(String(describing: room)), all \(String(describing: all))")
        }
        let roomReceived = sample("groupcast_sfu_room_packets_received", ["room": "default"]) ?? 0
        #expect(roomReceived > 0 && roomReceived <= (sample("groupcast_sfu_packets_received", [:]) ?? 0))
        #expect((sample("groupcast_sfu_room_bytes_received", ["room": "default"]) ?? 0) >= roomReceived * 12)

        kill(sfu.processIdentifier, SIGTERM)
        let sfuText = String(decoding: sfuOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sfu.waitUntilExit()
        #expect(sfu.terminationStatus == 0, "\(sfuText)")
        #expect(sfuText.contains("final: \(TestBackend.selected) participants 0"), "\(sfuText)")
        let stats = try #require(FileManager.default.contents(atPath: statsFile))
        let json = try #require(try JSONSerialization.jsonObject(with: stats) as? [String: Any])
        #expect(json["final"] as? Bool == true)
        #expect(json["backend"] as? String == TestBackend.selected.rawValue)
        let counters = try #require(json["control"] as? [String: Any])
        #expect(counters["registered"] as? Int == 3 && counters["left"] as? Int == 3)
        let delay = try #require(json["delay_ns"] as? [String: Any])
        #expect(((delay["count"] as? Int) ?? 0) > 0 && ((delay["p99"] as? Int) ?? 0) >= ((delay["p50"] as? Int) ?? 0))
    }

    /// Authentication as an operator runs it: `groupcast token` makes a key and mints tokens,
    /// `groupcast sfu --auth-key-file` checks them, `groupcast client --token-file` carries them;
    /// a client without a token is refused with a named error.
    @Test func authenticatedSFUWithMintedTokens() throws {
        let network = TestNetwork.selected
        let port = Self.basePort + 20
        let control = "\(network.sfuHost(port: UInt16(port)))", media = "\(network.sfuHost(port: UInt16(port + 1)))"
        let directory = NSTemporaryDirectory() + "groupcast-auth-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = directory + "/op.key", tokens = directory + "/tokens", statsFile = directory + "/stats.json"
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let output = Pipe()
            let process = try Self.start(arguments, output: output)
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        #expect(try run(["token", "--generate-key", key]).0 == 0)
        var status = stat()
        #expect(stat(key, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(try run(["token", "--generate-key", key]).0 != 0)  // never overwritten
        let (minted, text) = try run(["token", "--auth-key-file", key, "--room", "cli", "--identity", "p", "--count", "2", "--expires", "10m"])
        #expect(minted == 0, "\(text)")
        try text.write(toFile: tokens, atomically: true, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2)

        let turn = InterfaceTurn()
        defer { withExtendedLifetime(turn) {} }
        let sfuOutput = Pipe()
        let sfu = try Self.start(
            ["sfu", "--control", control, "--media", media, "--backend", TestBackend.selected.rawValue, "--auth-key-file", key,
             "--stats-interval", "200ms", "--stats-file", statsFile, "--log-level", "warning"], output: sfuOutput)
        defer { if sfu.isRunning { sfu.terminate() } }
        func client(_ extra: [String]) throws -> (Int32, String) {
            let output = Pipe()
            let process = try Self.start(
                ["client", "--sfu", control, "--media", media, "--local", "\(network.participantAddress(host: 3, family: .ipv4))", "-n", "2",
                 "--duration", "0.5s", "--log-level", "warning"] + extra, output: output, asParticipant: true)
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let (refused, refusal) = try client([])
        #expect(refused == 1 && refusal.contains("REGISTER refused: unauthorized"), "\(refusal)")
        let (joined, report) = try client(["--token-file", tokens])
        #expect(joined == 0, "\(report)")
        kill(sfu.processIdentifier, SIGTERM)
        let sfuText = String(decoding: sfuOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sfu.waitUntilExit()
        #expect(sfu.terminationStatus == 0, "\(sfuText)")
        let statsData = try #require(FileManager.default.contents(atPath: statsFile))
        let json = try #require(try JSONSerialization.jsonObject(with: statsData) as? [String: Any])
        let counters = try #require(json["control"] as? [String: Any])
        #expect(counters["registered"] as? Int == 2 && counters["challenges"] as? Int ?? 0 >= 3)
        let rooms = try #require(counters["rooms"] as? [String: Any])
        #expect((rooms["cli"] as? [String: Any])?["registered"] == nil)  // removed with its last participant
        #expect(((counters["errors"] as? [String: Any])?["unauthorized"] as? Int) == 1)
    }

    @Test func sfuRefusesAnUnavailableBackendWithANamedError() throws {
        // xdp on a loopback media address: no device to attach to.
        var cases = [(["--backend", "xdp"], false, "backend xdp unavailable: the media address 127.0.0.1:")]
        // xdp without root (as nobody): named, not a crash.
        if geteuid() == 0 {
            cases.append((["--backend", "xdp", "--interface", "lo"], true, "backend xdp unavailable: the fast path needs root"))
        }
        if !FileManager.default.fileExists(atPath: "/dev/sendgroup") {
            cases.append((["--backend", "sendgroup"], false, "backend sendgroup unavailable: the sendgroup module is not loaded"))
        }
        // ring on lo in a namespace without route_localnet/accept_local: its frames would be
        // dropped as martians; and ring without root.
        cases.append((["--backend", "ring"], false, "backend ring unavailable: on lo, frames sent from AF_XDP re-enter the stack"))
        if geteuid() == 0 {
            cases.append((["--backend", "ring", "--interface", "lo"], true, "backend ring unavailable: AF_XDP and XDP need root"))
        }
        for (arguments, asNobody, message) in cases {
            let output = Pipe()
            let sfuArguments = ["sfu", "--control", "127.0.0.1:0", "--media", "127.0.0.1:0"] + arguments
            let sfu: Process
            if asNobody {
                sfu = Process()
                sfu.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                sfu.arguments = ["--reuid", "65534", "--regid", "65534", "--clear-groups", GroupcastBinary.url.path] + sfuArguments
                sfu.standardOutput = output
                sfu.standardError = output
                try sfu.run()
            } else {
                sfu = try Self.start(sfuArguments, output: output)
            }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            sfu.waitUntilExit()
            #expect(sfu.terminationStatus == 2, "\(text)")
            #expect(text.contains(message), "\(text)")
        }
    }

    /// The xdp backend leaves nothing attached: not after SIGINT, not after SIGTERM, not when the
    /// SFU fails to start after attaching (control port taken).
    @Test(.enabled(if: TestBackend.selected == .xdp)) func xdpDetachesOnSignalsAndOnStartFailure() throws {
        let network = TestNetwork.selected
        let port = Self.basePort + 10
        let control = "\(network.sfuHost(port: UInt16(port)))", media = "\(network.sfuHost(port: UInt16(port + 1)))"
        let turn = InterfaceTurn()
        defer { withExtendedLifetime(turn) {} }
        func attached() -> Bool { (try? FastPath.status(interface: "gcsfu0")) != nil }
        #expect(!attached())
        for signal in [SIGINT, SIGTERM] {
            let output = Pipe()
            let sfu = try Self.start(["sfu", "--control", control, "--media", media, "--backend", "xdp", "--stats-interval", "0"], output: output)
            let deadline = ContinuousClock.now.advanced(by: .seconds(5))
            while !attached() && sfu.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
            #expect(attached(), "not attached while running")
            kill(sfu.processIdentifier, signal)
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            sfu.waitUntilExit()
            #expect(sfu.terminationStatus == 0, "\(text)")
            #expect(text.contains("final: xdp participants 0"), "\(text)")
            #expect(!attached(), "still attached after signal \(signal)")
        }
        // The control port is taken: the SFU attaches (media first), then fails and detaches.
        let squatter = try GroupSocket(bindingTo: network.sfuHost(port: UInt16(port)), backend: .socket)
        defer { try? squatter.close() }
        let output = Pipe()
        let sfu = try Self.start(["sfu", "--control", control, "--media", media, "--backend", "xdp"], output: output)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sfu.waitUntilExit()
        #expect(sfu.terminationStatus == 2, "\(text)")
        #expect(text.contains("control socket on \(control)"), "\(text)")
        #expect(!attached(), "attachment left after a failed start")
    }

    /// The ring's XDP program is attached by netlink, not pinned: a SIGKILLed ring SFU leaves it
    /// on the interface. `groupcast xdp detach` (the fast-path unit's ExecStopPost, there with
    /// `--config`) takes it off, and never another program. Before, it answered "not attached"
    /// and left the ring's program in place.
    @Test(.enabled(if: TestBackend.selected == .ring)) func xdpDetachTakesOffAKilledRingsProgramAndNoOther() throws {
        let network = TestNetwork.selected
        let port = Self.basePort + 20
        let control = "\(network.sfuHost(port: UInt16(port)))", media = "\(network.sfuHost(port: UInt16(port + 1)))"
        let turn = InterfaceTurn()
        defer { withExtendedLifetime(turn) {} }
        let ip = URL(fileURLWithPath: "/usr/sbin/ip"), groupcast = GroupcastBinary.url
        func xdpAttached() throws -> Bool { try runToEnd(ip, ["-o", "link", "show", "dev", "gcsfu0"]).1.contains("prog/xdp") }
        let directory = NSTemporaryDirectory() + "groupcast-detach-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/sfu.yaml"
        try "backend: ring\ninterface: [gcsfu0]\ncontrol: \(control)\nmedia: \(media)\n".write(toFile: config, atomically: true, encoding: .utf8)

        func killedRingSFU() throws {
            let output = Pipe()
            let sfu = try Self.start(["sfu", "--config", config, "--stats-interval", "0"], output: output)
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while try !xdpAttached(), sfu.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            kill(sfu.processIdentifier, SIGKILL)
            sfu.waitUntilExit()
            #expect(try xdpAttached(), "the ring's program was not attached, or went with the process")
        }
        try killedRingSFU()
        var (status, text) = try runToEnd(groupcast, ["xdp", "detach", "--dev", "gcsfu0"])
        #expect(status == 0 && text.contains("gcsfu0: detached"), "\(text)")
        #expect(try !xdpAttached(), "the ring's program is still attached")
        (status, text) = try runToEnd(groupcast, ["xdp", "detach", "--dev", "gcsfu0"])
        #expect(status == 1, "detach with nothing attached: \(text)")

        // The unit's form: the configuration's interfaces; nothing attached is no error there.
        try killedRingSFU()
        (status, text) = try runToEnd(groupcast, ["xdp", "detach", "--config", config])
        let attachedAfter = try xdpAttached()
        #expect(status == 0 && text.contains("gcsfu0: detached") && !attachedAfter, "\(text)")
        (status, text) = try runToEnd(groupcast, ["xdp", "detach", "--config", config])
        #expect(status == 0 && text.contains("gcsfu0: nothing attached"), "\(text)")

        // Another program (not ours, by its name) stays.
        let source = directory + "/other.c", object = directory + "/other.o"
        try "#include <linux/bpf.h>\n__attribute__((section(\"xdp\"), used)) int other_program(struct xdp_md *ctx) { return XDP_PASS; }\nchar LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n"
            .write(toFile: source, atomically: true, encoding: .utf8)
        (status, text) = try runToEnd(URL(fileURLWithPath: "/opt/swift/usr/bin/clang"), ["-O2", "-target", "bpf", "-c", source, "-o", object])
        try #require(status == 0, "clang -target bpf: \(text)")
        (status, text) = try runToEnd(ip, ["link", "set", "dev", "gcsfu0", "xdpgeneric", "obj", object, "sec", "xdp"])
        try #require(status == 0, "ip link set xdpgeneric obj: \(text)")
        defer { _ = try? runToEnd(ip, ["link", "set", "dev", "gcsfu0", "xdpgeneric", "off"]) }
        (status, text) = try runToEnd(groupcast, ["xdp", "detach", "--dev", "gcsfu0"])
        #expect(status == 1 && text.contains("other_program") && text.contains("left attached"), "\(text)")
        #expect(try xdpAttached(), "another program was detached")
    }

    @Test func demoWithoutRootSaysSoAndCreatesNothing() throws {
        // As root, drop to nobody for this one run (setpriv, util-linux).
        let (status, text) = try geteuid() == 0
            ? runToEnd(URL(fileURLWithPath: "/usr/bin/setpriv"),
                       ["--reuid", "65534", "--regid", "65534", "--clear-groups", GroupcastBinary.lab.path, "demo", "--duration", "1s"])
            : runToEnd(GroupcastBinary.lab, ["demo", "--duration", "1s"])
        #expect(status == 1, "\(text)")
        #expect(text.contains("groupcast-lab demo: needs root: it creates network namespaces and veth links"), "\(text)")
    }

    /// Outside a checkout the benchmarks cannot find their scripts: a clear message and a
    /// non-zero status, never a silent success.
    @Test(arguments: [["bench", "send", "--quick"], ["bench", "sfu", "--quick", "--vm", "6.12"]])
    func benchOutsideACheckoutFails(arguments: [String]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("groupcast-lab-\(getpid())-\(arguments[1])")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("groupcast-lab")
        try FileManager.default.copyItem(at: GroupcastBinary.lab, to: copy)
        let (status, text) = try runToEnd(copy, arguments, environment: ProcessInfo.processInfo.environment.filter { $0.key != "GROUPCAST_REPO" })
        #expect(status == 1, "\(text)")
        #expect(text.contains("groupcast-lab bench \(arguments[1]): cannot find the project checkout"), "\(text)")
    }

    /// Runs `executable` to its end; its status and its output (stdout and stderr together).
    private func runToEnd(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
        let output = Pipe()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

/// One HTTP/1.0 GET to 127.0.0.1:`port`; the whole response, or nil if it could not connect.
func httpGet(port: UInt16, path: String) -> String? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    let connected = SocketAddress.ipv4(.loopback, port: port).withSockAddr { connect(descriptor, $0, $1) }
    guard connected == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        response += buffer[0..<count]
    }
    return String(decoding: response, as: UTF8.self)
}
