/// The SFU's control protocol, version 2 (Docs/protocol.md): fixed-layout, big-endian UDP messages.
///
/// Every message starts with `'G' 'C'`, a version byte and a type byte, then a 32-bit request id
/// chosen by the client and echoed in the reply. `'G'` (0x47) has the top bits `01`, so a control
/// message can never be mistaken for RTP version 2 (top bits `10`) on a socket that gets both.
///
/// ``ControlMessage/parse(_:expecting:)`` is pure and total: any bytes give a message or a
/// ``ControlParseError``; ``ControlMessage/encoded(maxSize:version:)`` is its inverse.
public enum ControlMessage: Hashable, Sendable {
    // Requests (client to SFU).
    /// Join a room (or refresh the membership), proving the source address with a cookie.
    case register(Registration)
    /// Ask for a cookie for this datagram's source address (a media socket other than the
    /// control socket proves its address this way before REGISTER names it).
    case probe(requestID: UInt32)
    /// Receive `streams` of `source` (``ControlMessage/allSources``: the default for every source).
    case subscribe(requestID: UInt32, participant: UInt32, session: UInt64, source: UInt32, streams: StreamSet)
    case leave(requestID: UInt32, participant: UInt32, session: UInt64)
    case keepalive(requestID: UInt32, participant: UInt32, session: UInt64)
    /// One page of the room's participants: those with an id above `after` (0: from the start).
    case roster(requestID: UInt32, participant: UInt32, session: UInt64, after: UInt32)

    // Replies (SFU to client).
    case registered(Registered)
    case subscribed(requestID: UInt32, participant: UInt32, source: UInt32, streams: StreamSet)
    case left(requestID: UInt32, participant: UInt32)
    case keepaliveAck(requestID: UInt32, participant: UInt32)
    /// A page of at most ``maxRosterEntries`` entries in id order; `more`: ask again with `after`
    /// set to the last entry's id.
    case rosterReply(requestID: UInt32, entries: [RosterEntry], more: Bool)
    /// The answer to a REGISTER without a valid cookie, and to PROBE: the cookie of the request's
    /// source address.
    case challenge(requestID: UInt32, cookie: AddressCookie)
    case error(requestID: UInt32, code: ControlErrorCode, message: String)

    /// `'G' 'C'`.
    public static let magic: (UInt8, UInt8) = (0x47, 0x43)
    public static let version: UInt8 = 2
    /// The common header: magic, version, type, request id.
    public static let headerSize = 8
    /// `source` of a SUBSCRIBE that sets the default for every source, present and future.
    public static let allSources: UInt32 = 0xFFFF_FFFF
    /// Longest error text the SFU sends (keeps error replies small).
    public static let maxErrorMessageBytes = 64
    /// Most roster entries one reply carries (12 + 16 x 80 = 1,292 bytes: fits a 1,500-byte MTU).
    public static let maxRosterEntries = 80
    /// REGISTER's one size: large enough for a join token, and larger than every reply an
    /// address that has not proven itself can get (CHALLENGE, ERROR, REGISTERED).
    public static let registerSize = 1024
    /// The room name field of REGISTER: UTF-8 of ``RoomName`` characters, zero-padded.
    public static let roomNameBytes = 64
    /// Where the token starts in REGISTER, and the most token bytes it carries.
    public static let registerTokenOffset = 112
    public static let maxTokenBytes = registerSize - registerTokenOffset

    /// The message type byte.
    public enum Kind: UInt8, CaseIterable, Sendable {
        case register = 0x01, subscribe = 0x02, leave = 0x03, keepalive = 0x04, roster = 0x05, probe = 0x06
        case registered = 0x81, subscribed = 0x82, left = 0x83, keepaliveAck = 0x84, rosterReply = 0x85, challenge = 0x86
        case error = 0xFF

        /// Exact message size, header included; `nil` for variable-size kinds.
        public var fixedSize: Int? {
            switch self {
            case .register: ControlMessage.registerSize
            case .probe, .challenge: 24
            case .subscribe: 28
            case .leave, .keepalive: 20
            case .roster: 24
            case .registered: 40
            case .subscribed: 20
            case .left, .keepaliveAck: 12
            case .rosterReply, .error: nil
            }
        }

        /// A participant's request (the SFU answers it) rather than a reply.
        public var isRequest: Bool { rawValue < 0x80 }
    }

    /// Which messages a receiver accepts: the SFU parses requests, a client replies.
    public enum Direction: Sendable {
        case request, reply, any
    }

    public var kind: Kind {
        switch self {
        case .register: .register
        case .probe: .probe
        case .subscribe: .subscribe
        case .leave: .leave
        case .keepalive: .keepalive
        case .roster: .roster
        case .registered: .registered
        case .subscribed: .subscribed
        case .left: .left
        case .keepaliveAck: .keepaliveAck
        case .rosterReply: .rosterReply
        case .challenge: .challenge
        case .error: .error
        }
    }

    public var requestID: UInt32 {
        switch self {
        case .register(let registration): registration.requestID
        case .registered(let registered): registered.requestID
        case .probe(let id), .subscribe(let id, _, _, _, _), .leave(let id, _, _), .keepalive(let id, _, _),
            .roster(let id, _, _, _), .subscribed(let id, _, _, _), .left(let id, _),
            .keepaliveAck(let id, _), .rosterReply(let id, _, _), .challenge(let id, _), .error(let id, _, _):
            id
        }
    }
}

/// The 16-byte cookie that proves a client receives at its source address (Docs/protocol.md,
/// "Address validation"); all zero means "none".
public struct AddressCookie: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    public static let none = AddressCookie(high: 0, low: 0)

    public var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        appendUInt64(&bytes, high)
        appendUInt64(&bytes, low)
        return bytes
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// REGISTER's body.
public struct Registration: Hashable, Sendable {
    public var requestID: UInt32
    /// 0: media comes from (and goes to) the request's source port; another port on the same IP
    /// needs ``mediaCookie``, obtained by a PROBE from that port.
    public var mediaPort: UInt16
    /// The stream types wanted from every source unless a SUBSCRIBE overrides it.
    public var receive: StreamSet
    /// The cookie of the source address (from a CHALLENGE); ``AddressCookie/none`` on the first try.
    public var cookie: AddressCookie
    /// The cookie of the media address when it differs from the source address.
    public var mediaCookie: AddressCookie
    /// The room; empty: the room the token names (with authentication) or `default`.
    public var room: String
    /// The join token (a JWT, Docs/protocol.md "Join tokens"); empty when the SFU runs open.
    public var token: [UInt8]

    public init(
        requestID: UInt32, mediaPort: UInt16 = 0, receive: StreamSet, cookie: AddressCookie = .none,
        mediaCookie: AddressCookie = .none, room: String = "", token: [UInt8] = []
    ) {
        self.requestID = requestID
        self.mediaPort = mediaPort
        self.receive = receive
        self.cookie = cookie
        self.mediaCookie = mediaCookie
        self.room = room
        self.token = token
    }
}

/// REGISTERED's body.
public struct Registered: Hashable, Sendable {
    public var requestID: UInt32
    public var participant: UInt32
    /// 0 for a type the participant may not send.
    public var ssrcs: StreamSSRCs
    public var keepaliveTimeoutMilliseconds: UInt32
    /// The secret every later request of this participant carries.
    public var session: UInt64
    /// What the participant may send and receive (its token's rights; everything on an open SFU).
    public var send: StreamSet
    public var receive: StreamSet

    public init(
        requestID: UInt32, participant: UInt32, ssrcs: StreamSSRCs, keepaliveTimeoutMilliseconds: UInt32, session: UInt64,
        send: StreamSet, receive: StreamSet
    ) {
        self.requestID = requestID
        self.participant = participant
        self.ssrcs = ssrcs
        self.keepaliveTimeoutMilliseconds = keepaliveTimeoutMilliseconds
        self.session = session
        self.send = send
        self.receive = receive
    }
}

/// Room names: 1-64 bytes of `A-Z a-z 0-9 . _ -` (safe in logs, JSON and metric labels).
public enum RoomName {
    /// The room a REGISTER without a room name joins on an SFU without authentication.
    public static let defaultRoom = "default"

    @inline(__always)
    public static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    public static func isValid(_ name: String) -> Bool {
        !name.utf8.isEmpty && name.utf8.count <= ControlMessage.roomNameBytes && name.utf8.allSatisfy(isAllowed)
    }
}

/// One SSRC per stream type; 0 means "this participant has no such stream".
public struct StreamSSRCs: Hashable, Sendable, CustomStringConvertible {
    public var asq: UInt32
    public var vsq: UInt32
    public var vhq: UInt32

    public init(asq: UInt32, vsq: UInt32, vhq: UInt32) {
        self.asq = asq
        self.vsq = vsq
        self.vhq = vhq
    }

    public static let none = StreamSSRCs(asq: 0, vsq: 0, vhq: 0)

    public subscript(type: StreamType) -> UInt32 {
        get {
            switch type {
            case .asq: asq
            case .vsq: vsq
            case .vhq: vhq
            }
        }
        set {
            switch type {
            case .asq: asq = newValue
            case .vsq: vsq = newValue
            case .vhq: vhq = newValue
            }
        }
    }

    /// The (type, SSRC) pairs with a non-zero SSRC.
    public var streams: [(type: StreamType, ssrc: UInt32)] {
        StreamType.allCases.compactMap { self[$0] == 0 ? nil : ($0, self[$0]) }
    }

    public var description: String { "asq=\(asq) vsq=\(vsq) vhq=\(vhq)" }
}

/// One participant in a ROSTER reply.
public struct RosterEntry: Hashable, Sendable {
    public var participant: UInt32
    public var ssrcs: StreamSSRCs
    public init(participant: UInt32, ssrcs: StreamSSRCs) {
        self.participant = participant
        self.ssrcs = ssrcs
    }
}

/// The code of an ERROR reply.
public enum ControlErrorCode: UInt16, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// Wrong magic, wrong size for its type, non-zero reserved bits, a bad room name.
    case malformed = 1
    /// A version byte other than 2 (the reply carries the request's version byte).
    case unsupportedVersion = 2
    /// A type byte that is not a request (replies sent to the SFU included, whatever their size).
    case unknownType = 3
    /// The participant id is not registered (never was, left, or timed out).
    case unknownParticipant = 4
    /// The request came from an address other than the participant's control address, or
    /// carried another session.
    case notOwner = 5
    /// The room has as many participants as its capacity.
    case roomFull = 6
    /// SUBSCRIBE names a source participant that is not in the participant's room.
    case unknownSource = 7
    /// REGISTER names a media address another participant already has, or comes from a control
    /// address registered in another room.
    case addressInUse = 8
    /// Authentication is on and the token is missing, malformed, expired, signed with another
    /// key, or names another room.
    case unauthorized = 9
    /// The token does not grant this (SUBSCRIBE outside its receive rights).
    case forbidden = 10
    /// The SFU holds as many participants or rooms as it is configured for.
    case serverFull = 11
    /// The room does not exist and this SFU does not create rooms on first join.
    case unknownRoom = 12
    /// Another participant of the room joined with the same identity from another address.
    case identityInUse = 13
    /// REGISTER names a media port without a valid cookie for it (PROBE from that port first).
    case mediaUnverified = 14

    public var description: String {
        switch self {
        case .malformed: "malformed"
        case .unsupportedVersion: "unsupported version"
        case .unknownType: "unknown type"
        case .unknownParticipant: "unknown participant"
        case .notOwner: "not owner"
        case .roomFull: "room full"
        case .unknownSource: "unknown source"
        case .addressInUse: "address in use"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .serverFull: "server full"
        case .unknownRoom: "unknown room"
        case .identityInUse: "identity in use"
        case .mediaUnverified: "media unverified"
        }
    }

    /// The name in metrics and JSON (`room_full`).
    public var metricName: String { description.replacingSpaces() }
}

extension String {
    func replacingSpaces() -> String { String(map { $0 == " " ? "_" : $0 }) }
}

/// Why bytes are not a control message; the SFU answers each with an ERROR reply.
public struct ControlParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The code of the ERROR reply this deserves.
    public var code: ControlErrorCode
    /// The request id when the header was readable, else 0.
    public var requestID: UInt32
    /// The version byte when the header was readable, else ``ControlMessage/version``: an ERROR
    /// reply carries it, so a client of another version can read it.
    public var version: UInt8
    public var reason: String

    public init(_ code: ControlErrorCode, requestID: UInt32, version: UInt8 = ControlMessage.version, _ reason: String) {
        self.code = code
        self.requestID = requestID
        self.version = version
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}

extension ControlMessage {
    /// Parses one control datagram. The checks run in the documented order: length of the
    /// header, magic, version, type (for `.request`: a reply type is `unknown type` whatever its
    /// size; for `.reply` the other way round), exact size, fields.
    public static func parse(_ bytes: UnsafeRawBufferPointer, expecting direction: Direction = .any) throws(ControlParseError) -> ControlMessage {
        let length = bytes.count
        guard length >= headerSize else {
            throw ControlParseError(.malformed, requestID: 0, "\(length) bytes, shorter than the 8-byte header")
        }
        guard bytes[0] == magic.0, bytes[1] == magic.1 else {
            throw ControlParseError(.malformed, requestID: 0, "bad magic")
        }
        let requestID = readUInt32(bytes, 4)
        guard bytes[2] == version else {
            throw ControlParseError(
                .unsupportedVersion, requestID: requestID, version: bytes[2], "protocol version \(bytes[2]); this SFU speaks \(version)")
        }
        guard let kind = Kind(rawValue: bytes[3]) else {
            throw ControlParseError(.unknownType, requestID: requestID, "type 0x\(String(bytes[3], radix: 16))")
        }
        switch direction {
        case .request where !kind.isRequest:
            throw ControlParseError(.unknownType, requestID: requestID, "\(kind) is a reply, not a request")
        case .reply where kind.isRequest:
            throw ControlParseError(.unknownType, requestID: requestID, "\(kind) is a request, not a reply")
        default: break
        }
        if let size = kind.fixedSize, size != length {
            throw ControlParseError(.malformed, requestID: requestID, "\(kind) of \(length) bytes, expected \(size)")
        }
        func malformed(_ reason: String) -> ControlParseError { ControlParseError(.malformed, requestID: requestID, reason) }
        func streams(_ byte: UInt8) throws(ControlParseError) -> StreamSet {
            guard byte & ~StreamSet.validBits == 0 else { throw malformed("unknown stream bits 0x\(String(byte, radix: 16))") }
            return StreamSet(rawValue: byte)
        }
        func zero(_ range: Range<Int>) throws(ControlParseError) {
            for index in range where bytes[index] != 0 { throw malformed("reserved byte \(index) is not zero") }
        }
        func cookie(_ offset: Int) -> AddressCookie { AddressCookie(high: readUInt64(bytes, offset), low: readUInt64(bytes, offset + 8)) }
        func ssrcs(_ offset: Int) -> StreamSSRCs {
            StreamSSRCs(asq: readUInt32(bytes, offset), vsq: readUInt32(bytes, offset + 4), vhq: readUInt32(bytes, offset + 8))
        }
        switch kind {
        case .register:
            try zero(11..<12)
            try zero(110..<112)
            let room = try roomName(bytes, at: 44, requestID: requestID)
            let tokenLength = Int(readUInt16(bytes, 108))
            guard tokenLength <= maxTokenBytes else { throw malformed("token of \(tokenLength) bytes, at most \(maxTokenBytes)") }
            try zero(registerTokenOffset + tokenLength..<registerSize)
            return .register(Registration(
                requestID: requestID, mediaPort: readUInt16(bytes, 8), receive: try streams(bytes[10]), cookie: cookie(12),
                mediaCookie: cookie(28), room: room,
                token: Array(bytes[registerTokenOffset..<registerTokenOffset + tokenLength])))
        case .probe:
            try zero(8..<24)
            return .probe(requestID: requestID)
        case .subscribe:
            try zero(25..<28)
            return .subscribe(
                requestID: requestID, participant: readUInt32(bytes, 8), session: readUInt64(bytes, 12), source: readUInt32(bytes, 20),
                streams: try streams(bytes[24]))
        case .leave: return .leave(requestID: requestID, participant: readUInt32(bytes, 8), session: readUInt64(bytes, 12))
        case .keepalive: return .keepalive(requestID: requestID, participant: readUInt32(bytes, 8), session: readUInt64(bytes, 12))
        case .roster:
            return .roster(requestID: requestID, participant: readUInt32(bytes, 8), session: readUInt64(bytes, 12), after: readUInt32(bytes, 20))
        case .registered:
            try zero(38..<40)
            return .registered(Registered(
                requestID: requestID, participant: readUInt32(bytes, 8), ssrcs: ssrcs(12), keepaliveTimeoutMilliseconds: readUInt32(bytes, 24),
                session: readUInt64(bytes, 28), send: try streams(bytes[36]), receive: try streams(bytes[37])))
        case .subscribed:
            try zero(17..<20)
            return .subscribed(
                requestID: requestID, participant: readUInt32(bytes, 8), source: readUInt32(bytes, 12),
                streams: try streams(bytes[16]))
        case .left: return .left(requestID: requestID, participant: readUInt32(bytes, 8))
        case .keepaliveAck: return .keepaliveAck(requestID: requestID, participant: readUInt32(bytes, 8))
        case .rosterReply:
            guard length >= 12 else { throw malformed("ROSTER reply of \(length) bytes, shorter than 12") }
            let count = Int(readUInt16(bytes, 8))
            let flags = readUInt16(bytes, 10)
            guard flags & ~1 == 0 else { throw malformed("unknown roster flags 0x\(String(flags, radix: 16))") }
            guard count <= maxRosterEntries else { throw malformed("\(count) roster entries, at most \(maxRosterEntries)") }
            guard length == 12 + 16 * count else { throw malformed("ROSTER reply of \(length) bytes for \(count) entries") }
            let entries = (0..<count).map { index in
                RosterEntry(participant: readUInt32(bytes, 12 + 16 * index), ssrcs: ssrcs(16 + 16 * index))
            }
            return .rosterReply(requestID: requestID, entries: entries, more: flags & 1 != 0)
        case .challenge:
            return .challenge(requestID: requestID, cookie: cookie(8))
        case .error:
            guard length >= 12 else { throw malformed("ERROR reply of \(length) bytes, shorter than 12") }
            try zero(10..<12)
            guard let code = ControlErrorCode(rawValue: readUInt16(bytes, 8)) else {
                throw malformed("unknown error code \(readUInt16(bytes, 8))")
            }
            guard length - 12 <= maxErrorMessageBytes else { throw malformed("error text of \(length - 12) bytes") }
            guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[12...]), as: UTF8.self) else {
                throw malformed("error text is not UTF-8")
            }
            return .error(requestID: requestID, code: code, message: text)
        }
    }

    public static func parse(_ bytes: [UInt8], expecting direction: Direction = .any) throws(ControlParseError) -> ControlMessage {
        try bytes.withUnsafeBytes { raw in Result { () throws(ControlParseError) in try parse(raw, expecting: direction) } }.get()
    }

    /// The room name field at `offset`: allowed characters, then zeros only.
    private static func roomName(_ bytes: UnsafeRawBufferPointer, at offset: Int, requestID: UInt32) throws(ControlParseError) -> String {
        let field = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + roomNameBytes])
        let end = field.firstIndex(of: 0) ?? field.count
        for index in 0..<end where !RoomName.isAllowed(field[index]) {
            throw ControlParseError(.malformed, requestID: requestID, "room name byte \(index) is not A-Z a-z 0-9 . _ -")
        }
        for index in end..<field.count where field[index] != 0 {
            throw ControlParseError(.malformed, requestID: requestID, "room name padding byte \(index) is not zero")
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: field[0..<end]), as: UTF8.self)
    }

    /// The wire form. An ERROR's text is cut (at a character boundary) to ``maxErrorMessageBytes``
    /// and so that the message is at most `maxSize` bytes (never below its 12-byte header: the
    /// caller decides whether even that may be sent); a roster is cut to ``maxRosterEntries``, a
    /// room name to ``roomNameBytes`` and a token to ``maxTokenBytes``. `version`: the version
    /// byte to write (an ERROR answering a request of another version carries that version).
    public func encoded(maxSize: Int = .max, version: UInt8 = ControlMessage.version) -> [UInt8] {
        var bytes: [UInt8] = [Self.magic.0, Self.magic.1, version, kind.rawValue]
        bytes.reserveCapacity(kind.fixedSize ?? 76)
        appendUInt32(&bytes, requestID)
        switch self {
        case .register(let registration):
            appendUInt16(&bytes, registration.mediaPort)
            bytes += [registration.receive.rawValue, 0]
            bytes += registration.cookie.bytes
            bytes += registration.mediaCookie.bytes
            let room = Array(registration.room.utf8.prefix(Self.roomNameBytes))
            bytes += room + [UInt8](repeating: 0, count: Self.roomNameBytes - room.count)
            let token = registration.token.prefix(Self.maxTokenBytes)
            appendUInt16(&bytes, UInt16(token.count))
            bytes += [0, 0]
            bytes += token
            bytes += [UInt8](repeating: 0, count: Self.registerSize - bytes.count)
        case .probe:
            bytes += [UInt8](repeating: 0, count: 16)
        case .subscribe(_, let participant, let session, let source, let streams):
            appendUInt32(&bytes, participant)
            appendUInt64(&bytes, session)
            appendUInt32(&bytes, source)
            bytes += [streams.rawValue, 0, 0, 0]
        case .subscribed(_, let participant, let source, let streams):
            appendUInt32(&bytes, participant)
            appendUInt32(&bytes, source)
            bytes += [streams.rawValue, 0, 0, 0]
        case .leave(_, let participant, let session), .keepalive(_, let participant, let session):
            appendUInt32(&bytes, participant)
            appendUInt64(&bytes, session)
        case .roster(_, let participant, let session, let after):
            appendUInt32(&bytes, participant)
            appendUInt64(&bytes, session)
            appendUInt32(&bytes, after)
        case .left(_, let participant), .keepaliveAck(_, let participant):
            appendUInt32(&bytes, participant)
        case .registered(let registered):
            for value in [registered.participant, registered.ssrcs.asq, registered.ssrcs.vsq, registered.ssrcs.vhq, registered.keepaliveTimeoutMilliseconds] {
                appendUInt32(&bytes, value)
            }
            appendUInt64(&bytes, registered.session)
            bytes += [registered.send.rawValue, registered.receive.rawValue, 0, 0]
        case .rosterReply(_, let entries, let more):
            let kept = entries.prefix(Self.maxRosterEntries)
            appendUInt16(&bytes, UInt16(kept.count))
            appendUInt16(&bytes, more || entries.count > kept.count ? 1 : 0)
            for entry in kept {
                for value in [entry.participant, entry.ssrcs.asq, entry.ssrcs.vsq, entry.ssrcs.vhq] { appendUInt32(&bytes, value) }
            }
        case .challenge(_, let cookie):
            bytes += cookie.bytes
        case .error(_, let code, let message):
            appendUInt16(&bytes, code.rawValue)
            bytes += [0, 0]
            let space = Swift.max(0, Swift.min(Self.maxErrorMessageBytes, maxSize - 12))
            var text = Substring(message)
            while text.utf8.count > space { text.removeLast() }
            bytes += Array(text.utf8)
        }
        return bytes
    }

    /// Whether these bytes start like a control message (the magic), as opposed to RTP.
    public static func looksLikeControl(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == magic.0 && bytes[1] == magic.1
    }
}
