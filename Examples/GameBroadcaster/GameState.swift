/// The private header each client gets in front of the shared world snapshot, as in QuakeForge's
/// per-client packet header: who the datagram is for and which of its inputs the server has applied.
struct ClientHeader: Hashable {
    static let size = 12

    var clientID: UInt32
    var lastAckedInput: UInt32
    var tick: UInt32

    var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendBigEndian(clientID)
        bytes.appendBigEndian(lastAckedInput)
        bytes.appendBigEndian(tick)
        return bytes
    }

    init(clientID: UInt32, lastAckedInput: UInt32, tick: UInt32) {
        self.clientID = clientID
        self.lastAckedInput = lastAckedInput
        self.tick = tick
    }

    /// Reads the header at the start of `bytes`; `nil` when they are too short.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.size else { return nil }
        self.init(clientID: bytes.bigEndianUInt32(at: 0), lastAckedInput: bytes.bigEndianUInt32(at: 4),
                  tick: bytes.bigEndianUInt32(at: 8))
    }
}

/// The input command a client sends every tick: its id and a sequence number.
struct InputCommand: Hashable {
    static let size = 8

    var clientID: UInt32
    var sequence: UInt32

    var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian(clientID)
        bytes.appendBigEndian(sequence)
        return bytes
    }

    init(clientID: UInt32, sequence: UInt32) {
        self.clientID = clientID
        self.sequence = sequence
    }

    /// Reads a command; `nil` unless `bytes` is exactly one.
    init?(_ bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        self.init(clientID: bytes.bigEndianUInt32(at: 0), sequence: bytes.bigEndianUInt32(at: 4))
    }
}

/// The shared world snapshot of one tick: the same bytes for every client, deterministic in the
/// tick so that a client can check what it received.
enum WorldSnapshot {
    static func bytes(tick: UInt32, size: Int) -> [UInt8] {
        var state = UInt64(tick) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<size).map { _ in
            // xorshift64*: cheap, deterministic stand-in for entity positions.
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return UInt8(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 56)
        }
    }
}

extension [UInt8] {
    mutating func appendBigEndian(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    func bigEndianUInt32(at offset: Int) -> UInt32 {
        self[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
