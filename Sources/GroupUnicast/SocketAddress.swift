#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast

/// The address family of a socket or an address.
public enum AddressFamily: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 (`AF_INET`).
    case ipv4
    /// IPv6 (`AF_INET6`).
    case ipv6

    /// The C constant: `AF_INET` or `AF_INET6`.
    public var rawValue: CInt {
        switch self {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        }
    }

    /// `IPv4` or `IPv6`.
    public var description: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        }
    }
}

// MARK: - IPv4Address

/// An IPv4 address.
public struct IPv4Address: Hashable, Sendable {
    /// The address as a 32-bit number in host byte order: `127.0.0.1` is `0x7F00_0001`.
    public var value: UInt32

    /// Creates the address whose 32-bit number (host byte order) is `value`.
    public init(_ value: UInt32) {
        self.value = value
    }

    /// Creates the address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// `127.0.0.1`.
    public static let loopback = IPv4Address(127, 0, 0, 1)
    /// `0.0.0.0` (`INADDR_ANY`).
    public static let any = IPv4Address(0)

    /// The four bytes in network order.
    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
         UInt8(truncatingIfNeeded: value)]
    }

    internal var inAddr: in_addr {
        in_addr(s_addr: value.bigEndian)
    }

    internal init(_ address: in_addr) {
        value = UInt32(bigEndian: address.s_addr)
    }
}

extension IPv4Address: LosslessStringConvertible {
    /// Parses dotted-quad text such as `192.0.2.1`; returns `nil` for anything else.
    ///
    /// The corresponding C function is `inet_pton(3)` with `AF_INET`.
    public init?(_ text: String) {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        self.init(address)
    }

    /// Dotted-quad text such as `127.0.0.1`.
    ///
    /// The corresponding C function is `inet_ntop(3)` with `AF_INET`.
    public var description: String {
        var address = inAddr
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET_ADDRSTRLEN)) { buffer in
            guard inet_ntop(AF_INET, &address, buffer.baseAddress, socklen_t(buffer.count)) != nil else {
                preconditionFailure("inet_ntop(AF_INET) failed on a valid address")
            }
            return String(cString: buffer.baseAddress!)
        }
    }
}

// MARK: - IPv6Address

/// An IPv6 address.
public struct IPv6Address: Hashable, Sendable {
    /// The first eight bytes as a number (network order read big-endian).
    public var high: UInt64
    /// The last eight bytes as a number (network order read big-endian).
    public var low: UInt64

    /// Creates the address from its two big-endian halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Creates the address from its 16 bytes in network order.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "an IPv6 address has 16 bytes, not \(bytes.count)")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 {
                high = high << 8 | UInt64(byte)
            } else {
                low = low << 8 | UInt64(byte)
            }
        }
        self.init(high: high, low: low)
    }

    /// `::1`.
    public static let loopback = IPv6Address(high: 0, low: 1)
    /// `::` (`in6addr_any`).
    public static let any = IPv6Address(high: 0, low: 0)

    /// The IPv4-mapped address `::ffff:a.b.c.d` of `address`.
    public init(ipv4Mapped address: IPv4Address) {
        self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(address.value))
    }

    /// The IPv4 address inside an IPv4-mapped address (`::ffff:a.b.c.d`), else `nil`.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0, low >> 32 == 0xFFFF else { return nil }
        return IPv4Address(UInt32(truncatingIfNeeded: low))
    }

    /// Whether the address is link-local (`fe80::/10`), where a scope id picks the interface.
    public var isLinkLocal: Bool {
        high >> 54 == 0x3FA
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        (0..<16).map { index in
            let half = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> (UInt64(7 - index % 8) * 8))
        }
    }

    internal var in6Addr: in6_addr {
        var address = in6_addr()
        bytes.withUnsafeBufferPointer { CGroupUnicast_in6_addr_set(&address, $0.baseAddress) }
        return address
    }

    internal init(_ address: in6_addr) {
        var address = address
        let bytes = [UInt8](unsafeUninitializedCapacity: 16) { buffer, count in
            CGroupUnicast_in6_addr_get(&address, buffer.baseAddress)
            count = 16
        }
        self.init(bytes: bytes)
    }
}

extension IPv6Address: LosslessStringConvertible {
    /// Parses IPv6 text such as `::1` or `2001:db8::1` (no brackets, no scope); `nil` for anything else.
    ///
    /// The corresponding C function is `inet_pton(3)` with `AF_INET6`.
    public init?(_ text: String) {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        self.init(address)
    }

    /// The canonical text form (RFC 5952), such as `::1`.
    ///
    /// The corresponding C function is `inet_ntop(3)` with `AF_INET6`.
    public var description: String {
        var address = in6Addr
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buffer in
            guard inet_ntop(AF_INET6, &address, buffer.baseAddress, socklen_t(buffer.count)) != nil else {
                preconditionFailure("inet_ntop(AF_INET6) failed on a valid address")
            }
            return String(cString: buffer.baseAddress!)
        }
    }
}

// MARK: - SocketAddress

/// A UDP endpoint: an IPv4 or IPv6 address and a port.
///
/// Text forms are `1.2.3.4:5` and `[::1]:5`; a link-local IPv6 address may carry a scope,
/// `[fe80::1%eth0]:5` or `[fe80::1%2]:5`. Host names are not resolved.
public enum SocketAddress: Hashable, Sendable {
    /// An IPv4 endpoint (`struct sockaddr_in`).
    case ipv4(IPv4Address, port: UInt16)
    /// An IPv6 endpoint (`struct sockaddr_in6`); `scopeID` is the interface index of a link-local address.
    case ipv6(IPv6Address, port: UInt16, scopeID: UInt32 = 0)

    /// The address family.
    public var family: AddressFamily {
        switch self {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        }
    }

    /// The UDP port.
    public var port: UInt16 {
        switch self {
        case .ipv4(_, let port), .ipv6(_, let port, _): port
        }
    }

    /// `127.0.0.1:port`.
    public static func ipv4Loopback(port: UInt16) -> SocketAddress {
        .ipv4(.loopback, port: port)
    }

    /// `[::1]:port`.
    public static func ipv6Loopback(port: UInt16) -> SocketAddress {
        .ipv6(.loopback, port: port)
    }

    /// This address as an IPv6 socket sees it: IPv4 endpoints become IPv4-mapped (`[::ffff:a.b.c.d]`).
    public var mappedToIPv6: SocketAddress {
        switch self {
        case .ipv4(let address, let port): .ipv6(IPv6Address(ipv4Mapped: address), port: port)
        case .ipv6: self
        }
    }
}

extension SocketAddress: CustomStringConvertible {
    /// `1.2.3.4:5`, `[::1]:5` or `[fe80::1%2]:5`.
    ///
    /// The corresponding C function is `inet_ntop(3)`.
    public var description: String {
        switch self {
        case .ipv4(let address, let port):
            return "\(address):\(port)"
        case .ipv6(let address, let port, let scopeID):
            return scopeID == 0 ? "[\(address)]:\(port)" : "[\(address)%\(scopeID)]:\(port)"
        }
    }
}

extension SocketAddress: LosslessStringConvertible {
    /// Parses `1.2.3.4:5` or `[::1]:5`; `nil` when the text is not such an address.
    ///
    /// Use ``init(parsing:)`` to learn why text was rejected.
    public init?(_ text: String) {
        guard let address = try? SocketAddress(parsing: text) else { return nil }
        self = address
    }
}

extension SocketAddress {
    /// Why a text could not be parsed as a ``SocketAddress``.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// What was wrong.
        public enum Reason: Hashable, Sendable {
            /// The text was empty.
            case empty
            /// No `:PORT` after the address.
            case missingPort
            /// The port is not a decimal number from 0 to 65535.
            case invalidPort(String)
            /// The text before `:PORT` is not a dotted-quad IPv4 address.
            case invalidIPv4Address(String)
            /// The text inside the brackets is not an IPv6 address.
            case invalidIPv6Address(String)
            /// An IPv6 address without brackets: `::1:5` is ambiguous, write `[::1]:5`.
            case ipv6NeedsBrackets
            /// A `[` with no matching `]`.
            case unterminatedBracket
            /// Something other than `:PORT` follows the `]`.
            case unexpectedTextAfterBracket(String)
            /// The `%scope` is neither a number nor the name of an interface of this host.
            case invalidScope(String)
        }

        /// The text that was parsed.
        public var input: String
        /// What was wrong with it.
        public var reason: Reason

        /// Creates the error for `input` rejected because of `reason`.
        public init(input: String, reason: Reason) {
            self.input = input
            self.reason = reason
        }

        /// `invalid socket address "TEXT": REASON (expected 1.2.3.4:5 or [::1]:5)`.
        public var description: String {
            let why: String
            switch reason {
            case .empty:
                why = "empty text"
            case .missingPort:
                why = "missing :PORT"
            case .invalidPort(let port):
                why = "port \"\(port)\" is not a number from 0 to 65535"
            case .invalidIPv4Address(let host):
                why = "\"\(host)\" is not an IPv4 address (host names are not resolved)"
            case .invalidIPv6Address(let host):
                why = "\"\(host)\" is not an IPv6 address"
            case .ipv6NeedsBrackets:
                why = "an IPv6 address needs brackets"
            case .unterminatedBracket:
                why = "\"[\" without a closing \"]\""
            case .unexpectedTextAfterBracket(let rest):
                why = "expected \":PORT\" after \"]\", found \"\(rest)\""
            case .invalidScope(let scope):
                why = "scope \"\(scope)\" is neither an interface index nor an interface name"
            }
            return "invalid socket address \"\(input)\": \(why) (expected 1.2.3.4:5 or [::1]:5)"
        }
    }

    /// Parses `1.2.3.4:5`, `[::1]:5` or `[fe80::1%eth0]:5`, throwing a ``ParseError`` that says what is wrong.
    ///
    /// The corresponding C functions are `inet_pton(3)` and, for a named scope, `if_nametoindex(3)`.
    public init(parsing text: String) throws(ParseError) {
        func fail(_ reason: ParseError.Reason) -> ParseError {
            ParseError(input: text, reason: reason)
        }
        guard !text.isEmpty else { throw fail(.empty) }

        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail(.unterminatedBracket) }
            let inside = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard !rest.isEmpty else { throw fail(.missingPort) }
            guard rest.hasPrefix(":") else { throw fail(.unexpectedTextAfterBracket(String(rest))) }
            let port = try Self.parsePort(rest.dropFirst(), fail)

            var host = inside
            var scopeID: UInt32 = 0
            if let percent = inside.firstIndex(of: "%") {
                host = inside[..<percent]
                let scope = String(inside[inside.index(after: percent)...])
                if let index = UInt32(scope), index != 0 {
                    scopeID = index
                } else {
                    let index = if_nametoindex(scope)
                    guard !scope.isEmpty, index != 0 else { throw fail(.invalidScope(scope)) }
                    scopeID = index
                }
            }
            guard let address = IPv6Address(String(host)) else { throw fail(.invalidIPv6Address(String(host))) }
            self = .ipv6(address, port: port, scopeID: scopeID)
            return
        }

        guard let colon = text.lastIndex(of: ":") else { throw fail(.missingPort) }
        let host = text[..<colon]
        if host.contains(":") { throw fail(.ipv6NeedsBrackets) }
        let port = try Self.parsePort(text[text.index(after: colon)...], fail)
        guard let address = IPv4Address(String(host)) else { throw fail(.invalidIPv4Address(String(host))) }
        self = .ipv4(address, port: port)
    }

    private static func parsePort(
        _ text: Substring,
        _ fail: (ParseError.Reason) -> ParseError
    ) throws(ParseError) -> UInt16 {
        guard !text.isEmpty else { throw fail(.missingPort) }
        guard text.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(text) else {
            throw fail(.invalidPort(String(text)))
        }
        return port
    }
}

// MARK: - sockaddr conversion

extension SocketAddress {
    /// Writes this address as a `sockaddr_in` or `sockaddr_in6` into `storage`; returns its length.
    internal func write(to storage: UnsafeMutablePointer<sockaddr_storage>) -> socklen_t {
        let raw = UnsafeMutableRawPointer(storage)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<sockaddr_storage>.size)
        switch self {
        case .ipv4(let address, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = address.inAddr
            raw.storeBytes(of: sin, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6(let address, let port, let scopeID):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = address.in6Addr
            sin6.sin6_scope_id = scopeID
            raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Calls `body` with this address as a `struct sockaddr` pointer and length, for system calls
    /// the library does not make itself (`bind(2)` of a TCP socket, `connect(2)`); the pointer is
    /// valid only inside `body`.
    public func withSockAddr<R, E: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R
    ) throws(E) -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return try withUnsafePointer(to: &storage) { (pointer) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(E) -> R in
                try body(address, length)
            }
        }
    }

    /// Reads a `sockaddr_in` or `sockaddr_in6`; `nil` for any other family.
    internal init?(_ storage: UnsafePointer<sockaddr_storage>) {
        let raw = UnsafeRawPointer(storage)
        switch CInt(storage.pointee.ss_family) {
        case AF_INET:
            let sin = raw.loadUnaligned(as: sockaddr_in.self)
            self = .ipv4(IPv4Address(sin.sin_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
            self = .ipv6(IPv6Address(sin6.sin6_addr), port: UInt16(bigEndian: sin6.sin6_port),
                         scopeID: sin6.sin6_scope_id)
        default:
            return nil
        }
    }
}
