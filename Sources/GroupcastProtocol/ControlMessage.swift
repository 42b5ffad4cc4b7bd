/// The SFU's control protocol (Docs/protocol.md): fixed-layout, big-endian UDP messages.
///
/// Every message starts with `'G' 'C'`, a version byte and a type byte, then a 32-bit request id
/// chosen by the client and echoed in the reply. `'G'` (0x47) has the top bits `01`, so a control
/// message can never be mistaken for RTP version 2 (top bits `10`) on a socket that gets both.
///
/// ``ControlMessage/parse(_:)`` is pure and total: any bytes give a message or a
/// ``ControlParseError``; ``ControlMessage/encoded()`` is its inverse.
public enum ControlMessage: Hashable, Sendable {
    // Requests (client to SFU).
    /// Join the room. `mediaPort` 0: media comes from (and goes to) the request's source port.
    /// `receive`: the stream types wanted from every source unless a SUBSCRIBE overrides it.
    case register(requestID: UInt32, mediaPort: UInt16, receive: StreamSet)
    /// Receive `streams` of `source` (``ControlMessage/allSources``: the default for every source).
    case subscribe(requestID: UInt32, participant: UInt32, source: UInt32, streams: StreamSet)
    case leave(requestID: UInt32, participant: UInt32)
    case keepalive(requestID: UInt32, participant: UInt32)
    /// Ask for every participant and its SSRCs.
    case roster(requestID: UInt32, participant: UInt32)

    // Replies (SFU to client).
    case registered(requestID: UInt32, participant: UInt32, ssrcs: StreamSSRCs, keepaliveTimeoutMilliseconds: UInt32)
    case subscribed(requestID: UInt32, participant: UInt32, source: UInt32, streams: StreamSet)
    case left(requestID: UInt32, participant: UInt32)
    case keepaliveAck(requestID: UInt32, participant: UInt32)
    case rosterReply(requestID: UInt32, entries: [RosterEntry])
    case error(requestID: UInt32, code: ControlErrorCode, message: String)

    /// `'G' 'C'`.
    public static let magic: (UInt8, UInt8) = (0x47, 0x43)
    public static let version: UInt8 = 1
    /// The common header: magic, version, type, request id.
    public static let headerSize = 8
    /// `source` of a SUBSCRIBE that sets the default for every source, present and future.
    public static let allSources: UInt32 = 0xFFFF_FFFF
    /// Longest error text the SFU sends (keeps error replies small: no amplification).
    public static let maxErrorMessageBytes = 64
    /// Most roster entries one reply carries (fits a 1,500-byte MTU).
    public static let maxRosterEntries = 80

    /// The message type byte.
    public enum Kind: UInt8, CaseIterable, Sendable {
        case register = 0x01, subscribe = 0x02, leave = 0x03, keepalive = 0x04, roster = 0x05
        case registered = 0x81, subscribed = 0x82, left = 0x83, keepaliveAck = 0x84, rosterReply = 0x85
        case error = 0xFF

        /// Exact message size, header included; `nil` for variable-size kinds.
        var fixedSize: Int? {
            switch self {
            case .register: 12
            case .subscribe: 20
            case .leave, .keepalive, .roster, .left, .keepaliveAck: 12
            case .registered: 28
            case .subscribed: 20
            case .rosterReply, .error: nil
            }
        }

        /// A participant's request (the SFU answers it) rather than a reply.
        public var isRequest: Bool { rawValue < 0x80 }
    }

    public var kind: Kind {
        switch self {
        case .register: .register
        case .subscribe: .subscribe
        case .leave: .leave
        case .keepalive: .keepalive
        case .roster: .roster
        case .registered: .registered
        case .subscribed: .subscribed
        case .left: .left
        case .keepaliveAck: .keepaliveAck
        case .rosterReply: .rosterReply
        case .error: .error
        }
    }

    public var requestID: UInt32 {
        switch self {
        case .register(let id, _, _), .subscribe(let id, _, _, _), .leave(let id, _), .keepalive(let id, _),
            .roster(let id, _), .registered(let id, _, _, _), .subscribed(let id, _, _, _), .left(let id, _),
            .keepaliveAck(let id, _), .rosterReply(let id, _), .error(let id, _, _):
            id
        }
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
    /// Wrong magic, wrong size for its type, non-zero reserved bits, or a reply sent as a request.
    case malformed = 1
    /// A version byte other than 1.
    case unsupportedVersion = 2
    /// A type byte that is not a request this SFU knows.
    case unknownType = 3
    /// The participant id is not registered (never was, left, or timed out).
    case unknownParticipant = 4
    /// The request came from an address other than the participant's registered control address.
    case notOwner = 5
    /// The room has as many participants as its capacity.
    case roomFull = 6
    /// SUBSCRIBE names a source participant that is not in the room.
    case unknownSource = 7
    /// REGISTER names a media address another participant already sends from.
    case addressInUse = 8

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
        }
    }
}

/// Why bytes are not a control message; the SFU answers each with an ERROR reply.
public struct ControlParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The code of the ERROR reply this deserves.
    public var code: ControlErrorCode
    /// The request id when the header was readable, else 0.
    public var requestID: UInt32
    public var reason: String

    public init(_ code: ControlErrorCode, requestID: UInt32, _ reason: String) {
        self.code = code
        self.requestID = requestID
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}

extension ControlMessage {
    /// Parses one control datagram.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ControlParseError) -> ControlMessage {
        let length = bytes.count
        guard length >= headerSize else {
            throw ControlParseError(.malformed, requestID: 0, "\(length) bytes, shorter than the 8-byte header")
        }
        guard bytes[0] == magic.0, bytes[1] == magic.1 else {
            throw ControlParseError(.malformed, requestID: 0, "bad magic")
        }
        let requestID = readUInt32(bytes, 4)
        guard bytes[2] == version else {
            throw ControlParseError(.unsupportedVersion, requestID: requestID, "version \(bytes[2]), expected \(version)")
        }
        guard let kind = Kind(rawValue: bytes[3]) else {
            throw ControlParseError(.unknownType, requestID: requestID, "type 0x\(String(bytes[3], radix: 16))")
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
        switch kind {
        case .register:
            try zero(11..<12)
            return .register(requestID: requestID, mediaPort: readUInt16(bytes, 8), receive: try streams(bytes[10]))
        case .subscribe:
            try zero(17..<20)
            return .subscribe(
                requestID: requestID, participant: readUInt32(bytes, 8), source: readUInt32(bytes, 12),
                streams: try streams(bytes[16]))
        case .leave: return .leave(requestID: requestID, participant: readUInt32(bytes, 8))
        case .keepalive: return .keepalive(requestID: requestID, participant: readUInt32(bytes, 8))
        case .roster: return .roster(requestID: requestID, participant: readUInt32(bytes, 8))
        case .registered:
            return .registered(
                requestID: requestID, participant: readUInt32(bytes, 8),
                ssrcs: StreamSSRCs(asq: readUInt32(bytes, 12), vsq: readUInt32(bytes, 16), vhq: readUInt32(bytes, 20)),
                keepaliveTimeoutMilliseconds: readUInt32(bytes, 24))
        case .subscribed:
            try zero(17..<20)
            return .subscribed(
                requestID: requestID, participant: readUInt32(bytes, 8), source: readUInt32(bytes, 12),
                streams: try streams(bytes[16]))
        case .left: return .left(requestID: requestID, participant: readUInt32(bytes, 8))
        case .keepaliveAck: return .keepaliveAck(requestID: requestID, participant: readUInt32(bytes, 8))
        case .rosterReply:
            guard length >= 12 else { throw malformed("ROSTER reply of \(length) bytes, shorter than 12") }
            try zero(10..<12)
            let count = Int(readUInt16(bytes, 8))
            guard count <= maxRosterEntries else { throw malformed("\(count) roster entries, at most \(maxRosterEntries)") }
            guard length == 12 + 16 * count else { throw malformed("ROSTER reply of \(length) bytes for \(count) entries") }
            let entries = (0..<count).map { index in
                let base = 12 + 16 * index
                return RosterEntry(
                    participant: readUInt32(bytes, base),
                    ssrcs: StreamSSRCs(asq: readUInt32(bytes, base + 4), vsq: readUInt32(bytes, base + 8), vhq: readUInt32(bytes, base + 12)))
            }
            return .rosterReply(requestID: requestID, entries: entries)
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

    public static func parse(_ bytes: [UInt8]) throws(ControlParseError) -> ControlMessage {
        try bytes.withUnsafeBytes { raw in Result { () throws(ControlParseError) in try parse(raw) } }.get()
    }

    /// The wire form. ERROR text longer than ``maxErrorMessageBytes`` is cut at a character
    /// boundary; a roster longer than ``maxRosterEntries`` is cut to that many.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Self.magic.0, Self.magic.1, Self.version, kind.rawValue]
        bytes.reserveCapacity(32)
        appendUInt32(&bytes, requestID)
        switch self {
        case .register(_, let port, let receive):
            appendUInt16(&bytes, port)
            bytes += [receive.rawValue, 0]
        case .subscribe(_, let participant, let source, let streams), .subscribed(_, let participant, let source, let streams):
            appendUInt32(&bytes, participant)
            appendUInt32(&bytes, source)
            bytes += [streams.rawValue, 0, 0, 0]
        case .leave(_, let participant), .keepalive(_, let participant), .roster(_, let participant),
            .left(_, let participant), .keepaliveAck(_, let participant):
            appendUInt32(&bytes, participant)
        case .registered(_, let participant, let ssrcs, let timeout):
            for value in [participant, ssrcs.asq, ssrcs.vsq, ssrcs.vhq, timeout] { appendUInt32(&bytes, value) }
        case .rosterReply(_, let entries):
            let kept = entries.prefix(Self.maxRosterEntries)
            appendUInt16(&bytes, UInt16(kept.count))
            bytes += [0, 0]
            for entry in kept {
                for value in [entry.participant, entry.ssrcs.asq, entry.ssrcs.vsq, entry.ssrcs.vhq] { appendUInt32(&bytes, value) }
            }
        case .error(_, let code, let message):
            appendUInt16(&bytes, code.rawValue)
            bytes += [0, 0]
            var text = Substring(message)
            while text.utf8.count > Self.maxErrorMessageBytes { text.removeLast() }
            bytes += Array(text.utf8)
        }
        return bytes
    }

    /// Whether these bytes start like a control message (the magic), as opposed to RTP.
    public static func looksLikeControl(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == magic.0 && bytes[1] == magic.1
    }
}
