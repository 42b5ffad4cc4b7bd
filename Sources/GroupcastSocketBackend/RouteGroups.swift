import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization
import SystemPackage

/// The sendgroup backend's kernel groups (``SendgroupMode/groups``): one ``MemberGroup`` in the
/// module per route with recipients, its members that route's ``Route/recipients`` (the origin
/// when the table echoes, then the subscribers, each with its prepend and append).
///
/// ``install(_:)`` runs on the control thread and brings every group in step with the new table:
/// removals first (`SENDGROUP_GROUP_IOC_REMOVE`), then changed private bytes (`_UPDATE`), then
/// newcomers (`_ADD`); groups of routes that disappear or lose their last recipient are closed.
/// It holds the lock under which the forwarder thread handles each batch (``forward(_:)``),
/// and leaves the table there for the next batch: so no packet is sent with a table whose
/// members are not in the kernel yet, and once ``install(_:)`` returns a removed subscriber gets
/// nothing more, by group send or by the one-shot sends of backlogs.
///
/// Member ids are dense per group (the module's xarray costs least so): a removed member's id is
/// given to the next newcomer. A member is its address: an address a route names twice (the
/// control plane never does) is one member.
///
/// The diff costs one pass over each changed route's recipients: a join, a leave or a
/// preference change adds or removes a few in the middle, so the common head and tail are
/// skipped by comparison, and only what lies between is hashed.
final class RouteGroups: Sendable {
    private struct RouteGroup: Sendable {
        let group: MemberGroup
        /// The recipients as last installed: what the kernel group holds, in the table's order.
        var recipients: [Recipient] = []
        /// The route's origin while the table echoes (a member like the others).
        var echo: SocketAddress?
        var ids: [SocketAddress: UInt64] = [:]
        var addresses: [UInt64: SocketAddress] = [:]
        var freeIDs: [UInt64] = []
        var nextID: UInt64 = 0

        mutating func allocateID() -> UInt64 {
            if let id = freeIDs.popLast() { return id }
            defer { nextID += 1 }
            return nextID
        }
    }

    private struct State: Sendable {
        /// Route SSRC -> its kernel group.
        var groups: [UInt32: RouteGroup] = [:]
        /// The newest table, until the forwarder thread takes it (``forward(_:)``).
        var pendingTable: RoutingTable?
    }

    private let socket: GroupSocket
    private let logger: Logger
    private let state = Mutex(State())

    init(socket: GroupSocket, logger: Logger) {
        self.socket = socket
        self.logger = logger
    }

    /// Brings the kernel groups in step with `table`, then leaves it for the next batch.
    ///
    /// A route whose group cannot be created or changed (the fd limit, the memory cgroup) loses
    /// its group, logged: its packets then go out one-shot, with the same table.
    func install(_ table: RoutingTable) {
        state.withLock { state in
            for ssrc in Array(state.groups.keys) where table[ssrc].map({ $0.recipients.isEmpty }) ?? true {
                try? state.groups.removeValue(forKey: ssrc)?.group.close()
            }
            for (ssrc, route) in table.routes where !route.recipients.isEmpty {
                let echo = route.echoes ? route.recipients.first?.address : nil
                if let current = state.groups[ssrc], current.echo == echo, current.recipients == route.recipients { continue }
                do throws(GroupUnicastError) {
                    var routeGroup: RouteGroup
                    if let existing = state.groups.removeValue(forKey: ssrc) {
                        routeGroup = existing
                    } else {
                        routeGroup = RouteGroup(group: try socket.makeGroup(backend: .sendgroup))
                    }
                    do throws(GroupUnicastError) {
                        try Self.synchronize(&routeGroup, with: route)
                        state.groups[ssrc] = routeGroup
                    } catch {
                        // Members the kernel may still hold must not get packets of a table without them.
                        try? routeGroup.group.close()
                        throw error
                    }
                } catch {
                    logger.warning("route \(ssrc): kernel group not kept (\(error)); its packets go out one-shot")
                }
            }
            state.pendingTable = table
        }
    }

    /// Runs `body` (one batch of the forwarder thread) with ``install(_:)`` held off: `body` gets
    /// the table installed since the last call, if any, to apply first, and the group send.
    func forward<Result>(_ body: (RoutingTable?, ForwardingEngine.RouteSend) -> Result) -> Result {
        state.withLock { state in
            let table = state.pendingTable.take()
            let groups = state.groups
            return body(table) { route, payloads in
                groups[route.ssrc].map { Self.send(payloads, through: $0) }
            }
        }
    }

    /// REMOVE, UPDATE, ADD: the kernel group of `routeGroup` becomes `route.recipients`.
    private static func synchronize(_ routeGroup: inout RouteGroup, with route: Route) throws(GroupUnicastError) {
        let old = routeGroup.recipients, new = route.recipients
        let common = min(old.count, new.count)
        var head = 0
        while head < common && old[head] == new[head] { head += 1 }
        var tail = 0
        while tail < common - head && old[old.count - 1 - tail] == new[new.count - 1 - tail] { tail += 1 }
        let gone = old[head..<(old.count - tail)], came = new[head..<(new.count - tail)]
        // What stays in the head and the tail is unchanged; between them an address may have
        // left, arrived, moved, or kept its place with new private bytes.
        var wanted: [SocketAddress: Recipient] = [:]
        for recipient in came where wanted[recipient.address] == nil { wanted[recipient.address] = recipient }
        let kept = Set(new[..<head].map(\.address)).union(new[(new.count - tail)...].map(\.address))
        let leaving = gone.map(\.address).filter { wanted[$0] == nil && !kept.contains($0) }
        var previous: [SocketAddress: Recipient] = [:]
        for recipient in gone { previous[recipient.address] = recipient }
        var changed: [GroupMember] = []
        var arriving: [GroupMember] = []
        for (address, recipient) in wanted where !kept.contains(address) {
            if let id = routeGroup.ids[address] {
                if previous[address].map({ $0 != recipient }) ?? false { changed.append(GroupMember(id: id, recipient: recipient)) }
            } else {
                arriving.append(GroupMember(id: routeGroup.allocateID(), recipient: recipient))
            }
        }
        if !leaving.isEmpty {
            let ids = Set(leaving).compactMap { routeGroup.ids[$0] }
            try routeGroup.group.remove(ids)
            for address in Set(leaving) {
                guard let id = routeGroup.ids.removeValue(forKey: address) else { continue }
                routeGroup.addresses[id] = nil
                routeGroup.freeIDs.append(id)
            }
        }
        try routeGroup.group.update(changed)
        try routeGroup.group.add(arriving)
        for member in arriving {
            routeGroup.ids[member.recipient.address] = member.id
            routeGroup.addresses[member.id] = member.recipient.address
        }
        routeGroup.recipients = new
        routeGroup.echo = route.echoes ? new.first?.address : nil
    }

    /// `payloads`, in order, to every member of `routeGroup` in one `SENDGROUP_GROUP_IOC_SEND`
    /// per 64 payloads. A call refused as a whole fails every copy with its errno.
    private static func send(_ payloads: [[UInt8]], through routeGroup: RouteGroup) -> RouteDelivery {
        let memberCount = routeGroup.addresses.count
        let echoIsMember = routeGroup.echo != nil
        do throws(GroupUnicastError) {
            let result = try routeGroup.group.sendBatch(payloads, failureLimit: memberCount * payloads.count)
            let failures = result.failures.compactMap { failure -> RouteDelivery.Failure? in
                guard let address = routeGroup.addresses[failure.recipient] else { return nil }
                return RouteDelivery.Failure(
                    payloadIndex: failure.payloadIndex, address: address, isEcho: address == routeGroup.echo, error: failure.error)
            }
            return RouteDelivery(memberCount: memberCount, echoIsMember: echoIsMember, failures: failures)
        } catch {
            let errno = error.errno ?? .badFileDescriptor
            var failures: [RouteDelivery.Failure] = []
            failures.reserveCapacity(memberCount * payloads.count)
            for index in payloads.indices {
                for address in routeGroup.addresses.values {
                    failures.append(.init(payloadIndex: index, address: address, isEcho: address == routeGroup.echo, error: errno))
                }
            }
            return RouteDelivery(memberCount: memberCount, echoIsMember: echoIsMember, failures: failures)
        }
    }

    /// Closes every group (the SFU's stop).
    func close() {
        state.withLock { state in
            for routeGroup in state.groups.values { try? routeGroup.group.close() }
            state.groups.removeAll()
        }
    }
}
