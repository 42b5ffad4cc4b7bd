#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A hub and its spokes: network namespaces joined to the hub by one veth pair each, with fixed
/// addresses and no default route; optionally a bridge in the hub joins the spokes into one
/// subnet (the cluster's nodes reach each other and the hub directly). The one topology builder of the Swift code (the demo, the SFU
/// benchmark, the SFU and fast-path tests); the shell's is `scripts/lib/netns.sh`.
///
/// Both ends of a veth are created directly in their namespaces, so nothing appears on the host's
/// interfaces. ``create()`` builds everything, ``destroy()`` removes what it built (named
/// namespaces deleted, anonymous ones released; their veths go with them), and ``create()`` may
/// run again after it.
public final class Topology: @unchecked Sendable {
    /// Where a hub or a spoke lives.
    public enum Placement: Hashable, Sendable {
        /// The namespace of the thread that calls ``create()``.
        case caller
        /// A named namespace (`ip netns add NAME`, `/run/netns/NAME`): visible to `ip -n`, left
        /// behind if the process is killed (``removeStale(prefix:)`` cleans up).
        case named(String)
        /// A namespace only this process holds (a descriptor): gone when the process is.
        case anonymous
    }

    /// One spoke: its namespace and the veth pair joining it to the hub.
    public struct Spoke: Sendable {
        public var placement: Placement
        /// The veth end in the hub's namespace and the one in the spoke's.
        public var hubInterface: String
        public var interface: String
        /// Addresses with prefix length (`10.0.0.1/24`, `fd00::1/64`) of each end.
        public var hubAddresses: [String]
        public var addresses: [String]
        /// MAC addresses of each end (nil: the kernel's random one).
        public var hubMAC: String?
        public var mac: String?

        public init(
            placement: Placement, hubInterface: String, interface: String, hubAddresses: [String] = [], addresses: [String] = [],
            hubMAC: String? = nil, mac: String? = nil
        ) {
            self.placement = placement
            self.hubInterface = hubInterface
            self.interface = interface
            self.hubAddresses = hubAddresses
            self.addresses = addresses
            self.hubMAC = hubMAC
            self.mac = mac
        }
    }

    /// A bridge in the hub's namespace with every spoke's hub-side veth enslaved: the spokes and
    /// the hub share one link, so spokes reach each other without routes.
    public struct Bridge: Sendable {
        public var name: String
        /// The hub's addresses on the bridge, with prefix length.
        public var addresses: [String]

        public init(name: String, addresses: [String]) {
            self.name = name
            self.addresses = addresses
        }
    }

    public let hub: Placement
    public let spokes: [Spoke]
    public let bridge: Bridge?
    private let lock = NSLock()
    /// Descriptors of the anonymous namespaces, by spoke index (and -1 for the hub).
    private var anonymous: [Int: CInt] = [:]
    private var created: [String] = []

    public init(hub: Placement, spokes: [Spoke], bridge: Bridge? = nil) {
        self.hub = hub
        self.spokes = spokes
        self.bridge = bridge
    }

    deinit {
        for descriptor in anonymous.values { close(descriptor) }
    }

    // MARK: The SFU star of the demo and the benchmark

    /// Namespaces `gcd<pid>-sfu` and `gcd<pid>-c1…cN`; client N's veth is `10.199.N.1/24` on the
    /// SFU side and `10.199.N.2/24` on its side.
    public static func sfuStar(clients: Int) -> Topology {
        let prefix = starPrefix
        let tag = "gc\(getpid() % 1_000_000)"  // interface names fit IFNAMSIZ (15)
        return Topology(hub: .named("\(prefix)-sfu"), spokes: (1...max(clients, 1)).map { index in
            Spoke(placement: .named("\(prefix)-c\(index)"), hubInterface: "\(tag)s\(index)", interface: "\(tag)c\(index)",
                  hubAddresses: ["10.199.\(index).1/24"], addresses: ["10.199.\(index).2/24"])
        })
    }

    /// `gcd<pid>`: the names of this process's SFU star start with it.
    public static var starPrefix: String { "gcd\(getpid())" }

    /// The star's SFU namespace and client `index`'s (1...clients).
    public var sfuNamespace: String { hubName ?? "" }
    public func clientNamespace(_ index: Int) -> String { spokeName(index - 1) ?? "" }
    /// The SFU's address on client `index`'s link (1...clients) and the client's.
    public func sfuAddress(client index: Int) -> String { hubAddress(toward: index - 1) }
    public func clientAddress(_ index: Int) -> String { spokeAddress(index - 1) }

    /// The hub's address towards spoke `index` (0-based) and the spoke's own, without prefix length.
    public func hubAddress(toward index: Int) -> String { Self.host(spokes[index].hubAddresses[0]) }
    public func spokeAddress(_ index: Int) -> String { Self.host(spokes[index].addresses[0]) }

    /// The namespace name of the hub or of spoke `index` (nil: not a named namespace).
    public var hubName: String? { Self.name(hub) }
    public func spokeName(_ index: Int) -> String? { Self.name(spokes[index].placement) }

    // MARK: The cluster of the three-node demo and tests

    /// Namespaces `gcd<pid>-redis` (the hub: Redis, on bridge `gcbr` at `10.198.0.1/24`) and
    /// `gcd<pid>-node1…N`; node N is `10.198.0.(10+N)/24` on the bridge, so nodes reach each
    /// other and Redis on one link, and nothing else.
    public static func cluster(nodes: Int) -> Topology {
        let prefix = starPrefix
        let tag = "gc\(getpid() % 1_000_000)"
        return Topology(
            hub: .named("\(prefix)-redis"),
            spokes: (1...max(nodes, 1)).map { index in
                Spoke(placement: .named("\(prefix)-node\(index)"), hubInterface: "\(tag)b\(index)", interface: "\(tag)n\(index)",
                      addresses: ["10.198.0.\(10 + index)/24"])
            },
            bridge: Bridge(name: "gcbr", addresses: ["10.198.0.1/24"]))
    }

    /// The cluster's Redis address (the hub's on the bridge) and node `index`'s (1...nodes).
    public var redisAddress: String { Self.host(bridge?.addresses.first ?? "") }
    public func nodeAddress(_ index: Int) -> String { spokeAddress(index - 1) }
    public func nodeNamespace(_ index: Int) -> String { spokeName(index - 1) ?? "" }

    // MARK: Building

    /// Builds the namespaces and links.
    ///
    /// - Throws: ``LabError/command(_:_:_:)`` naming the `ip` command that failed (root is
    ///   needed); what was built before is removed again.
    public func create() throws(LabError) {
        do {
            try ensure(hub, key: -1)
            if let bridge {
                try configure(hub, key: -1, ["link add \(bridge.name) type bridge", "link set \(bridge.name) up"] + bridge.addresses.map { Self.addressCommand($0, bridge.name) })
            }
            for (index, spoke) in spokes.enumerated() {
                try ensure(spoke.placement, key: index)
                var add = ["link", "add", spoke.hubInterface]
                if let mac = spoke.hubMAC { add += ["address", mac] }
                if let target = netnsArgument(hub, key: -1) { add += ["netns", target] }
                add += ["type", "veth", "peer", "name", spoke.interface]
                if let mac = spoke.mac { add += ["address", mac] }
                if let target = netnsArgument(spoke.placement, key: index) { add += ["netns", target] }
                try Self.ip(add)
                let enslave = bridge.map { ["link set \(spoke.hubInterface) master \($0.name)"] } ?? []
                try configure(hub, key: -1, enslave + ["link set \(spoke.hubInterface) up"] + spoke.hubAddresses.map { Self.addressCommand($0, spoke.hubInterface) })
                try configure(spoke.placement, key: index, ["link set \(spoke.interface) up"] + spoke.addresses.map { Self.addressCommand($0, spoke.interface) })
                // Spokes send complete UDP checksums, as from a NIC: the in-kernel data paths
                // (xdp, ring) see a frame's bytes, where an offloaded checksum (the pseudo-header
                // sum only) cannot be told from a forged one (Docs/fastpath.md, Docs/ring.md).
                if let path = path(spoke.placement, key: index) {
                    try Self.run("/usr/bin/nsenter", ["--net=\(path)", "/usr/sbin/ethtool", "-K", spoke.interface, "tx", "off"])
                } else {
                    try Self.run("/usr/sbin/ethtool", ["-K", spoke.interface, "tx", "off"])
                }
            }
        } catch {
            destroy()
            throw error
        }
    }

    /// Deletes the named namespaces this topology created and releases its anonymous ones (the
    /// veths go with them). Links between two `caller` ends are deleted one by one.
    public func destroy() {
        lock.lock()
        let names = created, descriptors = anonymous
        created = []
        anonymous = [:]
        lock.unlock()
        for spoke in spokes where hub == .caller && spoke.placement == .caller {
            _ = try? Self.ip(["link", "del", spoke.hubInterface])
        }
        for name in names { _ = try? Self.ip(["netns", "del", name]) }
        for descriptor in descriptors.values { close(descriptor) }
    }

    /// The path that enters the hub's namespace (`nsenter --net=PATH`); nil for `caller`.
    public var hubPath: String? { path(hub, key: -1) }

    /// The path that enters spoke `index`'s namespace; nil for `caller`.
    public func spokePath(_ index: Int) -> String? { path(spokes[index].placement, key: index) }

    /// Runs `body` on this thread inside spoke `index`'s namespace, then switches back. Sockets
    /// made in `body` stay in that namespace whichever thread uses them later.
    public func inSpoke<T>(_ index: Int, _ body: () throws -> T) throws -> T {
        guard let path = spokePath(index) else { return try body() }
        return try Self.inNamespace(path: path, body)
    }

    /// Runs `body` on this thread inside the namespace at `path`, then switches back.
    public static func inNamespace<T>(path: String, _ body: () throws -> T) throws -> T {
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard home >= 0 else { throw LabError.failed("open own network namespace: errno \(errno)") }
        defer { close(home) }
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw LabError.failed("open \(path): errno \(errno)") }
        defer { close(target) }
        guard setNamespace(target) == 0 else { throw LabError.failed("setns(\(path)): errno \(errno)") }
        defer {
            if setNamespace(home) != 0 { fatalError("setns back to the own network namespace: errno \(errno)") }
        }
        return try body()
    }

    /// Moves the calling thread into a new namespace of its own (loopback only, up), runs `body`
    /// and moves it back; the namespace goes when the last thing in it does.
    public static func inPrivateNamespace<T>(_ body: () throws -> T) throws -> T {
        let namespace = try PrivateNamespace()
        defer { namespace.leave() }
        return try body()
    }

    /// The calling thread in a new network namespace of its own (loopback only, up) until
    /// ``leave()`` (`unshare(CLONE_NEWNET)` is per thread; threads it starts inherit it). A
    /// topology with a `caller` hub built meanwhile lives in it.
    public final class PrivateNamespace {
        private let home: CInt
        private var left = false

        public init() throws(LabError) {
            home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            guard home >= 0 else { throw .failed("open own network namespace: errno \(errno)") }
            guard unshareNetwork() == 0 else {
                let error = errno
                close(home)
                throw .failed("unshare(CLONE_NEWNET): errno \(error) (needs root)")
            }
            do { try ip(["link", "set", "lo", "up"]) } catch {
                leave()
                throw error
            }
        }

        /// Moves the thread back to the namespace it came from.
        public func leave() {
            guard !left else { return }
            left = true
            if setNamespace(home) != 0 { fatalError("setns back to the own network namespace: errno \(errno)") }
            close(home)
        }

        deinit { leave() }
    }

    /// Removes named namespaces `PREFIX<pid>-…` left by runs whose process is gone (killed with
    /// SIGKILL before it could clean up).
    public static func removeStale(prefix: String = "gcd") {
        guard let list = try? ip(["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(prefix), let dash = name.firstIndex(of: "-"),
                let pid = Int32(name[name.index(name.startIndex, offsetBy: prefix.count)..<dash]), pid != getpid()
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                _ = try? ip(["netns", "del", name])
                say("removed stale namespace \(name) of an earlier run (process \(pid) is gone)")
            }
        }
    }

    /// Runs `ip ARGUMENTS` in this thread's namespace; its output, or ``LabError/command(_:_:_:)``.
    @discardableResult
    public static func ip(_ arguments: [String]) throws(LabError) -> String {
        try run("/usr/sbin/ip", arguments)
    }

    // MARK: Internals

    private func ensure(_ placement: Placement, key: Int) throws(LabError) {
        switch placement {
        case .caller:
            return
        case .named(let name):
            try Self.ip(["netns", "add", name])
            lock.lock()
            created.append(name)
            lock.unlock()
            try Self.ip(["-n", name, "link", "set", "lo", "up"])
        case .anonymous:
            let descriptor: CInt
            do {
                descriptor = try Self.inPrivateNamespace { () throws(LabError) -> CInt in
                    // Not O_CLOEXEC: `ip` and `nsenter` children reach it as /proc/PID/fd/N.
                    let descriptor = open("/proc/thread-self/ns/net", O_RDONLY)
                    guard descriptor >= 0 else { throw LabError.failed("open the new network namespace: errno \(errno)") }
                    return descriptor
                }
            } catch let error as LabError {
                throw error
            } catch {
                throw .failed("\(error)")
            }
            lock.lock()
            anonymous[key] = descriptor
            lock.unlock()
        }
    }

    private func path(_ placement: Placement, key: Int) -> String? {
        switch placement {
        case .caller: return nil
        case .named(let name): return "/run/netns/\(name)"
        case .anonymous:
            lock.lock()
            defer { lock.unlock() }
            return anonymous[key].map { "/proc/\(getpid())/fd/\($0)" }
        }
    }

    /// What `ip link ... netns` takes: a name or a path (nil: stay in the caller's namespace).
    private func netnsArgument(_ placement: Placement, key: Int) -> String? {
        if case .named(let name) = placement { return name }
        return path(placement, key: key)
    }

    /// Runs `ip -batch` commands in the namespace of `placement`.
    private func configure(_ placement: Placement, key: Int, _ commands: [String]) throws(LabError) {
        guard !commands.isEmpty else { return }
        let batch = NSTemporaryDirectory() + "groupcast-topology-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ip"
        do { try commands.joined(separator: "\n").write(toFile: batch, atomically: true, encoding: .utf8) } catch {
            throw .failed("cannot write \(batch): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: batch) }
        if let path = path(placement, key: key) {
            try Self.run("/usr/bin/nsenter", ["--net=\(path)", "/usr/sbin/ip", "-batch", batch])
        } else {
            try Self.ip(["-batch", batch])
        }
    }

    /// Runs `executable` from this thread and returns its output. `posix_spawn` from the calling
    /// thread, not Foundation's `Process`: the child must start in this thread's namespace (which
    /// `unshare`/`setns` change per thread), and `Process` starts a helper thread that needs a
    /// working loopback in the namespace it first runs in.
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) throws(LabError) -> String {
        let commandLine = (executable.hasSuffix("/ip") ? "ip" : executable) + " " + arguments.joined(separator: " ")
        // Close-on-exec, so no other child started meanwhile holds the write end open.
        var pipe: [CInt] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else { throw .command(commandLine, -1, "pipe: errno \(errno)") }
        for descriptor in pipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        defer { if pipe[0] >= 0 { close(pipe[0]) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(pipe[1])
        guard spawned == 0 else { throw .command(commandLine, -1, "posix_spawn: errno \(spawned)") }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
            if count > 0 { output += buffer[0..<count]; continue }
            if count < 0 && errno == EINTR { continue }
            break
        }
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw .command(commandLine, status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), text)
        }
        return text
    }

    /// `ip addr add` for `address` (IPv6 without duplicate address detection: usable at once).
    private static func addressCommand(_ address: String, _ interface: String) -> String {
        "addr add \(address) dev \(interface)" + (address.contains(":") ? " nodad" : "")
    }

    private static func host(_ address: String) -> String { String(address.split(separator: "/")[0]) }

    private static func name(_ placement: Placement) -> String? {
        if case .named(let name) = placement { return name }
        return nil
    }
}

// unshare(2) and setns(2) need _GNU_SOURCE, which Glibc's module does not import.
private let cloneNewNet: CInt = 0x4000_0000

private func unshareNetwork() -> CInt {
    typealias Unshare = @convention(c) (CInt) -> CInt
    return unsafeBitCast(dlsym(nil, "unshare"), to: Unshare.self)(cloneNewNet)
}

private func setNamespace(_ descriptor: CInt) -> CInt {
    typealias Setns = @convention(c) (CInt, CInt) -> CInt
    return unsafeBitCast(dlsym(nil, "setns"), to: Setns.self)(descriptor, cloneNewNet)
}
