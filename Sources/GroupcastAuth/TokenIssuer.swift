import Foundation
import GroupcastProtocol

/// The operator's side for a whole run: a fresh key in a private file for the SFU, and token
/// files for the clients (the demo and the benchmarks run the SFU with authentication this way).
public struct TokenIssuer: Sendable {
    public let key: TokenKey
    /// The file holding the key (mode 0600), for `groupcast sfu --auth-key-file`.
    public let keyPath: String

    /// A new random key written to `keyPath` (created, mode 0600; an existing file is an error).
    public init(keyPath: String) throws(TokenKey.LoadError) {
        let text = TokenKey.generateText()
        try Self.writePrivate(Array((text + "\n").utf8), to: keyPath)
        key = try TokenKey(text: text)
        self.keyPath = keyPath
    }

    /// `count` tokens for `room`, identities `prefix-1` ... `prefix-count`, one per line, in a
    /// new file of mode 0600 (for `groupcast client --token-file`).
    public func writeTokens(room: String, identityPrefix prefix: String, count: Int, validFor seconds: Int64 = 3600, to path: String) throws(TokenKey.LoadError) {
        let now = Int64(Date().timeIntervalSince1970)
        let lines = (1...max(1, count)).map { index in
            JoinToken.mint(JoinClaims(room: room, identity: "\(prefix)-\(index)", expires: now + seconds, issuedAt: now), key: key)
        }
        try Self.writePrivate(Array((lines.joined(separator: "\n") + "\n").utf8), to: path)
    }

    static func writePrivate(_ bytes: [UInt8], to path: String) throws(TokenKey.LoadError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TokenKey.LoadError(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw TokenKey.LoadError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
