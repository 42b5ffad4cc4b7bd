import GroupcastRedis
import Synchronization
import Testing

/// The client against a real redis-server of the test's own (RedisServer).
@Suite(.serialized) struct RedisClientTests {
    @Test func commands() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: server.configuration)
        try await withRunningClient(client) {
            #expect(try await client.ping() == "PONG")
            #expect(try await client.get("missing") == nil)
            #expect(try await client.set("k", to: "v 1"))
            #expect(try await client.get("k") == "v 1")
            #expect(try await client.set("k", to: "v 2", condition: .ifNotExists) == false)
            #expect(try await client.get("k") == "v 1")
            #expect(try await client.set("fresh", to: "x", expiry: .milliseconds(60_000), condition: .ifNotExists))
            #expect((1...60_000).contains(try await client.pttl("fresh")))
            #expect(try await client.set("k", to: "v 3", expiry: .seconds(100), condition: .ifExists))
            #expect((99_000...100_000).contains(try await client.pttl("k")))
            #expect(try await client.expire("k", after: .milliseconds(5000)))
            #expect(try await client.expire("nothing", after: .seconds(1)) == false)

            #expect(try await client.hset("h", [("a", "1"), ("b", "2")]) == 2)
            #expect(try await client.hget("h", field: "a") == "1")
            #expect(try await client.hgetall("h") == ["a": "1", "b": "2"])
            #expect(try await client.hdel("h", fields: ["a", "zz"]) == 1)
            #expect(try await client.hgetall("h") == ["b": "2"])
            #expect(try await client.hgetall("nothing") == [:])

            #expect(try await client.sadd("s", ["x", "y", "x"]) == 2)
            #expect(try await client.srem("s", ["y", "q"]) == 1)
            #expect(try await client.smembers("s") == ["x"])
            #expect(try await client.del(["s", "h", "nothing"]) == 2)
            #expect(try await client.exists(["s", "h", "k"]) == 1)

            let reply = try await client.eval(
                "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), 7, false}", keys: ["e"], arguments: ["z"])
            #expect(reply == .array([.bulkString(Array("z".utf8)), .integer(7), .null]))
            // An error reply is thrown with the server's words.
            await #expect(throws: RedisError.server("WRONGTYPE Operation against a key holding the wrong kind of value")) {
                try await client.sadd("k", ["x"])
            }
            // The connection is still usable after an error reply.
            #expect(try await client.get("e") == "z")
        }
    }

    /// Many commands in flight on one connection get their own replies.
    @Test func pipelinedRepliesMatchTheirCommands() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: server.configuration)
        try await withRunningClient(client) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await client.set("key\(index)", to: "value\(index)")
                        #expect(try await client.get("key\(index)") == "value\(index)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func publishAndSubscribe() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: server.configuration)
        try await withRunningClient(client) {
            let events = Recorder(client.subscribe(to: "room:a"))
            defer { events.stop() }
            try await waitUntil("subscribed") { events.all.contains(.subscribed) }
            #expect(try await client.publish("join 1", to: "room:a") == 1)
            #expect(try await client.publish("elsewhere", to: "room:b") == 0)
            let binary = String(decoding: [0, 13, 10, 255], as: UTF8.self)
            try await client.publish(binary, to: "room:a")
            try await waitUntil("two messages") { events.all.count == 3 }
            #expect(events.all.dropFirst().map { event -> String? in
                guard case .message(let message) = event, message.channel == "room:a" else { return nil }
                return message.string
            } == ["join 1", binary])
        }
    }

    /// The server is killed and started again on its port: commands fail at once while it is
    /// down, the client reconnects by itself, and the subscription is renewed (announced by a
    /// second `.subscribed`) and receives again.
    @Test func reconnectsAndResubscribesAfterServerRestart() async throws {
        let server = try await RedisServer()
        let client = RedisClient(configuration: server.configuration)
        try await withRunningClient(client) {
            let connection = Recorder(client.connectionEvents())
            let events = Recorder(client.subscribe(to: "c"))
            defer {
                connection.stop()
                events.stop()
            }
            try await waitUntil("subscribed") { events.all == [.subscribed] }
            try await client.set("before", to: "1")

            server.stop()
            try await waitUntil("the client saw the server go") { !client.isConnected }
            await #expect(throws: RedisError.notConnected) { try await client.get("before") }

            try await server.start()
            try await waitUntil("reconnected") { client.isConnected }
            try await waitUntil("subscribed again") { events.all.filter { $0 == .subscribed }.count == 2 }
            #expect(connection.all == [.connected, .disconnected, .connected])
            #expect(try await client.get("before") == nil)  // a restarted server without persistence is empty
            try await client.publish("after", to: "c")
            try await waitUntil("the message after the restart") { events.all.last == .message(RedisPubSubMessage(channel: "c", payload: Array("after".utf8))) }
        }
    }

    /// A reply longer than the client's limit is refused while its length line is read; the
    /// connection is closed (its framing is lost) and the client reconnects.
    @Test func oversizeReplyIsRefusedAndTheClientRecovers() async throws {
        let server = try await RedisServer()
        var configuration = server.configuration
        configuration.limits.maxBulkLength = 1024
        let client = RedisClient(configuration: configuration)
        try await withRunningClient(client) {
            try await client.set("big", to: String(repeating: "b", count: 1025))
            try await client.set("small", to: "s")
            await #expect {
                try await client.get("big")
            } throws: { error in
                guard case .protocolViolation(let resp) = error as? RedisError else { return false }
                return resp.kind == .bulkTooLong
            }
            try await waitUntil("reconnected") { (try? await client.get("small")) == "s" }
        }
    }

    /// A command the server does not answer in time (BLPOP on an empty list blocks) fails with
    /// `.timeout`; the client reconnects.
    @Test func unansweredCommandTimesOut() async throws {
        let server = try await RedisServer()
        var configuration = server.configuration
        configuration.commandTimeout = .milliseconds(200)
        let client = RedisClient(configuration: configuration)
        try await withRunningClient(client) {
            await #expect(throws: RedisError.timeout) { try await client.send(RedisCommand("BLPOP", ["empty", "10"])) }
            try await waitUntil("reconnected") { (try? await client.ping()) == "PONG" }
        }
    }

    /// Without a server the client keeps trying and commands fail at once.
    @Test func noServerMeansNotConnected() async throws {
        let server = try await RedisServer()
        let configuration = server.configuration
        server.stop()
        let client = RedisClient(configuration: configuration)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: RedisError.notConnected) { try await client.ping() }
        try await server.start()
        try await waitUntil("connected once the server is up") { client.isConnected }
    }
}
