import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Testing

/// Address-validation cookies (Docs/protocol.md, "Address validation").
@Suite struct AddressValidatorTests {
    static let second: UInt64 = 1_000_000_000
    static let peer = SocketAddress.ipv4(IPv4Address(10, 0, 0, 1), port: 4000)

    @Test func validForItsAddressOnly() {
        let validator = AddressValidator(period: 30 * Self.second, now: 100 * Self.second)
        let cookie = validator.cookie(for: Self.peer.validationBytes)
        #expect(validator.isValid(cookie, for: Self.peer.validationBytes))
        #expect(!validator.isValid(cookie, for: Self.peer.withPort(4001).validationBytes))  // another port
        #expect(!validator.isValid(cookie, for: SocketAddress.ipv4(IPv4Address(10, 0, 0, 2), port: 4000).validationBytes))  // another IP
        #expect(!validator.isValid(cookie, for: SocketAddress.ipv6(IPv6Address(ipv4Mapped: IPv4Address(10, 0, 0, 1)), port: 4000).validationBytes))
        #expect(!validator.isValid(.none, for: Self.peer.validationBytes))
        var flipped = cookie
        flipped.low ^= 1
        #expect(!validator.isValid(flipped, for: Self.peer.validationBytes))
    }

    @Test func livesOneToTwoPeriodsAcrossRotation() {
        var validator = AddressValidator(period: 30 * Self.second, now: 100 * Self.second)
        let cookie = validator.cookie(for: Self.peer.validationBytes)
        validator.advance(to: 125 * Self.second)  // epoch 3 (90-120 s) -> 4: rotated once
        #expect(validator.isValid(cookie, for: Self.peer.validationBytes), "previous epoch's secret still accepted")
        let newer = validator.cookie(for: Self.peer.validationBytes)
        #expect(newer != cookie)
        validator.advance(to: 155 * Self.second)  // rotated again: the first cookie's secret is gone
        #expect(!validator.isValid(cookie, for: Self.peer.validationBytes), "expired cookie accepted")
        #expect(validator.isValid(newer, for: Self.peer.validationBytes))
        validator.advance(to: 400 * Self.second)  // long idle: both secrets new
        #expect(!validator.isValid(newer, for: Self.peer.validationBytes))
    }

    @Test func anotherServerSecretRefusesIt() {
        let one = AddressValidator(period: 30 * Self.second, now: 0)
        let other = AddressValidator(period: 30 * Self.second, now: 0)
        #expect(!other.isValid(one.cookie(for: Self.peer.validationBytes), for: Self.peer.validationBytes))
    }
}

/// Join tokens (JWT HS256).
@Suite struct JoinTokenTests {
    static let key = try! TokenKey(text: "test-operator-key-0123456789abcdef-0123456789")
    static let now: Int64 = 1_800_000_000

    func claims(expires: Int64 = now + 60) -> JoinClaims {
        JoinClaims(room: "red", identity: "alice", expires: expires, issuedAt: Self.now, rights: [.send], streams: [.asq, .vsq])
    }

    @Test func mintedTokensVerify() throws {
        let token = JoinToken.mint(claims(), key: Self.key)
        #expect(token.split(separator: ".").count == 3)
        let verified = try JoinToken.verify(Array(token.utf8), key: Self.key, now: Self.now)
        #expect(verified == claims())
        #expect(verified.sendable == [.asq, .vsq] && verified.receivable == [])
    }

    @Test func refusals() throws {
        let token = Array(JoinToken.mint(claims(), key: Self.key).utf8)
        let other = try TokenKey(text: "another-operator-key-0123456789abcdef-01234567")
        #expect(throws: TokenError.badSignature) { try JoinToken.verify(token, key: other, now: Self.now) }
        #expect(throws: TokenError.expired(at: Self.now + 60)) { try JoinToken.verify(token, key: Self.key, now: Self.now + 60) }
        var notYet = claims()
        notYet.notBefore = Self.now + 10
        #expect(throws: TokenError.notYetValid(until: Self.now + 10)) {
            try JoinToken.verify(Array(JoinToken.mint(notYet, key: Self.key).utf8), key: Self.key, now: Self.now)
        }
        // Claims changed after signing.
        let parts = String(decoding: token, as: UTF8.self).split(separator: ".")
        let forgedPayload = Base64URL.encode(Array(#"{"exp":1900000000,"rights":["send","receive"],"room":"red","streams":["asq"],"sub":"alice"}"#.utf8))
        #expect(throws: TokenError.badSignature) { try JoinToken.verify(Array("\(parts[0]).\(forgedPayload).\(parts[2])".utf8), key: Self.key, now: Self.now) }
        // alg none, and an HS256 signature over a header that says otherwise.
        let none = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + parts[1] + "."
        #expect(throws: TokenError.self) { try JoinToken.verify(Array(none.utf8), key: Self.key, now: Self.now) }
        #expect(throws: TokenError.unsupportedAlgorithm("RS256")) { try JoinToken.decode(Array((Base64URL.encode(Array(#"{"alg":"RS256"}"#.utf8)) + "." + parts[1] + "." + parts[2]).utf8)) }
        #expect(throws: TokenError.self) { try JoinToken.verify(Array("not a token".utf8), key: Self.key, now: Self.now) }
        #expect(throws: TokenError.self) { try JoinToken.verify([UInt8](repeating: 0x41, count: 2000), key: Self.key, now: Self.now) }
        #expect(throws: TokenKey.LoadError.self) { try TokenKey(text: "too short") }
    }

    /// Any JWT tool mints tokens the SFU accepts: here Python's standard library, by the RFCs.
    @Test func tokensFromAnotherImplementationVerify() throws {
        let script = """
            import base64, hashlib, hmac, json, sys
            b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
            header = b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
            payload = b64(json.dumps({"sub": "bob", "room": "blue", "exp": 1800000100, "rights": ["receive"], "streams": ["vhq"], "extra": 1}).encode())
            signature = b64(hmac.new(sys.argv[1].encode(), header + b"." + payload, hashlib.sha256).digest())
            print((header + b"." + payload + b"." + signature).decode())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, "test-operator-key-0123456789abcdef-0123456789"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let token = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        let claims = try JoinToken.verify(Array(token.utf8), key: Self.key, now: Self.now)
        #expect(claims == JoinClaims(room: "blue", identity: "bob", expires: 1_800_000_100, rights: [.receive], streams: [.vhq]))
    }
}

@Suite struct RateLimiterTests {
    static let second: UInt64 = 1_000_000_000

    @Test func bucketPerAddressRefills() {
        var limiter = RateLimiter(limit: .init(rate: 10, burst: 3))
        // #expect takes a mutating call apart; each decision is taken first.
        func allow(_ source: SocketAddress, _ now: UInt64) -> Bool { limiter.allow(source, now: now) }
        let a = SocketAddress.ipv4(IPv4Address(10, 0, 0, 1), port: 1), aOtherPort = a.withPort(2)
        let b = SocketAddress.ipv4(IPv4Address(10, 0, 0, 2), port: 1)
        let burst = (0..<5).map { _ in allow(a, Self.second) }
        #expect(burst == [true, true, true, false, false])
        let otherPort = allow(aOtherPort, Self.second), otherAddress = allow(b, Self.second)
        #expect(!otherPort && otherAddress)  // per address, not per port
        let refilled = allow(a, Self.second + Self.second / 10), again = allow(a, Self.second + Self.second / 10)
        #expect(refilled && !again)  // 100 ms: one token back
        // IPv6 by /64.
        let v6 = SocketAddress.ipv6(IPv6Address(high: 0xfd00_0000_0000_0001, low: 1), port: 1)
        let v6Sibling = SocketAddress.ipv6(IPv6Address(high: 0xfd00_0000_0000_0001, low: 99), port: 1)
        let v6Burst = (0..<3).map { _ in allow(v6, 0) }, sibling = allow(v6Sibling, 0)
        #expect(v6Burst == [true, true, true] && !sibling)
    }

    @Test func tableStaysBounded() {
        var limiter = RateLimiter(limit: .init(rate: 1, burst: 1), sets: 16)
        #expect(limiter.capacity == 64)
        // 10,000 sources: memory stays at 64 entries; a flood of new sources cannot pin an old one's
        // bucket empty forever (it is evicted and comes back full), nor grow the table.
        for index in 0..<10_000 { _ = limiter.allow(.ipv4(IPv4Address(UInt32(index)), port: 1), now: UInt64(index)) }
        #expect(limiter.capacity == 64)
    }
}

/// The registry: rooms, bounds, paging, rights.
@Suite struct RegistryTests {
    static func address(_ host: UInt8, _ port: UInt16 = 1000) -> SocketAddress { .ipv4(IPv4Address(10, 0, 0, host), port: port) }

    @Test func boundsGiveNamedErrors() throws {
        var limits = SessionRegistry.Limits()
        limits.roomCapacity = 2
        limits.maxParticipants = 3
        limits.maxRooms = 2
        var registry = SessionRegistry(limits: limits, keepaliveTimeout: .seconds(10))
        _ = try registry.register(JoinRequest(source: Self.address(1), room: "a", receive: .all), now: 0)
        _ = try registry.register(JoinRequest(source: Self.address(2), room: "a", receive: .all), now: 0)
        #expect(throws: RegistryError(.roomFull, "room a is full (2)")) { try registry.register(JoinRequest(source: Self.address(3), room: "a", receive: .all), now: 0) }
        _ = try registry.register(JoinRequest(source: Self.address(3), room: "b", receive: .all), now: 0)
        #expect(throws: RegistryError(.serverFull, "the SFU holds 2 rooms")) { try registry.register(JoinRequest(source: Self.address(4), room: "c", receive: .all), now: 0) }
        #expect(throws: RegistryError(.serverFull, "the SFU holds 3 participants")) { try registry.register(JoinRequest(source: Self.address(4), room: "b", receive: .all), now: 0) }
        limits.allowRoomCreation = false
        var closed = SessionRegistry(limits: limits, keepaliveTimeout: .seconds(10))
        try closed.addRoom("only")
        #expect(throws: RegistryError(.unknownRoom, "room other does not exist")) { try closed.register(JoinRequest(source: Self.address(1), room: "other", receive: .all), now: 0) }
        _ = try closed.register(JoinRequest(source: Self.address(1), room: "only", receive: .all), now: 0)
    }

    @Test func rosterPagesByIdWithoutGapsOrRepeats() throws {
        var registry = SessionRegistry(capacity: 500, keepaliveTimeout: .seconds(10))
        var ids: [UInt32] = []
        for index in 0..<250 {
            ids.append(try registry.register(JoinRequest(source: Self.address(1, UInt16(1000 + index)), receive: .all), now: 0).id)
        }
        let other = try registry.register(JoinRequest(source: Self.address(2), room: "elsewhere", receive: .all), now: 0)
        let asker = registry.participants[ids[0]]!
        var seen: [UInt32] = []
        var after: UInt32 = 0
        var pages = 0
        while true {
            let (page, more) = try registry.roster(for: asker.id, session: asker.session, from: asker.controlAddress!, after: after)
            pages += 1
            seen += page.map(\.participant)
            guard more else { break }
            after = page.last!.participant
            // Joins and leaves between pages neither repeat nor skip the others.
            if pages == 1 { try registry.leave(ids[200], session: registry.participants[ids[200]]!.session, from: registry.participants[ids[200]]!.controlAddress!) }
        }
        #expect(pages == 4)
        #expect(seen == ids.filter { $0 != ids[200] })
        #expect(!seen.contains(other.id))
        #expect(throws: RegistryError.self) { try registry.roster(for: asker.id, session: asker.session &+ 1, from: asker.controlAddress!, after: 0) }
    }

    @Test func rightsShapeTheRoutes() throws {
        var registry = SessionRegistry(capacity: 8, keepaliveTimeout: .seconds(10))
        let sender = try registry.register(JoinRequest(source: Self.address(1), receive: .all), now: 0)
        let deaf = try registry.register(JoinRequest(source: Self.address(2), sendable: .all, receivable: [], receive: .all), now: 0)
        let audioOnly = try registry.register(JoinRequest(source: Self.address(3), sendable: [.asq], receivable: [.asq], receive: .all), now: 0)
        let table = registry.routingTable(echo: false)
        for (type, ssrc) in sender.ssrcs.streams {
            let subscribers = table[ssrc]!.subscribers.map(\.participant)
            #expect(!subscribers.contains(deaf.id))
            #expect(subscribers.contains(audioOnly.id) == (type == .asq))
        }
        #expect(audioOnly.ssrcs.streams.map(\.type) == [.asq])
        #expect(throws: RegistryError.self) {
            try registry.subscribe(audioOnly.id, session: audioOnly.session, to: sender.id, streams: [.vhq], from: Self.address(3), now: 0)
        }
    }
}
