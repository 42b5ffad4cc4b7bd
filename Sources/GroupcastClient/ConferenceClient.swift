#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization
import SystemPackage

/// Errors of the bundled client, each naming what failed.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    case socket(String, GroupUnicastError)
    /// The SFU did not answer a request within the retries.
    case noReply(request: String, sfu: SocketAddress, attempts: Int)
    /// The SFU answered with an ERROR reply.
    case refused(request: String, code: ControlErrorCode, message: String)
    /// The SFU answered with a reply of the wrong kind.
    case unexpectedReply(request: String, reply: String)
    /// The client's own configuration cannot work.
    case configuration(String)

    public var description: String {
        switch self {
        case .socket(let what, let error): "\(what): \(error)"
        case .noReply(let request, let sfu, let attempts): "no reply to \(request) from \(sfu) after \(attempts) attempts"
        case .refused(let request, let code, let message): "\(request) refused: \(code) (\(message))"
        case .unexpectedReply(let request, let reply): "\(request) answered with \(reply)"
        case .configuration(let reason): "configuration: \(reason)"
        }
    }
}

/// What a client joins with: the room, the join token, what it wants to receive.
public struct JoinParameters: Sendable {
    /// Empty: the room the token names (or `default` on an open SFU).
    public var room: String
    /// The join token's bytes (a JWT); empty on an open SFU.
    public var token: [UInt8]
    public var receive: StreamSet

    public init(room: String = "", token: [UInt8] = [], receive: StreamSet = .all) {
        self.room = room
        self.token = token
        self.receive = receive
    }
}

/// A participant's membership as REGISTERED granted it.
public struct Membership: Sendable, Hashable {
    public var id: UInt32
    public var ssrcs: StreamSSRCs
    public var keepaliveTimeoutMilliseconds: UInt32
    /// The secret every later request carries.
    public var session: UInt64
    public var sendable: StreamSet
    public var receivable: StreamSet
}

/// A control-protocol session over one UDP socket: requests with retries and request ids, the
/// cookie round trip of REGISTER.
///
/// The same socket sends and receives media: the SFU takes the REGISTER's source port as the
/// participant's media address (media port 0).
public struct ControlChannel: Sendable {
    public let socket: GroupSocket
    public let sfu: SocketAddress
    public var timeout: Duration = .milliseconds(250)
    public var attempts = 6

    public init(socket: GroupSocket, sfu: SocketAddress) {
        self.socket = socket
        self.sfu = sfu
    }

    /// Sends `request` until a reply with its request id arrives; other datagrams (media) go to
    /// `other`. Returns the reply, ERROR included.
    public func exchange(_ request: ControlMessage, other: (ReceivedDatagram) -> Void = { _ in }) throws(ClientError) -> ControlMessage {
        let bytes = request.encoded()
        let name = "\(request.kind)"
        for _ in 0..<attempts {
            do { try socket.send(bytes, to: sfu) } catch { throw .socket("send \(name) to \(sfu)", error) }
            let deadline = monotonicNanoseconds() + timeout.wholeNanoseconds
            while monotonicNanoseconds() < deadline {
                let left = deadline - monotonicNanoseconds()
                do {
                    guard try socket.waitForReadable(timeout: .nanoseconds(Int64(left))) else { break }
                    for datagram in try socket.receiveBatch(maxCount: 64, maxSize: 2048) {
                        guard datagram.source == sfu,
                            let reply = try? ControlMessage.parse(datagram.bytes, expecting: .reply), reply.requestID == request.requestID
                        else {
                            other(datagram)
                            continue
                        }
                        return reply
                    }
                } catch {
                    throw .socket("receive reply to \(name)", error)
                }
            }
        }
        throw .noReply(request: name, sfu: sfu, attempts: attempts)
    }

    /// REGISTER with the cookie round trip: the first REGISTER (without a cookie, or with an
    /// expired one) is answered with a CHALLENGE; the same REGISTER with its cookie joins.
    /// `mediaPort`/`mediaCookie`: a media socket other than this one (``probe(requestID:)`` from it).
    public func register(
        _ join: JoinParameters, requestID: UInt32, mediaPort: UInt16 = 0, mediaCookie: AddressCookie = .none
    ) throws(ClientError) -> Membership {
        var registration = Registration(
            requestID: requestID, mediaPort: mediaPort, receive: join.receive, mediaCookie: mediaCookie, room: join.room, token: join.token)
        // A cookie can expire between the CHALLENGE and the REGISTER (at an epoch boundary): one more round.
        for _ in 0..<3 {
            switch try exchange(.register(registration)) {
            case .challenge(_, let cookie):
                registration.cookie = cookie
            case .registered(let reply):
                return Membership(
                    id: reply.participant, ssrcs: reply.ssrcs, keepaliveTimeoutMilliseconds: reply.keepaliveTimeoutMilliseconds,
                    session: reply.session, sendable: reply.send, receivable: reply.receive)
            case .error(_, let code, let message): throw .refused(request: "REGISTER", code: code, message: message)
            case let reply: throw .unexpectedReply(request: "REGISTER", reply: "\(reply.kind)")
            }
        }
        throw .refused(request: "REGISTER", code: .malformed, message: "answered with a CHALLENGE three times")
    }

    /// PROBE: the cookie of this channel's socket address (for a REGISTER from another socket
    /// that names this one's port as its media port).
    public func probe(requestID: UInt32) throws(ClientError) -> AddressCookie {
        switch try exchange(.probe(requestID: requestID)) {
        case .challenge(_, let cookie): return cookie
        case .error(_, let code, let message): throw .refused(request: "PROBE", code: code, message: message)
        case let reply: throw .unexpectedReply(request: "PROBE", reply: "\(reply.kind)")
        }
    }

    /// Every member of the participant's room, page by page.
    public func roster(participant: Membership, requestID: UInt32) throws(ClientError) -> [RosterEntry] {
        var entries: [RosterEntry] = []
        var after: UInt32 = 0
        while true {
            switch try exchange(.roster(requestID: requestID &+ UInt32(truncatingIfNeeded: entries.count), participant: participant.id, session: participant.session, after: after)) {
            case .rosterReply(_, let page, let more):
                entries += page
                guard more, let last = page.last else { return entries }
                after = last.participant
            case .error(_, let code, let message): throw .refused(request: "ROSTER", code: code, message: message)
            case let reply: throw .unexpectedReply(request: "ROSTER", reply: "\(reply.kind)")
            }
        }
    }

    /// Sends `request` and expects `expected`, or throws the ERROR it got.
    public func expect(_ request: ControlMessage, _ expected: ControlMessage.Kind, other: (ReceivedDatagram) -> Void = { _ in }) throws(ClientError) {
        let reply = try exchange(request, other: other)
        if case .error(_, let code, let message) = reply { throw .refused(request: "\(request.kind)", code: code, message: message) }
        guard reply.kind == expected else { throw .unexpectedReply(request: "\(request.kind)", reply: "\(reply.kind)") }
    }
}

/// What the client measured for one stream type of one participant.
public struct StreamReport: Sendable, Hashable {
    public var participant: UInt32
    public var type: StreamType
    /// Packets sent on this stream.
    public var sent: UInt64 = 0
    /// Echoes of them received back.
    public var echoed: UInt64 = 0
    /// Round trip, client -> SFU -> client, nanoseconds.
    public var roundTrip = LatencyHistogram()
    /// Packets of this type received from other participants.
    public var received: UInt64 = 0
    /// Packets of this type the sequence numbers say were sent by the others but not received.
    public var lost: UInt64 = 0
    /// Other participants' streams of this type seen.
    public var sources = 0
    /// One-way delay of those packets, nanoseconds: arrival minus the sender's time stamp, so
    /// only meaningful when both ends share a clock (one machine: the demo's namespaces).
    public var delay = LatencyHistogram()
    /// Mean RFC 3550 interarrival jitter over those streams, nanoseconds.
    public var jitter: Double = 0

    public var echoLossPercent: Double { sent == 0 ? 0 : 100 * Double(sent - min(sent, echoed)) / Double(sent) }
    public var lossPercent: Double { received + lost == 0 ? 0 : 100 * Double(lost) / Double(received + lost) }
}

/// One client run's results.
public struct ClientReport: Sendable {
    public var streams: [StreamReport]
    public var duration: Duration

    /// A fixed-width table, one row per participant and stream type.
    public func table() -> String {
        func us(_ ns: UInt64) -> String { String(format1: Double(ns) / 1000) }
        var lines = ["participant stream     sent   echoed echo-loss%  rtt-p50us  rtt-p99us  rtt-maxus  received     lost  loss%  jitter-us"]
        for row in streams {
            lines.append(
                [
                    pad("\(row.participant)", 11), pad(row.type.description, 6), pad("\(row.sent)", 8), pad("\(row.echoed)", 8),
                    pad(String(format1: row.echoLossPercent), 10), pad(us(row.roundTrip.quantile(0.5)), 10),
                    pad(us(row.roundTrip.quantile(0.99)), 10), pad(us(row.roundTrip.max), 10), pad("\(row.received)", 9),
                    pad("\(row.lost)", 8), pad(String(format1: row.lossPercent), 6), pad(String(format1: row.jitter / 1000), 10),
                ].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (for scripts and the demo).
    public func json() -> String {
        let rows = streams.map { row in
            "{\"participant\":\(row.participant),\"stream\":\"\(row.type)\",\"sent\":\(row.sent),\"echoed\":\(row.echoed),"
                + "\"rtt_p50_ns\":\(row.roundTrip.quantile(0.5)),\"rtt_p99_ns\":\(row.roundTrip.quantile(0.99)),\"rtt_max_ns\":\(row.roundTrip.count == 0 ? 0 : row.roundTrip.max),"
                + "\"received\":\(row.received),\"lost\":\(row.lost),\"sources\":\(row.sources),\"jitter_ns\":\(Int(row.jitter)),"
                + "\"delay_p50_ns\":\(row.delay.quantile(0.5)),\"delay_p99_ns\":\(row.delay.quantile(0.99))}"
        }
        return "{\"streams\":[" + rows.joined(separator: ",") + "]}"
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

extension String {
    /// One decimal, without Foundation.
    init(format1 value: Double) {
        guard value.isFinite else { self = "-"; return }
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
        if value < 0 && tenths / 10 == 0 && tenths != 0 { self = "-" + self }
    }
}

/// The pktswitch NMP client: participants that register, subscribe, send ASQ/VSQ/VHQ at a fixed
/// interval, and measure round trips from the SFU's echoes and loss and jitter of what they receive.
public final class ConferenceClient: Sendable {
    public struct Configuration: Sendable {
        public var control: SocketAddress
        public var media: SocketAddress
        /// Local address to bind each participant's socket to (port 0: any).
        public var localAddress: SocketAddress
        public var participants = 1
        public var interval: Duration = .milliseconds(4)
        /// RTP payload bytes per stream type (default 80/160/320), at least 12 (the time stamp).
        public var sizes: [StreamType: Int] = [.asq: 80, .vsq: 160, .vhq: 320]
        public var send: StreamSet = .all
        public var receive: StreamSet = .all
        /// Empty: the room the token names, or `default` on an open SFU.
        public var room = ""
        /// One join token per participant, in order (a token names one identity, and a room
        /// holds one participant per identity); empty on an open SFU.
        public var tokens: [[UInt8]] = []
        /// Per-source overrides by participant id.
        public var perSource: [UInt32: StreamSet] = [:]
        public var duration: Duration = .seconds(5)
        /// How long to keep receiving after the last send (late echoes).
        public var drain: Duration = .milliseconds(300)

        public init(control: SocketAddress, media: SocketAddress, localAddress: SocketAddress) {
            self.control = control
            self.media = media
            self.localAddress = localAddress
        }
    }

    struct Session: Sendable {
        let socket: GroupSocket
        let membership: Membership
        var id: UInt32 { membership.id }
        var ssrcs: StreamSSRCs { membership.ssrcs }
        var keepaliveTimeout: UInt32 { membership.keepaliveTimeoutMilliseconds }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// Packets sent so far (for status lines).
    public let sentCount = Atomic<UInt64>(0)
    public let receivedCount = Atomic<UInt64>(0)

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Ends the run early (from any thread, for SIGINT).
    public func stop() { stopping.store(true, ordering: .releasing) }

    private struct ReceivedStream {
        var type: StreamType
        var count: UInt64 = 0
        var base: UInt32 = 0
        var highest: UInt32 = 0  // extended sequence number
        var jitter: Double = 0
        var lastTransit: Int64?
        var delay = LatencyHistogram()
    }

    public func run() throws(ClientError) -> ClientReport {
        guard configuration.tokens.isEmpty || configuration.tokens.count >= configuration.participants else {
            throw .configuration("\(configuration.tokens.count) join tokens for \(configuration.participants) participants (one each)")
        }
        var sessions: [Session] = []
        defer {
            for session in sessions {
                let channel = ControlChannel(socket: session.socket, sfu: configuration.control)
                try? channel.expect(.leave(requestID: 0x4C45_0000 | session.id & 0xFFFF, participant: session.id, session: session.membership.session), .left)
                try? session.socket.close()
            }
        }
        for index in 0..<configuration.participants {
            let socket: GroupSocket
            do {
                socket = try GroupSocket(
                    bindingTo: configuration.localAddress, backend: .socket,
                    options: .init(nonBlocking: true, receiveBufferSize: 4 << 20), logger: logger)
            } catch { throw .socket("participant socket on \(configuration.localAddress)", error) }
            let channel = ControlChannel(socket: socket, sfu: configuration.control)
            let token = configuration.tokens.isEmpty ? [] : configuration.tokens[index]
            let membership: Membership
            do {
                membership = try channel.register(
                    JoinParameters(room: configuration.room, token: token, receive: configuration.receive), requestID: UInt32(0x5245_0000 + index))
            } catch {
                try? socket.close()
                throw error
            }
            sessions.append(Session(socket: socket, membership: membership))
            for (source, streams) in configuration.perSource {
                try channel.expect(
                    .subscribe(requestID: UInt32(0x5355_0000 + index), participant: membership.id, session: membership.session, source: source, streams: streams),
                    .subscribed)
            }
            logger.info("participant \(membership.id) registered: \(membership.ssrcs)")
        }

        let intervalNs = configuration.interval.wholeNanoseconds
        let durationNs = configuration.duration.wholeNanoseconds
        let drainNs = configuration.drain.wholeNanoseconds
        let start = monotonicNanoseconds()
        let sendEnd = Atomic<UInt64>(start + durationNs)
        let senderDone = Atomic<Bool>(false)
        let sentTotals = Mutex<[UInt32: [StreamType: UInt64]]>([:])
        let sessionsCopy = sessions
        let configuration = self.configuration

        // The generator: every interval, each participant sends one packet of each stream type.
        let sender = Thread { [self] in
            var sequence = [UInt16](repeating: 0, count: sessionsCopy.count * 3)
            var sent: [UInt32: [StreamType: UInt64]] = [:]
            var tick = start
            var payloads: [StreamType: [UInt8]] = [:]
            for type in StreamType.allCases {
                payloads[type] = [UInt8](repeating: type.rawValue, count: max(12, configuration.sizes[type] ?? 12))
            }
            while tick < sendEnd.load(ordering: .relaxed), !stopping.load(ordering: .relaxed) {
                for (index, session) in sessionsCopy.enumerated() {
                    for type in configuration.send.types where session.ssrcs[type] != 0 {
                        let slot = index * 3 + Int(type.rawValue - 1)
                        var payload = payloads[type]!
                        let now = monotonicNanoseconds()
                        for byte in 0..<8 { payload[byte] = UInt8(truncatingIfNeeded: now >> UInt64(56 - 8 * byte)) }
                        let packet = RTPHeader.packet(
                            payloadType: type.rtpPayloadType, sequenceNumber: sequence[slot],
                            timestamp: UInt32(truncatingIfNeeded: (now - start) / 11_111), ssrc: session.ssrcs[type], payload: payload)
                        sequence[slot] &+= 1
                        if (try? session.socket.send(packet, to: configuration.media)) != nil {
                            sent[session.id, default: [:]][type, default: 0] += 1
                            sentCount.add(1, ordering: .relaxed)
                        }
                    }
                }
                tick += intervalNs
                var deadline = timespec(tv_sec: Int(tick / 1_000_000_000), tv_nsec: Int(tick % 1_000_000_000))
                while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil) == EINTR {}
            }
            sentTotals.withLock { $0 = sent }
            senderDone.store(true, ordering: .releasing)
        }
        sender.name = "groupcast-client-sender"
        sender.start()

        // The receiver: echoes (own SSRCs) and other participants' streams, on every socket.
        var reports: [UInt32: [StreamType: StreamReport]] = [:]
        var streams: [UInt32: [UInt32: ReceivedStream]] = [:]  // receiver id -> ssrc -> stats
        var own: [UInt32: (UInt32, StreamType)] = [:]
        for session in sessions {
            for (type, ssrc) in session.ssrcs.streams { own[ssrc] = (session.id, type) }
            for type in StreamType.allCases { reports[session.id, default: [:]][type] = StreamReport(participant: session.id, type: type) }
        }
        var pollSet = sessions.map { session in pollfd(fd: (try? session.socket.fileDescriptor.rawValue) ?? -1, events: CShort(POLLIN), revents: 0) }
        var lastKeepalive = start
        var stopAt: UInt64?
        while true {
            let now = monotonicNanoseconds()
            if stopAt == nil && (senderDone.load(ordering: .acquiring) || stopping.load(ordering: .relaxed)) {
                stopAt = now + drainNs
                if stopping.load(ordering: .relaxed) { sendEnd.store(0, ordering: .relaxed) }
            }
            if let stopAt, now >= stopAt { break }
            if let session = sessions.first, now - lastKeepalive > UInt64(max(session.keepaliveTimeout, 300)) * 1_000_000 / 3 {
                lastKeepalive = now
                for session in sessions {
                    try? session.socket.send(
                        ControlMessage.keepalive(requestID: 0x4B41_0000 | session.id & 0xFFFF, participant: session.id, session: session.membership.session).encoded(),
                        to: configuration.control)
                }
            }
            let ready = poll(&pollSet, nfds_t(pollSet.count), 20)
            guard ready > 0 else { continue }
            for (index, entry) in pollSet.enumerated() where entry.revents != 0 {
                let session = sessions[index]
                let datagrams: [ReceivedDatagram]
                do { datagrams = try session.socket.receiveBatch(maxCount: 64, maxSize: 2048) } catch {
                    throw .socket("recvmmsg(participant \(session.id))", error)
                }
                let arrival = monotonicNanoseconds()
                for datagram in datagrams {
                    guard let header = try? RTPHeader.parse(datagram.bytes), header.payloadLength >= 8 else { continue }
                    receivedCount.add(1, ordering: .relaxed)
                    var stamp: UInt64 = 0
                    for byte in 0..<8 { stamp = stamp << 8 | UInt64(datagram.bytes[header.payloadOffset + byte]) }
                    if let (owner, type) = own[header.ssrc] {
                        if owner == session.id {
                            reports[owner]![type]!.echoed += 1
                            reports[owner]![type]!.roundTrip.record(arrival &- stamp)
                        }
                        // A copy of a sibling participant's stream of this process: counts as received.
                        if owner != session.id { record(&streams, session.id, header, stamp: stamp, arrival: arrival, type: type) }
                    } else {
                        let type = StreamType(rawValue: header.payloadType &- 95) ?? .asq
                        record(&streams, session.id, header, stamp: stamp, arrival: arrival, type: type)
                    }
                }
            }
        }
        sender.cancel()
        while !senderDone.load(ordering: .acquiring) { usleep(1000) }
        for (id, byType) in sentTotals.withLock({ $0 }) {
            for (type, count) in byType { reports[id]![type]!.sent = count }
        }
        for (receiver, byStream) in streams {
            for stream in byStream.values {
                var row = reports[receiver]![stream.type]!
                row.received += stream.count
                let expected = UInt64(stream.highest - stream.base + 1)
                row.lost += expected > stream.count ? expected - stream.count : 0
                row.jitter = (row.jitter * Double(row.sources) + stream.jitter) / Double(row.sources + 1)
                row.sources += 1
                row.delay.merge(stream.delay)
                reports[receiver]![stream.type] = row
            }
        }
        let rows = reports.keys.sorted().flatMap { id in StreamType.allCases.map { reports[id]![$0]! } }
        return ClientReport(streams: rows, duration: .nanoseconds(Int64(monotonicNanoseconds() - start)))
    }

    private func record(_ streams: inout [UInt32: [UInt32: ReceivedStream]], _ receiver: UInt32, _ header: RTPHeader, stamp: UInt64, arrival: UInt64, type: StreamType) {
        var stream = streams[receiver, default: [:]][header.ssrc] ?? ReceivedStream(type: type)
        let sequence = UInt32(header.sequenceNumber)
        if stream.count == 0 {
            stream.base = sequence
            stream.highest = sequence
        } else {
            // Extend the 16-bit sequence number around the highest seen (RFC 3550 A.1).
            let cycle = stream.highest & 0xFFFF_0000
            var extended = cycle | sequence
            let highestLow = stream.highest & 0xFFFF
            if sequence < highestLow && highestLow - sequence > 0x8000 { extended &+= 0x1_0000 }
            else if sequence > highestLow && sequence - highestLow > 0x8000 && cycle > 0 { extended &-= 0x1_0000 }
            if extended > stream.highest { stream.highest = extended }
            if extended < stream.base { stream.base = extended }
        }
        stream.count += 1
        let transit = Int64(bitPattern: arrival &- stamp)
        if let last = stream.lastTransit {
            let d = Double(abs(transit - last))
            stream.jitter += (d - stream.jitter) / 16
        }
        stream.lastTransit = transit
        if transit >= 0 { stream.delay.record(UInt64(transit)) }
        streams[receiver, default: [:]][header.ssrc] = stream
    }
}
