/// The media stream types of the pktswitch SFU (Baltas & Xylomenos).
///
/// Raw values equal `enum gc_stream_type` in `bpf/include/groupcast_layout.h`, so the XDP forwarder can copy them
/// into `struct gc_route.stream_type` unchanged.
public enum StreamType: UInt8, CaseIterable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Audio, standard quality. Never shed under overload.
    case asq = 1
    /// Video, standard quality (the base layer). Shed after VHQ.
    case vsq = 2
    /// Video, high quality (the enhancement layer). Shed first.
    case vhq = 3

    /// `ASQ`, `VSQ` or `VHQ`.
    public var description: String {
        switch self {
        case .asq: "ASQ"
        case .vsq: "VSQ"
        case .vhq: "VHQ"
        }
    }

    /// Parses `asq`, `vsq`, `vhq` in any case.
    public init?(name: String) {
        switch name.lowercased() {
        case "asq": self = .asq
        case "vsq": self = .vsq
        case "vhq": self = .vhq
        default: return nil
        }
    }

    /// This type's bit in a ``StreamSet``.
    public var bit: UInt8 { 1 << (rawValue - 1) }

    /// The RTP payload type the bundled client uses for this stream (dynamic range, RFC 3551).
    /// The SFU never looks at it: an SSRC's type comes from its registration.
    public var rtpPayloadType: UInt8 { 95 + rawValue }

    public static func < (lhs: StreamType, rhs: StreamType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A set of stream types, as one byte on the wire: bit 0 ASQ, bit 1 VSQ, bit 2 VHQ.
public struct StreamSet: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let asq = StreamSet(rawValue: StreamType.asq.bit)
    public static let vsq = StreamSet(rawValue: StreamType.vsq.bit)
    public static let vhq = StreamSet(rawValue: StreamType.vhq.bit)
    public static let all: StreamSet = [.asq, .vsq, .vhq]
    /// The bits that name a stream type; others must be zero on the wire.
    public static let validBits: UInt8 = 0b111

    public init(_ type: StreamType) { self.init(rawValue: type.bit) }

    public init(_ types: some Sequence<StreamType>) {
        self.init(rawValue: types.reduce(0) { $0 | $1.bit })
    }

    public func contains(_ type: StreamType) -> Bool { rawValue & type.bit != 0 }

    /// The types in the set, in ``StreamType`` order.
    public var types: [StreamType] { StreamType.allCases.filter { contains($0) } }

    /// Parses a comma-separated list such as `asq,vsq`; `none` or the empty string is the empty
    /// set and `all` is every type. `nil` when a name is unknown.
    public init?(list: String) {
        let trimmed = list.trimmingWhitespace()
        if trimmed.isEmpty || trimmed.lowercased() == "none" { self = []; return }
        if trimmed.lowercased() == "all" { self = .all; return }
        var set: StreamSet = []
        for name in trimmed.split(separator: ",") {
            guard let type = StreamType(name: String(name).trimmingWhitespace()) else { return nil }
            set.insert(StreamSet(type))
        }
        self = set
    }

    /// `asq,vsq`, or `none`.
    public var description: String {
        types.isEmpty ? "none" : types.map { $0.description.lowercased() }.joined(separator: ",")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
