import GroupUnicast
import SystemPackage
import Testing

extension GroupUnicastTests {
    /// Member groups kept in user space, sent through the host backends (no module needed).
    @Suite("Member groups, user space")
    struct UserSpaceGroup {
        @Test("without kernel groups, makeGroup() is user space and .sendgroup is refused by name")
        func placement() throws {
            let socket = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            #expect(try socket.makeGroup().backend == .sendmmsg)
            #expect(try socket.makeGroup(backend: .sendmmsg).backend == .sendmmsg)
            #expect(throws: GroupUnicastError.kernelGroupsUnavailable(reason: "the socket's backend is sendmmsg, not sendgroup")) {
                try socket.makeGroup(backend: .sendgroup)
            }
        }

        @Test("batch of 3 payloads, byte-exact, to 1/64/1000 members", arguments: DeliveryCase.all(userSpaceFlavors, receivers: [1, 64, 1000]))
        func byteExactDelivery(_ delivery: DeliveryCase<GroupFlavor>) throws {
            try MemberGroupChecks.byteExactDelivery(delivery.sender, family: delivery.family, members: delivery.receivers)
        }

        @Test("payload by payload, ascending member id; 70 payloads", arguments: userSpaceFlavors, [AddressFamily.ipv4, .ipv6])
        func sendOrder(flavor: GroupFlavor, family: AddressFamily) throws {
            try MemberGroupChecks.sendOrder(flavor, family: family)
        }

        @Test("membership refusals: EEXIST, ENOENT, EINVAL, EMSGSIZE, E2BIG, ENOSPC, all or nothing", arguments: userSpaceFlavors)
        func membershipErrors(flavor: GroupFlavor) throws {
            try MemberGroupChecks.membershipErrors(flavor)
        }

        @Test("update and remove take effect on the next send", arguments: userSpaceFlavors, [AddressFamily.ipv4, .ipv6])
        func updateAndRemove(flavor: GroupFlavor, family: AddressFamily) throws {
            try MemberGroupChecks.updateAndRemoveTakeEffect(flavor, family: family)
        }

        @Test("failures per member and payload (ENETUNREACH, EINVAL); failure limit", arguments: userSpaceFlavors)
        func failuresPerMember(flavor: GroupFlavor) throws {
            _ = try MemberGroupChecks.failuresPerMember(flavor)
        }

        @Test("EAFNOSUPPORT and EMSGSIZE per member; an oversized payload is refused whole",
              arguments: userSpaceFlavors, [AddressFamily.ipv4, .ipv6])
        func wrongFamilyAndTooLarge(flavor: GroupFlavor, family: AddressFamily) throws {
            _ = try MemberGroupChecks.wrongFamilyAndTooLarge(flavor, family: family)
        }

        @Test("empty groups and batches; close, and closing the socket, close the group", arguments: userSpaceFlavors)
        func emptyAndClosed(flavor: GroupFlavor) throws {
            try MemberGroupChecks.emptyAndClosed(flavor)
        }

        @Test("2,000 groups opened and closed leak no descriptor")
        func noDescriptorLeak() throws {
            try MemberGroupChecks.noDescriptorLeak(.userSpace(.sendmmsg))
        }
    }

    /// The same checks on kernel-resident groups (group fd), and kernel against user space.
    ///
    /// Skipped with a message when /dev/sendgroup is missing, unless GROUPUNICAST_REQUIRE_KERNEL=1
    /// (the VM runner): then they run, and a missing module fails them.
    @Suite("Member groups, kernel (group fd)", .enabled(if: KernelGate.shouldRun, KernelGate.skipReason))
    struct KernelGroupFD {
        @Test("the module offers groups; makeGroup() on a kernel socket is a kernel group")
        func moduleOffersGroups() throws {
            #expect(KernelGate.loaded, "GROUPUNICAST_REQUIRE_KERNEL=1 but /dev/sendgroup is missing")
            let socket = try GroupSocket(family: .ipv4, backend: .sendgroup)
            let info = try #require(socket.kernelModuleInfo)
            #expect(info.supportsGroups, "SENDGROUP_FEATURE_GROUPS missing from features \(info.features)")
            #expect(try socket.makeGroup().backend == .sendgroup)
            #expect(try socket.makeGroup(backend: .sendmmsg).backend == .sendmmsg)
            let host = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            #expect(try host.makeGroup().backend == .sendmmsg)
        }

        @Test("batch of 3 payloads, byte-exact, to 1/64/1000 members", arguments: DeliveryCase.all([GroupFlavor.kernel], receivers: [1, 64, 1000]))
        func byteExactDelivery(_ delivery: DeliveryCase<GroupFlavor>) throws {
            try MemberGroupChecks.byteExactDelivery(delivery.sender, family: delivery.family, members: delivery.receivers)
        }

        @Test("payload by payload, ascending member id; 70 payloads (two ioctls)", arguments: [AddressFamily.ipv4, .ipv6])
        func sendOrder(family: AddressFamily) throws {
            try MemberGroupChecks.sendOrder(.kernel, family: family)
        }

        @Test("membership refusals: EEXIST, ENOENT, EINVAL, EMSGSIZE, E2BIG, ENOSPC, all or nothing")
        func membershipErrors() throws {
            try MemberGroupChecks.membershipErrors(.kernel)
        }

        @Test("update and remove take effect on the next send", arguments: [AddressFamily.ipv4, .ipv6])
        func updateAndRemove(family: AddressFamily) throws {
            try MemberGroupChecks.updateAndRemoveTakeEffect(.kernel, family: family)
        }

        @Test("failures per member and payload (ENETUNREACH, EINVAL); failure limit")
        func failuresPerMember() throws {
            _ = try MemberGroupChecks.failuresPerMember(.kernel)
        }

        @Test("EAFNOSUPPORT and EMSGSIZE per member; an oversized payload is refused whole",
              arguments: [AddressFamily.ipv4, .ipv6])
        func wrongFamilyAndTooLarge(family: AddressFamily) throws {
            _ = try MemberGroupChecks.wrongFamilyAndTooLarge(.kernel, family: family)
        }

        @Test("empty groups and batches; close, and closing the socket, close the group fd")
        func emptyAndClosed() throws {
            try MemberGroupChecks.emptyAndClosed(.kernel)
        }

        @Test("2,000 group fds opened and closed leak no descriptor")
        func noDescriptorLeak() throws {
            try MemberGroupChecks.noDescriptorLeak(.kernel)
        }

        @Test("kernel and user-space groups: same results, same bytes at every receiver",
              arguments: [AddressFamily.ipv4, .ipv6], [3, 1000])
        func equivalentToUserSpace(family: AddressFamily, count: Int) throws {
            let receivers = try Receivers(count: count, family: family)
            let recipients = variedRecipients(receivers.addresses)
            var members = recipients.enumerated().map { GroupMember(id: MemberGroupChecks.memberID($0.offset), recipient: $0.element) }
            // One member of each failure kind, and one over the UDP size limit with this payload.
            members.append(GroupMember(id: 1 << 40, loopback(family, port: 0)))
            members.append(GroupMember(id: 7, family == .ipv4 ? .ipv6Loopback(port: 9) : receivers.addresses[0],
                                       prepend: [UInt8](repeating: 7, count: MemberGroup.maxPrivateBytes)))
            let payloads = [pattern(1400, seed: count), [], pattern(GroupSocket.maxDatagramSize - 100, seed: 1)]

            var outcomes: [GroupFlavor: (GroupOutcome, [[[UInt8]]])] = [:]
            // Every group on a sendgroup socket: the user-space ones send with their own backend.
            for flavor in [GroupFlavor.kernel, .userSpace(.sendmmsg), .userSpace(.socket)] {
                let socket = try GroupSocket(bindingTo: loopback(family), backend: .sendgroup,
                                             options: .init(sendBufferSize: 4 << 20))
                let group = try socket.makeGroup(backend: flavor.expectedBackend)
                #expect(group.backend == flavor.expectedBackend)
                try group.add(members)
                var received: [[[UInt8]]] = []
                var outcome: GroupOutcome?
                // One payload per send so the 1,000 receivers' buffers never overflow.
                for (index, payload) in payloads.enumerated() {
                    let result = try group.send(payload)
                    var shifted = GroupOutcome(result)
                    shifted.failures = shifted.failures.map { GroupSendFailure(recipient: $0.recipient, payloadIndex: index, error: $0.error) }
                    outcome = outcome.map {
                        GroupOutcome(sentCount: $0.sentCount + shifted.sentCount, failureCount: $0.failureCount + shifted.failureCount,
                                     failures: $0.failures + shifted.failures)
                    } ?? shifted
                    let round = try (0..<count).map { try receivers.drain($0, expected: $0 == 0 && family == .ipv6 && index < 2 ? 2 : 1, maxSize: 65_535).map(\.bytes) }
                    received = received.isEmpty ? round : zip(received, round).map { $0 + $1 }
                }
                outcomes[flavor] = (try #require(outcome), received)
            }
            let kernel = try #require(outcomes[.kernel])
            #expect(kernel.0.failureCount > 0)
            for flavor in [GroupFlavor.userSpace(.sendmmsg), .userSpace(.socket)] {
                let other = try #require(outcomes[flavor])
                #expect(other.0 == kernel.0, "\(flavor.testDescription)")
                for index in 0..<count where other.1[index] != kernel.1[index] {
                    Issue.record("receiver \(index): \(flavor.testDescription) differs from the kernel group")
                }
            }
        }
    }
}

extension GroupOutcome {
    init(sentCount: Int, failureCount: Int, failures: [GroupSendFailure<UInt64>]) {
        self.sentCount = sentCount
        self.failureCount = failureCount
        self.failures = failures
    }
}
