/// Why a command did not return a reply.
public enum RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The client has no connection now (the server is down or being reconnected to); the
    /// command was not sent.
    case notConnected
    /// The server replied with an error (`-ERR ...`, `-NOSCRIPT ...`, `-WRONGTYPE ...`).
    case server(String)
    /// No reply within the configuration's command timeout: the connection was closed (a late
    /// reply could no longer be matched to its command).
    case timeout
    /// The connection closed before the reply arrived.
    case connectionClosed
    /// The server sent something that is not RESP2; the connection was closed.
    case protocolViolation(RESPError)
    /// A reply of the wrong shape for its command.
    case unexpectedReply(String, RESPValue)

    public var description: String {
        switch self {
        case .notConnected: "not connected to Redis"
        case .server(let message): "Redis refused the command: \(message)"
        case .timeout: "Redis did not reply in time"
        case .connectionClosed: "the Redis connection closed"
        case .protocolViolation(let error): "Redis sent malformed data: \(error)"
        case .unexpectedReply(let command, let reply): "unexpected reply to \(command): \(reply)"
        }
    }
}
