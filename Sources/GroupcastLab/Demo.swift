#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastAuth
import GroupcastCommandLine
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// The demo (`groupcast-lab demo`, `make demo`): a throw-away ``Topology``, the SFU and its
/// clients in it, a live status line, a final table; everything it created is removed at the end,
/// on Ctrl-C, and on failure. With ``nodes`` set the SFU is a cluster (Docs/cluster.md): that many
/// `groupcast sfu --cluster` nodes and a redis-server, each in a namespace of its own on one bridge
/// (``Topology/cluster(nodes:)``), the client hosts spread over the nodes.
public struct Demo {
    public var clients = 3
    public var participants = 1
    /// nil: one SFU, a namespace per client host. N: a cluster of N nodes (1: a cluster of one,
    /// for comparing with more), the client hosts in the nodes' namespaces.
    public var nodes: Int?
    /// A broadcast instead of a conference: client host 1 is one speaker (on node 1) sending
    /// every stream type and receiving none; the other hosts are its audience, sending nothing.
    public var broadcast = false
    /// With ``nodes``: every node's `groupcast sfu --relay-fanout` (the most nodes it sends a
    /// stream to in a relay tree; 0: no limit, 1: chains). nil: the SFU's default (0, a star
    /// from each stream's origin node).
    public var relayFanout: Int?
    public var duration: Duration = .seconds(10)
    public var interval: Duration = .milliseconds(4)
    public var receive: StreamSet = .all
    public var backends: [ForwarderBackend] = [.fastestAvailable]
    /// Run the SFU with authentication: a fresh key per backend, one join token per participant
    /// (Docs/protocol.md, "Join tokens"); false runs it open.
    public var auth = true

    public init() {}

    static let redisServer = "/usr/bin/redis-server"

    /// Runs every backend in turn and prints the table.
    ///
    /// - Throws: ``LabError`` (`.interrupted` after SIGINT/SIGTERM, with everything removed).
    public func run() throws(LabError) {
        if relayFanout != nil && nodes == nil { throw .failed("--relay-fanout needs --nodes (it is a cluster node's option)") }
        guard geteuid() == 0 else {
            throw .failed("needs root: it creates network namespaces and veth links (run it with sudo)")
        }
        let groupcast = try GroupcastExecutable()
        if let nodes {
            guard FileManager.default.isExecutableFile(atPath: Self.redisServer) else {
                throw .missingExecutable("--nodes \(nodes): the cluster needs \(Self.redisServer) (apt-get install redis-server)")
            }
            if let backend = backends.first(where: \.needsInterface) {
                throw .failed("--nodes \(nodes): media between nodes runs on the socket, sendmmsg and sendgroup backends, not \(backend) (Docs/cluster.md)")
            }
            guard clients >= nodes + (broadcast ? 1 : 0) else {
                throw .failed("--nodes \(nodes) needs a client host per node or more (and one for the speaker with --broadcast)")
            }
        }
        let topology = nodes.map { Topology.cluster(nodes: $0) } ?? Topology.sfuStar(clients: clients)
        let layout = nodes.map { DemoLayout.cluster(topology, nodes: $0, clients: clients, broadcast: broadcast, relayFanout: relayFanout) }
            ?? DemoLayout.star(topology, clients: clients)
        let logs = RunDirectory(prefix: Topology.starPrefix)
        Topology.removeStale()
        let stop = StopSignal()
        var results: [DemoResult] = []
        var failure: String?
        var redis = ProcessGroup()
        do {
            try logs.create()
            try topology.create()
            say("topology \(Topology.starPrefix): \(layout.description)")
            if nodes != nil { try startRedis(in: topology, logs: logs, processes: &redis) }
            say(auth ? "authentication on: a fresh key per backend, one join token per participant (--no-auth: open SFU)" : "authentication off (--no-auth): the SFU is open")
            for backend in backends {
                guard !stop.received else { break }
                results.append(try runOnce(backend: backend, layout: layout, logs: logs, stop: stop, groupcast: groupcast))
            }
        } catch {
            failure = "\(error)"
        }
        redis.terminateAll()
        topology.destroy()
        logs.remove()
        if !results.isEmpty { say("\n" + DemoResult.table(results)) }
        if let failure { throw .failed(failure) }
        if stop.received {
            throw .interrupted("interrupted (\(stop.signalName ?? "signal")): everything the demo created was removed")
        }
        say("removed namespaces and links \(Topology.starPrefix)-*")
    }

    /// redis-server in the cluster's hub namespace, on the bridge's address (the nodes reach it
    /// there and nothing else does, hence no protected mode), without persistence; returns once
    /// it answers PING.
    func startRedis(in topology: Topology, logs: RunDirectory, processes: inout ProcessGroup) throws {
        let namespace = topology.hubName ?? "", address = topology.redisAddress
        let redis = try processes.start(
            ["/usr/sbin/ip", "netns", "exec", namespace, Self.redisServer, "--bind", address, "--port", "6379", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--dir", logs.path, "--logfile", ""],
            output: logs.path + "/redis.log")
        let deadline = Date().addingTimeInterval(10)
        while (try? Topology.ip(["netns", "exec", namespace, "/usr/bin/redis-cli", "-h", address, "PING"]))?.hasPrefix("PONG") != true {
            guard redis.isRunning else { throw LabError.processFailed("redis-server exited", logs.tail("redis.log")) }
            guard Date() < deadline else { throw LabError.processFailed("redis-server did not answer PING in 10 s", logs.tail("redis.log")) }
            usleep(20_000)
        }
        say("redis-server \(address):6379 in namespace \(namespace)")
    }

    func runOnce(backend: ForwarderBackend, layout: DemoLayout, logs: RunDirectory, stop: StopSignal, groupcast: GroupcastExecutable) throws -> DemoResult {
        var processes = ProcessGroup()
        defer { processes.terminateAll() }
        // With authentication: a key for this run (every node checks tokens with it) and a
        // token file per client host.
        var sfuAuth: [String] = []
        var clientAuth: [Int: [String]] = [:]
        if auth {
            let issuer = try TokenIssuer(keyPath: logs.path + "/key-\(backend)")
            sfuAuth = ["--auth-key-file", issuer.keyPath]
            for index in layout.hosts.indices {
                let path = logs.path + "/tokens-\(backend)-\(index + 1)"
                try issuer.writeTokens(room: "demo", identityPrefix: "host\(index + 1)", count: participants(host: index), to: path)
                clientAuth[index] = ["--token-file", path]
            }
        }
        var sfus: [Process] = []
        for node in layout.nodes {
            let statsFile = logs.path + "/\(node.name)-\(backend).json", log = "\(node.name)-\(backend).log"
            let sfu = try processes.start(
                groupcast.sfu(namespace: node.namespace, backend: backend, statsFile: statsFile, statsInterval: "250ms",
                              capacity: clients * participants + 8, options: sfuAuth + node.options),
                output: logs.path + "/" + log)
            switch groupcast.waitUntilUp(sfu, statsFile: statsFile, within: 10, stop: stop) {
            case .up: break
            case .exited: throw LabError.processFailed("SFU \(node.name)", logs.tail(log))
            case .timedOut: throw LabError.processFailed("SFU \(node.name) did not start in 10 s", logs.tail(log))
            case .interrupted: return DemoResult(backend: backend, nodes: [])
            }
            // What the SFU says it runs with, not what it was asked to: tokens checked or not.
            guard let first = SFUSnapshot.load(statsFile), first.authenticated == auth else {
                throw LabError.failed("the SFU \(node.name) (\(backend)) does not report authentication \(auth ? "on" : "off") in \(statsFile)")
            }
            sfus.append(sfu)
        }
        let statsFiles = layout.nodes.map { logs.path + "/\($0.name)-\(backend).json" }
        // Each SFU's CPU while the clients run: its threads' run time (schedstat), as `bench sfu`.
        let firstSamples = sfus.map { ProcSample.take(pid: $0.processIdentifier) }
        var clientProcesses: [Process] = []
        for (index, host) in layout.hosts.enumerated() {
            let speaker = broadcast && index == 0
            let roles = broadcast ? ["--send", speaker ? "all" : "none"] : []
            clientProcesses.append(try processes.start(
                groupcast.client(namespace: host.namespace, sfu: host.sfu, local: host.local, participants: participants(host: index),
                                 seconds: duration.seconds, interval: interval.seconds, receive: speaker ? "none" : receive.description,
                                 report: logs.path + "/client-\(backend)-\(index + 1).json", options: roles + (clientAuth[index] ?? [])),
                output: logs.path + "/client-\(backend)-\(index + 1).log"))
        }
        let start = Date()
        let softirqStart = DemoResult.softirqTicks()
        var previous: (Date, [SFUSnapshot])?
        var relayTrees: [RelayTree]?
        while clientProcesses.contains(where: \.isRunning) {
            if stop.received { break }
            // The relay trees once, halfway (they are deleted when the senders leave at the end).
            if relayTrees == nil, let redis = layout.redis, layout.nodes.count > 1, Date().timeIntervalSince(start) >= duration.seconds / 2 {
                relayTrees = RelayTree.read(namespace: redis.namespace, address: redis.address)
            }
            for (node, sfu) in zip(layout.nodes, sfus) where !sfu.isRunning {
                throw LabError.processFailed("SFU \(node.name) exited", logs.tail("\(node.name)-\(backend).log"))
            }
            let now = Date(), stats = statsFiles.compactMap { SFUSnapshot.load($0) }
            if stats.count == statsFiles.count {
                let seconds = previous.map { now.timeIntervalSince($0.0) } ?? 0
                func rates(_ node: Int) -> String {
                    guard let earlier = previous?.1[node], seconds > 0 else { return "" }
                    let now = stats[node]
                    return String(format: " in %.0f/s out %.0f/s", Double(now.received - min(now.received, earlier.received)) / seconds,
                                  Double(now.copies - min(now.copies, earlier.copies)) / seconds)
                }
                var line = String(format: "\r[%@] %4.1fs/%.0fs", backend.rawValue, now.timeIntervalSince(start), duration.seconds)
                if let only = stats.first, stats.count == 1 {
                    line += String(
                        format: " participants %d%@ dropped %llu delay p50 %.1f p99 %.1f us cpu %.1f%%", only.participants, rates(0), only.dropped,
                        Double(only.p50) / 1000, Double(only.p99) / 1000, only.cpuUser + only.cpuSystem)
                } else {
                    // One short field per node, so three nodes fit a terminal line.
                    for (index, node) in layout.nodes.enumerated() {
                        line += String(format: " | %@%@ cpu %.0f%%", node.name, rates(index), stats[index].cpuUser + stats[index].cpuSystem)
                    }
                    line += " | dropped \(stats.reduce(0) { $0 + $1.dropped })"
                }
                FileHandle.standardOutput.write(Data((line + "   ").utf8))
                previous = (now, stats)
            }
            usleep(250_000)
        }
        say("")
        if stop.received {
            // Interrupted: the clients stop sending, report what they have, and leave.
            for process in clientProcesses where process.isRunning { process.interrupt() }
        }
        for (index, process) in clientProcesses.enumerated() {
            process.waitUntilExit()
            if process.terminationStatus != 0 && !stop.received {
                throw LabError.processFailed("client \(index + 1) exited \(process.terminationStatus)", logs.tail("client-\(backend)-\(index + 1).log"))
            }
        }
        let lastSamples = sfus.map { ProcSample.take(pid: $0.processIdentifier) }
        for sfu in sfus { sfu.interrupt() }  // SIGINT: clean shutdown (a node leaves the cluster), final statistics
        let deadline = Date().addingTimeInterval(5)
        while sfus.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        var softirq: Double?
        if let softirqStart, let softirqEnd = DemoResult.softirqTicks() {
            let seconds = Date().timeIntervalSince(start)
            softirq = seconds > 0 ? 100 * Double(softirqEnd - softirqStart) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds : nil
        }
        let received = Set(receive.types.map(\.description))
        let nodes = layout.nodes.enumerated().map { index, node in
            DemoResult.Node(
                name: layout.isCluster ? node.name : nil, sfu: SFUSnapshot.load(statsFiles[index]),
                cpu: firstSamples[index].flatMap { first in lastSamples[index].map { CPUWindow(from: first, to: $0) } },
                clients: layout.hosts.indices.filter { layout.hosts[$0].node == index }.compactMap {
                    ClientStats.load(logs.path + "/client-\(backend)-\($0 + 1).json", receiving: broadcast && $0 == 0 ? [] : received)
                })
        }
        let senders = broadcast ? 1 : layout.hosts.indices.reduce(0) { $0 + participants(host: $1) }
        // Every registered participant has streams and trees, a silent audience's too: keep the
        // trees of the streams the clients sent on (`NODE/ID` of their participants).
        var sending = Set<String>()
        for index in layout.hosts.indices where !broadcast || index == 0 {
            let node = layout.nodes[layout.hosts[index].node].name
            for id in ClientStats.load(logs.path + "/client-\(backend)-\(index + 1).json")?.participants ?? [] { sending.insert("\(node)/\(id)") }
        }
        return DemoResult(backend: backend, nodes: nodes, otherParticipants: senders - (broadcast ? 0 : 1), softirqPercent: softirq,
                          seconds: Date().timeIntervalSince(start), relayTrees: relayTrees?.filter { sending.contains($0.originKey) },
                          silentTrees: relayTrees.map { trees in trees.count { tree in !sending.contains(tree.originKey) } } ?? 0)
    }

    /// Participants of client host `index` (0-based): one speaker in a broadcast, else ``participants``.
    func participants(host index: Int) -> Int { broadcast && index == 0 ? 1 : participants }
}

/// Where the demo runs its SFU nodes and its client hosts (namespaces, addresses, options).
struct DemoLayout {
    struct Node {
        var name: String
        var namespace: String
        /// The node's own `groupcast sfu` options (addresses, cluster membership).
        var options: [String]
    }

    struct ClientHost {
        /// Index into ``nodes`` of the SFU it joins.
        var node: Int
        var namespace: String
        /// The SFU's control address (`IP:PORT`) and the client's own IP.
        var sfu: String
        var local: String
    }

    var nodes: [Node]
    var hosts: [ClientHost]
    var description: String
    /// Cluster nodes (named in the table), not the one SFU of a star.
    var isCluster = false
    /// The cluster's redis-server: the namespace it runs in and its address there.
    var redis: (namespace: String, address: String)?

    /// One SFU in the star's hub (default addresses), a client host per spoke.
    static func star(_ topology: Topology, clients: Int) -> DemoLayout {
        DemoLayout(
            nodes: [Node(name: "sfu", namespace: topology.sfuNamespace, options: [])],
            hosts: (1...clients).map {
                ClientHost(node: 0, namespace: topology.clientNamespace($0), sfu: "\(topology.sfuAddress(client: $0)):7000", local: topology.clientAddress($0))
            },
            description: "SFU namespace \(topology.sfuNamespace), \(clients) client namespaces, veth 10.199.N.1 <-> 10.199.N.2, no default route")
    }

    /// `nodes` cluster nodes, one per spoke of ``Topology/cluster(nodes:)``, each joining the
    /// Redis on the hub; client host N runs in node ((N-1) mod nodes)+1's namespace, on its
    /// address; in a broadcast host 1 (the speaker) on node 1 and the audience's hosts round robin.
    static func cluster(_ topology: Topology, nodes: Int, clients: Int, broadcast: Bool = false, relayFanout: Int? = nil) -> DemoLayout {
        let redis = "redis://\(topology.redisAddress):6379"
        return DemoLayout(
            nodes: (1...nodes).map { index in
                let address = topology.nodeAddress(index)
                return Node(
                    name: "node\(index)", namespace: topology.nodeNamespace(index),
                    options: ["--control", "\(address):7000", "--media", "\(address):7002", "--cluster", redis, "--node", "node\(index)",
                              "--advertise", "\(address):7002"] + (relayFanout.map { ["--relay-fanout", "\($0)"] } ?? []))
            },
            hosts: (0..<clients).map { index in
                let node = broadcast ? max(index - 1, 0) % nodes : index % nodes
                return ClientHost(node: node, namespace: topology.nodeNamespace(node + 1), sfu: "\(topology.nodeAddress(node + 1)):7000", local: topology.nodeAddress(node + 1))
            },
            description: "\(nodes) SFU node(s) (namespaces \(Topology.starPrefix)-node1...\(nodes), 10.198.0.11...\(10 + nodes)) and redis-server (\(Topology.starPrefix)-redis, 10.198.0.1) on one bridge, no default route; \(clients) client hosts spread over the nodes\(relayFanout.map { ", relay fan-out \($0)" } ?? "")",
            isCluster: true, redis: (topology.hubName ?? "", topology.redisAddress))
    }
}

/// One backend's outcome: each SFU node's final statistics and its clients' reports.
struct DemoResult {
    struct Node {
        /// nil for the one SFU of a single-node run.
        var name: String?
        var sfu: SFUSnapshot?
        /// The SFU's CPU from its clients' start to their end (nil: not sampled).
        var cpu: CPUWindow? = nil
        var clients: [ClientStats]

        /// Its run time while the clients ran over the copies it sent (all of them are sent then), us.
        var cpuPerCopy: Double? {
            guard let cpu, let copies = sfu?.copies, copies > 0 else { return nil }
            return cpu.runNanoseconds / 1000 / Double(copies)
        }
    }

    var backend: ForwarderBackend
    var nodes: [Node]
    /// Other participants every participant should receive (each stream type): the run's participants but itself.
    var otherParticipants = 0
    /// Softirq time of the whole machine (every CPU) while the clients ran, percent of one CPU.
    var softirqPercent: Double? = nil
    /// From the clients' start to the SFUs' exit.
    var seconds: Double = 0
    /// A cluster's relay trees as Redis held them halfway through (nil: not read, one node).
    var relayTrees: [RelayTree]? = nil
    /// Trees of streams no client sent on (a silent participant's streams have trees too), left out.
    var silentTrees = 0

    /// The `softirq` column of `/proc/stat`'s `cpu` line (all CPUs), in clock ticks.
    static func softirqTicks() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        // cpu user nice system idle iowait irq softirq ...
        let fields = line.split(separator: " ")
        return fields.count > 7 ? UInt64(fields[7]) : nil
    }

    /// One row per backend and node (`backend` or `backend/node`).
    static func table(_ results: [DemoResult]) -> String {
        var lines = ["backend    pkts-in  pkts-out  dropped  sfu-p50us  sfu-p99us  sfu-maxus  cpu-user%  cpu-sys%  rtt-p50us  rtt-p99us  echo-loss%  loss%  softirq%  owd-p50us  owd-p99us  sources  cpu-us/copy"]
        for result in results {
            if result.nodes.isEmpty { lines.append(pad(result.backend.rawValue, 9) + "  (no statistics: interrupted before the SFU reported)") }
            for node in result.nodes {
                let label = result.backend.rawValue + (node.name.map { "/" + $0 } ?? "")
                guard let sfu = node.sfu else {
                    lines.append(pad(label, 9) + "  (no statistics: interrupted before the SFU reported)")
                    continue
                }
                let clients = node.clients
                let sent = clients.reduce(0) { $0 + $1.sent }, echoed = clients.reduce(0) { $0 + $1.echoed }
                let received = clients.reduce(0) { $0 + $1.received }, lost = clients.reduce(0) { $0 + $1.lost }
                func percent(_ part: UInt64, _ whole: UInt64) -> String { whole == 0 ? "-" : String(format: "%.2f", 100 * Double(part) / Double(whole)) }
                // The fewest other participants' streams any participant of this node received, of those it should.
                let sources = clients.compactMap(\.fewestSources).min().map { "\($0)/\(result.otherParticipants)" } ?? "-"
                lines.append([
                    pad(label, 9, left: true), pad("\(sfu.received)", 8), pad("\(sfu.copies)", 9), pad("\(sfu.dropped)", 8),
                    pad(microseconds(sfu.p50), 10), pad(microseconds(sfu.p99), 10), pad(microseconds(sfu.max), 10), pad(decimal(node.cpu?.userPercent, 1), 10),
                    pad(decimal(node.cpu?.systemPercent, 1), 9), pad(microseconds(percentile(clients.flatMap(\.rttP50), 0.5) ?? 0), 10),
                    pad(microseconds(percentile(clients.flatMap(\.rttP99), 1) ?? 0), 10),
                    pad(percent(sent - min(sent, echoed), sent), 11), pad(percent(lost, received + lost), 6),
                    pad(result.softirqPercent.map { String(format: "%.1f", $0) } ?? "-", 9),
                    pad(microseconds(percentile(clients.flatMap(\.delayP50), 0.5) ?? 0), 10), pad(microseconds(percentile(clients.flatMap(\.delayP99), 1) ?? 0), 10),
                    pad(sources, 8), pad(decimal(node.cpuPerCopy, 2), 12),
                ].joined(separator: " "))
            }
        }
        // A drop is named, not only counted: which reason, on which backend and node.
        for result in results {
            for node in result.nodes {
                guard let sfu = node.sfu, !sfu.dropsByReason.isEmpty else { continue }
                let reasons = sfu.dropsByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                lines.append("\(result.backend.rawValue)\(node.name.map { "/" + $0 } ?? "") dropped: \(reasons.joined(separator: ", "))")
            }
        }
        lines.append("sfu-*: the SFU's per-packet processing delay (receive to last copy scheduled); rtt-*: client -> SFU -> client (echo), median of per-stream p50 and worst p99; owd-*: one-way delay of the other participants' streams (send stamp to arrival, one clock), same aggregation; sources: the fewest other participants' streams of a received type any participant got, of all; cpu: the SFU process's threads' run time (schedstat) while the clients ran, split into user and system by its utime/stime ticks (cpu-us/copy: that time over the copies it sent, idle time included); softirq: the whole machine while the clients ran (% of one CPU).")
        if results.contains(where: { $0.nodes.contains { $0.name != nil } }) {
            lines.append("cluster: each node's row counts its own SFU and the clients that joined it; pkts-in includes the copies other nodes relayed to it (one per stream), pkts-out the copies it relayed to them.")
            lines.append("")
            lines.append(clusterTable(results))
        }
        return lines.joined(separator: "\n")
    }

    /// Per cluster node: its place in the relay trees and its copies by kind, from the SFU's
    /// counters (`relayed` counted by the SFU, not implied), with the CPU and delays of the main table.
    static func clusterTable(_ results: [DemoResult]) -> String {
        var lines = ["node            hops  parent       pkts-in  forwarded   relayed   echoed  dropped   cpu%  cpu-us/copy  sfu-p50us  sfu-p99us  owd-p50us  owd-p99us"]
        for result in results {
            for node in result.nodes {
                guard let name = node.name, let sfu = node.sfu else { continue }
                let place = result.relayTrees.map { RelayTree.place(of: name, in: $0) }
                lines.append([
                    pad(result.backend.rawValue + "/" + name, 14, left: true), pad(place?.hops ?? "-", 5), pad(place?.parents ?? "-", 12, left: true),
                    pad("\(sfu.received)", 8), pad("\(sfu.forwarded)", 10), pad("\(sfu.relayed)", 9), pad("\(sfu.echoed)", 8), pad("\(sfu.dropped)", 8),
                    pad(decimal(node.cpu?.percent, 1), 6), pad(decimal(node.cpuPerCopy, 2), 12), pad(microseconds(sfu.p50), 10), pad(microseconds(sfu.p99), 10),
                    pad(microseconds(percentile(node.clients.flatMap(\.delayP50), 0.5)), 10), pad(microseconds(percentile(node.clients.flatMap(\.delayP99), 1)), 10),
                ].joined(separator: " "))
            }
            for tree in result.relayTrees ?? [] { lines.append("\(result.backend.rawValue) \(tree)") }
            if result.silentTrees > 0 {
                lines.append("\(result.backend.rawValue): \(result.silentTrees) more relay trees of streams no client sent on (silent participants'), not listed nor counted in hops")
            }
        }
        lines.append("hops: how far the node is from each sent stream's origin node in its relay tree (0: the origin; several: the trees differ); parent: who sends it the streams; forwarded: copies to its own participants, relayed: to other nodes, echoed: to the senders; cpu%: run time while the clients ran (% of one CPU).")
        return lines.joined(separator: "\n")
    }
}

/// A `groupcast client --json-output` report, summed over its streams.
struct ClientStats {
    var sent: UInt64 = 0, echoed: UInt64 = 0, received: UInt64 = 0, lost: UInt64 = 0
    /// The participants' ids on their SFU.
    var participants: Set<UInt32> = []
    var rttP50: [UInt64] = [], rttP99: [UInt64] = []
    var delayP50: [UInt64] = [], delayP99: [UInt64] = []
    /// The fewest other participants' streams of one type (among those received) a participant got.
    var fewestSources: Int?

    /// `receiving`: the names of the stream types the participants asked for (`ASQ`, ...).
    static func load(_ path: String, receiving: Set<String> = []) -> ClientStats? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let streams = json["streams"] as? [[String: Any]]
        else { return nil }
        var stats = ClientStats()
        for row in streams {
            func u(_ key: String) -> UInt64 { (row[key] as? NSNumber)?.uint64Value ?? 0 }
            stats.participants.insert(UInt32(truncatingIfNeeded: u("participant")))
            stats.sent += u("sent")
            stats.echoed += u("echoed")
            stats.received += u("received")
            stats.lost += u("lost")
            if u("echoed") > 0 {
                stats.rttP50.append(u("rtt_p50_ns"))
                stats.rttP99.append(u("rtt_p99_ns"))
            }
            if u("received") > 0 {
                stats.delayP50.append(u("delay_p50_ns"))
                stats.delayP99.append(u("delay_p99_ns"))
            }
            if let type = row["stream"] as? String, receiving.contains(type) {
                let sources = Int(u("sources"))
                stats.fewestSources = min(stats.fewestSources ?? sources, sources)
            }
        }
        return stats
    }
}

/// `value` with `places` decimals, `-` for nil.
func decimal(_ value: Double?, _ places: Int) -> String {
    value.map { String(format: "%.\(places)f", $0) } ?? "-"
}

/// Nanoseconds as microseconds with one decimal, `-` for nil.
func microseconds(_ ns: UInt64?) -> String {
    decimal(ns.map { Double($0) / 1000 }, 1)
}

/// One stream's relay tree in Redis (Docs/cluster.md, "Relay trees"): its ready edges.
struct RelayTree: CustomStringConvertible {
    var ssrc: String
    /// The stream's origin node, its participant there and the type, from the SSRC's claim.
    var origin: String
    var participant: String
    var type: String
    /// Child node -> parent node, ready edges only.
    var parents: [String: String]
    /// Edges not yet confirmed by their child.
    var pending = 0

    /// Every relay tree of the cluster (key prefix `groupcast`), read with one redis-cli call in
    /// the Redis namespace; nil when it fails.
    static func read(namespace: String, address: String) -> [RelayTree]? {
        // One line per edge: SSRC OWNER-NODE ROOM ID TYPE CHILD PARENT STATE.
        let script = """
            local out = {}
            for _, key in ipairs(redis.call('KEYS', ARGV[1] .. ':room:*:relay:*')) do
              local ssrc = string.match(key, ':relay:(%d+)$')
              local owner = redis.call('HGET', ARGV[1] .. ':ssrcs', ssrc) or '- - - -'
              local edges = redis.call('HGETALL', key)
              for i = 1, #edges, 2 do out[#out + 1] = ssrc .. ' ' .. owner .. ' ' .. edges[i] .. ' ' .. edges[i + 1] end
            end
            return out
            """
        guard let output = try? Topology.ip(["netns", "exec", namespace, "/usr/bin/redis-cli", "-h", address, "EVAL", script, "0", "groupcast"])
        else { return nil }
        return parse(output)
    }

    /// The lines of ``read(namespace:address:)``'s script, trees in SSRC order.
    static func parse(_ output: String) -> [RelayTree] {
        var trees: [String: RelayTree] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 8 else { continue }
            var tree = trees[fields[0]] ?? RelayTree(ssrc: fields[0], origin: fields[1], participant: fields[3], type: fields[4], parents: [:])
            if fields[7] == "ready" { tree.parents[fields[5]] = fields[6] } else { tree.pending += 1 }
            trees[fields[0]] = tree
        }
        return trees.values.sorted { (UInt32($0.ssrc) ?? 0, $0.ssrc) < (UInt32($1.ssrc) ?? 0, $1.ssrc) }
    }

    /// The origin participant as `NODE/ID`.
    var originKey: String { "\(origin)/\(participant)" }

    /// Hops from the origin to `node` (0: the origin), nil when it is not in the tree (or a
    /// corrupted tree loops).
    func hops(to node: String) -> Int? {
        var hops = 0, current = node
        while current != origin {
            guard let parent = parents[current], hops < parents.count else { return nil }
            current = parent
            hops += 1
        }
        return hops
    }

    /// `node`'s hops and parents over `trees` (distinct values joined by `,`; `-`: in none).
    static func place(of node: String, in trees: [RelayTree]) -> (hops: String, parents: String) {
        let hops = Set(trees.compactMap { $0.hops(to: node) }).sorted().map(String.init)
        let parents = Set(trees.compactMap { $0.parents[node] }).sorted()
        return (hops.isEmpty ? "-" : hops.joined(separator: ","), parents.isEmpty ? "-" : parents.joined(separator: ","))
    }

    var description: String {
        let edges = parents.sorted { (hops(to: $0.key) ?? 99, $0.key) < (hops(to: $1.key) ?? 99, $1.key) }.map { "\($0.value) -> \($0.key)" }
        return "relay tree \(type) \(ssrc) (origin \(origin)): " + (edges.isEmpty ? "no edges" : edges.joined(separator: ", ")) + (pending > 0 ? ", \(pending) pending" : "")
    }
}

func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    guard text.count < width else { return text }
    let fill = String(repeating: " ", count: width - text.count)
    return left ? text + fill : fill + text
}

/// Writes a line to standard output unbuffered, in order with the status line.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
