#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastCluster
import GroupcastRedis
import Testing

/// `groupcast sfu --cluster` as a user runs it, with `groupcast client` participants, on
/// loopback, against a real redis-server.
@Suite(.serialized) struct SFUClusterTests {
    static let groupcast = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("groupcast")

    static func start(_ arguments: [String], output: Pipe) throws -> Process {
        let process = Process()
        process.executableURL = groupcast
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    /// The SFU publishes its participants and their streams; Redis is killed and restarted
    /// while the clients send: their media keeps flowing (the report shows no loss) and the
    /// SFU publishes its participants again; they leave, and the SFU's graceful exit removes
    /// the node at once.
    @Test func sfuPublishesItsParticipantsAndRoutesWithoutRedis() async throws {
        let server = try await RedisServer()
        let control = "127.0.0.1:\(try RedisServer.freePort(udp: true))", media = "127.0.0.1:\(try RedisServer.freePort(udp: true))"
        let report = NSTemporaryDirectory() + "groupcast-cluster-client-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: report) }
        let sfuOutput = Pipe()
        let sfu = try Self.start(
            ["sfu", "--control", control, "--media", media, "--backend", "socket", "--log-level", "warning",
             "--cluster", "redis://127.0.0.1:\(server.port)", "--node", "sfu-1", "--advertise", media], output: sfuOutput)
        defer { if sfu.isRunning { sfu.terminate() } }
        let observer = try TestNode("observer", server: server)
        try await waitUntil("the SFU's node is up") { try await observer.node.nodes().contains { $0.name == "sfu-1" && $0.advertise == media } }

        let clientOutput = Pipe()
        let client = try Self.start(
            ["client", "--sfu", control, "--media", media, "--local", "127.0.0.2:0", "-n", "2", "--duration", "3s",
             "--receive", "asq,vsq", "--json-output", report, "--log-level", "warning"], output: clientOutput)
        defer { if client.isRunning { client.terminate() } }
        let bothPublished: @Sendable () async throws -> Bool = {
            let room = try await observer.node.room("default")
            return room.participants.count == 2 && room.participants.keys.allSatisfy { $0.node == "sfu-1" } && room.streams.count == 6
        }
        try await waitUntil("both participants and their six streams are in Redis", bothPublished)

        server.stop()
        try await Task.sleep(for: .milliseconds(500))
        try await server.start()
        try await waitUntil("the SFU published them again after the Redis restart", bothPublished)

        let clientText = String(decoding: clientOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "\(clientText)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        let streams = try #require(json?["streams"] as? [[String: Any]])
        let subscribed = streams.filter { ["ASQ", "VSQ"].contains($0["stream"] as? String) }
        #expect(subscribed.count == 4)
        for stream in subscribed {
            let received = stream["received"] as? Int ?? 0, lost = stream["lost"] as? Int ?? -1
            #expect(received > 0 && lost >= 0 && lost * 100 <= received, "\(stream)")
        }
        try await waitUntil("the participants left the cluster with the SFU") { try await observer.node.room("default").participants.isEmpty }

        sfu.terminate()
        sfu.waitUntilExit()
        #expect(sfu.terminationStatus == 0, "\(String(decoding: sfuOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        // A graceful exit leaves at once, long before the 3 s heartbeat expiry. (Only the SFU's
        // node is asked about: the observer's own 600 ms expiry can lapse on a loaded machine.)
        #expect(try await !observer.node.nodes().map(\.name).contains("sfu-1"))
    }

    @Test(arguments: [
        (["--cluster", "redis://127.0.0.1:6379"], "--cluster needs --advertise IP:PORT"),
        (["--cluster", "redis://127.0.0.1:0", "--advertise", "127.0.0.1:7002"], "port 0 is not 1-65535"),
        (["--cluster", "http://x", "--advertise", "127.0.0.1:7002"], "not a redis:// URL"),
        (["--node", "a"], "--node, --advertise and --relay-fanout need --cluster"),
        (["--relay-fanout", "2"], "--node, --advertise and --relay-fanout need --cluster"),
        (["--cluster", "redis://127.0.0.1:6379", "--advertise", "127.0.0.1:7002", "--relay-fanout=-1"], "-1 is below 0"),
        (["--cluster", "redis://127.0.0.1:6379", "--advertise", "127.0.0.1:7002", "--node", "a:b"], "\"a:b\" is not 1-64 of"),
        (["--cluster", "redis://127.0.0.1:6379", "--advertise", "127.0.0.1:7002", "--backend", "ring"], "media between nodes runs on the socket, sendmmsg and sendgroup backends, not ring"),
    ])
    func badClusterFlagsAreRefused(arguments: [String], message: String) throws {
        let output = Pipe()
        let sfu = try Self.start(["sfu", "--control", "127.0.0.1:0", "--media", "127.0.0.1:0", "--backend", "socket"] + arguments, output: output)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sfu.waitUntilExit()
        #expect(sfu.terminationStatus != 0)
        #expect(text.contains(message), "\(text)")
    }
}
