#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastBackends
import GroupcastFastPath
import GroupcastLab
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Testing

/// The frame corpus (bpf/tests/corpus/frames.txt) end to end on the selected backend
/// (`GROUPCAST_SFU_BACKEND`): every frame is sent with AF_PACKET from a peer namespace into a veth
/// whose other end carries the corpus's SFU (its MAC, addresses and media port), with the corpus's
/// routes as static participants; per frame the SFU's counters must move as the corpus labels say
/// for this backend (forwarded with one copy at the subscriber and one echo, dropped under the one
/// reason of `enum gc_drop`, or never seen: the kernel drops it or it is not the SFU's), and
/// nothing else. After each frame a datagram of an unknown SSRC (counted `unknown_ssrc` on every
/// backend) is sent as a barrier: when it is counted, the frame before it has been handled.
///
/// Per backend the label is: socket, sendmmsg, sendgroup the `socket` column; xdp the program's
/// verdict (its drop counter, or `rx_media`: forwarded in the kernel) and, for what it passes up
/// or to the stack, the `socket` column; ring the `ring` column. The per-reason totals are
/// written to `GROUPCAST_CORPUS_TOTALS` (a file, appended) when set, for scripts/test/sfu to
/// compare across backends.
///
/// Needs its own network namespace (scripts/test/sfu runs it through scripts/lib/netns-exec): the
/// SFU's end of the veth is made in the test's namespace.
@Suite(.serialized) struct FrameCorpusEndToEndTests {
    enum Outcome: Equatable, CustomStringConvertible {
        case forward, drop(DropReason), nothing
        var description: String {
            switch self {
            case .forward: "forward"
            case .drop(let reason): "drop \(reason)"
            case .nothing: "not counted"
            }
        }
    }

    /// What `backend` does with `frame`, from the corpus's labels.
    static func expected(_ frame: FrameCorpusTests.Frame, on backend: ForwarderBackend) -> Outcome {
        func label(_ word: String) -> Outcome {
            switch word {
            case "forward": return .forward
            case "kernel", "none": return .nothing
            default: return .drop(DropReason(name: word)!)
            }
        }
        switch backend {
        case .ring:
            return label(frame.ring)
        case .xdp:
            if frame.counter.hasPrefix("drop_") { return label(String(frame.counter.dropFirst(5))) }
            if frame.counter == "rx_media" { return .forward }
            return label(frame.socket)
        default:
            return label(frame.socket)
        }
    }

    enum Family: String, CaseIterable { case ipv4, ipv6 }

    /// The frame's address family (by its EtherType, behind one VLAN tag); ARP and the rest go
    /// with IPv4.
    static func family(of bytes: [UInt8]) -> Family {
        var type = Int(bytes[12]) << 8 | Int(bytes[13])
        if type == 0x8100 || type == 0x88a8 { type = Int(bytes[16]) << 8 | Int(bytes[17]) }
        return type == 0x86dd ? .ipv6 : .ipv4
    }

    @Test(arguments: Family.allCases) func everyFrameMovesTheCountersItsLabelSays(_ family: Family) throws {
        let bench = try CorpusSFU(family: family)
        let backend = bench.backend
        var totals = ForwarderStatistics(), expectedTotals = ForwarderStatistics()
        var copies = 0, mismatches = 0
        for frame in bench.frames {
            let want = Self.expected(frame, on: backend)
            let (delta, arrived) = try bench.send(frame.bytes, expectingCopy: want == .forward, expectingUnknownSSRC: want == .drop(.unknownSSRC))
            var wantDelta = ForwarderStatistics()
            switch want {
            case .forward: wantDelta.forwarded = 1; wantDelta.echoed = 1
            case .drop(let reason): wantDelta[reason] = 1
            case .nothing: break
            }
            copies += arrived.count
            let payload = frame.udpPayload
            let copyOK = want == .forward ? arrived == [payload] : arrived.isEmpty
            let countersOK = delta.forwarded == wantDelta.forwarded && delta.echoed == wantDelta.echoed && delta.drops == wantDelta.drops
            if !countersOK || !copyOK {
                mismatches += 1
                Issue.record("\(backend) \(family): \(frame.name): want \(want); got \(CorpusSFU.describe(delta)), \(arrived.count) copies at the subscriber")
            }
            totals.forwarded &+= delta.forwarded
            totals.echoed &+= delta.echoed
            expectedTotals.forwarded &+= wantDelta.forwarded
            expectedTotals.echoed &+= wantDelta.echoed
            for reason in DropReason.allCases {
                totals[reason] &+= delta[reason]
                expectedTotals[reason] &+= wantDelta[reason]
            }
        }
        #expect(bench.frames.count >= 10, "only \(bench.frames.count) \(family) frames in the corpus")
        #expect(copies == Int(expectedTotals.forwarded), "\(copies) copies at the subscriber, want \(expectedTotals.forwarded)")
        #expect(totals.drops == expectedTotals.drops && totals.forwarded == expectedTotals.forwarded && totals.echoed == expectedTotals.echoed)
        let line = "\(TestBackend.label(backend)) \(family) frames=\(bench.frames.count) forwarded=\(totals.forwarded) echoed=\(totals.echoed) "
            + DropReason.allCases.filter { totals[$0] != 0 }.map { "\($0)=\(totals[$0])" }.joined(separator: " ")
        print("corpus totals: \(line)")
        if let path = ProcessInfo.processInfo.environment["GROUPCAST_CORPUS_TOTALS"], mismatches == 0 {
            if !FileManager.default.fileExists(atPath: path) {
                #expect(FileManager.default.createFile(atPath: path, contents: nil), "cannot create \(path)")
            }
            let handle = try #require(FileHandle(forWritingAtPath: path), "cannot write \(path)")
            handle.seekToEndOfFile()
            handle.write(Data((line + "\n").utf8))
            try? handle.close()
        }
    }

    /// The SFU's addresses are followed when they change, not read once at start: media sent to
    /// an address added to the interface after the SFU started is forwarded, and once that address
    /// is removed, media sent to it is never replicated (a copy would leave from an address that is
    /// not the host's). The in-kernel paths re-read the addresses every 2 s (the xdp programs'
    /// local-address map, the ring's port addresses).
    @Test func addressesAddedAndRemovedAfterStartAreFollowed() throws {
        let bench = try CorpusSFU(family: .ipv4)
        let media = try #require(bench.frames.first { $0.counter == "rx_media" && $0.socket == "forward" && $0.ring == "forward" })
        let added: [UInt8] = [10, 0, 0, 250]
        let frame = Self.redirect(media.bytes, toIPv4: added)
        _ = try Topology.ip(["addr", "add", "10.0.0.250/32", "dev", "gccor0"])
        usleep(3_000_000)  // past the in-kernel paths' 2 s refresh
        var (delta, arrived) = try bench.send(frame, expectingCopy: true)
        #expect(delta.forwarded == 1 && delta.echoed == 1 && arrived == [media.udpPayload],
                "\(bench.backend): media to an address added after start: \(CorpusSFU.describe(delta)), \(arrived.count) copies")

        _ = try Topology.ip(["addr", "del", "10.0.0.250/32", "dev", "gccor0"])
        usleep(3_000_000)
        (delta, arrived) = try bench.send(frame, expectingCopy: false)
        #expect(delta.forwarded == 0 && delta.echoed == 0 && arrived.isEmpty,
                "\(bench.backend): media to an address the host no longer has: \(CorpusSFU.describe(delta)), \(arrived.count) copies")
    }

    /// `frame` (an IPv4 frame without VLAN tag or options) sent to `address`, checksums recomputed.
    static func redirect(_ frame: [UInt8], toIPv4 address: [UInt8]) -> [UInt8] {
        var f = frame
        f.replaceSubrange(30..<34, with: address)
        func sum(_ bytes: ArraySlice<UInt8>, _ initial: UInt32 = 0) -> UInt32 {
            var total = initial
            var index = bytes.startIndex
            while index < bytes.endIndex {
                total += UInt32(bytes[index]) << 8 | UInt32(index + 1 < bytes.endIndex ? bytes[index + 1] : 0)
                index += 2
            }
            return total
        }
        func fold(_ value: UInt32) -> UInt16 {
            var v = value
            while v >> 16 != 0 { v = (v & 0xffff) + (v >> 16) }
            return UInt16(v)
        }
        f[24] = 0; f[25] = 0
        let ip = ~fold(sum(f[14..<34]))
        f[24] = UInt8(ip >> 8); f[25] = UInt8(ip & 0xff)
        let udpLength = Int(f[38]) << 8 | Int(f[39])
        f[40] = 0; f[41] = 0
        let pseudo = sum(f[26..<34]) + 17 + UInt32(udpLength)
        var udp = ~fold(sum(f[34..<34 + udpLength], pseudo))
        if udp == 0 { udp = 0xffff }
        f[40] = UInt8(udp >> 8); f[41] = UInt8(udp & 0xff)
        return f
    }

    /// `host` (an IPv4 or IPv6 address) and `port`.
    static func address(_ host: String, _ port: UInt16) throws -> SocketAddress {
        try SocketAddress(parsing: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
    }

    /// Not the host's namespace (PID 1's): the test's veth and addresses stay in a namespace of
    /// its own.
    static func inOwnNetworkNamespace() -> Bool {
        let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let host = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/1/ns/net")
        return own != nil && own != host
    }
}

extension FrameCorpusTests.Frame {
    /// The UDP datagram's payload (without Ethernet padding); empty when there is none.
    var udpPayload: [UInt8] {
        guard payloadOffset >= 8 else { return [] }
        let udpLength = Int(bytes[payloadOffset - 4]) << 8 | Int(bytes[payloadOffset - 3])
        return Array(bytes[payloadOffset..<min(bytes.count, payloadOffset + max(udpLength - 8, 0))])
    }
}

/// The corpus's SFU on the selected backend: a veth `gccor0` in the test's namespace with the
/// corpus's MAC, addresses and media port, its peer `gccorp0` (the corpus's origin MAC) in an
/// anonymous namespace holding the origins, a subscriber and a bystander; the corpus's routes as
/// static participants of one room (an IPv4 route seen from the IPv6 run belongs to the bystander,
/// so its SSRC from the corpus's origin is spoofed, as labelled, and the other way round).
final class CorpusSFU {
    let backend = TestBackend.selected
    let family: FrameCorpusEndToEndTests.Family
    let frames: [FrameCorpusTests.Frame]
    let sfuAddress: String
    private let subscriberSocket: GroupSocket
    private let turn: InterfaceTurn
    private let topology: Topology
    private let server: SFUServer
    private let originSockets: [GroupSocket]
    private let barrierSocket: GroupSocket
    private let sfuMedia: SocketAddress
    private let raw: RawFrameSender
    private let barrier = RTPHeader.packet(payloadType: 96, sequenceNumber: 1, timestamp: 0, ssrc: 0x0bad_f00d, payload: [UInt8](repeating: 7, count: 20))
    private var unknownSeen: UInt64 = 0

    init(family: FrameCorpusEndToEndTests.Family) throws {
        try #require(FrameCorpusEndToEndTests.inOwnNetworkNamespace(), "run through scripts/lib/netns-exec: the test makes a veth in its namespace")
        let backend = TestBackend.selected
        self.family = family
        let corpus = try FrameCorpusTests.loadWithEnvironment()
        let env = corpus.environment
        let port = try #require(env["port"].flatMap { UInt16($0) })
        let sfuIPv4 = try #require(env["sfu_ipv4"]), sfuIPv6 = try #require(env["sfu_ipv6"])
        sfuAddress = family == .ipv4 ? sfuIPv4 : sfuIPv6
        frames = corpus.frames.filter { FrameCorpusEndToEndTests.family(of: $0.bytes) == family }
        let peerMAC = corpus.frames[0].bytes[6..<12].map { String(format: "%02x", $0) }.joined(separator: ":")
        let routes = corpus.routeLines.filter { ($0[1] == "4") == (family == .ipv4) }
        let origins = Set(routes.map { $0[2] })
        let subscriber = family == .ipv4 ? "10.0.0.2" : "fd00::2"
        let bystander = family == .ipv4 ? "10.0.0.3" : "fd00::3"
        try #require(!origins.contains(subscriber) && !origins.contains(bystander), "the corpus's origins moved")
        let peerAddresses = Array(origins) + [subscriber, bystander]
        let ipv4Peers = corpus.routeLines.filter { $0[1] == "4" }.map { $0[2] } + ["10.0.0.2", "10.0.0.3"]
        let ipv6Peers = corpus.routeLines.filter { $0[1] == "6" }.map { $0[2] } + ["fd00::2", "fd00::3"]

        turn = InterfaceTurn(backend: backend)
        // The previous test's veth: its peer namespace is released at once, the pair with it only
        // in the kernel's deferred namespace cleanup.
        _ = try? Topology.ip(["link", "del", "gccor0"])
        let topology = Topology(hub: .caller, spokes: [
            Topology.Spoke(
                placement: .anonymous, hubInterface: "gccor0", interface: "gccorp0",
                hubAddresses: ["\(sfuIPv4)/24", "\(sfuIPv6)/64"],
                addresses: Array(Set(ipv4Peers)).map { $0 + "/24" } + Array(Set(ipv6Peers)).map { $0 + "/64" },
                hubMAC: env["sfu_mac"], mac: peerMAC)
        ])
        self.topology = topology
        try topology.create()
        do {
            // Every peer address sits behind the one peer MAC: known before the first copy.
            for address in peerAddresses {
                _ = try Topology.ip(["neigh", "replace", address, "lladdr", peerMAC, "dev", "gccor0", "nud", "permanent"])
            }
            var byOrigin: [String: (id: UInt32, ssrcs: StreamSSRCs)] = [:]
            let types: [StreamType] = [.asq, .vsq, .vhq]
            for route in corpus.routeLines {
                let ssrc = try #require(UInt32(route[0].dropFirst(2), radix: 16))
                let origin = (route[1] == "4") == (family == .ipv4) ? route[2] : bystander
                var entry = byOrigin[origin] ?? (UInt32(byOrigin.count + 1), .none)
                entry.ssrcs[types[types.filter { entry.ssrcs[$0] != 0 }.count]] = ssrc
                byOrigin[origin] = entry
            }
            func originPort(_ origin: String) -> UInt16 { UInt16(corpus.routeLines.first { $0[2] == origin }?[3] ?? "4000") ?? 4000 }
            var participants = try byOrigin.map { origin, entry in
                RoomFile.StaticParticipant(id: entry.id, address: try FrameCorpusEndToEndTests.address(origin, originPort(origin)), ssrcs: entry.ssrcs, receive: [])
            }
            participants.append(.init(id: 90, address: try FrameCorpusEndToEndTests.address(subscriber, 4002), ssrcs: .none, receive: .all))

            // The SFU on the wildcard address (the stack delivers broadcast and multicast to it).
            var configuration = SFUServer.Configuration(controlAddress: family == .ipv4 ? .ipv4(.any, port: 0) : .ipv6(.any, port: 0))
            configuration.room = RoomFile(rooms: [.init(name: "corpus", participants: participants)])
            var forwarder = TestBackend.configuration(backend, mediaAddress: family == .ipv4 ? .ipv4(.any, port: port) : .ipv6(.any, port: port))
            if backend.needsInterface { forwarder.interfaces = ["gccor0"] }
            server = try Backends.makeServer(configuration, forwarder: forwarder, logger: testLogger)
            server.start()
            if backend == .xdp {
                // The attachment has the selected ingress (xdp-tc: the TC program alone).
                let status = try FastPath.status(interface: "gccor0")
                #expect(status.ingress == TestBackend.xdpIngress && (status.xdpProgramID == 0) == (TestBackend.xdpIngress == .tc),
                        "attached with ingress \(String(describing: status.ingress)), xdp program \(status.xdpProgramID)")
            }

            // The peer's sockets: the subscriber, the origins (their echoes), the barrier's sender.
            func peer(_ address: String, _ port: UInt16) throws -> GroupSocket {
                try topology.inSpoke(0) {
                    try GroupSocket(bindingTo: FrameCorpusEndToEndTests.address(address, port), backend: .socket, options: .init(nonBlocking: true))
                }
            }
            subscriberSocket = try peer(subscriber, 4002)
            originSockets = try origins.map { try peer($0, originPort($0)) }
            barrierSocket = try peer(bystander, 4010)
            sfuMedia = try FrameCorpusEndToEndTests.address(sfuAddress, port)
            raw = try RawFrameSender(topology: topology, interface: "gccorp0")
        } catch {
            topology.destroy()
            throw error
        }
    }

    deinit {
        server.stop()
        _ = try? Topology.ip(["link", "del", "gccor0"])
        topology.destroy()
        withExtendedLifetime(turn) {}
    }

    /// Sends `bytes` as a frame, then the barrier (an unknown SSRC), waits until the SFU counted the
    /// barrier and returns what the frame moved (the barrier taken off) and the copies the
    /// subscriber got (waiting up to 1 s for one when `expectingCopy`).
    @discardableResult
    func send(_ bytes: [UInt8], expectingCopy: Bool = false, expectingUnknownSSRC: Bool = false) throws -> (ForwarderStatistics, [[UInt8]]) {
        let before = server.statistics().forwarder
        try raw.send(bytes)
        try barrierSocket.send(barrier, to: sfuMedia)
        unknownSeen = max(unknownSeen, before[.unknownSSRC]) + (expectingUnknownSSRC ? 2 : 1)
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        var after = server.statistics().forwarder
        while after[.unknownSSRC] < unknownSeen && ContinuousClock.now < deadline {
            usleep(2_000)
            after = server.statistics().forwarder
        }
        var delta = ForwarderStatistics()
        delta.forwarded = after.forwarded &- before.forwarded
        delta.echoed = after.echoed &- before.echoed
        for reason in DropReason.allCases { delta[reason] = after[reason] &- before[reason] }
        delta[.unknownSSRC] &-= 1  // the barrier
        var arrived: [[UInt8]] = []
        let copyDeadline = ContinuousClock.now.advanced(by: expectingCopy ? .seconds(1) : .milliseconds(20))
        while arrived.isEmpty, case let left = ContinuousClock.now.duration(to: copyDeadline), left > .zero {
            if try subscriberSocket.waitForReadable(timeout: left) { arrived += try subscriberSocket.receiveBatch().map(\.bytes) }
        }
        for socket in originSockets { _ = try? socket.receiveBatch(maxCount: 64) }  // the echoes
        return (delta, arrived)
    }

    static func describe(_ delta: ForwarderStatistics) -> String {
        let moved = DropReason.allCases.filter { delta[$0] != 0 }.map { "\($0) \(Int64(bitPattern: delta[$0]))" }
        return "forwarded +\(delta.forwarded) echoed +\(delta.echoed) drops [\(moved.joined(separator: ", "))]"
    }
}

/// Sends whole Ethernet frames out of one interface (AF_PACKET, `SOCK_RAW`), from the namespace it
/// lives in.
final class RawFrameSender {
    let descriptor: CInt
    let ifindex: Int32

    init(topology: Topology, interface: String) throws {
        (descriptor, ifindex) = try topology.inSpoke(0) {
            (socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0), Int32(if_nametoindex(interface)))
        }
        guard descriptor >= 0, ifindex > 0 else {
            throw VethTopology.SetupError(description: "AF_PACKET socket on \(interface): errno \(errno) (needs CAP_NET_RAW)")
        }
    }

    deinit { close(descriptor) }

    func send(_ frame: [UInt8]) throws {
        // struct sockaddr_ll: family, protocol (be16), ifindex, hatype, pkttype, halen, addr[8].
        var address = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: UInt16(AF_PACKET)) { address.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: ifindex) { address.replaceSubrange(4..<8, with: $0) }
        address[11] = 6
        address.replaceSubrange(12..<18, with: frame[0..<6])
        let sent = frame.withUnsafeBytes { bytes in
            address.withUnsafeBytes { sa in
                sendto(descriptor, bytes.baseAddress, bytes.count, 0, sa.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(sa.count))
            }
        }
        guard sent == frame.count else { throw VethTopology.SetupError(description: "sendto(AF_PACKET): errno \(errno)") }
    }
}
