@testable import GroupcastLab
import Foundation
import GroupcastSFU
import Testing

/// The lab's arithmetic: the numbers Docs/benchmarks.md quotes come out of these.
@Suite struct LinearFitTests {
    @Test func exactLineIsRecovered() {
        let fit = LinearFit(x: [1, 2, 3, 4], y: [5, 8, 11, 14])  // y = 2 + 3x
        #expect(abs(fit.a - 2) < 1e-12)
        #expect(abs(fit.b - 3) < 1e-12)
        #expect(abs(fit.r2 - 1) < 1e-12)
    }

    @Test func noisyPointsMatchHandComputedFit() {
        // x̄ = 2, ȳ = 3; Sxx = 2, Sxy = 1, Syy = 2 → b = 0.5, a = 2, r² = 1 / (2 · 2) = 0.25.
        let fit = LinearFit(x: [1, 2, 3], y: [2, 4, 3])
        #expect(abs(fit.b - 0.5) < 1e-12)
        #expect(abs(fit.a - 2) < 1e-12)
        #expect(abs(fit.r2 - 0.25) < 1e-12)
    }

    @Test func degenerateInputs() {
        #expect(LinearFit(x: [], y: []) == LinearFit(x: [], y: []))
        let empty = LinearFit(x: [], y: [])
        #expect(empty.a == 0 && empty.b == 0 && empty.r2 == 0)
        // One distinct x: the mean, no slope, nothing explained.
        let vertical = LinearFit(x: [6, 6, 6], y: [1, 2, 6])
        #expect(vertical.a == 3 && vertical.b == 0 && vertical.r2 == 0)
        // Constant y: a flat line that explains everything.
        let flat = LinearFit(x: [1, 2, 3], y: [4, 4, 4])
        #expect(flat.a == 4 && flat.b == 0 && flat.r2 == 1)
    }
}

@Suite struct CapacitySearchTests {
    /// Runs the search against an SFU that serves audiences up to `limit`.
    func search(start: Int, max: Int, steps: Int, limit: Int) -> CapacitySearch {
        var search = CapacitySearch(start: start, maxAudience: max, maxSteps: steps)
        while let audience = search.next { search.record(passed: audience <= limit) }
        return search
    }

    @Test func doublesThenBisectsToASixteenth() {
        let result = search(start: 16, max: 2048, steps: 12, limit: 100)
        #expect(result.steps == [16, 32, 64, 128, 96, 112, 104, 100])
        #expect(result.passed == 100)
        #expect(result.firstFailure == 104)
        #expect(result.cappedAt == nil)
    }

    @Test func stopsAtTheCapWhenEverythingPasses() {
        let result = search(start: 16, max: 50, steps: 12, limit: 1000)
        #expect(result.steps == [16, 32, 50])
        #expect(result.passed == 50)
        #expect(result.firstFailure == nil)
        #expect(result.cappedAt == 50)
    }

    @Test func stopsAfterMaxSteps() {
        let result = search(start: 4, max: 2048, steps: 2, limit: 1000)
        #expect(result.steps == [4, 8])
        #expect(result.cappedAt == 8)
    }

    @Test func nothingServedHalvesDownToOne() {
        let result = search(start: 16, max: 2048, steps: 12, limit: 0)
        #expect(result.steps == [16, 8, 4, 2, 1])
        #expect(result.passed == 0)
        #expect(result.firstFailure == 1)
    }

    @Test func recordAfterTheEndChangesNothing() {
        var result = search(start: 16, max: 16, steps: 12, limit: 100)
        let before = result
        result.record(passed: false)
        #expect(result == before)
    }
}

@Suite struct AmdahlAndPercentileTests {
    @Test func amdahl() {
        #expect(amdahlSpeedup(f: 0, s: 10) == 1)
        #expect(amdahlSpeedup(f: 1, s: 4) == 4)
        #expect(abs(amdahlSpeedup(f: 0.5, s: 2) - 4.0 / 3.0) < 1e-12)
        #expect(amdahlSpeedup(f: 0.25, s: 1) == 1)
    }

    @Test func percentiles() {
        #expect(percentile([5, 1, 3], 0.5) == 3)
        #expect(percentile([4, 1, 3, 2], 0.5) == 3)  // the upper median
        #expect(percentile([4, 1, 3, 2], 1) == 4)
        #expect(percentile([4, 1, 3, 2], 0) == 1)
        #expect(percentile([7, 9, 8, 1, 2, 3, 4, 5, 6, 10], 0.99) == 10)
        #expect(percentile([Int](), 0.5) == nil)
    }
}

@Suite struct RunResultTests {
    /// A 2-second window: 100 ticks/s; the SFU ran 0.8 s (schedstat) and was sampled in 50 user +
    /// 30 system ticks; its CPU (1) had 20 softirq ticks; it received 1000 packets and sent 4000
    /// copies, spent 0.6 s busy, 0.3 s in send calls; three clients.
    func window(kind: String, userTicks: UInt64 = 50, systemTicks: UInt64 = 30) -> RunResult {
        let first = ProcSample(time: 10, user: 100, system: 50, runTime: 5_000_000_000, softirq: [0: 5, 1: 10], runDelay: 1_000_000)
        let second = ProcSample(
            time: 12, user: 100 + userTicks, system: 50 + systemTicks, runTime: 5_800_000_000, softirq: [0: 15, 1: 30], runDelay: 21_000_000)
        let statsFirst = SFUSnapshot(received: 500, copies: 2000, dropped: 1, sendNs: 100_000_000, busyNs: 200_000_000,
                                     delayCount: 500, delaySum: 5_000_000)
        let statsSecond = SFUSnapshot(received: 1500, copies: 6000, dropped: 3, sendNs: 400_000_000, busyNs: 800_000_000,
                                      delayCount: 1500, delaySum: 25_000_000)
        let final = SFUSnapshot(p50: 12_000, p99: 40_000, max: 90_000)
        let clients = [
            ClientStats(sent: 300, echoed: 297, received: 590, lost: 10),
            ClientStats(sent: 300, echoed: 300, received: 600, lost: 0),
            ClientStats(sent: 300, echoed: 300, received: 600, lost: 0),
        ]
        return RunResult(
            kind: kind, backend: .sendmmsg, sessionClients: 3, rate: 150, first: first, second: second,
            statsFirst: statsFirst, statsSecond: statsSecond, final: final, clients: clients,
            sfuCPU: 1, clientCPU: 0, loadBefore: 0.5, loadAfter: 0.7, ticksPerSecond: 100)
    }

    @Test func cpuAndSoftirqArePercentOfOneCPUOverTheWindow() {
        let r = window(kind: "grid")
        #expect(r.windowSeconds == 2)
        #expect(r.cpuUser == 25)  // 50 ticks / 100 per s / 2 s
        #expect(r.cpuSystem == 15)
        #expect(r.cpuSoftirq == 10)  // CPU 1: 20 ticks
        #expect(r.cpuSoftirqClientCPU == 5)  // CPU 0: 10 ticks
        #expect(r.runqueueWait == 1)  // 20 ms of 2 s
    }

    /// The run time is the CPU (ns); the ticks only split it into user and system.
    @Test func cpuIsTheRunTimeWhateverTheTicksSampled() {
        let r = window(kind: "grid", userTicks: 5, systemTicks: 0)
        #expect(r.cpuUser == 40 && r.cpuSystem == 0)  // 0.8 s of 2 s, all user by the ticks
        #expect(r.cpuNsPerCopy == 200_000)  // 0.8 s / 4000 copies
        let unsampled = window(kind: "grid", userTicks: 0, systemTicks: 0)
        #expect(unsampled.cpuUser == 0 && unsampled.cpuSystem == 40)
    }

    @Test func countersArePerWindowAndPerPacket() {
        let r = window(kind: "grid")
        #expect(r.received == 1000 && r.copies == 4000 && r.dropped == 2)
        #expect(r.sendShare == 0.5)  // 0.3 s of 0.6 s busy
        #expect(r.cpuNsPerPacket == 800_000)  // 0.8 s CPU / 1000
        #expect(r.cpuNsPerCopy == 200_000)
        #expect(r.busyNsPerPacket == 600_000)
        #expect(r.delayMean == 20)  // 20 ms over 1000 packets, in µs
        #expect(r.delayP50 == 12 && r.delayP99 == 40 && r.delayMax == 90)
    }

    @Test func gridCountsEchoesAndCapacityDoesNot() {
        let grid = window(kind: "grid")
        // expected: heard 1790 + lost 10 + sent 900; delivered: heard + echoed 897.
        #expect(grid.expectedCopies == 2700 && grid.deliveredCopies == 2687)
        #expect(abs(grid.deliveredRatio - 2687.0 / 2700.0) < 1e-12)
        #expect(abs(grid.lossPercent - 100 * 10.0 / 1800.0) < 1e-12)
        let capacity = window(kind: "capacity")
        #expect(capacity.expectedCopies == 1800 && capacity.deliveredCopies == 1790)
    }

    @Test func fitsArePerBackendOverGridRunsOnly() {
        var runs = [window(kind: "grid"), window(kind: "capacity")]
        runs[1].delayP50 = 1000
        var other = window(kind: "grid")
        other.backend = "socket"
        other.clients = 6
        other.fanout = 6
        other.delayP50 = 30
        var third = other
        third.fanout = 9
        third.delayP50 = 45
        runs += [other, third]
        let fits = SFUBench.fits(runs)
        #expect(fits.map(\.backend) == ["sendmmsg", "socket"])
        #expect(fits[0].points == 1 && fits[1].points == 2)
        #expect(abs(fits[1].bP50 - 5) < 1e-12 && abs(fits[1].aP50) < 1e-12)
    }

    @Test func csvHasOneRowPerRunAndAColumnPerHeader() {
        let csv = SFUBench.csv([window(kind: "grid"), window(kind: "capacity")])
        let lines = csv.split(separator: "\n")
        #expect(lines.count == 3)
        let columns = lines[0].split(separator: ",").count
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == columns })
    }
}

@Suite struct BenchPlanTests {
    @Test func quickShrinksTheRunAndDefaultsFollowTheMachine() {
        var plan = BenchPlan()
        plan.backends = [.socket, .sendmmsg, .socket]
        plan.rates = [1500, 750]
        plan.sizes = [.vhq: 500]
        plan.quick = true
        let resolved = plan.resolved(repository: "/repo", onlineCPUs: 4)
        #expect(resolved.backends == [.socket, .sendmmsg])
        #expect(resolved.clients == [3] && resolved.rates == [1500])
        #expect(resolved.capacitySteps == 2 && resolved.capacityStart == 4)
        #expect(resolved.sizes == [.asq: 80, .vsq: 160, .vhq: 500])
        #expect(resolved.sfuCPU == 3 && resolved.clientCPU == 0)
        #expect(resolved.micro == "/repo/Docs/benchmarks/data/send-host.json")
        #expect(resolved.out?.hasPrefix("/repo") == false)  // quick results go to a temporary directory
        let full = BenchPlan().resolved(repository: "/repo", onlineCPUs: 1)
        #expect(full.out == "/repo/Docs/benchmarks/data")
        #expect(full.sfuCPU == nil && full.clientCPU == nil)
        #expect(abs(full.interval(rate: 1500) - 0.002) < 1e-12)
    }
}

@Suite struct DemoTableTests {
    @Test func dropsAreNamedByReasonUnderTheTable() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("demo-table-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let json = #"{"received":10,"forwarded":20,"echoed":10,"participants":3,"authenticated":true,"delay_ns":{"count":10,"sum":1000,"p50":100,"p99":200,"max":300},"dropped":{"unknown_ssrc":3,"send_failed":1,"vlan":0}}"#
        #expect(FileManager.default.createFile(atPath: path, contents: Data(json.utf8)))
        let sfu = try #require(SFUSnapshot.load(path))
        #expect(sfu.dropped == 4)
        #expect(sfu.dropsByReason == ["unknown_ssrc": 3, "send_failed": 1])
        let table = DemoResult.table([DemoResult(backend: .ring, nodes: [.init(name: nil, sfu: sfu, clients: [])])])
        #expect(table.contains("\nring dropped: send_failed 1, unknown_ssrc 3"))
        let clean = DemoResult.table([DemoResult(backend: .ring, nodes: [.init(name: nil, sfu: SFUSnapshot(), clients: [])])])
        #expect(!clean.contains("dropped:"))
        // A cluster run: a row and a drop line per node, named.
        let cluster = DemoResult.table([DemoResult(backend: .sendmmsg, nodes: [
            .init(name: "node1", sfu: sfu, clients: []), .init(name: "node2", sfu: SFUSnapshot(), clients: []),
        ])])
        #expect(cluster.contains("\nsendmmsg/node1 ") && cluster.contains("\nsendmmsg/node2 "))
        #expect(cluster.contains("\nsendmmsg/node1 dropped: send_failed 1, unknown_ssrc 3") && !cluster.contains("node2 dropped"))
    }

    /// The demo's relay trees: redis-cli's lines (SSRC OWNER-NODE ROOM ID TYPE CHILD PARENT STATE)
    /// to each node's hops from the origin and its parents.
    @Test func relayTreesGiveEachNodeItsHops() throws {
        let output = """
            12 node1 demo 1 vhq node2 node1 ready
            12 node1 demo 1 vhq node3 node2 ready
            11 node1 demo 1 asq node3 node1 ready
            11 node1 demo 1 asq node2 node3 ready
            13 node1 demo 1 vsq node2 node1 pending
            not an edge
            """
        let trees = RelayTree.parse(output)
        #expect(trees.map(\.ssrc) == ["11", "12", "13"])
        #expect(trees[1].hops(to: "node1") == 0 && trees[1].hops(to: "node2") == 1 && trees[1].hops(to: "node3") == 2)
        #expect(trees[2].pending == 1 && trees[2].hops(to: "node2") == nil)  // pending: not in the tree yet
        #expect(RelayTree.place(of: "node3", in: trees) == ("1,2", "node1,node2"))
        #expect(RelayTree.place(of: "node1", in: trees) == ("0", "-"))
        #expect(RelayTree.place(of: "node4", in: trees) == ("-", "-"))
        #expect("\(trees[1])" == "relay tree vhq 12 (origin node1): node1 -> node2, node2 -> node3")
        // A corrupted tree that loops ends, unplaced.
        let loop = RelayTree(ssrc: "9", origin: "node1", participant: "1", type: "asq", parents: ["node2": "node3", "node3": "node2"])
        #expect(loop.hops(to: "node2") == nil)
    }

    @Test func clusterTableCountsCopiesByKindAndCPUOverTheClientsWindow() throws {
        var sfu = SFUSnapshot(received: 6000, copies: 132_000, dropped: 0)
        (sfu.forwarded, sfu.relayed, sfu.echoed) = (120_000, 6000, 6000)
        let first = ProcSample(time: 10, user: 100, system: 100, runTime: 1_000_000_000, softirq: [:], runDelay: 0)
        let second = ProcSample(time: 12, user: 130, system: 110, runTime: 1_264_000_000, softirq: [:], runDelay: 0)
        let node = DemoResult.Node(name: "node1", sfu: sfu, cpu: CPUWindow(from: first, to: second), clients: [])
        #expect(abs((node.cpu?.percent ?? 0) - 13.2) < 1e-9 && node.cpu?.userShare == 0.75)
        #expect(node.cpuPerCopy == 2)  // 264 ms over 132000 copies
        let trees = RelayTree.parse("7 node1 demo 1 asq node2 node1 ready")
        let table = DemoResult.table([DemoResult(backend: .sendmmsg, nodes: [node], relayTrees: trees, silentTrees: 4)])
        let row = try #require(table.split(separator: "\n").first { $0.hasPrefix("sendmmsg/node1 ") && $0.contains("120000") })
        #expect(row.split(separator: " ").map(String.init) == [
            "sendmmsg/node1", "0", "-", "6000", "120000", "6000", "6000", "0", "13.2", "2.00", "0.0", "0.0", "-", "-",
        ])
        #expect(table.contains("\nsendmmsg relay tree asq 7 (origin node1): node1 -> node2"))
        #expect(trees.first?.originKey == "node1/1")
        #expect(table.contains("\nsendmmsg: 4 more relay trees of streams no client sent on"))
    }
}
