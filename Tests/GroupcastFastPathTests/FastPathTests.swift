import CGroupcastFastPath
import Glibc
@testable import GroupcastFastPath
import GroupcastLab
import Foundation
import GroupcastProtocol
import GroupUnicast
import XCTest

/// The Swift API over the loader. Tests that need a device run only as root, in a network
/// namespace private to the test's thread (`Topology.PrivateNamespace`: unshare(CLONE_NEWNET) is
/// per thread), restored after; their veths come from GroupcastLab's `Topology`.
final class FastPathTests: XCTestCase {
    /// `StreamType`'s raw values go into `struct gc_route.stream_type` unchanged, so they must be
    /// `enum gc_stream_type` of groupcast_layout.h, case for case.
    func testStreamTypesAreTheLayoutsValues() {
        XCTAssertEqual(UInt32(StreamType.asq.rawValue), GC_STREAM_ASQ.rawValue)
        XCTAssertEqual(UInt32(StreamType.vsq.rawValue), GC_STREAM_VSQ.rawValue)
        XCTAssertEqual(UInt32(StreamType.vhq.rawValue), GC_STREAM_VHQ.rawValue)
        XCTAssertEqual(StreamType.allCases.count, 3)
    }

    /// Addresses as the loader's structs hold them (`GC_FAMILY_*`, network-order bytes).
    func testAddressParsing() {
        XCTAssertEqual(address("10.1.2.3")?.fastPathFamily, 4)
        XCTAssertEqual(address("10.1.2.3")?.addressBytes, [10, 1, 2, 3])
        XCTAssertEqual(address("fd00::1")?.fastPathFamily, 6)
        XCTAssertEqual(address("fd00::1")?.hostDescription, "fd00::1")
        XCTAssertNil(address("10.1.2"))
        XCTAssertNil(address("eth0"))
        for text in ["10.1.2.3", "fd00::1"] {
            let parsed = address(text, port: 4000)!
            let back = parsed.addressBytes.withUnsafeBytes {
                SocketAddress(fastPathFamily: parsed.fastPathFamily, address: $0, port: 4000)
            }
            XCTAssertEqual(back, parsed)
        }
    }

    /// `host` with `port` (0: an address whose port does not matter, as for next hops).
    private func address(_ host: String, port: UInt16 = 0) -> SocketAddress? {
        SocketAddress(host: host, port: port)
    }

    func testStatusOfUnattachedInterface() throws {
        XCTAssertThrowsError(try FastPath.status(interface: "gcnotattached0")) { error in
            guard case .notAttached(let m)? = error as? FastPathError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertTrue(m.contains("gcnotattached0"), m)
        }
    }

    func testAttachToMissingDevice() throws {
        XCTAssertThrowsError(try FastPath.attach(interface: "gcnosuchdev0", port: 5004)) { error in
            switch error as? FastPathError {
            case .noSuchDevice(let m)?: XCTAssertTrue(m.contains("gcnosuchdev0"), m)
            case .notRoot?: XCTAssertNotEqual(geteuid(), 0, "root got notRoot")
            default: XCTFail("unexpected \(error)")
            }
        }
    }

    func testLifecycleOnVeth() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (BPF, network namespaces)")
        let namespace = try Topology.PrivateNamespace()
        defer { namespace.leave() }
        let topology = Topology(hub: .caller, spokes: [.init(placement: .caller, hubInterface: "gcsw0", interface: "gcsw1")])
        try topology.create()

        let fp = try FastPath.attach(interface: "gcsw0", port: 5004, echo: false, maxRoutes: 16)
        XCTAssertThrowsError(try FastPath.attach(interface: "gcsw0", port: 5004)) { error in
            guard case .alreadyAttached? = error as? FastPathError else { return XCTFail("\(error)") }
        }
        let st = try FastPath.status(interface: "gcsw0")
        XCTAssertTrue(st.attached)
        XCTAssertEqual(st.mode, .native)
        XCTAssertEqual(st.port, 5004)
        XCTAssertFalse(st.echo)
        XCTAssertEqual(st.maxRoutes, 16)
        XCTAssertNotEqual(st.xdpProgramID, 0)
        XCTAssertNotEqual(st.tcProgramID, 0)

        let origin = address("10.9.0.2", port: 4000)!
        let sub = FastPath.Subscriber(interface: "gcsw1", mac: [2, 0, 0, 0, 0, 7], address: address("10.9.1.2", port: 6000)!)
        XCTAssertEqual(try fp.setRoute(source: 42, origin: origin, type: .vsq, subscribers: [sub]), .kernel)
        let many = (0...FastPath.maxSubscribers).map { i in
            FastPath.Subscriber(interface: "gcsw1", mac: [2, 0, 0, 0, 0, 8], address: address("10.9.1.3", port: UInt16(7000 + i))!)
        }
        XCTAssertEqual(try fp.setRoute(source: 43, origin: origin, type: .vhq, subscribers: many), .userSpace)
        XCTAssertThrowsError(try fp.setRoute(
            source: 44, origin: address("fd00::2", port: 4000)!, type: .asq,
            subscribers: [sub])) { error in
            guard case .invalidArgument? = error as? FastPathError else { return XCTFail("\(error)") }
        }

        let routes = try fp.routes().sorted { $0.source < $1.source }
        XCTAssertEqual(routes.map(\.source), [42, 43])
        XCTAssertEqual(routes[0].origin, origin)
        XCTAssertEqual(routes[0].type, .vsq)
        XCTAssertFalse(routes[0].userSpace)
        XCTAssertEqual(routes[0].subscribers.count, 1)
        XCTAssertEqual(routes[0].subscribers[0].mac, [2, 0, 0, 0, 0, 7])
        XCTAssertEqual(routes[0].subscribers[0].destination,
                       address("10.9.1.2", port: 6000))
        XCTAssertEqual(routes[0].subscribers[0].ifindex, if_nametoindex("gcsw1"))
        XCTAssertTrue(routes[1].userSpace)

        try fp.removeRoute(source: 43)
        XCTAssertThrowsError(try fp.removeRoute(source: 43)) { error in
            guard case .noSuchRoute? = error as? FastPathError else { return XCTFail("\(error)") }
        }
        let stats = try fp.stats()
        XCTAssertEqual(stats.counters.count, Int(GC_STAT_MAX.rawValue))
        // The drop counters are enum gc_drop's reasons, by name, in order.
        for reason in 0..<GC_DROP_MAX.rawValue {
            XCTAssertEqual(stats.counters[Int(GC_STAT_DROP_FIRST.rawValue + reason)].name,
                           "drop_" + String(cString: gc_drop_name(reason)))
        }
        XCTAssertEqual(stats["forwarded"], 0)
        XCTAssertNil(stats["no such counter"])

        try fp.detach()
        XCTAssertThrowsError(try fp.stats())
        XCTAssertThrowsError(try FastPath.status(interface: "gcsw0")) { error in
            guard case .notAttached? = error as? FastPathError else { return XCTFail("\(error)") }
        }
    }

    /// The TC ingress: only the TC program attached, the status says so, detach removes it.
    func testTCIngressOnVeth() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (BPF, network namespaces)")
        let namespace = try Topology.PrivateNamespace()
        defer { namespace.leave() }
        let topology = Topology(hub: .caller, spokes: [.init(placement: .caller, hubInterface: "gcsw0", interface: "gcsw1")])
        try topology.create()

        let fp = try FastPath.attach(interface: "gcsw0", port: 5004, ingress: .tc)
        let st = try FastPath.status(interface: "gcsw0")
        XCTAssertTrue(st.attached)
        XCTAssertEqual(st.ingress, .tc)
        XCTAssertNil(st.mode)
        XCTAssertEqual(st.xdpProgramID, 0)
        XCTAssertNotEqual(st.tcProgramID, 0)
        try fp.detach()
        XCTAssertThrowsError(try FastPath.status(interface: "gcsw0")) { error in
            guard case .notAttached? = error as? FastPathError else { return XCTFail("\(error)") }
        }
        let xdp = try FastPath.attach(interface: "gcsw0", port: 5004)
        XCTAssertEqual(try FastPath.status(interface: "gcsw0").ingress, .xdp)
        try xdp.detach()
    }

    /// Two attachers racing for one interface: each round exactly one wins and can use its
    /// attachment, the other is refused (already attached / busy), and nothing is left behind.
    func testConcurrentAttachOneWins() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (BPF, network namespaces)")
        let namespace = try Topology.PrivateNamespace()
        defer { namespace.leave() }
        let topology = Topology(hub: .caller, spokes: [.init(placement: .caller, hubInterface: "gcrace0", interface: "gcrace1")])
        try topology.create()
        for round in 0..<10 {
            let results = Outcomes()
            // Threads made from this thread share its network namespace.
            let threads = (0..<2).map { _ in
                Thread {
                    let result = Result { () throws(FastPathError) in try FastPath.attach(interface: "gcrace0", port: 5004) }
                    results.withLock { $0.append(result) }
                }
            }
            threads.forEach { $0.start() }
            while results.withLock({ $0.count }) < 2 { usleep(1000) }
            let outcome = results.withLock { $0 }
            let winners = outcome.compactMap { try? $0.get() }
            XCTAssertEqual(winners.count, 1, "round \(round): \(outcome)")
            for case .failure(let error) in outcome {
                switch error {
                case .alreadyAttached, .busy: break
                default: XCTFail("round \(round): \(error)")
                }
            }
            if let winner = winners.first {
                XCTAssertNoThrow(try winner.setRoute(source: 7, origin: address("10.9.0.2", port: 4000)!, type: .asq, subscribers: []))
                XCTAssertNoThrow(try winner.detach())
            }
            XCTAssertThrowsError(try FastPath.status(interface: "gcrace0"), "round \(round): still attached")
        }
    }

    /// NextHop.resolve: loopback (NOARP, local), no route, a static neighbour, a gateway, IPv6, and
    /// an unresolved neighbour that a probe gets resolved (the peer answers ARP from its netns).
    func testNextHopResolution() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (network namespaces)")
        let namespace = try Topology.PrivateNamespace()
        defer { namespace.leave() }
        let topology = Topology(hub: .caller, spokes: [
            .init(placement: .named("gcnhpeer\(getpid())"), hubInterface: "gcnh0", interface: "gcnh1",
                  hubAddresses: ["10.77.0.1/24", "fd77::1/64"], addresses: ["10.77.0.2/24"],
                  hubMAC: "02:00:00:00:00:10", mac: "02:00:00:00:00:20")
        ])
        try topology.create()
        defer { topology.destroy() }
        try Topology.ip(["neigh", "add", "10.77.0.3", "lladdr", "02:00:00:00:00:33", "dev", "gcnh0"])
        try Topology.ip(["-6", "neigh", "add", "fd77::3", "lladdr", "02:00:00:00:00:36", "dev", "gcnh0"])
        try Topology.ip(["route", "add", "10.88.0.0/16", "via", "10.77.0.3"])

        let local = try NextHop.resolve(address("127.0.0.1")!)
        XCTAssertEqual(local.interface, "lo")
        XCTAssertTrue(local.isNoARP && local.isLocal)
        XCTAssertEqual(local.destinationMAC, [0, 0, 0, 0, 0, 0])

        XCTAssertThrowsError(try NextHop.resolve(address("192.0.2.9")!)) { error in
            guard case .unreachable(let m)? = error as? FastPathError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("192.0.2.9"), m)
        }

        let onLink = try NextHop.resolve(address("10.77.0.3")!)
        XCTAssertEqual(onLink.interface, "gcnh0")
        XCTAssertEqual(onLink.destinationMAC, [2, 0, 0, 0, 0, 0x33])
        XCTAssertEqual(onLink.sourceMAC, [2, 0, 0, 0, 0, 0x10])
        XCTAssertEqual(onLink.sourceAddress, address("10.77.0.1"))
        XCTAssertFalse(onLink.isGateway || onLink.isNoARP || onLink.isLocal)

        let routed = try NextHop.resolve(address("10.88.1.1")!)
        XCTAssertTrue(routed.isGateway)
        XCTAssertEqual(routed.via, address("10.77.0.3"))
        XCTAssertEqual(routed.destinationMAC, [2, 0, 0, 0, 0, 0x33])

        let v6 = try NextHop.resolve(address("fd77::3")!)
        XCTAssertEqual(v6.interface, "gcnh0")
        XCTAssertEqual(v6.destinationMAC, [2, 0, 0, 0, 0, 0x36])

        // Never sent to: unresolved; a probe starts ARP and the peer's answer resolves it.
        XCTAssertThrowsError(try NextHop.resolve(address("10.77.0.2")!)) { error in
            guard case .neighbourUnresolved? = error as? FastPathError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try NextHop.resolve(address("10.77.0.2")!, probe: true)) { error in
            guard case .neighbourUnresolved(let m)? = error as? FastPathError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("resolution started"), m)
        }
        var resolved: NextHop?
        for _ in 0..<100 where resolved == nil {
            resolved = try? NextHop.resolve(address("10.77.0.2")!)
            if resolved == nil { usleep(10_000) }
        }
        XCTAssertEqual(resolved?.destinationMAC, [2, 0, 0, 0, 0, 0x20])
    }

    /// FastPath handles are not Sendable: the racing threads hand theirs over under a lock.
    private final class Outcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Result<FastPath, FastPathError>] = []
        func withLock<T>(_ body: (inout [Result<FastPath, FastPathError>]) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&items)
        }
    }
}
