import CGroupcastFastPath
import Glibc
import GroupUnicast

/// Where a packet to an address leaves this host: what the kernel's output path would use, for
/// data planes that write Ethernet frames themselves (the XDP/TC fast path, the AF_XDP ring).
///
/// Asked of the kernel over rtnetlink in the caller's network namespace (`RTM_GETROUTE`, then
/// `RTM_GETNEIGH` for the gateway or the on-link destination), like `ip route get` + `ip neigh get`.
/// The C API is `groupcast_nexthop.h`. Addresses are ``SocketAddress`` values whose port does not
/// matter: the ports of ``sourceAddress`` and ``via`` are 0.
public struct NextHop: Sendable, Hashable, CustomStringConvertible {
    /// Egress interface: for a route through an 802.1Q VLAN device, the device below it.
    public var interface: String
    public var interfaceIndex: UInt32
    /// The VLAN the packet is tagged with (the route goes through that VLAN device,
    /// ``vlanInterface``); 0: untagged.
    public var vlan: UInt16
    public var vlanInterface: String?
    /// The next hop's MAC address: the gateway's, or the destination's on link. All zero on
    /// devices without link-layer resolution (loopback, NOARP).
    public var destinationMAC: [UInt8]
    /// The egress interface's MAC address (zero on loopback).
    public var sourceMAC: [UInt8]
    /// The source address the route prefers, if it names one.
    public var sourceAddress: SocketAddress?
    /// The address that was resolved to ``destinationMAC``: the gateway or the destination.
    public var via: SocketAddress
    /// The route goes through a gateway.
    public var isGateway: Bool
    /// No link-layer resolution on this device (loopback, NOARP).
    public var isNoARP: Bool
    /// The destination is one of this host's own addresses.
    public var isLocal: Bool

    /// Resolves the next hop towards `destination` (its port is ignored).
    ///
    /// - Parameter probe: when the neighbour is not resolved, ask the kernel to resolve it (as if
    ///   a packet were waiting for it: ARP request / neighbour solicitation; needs `CAP_NET_ADMIN`)
    ///   before throwing ``FastPathError/neighbourUnresolved(_:)``: a later call will then find it.
    /// - Throws: ``FastPathError``: `.unreachable`, `.neighbourUnresolved`, `.unsupportedLink`,
    ///   `.notRoot` (probing needs `CAP_NET_ADMIN`), `.invalidArgument`, `.systemCall`.
    public static func resolve(_ destination: SocketAddress, probe: Bool = false) throws(FastPathError) -> NextHop {
        var out = gcfp_nexthop()
        var err = gcfp_error()
        let ret = destination.addressBytes.withUnsafeBytes { raw in
            gcfp_resolve_nexthop(destination.fastPathFamily, raw.baseAddress, probe ? UInt32(GCFP_RESOLVE_PROBE) : 0, &out, &err)
        }
        if ret != 0 { throw FastPathError(err) }
        return NextHop(out)
    }

    init(_ n: gcfp_nexthop) {
        var n = n
        interfaceIndex = n.ifindex
        interface = cString(n.ifname)
        vlan = n.vlan_id
        vlanInterface = n.vlan_id == 0 ? nil : cString(n.vlan_ifname)
        destinationMAC = withUnsafeBytes(of: &n.dst_mac) { Array($0) }
        sourceMAC = withUnsafeBytes(of: &n.src_mac) { Array($0) }
        let family = n.family
        let source = withUnsafeBytes(of: &n.src_addr) { SocketAddress(fastPathFamily: family, address: $0, port: 0) }
        sourceAddress = source.addressBytes.allSatisfy { $0 == 0 } ? nil : source
        via = withUnsafeBytes(of: &n.via) { SocketAddress(fastPathFamily: family, address: $0, port: 0) }
        isGateway = n.flags & UInt8(GCFP_NH_F_GATEWAY) != 0
        isNoARP = n.flags & UInt8(GCFP_NH_F_NOARP) != 0
        isLocal = n.flags & UInt8(GCFP_NH_F_LOCAL) != 0
    }

    public var description: String {
        let mac = destinationMAC.map { hex2($0) }.joined(separator: ":")
        return "\(isGateway ? "via \(via.hostDescription) " : "")dev \(vlanInterface.map { "\($0) (\(interface) vlan \(vlan))" } ?? interface) lladdr \(mac)\(sourceAddress.map { " src \($0.hostDescription)" } ?? "")"
    }
}

private func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
