/// Where the Redis server is and how patient the client is with it.
public struct RedisConfiguration: Hashable, Sendable {
    public var host: String
    public var port: Int
    /// `AUTH` after connecting (`redis://:PASSWORD@host:port`).
    public var password: String?
    /// `SELECT` after connecting (`redis://host:port/DB`).
    public var database: Int
    public var connectTimeout: Duration = .seconds(2)
    /// A command without a reply after this closes its connection (``RedisError/timeout``).
    public var commandTimeout: Duration = .seconds(2)
    /// Reconnect delays: the first, doubled after every failed attempt up to the last, each
    /// with up to a quarter of random jitter so nodes that lost the same server do not return
    /// in step.
    public var reconnectDelay: ClosedRange<Duration> = .milliseconds(50)...(.seconds(2))
    public var limits = RESPParser.Limits()

    public init(host: String, port: Int, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
    }

    /// `redis://[:PASSWORD@]HOST[:PORT][/DB]` (port 6379 by default; IPv6 hosts in brackets).
    public init(url: String) throws(RedisConfigurationError) {
        let scheme = "redis://"
        guard url.hasPrefix(scheme) else { throw RedisConfigurationError("\(url): not a redis:// URL") }
        var rest = Substring(url.dropFirst(scheme.count))
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { throw RedisConfigurationError("\(url): database \"\(path)\" is not a number") }
                database = number
            }
            rest = rest[..<slash]
        }
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            // Only the password form (`:secret`); ACL user names are not supported.
            guard userInfo.first == ":" else { throw RedisConfigurationError("\(url): only redis://:PASSWORD@HOST is supported") }
            password = String(userInfo.dropFirst())
            rest = rest[rest.index(after: at)...]
        }
        var host = rest
        var port = 6379
        if rest.first == "[" {
            guard let close = rest.firstIndex(of: "]") else { throw RedisConfigurationError("\(url): unterminated [IPv6] host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":", let number = Int(after.dropFirst()) else { throw RedisConfigurationError("\(url): bad port") }
                port = number
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let number = Int(rest[rest.index(after: colon)...]) else { throw RedisConfigurationError("\(url): bad port") }
            port = number
        }
        guard !host.isEmpty else { throw RedisConfigurationError("\(url): no host") }
        guard (1...65535).contains(port) else { throw RedisConfigurationError("\(url): port \(port) is not 1-65535") }
        self.init(host: String(host), port: port, password: password, database: database)
    }
}

public struct RedisConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
