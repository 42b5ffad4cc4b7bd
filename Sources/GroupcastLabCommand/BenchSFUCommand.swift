#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import GroupcastProtocol
import GroupcastCommandLine
import GroupcastLab
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// `groupcast-lab bench sfu`: the pktswitch paper's Figures 3-5 for every SFU backend, the d(n) fit,
/// the Helix-style capacity search and the Amdahl prediction (Docs/benchmarks.md).
struct BenchSFUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfu",
        abstract: "SFU macro benchmark: CPU (user/system/softirq) and processing delay per backend, d(n) fit, capacity, Amdahl.",
        discussion: """
            Runs the SFU and NMP clients in throw-away network namespaces joined by veth (as `groupcast-lab \
            demo`, no default route), the SFU pinned to --sfu-cpu and the clients to --client-cpu. \
            For every backend x clients x rate: CPU of the SFU process (user, system) and softirq of \
            its CPU over the measurement window, processing delay (receive to last copy scheduled) \
            p50/p99, delivered vs expected copies. Then d(n) = a + n*b per backend, the largest \
            broadcast audience each backend delivers (capacity), and the Amdahl prediction of each \
            backend's gain from the send micro benchmark. A backend that cannot run here is listed \
            as unavailable with the reason. Needs root. With --vm the whole set runs in a VM with \
            the sendgroup module (scripts/bench/sfu).
            """
    )

    /// The library's defaults are the command's.
    private static var defaults: BenchPlan { BenchPlan() }

    @Option(parsing: .upToNextOption, help: "Backends to measure (socket sendmmsg sendgroup xdp ring).")
    var backends: [ForwarderBackend] = Self.defaults.backends

    @Option(help: "How the sendgroup backend's SFU sends: groups (a kernel group per route) or oneshot (one SENDGROUP_IOC_SEND per packet).")
    var sendgroupMode: SendgroupMode = Self.defaults.sendgroupMode

    @Option(parsing: .upToNextOption, help: "Clients (participants, one namespace each) per session.")
    var clients: [Int] = Self.defaults.clients

    @Option(parsing: .upToNextOption, help: "Packets per second per client (all three streams together).")
    var rates: [Int] = Self.defaults.rates

    @Option(help: "RTP payload bytes per stream.")
    var sizes: SizesArgument = .init(Self.defaults.sizes)

    @Option(help: "Measurement window per run.")
    var duration: DurationArgument = .init(.seconds(Self.defaults.window))

    @Option(help: "Clients send this long before the window opens (registration, warm caches).")
    var warmup: DurationArgument = .init(.seconds(Self.defaults.warmup))

    @Flag(inversion: .prefixedNo, help: "Search each backend's capacity (largest broadcast audience delivered).")
    var capacity = Self.defaults.capacity

    @Option(help: "Capacity: the broadcaster's packets per second (three streams).")
    var capacityRate: Int = Self.defaults.capacityRate

    @Option(help: "Capacity: first audience size tried; it doubles until delivery fails, then bisects.")
    var capacityStart: Int = Self.defaults.capacityStart

    @Option(help: "Capacity: largest audience tried.")
    var capacityMax: Int = Self.defaults.capacityMax

    @Option(help: "Capacity: measurement window per step.")
    var capacityDuration: DurationArgument = .init(.seconds(Self.defaults.capacityWindow))

    @Option(help: "Capacity: a step passes when at least this share of the expected copies arrive.")
    var capacityThreshold: Double = Self.defaults.capacityThreshold

    @Option(help: "CPU the SFU is pinned to (default: the last online CPU).")
    var sfuCPU: Int?

    @Option(help: "CPU the clients are pinned to (default: CPU 0 when there are two or more).")
    var clientCPU: Int?

    @Option(help: "Nice value of the SFU and the clients (-20...19): below 0 weighs them above other load on a shared machine without starving it (unlike real-time scheduling).")
    var nice: Int = Self.defaults.nice

    @Option(help: "Send micro benchmark result (scripts/bench/send JSON) giving s for the Amdahl prediction (default: Docs/benchmarks/data/send-LABEL.json).")
    var micro: String?

    @Option(help: "How long the participants of one run may take to register (emulated VMs under load need minutes).")
    var registerTimeout: DurationArgument = .init(.seconds(Self.defaults.registerTimeout))

    @Option(help: "Name of this machine's results: sfu-LABEL.{json,csv,txt}.")
    var label: String = Self.defaults.label

    @Option(help: "Directory for the results (default: Docs/benchmarks/data of the checkout; a temporary one with --quick).")
    var out: String?

    @Option(help: "Run the whole set in a VM on this kernel line (6.1, 6.12) with the sendgroup module loaded (scripts/bench/sfu).")
    var vm: String?

    @Flag(help: "Smoke run: a few seconds per backend (clients 3, one rate, short windows, two capacity steps).")
    var quick = Self.defaults.quick

    func validate() throws {
        guard !backends.isEmpty else { throw ValidationError("--backends: name at least one backend") }
        guard !clients.isEmpty, clients.allSatisfy({ (2...64).contains($0) }) else { throw ValidationError("--clients: each 2...64") }
        guard !rates.isEmpty, rates.allSatisfy({ (3...30_000).contains($0) }) else { throw ValidationError("--rates: each 3...30000 packets/s") }
        guard duration.value > .zero, capacityDuration.value > .zero else { throw ValidationError("--duration and --capacity-duration must be positive") }
        guard (0.0...1.0).contains(capacityThreshold) else { throw ValidationError("--capacity-threshold must be 0...1") }
        guard capacityStart >= 1, capacityMax >= capacityStart, capacityMax <= 5120 else {
            throw ValidationError("need 1 <= --capacity-start <= --capacity-max <= 5120")
        }
        guard (-20...19).contains(nice) else { throw ValidationError("--nice must be -20...19") }
        guard (3...30_000).contains(capacityRate) else { throw ValidationError("--capacity-rate must be 3...30000") }
        guard label.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { throw ValidationError("--label: letters, digits, - _ . only") }
        let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        for cpu in [sfuCPU, clientCPU].compactMap({ $0 }) where cpu < 0 || cpu >= online {
            throw ValidationError("CPU \(cpu) is not online (0...\(online - 1))")
        }
    }

    func run() throws {
        if let vm {
            // Everything but --vm goes to the same command inside the VM.
            var arguments = Array(CommandLine.arguments.dropFirst(3))
            if let index = arguments.firstIndex(of: "--vm") { arguments.removeSubrange(index...index + 1) }
            arguments.removeAll { $0.hasPrefix("--vm=") }
            let root = try exitOnLabError("bench sfu") { try repositoryRoot() }
            try runScript(root + "/scripts/bench/sfu", ["--vm", vm] + arguments)
        }
        guard geteuid() == 0 else {
            FileHandle.standardError.write(Data("groupcast-lab bench sfu needs root: it creates network namespaces and veth links\n".utf8))
            throw ExitCode(1)
        }
        var plan = BenchPlan()
        plan.backends = backends
        plan.sendgroupMode = sendgroupMode
        plan.clients = clients
        plan.rates = rates
        plan.sizes = sizes.sizes
        plan.window = duration.value.seconds
        plan.warmup = warmup.value.seconds
        plan.capacity = capacity
        plan.capacityRate = capacityRate
        plan.capacityStart = capacityStart
        plan.capacityMax = capacityMax
        plan.capacityWindow = capacityDuration.value.seconds
        plan.capacityThreshold = capacityThreshold
        plan.sfuCPU = sfuCPU
        plan.clientCPU = clientCPU
        plan.nice = nice
        plan.registerTimeout = registerTimeout.value.seconds
        plan.micro = micro
        plan.label = label
        plan.out = out
        plan.quick = quick
        let resolved = plan.resolved(repository: try? repositoryRoot())
        try exitOnLabError("bench sfu") { try SFUBench(plan: resolved).run() }
    }
}
