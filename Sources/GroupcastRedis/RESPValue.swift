/// One RESP2 value (https://redis.io/docs/latest/develop/reference/protocol-spec/): what a
/// Redis server replies and what a client sends (an array of bulk strings).
public enum RESPValue: Hashable, Sendable {
    /// `+OK\r\n`: a short status line, never binary.
    case simpleString(String)
    /// `-ERR message\r\n`: the server refused the command.
    case error(String)
    /// `:42\r\n`
    case integer(Int64)
    /// `$3\r\nabc\r\n`: binary-safe bytes.
    case bulkString([UInt8])
    /// `*2\r\n...`: nested values.
    case array([RESPValue])
    /// `$-1\r\n` (null bulk string) or `*-1\r\n` (null array): RESP2 spells "no value" both ways.
    case null

    /// A bulk or simple string as text (UTF-8, invalid sequences replaced); `nil` for the others.
    public var string: String? {
        switch self {
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simpleString(let text): text
        default: nil
        }
    }

    /// Appends the wire form of this value.
    public func encode(into bytes: inout [UInt8]) {
        switch self {
        case .simpleString(let text): Self.appendLine(UInt8(ascii: "+"), text, into: &bytes)
        case .error(let text): Self.appendLine(UInt8(ascii: "-"), text, into: &bytes)
        case .integer(let value): Self.appendLine(UInt8(ascii: ":"), String(value), into: &bytes)
        case .bulkString(let payload):
            Self.appendLine(UInt8(ascii: "$"), String(payload.count), into: &bytes)
            bytes += payload
            bytes += [13, 10]
        case .array(let elements):
            Self.appendLine(UInt8(ascii: "*"), String(elements.count), into: &bytes)
            for element in elements { element.encode(into: &bytes) }
        case .null: bytes += Array("$-1\r\n".utf8)
        }
    }

    /// The wire form of this value.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes)
        return bytes
    }

    private static func appendLine(_ type: UInt8, _ text: String, into bytes: inout [UInt8]) {
        bytes.append(type)
        bytes += text.utf8
        bytes += [13, 10]
    }
}
