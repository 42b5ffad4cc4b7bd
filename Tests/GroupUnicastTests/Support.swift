#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast
import SystemPackage
import Testing

/// Every test of the package, run one at a time: the descriptor-leak test counts the process's
/// open descriptors, and the 1,024-receiver tests use many of them.
@Suite(.serialized)
struct GroupUnicastTests {}

/// The backends that work without the sendgroup module.
let hostBackends: [GroupSendBackend] = [.sendmmsg, .socket, .automatic]

/// Whether the kernel-backend tests run: the module is loaded, or the caller demands it
/// (`GROUPUNICAST_REQUIRE_KERNEL=1`, as the VM runner sets), in which case absence fails them.
enum KernelGate {
    static let required = getenv("GROUPUNICAST_REQUIRE_KERNEL").map { String(cString: $0) } == "1"
    static let loaded = GroupSocket.isKernelModuleLoaded
    static let shouldRun = loaded || required
    static let skipReason: Comment = """
        sendgroup module not loaded (/dev/sendgroup missing): kernel-backend tests skipped; \
        set GROUPUNICAST_REQUIRE_KERNEL=1 to make its absence a failure
        """
}

func loopback(_ family: AddressFamily, port: UInt16 = 0) -> SocketAddress {
    family == .ipv4 ? .ipv4Loopback(port: port) : .ipv6Loopback(port: port)
}

/// `count` nonblocking UDP sockets bound to loopback ports, each one receiver of a group.
final class Receivers {
    let sockets: [GroupSocket]
    let addresses: [SocketAddress]

    init(count: Int, family: AddressFamily) throws {
        try raiseDescriptorLimit(atLeast: count + 256)
        // `.socket`: receivers never open /dev/sendgroup.
        sockets = try (0..<count).map { _ in
            try GroupSocket(bindingTo: loopback(family), backend: .socket, options: .init(nonBlocking: true))
        }
        addresses = try sockets.map { try $0.localAddress }
    }

    /// Every datagram queued at receiver `index`, waiting up to `timeout` for the first `expected`.
    /// Datagrams up to `maxSize` bytes are taken whole (the 1,024-receiver tests keep it small:
    /// every receiver holds `8 × maxSize` bytes of receive buffer while it drains).
    func drain(_ index: Int, expected: Int, timeout: Duration = .seconds(2), maxSize: Int = 4096) throws -> [ReceivedDatagram] {
        let socket = sockets[index]
        var received: [ReceivedDatagram] = []
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while received.count < expected {
            let left = clock.now.duration(to: deadline)
            guard left > .zero, try socket.waitForReadable(timeout: left) else { break }
            received += try socket.receiveBatch(maxCount: 8, maxSize: maxSize)
        }
        // Anything beyond what was expected is already queued: take it without waiting.
        while case let more = try socket.receiveBatch(maxCount: 8, maxSize: maxSize), !more.isEmpty {
            received += more
        }
        return received
    }

    /// What each receiver got, as byte arrays in arrival order.
    func drainAll(expected: [Int]) throws -> [[[UInt8]]] {
        try sockets.indices.map { index in try drain(index, expected: expected[index]).map(\.bytes) }
    }

    deinit {
        for socket in sockets { try? socket.close() }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to at least `needed` (up to the hard limit).
func raiseDescriptorLimit(atLeast needed: Int) throws {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else {
        throw Errno(rawValue: errno)
    }
    if limit.rlim_cur >= rlim_t(needed) { return }
    guard limit.rlim_max >= rlim_t(needed) else {
        Issue.record("RLIMIT_NOFILE hard limit \(limit.rlim_max) is below the \(needed) descriptors this test needs")
        return
    }
    limit.rlim_cur = rlim_t(needed)
    guard setrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else {
        throw Errno(rawValue: errno)
    }
}

#if canImport(Glibc)
let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif

/// The process's open descriptors (/proc/self/fd) that are sockets, /dev/sendgroup or sendgroup
/// group fds (`anon_inode:[sendgroup-group]`), with what
/// each refers to (`socket:[INODE]`). Other test targets may run in parallel with this suite and
/// open or close files of their own; they do not open sockets or the sendgroup device.
func openNetworkDescriptors() -> [String: String] {
    guard let directory = opendir("/proc/self/fd") else {
        Issue.record("cannot open /proc/self/fd: \(Errno(rawValue: errno))")
        return [:]
    }
    defer { closedir(directory) }
    var descriptors: [String: String] = [:]
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        var target = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
        guard length > 0 else { continue }
        let text = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("socket:") || text == "/dev/sendgroup" || text == "anon_inode:[sendgroup-group]" {
            descriptors[name] = text
        }
    }
    return descriptors
}

/// The sockets and /dev/sendgroup descriptors open now that were not open in `before`.
func leakedDescriptors(since before: [String: String]) -> [String: String] {
    openNetworkDescriptors().filter { before[$0.key] != $0.value }
}

/// Deterministic bytes: `count` bytes starting from `seed`.
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 1) }
}

/// A group of `count` recipients with varied prepend (0–4 bytes + index) and append (0–2 bytes).
func variedRecipients(_ addresses: [SocketAddress]) -> [Recipient] {
    addresses.enumerated().map { index, address in
        Recipient(address,
                  prepend: pattern(index % 5, seed: index) + withUnsafeBytes(of: UInt32(index).bigEndian, Array.init),
                  append: pattern(index % 3, seed: index + 1000))
    }
}

func expectedDatagram(_ recipient: Recipient, _ payload: [UInt8]) -> [UInt8] {
    recipient.prepend + payload + recipient.append
}
