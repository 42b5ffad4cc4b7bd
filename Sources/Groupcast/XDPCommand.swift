import ArgumentParser
import GroupcastCommandLine
import GroupcastConfiguration
import Glibc
import GroupcastFastPath
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast

/// `groupcast xdp`: the in-kernel SFU data plane (Docs/fastpath.md).
struct XDPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdp",
        abstract: "Attach, inspect and program the eBPF fast path (XDP + TC replication).",
        subcommands: [Attach.self, Detach.self, Status.self, Stats.self, Routes.self]
    )

    struct Device: ParsableArguments {
        @Option(name: .customLong("dev"), help: "The SFU's network interface.")
        var interface: String
    }

    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load and attach the fast path.")
        @OptionGroup var device: Device
        @Option(help: "The SFU's media UDP port.") var port: UInt16
        @Flag(help: "Do not echo media packets to their sender.") var noEcho = false
        @Option(help: "XDP mode: auto, native or generic (with --ingress xdp).") var mode: XDPMode = .automatic
        @Option(help: "The fast path's ingress: xdp (an XDP program judges every datagram before an skb exists, drops garbage early; for real NICs) or tc (no XDP program, the TC program alone verifies and replicates; for veth and other virtual devices, where native XDP copies each skb first; Docs/fastpath.md).")
        var ingress: FastPathIngress = .xdp
        @Option(help: "Route map capacity (source SSRCs); 0: default.") var maxRoutes: UInt32 = 0
        @Option(help: "Where to save the verifier log if the kernel rejects the programs.")
        var verifierLog: String?

        func validate() throws {
            guard port != 0 else { throw ValidationError("--port must be 1...65535") }
        }

        func run() throws {
            try fastPath {
                _ = try FastPath.attach(interface: device.interface, port: port, echo: !noEcho,
                                        mode: mode, ingress: ingress, maxRoutes: maxRoutes,
                                        verifierLogPath: verifierLog)
            }
        }
    }

    struct Detach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detach the fast path (xdp: its programs and pins; ring: its XDP program) from interfaces.",
            discussion: "A killed xdp or ring SFU leaves its XDP program attached (Docs/operations.md). With --config (the unit's ExecStopPost), the interfaces of the SFU's configuration file, and an interface with nothing attached is not an error. Another program on an interface is never detached.")
        @Option(name: .customLong("dev"), help: "An interface (repeatable).")
        var interfaces: [String] = []
        @Option(help: "The interfaces listed under `interface` in this `groupcast sfu --config` file.")
        var config: String?

        func validate() throws {
            guard interfaces.isEmpty != (config == nil) else { throw ValidationError("--dev or --config: which interfaces") }
        }

        func run() throws {
            var names = interfaces
            if let config {
                do { names = try ConfigurationFile.load(path: config).settings.interfaces ?? [] } catch {
                    printError("groupcast xdp detach: \(error)")
                    throw ExitCode(1)
                }
                guard !names.isEmpty else {
                    printError("groupcast xdp detach: \(config) lists no interface (`interface: [eth1]`): nothing to detach")
                    throw ExitCode(1)
                }
            }
            var failed = false
            for name in names {
                do { try FastPath.detach(interface: name) } catch {
                    if config != nil, case .notAttached = error {
                        print("\(name): nothing attached")
                        continue
                    }
                    printError("groupcast xdp detach: \(error)")
                    failed = true
                    continue
                }
                print("\(name): detached")
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether and how the fast path is attached.")
        @OptionGroup var device: Device
        func run() throws {
            try fastPath {
                let s = try FastPath.status(interface: device.interface)
                let mode = s.mode?.rawValue ?? "none"
                print("""
                    interface: \(device.interface)
                    attached: \(s.attached ? "yes" : "no")
                    mode: \(mode)
                    ingress: \(s.ingress.map(\.rawValue) ?? "unknown")
                    xdp_prog_id: \(s.xdpProgramID)
                    tc_prog_id: \(s.tcProgramID)
                    port: \(s.port)
                    echo: \(s.echo ? "on" : "off")
                    routes: \(s.routeCount)
                    max_routes: \(s.maxRoutes)
                    pin_dir: \(s.pinDirectory)
                    """)
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the counters (summed over CPUs).")
        @OptionGroup var device: Device
        func run() throws {
            try fastPath {
                for c in try FastPath.open(interface: device.interface).stats().counters {
                    print("\(c.name) \(c.value)")
                }
            }
        }
    }

    struct Routes: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, add or remove routes (source SSRC -> subscribers).",
            subcommands: [List.self, Add.self, Remove.self]
        )

        struct List: ParsableCommand {
            @OptionGroup var device: Device
            func run() throws {
                try fastPath {
                    for r in try FastPath.open(interface: device.interface).routes().sorted(by: { $0.source < $1.source }) {
                        // Spelt as `routes add` takes them: the type as --type, a subscriber as --sub.
                        let type = r.type.map { "\($0)".lowercased() } ?? "?"
                        print("ssrc \(r.source) type \(type) origin \(r.origin.hostDescription) port \(r.origin.port) "
                              + "subscribers \(r.subscribers.count)\(r.userSpace ? " userspace" : "")")
                        for s in r.subscribers {
                            let mac = s.mac.map { String($0, radix: 16).leftPadded(2) }.joined(separator: ":")
                            print("  \(interfaceName(s.ifindex)) \(mac) \(s.destination.hostDescription) \(s.destination.port)")
                        }
                    }
                }
            }
        }

        struct Add: ParsableCommand {
            @OptionGroup var device: Device
            @Option(help: "The stream's RTP SSRC (decimal or 0x-prefixed hex).", transform: SSRCArgument.parse)
            var ssrc: UInt32
            @Option(help: "The only address allowed to send on it.") var origin: String
            @Option(help: "Its UDP port.") var originPort: UInt16
            @Option(help: "Stream type: asq, vsq or vhq.") var type: String
            @Option(name: .customLong("sub"), help: "A subscriber IFACE,MAC,ADDR,PORT (repeatable).")
            var subs: [String] = []

            func run() throws {
                guard let address = SocketAddress(host: origin, port: originPort) else { throw ValidationError("--origin: not an address") }
                guard let t = StreamType(name: type) else {
                    throw ValidationError("--type: expected asq, vsq or vhq")
                }
                let subscribers = try subs.map(parseSubscriber)
                try fastPath {
                    let fp = try FastPath.open(interface: device.interface)
                    if try fp.setRoute(source: ssrc, origin: address,
                                       type: t, subscribers: subscribers) == .userSpace {
                        printError("\(subscribers.count) subscribers exceed the in-kernel fan-out limit of "
                                   + "\(FastPath.maxSubscribers): SSRC \(ssrc) is origin-checked in the kernel "
                                   + "and replicated in user space")
                    }
                }
            }

            private func parseSubscriber(_ spec: String) throws -> FastPath.Subscriber {
                let f = spec.split(separator: ",").map(String.init)
                let mac = f.count == 4 ? f[1].split(separator: ":").compactMap { UInt8($0, radix: 16) } : []
                guard f.count == 4, mac.count == 6, let p = UInt16(f[3]), p != 0, let a = SocketAddress(host: f[2], port: p) else {
                    throw ValidationError("--sub \(spec): expected IFACE,MAC,ADDR,PORT")
                }
                return FastPath.Subscriber(interface: f[0], mac: mac, address: a)
            }
        }

        struct Remove: ParsableCommand {
            @OptionGroup var device: Device
            @Option(help: "The stream's RTP SSRC (decimal or 0x-prefixed hex).", transform: SSRCArgument.parse)
            var ssrc: UInt32
            func run() throws {
                try fastPath { try FastPath.open(interface: device.interface).removeRoute(source: ssrc) }
            }
        }
    }
}

/// Runs a fast-path operation; a ``FastPathError`` becomes a message on stderr and exit status 1.
private func fastPath(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as FastPathError {
        printError("groupcast xdp: \(e)")
        if case .verifierRejected(_, let log) = e, !log.isEmpty { printError("verifier log: \(log)") }
        throw ExitCode(1)
    }
}

/// The name of interface `index` in this network namespace, `#index` if it has none (gone).
private func interfaceName(_ index: UInt32) -> String {
    var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
    guard if_indextoname(index, &name) != nil else { return "#\(index)" }
    return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func printError(_ s: String) {
    let line = s + "\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

/// SSRCs are usually written in hex (RTP tools print them so): accept both forms.
enum SSRCArgument {
    static func parse(_ text: String) throws -> UInt32 {
        let lowered = text.lowercased()
        let value = lowered.hasPrefix("0x") ? UInt32(lowered.dropFirst(2), radix: 16) : UInt32(lowered)
        guard let value else {
            throw ValidationError("'\(text)' is not an SSRC: a 32-bit number, decimal or 0x-prefixed hex")
        }
        return value
    }
}
