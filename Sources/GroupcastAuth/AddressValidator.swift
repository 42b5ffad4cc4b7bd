import Crypto
import GroupcastProtocol

/// Stateless address validation (the idea of QUIC's Retry token, RFC 9000 §8.1, and DTLS's
/// HelloVerifyRequest): a cookie is a MAC over the client's address and port, keyed with a server
/// secret that changes every ``period``. Only a client that receives at an address can echo its
/// cookie, and the server keeps nothing per client until it does.
///
/// Layout (16 bytes): the epoch's low 32 bits, then the first 12 bytes of
/// HMAC-SHA256(secret of that epoch, "groupcast-cookie-v2" || epoch u32 || peer). The current and
/// the previous epoch's secrets are accepted, so a cookie lives between one and two periods; the
/// secrets are random per process and never leave it.
public struct AddressValidator: Sendable {
    /// Nanoseconds per epoch.
    public let period: UInt64
    public private(set) var epoch: UInt64
    private var current: [UInt8]
    private var previous: [UInt8]
    private let makeSecret: @Sendable () -> [UInt8]

    static let label = Array("groupcast-cookie-v2".utf8)

    /// `now`: monotonic nanoseconds. `makeSecret`: a new 32-byte secret (tests inject their own).
    public init(
        period: UInt64 = 30_000_000_000, now: UInt64,
        makeSecret: @escaping @Sendable () -> [UInt8] = { SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) } }
    ) {
        precondition(period > 0, "cookie period must be positive")
        self.period = period
        self.makeSecret = makeSecret
        epoch = now / period
        current = makeSecret()
        previous = makeSecret()
    }

    /// Rotates the secrets when `now` is in a later epoch: one epoch on, the current secret
    /// becomes the previous one; more, both are new (every older cookie dies).
    public mutating func advance(to now: UInt64) {
        let next = now / period
        guard next > epoch else { return }
        if next == epoch + 1 {
            previous = current
        } else {
            previous = makeSecret()
        }
        current = makeSecret()
        epoch = next
    }

    /// The cookie of `peer` (an address's bytes, ``SocketAddress/validationBytes`` in
    /// GroupcastSFU) for the current epoch.
    public func cookie(for peer: [UInt8]) -> AddressCookie {
        let epoch32 = UInt32(truncatingIfNeeded: epoch)
        let mac = Self.mac(secret: current, epoch: epoch32, peer: peer)
        var bytes = [UInt8(truncatingIfNeeded: epoch32 >> 24), UInt8(truncatingIfNeeded: epoch32 >> 16), UInt8(truncatingIfNeeded: epoch32 >> 8), UInt8(truncatingIfNeeded: epoch32)]
        bytes += mac
        return AddressCookie(bytes: bytes) ?? .none
    }

    /// Whether `cookie` was made for `peer` in this epoch or the previous one.
    public func isValid(_ cookie: AddressCookie, for peer: [UInt8]) -> Bool {
        guard cookie != .none else { return false }
        let bytes = cookie.bytes
        let epoch32 = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        let now32 = UInt32(truncatingIfNeeded: epoch)
        let secret: [UInt8]
        if epoch32 == now32 {
            secret = current
        } else if epoch32 == now32 &- 1 {
            secret = previous
        } else {
            return false
        }
        return constantTimeEqual(Array(bytes[4...]), Self.mac(secret: secret, epoch: epoch32, peer: peer))
    }

    private static func mac(secret: [UInt8], epoch: UInt32, peer: [UInt8]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: label)
        hmac.update(data: [UInt8(truncatingIfNeeded: epoch >> 24), UInt8(truncatingIfNeeded: epoch >> 16), UInt8(truncatingIfNeeded: epoch >> 8), UInt8(truncatingIfNeeded: epoch)])
        hmac.update(data: peer)
        return Array(Array(hmac.finalize()).prefix(12))
    }
}
