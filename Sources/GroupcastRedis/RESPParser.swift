/// Why bytes from the server are not RESP2. A parse error leaves the connection unusable (the
/// next frame boundary is unknown): the client closes it and reconnects.
public struct RESPError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The first byte of a value is not one of `+ - : $ *`.
        case unknownType(UInt8)
        /// A length or integer line that is not an optionally signed decimal in range.
        case invalidInteger
        /// A length below -1.
        case invalidLength
        /// A bulk string longer than ``RESPParser/Limits/maxBulkLength``.
        case bulkTooLong
        /// An array with more elements than ``RESPParser/Limits/maxArrayCount``.
        case arrayTooLong
        /// Arrays nested deeper than ``RESPParser/Limits/maxDepth``.
        case tooDeep
        /// No CRLF within ``RESPParser/Limits/maxLineLength`` bytes.
        case lineTooLong
        /// A CR not followed by LF, a bare LF in a line, or a bulk string not followed by CRLF.
        case missingCRLF
    }

    public var kind: Kind
    /// Offset of the offending byte from the start of the frame.
    public var offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String { "RESP \(kind) at byte \(offset)" }
}

/// A pure RESP2 parser: bytes in, at most one value out, no I/O and no state between calls.
///
/// ``parse(_:)`` either returns a whole value with the number of bytes it used, or says more
/// bytes are needed, or throws ``RESPError``. Every length is checked against ``Limits`` before
/// anything is allocated for it, so a forged length costs nothing; a partial frame is parsed
/// again from its start when more bytes arrive (replies here are small, so that is cheaper than
/// keeping a resumable state).
public struct RESPParser: Sendable {
    public struct Limits: Hashable, Sendable {
        /// Longest bulk string accepted (Redis's own default `proto-max-bulk-len` is 512 MiB;
        /// cluster state is a few kilobytes).
        public var maxBulkLength = 16 << 20
        /// Most elements in one array.
        public var maxArrayCount = 1 << 20
        /// Deepest nesting of arrays (the parser recurses once per level).
        public var maxDepth = 16
        /// Longest simple string or error line.
        public var maxLineLength = 64 << 10
        public init() {}
    }

    /// What one call found.
    public enum Outcome: Hashable, Sendable {
        case value(RESPValue, consumed: Int)
        /// The bytes are a valid prefix of a value: call again with more.
        case incomplete
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Parses the first value of `bytes`.
    public func parse(_ bytes: UnsafeRawBufferPointer) throws(RESPError) -> Outcome {
        var index = 0
        guard let value = try parseValue(bytes, at: &index, depth: 0) else { return .incomplete }
        return .value(value, consumed: index)
    }

    /// Parses the first value of `bytes` (tests and fuzzers).
    public func parse(_ bytes: [UInt8]) throws(RESPError) -> Outcome {
        let result: Result<Outcome, RESPError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(RESPError) -> Outcome in try parse(buffer) }
        }
        return try result.get()
    }

    /// Length and integer lines: a sign and 19 digits fit any Int64.
    private static let maxNumberLine = 20

    /// The value at `index`, moving `index` past it; `nil` when the bytes end first.
    private func parseValue(_ bytes: UnsafeRawBufferPointer, at index: inout Int, depth: Int) throws(RESPError) -> RESPValue? {
        guard index < bytes.count else { return nil }
        let type = bytes[index]
        var cursor = index + 1
        let value: RESPValue
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let line = try line(bytes, at: &cursor, limit: limits.maxLineLength) else { return nil }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[line]), as: UTF8.self)
            value = type == UInt8(ascii: "+") ? .simpleString(text) : .error(text)
        case UInt8(ascii: ":"):
            guard let number = try number(bytes, at: &cursor) else { return nil }
            value = .integer(number)
        case UInt8(ascii: "$"):
            let lengthStart = cursor
            guard let length = try number(bytes, at: &cursor) else { return nil }
            if length == -1 {
                value = .null
                break
            }
            guard length >= 0 else { throw RESPError(.invalidLength, at: lengthStart) }
            guard length <= limits.maxBulkLength else { throw RESPError(.bulkTooLong, at: lengthStart) }
            let count = Int(length)
            guard bytes.count - cursor >= count + 2 else { return nil }
            guard bytes[cursor + count] == 13, bytes[cursor + count + 1] == 10 else {
                throw RESPError(.missingCRLF, at: cursor + count)
            }
            value = .bulkString(Array(bytes[cursor..<cursor + count]))
            cursor += count + 2
        case UInt8(ascii: "*"):
            let countStart = cursor
            guard let count = try number(bytes, at: &cursor) else { return nil }
            if count == -1 {
                value = .null
                break
            }
            guard count >= 0 else { throw RESPError(.invalidLength, at: countStart) }
            guard count <= limits.maxArrayCount else { throw RESPError(.arrayTooLong, at: countStart) }
            guard depth < limits.maxDepth else { throw RESPError(.tooDeep, at: index) }
            // Every element takes at least 3 bytes ("+\r\n"): reserve no more than the bytes hold.
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(Int(count), (bytes.count - cursor) / 3))
            for _ in 0..<count {
                guard let element = try parseValue(bytes, at: &cursor, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            value = .array(elements)
        default:
            throw RESPError(.unknownType(type), at: index)
        }
        index = cursor
        return value
    }

    /// The range of the line at `cursor` (without CRLF), moving `cursor` past its CRLF.
    private func line(_ bytes: UnsafeRawBufferPointer, at cursor: inout Int, limit: Int) throws(RESPError) -> Range<Int>? {
        let start = cursor
        var end = start
        let scanEnd = min(bytes.count, start + limit + 1)
        while end < scanEnd {
            switch bytes[end] {
            case 13:
                guard end + 1 < bytes.count else { return nil }
                guard bytes[end + 1] == 10 else { throw RESPError(.missingCRLF, at: end + 1) }
                cursor = end + 2
                return start..<end
            case 10:
                throw RESPError(.missingCRLF, at: end)
            default:
                end += 1
            }
        }
        if end - start > limit { throw RESPError(.lineTooLong, at: start) }
        return nil
    }

    /// A decimal line (`-?[0-9]+`) at `cursor`.
    private func number(_ bytes: UnsafeRawBufferPointer, at cursor: inout Int) throws(RESPError) -> Int64? {
        let start = cursor
        guard let range = try line(bytes, at: &cursor, limit: Self.maxNumberLine) else { return nil }
        var digits = range
        let negative = !digits.isEmpty && bytes[digits.lowerBound] == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty else { throw RESPError(.invalidInteger, at: start) }
        var magnitude: UInt64 = 0
        for position in digits {
            let byte = bytes[position]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw RESPError(.invalidInteger, at: position) }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw RESPError(.invalidInteger, at: start) }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw RESPError(.invalidInteger, at: start) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw RESPError(.invalidInteger, at: start) }
        return Int64(magnitude)
    }
}
