#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastProtocol
import GroupcastSFU

/// What one SFU benchmark measures (`groupcast-lab bench sfu`): the defaults are the command's.
/// ``resolved(repository:)`` applies `quick` and fills in what depends on the machine.
public struct BenchPlan: Sendable {
    public var backends: [ForwarderBackend] = ForwarderBackend.allCases
    /// How the sendgroup backend's SFU sends (`--sendgroup-mode`).
    public var sendgroupMode: SendgroupMode = .groups
    /// Participants per grid session (the fan-out n of d(n)).
    public var clients = [6, 8, 10]
    /// Packets per second per client (three streams together).
    public var rates = [750, 1500]
    /// RTP payload bytes per stream type.
    public var sizes: [StreamType: Int] = [.asq: 80, .vsq: 160, .vhq: 320]
    /// Measurement window per grid run, seconds.
    public var window = 10.0
    /// Clients send this long before the window opens, seconds.
    public var warmup = 1.0
    /// Whether each backend's capacity is searched (``CapacitySearch``).
    public var capacity = true
    public var capacityRate = 1500
    public var capacityStart = 16
    public var capacityMax = 2048
    public var capacityWindow = 4.0
    public var capacityThreshold = 0.95
    public var capacitySteps = 12
    /// CPUs the SFU and the clients are pinned to (nil: any).
    public var sfuCPU: Int?
    public var clientCPU: Int?
    public var nice = 0
    /// How long the participants of one run may take to register, seconds.
    public var registerTimeout = 30.0
    /// Send micro benchmark result giving s for the Amdahl prediction.
    public var micro: String?
    public var label = "host"
    /// Result directory (nil: Docs/benchmarks/data of the checkout, a temporary one when quick).
    public var out: String?
    /// Smoke run: clients 3, one rate, short windows, two capacity steps.
    public var quick = false

    public init() {}

    /// The plan as run: `quick` applied, duplicate backends removed, the default CPUs (SFU on the
    /// last online CPU, clients on CPU 0, when there are two or more), the default micro
    /// benchmark result and result directory of `repository` (the checkout, if known).
    public func resolved(repository: String?, onlineCPUs: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) -> BenchPlan {
        var plan = self
        var seen = Set<ForwarderBackend>()
        plan.backends = backends.filter { seen.insert($0).inserted }
        plan.sizes = BenchPlan().sizes.merging(sizes) { $1 }
        if quick {
            plan.clients = [3]
            plan.rates = [rates.first ?? 750]
            plan.window = 1
            plan.warmup = 0.4
            plan.capacityStart = min(capacityStart, 4)
            plan.capacityWindow = 1
            plan.capacitySteps = 2
        }
        plan.sfuCPU = sfuCPU ?? (onlineCPUs >= 2 ? onlineCPUs - 1 : nil)
        plan.clientCPU = clientCPU ?? (onlineCPUs >= 2 ? 0 : nil)
        plan.micro = micro ?? repository.map { "\($0)/Docs/benchmarks/data/send-\(label).json" }
        if out == nil {
            plan.out = quick || repository == nil
                ? NSTemporaryDirectory() + "groupcast-bench-\(getpid())" : repository! + "/Docs/benchmarks/data"
        }
        return plan
    }

    /// Seconds between packets of one stream for `rate` packets/s over three streams.
    public func interval(rate: Int) -> Double { 3.0 / Double(rate) }

    /// The result directory (resolved plans always have one).
    var outputDirectory: String { out ?? NSTemporaryDirectory() }
}
