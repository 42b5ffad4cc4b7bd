/// One command as the client sends it: an array of bulk strings, the name first.
public struct RedisCommand: Hashable, Sendable, CustomStringConvertible {
    public var arguments: [[UInt8]]

    public init(_ name: String, _ arguments: [String] = []) {
        self.arguments = [Array(name.utf8)] + arguments.map { Array($0.utf8) }
    }

    public init(arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    /// The wire form: `*N\r\n` then `$len\r\narg\r\n` per argument.
    public func encode(into bytes: inout [UInt8]) {
        RESPValue.array(arguments.map(RESPValue.bulkString)).encode(into: &bytes)
    }

    /// The command's name only: arguments may hold secrets (AUTH) or large values.
    public var description: String { arguments.first.map { String(decoding: $0, as: UTF8.self) } ?? "(empty)" }
}

/// Anything that sends a command and returns its reply: a ``RedisConnection`` or a
/// ``RedisClient``. An error reply is thrown as ``RedisError/server(_:)``.
public protocol RedisCommandSender: Sendable {
    func send(_ command: RedisCommand) async throws -> RESPValue
}

/// How long a key set with ``RedisCommandSender/set(_:to:expiry:condition:)`` lives.
public enum RedisExpiry: Hashable, Sendable {
    case seconds(Int)
    case milliseconds(Int)
}

/// When ``RedisCommandSender/set(_:to:expiry:condition:)`` writes.
public enum RedisSetCondition: Hashable, Sendable {
    case always
    /// `NX`: only a key that does not exist (a claim).
    case ifNotExists
    /// `XX`: only a key that exists.
    case ifExists
}

extension RedisCommandSender {
    public func ping() async throws -> String {
        let reply = try await send(RedisCommand("PING"))
        guard let text = reply.string else { throw RedisError.unexpectedReply("PING", reply) }
        return text
    }

    /// `GET key`: `nil` when the key does not exist.
    public func get(_ key: String) async throws -> String? {
        try await optionalString(RedisCommand("GET", [key]))
    }

    /// `SET key value [EX s|PX ms] [NX|XX]`: whether the value was written (NX/XX may refuse).
    @discardableResult
    public func set(_ key: String, to value: String, expiry: RedisExpiry? = nil, condition: RedisSetCondition = .always) async throws -> Bool {
        var arguments = [key, value]
        switch expiry {
        case .seconds(let seconds): arguments += ["EX", String(seconds)]
        case .milliseconds(let milliseconds): arguments += ["PX", String(milliseconds)]
        case nil: break
        }
        switch condition {
        case .always: break
        case .ifNotExists: arguments.append("NX")
        case .ifExists: arguments.append("XX")
        }
        let reply = try await send(RedisCommand("SET", arguments))
        switch reply {
        case .simpleString("OK"): return true
        case .null: return false
        default: throw RedisError.unexpectedReply("SET", reply)
        }
    }

    /// `DEL key...`: how many existed.
    @discardableResult
    public func del(_ keys: [String]) async throws -> Int {
        try await integer(RedisCommand("DEL", keys))
    }

    /// `EXISTS key...`: how many exist.
    public func exists(_ keys: [String]) async throws -> Int {
        try await integer(RedisCommand("EXISTS", keys))
    }

    /// `PEXPIRE key ms`: whether the key exists (and now expires).
    @discardableResult
    public func expire(_ key: String, after expiry: RedisExpiry) async throws -> Bool {
        switch expiry {
        case .seconds(let seconds): try await integer(RedisCommand("EXPIRE", [key, String(seconds)])) == 1
        case .milliseconds(let milliseconds): try await integer(RedisCommand("PEXPIRE", [key, String(milliseconds)])) == 1
        }
    }

    /// `PTTL key`: milliseconds left, -1 without expiry, -2 when the key does not exist.
    public func pttl(_ key: String) async throws -> Int {
        try await integer(RedisCommand("PTTL", [key]))
    }

    /// `HSET key field value...`: how many fields were new.
    @discardableResult
    public func hset(_ key: String, _ fields: [(field: String, value: String)]) async throws -> Int {
        try await integer(RedisCommand("HSET", [key] + fields.flatMap { [$0.field, $0.value] }))
    }

    public func hget(_ key: String, field: String) async throws -> String? {
        try await optionalString(RedisCommand("HGET", [key, field]))
    }

    /// `HGETALL key`: an empty dictionary when the key does not exist.
    public func hgetall(_ key: String) async throws -> [String: String] {
        try await Self.fieldMap(send(RedisCommand("HGETALL", [key])), command: "HGETALL")
    }

    /// `HDEL key field...`: how many existed.
    @discardableResult
    public func hdel(_ key: String, fields: [String]) async throws -> Int {
        try await integer(RedisCommand("HDEL", [key] + fields))
    }

    /// `SADD key member...`: how many were new.
    @discardableResult
    public func sadd(_ key: String, _ members: [String]) async throws -> Int {
        try await integer(RedisCommand("SADD", [key] + members))
    }

    /// `SREM key member...`: how many were members.
    @discardableResult
    public func srem(_ key: String, _ members: [String]) async throws -> Int {
        try await integer(RedisCommand("SREM", [key] + members))
    }

    public func smembers(_ key: String) async throws -> Set<String> {
        let reply = try await send(RedisCommand("SMEMBERS", [key]))
        guard case .array(let elements) = reply else { throw RedisError.unexpectedReply("SMEMBERS", reply) }
        return Set(try elements.map { element in
            guard let text = element.string else { throw RedisError.unexpectedReply("SMEMBERS", reply) }
            return text
        })
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    @discardableResult
    public func publish(_ message: String, to channel: String) async throws -> Int {
        try await integer(RedisCommand("PUBLISH", [channel, message]))
    }

    /// `EVAL script numkeys key... arg...`: the script's reply, whatever its shape.
    public func eval(_ script: String, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        try await send(RedisCommand("EVAL", [script, String(keys.count)] + keys + arguments))
    }

    /// A flat `[field, value, field, value...]` reply as a dictionary.
    public static func fieldMap(_ reply: RESPValue, command: String) throws -> [String: String] {
        guard case .array(let elements) = reply, elements.count % 2 == 0 else { throw RedisError.unexpectedReply(command, reply) }
        var fields: [String: String] = [:]
        for pair in stride(from: 0, to: elements.count, by: 2) {
            guard let field = elements[pair].string, let value = elements[pair + 1].string else {
                throw RedisError.unexpectedReply(command, reply)
            }
            fields[field] = value
        }
        return fields
    }

    private func integer(_ command: RedisCommand) async throws -> Int {
        let reply = try await send(command)
        guard case .integer(let value) = reply else { throw RedisError.unexpectedReply(command.description, reply) }
        return Int(value)
    }

    private func optionalString(_ command: RedisCommand) async throws -> String? {
        let reply = try await send(command)
        if reply == .null { return nil }
        guard let text = reply.string else { throw RedisError.unexpectedReply(command.description, reply) }
        return text
    }
}
