import GroupcastProtocol
import GroupcastClient
import GroupcastSFU
import GroupcastSocketBackend
import GroupUnicast
import Testing

@Suite struct RTPParserTests {
    @Test func parsesFixedHeader() throws {
        let bytes = RTPHeader.packet(payloadType: 96, marker: true, sequenceNumber: 0xABCD, timestamp: 0x01020304, ssrc: 0xDEADBEEF, payload: [1, 2, 3])
        let header = try RTPHeader.parse(bytes)
        #expect(header.marker)
        #expect(header.payloadType == 96)
        #expect(header.sequenceNumber == 0xABCD)
        #expect(header.timestamp == 0x01020304)
        #expect(header.ssrc == 0xDEADBEEF)
        #expect(header.payloadOffset == 12)
        #expect(header.payloadLength == 3)
    }

    @Test func csrcsExtensionAndPadding() throws {
        // V=2 P=1 X=1 CC=2, PT 0, seq 1, ts 2, ssrc 3, two CSRCs, extension of one word, 2 payload, 2 padding.
        var bytes: [UInt8] = [0xB2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        bytes += [0, 0, 0, 7, 0, 0, 0, 8]
        bytes += [0xBE, 0xDE, 0, 1, 9, 9, 9, 9]
        bytes += [0xAA, 0xBB, 0x00, 0x02]
        let header = try RTPHeader.parse(bytes)
        #expect(header.csrcs == [7, 8])
        #expect(header.hasExtension && header.padding)
        #expect(header.payloadOffset == 28)
        #expect(header.payloadLength == 2)
    }

    @Test func rejectsWithTypedErrors() {
        #expect(throws: RTPHeader.ParseError.tooShort(length: 11)) { try RTPHeader.parse([UInt8](repeating: 0x80, count: 11)) }
        #expect(throws: RTPHeader.ParseError.badVersion(1)) { try RTPHeader.parse([0x40] + [UInt8](repeating: 0, count: 11)) }
        #expect(throws: RTPHeader.ParseError.rtcp(packetType: 200)) { try RTPHeader.parse([0x80, 200] + [UInt8](repeating: 0, count: 10)) }
        #expect(throws: RTPHeader.ParseError.truncatedHeader(needed: 16, length: 12)) { try RTPHeader.parse([0x81] + [UInt8](repeating: 0, count: 11)) }
        #expect(throws: RTPHeader.ParseError.badPadding(count: 0, available: 1)) { try RTPHeader.parse([0xA0] + [UInt8](repeating: 0, count: 12)) }
        #expect(throws: RTPHeader.ParseError.truncatedHeader(needed: 20, length: 16)) { try RTPHeader.parse([0x90] + [UInt8](repeating: 0, count: 11) + [0, 0, 0, 1]) }
    }

    @Test func controlMagicIsNeverRTP() {
        let control = ControlMessage.keepalive(requestID: 1, participant: 2).encoded()
        control.withUnsafeBytes { #expect(RTPHeader.ssrcIfRTP($0) == nil) }
        #expect(throws: RTPHeader.ParseError.self) { try RTPHeader.parse(control) }
    }
}

@Suite struct ControlParserTests {
    static let samples: [ControlMessage] = [
        .register(requestID: 1, mediaPort: 0, receive: [.asq, .vsq]),
        .register(requestID: 2, mediaPort: 5004, receive: .all),
        .subscribe(requestID: 3, participant: 4, source: 5, streams: [.asq]),
        .subscribe(requestID: 3, participant: 4, source: ControlMessage.allSources, streams: []),
        .leave(requestID: 6, participant: 7),
        .keepalive(requestID: 8, participant: 9),
        .roster(requestID: 10, participant: 11),
        .registered(requestID: 12, participant: 13, ssrcs: StreamSSRCs(asq: 1, vsq: 2, vhq: 3), keepaliveTimeoutMilliseconds: 5000),
        .subscribed(requestID: 14, participant: 15, source: 16, streams: .all),
        .left(requestID: 17, participant: 18),
        .keepaliveAck(requestID: 19, participant: 20),
        .rosterReply(requestID: 21, entries: [RosterEntry(participant: 1, ssrcs: .none), RosterEntry(participant: 2, ssrcs: StreamSSRCs(asq: 9, vsq: 8, vhq: 7))]),
        .rosterReply(requestID: 22, entries: []),
        .error(requestID: 23, code: .roomFull, message: "room is full (3)"),
    ]

    @Test(arguments: samples) func roundTrips(_ message: ControlMessage) throws {
        let bytes = message.encoded()
        #expect(try ControlMessage.parse(bytes) == message)
        // Any other length of the same message is refused (ERROR carries free-length text).
        if message.kind != .error {
            #expect(throws: ControlParseError.self) { try ControlMessage.parse(bytes + [0]) }
        }
        if message.kind != .error {
            #expect(throws: ControlParseError.self) { try ControlMessage.parse(Array(bytes.dropLast())) }
        }
    }

    func code(_ bytes: [UInt8]) -> ControlErrorCode? {
        do { _ = try ControlMessage.parse(bytes); return nil } catch { return error.code }
    }

    @Test func rejectsMalformed() {
        let keepalive = ControlMessage.keepalive(requestID: 0x01020304, participant: 2).encoded()
        #expect(code([]) == .malformed)
        #expect(code(Array(keepalive.prefix(7))) == .malformed)
        #expect(code(Array(keepalive.dropLast())) == .malformed)
        #expect(code(keepalive + [0]) == .malformed)
        var badMagic = keepalive
        badMagic[0] = 0x48
        #expect(code(badMagic) == .malformed)
        var badVersion = keepalive
        badVersion[2] = 2
        #expect(code(badVersion) == .unsupportedVersion)
        var badType = keepalive
        badType[3] = 0x42
        #expect(code(badType) == .unknownType)
        var register = ControlMessage.register(requestID: 1, mediaPort: 0, receive: .all).encoded()
        register[10] = 0x08  // unknown stream bit
        #expect(code(register) == .malformed)
        var reserved = ControlMessage.register(requestID: 1, mediaPort: 0, receive: .all).encoded()
        reserved[11] = 1
        #expect(code(reserved) == .malformed)
        var roster = ControlMessage.rosterReply(requestID: 1, entries: [RosterEntry(participant: 1, ssrcs: .none)]).encoded()
        roster[9] = 2  // claims two entries, carries one
        #expect(code(roster) == .malformed)
    }

    @Test func keepsRequestIDWhenHeaderIsReadable() {
        var bytes = ControlMessage.leave(requestID: 0xCAFE, participant: 1).encoded()
        bytes.append(0)
        do {
            _ = try ControlMessage.parse(bytes)
            Issue.record("parsed a 13-byte LEAVE")
        } catch {
            #expect(error.requestID == 0xCAFE)
        }
    }

    @Test func errorTextIsBounded() throws {
        let long = String(repeating: "é", count: 100)
        let bytes = ControlMessage.error(requestID: 1, code: .malformed, message: long).encoded()
        #expect(bytes.count <= 12 + ControlMessage.maxErrorMessageBytes)
        guard case .error(_, _, let text) = try ControlMessage.parse(bytes) else { Issue.record("not an error"); return }
        #expect(text.count == ControlMessage.maxErrorMessageBytes / 2)
    }

    @Test func streamSetLists() {
        #expect(StreamSet(list: "asq, VHQ") == [.asq, .vhq])
        #expect(StreamSet(list: "none") == [])
        #expect(StreamSet(list: "all") == .all)
        #expect(StreamSet(list: "asq,video") == nil)
    }
}
