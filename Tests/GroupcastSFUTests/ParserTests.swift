import Foundation
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
        let control = ControlMessage.keepalive(requestID: 1, participant: 2, session: 3).encoded()
        control.withUnsafeBytes { #expect(RTPHeader.ssrcIfRTP($0) == nil) }
        #expect(throws: RTPHeader.ParseError.self) { try RTPHeader.parse(control) }
    }
}

@Suite struct ControlParserTests {
    static let cookie = AddressCookie(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)
    static let samples: [ControlMessage] = [
        .register(Registration(requestID: 1, receive: [.asq, .vsq])),
        .register(Registration(requestID: 2, mediaPort: 5004, receive: .all, cookie: cookie, mediaCookie: cookie, room: "standup-1.a_b", token: Array("x.y.z".utf8))),
        .register(Registration(requestID: 2, receive: .all, room: String(repeating: "r", count: 64), token: [UInt8](repeating: 0x41, count: ControlMessage.maxTokenBytes))),
        .probe(requestID: 3),
        .subscribe(requestID: 3, participant: 4, session: 0xFEED_FACE_CAFE_BEEF, source: 5, streams: [.asq]),
        .subscribe(requestID: 3, participant: 4, session: 1, source: ControlMessage.allSources, streams: []),
        .leave(requestID: 6, participant: 7, session: 8),
        .keepalive(requestID: 8, participant: 9, session: 10),
        .roster(requestID: 10, participant: 11, session: 12, after: 13),
        .registered(Registered(requestID: 12, participant: 13, ssrcs: StreamSSRCs(asq: 1, vsq: 2, vhq: 0), keepaliveTimeoutMilliseconds: 5000, session: 99, send: [.asq, .vsq], receive: .all)),
        .subscribed(requestID: 14, participant: 15, source: 16, streams: .all),
        .left(requestID: 17, participant: 18),
        .keepaliveAck(requestID: 19, participant: 20),
        .rosterReply(requestID: 21, entries: [RosterEntry(participant: 1, ssrcs: .none), RosterEntry(participant: 2, ssrcs: StreamSSRCs(asq: 9, vsq: 8, vhq: 7))], more: true),
        .rosterReply(requestID: 22, entries: [], more: false),
        .challenge(requestID: 23, cookie: cookie),
        .error(requestID: 23, code: .roomFull, message: "room is full (3)"),
    ]

    @Test(arguments: samples) func roundTrips(_ message: ControlMessage) throws {
        let bytes = message.encoded()
        #expect(try ControlMessage.parse(bytes) == message)
        #expect(try ControlMessage.parse(bytes, expecting: message.kind.isRequest ? .request : .reply) == message)
        if let size = message.kind.fixedSize { #expect(bytes.count == size) }
        // Any other length of the same message is refused (ERROR carries free-length text).
        if message.kind != .error {
            #expect(throws: ControlParseError.self) { try ControlMessage.parse(bytes + [0]) }
            #expect(throws: ControlParseError.self) { try ControlMessage.parse(Array(bytes.dropLast())) }
        }
    }

    /// The replies an unverified sender can get are never larger than the requests it can send:
    /// REGISTER (1,024 bytes) -> CHALLENGE, REGISTERED, ERROR; PROBE -> CHALLENGE of the same size.
    @Test func repliesToUnverifiedSendersFitTheirRequests() {
        let register = ControlMessage.Kind.register.fixedSize!
        #expect(ControlMessage.Kind.challenge.fixedSize! <= register && ControlMessage.Kind.registered.fixedSize! <= register)
        #expect(ControlMessage.Kind.challenge.fixedSize! <= ControlMessage.Kind.probe.fixedSize!)
        #expect(12 + ControlMessage.maxErrorMessageBytes <= register)
        for size in 12..<80 {
            #expect(ControlMessage.error(requestID: 1, code: .notOwner, message: String(repeating: "x", count: 200)).encoded(maxSize: size).count <= size)
        }
    }

    /// A reply type is `unknown type` to the SFU at any size; a request type is to a client.
    @Test func directionDecidesBeforeSize() {
        let left = ControlMessage.left(requestID: 1, participant: 2).encoded()
        for bytes in [left, left + [0], Array(left.prefix(9))] {
            #expect(code(bytes, .request) == .unknownType)
        }
        let keepalive = ControlMessage.keepalive(requestID: 1, participant: 2, session: 3).encoded()
        #expect(code(keepalive, .reply) == .unknownType)
        #expect(code(keepalive + [0], .request) == .malformed)
    }

    @Test func version1IsRefusedWithItsOwnVersionByte() {
        // A version 1 REGISTER (12 bytes): unsupported version, and the ERROR carries version 1.
        let v1 = [0x47, 0x43, 1, 0x01, 0, 0, 0, 9, 0, 0, 0x07, 0] as [UInt8]
        do {
            _ = try ControlMessage.parse(v1, expecting: .request)
            Issue.record("version 1 parsed")
        } catch {
            #expect(error.code == .unsupportedVersion && error.version == 1 && error.requestID == 9)
            let reply = ControlMessage.error(requestID: error.requestID, code: error.code, message: error.reason).encoded(maxSize: v1.count, version: error.version)
            #expect(reply == [0x47, 0x43, 1, 0xFF, 0, 0, 0, 9, 0, 2, 0, 0])
        }
    }

    @Test func roomNamesAndTokenFieldAreChecked() {
        var register = ControlMessage.register(Registration(requestID: 1, receive: .all, room: "ab", token: [1, 2, 3])).encoded()
        register[44 + 3] = UInt8(ascii: "c")  // a byte after the terminating zero
        #expect(code(register) == .malformed)
        register = ControlMessage.register(Registration(requestID: 1, receive: .all, token: [1, 2, 3])).encoded()
        register[112 + 3] = 1  // padding after the token
        #expect(code(register) == .malformed)
        register[112 + 3] = 0
        register[108] = 0x04  // token length 1,027: past the message
        #expect(code(register) == .malformed)
        #expect(RoomName.isValid("a") && RoomName.isValid(String(repeating: "z", count: 64)))
        #expect(!RoomName.isValid("") && !RoomName.isValid(String(repeating: "z", count: 65)) && !RoomName.isValid("a b") && !RoomName.isValid("é"))
    }

    func code(_ bytes: [UInt8], _ direction: ControlMessage.Direction = .any) -> ControlErrorCode? {
        do { _ = try ControlMessage.parse(bytes, expecting: direction); return nil } catch { return error.code }
    }

    @Test func rejectsMalformed() {
        let keepalive = ControlMessage.keepalive(requestID: 0x01020304, participant: 2, session: 3).encoded()
        #expect(code([]) == .malformed)
        #expect(code(Array(keepalive.prefix(7))) == .malformed)
        #expect(code(Array(keepalive.dropLast())) == .malformed)
        #expect(code(keepalive + [0]) == .malformed)
        var badMagic = keepalive
        badMagic[0] = 0x48
        #expect(code(badMagic) == .malformed)
        var badVersion = keepalive
        badVersion[2] = 1
        #expect(code(badVersion) == .unsupportedVersion)
        var badType = keepalive
        badType[3] = 0x42
        #expect(code(badType) == .unknownType)
        var register = ControlMessage.register(Registration(requestID: 1, receive: .all)).encoded()
        register[10] = 0x08  // unknown stream bit
        #expect(code(register) == .malformed)
        var reserved = ControlMessage.register(Registration(requestID: 1, receive: .all)).encoded()
        reserved[11] = 1
        #expect(code(reserved) == .malformed)
        var roster = ControlMessage.rosterReply(requestID: 1, entries: [RosterEntry(participant: 1, ssrcs: .none)], more: false).encoded()
        roster[9] = 2  // claims two entries, carries one
        #expect(code(roster) == .malformed)
    }

    @Test func keepsRequestIDWhenHeaderIsReadable() {
        var bytes = ControlMessage.leave(requestID: 0xCAFE, participant: 1, session: 2).encoded()
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

/// The frame corpus the in-kernel data paths are tested with (bpf/tests/corpus/frames.txt, written
/// by bpf/.output/test_progs from its fixture table; format in bpf/tests/corpus/README.md): every
/// frame whose fate the socket path decides in user space gets the same verdict from
/// `RTPHeader.parse` and the routes as the corpus gives it, so the XDP program, the ring core and
/// this parser are held to one table.
@Suite struct FrameCorpusTests {
    /// One frame and its labels (bpf/tests/corpus/README.md): the XDP program's verdict and
    /// counter, what the socket path and the ring core do with it.
    struct Frame {
        var name: String, verdict: String, counter: String, socket: String, ring: String, payloadOffset: Int, bytes: [UInt8]
    }

    static func load() throws -> (routes: Set<UInt32>, frames: [Frame]) {
        let corpus = try loadWithEnvironment()
        return (corpus.routes, corpus.frames)
    }

    /// The corpus with its `@` lines (`port`, `sfu_mac`, ...; `route` lines in `routeLines`).
    static func loadWithEnvironment() throws -> (routes: Set<UInt32>, routeLines: [[String]], environment: [String: String], frames: [Frame]) {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../bpf/tests/corpus/frames.txt").standardized.path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var routes = Set<UInt32>(), frames: [Frame] = [], routeLines: [[String]] = [], environment: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("@route ") {
                let fields = line.split(separator: " ").map(String.init)
                if let ssrc = UInt32(fields[1].dropFirst(2), radix: 16) { routes.insert(ssrc) }
                routeLines.append(Array(fields.dropFirst()))
                continue
            }
            if line.hasPrefix("@") {
                let fields = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
                if fields.count == 2 { environment[fields[0]] = fields[1] }
                continue
            }
            if line.hasPrefix("#") || line.hasPrefix("@") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 8, let offset = Int(fields[6]) else { throw CorpusError(line: String(line)) }
            var bytes: [UInt8] = []
            var index = fields[7].startIndex
            while index < fields[7].endIndex {
                let next = fields[7].index(index, offsetBy: 2)
                guard let byte = UInt8(fields[7][index..<next], radix: 16) else { throw CorpusError(line: String(line)) }
                bytes.append(byte)
                index = next
            }
            frames.append(Frame(
                name: String(fields[0]), verdict: String(fields[1]), counter: String(fields[2]), socket: String(fields[4]),
                ring: String(fields[5]), payloadOffset: offset, bytes: bytes))
        }
        return (routes, routeLines, environment, frames)
    }

    struct CorpusError: Error { var line: String }

    /// DropReason is `enum gc_drop`: every reason once, by its name there, and each parse error
    /// maps to the reason the XDP program counts for the same frame.
    @Test func dropReasonsAreTheLayoutEnum() {
        let names = DropReason.allCases.map(\.description)
        #expect(names.count == Set(names).count && names.count > 20)
        #expect(names.allSatisfy { !$0.isEmpty && $0 == $0.lowercased() })
        for reason in DropReason.allCases { #expect(DropReason(name: reason.description) == reason) }
        #expect(DropReason(rawValue: DropReason.allCases.count) == nil)
        #expect(DropReason.spoofed.description == "spoofed" && DropReason.tooLarge.description == "too_large")
        #expect(DropReason(RTPHeader.ParseError.tooShort(length: 4)) == .truncated)
        #expect(DropReason(RTPHeader.ParseError.badVersion(1)) == .badRTPVersion)
        #expect(DropReason(RTPHeader.ParseError.badPadding(count: 0, available: 3)) == .badRTPHeader)
    }

    @Test func socketPathVerdictsMatchTheCorpus() throws {
        let (routes, frames) = try Self.load()
        var checked = 0
        for frame in frames where !["kernel", "none"].contains(frame.socket) {
            #expect(frame.payloadOffset >= 8, "\(frame.name): no UDP payload")
            guard frame.payloadOffset >= 8 else { continue }
            // The UDP datagram's payload, without Ethernet padding.
            let udpLength = Int(frame.bytes[frame.payloadOffset - 4]) << 8 | Int(frame.bytes[frame.payloadOffset - 3])
            let end = min(frame.bytes.count, frame.payloadOffset - 8 + udpLength)
            let payload = Array(frame.bytes[frame.payloadOffset..<max(end, frame.payloadOffset)])
            checked += 1
            switch frame.socket {
            case "forward", "spoofed", "unknown_ssrc":
                do {
                    let header = try RTPHeader.parse(payload)
                    // forward and spoofed are registered SSRCs (the origin check decides), unknown_ssrc is not.
                    #expect(routes.contains(header.ssrc) == (frame.socket != "unknown_ssrc"), "\(frame.name): SSRC \(header.ssrc)")
                } catch {
                    Issue.record("\(frame.name): \(error), want \(frame.socket)")
                }
            default:
                // A drop reason of the parser: the one enum gc_drop name the XDP program and the
                // ring core count the frame under.
                #expect(DropReason(name: frame.socket) != nil, "\(frame.name): \(frame.socket) is no drop reason")
                do {
                    _ = try RTPHeader.parse(payload)
                    Issue.record("\(frame.name): parsed, want \(frame.socket)")
                } catch {
                    #expect(DropReason(error).description == frame.socket, "\(frame.name): \(error) is \(DropReason(error)), want \(frame.socket)")
                }
            }
        }
        #expect(checked >= 20, "only \(checked) corpus frames reach the socket path's parser")
    }
}
