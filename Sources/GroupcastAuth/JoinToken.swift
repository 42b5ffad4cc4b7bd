import Crypto
import Foundation
import GroupcastProtocol

/// The operator's HMAC key: signs join tokens (`groupcast token`) and checks them (`groupcast sfu
/// --auth-key-file`). Kept in a file or an environment variable, never on a command line (which
/// every local user can read in /proc).
public struct TokenKey: Sendable {
    /// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
    public static let minimumBytes = 32

    // The bytes, not a SymmetricKey: that type is not Sendable in swift-crypto 3.
    private let bytes: [UInt8]

    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// A key from its bytes (at least ``minimumBytes``).
    public init(bytes: some Collection<UInt8>) throws(LoadError) {
        guard bytes.count >= Self.minimumBytes else {
            throw LoadError(description: "the key has \(bytes.count) bytes, at least \(Self.minimumBytes) are needed")
        }
        self.bytes = Array(bytes)
    }

    /// A key from text (a file's or a variable's content): the bytes of the text without
    /// surrounding whitespace, as JWT tools take an HS256 secret.
    public init(text: String) throws(LoadError) {
        try self.init(bytes: Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
    }

    /// A key from a file (see ``init(text:)``).
    public init(contentsOfFile path: String) throws(LoadError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LoadError(description: "cannot read the key file \(path): \(error.localizedDescription)")
        }
        do { try self.init(text: String(decoding: data, as: UTF8.self)) } catch {
            throw LoadError(description: "key file \(path): \(error.description)")
        }
    }

    /// A new random key as text: 32 random bytes, base64url (43 characters).
    public static func generateText() -> String {
        Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    func signature(of signingInput: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: signingInput, using: SymmetricKey(data: bytes)))
    }
}

/// What a token allows: sending, receiving.
public struct JoinRights: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let send = JoinRights(rawValue: 1)
    public static let receive = JoinRights(rawValue: 2)
    public static let all: JoinRights = [.send, .receive]

    /// Parses `send,receive` (`all`, `none`); nil for an unknown name.
    public init?(list: String) {
        var rights: JoinRights = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch name {
            case "send": rights.insert(.send)
            case "receive": rights.insert(.receive)
            case "all": rights.formUnion(.all)
            case "none", "": break
            default: return nil
            }
        }
        self = rights
    }

    var names: [String] { (contains(.send) ? ["send"] : []) + (contains(.receive) ? ["receive"] : []) }
    public var description: String { names.isEmpty ? "none" : names.joined(separator: ",") }
}

/// The claims of a join token: which room, who, until when, with which rights.
public struct JoinClaims: Hashable, Sendable {
    /// The room the token admits to (`room`).
    public var room: String
    /// The participant's identity (`sub`): one participant per identity and room.
    public var identity: String
    /// Expiry, seconds since the Unix epoch (`exp`).
    public var expires: Int64
    /// Not valid before, seconds since the Unix epoch (`nbf`, optional).
    public var notBefore: Int64?
    /// When it was minted (`iat`, informative).
    public var issuedAt: Int64?
    public var rights: JoinRights
    /// The stream types the rights apply to (`streams`).
    public var streams: StreamSet

    public init(
        room: String, identity: String, expires: Int64, notBefore: Int64? = nil, issuedAt: Int64? = nil, rights: JoinRights = .all,
        streams: StreamSet = .all
    ) {
        self.room = room
        self.identity = identity
        self.expires = expires
        self.notBefore = notBefore
        self.issuedAt = issuedAt
        self.rights = rights
        self.streams = streams
    }

    /// The types the participant may send.
    public var sendable: StreamSet { rights.contains(.send) ? streams : [] }
    /// The types the participant may receive.
    public var receivable: StreamSet { rights.contains(.receive) ? streams : [] }

    /// Longest identity accepted (bytes of UTF-8).
    public static let maxIdentityBytes = 128
}

/// Why a token was refused. The descriptions fit an ERROR reply (64 bytes).
public enum TokenError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not three base64url parts of JSON with the required claims.
    case malformed(String)
    /// The header names an algorithm other than HS256 (`none` included) or critical extensions.
    case unsupportedAlgorithm(String)
    /// The signature does not match: another key, or changed bytes.
    case badSignature
    case expired(at: Int64)
    case notYetValid(until: Int64)

    public var description: String {
        switch self {
        case .malformed(let reason): "token malformed: \(reason)"
        case .unsupportedAlgorithm(let name): "token algorithm \(name.prefix(16)), not HS256"
        case .badSignature: "token signature invalid"
        case .expired(let at): "token expired at \(at)"
        case .notYetValid(let until): "token not valid before \(until)"
        }
    }
}

/// Join tokens: JWS compact serialization (RFC 7515) with HS256 (RFC 7518 §3.2), so any JWT
/// library can mint them. Claims (RFC 7519 names where one exists):
///
/// ```json
/// {"room":"standup","sub":"alice","exp":1767225600,"nbf":1767222000,"iat":1767222000,
///  "rights":["send","receive"],"streams":["asq","vsq","vhq"]}
/// ```
///
/// Verification checks the signature over the raw bytes before any JSON is parsed.
public enum JoinToken {
    /// The one header this SFU mints: `{"alg":"HS256","typ":"JWT"}`.
    static let header = #"{"alg":"HS256","typ":"JWT"}"#

    /// Longest token accepted: what REGISTER carries.
    public static let maxBytes = ControlMessage.maxTokenBytes

    private struct Header: Decodable {
        var alg: String
        var typ: String?
        var crit: [String]?
    }

    private struct Payload: Codable {
        var room: String
        var sub: String
        var exp: Int64
        var nbf: Int64?
        var iat: Int64?
        var rights: [String]
        var streams: [String]
    }

    /// The token for `claims`, signed with `key`.
    public static func mint(_ claims: JoinClaims, key: TokenKey) -> String {
        let payload = Payload(
            room: claims.room, sub: claims.identity, exp: claims.expires, nbf: claims.notBefore, iat: claims.issuedAt,
            rights: claims.rights.names, streams: claims.streams.types.map { $0.description.lowercased() })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings and integers cannot fail.
        let json = (try? encoder.encode(payload)) ?? Data()
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(json))
        return signingInput + "." + Base64URL.encode(key.signature(of: Array(signingInput.utf8)))
    }

    /// The claims of `token` if `key` signed it and it is valid at `now` (seconds since the Unix
    /// epoch). Signature first: nothing unauthenticated reaches the JSON parser.
    public static func verify(_ token: some Collection<UInt8>, key: TokenKey, now: Int64) throws(TokenError) -> JoinClaims {
        let bytes = Array(token)
        guard bytes.count <= maxBytes else { throw .malformed("\(bytes.count) bytes, at most \(maxBytes)") }
        guard let lastDot = bytes.lastIndex(of: UInt8(ascii: ".")) else { throw .malformed("not header.payload.signature") }
        guard let signature = Base64URL.decode(bytes[(lastDot + 1)...]), signature.count == 32 else {
            throw .malformed("signature is not 32 bytes of base64url")
        }
        let expected = key.signature(of: bytes[..<lastDot])
        guard constantTimeEqual(signature, expected) else { throw .badSignature }
        let claims = try decode(bytes)
        guard claims.expires > now else { throw .expired(at: claims.expires) }
        if let notBefore = claims.notBefore, notBefore > now { throw .notYetValid(until: notBefore) }
        return claims
    }

    /// The structure and claims of a token, without checking its signature or times (pure: the
    /// fuzzer's entry point; ``verify(_:key:now:)`` calls it only after the signature matched).
    public static func decode(_ token: some Collection<UInt8>) throws(TokenError) -> JoinClaims {
        let bytes = Array(token)
        guard bytes.count <= maxBytes else { throw .malformed("\(bytes.count) bytes, at most \(maxBytes)") }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("\(parts.count) parts, expected 3") }
        guard let headerJSON = Base64URL.decode(parts[0]), let payloadJSON = Base64URL.decode(parts[1]) else {
            throw .malformed("a part is not base64url")
        }
        let decoder = JSONDecoder()
        guard let header = try? decoder.decode(Header.self, from: Data(headerJSON)) else { throw .malformed("header is not a JOSE header") }
        guard header.alg == "HS256" else { throw .unsupportedAlgorithm(header.alg) }
        guard header.crit == nil else { throw .unsupportedAlgorithm("HS256 with crit") }
        if let typ = header.typ, typ.uppercased() != "JWT" { throw .malformed("typ \(typ.prefix(16)), expected JWT") }
        guard let payload = try? decoder.decode(Payload.self, from: Data(payloadJSON)) else {
            throw .malformed("claims room, sub, exp, rights, streams needed")
        }
        guard RoomName.isValid(payload.room) else { throw .malformed("room is not 1-64 of A-Z a-z 0-9 . _ -") }
        let identityBytes = payload.sub.utf8.count
        guard identityBytes > 0, identityBytes <= JoinClaims.maxIdentityBytes, !payload.sub.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .malformed("sub is not 1-\(JoinClaims.maxIdentityBytes) bytes of text")
        }
        var rights: JoinRights = []
        for name in payload.rights {
            switch name {
            case "send": rights.insert(.send)
            case "receive": rights.insert(.receive)
            default: throw .malformed("unknown right \(name.prefix(16))")
            }
        }
        var streams: StreamSet = []
        for name in payload.streams {
            guard let type = StreamType(name: name) else { throw .malformed("unknown stream type \(name.prefix(16))") }
            streams.insert(StreamSet(type))
        }
        return JoinClaims(
            room: payload.room, identity: payload.sub, expires: payload.exp, notBefore: payload.nbf, issuedAt: payload.iat,
            rights: rights, streams: streams)
    }
}

/// Compares without an early exit, so the time taken does not tell how many leading bytes of a
/// guessed MAC were right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// base64url without padding (RFC 4648 §5), as JWS uses it.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// nil unless `text` is only base64url characters, unpadded, of a possible length.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var standard: [UInt8] = []
        standard.reserveCapacity(text.count + 3)
        for byte in text {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                standard.append(byte)
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        while standard.count % 4 != 0 { standard.append(UInt8(ascii: "=")) }
        guard let data = Data(base64Encoded: Data(standard)) else { return nil }
        return Array(data)
    }
}
