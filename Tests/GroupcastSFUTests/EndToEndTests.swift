import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastRingBackend
import GroupcastClient
import GroupcastLab
import GroupcastMetrics
import GroupcastSFU
import GroupcastSocketBackend
import GroupcastBackends
import GroupcastXDPBackend
import GroupUnicast
import Testing

/// The SFU end to end (scripts/test/sfu runs this inside a private network namespace), on the
/// backend `GROUPCAST_SFU_BACKEND` names, over loopback or, for an interface backend, over a veth
/// into a peer namespace (``TestNetwork``).
@Suite(.serialized) struct EndToEndTests {
    @Test func registrationAssignsIdsAndUniqueSSRCs() throws {
        let sfu = try TestSFU()
        let clients = try (1...3).map { try TestParticipant(sfu, host: UInt8(10 + $0)).register() }
        #expect(Set(clients.map(\.id)).count == 3)
        let ssrcs = clients.flatMap { [$0.ssrcs.asq, $0.ssrcs.vsq, $0.ssrcs.vhq] }
        #expect(Set(ssrcs).count == 9 && !ssrcs.contains(0))
        // A repeated REGISTER (lost reply) returns the same participant.
        let again = try clients[0].channel.register(JoinParameters(receive: .all), requestID: 99)
        #expect(again.id == clients[0].id && again.ssrcs == clients[0].ssrcs)
        guard case .rosterReply(_, let entries, false) = try clients[1].rawControl(ControlMessage.roster(requestID: 5, participant: clients[1].id, session: clients[1].session, after: 0).encoded()) else {
            Issue.record("no ROSTER reply")
            return
        }
        #expect(entries.map(\.participant) == clients.map(\.id).sorted())
        #expect(sfu.server.participants().count == 3)
    }

    @Test func preferencesAndEchoAreHonoured() throws {
        let sfu = try TestSFU()
        let a = try TestParticipant(sfu, host: 21).register(receive: .all)
        let b = try TestParticipant(sfu, host: 22).register(receive: [.asq, .vsq])
        let c = try TestParticipant(sfu, host: 23).register(receive: [.asq])
        // C overrides for A only: VHQ, no ASQ.
        try c.subscribe(to: a.id, [.vhq])
        for participant in [a, b, c] {
            for type in StreamType.allCases { try participant.sendMedia(type) }
        }
        #expect(sfu.waitForReceived(9))
        let atA = try a.collectMedia(), atB = try b.collectMedia(), atC = try c.collectMedia()
        // Echo: every sender gets each of its own packets back once.
        for (participant, packets) in [(a, atA), (b, atB), (c, atC)] {
            for type in StreamType.allCases { #expect(packets.count(of: participant.ssrcs[type]) == 1, "echo of \(type)") }
        }
        // A: everything from B and C.
        for source in [b, c] { for type in StreamType.allCases { #expect(atA.count(of: source.ssrcs[type]) == 1) } }
        // B: ASQ and VSQ, never VHQ.
        for source in [a, c] {
            #expect(atB.count(of: source.ssrcs.asq) == 1 && atB.count(of: source.ssrcs.vsq) == 1)
            #expect(atB.count(of: source.ssrcs.vhq) == 0)
        }
        // C: from A only VHQ (override); from B only ASQ (default).
        #expect(atC.count(of: a.ssrcs.vhq) == 1 && atC.count(of: a.ssrcs.asq) == 0 && atC.count(of: a.ssrcs.vsq) == 0)
        #expect(atC.count(of: b.ssrcs.asq) == 1 && atC.count(of: b.ssrcs.vsq) == 0 && atC.count(of: b.ssrcs.vhq) == 0)
        #expect(atA.count == 9 && atB.count == 7 && atC.count == 5)
        // Forwarded bytes are the sent bytes.
        let sent = RTPHeader.packet(payloadType: StreamType.vsq.rtpPayloadType, sequenceNumber: 1, timestamp: 0, ssrc: b.ssrcs.vsq, payload: [UInt8](repeating: 2, count: 16))
        #expect(atA.first { $0.ssrc == b.ssrcs.vsq }?.bytes == sent)
        let stats = sfu.stats
        #expect(stats.received == 9 && stats.echoed == 9 && stats.forwarded == 12 && stats.dropped == 0)
        #expect(stats.delay.count == 9 && stats.delay.max > 0)
        if TestBackend.selected == .xdp {
            // Every copy and echo was made in the kernel: the participants had spoken (REGISTER),
            // so their neighbours were known when the routes were installed.
            #expect(stats.inKernel == 21, "in kernel \(stats.inKernel) of 21")
        } else {
            #expect(stats.inKernel == 0)
        }
    }

    @Test func noEchoWhenDisabled() throws {
        let sfu = try TestSFU(echo: false)
        let a = try TestParticipant(sfu, host: 24).register()
        let b = try TestParticipant(sfu, host: 25).register()
        try a.sendMedia(.asq)
        #expect(sfu.waitForReceived(1))
        #expect(try a.collectMedia().isEmpty)
        #expect(try b.collectMedia().count(of: a.ssrcs.asq) == 1)
    }

    @Test func leaveRemovesRoutesAndSubscriptions() throws {
        let sfu = try TestSFU()
        let a = try TestParticipant(sfu, host: 31).register()
        let b = try TestParticipant(sfu, host: 32).register()
        let c = try TestParticipant(sfu, host: 33).register()
        try b.channel.expect(.leave(requestID: 7, participant: b.id, session: b.session), .left)
        try a.sendMedia(.asq)
        try b.sendMedia(.asq)  // after LEAVE its SSRC is unknown
        #expect(sfu.waitForReceived(2))
        #expect(try b.collectMedia().isEmpty)
        let atC = try c.collectMedia()
        #expect(atC.count(of: a.ssrcs.asq) == 1 && atC.count(of: b.ssrcs.asq) == 0)
        #expect(sfu.stats[.unknownSSRC] == 1)
        // Leaving twice: unknown participant.
        guard case .error(7, .unknownParticipant, _) = try b.rawControl(ControlMessage.leave(requestID: 7, participant: b.id, session: b.session).encoded()) else {
            Issue.record("second LEAVE not refused")
            return
        }
        #expect(sfu.server.participants().map(\.id) == [a.id, c.id])
    }

    /// The recipients follow every table change, and a subscriber that left, or dropped a stream,
    /// gets none of it once the reply came (the sendgroup backend's kernel groups: the diff's
    /// ADD, REMOVE and the groups of routes that go). Bursts, so a receive batch carries several
    /// packets of one route.
    @Test func membershipFollowsJoinsLeavesAndPreferences() throws {
        let sfu = try TestSFU()
        let a = try TestParticipant(sfu, host: 34).register()
        let b = try TestParticipant(sfu, host: 35).register()
        func burst(_ count: Int, _ types: [StreamType] = [.asq, .vsq], from source: TestParticipant = a) throws {
            for _ in 0..<count { for type in types { try source.sendMedia(type) } }
        }
        var received: UInt64 = 0
        func settle(_ count: Int) { received += UInt64(count); #expect(sfu.waitForReceived(received)) }

        try burst(20)
        settle(40)
        var atB = try b.collectMedia()
        #expect(atB.count(of: a.ssrcs.asq) == 20 && atB.count(of: a.ssrcs.vsq) == 20)

        // C joins: it gets the next burst.
        let c = try TestParticipant(sfu, host: 36).register()
        try burst(20)
        settle(40)
        var atC = try c.collectMedia()
        #expect(atC.count(of: a.ssrcs.asq) == 20 && atC.count(of: a.ssrcs.vsq) == 20)
        #expect(try b.collectMedia().count == 40)

        // C keeps only A's VSQ: no ASQ after the reply.
        try c.subscribe(to: a.id, [.vsq])
        try burst(20)
        settle(40)
        atC = try c.collectMedia()
        #expect(atC.count(of: a.ssrcs.asq) == 0 && atC.count(of: a.ssrcs.vsq) == 20)

        // B leaves: nothing more reaches it (and its own routes go). C takes ASQ back: the
        // member removed before is added again.
        try b.channel.expect(.leave(requestID: 70, participant: b.id, session: b.session), .left)
        try c.subscribe(to: a.id, [.asq, .vsq])
        try burst(30)
        settle(60)
        atB = try b.collectMedia()
        #expect(atB.count == 0, "copies reached B after it left")
        atC = try c.collectMedia()
        #expect(atC.count(of: a.ssrcs.asq) == 30 && atC.count(of: a.ssrcs.vsq) == 30)
        let echoes = try a.collectMedia()
        #expect(echoes.count(of: a.ssrcs.asq) == 90 && echoes.count(of: a.ssrcs.vsq) == 90)
        let stats = sfu.stats
        #expect(stats.received == 180 && stats.dropped == 0)
        #expect(stats.echoed == 180 && stats.forwarded == 40 + 80 + 60 + 60)
    }

    @Test func silentParticipantsTimeOut() throws {
        let sfu = try TestSFU(keepalive: .milliseconds(600))
        let a = try TestParticipant(sfu, host: 41).register()
        let b = try TestParticipant(sfu, host: 42).register()
        #expect(a.membership?.keepaliveTimeoutMilliseconds == 600)
        // A keeps alive for 1.5 s; B stays silent.
        for _ in 0..<15 {
            try a.channel.expect(.keepalive(requestID: 9, participant: a.id, session: a.session), .keepaliveAck)
            usleep(100_000)
        }
        #expect(sfu.server.participants().map(\.id) == [a.id])
        #expect(sfu.server.statistics().control.expired == 1)
        guard case .error(_, .unknownParticipant, _) = try b.rawControl(ControlMessage.keepalive(requestID: 4, participant: b.id, session: b.session).encoded()) else {
            Issue.record("KEEPALIVE of an expired participant not refused")
            return
        }
        try b.sendMedia(.asq)
        #expect(sfu.waitForReceived(1))
        #expect(try a.collectMedia().isEmpty)
        #expect(sfu.stats[.unknownSSRC] == 1)
    }

    @Test func spoofedAndUnknownMediaIsDroppedAndCounted() throws {
        let sfu = try TestSFU()
        let a = try TestParticipant(sfu, host: 51).register()
        let b = try TestParticipant(sfu, host: 52).register()
        let intruder = try TestParticipant(sfu, host: 53)  // never registers
        try intruder.sendMedia(.asq, ssrc: a.ssrcs.asq)  // A's SSRC from elsewhere
        try intruder.sendMedia(.vsq, ssrc: 0x1234_5678)  // nobody's SSRC
        // Same IP as B but another port: still spoofed (origin is address and port).
        let sameHost = try TestParticipant(sfu, host: 52)
        try sameHost.sendMedia(.vhq, ssrc: b.ssrcs.vhq)
        try intruder.socket.send([0x80, 0x60, 0, 1], to: sfu.media)  // 4 bytes: truncated
        try a.socket.send(RTPHeader.packet(payloadType: 96, sequenceNumber: 9, timestamp: 0, ssrc: a.ssrcs.asq, payload: [UInt8](repeating: 0, count: 9300)), to: sfu.media)  // over 9,216 bytes
        try intruder.socket.send(RTPHeader.packet(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: a.ssrcs.asq, payload: []).enumerated().map { $0.offset == 1 ? 200 : $0.element }, to: sfu.media)  // RTCP SR
        #expect(sfu.waitForReceived(6))
        #expect(try a.collectMedia().isEmpty)
        #expect(try b.collectMedia().isEmpty)
        #expect(try intruder.collectMedia(for: .milliseconds(100)).isEmpty)
        #expect(try sameHost.collectMedia(for: .milliseconds(100)).isEmpty)
        let stats = sfu.stats
        // Over 9,216 bytes: too large for the socket paths' buffer; the interface backends see it
        // as fragments over a veth's MTU (never reassembled there).
        #expect(stats[.spoofed] == 2 && stats[.unknownSSRC] == 1 && stats[.truncated] == 1 && stats[.rtcp] == 1)
        #expect(stats[.tooLarge] + stats[.fragment] == 1)
        #expect(stats.forwarded == 0 && stats.echoed == 0)
    }

    @Test func malformedControlIsAnsweredWithTypedErrors() throws {
        let sfu = try TestSFU(capacity: 3)
        let a = try TestParticipant(sfu, host: 61).register()
        let other = try TestParticipant(sfu, host: 62)
        let keepalive = ControlMessage.keepalive(requestID: 0x0A0B_0C0D, participant: a.id, session: a.session).encoded()
        func mutated(_ bytes: [UInt8], _ index: Int, _ value: UInt8) -> [UInt8] {
            var copy = bytes
            copy[index] = value
            return copy
        }
        let register = ControlMessage.register(Registration(requestID: 6, receive: .all)).encoded()
        let cases: [([UInt8], ControlErrorCode, UInt32)] = [
            (Array(keepalive.prefix(12)), .malformed, 0x0A0B_0C0D),
            (keepalive + [0], .malformed, 0x0A0B_0C0D),
            (mutated(keepalive, 0, 0x00), .malformed, 0),
            (mutated(keepalive, 2, 9), .unsupportedVersion, 0x0A0B_0C0D),
            (mutated(keepalive, 3, 0x66), .unknownType, 0x0A0B_0C0D),
            // A reply type sent to the SFU is `unknown type` at its own size and at any other.
            (ControlMessage.left(requestID: 5, participant: a.id).encoded(), .unknownType, 5),
            (ControlMessage.left(requestID: 5, participant: a.id).encoded() + [0, 0, 0], .unknownType, 5),
            (Array(ControlMessage.challenge(requestID: 5, cookie: .none).encoded().dropLast(4)), .unknownType, 5),
            (mutated(register, 10, 0xF0), .malformed, 6),
            (mutated(register, 44, UInt8(ascii: "/")), .malformed, 6),  // a room name byte outside the alphabet
            (ControlMessage.keepalive(requestID: 7, participant: 999, session: 1).encoded(), .unknownParticipant, 7),
            (ControlMessage.subscribe(requestID: 8, participant: a.id, session: a.session, source: ControlMessage.allSources, streams: []).encoded(), .notOwner, 8),
            (ControlMessage.keepalive(requestID: 10, participant: a.id, session: a.session &+ 1).encoded(), .notOwner, 10),
            ([UInt8](repeating: 0xFF, count: 3000), .malformed, 0),
        ]
        for (bytes, code, requestID) in cases {
            guard var reply = try other.rawControlBytes(bytes), reply.count >= 12 else {
                Issue.record("no reply to \(bytes.prefix(12))")
                continue
            }
            // An ERROR carries the request's version byte (a client of that version reads it).
            let requestVersion = bytes.count >= 8 && bytes[0] == 0x47 && bytes[1] == 0x43 ? bytes[2] : ControlMessage.version
            #expect(reply[2] == requestVersion)
            reply[2] = ControlMessage.version
            guard case .error(let id, let got, _) = try ControlMessage.parse(reply, expecting: .reply) else {
                Issue.record("no ERROR reply to \(bytes.prefix(12))")
                continue
            }
            #expect(got == code && id == requestID, "\(bytes.prefix(12)): \(got) id \(id)")
            // The sender never proved its address: the reply is never larger than the request.
            #expect(reply.count <= min(bytes.count, 76), "\(reply.count)-byte ERROR for a \(bytes.count)-byte request")
        }
        // Too short for even a 12-byte ERROR: no reply at all.
        for bytes in [[], [0x47], Array(keepalive.prefix(8)), Array(keepalive.prefix(11))] as [[UInt8]] {
            #expect(try other.rawControlBytes(bytes, wait: .milliseconds(200)) == nil, "reply to a \(bytes.count)-byte datagram")
        }
        guard case .error(9, .unknownSource, let text) = try a.rawControl(ControlMessage.subscribe(requestID: 9, participant: a.id, session: a.session, source: 4242, streams: .all).encoded()) else {
            Issue.record("SUBSCRIBE to a missing source not refused")
            return
        }
        #expect(text.contains("4242"))  // a verified sender gets the whole text
        // Random garbage on both ports never takes the SFU down.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try other.socket.send(bytes, to: sfu.control)
            try other.socket.send(bytes, to: sfu.media)
        }
        // Capacity 3: two more register, the fourth is refused.
        _ = try TestParticipant(sfu, host: 63).register()
        _ = try TestParticipant(sfu, host: 64).register()
        do {
            _ = try TestParticipant(sfu, host: 65).register()
            Issue.record("fourth REGISTER accepted in a room of 3")
        } catch ClientError.refused(_, let code, _) {
            #expect(code == .roomFull)
        }
        #expect(sfu.server.failure == nil)
        let errors = sfu.server.statistics().control.errors
        #expect((errors[.malformed] ?? 0) >= 6 && errors[.roomFull] == 1 && errors[.notOwner] == 2)
    }

    @Test func staticRoomWithPlainRTPSender() throws {
        // The plain sender: a bare UDP socket on a fixed port that only speaks RTP.
        let plain = try TestNetwork.selected.participantSocket(bindingTo: TestNetwork.selected.participantAddress(host: 71, family: .ipv4))
        let plainAddress = try plain.localAddress
        let json = """
            {"capacity": 8, "participants": [
              {"id": 100, "address": "\(plainAddress)", "ssrc": {"asq": 5001, "vsq": 5002}, "receive": ["asq"]}
            ]}
            """
        let room = try RoomFile.parse(Data(json.utf8))
        let sfu = try TestSFU(room: room)
        let a = try TestParticipant(sfu, host: 72).register(receive: [.asq])
        #expect(a.id > 100)
        // The static participant cannot be driven over the control protocol.
        guard case .error(_, .notOwner, _) = try a.rawControl(ControlMessage.leave(requestID: 1, participant: 100, session: 0).encoded()) else {
            Issue.record("LEAVE of a static participant not refused")
            return
        }
        try plain.send(RTPHeader.packet(payloadType: 0, sequenceNumber: 1, timestamp: 160, ssrc: 5001, payload: [UInt8](repeating: 0xD5, count: 160)), to: sfu.media)
        try plain.send(RTPHeader.packet(payloadType: 0, sequenceNumber: 1, timestamp: 160, ssrc: 5002, payload: [UInt8](repeating: 0xD5, count: 160)), to: sfu.media)
        try a.sendMedia(.asq)
        try a.sendMedia(.vsq)
        #expect(sfu.waitForReceived(4))
        let atA = try a.collectMedia()
        #expect(atA.count(of: 5001) == 1 && atA.count(of: 5002) == 0)  // A receives ASQ only
        var atPlain: [UInt32] = []
        while try plain.waitForReadable(timeout: .milliseconds(200)) {
            atPlain += try plain.receiveBatch().compactMap { try? RTPHeader.parse($0.bytes).ssrc }
        }
        #expect(atPlain.sorted() == [a.ssrcs.asq, 5001, 5002].sorted())  // echoes of both, A's ASQ only
    }

    /// Socket backends: a burst queued before the forwarder runs fills its receive queue; it sheds
    /// VHQ first, then VSQ, never ASQ. The xdp backend: the same burst while the user-space loop
    /// is not running at all is forwarded whole by the kernel, nothing shed (the in-kernel path
    /// replicates in the receive softirq and cannot fall behind; shedding applies to its slow path,
    /// which is the socket backends' engine).
    @Test func overloadShedsVHQFirstThenVSQNeverASQ() throws {
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(10))
        let network = TestNetwork.selected
        let sender = try network.participantSocket(bindingTo: network.participantAddress(host: 81, family: .ipv4), options: .init())
        let receiver = try network.participantSocket(bindingTo: network.participantAddress(host: 82, family: .ipv4), options: .init(nonBlocking: true, receiveBufferSize: 4 << 20))
        let source = try registry.register(from: try sender.localAddress, mediaPort: 0, receive: [], now: 0)
        _ = try registry.register(from: try receiver.localAddress, mediaPort: 0, receive: .all, now: 0)
        let turn = InterfaceTurn()
        var configuration = TestBackend.configuration(mediaAddress: network.sfuHost())
        // The queue that fills: the media socket's receive buffer, or the ring's RX ring (256
        // entries, taken 32 at a time).
        configuration.receiveBufferSize = 200_000
        configuration.ringSize = 256
        configuration.batchSize = TestBackend.selected == .ring ? 32 : configuration.batchSize
        configuration.shedVHQAt = 0.1
        configuration.shedVSQAt = 0.3
        let forwarder = try Backends.makeForwarder(configuration, echo: false, logger: testLogger)
        defer {
            forwarder.close()
            withExtendedLifetime(turn) {}
        }
        // The receiver speaks first, as a registered participant has (its neighbour is learnt).
        try receiver.send([0], to: network.sfuHost(port: 9))
        let table = registry.routingTable(echo: false)
        try forwarder.install(table)
        if let xdp = forwarder as? XDPForwarder {
            let deadline = ContinuousClock.now.advanced(by: .seconds(3))
            while xdp.routeCounts.kernel < table.routes.count && ContinuousClock.now < deadline { usleep(5_000) }
            #expect(xdp.routeCounts == (table.routes.count, 0), "routes in kernel/user space: \(xdp.routeCounts)")
        }
        let rounds = 100
        for round in 0..<rounds {
            for type in StreamType.allCases {
                try sender.send(RTPHeader.packet(payloadType: type.rtpPayloadType, sequenceNumber: UInt16(round), timestamp: 0, ssrc: source.ssrcs[type], payload: [UInt8](repeating: 0, count: 64)), to: try forwarder.localAddress)
            }
        }
        var counts: [UInt32: Int] = [:]
        func receive(for window: Duration) throws {
            let deadline = ContinuousClock.now.advanced(by: window)
            while case let left = ContinuousClock.now.duration(to: deadline), left > .zero {
                guard try receiver.waitForReadable(timeout: min(left, .milliseconds(200))) else { break }
                for datagram in try receiver.receiveBatch(maxCount: 256) {
                    if let header = try? RTPHeader.parse(datagram.bytes) { counts[header.ssrc, default: 0] += 1 }
                }
            }
        }
        let asq = { counts[source.ssrcs.asq] ?? 0 }, vsq = { counts[source.ssrcs.vsq] ?? 0 }, vhq = { counts[source.ssrcs.vhq] ?? 0 }
        if forwarder.backend == .xdp {
            try receive(for: .seconds(2))  // the forwarder's user-space loop has not been started
            let stats = forwarder.statistics()
            #expect(asq() == rounds && vsq() == rounds && vhq() == rounds, "delivered asq \(asq()) vsq \(vsq()) vhq \(vhq())")
            #expect(stats.received == UInt64(3 * rounds) && stats.inKernel == UInt64(3 * rounds) && stats.forwarded == UInt64(3 * rounds))
            #expect(stats[.shedVHQ] == 0 && stats[.shedVSQ] == 0 && stats.dropped == 0)
            return
        }
        let thread = Thread { try? forwarder.run() }
        thread.start()
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        var lastReceived: UInt64 = 0
        while ContinuousClock.now < deadline {
            let before = counts.values.reduce(0, +)
            try receive(for: .milliseconds(200))
            if counts.values.reduce(0, +) == before {
                // Idle for 200 ms and the forwarder's published count did not move: it is done.
                let received = forwarder.statistics().received
                if received > 0 && received == lastReceived { break }
                lastReceived = received
            }
        }
        forwarder.stop()
        while !thread.isFinished { usleep(1000) }
        let stats = forwarder.statistics()
        let kernelDropped = 3 * rounds - Int(stats.received)
        #expect(stats[.shedVSQ] > 0 && stats[.shedVHQ] > stats[.shedVSQ], "shed vhq \(stats[.shedVHQ]) vsq \(stats[.shedVSQ])")
        #expect(asq() > vsq() && vsq() > vhq(), "delivered asq \(asq()) vsq \(vsq()) vhq \(vhq())")
        #expect(asq() >= rounds - kernelDropped, "ASQ lost beyond kernel drops: \(asq()) of \(rounds), \(kernelDropped) dropped by the kernel")
        #expect(Int(stats.forwarded) == asq() + vsq() + vhq())
    }

    /// xdp: a route map with room for 2 of the 6 routes: those 2 are replicated in the kernel, the
    /// others pass up as unknown SSRCs and the slow path forwards them; nothing is lost.
    @Test(.enabled(if: TestBackend.selected == .xdp)) func xdpRouteMapFullFallsBackToUserSpace() throws {
        let turn = InterfaceTurn()
        defer { withExtendedLifetime(turn) {} }
        let network = TestNetwork.selected
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(10))
        let a = try network.participantSocket(bindingTo: network.participantAddress(host: 91, family: .ipv4))
        let b = try network.participantSocket(bindingTo: network.participantAddress(host: 92, family: .ipv4), options: .init(nonBlocking: true, receiveBufferSize: 1 << 20))
        let source = try registry.register(from: try a.localAddress, mediaPort: 0, receive: .all, now: 0)
        let sink = try registry.register(from: try b.localAddress, mediaPort: 0, receive: .all, now: 0)
        var configuration = TestBackend.configuration(.xdp, mediaAddress: network.sfuHost())
        configuration.xdpMaxRoutes = 2
        let forwarder = try #require(try Backends.makeForwarder(configuration, echo: false, logger: testLogger) as? XDPForwarder)
        defer { forwarder.close() }
        for socket in [a, b] { try socket.send([0], to: network.sfuHost(port: 9)) }  // neighbours learnt
        let table = registry.routingTable(echo: false)
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        repeat {
            try forwarder.install(table)
            usleep(10_000)
        } while forwarder.routeCounts.kernel < 2 && ContinuousClock.now < deadline
        #expect(forwarder.routeCounts == (2, 0), "\(forwarder.routeCounts)")
        let thread = Thread { try? forwarder.run() }
        thread.start()
        defer {
            forwarder.stop()
            while !thread.isFinished { usleep(1000) }
        }
        for type in StreamType.allCases {
            try a.send(RTPHeader.packet(payloadType: type.rtpPayloadType, sequenceNumber: 1, timestamp: 0, ssrc: source.ssrcs[type], payload: [1, 2, 3]), to: try forwarder.localAddress)
        }
        var received: [UInt32] = []
        let until = ContinuousClock.now.advanced(by: .seconds(2))
        while received.count < 3, ContinuousClock.now < until {
            guard try b.waitForReadable(timeout: .milliseconds(100)) else { continue }
            received += try b.receiveBatch().compactMap { try? RTPHeader.parse($0.bytes).ssrc }
        }
        #expect(received.sorted() == [source.ssrcs.asq, source.ssrcs.vsq, source.ssrcs.vhq].sorted())
        // Routes are installed in SSRC order: the two lowest of the six got in; A's streams among
        // them were replicated by the kernel, the rest by user space; every copy counted once.
        let inMap = Set(table.routes.keys.sorted().prefix(2))
        let aInKernel = [source.ssrcs.asq, source.ssrcs.vsq, source.ssrcs.vhq].filter { inMap.contains($0) }.count
        // The slow path publishes its counters every 50 ms: a copy can arrive before they say so.
        var stats = forwarder.statistics()
        let settled = ContinuousClock.now.advanced(by: .seconds(2))
        while stats.forwarded < 3 || stats.received < 3, ContinuousClock.now < settled {
            usleep(10_000)
            stats = forwarder.statistics()
        }
        #expect(stats.forwarded == 3 && stats.inKernel == UInt64(aInKernel) && stats.received == 3 && stats.dropped == 0,
                "\(stats), expected \(aInKernel) in kernel")
        #expect(table.routes.keys.contains(sink.ssrcs.asq))
    }

    @Test func ipv6ParticipantsAreRoutedAndEchoed() throws {
        let sfu = try TestSFU(host: TestNetwork.selected.sfuHost(.ipv6))
        let a = try TestParticipant(sfu, host: 0).register(receive: .all)
        let b = try TestParticipant(sfu, host: 0).register(receive: [.vsq])
        try a.sendMedia(.vsq)
        try a.sendMedia(.vhq)
        try b.sendMedia(.asq)
        #expect(sfu.waitForReceived(3))
        let atA = try a.collectMedia(), atB = try b.collectMedia()
        #expect(atA.count(of: a.ssrcs.vsq) == 1 && atA.count(of: a.ssrcs.vhq) == 1 && atA.count(of: b.ssrcs.asq) == 1)
        #expect(atB.count(of: a.ssrcs.vsq) == 1 && atB.count(of: a.ssrcs.vhq) == 0 && atB.count(of: b.ssrcs.asq) == 1)
        #expect(sfu.server.participants().allSatisfy { $0.mediaAddress.family == .ipv6 })
    }

    /// Per-room media counters as Prometheus scrapes them (scripts/lib/scrape-metrics): two rooms,
    /// known traffic, exact counts on every backend (the kernel's and the ring core's per-route
    /// counters summed per room on xdp and ring).
    @Test func mediaIsCountedPerRoomAndScraped() throws {
        let sfu = try TestSFU()
        let a = try TestParticipant(sfu, host: 71).register(room: "alpha")
        let b = try TestParticipant(sfu, host: 72).register(room: "alpha")
        let c = try TestParticipant(sfu, host: 73).register(receive: [.asq], room: "alpha")
        let d = try TestParticipant(sfu, host: 74).register(room: "beta")
        let e = try TestParticipant(sfu, host: 75).register(room: "beta")
        _ = e
        // alpha: A sends 3 ASQ (to B, C), B 1 VSQ (to A; C takes ASQ only); 28-byte packets.
        for _ in 0..<3 { try a.sendMedia(.asq) }
        try b.sendMedia(.vsq)
        // beta: D sends 2 VHQ of 112 bytes (to E); an unknown SSRC counts in no room.
        for _ in 0..<2 { try d.sendMedia(.vhq, payload: [UInt8](repeating: 7, count: 100)) }
        try d.sendMedia(.asq, ssrc: 0x0bad_cafe)
        let expected: [String: MediaCounters] = [
            "alpha": .init(received: 4, receivedBytes: 4 * 28, forwarded: 7, forwardedBytes: 7 * 28, echoed: 4, echoedBytes: 4 * 28),
            "beta": .init(received: 2, receivedBytes: 2 * 112, forwarded: 2, forwardedBytes: 2 * 112, echoed: 2, echoedBytes: 2 * 112),
        ]
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        while sfu.stats.rooms.filter({ expected[$0.key] != nil }) != expected && ContinuousClock.now < deadline { usleep(5_000) }
        #expect(sfu.stats.rooms.filter { expected[$0.key] != nil } == expected, "\(sfu.stats.rooms)")
        if TestBackend.selected == .xdp {
            // Replicated in the kernel: the per-room counts are the BPF per-route counters'.
            #expect(sfu.stats.inKernel == 15, "in kernel \(sfu.stats.inKernel) of 15")
        }

        let metrics = SFUMetrics(statistics: { [server = sfu.server] in server.statistics() })
        let endpoint = try MetricsHTTPServer(
            listeningOn: .ipv4(.loopback, port: 0), logger: testLogger, metrics: { metrics.render() }, health: { .ready })
        defer { endpoint.stop() }
        let families = try #require(try scrapeMetrics(port: UInt16(endpoint.localPort))["families"] as? [String: [String: Any]])
        func value(_ family: String, room: String, kind: String? = nil) -> Double? {
            let samples = (families[family]?["samples"] as? [[Any]]) ?? []
            return samples.first { sample in
                let labels = sample[1] as? [String: String] ?? [:]
                return labels["room"] == room && labels["kind"] == kind && labels["backend"] == TestBackend.selected.rawValue
            }?[2] as? Double
        }
        for family in ["received", "sent", "dropped"].map({ "groupcast_sfu_room_packets_\($0)" }) + ["received", "sent"].map({ "groupcast_sfu_room_bytes_\($0)" }) {
            #expect(families[family]?["type"] as? String == "counter", "\(family)")
        }
        for (room, counters) in expected {
            #expect(value("groupcast_sfu_room_packets_received", room: room) == Double(counters.received), "\(room)")
            #expect(value("groupcast_sfu_room_bytes_received", room: room) == Double(counters.receivedBytes), "\(room)")
            #expect(value("groupcast_sfu_room_packets_sent", room: room, kind: "forwarded") == Double(counters.forwarded), "\(room)")
            #expect(value("groupcast_sfu_room_bytes_sent", room: room, kind: "forwarded") == Double(counters.forwardedBytes), "\(room)")
            #expect(value("groupcast_sfu_room_packets_sent", room: room, kind: "echo") == Double(counters.echoed), "\(room)")
            #expect(value("groupcast_sfu_room_bytes_sent", room: room, kind: "echo") == Double(counters.echoedBytes), "\(room)")
            #expect(value("groupcast_sfu_room_packets_dropped", room: room) == 0, "\(room)")
        }
    }

    /// "Once a client has its reply, its routes exist" (Docs/protocol.md): a client may send media
    /// the moment its REGISTER reply arrives. The table before it is slow to build: a reload
    /// declares a static subscriber whose neighbour never answers (10.203.0.200 on the veth; the
    /// ring waits up to 200 ms for a fresh neighbour). A backend that builds its table after
    /// answering (the ring's thread did, while still building the previous one) drops the first
    /// packets as unknown SSRCs.
    @Test func mediaSentRightAfterTheRegisterReplyIsRouted() throws {
        let sfu = try TestSFU()
        let silent = TestNetwork.selected.participantAddress(host: 200, family: .ipv4, port: 5000)
        var reloaded = sfu.server.configuration
        reloaded.room = try RoomFile.parse(Data("""
            {"capacity": 8, "participants": [{"id": 100, "address": "\(silent)", "ssrc": {"asq": 5001}, "receive": ["asq"]}]}
            """.utf8))
        try sfu.server.reload(reloaded)
        // Past the ring thread's poll timeout (50 ms): it is building the reloaded table, if it
        // builds tables at all.
        usleep(100_000)
        let a = try TestParticipant(sfu, host: 43).register()
        try a.sendMedia(.asq)
        let b = try TestParticipant(sfu, host: 44).register()
        try b.sendMedia(.asq)
        #expect(sfu.waitForReceived(2))
        let stats = sfu.stats
        #expect(stats[.unknownSSRC] == 0, "\(stats[.unknownSSRC]) of 2 first packets dropped as unknown SSRC")
        #expect(stats.echoed == 2)
        #expect(try a.collectMedia().map(\.ssrc).sorted() == [a.ssrcs.asq, b.ssrcs.asq].sorted())
    }

    /// A subscriber whose neighbour does not answer when the table is installed (a static
    /// participant that has not come up yet) receives media once it does: the backends that
    /// resolve next hops themselves (xdp's maintenance thread, the ring's next-hop retry thread)
    /// keep looking it up after install(). Only on the veth topology: on loopback there is no
    /// neighbour to learn.
    @Test(.enabled(if: TestNetwork.selected == .veth)) func subscriberWhoseNeighbourAnswersLateReceivesMedia() throws {
        let late = "10.203.0.201"
        let sfu = try TestSFU()
        var reloaded = sfu.server.configuration
        reloaded.room = try RoomFile.parse(Data("""
            {"capacity": 8, "participants": [{"id": 100, "address": "\(late):5000", "ssrc": {"asq": 5001}, "receive": ["asq"]}]}
            """.utf8))
        try sfu.server.reload(reloaded)
        let a = try TestParticipant(sfu, host: 46).register(receive: [])
        try a.sendMedia(.asq)  // its copy to the silent address goes nowhere
        #expect(sfu.waitForReceived(1))
        // The participant comes up: its address answers ARP from now on.
        _ = try VethTopology.shared.inPeer { try Topology.ip(["addr", "add", "\(late)/24", "dev", "gcpeer0"]) }
        defer { _ = try? VethTopology.shared.inPeer { try Topology.ip(["addr", "del", "\(late)/24", "dev", "gcpeer0"]) } }
        let receiver = try TestNetwork.selected.participantSocket(bindingTo: try #require(SocketAddress("\(late):5000")))
        var arrived = false
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while !arrived && ContinuousClock.now < deadline {
            try a.sendMedia(.asq)
            guard try receiver.waitForReadable(timeout: .milliseconds(50)) else { continue }
            arrived = try receiver.receiveBatch().contains { (try? RTPHeader.parse($0.bytes).ssrc) == a.ssrcs.asq }
        }
        #expect(arrived, "no copy reached \(late) within 5 s of its address coming up")
    }

    /// The ring's CPU options (Docs/ring.md): busy polling reaches every AF_XDP socket (the core
    /// reads SO_BUSY_POLL back), and with it and wake-up coalescing media is still copied and
    /// echoed exactly once.
    @Test(.enabled(if: TestBackend.selected == .ring)) func ringBusyPollingAndCoalescingForwardMedia() throws {
        let sfu = try TestSFU(forwarder: {
            $0.ringBusyPoll = .microseconds(50)
            $0.ringCoalesce = .microseconds(200)
        })
        let ring = try #require(sfu.server.forwarder as? RingForwarder)
        #expect(!ring.ports.isEmpty && ring.ports.allSatisfy { $0.busyPoll == .microseconds(50) }, "\(ring.ports)")
        let a = try TestParticipant(sfu, host: 26).register()
        let b = try TestParticipant(sfu, host: 27).register()
        for type in StreamType.allCases { try a.sendMedia(type) }
        #expect(sfu.waitForReceived(3))
        let atA = try a.collectMedia(), atB = try b.collectMedia()
        for type in StreamType.allCases {
            #expect(atA.count(of: a.ssrcs[type]) == 1 && atB.count(of: a.ssrcs[type]) == 1, "\(type): echo and copy")
        }
        #expect(sfu.stats.forwarded == 3 && sfu.stats.echoed == 3 && sfu.stats.dropped == 0)
    }

    @Test func requestedBackendIsTheOneRunning() throws {
        let sfu = try TestSFU()
        #expect(sfu.server.forwarder.backend == TestBackend.selected)
    }
}
