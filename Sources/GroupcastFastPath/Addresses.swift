import CGroupcastFastPath
import GroupUnicast

/// GroupUnicast's ``SocketAddress`` as the fast path's C structs hold addresses: a family
/// (`GC_FAMILY_IPV4`, `GC_FAMILY_IPV6`) and 4 or 16 bytes in network order, the port apart.
extension SocketAddress {
    /// `GC_FAMILY_IPV4` or `GC_FAMILY_IPV6`.
    var fastPathFamily: UInt8 {
        switch self {
        case .ipv4: UInt8(GC_FAMILY_IPV4)
        case .ipv6: UInt8(GC_FAMILY_IPV6)
        }
    }

    /// The address bytes in network order: 4 (IPv4) or 16 (IPv6).
    var addressBytes: [UInt8] {
        switch self {
        case .ipv4(let address, _): address.bytes
        case .ipv6(let address, _, _): address.bytes
        }
    }

    /// The address without the port: `10.0.0.1`, `fd00::1` (next hops and route listings).
    public var hostDescription: String {
        switch self {
        case .ipv4(let address, _): "\(address)"
        case .ipv6(let address, _, _): "\(address)"
        }
    }

    /// `host` (an IPv4 or IPv6 address, no brackets) with `port`; `nil` for anything else.
    public init?(host: String, port: UInt16) {
        if let v4 = IPv4Address(host) {
            self = .ipv4(v4, port: port)
        } else if let v6 = IPv6Address(host) {
            self = .ipv6(v6, port: port)
        } else {
            return nil
        }
    }

    /// The address as a served destination (`struct gc_local_addr`, VLAN 0): the attach and ring
    /// options' listen address. A wildcard address is the zeroed key (every address served).
    public var localAddressKey: gc_local_addr {
        var key = gc_local_addr()
        let bytes = addressBytes
        guard !bytes.allSatisfy({ $0 == 0 }) else { return key }
        key.family = fastPathFamily
        withUnsafeMutableBytes(of: &key.addr) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return key
    }

    /// The address of `family` in `address` (4 or 16 bytes, network order) with `port`.
    init(fastPathFamily family: UInt8, address: UnsafeRawBufferPointer, port: UInt16) {
        if family == UInt8(GC_FAMILY_IPV4) {
            self = .ipv4(IPv4Address(address[0], address[1], address[2], address[3]), port: port)
        } else {
            self = .ipv6(IPv6Address(bytes: address.prefix(16)), port: port)
        }
    }
}
