@testable import GroupcastRedis
import Testing

/// The pure RESP2 parser: every value kind, frames cut anywhere, and every refusal named.
@Suite struct RESPParserTests {
    let parser = RESPParser()

    func parse(_ text: String) throws(RESPError) -> RESPParser.Outcome { try parser.parse(Array(text.utf8)) }

    func value(_ text: String) throws -> RESPValue {
        guard case .value(let value, let consumed) = try parse(text) else { throw TestFailure("\(text.debugDescription) is incomplete") }
        #expect(consumed == text.utf8.count)
        return value
    }

    func refusal(_ text: String, with parser: RESPParser = RESPParser()) -> RESPError? {
        do {
            let outcome = try parser.parse(Array(text.utf8))
            Issue.record("\(text.debugDescription) was accepted: \(outcome)")
            return nil
        } catch {
            return error
        }
    }

    @Test func everyKind() throws {
        #expect(try value("+OK\r\n") == .simpleString("OK"))
        #expect(try value("-ERR wrong\r\n") == .error("ERR wrong"))
        #expect(try value(":0\r\n") == .integer(0))
        #expect(try value(":-42\r\n") == .integer(-42))
        #expect(try value(":9223372036854775807\r\n") == .integer(.max))
        #expect(try value(":-9223372036854775808\r\n") == .integer(.min))
        #expect(try value("$5\r\nhe\r\no\r\n") == .bulkString(Array("he\r\no".utf8)))  // binary-safe
        #expect(try value("$0\r\n\r\n") == .bulkString([]))
        #expect(try value("$-1\r\n") == .null)
        #expect(try value("*-1\r\n") == .null)
        #expect(try value("*0\r\n") == .array([]))
    }

    @Test func nestedArraysWithNullsAndErrors() throws {
        let text = "*4\r\n*2\r\n:1\r\n$-1\r\n*0\r\n-NOSCRIPT no\r\n*1\r\n*1\r\n$1\r\nx\r\n"
        #expect(
            try value(text)
                == .array([
                    .array([.integer(1), .null]), .array([]), .error("NOSCRIPT no"), .array([.array([.bulkString([UInt8(ascii: "x")])])]),
                ]))
    }

    /// Every proper prefix of a frame is incomplete, never an error and never a value.
    @Test func everyPrefixIsIncomplete() throws {
        let frames = [
            "+OK\r\n", ":-12345\r\n", "$11\r\nhello world\r\n", "$-1\r\n",
            "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$6\r\njoin 1\r\n", "*2\r\n*1\r\n:1\r\n*-1\r\n",
        ]
        for frame in frames {
            let bytes = Array(frame.utf8)
            for cut in 0..<bytes.count {
                #expect(try parser.parse(Array(bytes[..<cut])) == .incomplete, "\(frame.debugDescription) cut at \(cut)")
            }
            guard case .value(_, let consumed) = try parser.parse(bytes) else { throw TestFailure("\(frame.debugDescription) incomplete") }
            #expect(consumed == bytes.count)
        }
    }

    /// Two frames in one read: the first is returned with exactly its length.
    @Test func backToBackFrames() throws {
        let bytes = Array("$3\r\nabc\r\n:7\r\n".utf8)
        #expect(try parser.parse(bytes) == .value(.bulkString(Array("abc".utf8)), consumed: 9))
        #expect(try parser.parse(Array(bytes[9...])) == .value(.integer(7), consumed: 4))
    }

    @Test func malformedFramesAreRefusedByName() {
        #expect(refusal("?x\r\n")?.kind == .unknownType(UInt8(ascii: "?")))
        #expect(refusal("$-2\r\n")?.kind == .invalidLength)
        #expect(refusal("*-5\r\n")?.kind == .invalidLength)
        #expect(refusal(":12a\r\n")?.kind == .invalidInteger)
        #expect(refusal(":\r\n")?.kind == .invalidInteger)
        #expect(refusal(":-\r\n")?.kind == .invalidInteger)
        #expect(refusal(":+1\r\n")?.kind == .invalidInteger)
        #expect(refusal(":9223372036854775808\r\n")?.kind == .invalidInteger)
        #expect(refusal(":-9223372036854775809\r\n")?.kind == .invalidInteger)
        #expect(refusal("+OK\rX")?.kind == .missingCRLF)
        #expect(refusal("+O\nK\r\n")?.kind == .missingCRLF)
        #expect(refusal("$3\r\nabcd\r\n")?.kind == .missingCRLF)
        // Inside an array, the element's error (and offset) comes out.
        let nested = refusal("*2\r\n:1\r\n!\r\n")
        #expect(nested?.kind == .unknownType(UInt8(ascii: "!")))
        #expect(nested?.offset == 8)
    }

    /// Lengths beyond the limits are refused as soon as the length line is read: nothing is
    /// allocated or awaited for them.
    @Test func oversizeLengthsAreRefusedBeforeTheirBytes() {
        var limits = RESPParser.Limits()
        limits.maxBulkLength = 1024
        limits.maxArrayCount = 8
        limits.maxDepth = 3
        limits.maxLineLength = 16
        let small = RESPParser(limits: limits)
        #expect(refusal("$1025\r\n", with: small)?.kind == .bulkTooLong)
        #expect(refusal("$99999999999999999\r\n")?.kind == .bulkTooLong)  // default limits too
        #expect(refusal("*9\r\n", with: small)?.kind == .arrayTooLong)
        #expect(refusal("*1\r\n*1\r\n*1\r\n*1\r\n", with: small)?.kind == .tooDeep)
        #expect(refusal("+0123456789abcdefg", with: small)?.kind == .lineTooLong)  // no CRLF in sight
        #expect(refusal("$1234567890123456789012", with: small)?.kind == .lineTooLong)
        // At the limits, accepted.
        #expect((try? small.parse(Array("$1024\r\n".utf8))) == .incomplete)
        #expect((try? small.parse(Array("*1\r\n*1\r\n*0\r\n".utf8))) == .value(.array([.array([.array([])])]), consumed: 12))
    }

    /// Encoding then parsing gives the value back, for random nested values; and random damage
    /// to an encoded frame is either parsed, incomplete or refused, never a crash or an
    /// out-of-range length.
    @Test func roundTripAndRandomDamage() throws {
        var random = SplitMix64(seed: 0x5eed_1234)
        for _ in 0..<500 {
            let original = randomValue(&random, depth: 0)
            let bytes = original.encoded
            #expect(try parser.parse(bytes) == .value(original, consumed: bytes.count))
            for _ in 0..<8 {
                var damaged = bytes
                switch random.next() % 3 {
                case 0: damaged[Int(random.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: random.next())
                case 1: damaged.removeSubrange(Int(random.next() % UInt64(damaged.count))...)
                default: damaged.insert(UInt8(truncatingIfNeeded: random.next()), at: Int(random.next() % UInt64(damaged.count)))
                }
                if case .value(_, let consumed) = try? parser.parse(damaged) { #expect(consumed <= damaged.count) }
            }
        }
    }

    func randomValue(_ random: inout SplitMix64, depth: Int) -> RESPValue {
        switch random.next() % (depth < 3 ? 6 : 5) {
        case 0: .simpleString(String(repeating: "s", count: Int(random.next() % 8)))
        case 1: .error("ERR " + String(repeating: "e", count: Int(random.next() % 8)))
        case 2: .integer(Int64(bitPattern: random.next()))
        case 3: .bulkString((0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        case 4: .null
        default: .array((0..<Int(random.next() % 5)).map { _ in randomValue(&random, depth: depth + 1) })
        }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var bytes: [UInt8] = []
        RedisCommand("SET", ["k", "v w", "PX", "100"]).encode(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv w\r\n$2\r\nPX\r\n$3\r\n100\r\n")
    }

    @Test func configurationFromURL() throws {
        let plain = try RedisConfiguration(url: "redis://127.0.0.1:6380")
        #expect(plain.host == "127.0.0.1" && plain.port == 6380 && plain.password == nil && plain.database == 0)
        let full = try RedisConfiguration(url: "redis://:s3cret@[::1]:7000/2")
        #expect(full.host == "::1" && full.port == 7000 && full.password == "s3cret" && full.database == 2)
        #expect(try RedisConfiguration(url: "redis://redis.local").port == 6379)
        for bad in ["http://x:1", "redis://:1", "redis://h:0", "redis://h:70000", "redis://h:p", "redis://user:pw@h:1", "redis://h:1/x"] {
            #expect(throws: RedisConfigurationError.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }
}

/// A seeded generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
