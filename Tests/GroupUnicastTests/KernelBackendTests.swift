import GroupUnicast
import SystemPackage
import Testing

extension GroupUnicastTests {
    /// The same checks on the `.sendgroup` backend, and `.sendgroup` against `.sendmmsg`.
    ///
    /// Skipped with a message when /dev/sendgroup is missing, unless GROUPUNICAST_REQUIRE_KERNEL=1
    /// (the VM runner): then they run, and a missing module fails them.
    @Suite("Group send, kernel backend", .enabled(if: KernelGate.shouldRun, KernelGate.skipReason))
    struct KernelGroupSend {
        @Test("the sendgroup module is loaded")
        func moduleLoaded() throws {
            #expect(KernelGate.loaded, "GROUPUNICAST_REQUIRE_KERNEL=1 but /dev/sendgroup is missing")
            let socket = try GroupSocket(family: .ipv4, backend: .sendgroup)
            #expect(socket.backend == .sendgroup)
            let info = try #require(socket.kernelModuleInfo)
            #expect(info.abiVersion >= 1)
            #expect(info.maxRecipients >= 1)
            #expect(info.maxDatagram >= GroupSocket.maxDatagramSize)
            #expect(try GroupSocket(family: .ipv6).backend == .sendgroup, ".automatic must pick the loaded module")
        }

        @Test("byte-exact delivery to 1/2/64/1024 loopback receivers", arguments: DeliveryCase.all([GroupSendBackend.sendgroup], receivers: [1, 2, 64, 1024]))
        func byteExactDelivery(_ delivery: DeliveryCase<GroupSendBackend>) throws {
            try GroupSendChecks.byteExactDelivery(
                backend: delivery.sender, family: delivery.family, receivers: delivery.receivers)
        }

        @Test("datagram over 65,507 bytes: EMSGSIZE for that recipient", arguments: [AddressFamily.ipv4, .ipv6])
        func messageTooLong(family: AddressFamily) throws {
            try GroupSendChecks.messageTooLong(backend: .sendgroup, family: family)
        }

        @Test("IPv6 recipient on an IPv4 socket: EAFNOSUPPORT, neighbours delivered")
        func wrongFamily() throws {
            try GroupSendChecks.wrongFamily(backend: .sendgroup)
        }

        @Test("unreachable (ENETUNREACH) and port 0 (EINVAL) recipients")
        func unreachableAndInvalid() throws {
            try GroupSendChecks.unreachableAndInvalid(backend: .sendgroup)
        }

        @Test("2001:db8::1 is ENETUNREACH where this host has no route to it",
              .enabled(if: try !GroupSendChecks.hasRoute(to: SocketAddress(parsing: "[2001:db8::1]:9")),
                       "this host has a route to 2001:db8::1 (a default IPv6 route): not sending there"))
        func documentationPrefixUnreachable() throws {
            #expect(try GroupSendChecks.documentationPrefixUnreachable(backend: .sendgroup))
        }

        @Test("groups larger than max_recipients are split", arguments: [AddressFamily.ipv4, .ipv6])
        func largeGroupAcrossChunks(family: AddressFamily) throws {
            try GroupSendChecks.largeGroupAcrossChunks(backend: .sendgroup, family: family)
        }

        @Test("the mixed group gives the host backends' result", arguments: [AddressFamily.ipv4, .ipv6])
        func mixedGroup(family: AddressFamily) throws {
            let expected = GroupSendChecks.expectedMixedGroup(family: family)
            let outcome = try GroupSendChecks.mixedGroup(backend: .sendgroup, family: family)
            #expect(outcome.errors == expected.errors)
            #expect(outcome.received == expected.received)
        }

        @Test("kernel and sendmmsg: same results, same bytes at every receiver",
              arguments: [AddressFamily.ipv4, .ipv6], [3, 1024, 1500])
        func equivalentToSendmmsg(family: AddressFamily, count: Int) throws {
            let receivers = try Receivers(count: count, family: family)
            let payload = pattern(1400, seed: count)
            var recipients = variedRecipients(receivers.addresses)
            // One recipient of each failure kind, in the middle of the group.
            recipients.insert(Recipient(loopback(family, port: 0)), at: count / 2)
            recipients.insert(Recipient(receivers.addresses[0], prepend: [UInt8](repeating: 1, count: 64_200)), at: count / 3)

            var outcomes: [GroupSendBackend: (errors: [Errno?], received: [[[UInt8]]])] = [:]
            for backend in [GroupSendBackend.sendgroup, .sendmmsg] {
                let sender = try GroupSocket(bindingTo: loopback(family), backend: backend)
                let result = try sender.send(payload, to: recipients)
                #expect(result.backend == backend)
                outcomes[backend] = (result.errors, try receivers.drainAll(expected: [Int](repeating: 1, count: count)))
            }
            let kernel = try #require(outcomes[.sendgroup])
            let sendmmsg = try #require(outcomes[.sendmmsg])
            #expect(kernel.errors == sendmmsg.errors)
            #expect(kernel.errors.count { $0 != nil } == 2)
            for index in 0..<count {
                #expect(kernel.received[index] == sendmmsg.received[index], "receiver \(index)")
            }
        }
    }
}
