import GroupUnicast
import SystemPackage
import Testing

/// One byte-exact delivery case: what sends (a ``GroupSendBackend``, a ``GroupFlavor``) × address
/// family × receivers; the suites of the socket, the kernel backend and the groups share it.
struct DeliveryCase<Sender: Sendable>: Sendable, CustomTestStringConvertible {
    var sender: Sender
    var family: AddressFamily
    var receivers: Int

    var testDescription: String {
        let sender = (sender as? any CustomTestStringConvertible)?.testDescription ?? "\(sender)"
        return "\(sender) \(family) × \(receivers)"
    }

    /// Every sender × IPv4, IPv6 × each of `receivers`.
    static func all(_ senders: [Sender], receivers: [Int]) -> [DeliveryCase] {
        senders.flatMap { sender in
            [AddressFamily.ipv4, .ipv6].flatMap { family in
                receivers.map { DeliveryCase(sender: sender, family: family, receivers: $0) }
            }
        }
    }
}

extension GroupUnicastTests {
    /// Group sends through the backends that need no kernel module.
    @Suite("Group send, host backends")
    struct HostGroupSend {
        @Test("byte-exact delivery to 1/2/64/1024 loopback receivers", arguments: DeliveryCase.all(hostBackends, receivers: [1, 2, 64, 1024]))
        func byteExactDelivery(_ delivery: DeliveryCase<GroupSendBackend>) throws {
            try GroupSendChecks.byteExactDelivery(
                backend: delivery.sender, family: delivery.family, receivers: delivery.receivers)
        }

        @Test("datagram over 65,507 bytes: EMSGSIZE for that recipient", arguments: hostBackends, [AddressFamily.ipv4, .ipv6])
        func messageTooLong(backend: GroupSendBackend, family: AddressFamily) throws {
            try GroupSendChecks.messageTooLong(backend: backend, family: family)
        }

        @Test("IPv6 recipient on an IPv4 socket: EAFNOSUPPORT, neighbours delivered", arguments: hostBackends)
        func wrongFamily(backend: GroupSendBackend) throws {
            try GroupSendChecks.wrongFamily(backend: backend)
        }

        @Test("unreachable (ENETUNREACH) and port 0 (EINVAL) recipients", arguments: hostBackends)
        func unreachableAndInvalid(backend: GroupSendBackend) throws {
            try GroupSendChecks.unreachableAndInvalid(backend: backend)
        }

        @Test("2001:db8::1 is ENETUNREACH where this host has no route to it",
              .enabled(if: try !GroupSendChecks.hasRoute(to: SocketAddress(parsing: "[2001:db8::1]:9")),
                       "this host has a route to 2001:db8::1 (a default IPv6 route): not sending there"),
              arguments: hostBackends)
        func documentationPrefixUnreachable(backend: GroupSendBackend) throws {
            #expect(try GroupSendChecks.documentationPrefixUnreachable(backend: backend))
        }

        @Test("2,100 recipients split into chunks with failures at chunk edges", arguments: hostBackends, [AddressFamily.ipv4, .ipv6])
        func largeGroupAcrossChunks(backend: GroupSendBackend, family: AddressFamily) throws {
            try GroupSendChecks.largeGroupAcrossChunks(backend: backend, family: family)
        }

        @Test("the same group gives the same result on every host backend", arguments: [AddressFamily.ipv4, .ipv6])
        func sameResultAcrossBackends(family: AddressFamily) throws {
            let expected = GroupSendChecks.expectedMixedGroup(family: family)
            for backend in hostBackends {
                let outcome = try GroupSendChecks.mixedGroup(backend: backend, family: family)
                #expect(outcome.errors == expected.errors, "\(backend)")
                #expect(outcome.received == expected.received, "\(backend)")
            }
        }

        @Test("an empty group makes no system call and sends nothing")
        func emptyGroup() throws {
            let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            let result = try sender.send([1, 2, 3], to: [])
            #expect(result.recipientCount == 0)
            #expect(result.allSent)
        }

        @Test("an IPv4 recipient on a dual-stack IPv6 socket is sent IPv4-mapped", arguments: hostBackends)
        func ipv4RecipientOnDualStackSocket(backend: GroupSendBackend) throws {
            let receivers = try Receivers(count: 1, family: .ipv4)
            let sender = try GroupSocket(bindingTo: .ipv6(.any, port: 0), backend: backend, options: .init(ipv6Only: false))
            let result = try sender.send([5, 6], to: [Recipient(receivers.addresses[0], prepend: [4])])
            #expect(result.allSent)
            #expect(try receivers.drain(0, expected: 1).map(\.bytes) == [[4, 5, 6]])
        }

        @Test("a nonblocking socket sends; single-address send throws a named error")
        func singleAddressSend() throws {
            let receivers = try Receivers(count: 1, family: .ipv4)
            let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg, options: .init(nonBlocking: true))
            try sender.send([1], to: receivers.addresses[0])
            #expect(try receivers.drain(0, expected: 1).map(\.bytes) == [[1]])
            #expect(throws: GroupUnicastError.systemCall(call: "sendmsg([::1]:9)", errno: .addressFamilyNotSupported)) {
                try sender.send([1], to: SocketAddress.ipv6Loopback(port: 9))
            }
        }
    }
}
