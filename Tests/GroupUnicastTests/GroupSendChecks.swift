#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast
import SystemPackage
import Testing

/// Checks shared by the host suite (`.sendmmsg`, `.socket`, `.automatic`) and the kernel
/// suite (`.sendgroup`): each sends through one backend and checks what every receiver got.
enum GroupSendChecks {
    /// Every recipient gets exactly `prepend + payload + append`, once, from the sender.
    static func byteExactDelivery(backend: GroupSendBackend, family: AddressFamily, receivers count: Int) throws {
        let receivers = try Receivers(count: count, family: family)
        let sender = try GroupSocket(bindingTo: loopback(family), backend: backend)
        let senderAddress = try sender.localAddress
        let payload = pattern(1000, seed: count)
        let recipients = variedRecipients(receivers.addresses)

        let result = try sender.send(payload, to: recipients)

        #expect(result.allSent, "failures: \(result.failures)")
        #expect(result.sentCount == count)
        #expect(result.backend == sender.backend)
        if backend != .automatic { #expect(result.backend == backend) }
        for index in 0..<count {
            let datagrams = try receivers.drain(index, expected: 1)
            #expect(datagrams.count == 1, "receiver \(index) got \(datagrams.count) datagrams")
            guard let datagram = datagrams.first else { continue }
            #expect(datagram.bytes == expectedDatagram(recipients[index], payload), "receiver \(index)")
            #expect(datagram.source == senderAddress)
            #expect(!datagram.isTruncated)
        }
    }

    /// A datagram over 65,507 bytes fails with EMSGSIZE for that recipient only, on IPv4 and IPv6
    /// alike; one of exactly 65,507 bytes is delivered.
    static func messageTooLong(backend: GroupSendBackend, family: AddressFamily) throws {
        let receivers = try Receivers(count: 3, family: family)
        let sender = try GroupSocket(bindingTo: loopback(family), backend: backend,
                                     options: .init(sendBufferSize: 1 << 20))
        let payload = pattern(65_000, seed: 3)
        let recipients = [
            Recipient(receivers.addresses[0], prepend: [1, 2, 3]),
            Recipient(receivers.addresses[1], prepend: [UInt8](repeating: 7, count: 500), append: [9, 9, 9, 9, 9, 9, 9, 9]),
            Recipient(receivers.addresses[2], prepend: [UInt8](repeating: 8, count: 500), append: [9, 9, 9, 9, 9, 9, 9]),
        ]
        #expect(recipients[1].prepend.count + payload.count + recipients[1].append.count == 65_508)
        #expect(recipients[2].prepend.count + payload.count + recipients[2].append.count == 65_507)

        let result = try sender.send(payload, to: recipients)

        #expect(result.errors == [nil, .messageTooLong, nil])
        #expect(result.sentCount == 2)
        #expect(try receivers.drain(0, expected: 1, maxSize: 65_535).map(\.bytes) == [expectedDatagram(recipients[0], payload)])
        #expect(try receivers.drain(1, expected: 0, timeout: .milliseconds(50), maxSize: 65_535).isEmpty)
        #expect(try receivers.drain(2, expected: 1, maxSize: 65_535).map(\.bytes) == [expectedDatagram(recipients[2], payload)])

        // A payload too large on its own fails every recipient, with no system call to refuse it.
        let tooLarge = try sender.send([UInt8](repeating: 0, count: GroupSocket.maxDatagramSize + 1), to: recipients)
        #expect(tooLarge.errors == [.messageTooLong, .messageTooLong, .messageTooLong])
    }

    /// An IPv6 recipient on an IPv4 socket fails with EAFNOSUPPORT; the recipients around it,
    /// before and after, are still delivered (sendmmsg resumes after the failing message).
    static func wrongFamily(backend: GroupSendBackend) throws {
        let receivers = try Receivers(count: 2, family: .ipv4)
        let sender = try GroupSocket(bindingTo: loopback(.ipv4), backend: backend)
        let recipients = [
            Recipient(receivers.addresses[0], prepend: [0]),
            Recipient(.ipv6Loopback(port: 9), prepend: [1]),
            Recipient(receivers.addresses[1], prepend: [2]),
        ]
        let result = try sender.send([42], to: recipients)
        #expect(result.errors == [nil, .addressFamilyNotSupported, nil])
        #expect(try receivers.drain(0, expected: 1).map(\.bytes) == [[0, 42]])
        #expect(try receivers.drain(1, expected: 1).map(\.bytes) == [[2, 42]])
    }

    /// Recipients the routing layer refuses before anything is sent: an IPv4 destination from an
    /// IPv6-only socket (ENETUNREACH) and port 0 (EINVAL). No packet leaves the host.
    static func unreachableAndInvalid(backend: GroupSendBackend) throws {
        let receivers = try Receivers(count: 1, family: .ipv6)
        let sender = try GroupSocket(bindingTo: loopback(.ipv6), backend: backend, options: .init(ipv6Only: true))
        let recipients = [
            Recipient(.ipv4Loopback(port: 9), prepend: [1]),
            Recipient(receivers.addresses[0], prepend: [2]),
            Recipient(.ipv6Loopback(port: 0), prepend: [3]),
        ]
        let result = try sender.send([7], to: recipients)
        #expect(result.errors == [.networkUnreachable, nil, .invalidArgument])
        #expect(result.failures.map(\.recipient) == [0, 2])
        #expect(try receivers.drain(0, expected: 1).map(\.bytes) == [[2, 7]])
    }

    /// A documentation-prefix IPv6 destination (2001:db8::1) fails with ENETUNREACH where the host
    /// has no route to it. The route is probed first with connect(2), which sends nothing; where a
    /// route exists the check is skipped, so no datagram ever leaves the machine.
    static func documentationPrefixUnreachable(backend: GroupSendBackend) throws -> Bool {
        let destination = try SocketAddress(parsing: "[2001:db8::1]:9")
        guard try !hasRoute(to: destination) else { return false }
        let sender = try GroupSocket(bindingTo: loopback(.ipv6), backend: backend)
        let result = try sender.send([1, 2, 3], to: [Recipient(destination)])
        #expect(result.errors == [.networkUnreachable])
        return true
    }

    /// Whether the kernel has a route to `destination`: connect(2) on a UDP socket looks the route
    /// up and sends nothing.
    static func hasRoute(to destination: SocketAddress) throws -> Bool {
        let descriptor = socket(AF_INET6, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Errno(rawValue: errno) }
        defer { close(descriptor) }
        guard case .ipv6(let address, let port, _) = destination else { return true }
        let status = SocketAddress.ipv6(address, port: port).withSockAddr { connect(descriptor, $0, $1) }
        if status == 0 { return true }
        let error = Errno(rawValue: errno)
        guard error == .networkUnreachable || error == .noRouteToHost else { throw error }
        return false
    }

    /// More recipients than one system call takes: 2,100 recipients over 50 receivers, every
    /// 97th one too large, so failures straddle the 1,024-recipient chunk boundaries.
    static func largeGroupAcrossChunks(backend: GroupSendBackend, family: AddressFamily) throws {
        let receivers = try Receivers(count: 50, family: family)
        let sender = try GroupSocket(bindingTo: loopback(family), backend: backend)
        let payload = pattern(64, seed: 1)
        var recipients: [Recipient] = []
        var expected = [[[UInt8]]](repeating: [], count: 50)
        var expectedErrors: [Errno?] = []
        for index in 0..<2100 {
            let receiver = index % 50
            let tooLarge = index % 97 == 96
            let prepend = tooLarge ? [UInt8](repeating: 1, count: 65_500) : withUnsafeBytes(of: UInt32(index).bigEndian, Array.init)
            recipients.append(Recipient(receivers.addresses[receiver], prepend: prepend))
            expectedErrors.append(tooLarge ? .messageTooLong : nil)
            if !tooLarge { expected[receiver].append(prepend + payload) }
        }
        let result = try sender.send(payload, to: recipients)
        #expect(result.errors == expectedErrors)
        #expect(result.sentCount == 2100 - 21)
        let received = try receivers.drainAll(expected: expected.map(\.count))
        #expect(received == expected)
    }

    /// One group with a delivered, a too-large, a wrong-family, a port-0 and another delivered
    /// recipient, sent through `backend`: the per-recipient errors and what each receiver got.
    static func mixedGroup(backend: GroupSendBackend, family: AddressFamily) throws -> (errors: [Errno?], received: [[[UInt8]]]) {
        let receivers = try Receivers(count: 3, family: family)
        let sender = try GroupSocket(bindingTo: loopback(family), backend: backend)
        let payload = pattern(300, seed: 9)
        let otherFamily: SocketAddress = family == .ipv4 ? .ipv6Loopback(port: 9) : .ipv4Loopback(port: 0)
        let recipients = [
            Recipient(receivers.addresses[0], prepend: [0xA0], append: [0xA1]),
            Recipient(receivers.addresses[1], prepend: [UInt8](repeating: 1, count: 65_300)),
            Recipient(otherFamily, prepend: [0xC0]),
            Recipient(loopback(family, port: 0), prepend: [0xD0]),
            Recipient(receivers.addresses[2], append: [0xE1, 0xE2]),
            Recipient(receivers.addresses[0], prepend: [0xF0]),
        ]
        let result = try sender.send(payload, to: recipients)
        let received = try receivers.drainAll(expected: [2, 0, 1])
        return (result.errors, received)
    }

    /// The group ``mixedGroup(backend:family:)`` must give on every backend.
    static func expectedMixedGroup(family: AddressFamily) -> (errors: [Errno?], received: [[[UInt8]]]) {
        let payload = pattern(300, seed: 9)
        // IPv4 socket: an IPv6 destination is EAFNOSUPPORT. IPv6 socket bound to ::1: an IPv4
        // destination (sent as ::ffff:127.0.0.1) cannot be reached from ::1, ENETUNREACH.
        let wrongFamily: Errno = family == .ipv4 ? .addressFamilyNotSupported : .networkUnreachable
        return (
            [nil, .messageTooLong, wrongFamily, .invalidArgument, nil, nil],
            [[[0xA0] + payload + [0xA1], [0xF0] + payload], [], [payload + [0xE1, 0xE2]]]
        )
    }
}
