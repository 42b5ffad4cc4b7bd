/// The RTP fixed header (RFC 3550 §5.1), parsed without copying the payload.
///
/// The parser is pure: bytes in, a header or a typed error out. It is the one RTP parser of the
/// SFU, the client and the fuzz target (`GroupcastFuzz rtp`).
public struct RTPHeader: Hashable, Sendable {
    /// The fixed header's size: 12 bytes.
    public static let fixedSize = 12

    public var padding: Bool
    public var hasExtension: Bool
    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    /// The stream's SSRC: in this SFU, the stream id (SSID) the registry assigned.
    public var ssrc: UInt32
    public var csrcs: [UInt32]
    /// Where the payload starts (after CSRCs and the header extension).
    public var payloadOffset: Int
    /// Payload bytes, excluding trailing padding.
    public var payloadLength: Int

    public init(
        marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32
    ) {
        padding = false
        hasExtension = false
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        csrcs = []
        payloadOffset = Self.fixedSize
        payloadLength = 0
    }

    /// Why bytes are not an RTP packet.
    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Shorter than the 12-byte fixed header.
        case tooShort(length: Int)
        /// Version bits are not 2.
        case badVersion(UInt8)
        /// An RTCP packet multiplexed on the media port (RFC 5761 §4: payload type 64...95 with
        /// the marker bit, that is second byte 192...223).
        case rtcp(packetType: UInt8)
        /// The CSRC list or header extension runs past the end.
        case truncatedHeader(needed: Int, length: Int)
        /// The padding count is zero or larger than the payload.
        case badPadding(count: Int, available: Int)

        public var description: String {
            switch self {
            case .tooShort(let length): "RTP packet of \(length) bytes is shorter than the 12-byte header"
            case .badVersion(let version): "RTP version \(version), expected 2"
            case .rtcp(let type): "RTCP packet type \(type) on the media port"
            case .truncatedHeader(let needed, let length): "RTP header needs \(needed) bytes, packet has \(length)"
            case .badPadding(let count, let available): "RTP padding count \(count) with \(available) payload bytes"
            }
        }
    }

    /// Parses the header at the start of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> RTPHeader {
        let length = bytes.count
        guard length >= fixedSize else { throw .tooShort(length: length) }
        let first = bytes[0]
        let version = first >> 6
        guard version == 2 else { throw .badVersion(version) }
        let second = bytes[1]
        if second >= 192 && second <= 223 { throw .rtcp(packetType: second) }
        var header = RTPHeader(
            marker: second & 0x80 != 0,
            payloadType: second & 0x7f,
            sequenceNumber: readUInt16(bytes, 2),
            timestamp: readUInt32(bytes, 4),
            ssrc: readUInt32(bytes, 8)
        )
        header.padding = first & 0x20 != 0
        header.hasExtension = first & 0x10 != 0
        let csrcCount = Int(first & 0x0f)
        var offset = fixedSize + 4 * csrcCount
        guard offset <= length else { throw .truncatedHeader(needed: offset, length: length) }
        header.csrcs = (0..<csrcCount).map { readUInt32(bytes, fixedSize + 4 * $0) }
        if header.hasExtension {
            guard offset + 4 <= length else { throw .truncatedHeader(needed: offset + 4, length: length) }
            let words = Int(readUInt16(bytes, offset + 2))
            offset += 4 + 4 * words
            guard offset <= length else { throw .truncatedHeader(needed: offset, length: length) }
        }
        var payloadLength = length - offset
        if header.padding {
            let count = Int(bytes[length - 1])
            guard count > 0, count <= payloadLength else { throw .badPadding(count: count, available: payloadLength) }
            payloadLength -= count
        }
        header.payloadOffset = offset
        header.payloadLength = payloadLength
        return header
    }

    /// Parses the header at the start of `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> RTPHeader {
        try bytes.withUnsafeBytes { raw in Result { () throws(ParseError) in try parse(raw) } }.get()
    }

    /// The SSRC of what looks like RTP (12+ bytes, version 2), without validating the rest: the
    /// forwarder's fast check. `nil` otherwise.
    @inline(__always)
    public static func ssrcIfRTP(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        guard bytes.count >= fixedSize, bytes[0] >> 6 == 2 else { return nil }
        return readUInt32(bytes, 8)
    }

    /// The 12-byte fixed header (no CSRCs, no extension, no padding) followed by `payload`.
    public static func packet(
        payloadType: UInt8, marker: Bool = false, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
        payload: some Collection<UInt8>
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixedSize + payload.count)
        bytes.append(0x80)
        bytes.append((marker ? 0x80 : 0) | (payloadType & 0x7f))
        appendUInt16(&bytes, sequenceNumber)
        appendUInt32(&bytes, timestamp)
        appendUInt32(&bytes, ssrc)
        bytes.append(contentsOf: payload)
        return bytes
    }
}

// MARK: Big-endian helpers shared by the parsers

@inline(__always)
func readUInt16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
}

@inline(__always)
func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

@inline(__always)
func readUInt64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(readUInt32(bytes, offset)) << 32 | UInt64(readUInt32(bytes, offset + 4))
}

func appendUInt16(_ bytes: inout [UInt8], _ value: UInt16) {
    bytes.append(UInt8(value >> 8))
    bytes.append(UInt8(truncatingIfNeeded: value))
}

func appendUInt32(_ bytes: inout [UInt8], _ value: UInt32) {
    for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
}

func appendUInt64(_ bytes: inout [UInt8], _ value: UInt64) {
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
}
