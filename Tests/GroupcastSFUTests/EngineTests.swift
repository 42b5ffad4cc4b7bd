import GroupcastProtocol
import GroupcastFastPath
import GroupcastClient
import GroupcastSFU
import GroupcastSocketBackend
import GroupUnicast
import SystemPackage
import Testing

@Suite struct EngineTests {
    static let origin = SocketAddress.ipv4(IPv4Address(10, 0, 0, 1), port: 1000)
    static let fast = SocketAddress.ipv4(IPv4Address(10, 0, 0, 2), port: 1000)
    static let slow = SocketAddress.ipv4(IPv4Address(10, 0, 0, 3), port: 1000)

    func table() throws -> (RoutingTable, UInt32) {
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(1))
        let source = try registry.register(from: Self.origin, mediaPort: 0, receive: [], now: 0)
        _ = try registry.register(from: Self.fast, mediaPort: 0, receive: .all, now: 0)
        _ = try registry.register(from: Self.slow, mediaPort: 0, receive: .all, now: 0)
        return (registry.routingTable(echo: true), source.ssrcs.asq)
    }

    /// Packets `sequences` of `ssrc` (2-byte payload, 14 bytes each) as received from the origin.
    static func fromOrigin(_ sequences: Range<Int>, ssrc: UInt32) -> [ReceivedDatagram] {
        sequences.map { sequence in
            ReceivedDatagram(
                bytes: RTPHeader.packet(payloadType: 96, sequenceNumber: UInt16(sequence), timestamp: 0, ssrc: ssrc, payload: [1, 2]),
                source: origin)
        }
    }

    @Test func slowReceiverLosesItsOwnOldestPacketsOnly() throws {
        let (table, ssrc) = try table()
        var engine = ForwardingEngine(table: table, backlogCapacity: 4)
        var delivered: [SocketAddress: [UInt16]] = [:]
        var slowBlocked = true
        let send: ForwardingEngine.Send = { payload, recipients in
            recipients.map { recipient in
                if recipient.address == Self.slow && slowBlocked { return .wouldBlock }
                let sequence = UInt16(payload[2]) << 8 | UInt16(payload[3])
                delivered[recipient.address, default: []].append(sequence)
                return nil
            }
        }
        for datagram in Self.fromOrigin(0..<10, ssrc: ssrc) {
            engine.process(datagram, pickup: monotonicNanoseconds(), send: send)
        }
        #expect(delivered[Self.fast] == Array(0..<10))
        #expect(delivered[Self.origin] == Array(0..<10))  // echo
        #expect(engine.backlogCount(for: Self.slow) == 4)
        #expect(engine.statistics[.headDrop] == 6)
        slowBlocked = false
        engine.flushBacklogs(send: send)
        #expect(delivered[Self.slow] == [6, 7, 8, 9])  // the newest four, in order
        #expect(!engine.hasBacklog)
        #expect(engine.statistics.forwarded == 10 + 4 && engine.statistics.echoed == 10)
    }

    /// Per-room media: counted when sent directly, when a backlog is flushed, when a backlog head
    /// drops; published by snapshot(); forgotten with the room.
    @Test func mediaIsCountedPerRoomThroughBacklogs() throws {
        let (table, ssrc) = try table()
        #expect(table.rooms == [RoomName.defaultRoom])
        var engine = ForwardingEngine(table: table, backlogCapacity: 4)
        var slowBlocked = true
        let send: ForwardingEngine.Send = { _, recipients in
            recipients.map { $0.address == Self.slow && slowBlocked ? .wouldBlock : nil }
        }
        for datagram in Self.fromOrigin(0..<10, ssrc: ssrc) {
            engine.process(datagram, pickup: 0, send: send)
        }
        // An unknown SSRC and a spoofed origin: in no room.
        engine.process(ReceivedDatagram(bytes: RTPHeader.packet(payloadType: 96, sequenceNumber: 0, timestamp: 0, ssrc: 9, payload: []), source: Self.origin), pickup: 0, send: send)
        engine.process(ReceivedDatagram(bytes: RTPHeader.packet(payloadType: 96, sequenceNumber: 0, timestamp: 0, ssrc: ssrc, payload: []), source: Self.fast), pickup: 0, send: send)
        var room = try #require(engine.snapshot().rooms[RoomName.defaultRoom])
        // 14-byte packets; the slow receiver's backlog of 4 lost its 6 oldest copies.
        #expect(room == MediaCounters(received: 10, receivedBytes: 140, forwarded: 10, forwardedBytes: 140, echoed: 10, echoedBytes: 140, dropped: 6))
        slowBlocked = false
        engine.flushBacklogs(send: send)
        room = try #require(engine.snapshot().rooms[RoomName.defaultRoom])
        #expect(room.forwarded == 14 && room.forwardedBytes == 14 * 14 && room.dropped == 6)
        // The room is gone (its participants left): so are its counters.
        engine.install(RoutingTable.empty)
        #expect(engine.snapshot().rooms.isEmpty)
    }

    /// A receiver's backlog outlives the room its copies were queued in (the receiver is still in
    /// another room's routes): flushing it counts the copies as sent but brings the gone room's
    /// counters back in no form.
    @Test func aQueuedCopyOfAGoneRoomDoesNotBringTheRoomBack() throws {
        let (table, ssrc) = try table()
        var engine = ForwardingEngine(table: table, backlogCapacity: 4)
        var slowBlocked = true
        let send: ForwardingEngine.Send = { _, recipients in
            recipients.map { $0.address == Self.slow && slowBlocked ? .wouldBlock : nil }
        }
        for datagram in Self.fromOrigin(0..<3, ssrc: ssrc) {
            engine.process(datagram, pickup: 0, send: send)
        }
        #expect(engine.backlogCount(for: Self.slow) == 3)
        // The default room empties; the slow receiver is now in room "b", subscribed to a source there.
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(1))
        _ = try registry.register(JoinRequest(source: Self.fast, room: "b", receive: []), now: 0)
        _ = try registry.register(JoinRequest(source: Self.slow, room: "b", receive: .all), now: 0)
        engine.install(registry.routingTable(echo: false))
        #expect(engine.backlogCount(for: Self.slow) == 3)
        slowBlocked = false
        engine.flushBacklogs(send: send)
        let statistics = engine.snapshot()
        #expect(statistics.forwarded == 3 * 2, "the fast receiver's three and the flushed three")
        #expect(statistics.rooms[RoomName.defaultRoom] == nil, "\(statistics.rooms)")
    }

    @Test func queuedReceiverKeepsOrderBehindItsBacklog() throws {
        let (table, ssrc) = try table()
        var engine = ForwardingEngine(table: table, backlogCapacity: 8)
        var delivered: [UInt16] = []
        var blocked = true
        let send: ForwardingEngine.Send = { payload, recipients in
            recipients.map { recipient in
                guard recipient.address == Self.slow else { return nil }
                if blocked { return .noBufferSpace }
                delivered.append(UInt16(payload[2]) << 8 | UInt16(payload[3]))
                return nil
            }
        }
        func packet(_ sequence: UInt16) -> ReceivedDatagram {
            ReceivedDatagram(bytes: RTPHeader.packet(payloadType: 96, sequenceNumber: sequence, timestamp: 0, ssrc: ssrc, payload: []), source: Self.origin)
        }
        engine.process(packet(1), pickup: 0, send: send)
        blocked = false
        engine.process(packet(2), pickup: 0, send: send)  // must queue behind 1, not overtake it
        #expect(delivered.isEmpty)
        engine.flushBacklogs(send: send)
        #expect(delivered == [1, 2])
    }

    @Test func otherSendErrorsAreCountedNotQueued() throws {
        let (table, ssrc) = try table()
        var engine = ForwardingEngine(table: table, backlogCapacity: 8)
        let send: ForwardingEngine.Send = { _, recipients in recipients.map { $0.address == Self.slow ? .networkUnreachable : nil } }
        engine.process(ReceivedDatagram(bytes: RTPHeader.packet(payloadType: 96, sequenceNumber: 0, timestamp: 0, ssrc: ssrc, payload: []), source: Self.origin), pickup: 0, send: send)
        #expect(engine.statistics[.sendFailed] == 1 && !engine.hasBacklog && engine.statistics.forwarded == 1)
    }

    @Test func routingTableFollowsSubscriptions() throws {
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(1))
        let a = try registry.register(from: Self.origin, mediaPort: 0, receive: .all, now: 0)
        let b = try registry.register(from: Self.fast, mediaPort: 5000, receive: [.asq], now: 0)
        try registry.subscribe(b.id, session: b.session, to: a.id, streams: [.vhq], from: Self.fast, now: 0)
        let table = registry.routingTable(echo: false)
        #expect(table.routes.count == 6)
        #expect(table[a.ssrcs.vhq]?.subscribers.map(\.address) == [Self.fast.withPort(5000)])
        #expect(table[a.ssrcs.asq]?.subscribers.isEmpty == true)
        #expect(table[b.ssrcs.vsq]?.subscribers.map(\.participant) == [a.id])
        #expect(table[b.ssrcs.vsq]?.origin == Self.fast.withPort(5000))
        #expect(table[a.ssrcs.vhq]?.streamType == .vhq)
        try registry.leave(a.id, session: a.session, from: Self.origin)
        #expect(registry.routingTable(echo: false).routes.count == 3)
        #expect(registry.participants[b.id]?.perSource.isEmpty == true)
    }

    @Test func mediaAddressesAreUnique() throws {
        var registry = SessionRegistry(capacity: 4, keepaliveTimeout: .seconds(1))
        let a = try registry.register(from: Self.origin, mediaPort: 6000, receive: .all, now: 0)
        // Another control address claiming A's media address is refused; A itself may re-register.
        #expect(throws: RegistryError(.addressInUse, "media address \(Self.origin.withPort(6000)) belongs to participant \(a.id)")) {
            try registry.register(from: Self.origin.withPort(1001), mediaPort: 6000, receive: .all, now: 0)
        }
        #expect(throws: RegistryError.self) { try registry.register(from: Self.origin.withPort(6000), mediaPort: 0, receive: .all, now: 0) }
        #expect(try registry.register(from: Self.origin, mediaPort: 6000, receive: [.asq], now: 1).id == a.id)
        #expect(registry.count == 1)
    }

    @Test func histogramQuantilesWithinThreePercent() {
        var histogram = LatencyHistogram()
        for value in 1...10_000 { histogram.record(UInt64(value) * 1000) }
        let p50 = Double(histogram.quantile(0.5)), p99 = Double(histogram.quantile(0.99))
        #expect(abs(p50 - 5_000_000) / 5_000_000 < 0.035)
        #expect(abs(p99 - 9_900_000) / 9_900_000 < 0.035)
        #expect(histogram.max == 10_000_000 && histogram.min == 1000 && histogram.count == 10_000)
        #expect(histogram.quantile(1) == 10_000_000)
        var small = LatencyHistogram()
        for value: UInt64 in [3, 3, 5, 60] { small.record(value) }
        #expect(small.quantile(0.5) == 3 && small.quantile(0.75) == 5 && small.quantile(1) == 60)
        #expect(LatencyHistogram().quantile(0.5) == 0)
    }

    /// The in-kernel path's histogram (`struct gc_delay_hist`) has LatencyHistogram's buckets, so
    /// merging its counts is the same as recording the samples.
    @Test func kernelDelayBucketsMergeExactly() {
        let layout = LatencyHistogram.layout
        #expect(layout.exactLimit == DelayHistogram.exactLimit && layout.subBuckets == DelayHistogram.subBuckets
            && layout.bucketCount == DelayHistogram.bucketCount)
        let samples: [UInt64] = [0, 1, 63, 64, 65, 100, 1_000, 4_096, 12_345, 999_999, 3_000_000, 1 << 40, .max]
        var recorded = LatencyHistogram()
        var counts = [UInt64](repeating: 0, count: DelayHistogram.bucketCount)
        for value in samples {
            recorded.record(value)
            counts[LatencyHistogram.bucket(of: value)] += 1
        }
        var merged = LatencyHistogram()
        merged.merge(bucketCounts: counts, count: UInt64(samples.count), sum: samples.reduce(0, &+), max: .max)
        for q in [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1] { #expect(merged.quantile(q) == recorded.quantile(q), "q \(q)") }
        #expect(merged.count == recorded.count && merged.max == recorded.max && merged.min == 0)
    }

    /// `upperBound(of:)` (Swift, behind `quantile`) inverts `gc_delay_bucket()` of
    /// groupcast_layout.h at every bucket edge, up to the last bucket ending at `UInt64.max`.
    @Test func bucketEdgesInvertTheLayoutsBucketing() {
        let n = LatencyHistogram.layout.bucketCount
        var previousUpper: UInt64?
        for index in 0..<n {
            var counts = [UInt64](repeating: 0, count: n)
            counts[index] = 1
            var histogram = LatencyHistogram()
            histogram.merge(bucketCounts: counts, count: 1, sum: 0, max: .max)
            let upper = histogram.quantile(1)
            #expect(LatencyHistogram.bucket(of: upper) == index, "bucket \(index) ends at \(upper)")
            if let previousUpper {
                #expect(LatencyHistogram.bucket(of: previousUpper + 1) == index, "bucket \(index) starts at \(previousUpper + 1)")
            }
            previousUpper = upper
        }
        #expect(previousUpper == .max)
    }

    @Test func roomFileErrorsNameTheField() {
        #expect(throws: RoomFile.LoadError.self) { try RoomFile.parse(Data("{\"participants\":[{\"id\":1,\"address\":\"nowhere\"}]}".utf8)) }
        do {
            _ = try RoomFile.parse(Data("{\"participants\":[{\"id\":1,\"address\":\"1.2.3.4:5\",\"receive\":[\"video\"]}]}".utf8))
            Issue.record("unknown stream type accepted")
        } catch {
            #expect(error.description.contains("participant 1: receive: unknown stream type \"video\""))
        }
    }
}

import Foundation
