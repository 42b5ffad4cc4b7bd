#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast

extension UnsafeMutablePointer<CGroupUnicast_mmsghdr> {
    /// The `struct msghdr` of message `slot`, for `sendmsg(2)`/`recvmsg(2)`.
    func header(_ slot: Int) -> UnsafeMutablePointer<msghdr> {
        let offset = MemoryLayout<CGroupUnicast_mmsghdr>.offset(of: \.msg_hdr)!
        return (UnsafeMutableRawPointer(self + slot) + offset).assumingMemoryBound(to: msghdr.self)
    }
}

/// Buffers up to this size stay allocated between calls; larger ones are freed after the call.
internal let retainedBytesLimit = 1 << 20

/// The per-socket memory a group send is assembled in: one `sockaddr_storage`, three iovecs
/// (prepend, shared payload, append) and one `mmsghdr` or `sendgroup_recipient` per recipient of
/// a chunk, plus an arena holding a copy of the chunk's prepend and append bytes (small
/// per-recipient headers; the shared payload is never copied). Reused across calls.
internal struct SendBuffers: ~Copyable {
    private(set) var capacity = 0
    private(set) var addresses: UnsafeMutablePointer<sockaddr_storage>?
    private(set) var iovecs: UnsafeMutablePointer<iovec>?
    private(set) var messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>?
    private(set) var entries: UnsafeMutablePointer<sendgroup_recipient>?
    private(set) var results: UnsafeMutablePointer<Int32>?
    private var arena = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// What a chunk is laid out as.
    enum Layout {
        /// One `mmsghdr` per recipient, its iovecs prepend, shared payload, append
        /// (`sendmmsg(2)`, or `sendmsg(2)` on each `msg_hdr`).
        case messages
        /// One `sendgroup_recipient` per recipient and its result slot (`SENDGROUP_IOC_SEND`).
        case sendgroupRecipients
    }

    init() {}

    /// Lays out `recipients[indices]` for one system call as `layout` says; `payload` stays where it is.
    mutating func prepare(
        _ recipients: [Recipient],
        _ indices: ArraySlice<Int>,
        payload: GroupSocket.PayloadReference,
        family: AddressFamily,
        layout: Layout
    ) {
        reserve(count: indices.count, arenaBytes: indices.reduce(0) { total, index in
            total + recipients[index].prepend.count + recipients[index].append.count
        })
        guard let addresses, let iovecs, let messages, let entries, let results else {
            preconditionFailure("send buffers not allocated")
        }
        var arenaOffset = 0
        let arenaBase = arena.baseAddress
        func copyIntoArena(_ bytes: [UInt8]) -> iovec {
            guard !bytes.isEmpty, let arenaBase else { return iovec(iov_base: nil, iov_len: 0) }
            let start = arenaBase + arenaOffset
            bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            arenaOffset += bytes.count
            return iovec(iov_base: start, iov_len: bytes.count)
        }
        let shared = iovec(iov_base: payload.pointer, iov_len: payload.count)

        for (slot, index) in indices.enumerated() {
            let recipient = recipients[index]
            let address = family == .ipv6 ? recipient.address.mappedToIPv6 : recipient.address
            let addressLength = address.write(to: addresses + slot)
            let prepend = copyIntoArena(recipient.prepend)
            let append = copyIntoArena(recipient.append)

            switch layout {
            case .sendgroupRecipients:
                var entry = sendgroup_recipient()
                let status = UnsafeRawPointer(addresses + slot).withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    CGroupUnicast_sendgroup_recipient_set_address(&entry, $0)
                }
                precondition(status == 0, "SocketAddress wrote a family other than AF_INET/AF_INET6")
                entry.prepend = UInt64(UInt(bitPattern: prepend.iov_base))
                entry.prepend_len = UInt32(prepend.iov_len)
                entry.append = UInt64(UInt(bitPattern: append.iov_base))
                entry.append_len = UInt32(append.iov_len)
                entries[slot] = entry
                // Unwritten slots would read as "sent"; a value the module never writes exposes them.
                results[slot] = Int32.max
            case .messages:
                let vector = iovecs + 3 * slot
                vector[0] = prepend
                vector[1] = shared
                vector[2] = append
                var header = msghdr()
                header.msg_name = UnsafeMutableRawPointer(addresses + slot)
                header.msg_namelen = addressLength
                header.msg_iov = vector
                header.msg_iovlen = 3
                messages[slot] = CGroupUnicast_mmsghdr(msg_hdr: header, msg_len: 0)
            }
        }
    }

    /// Frees the prepend/append arena when one send made it larger than ``retainedBytesLimit``.
    mutating func trim() {
        if arena.count > retainedBytesLimit {
            arena.deallocate()
            arena = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        }
    }

    private mutating func reserve(count: Int, arenaBytes: Int) {
        if count > capacity {
            release()
            capacity = count
            addresses = .allocate(capacity: count)
            iovecs = .allocate(capacity: 3 * count)
            messages = .allocate(capacity: count)
            entries = .allocate(capacity: count)
            results = .allocate(capacity: count)
        }
        if arenaBytes > arena.count {
            arena.deallocate()
            arena = .allocate(byteCount: max(arenaBytes, 2 * arena.count), alignment: 16)
        }
    }

    private mutating func release() {
        addresses?.deallocate()
        iovecs?.deallocate()
        messages?.deallocate()
        entries?.deallocate()
        results?.deallocate()
        addresses = nil
        iovecs = nil
        messages = nil
        entries = nil
        results = nil
        capacity = 0
    }

    deinit {
        addresses?.deallocate()
        iovecs?.deallocate()
        messages?.deallocate()
        entries?.deallocate()
        results?.deallocate()
        arena.deallocate()
    }
}

/// The per-socket memory datagrams are received into: `count` slots of `size` bytes, each with
/// its source address, iovec, `mmsghdr` and room for one packet-info control message.
internal struct ReceiveBuffers: ~Copyable {
    private(set) var count = 0
    private(set) var size = 0
    private(set) var data = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private(set) var addresses: UnsafeMutablePointer<sockaddr_storage>?
    private(set) var iovecs: UnsafeMutablePointer<iovec>?
    private(set) var messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>?
    private(set) var control = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    let controlSize = CGroupUnicast_pktinfo_space()

    init() {}

    /// Points `count` messages at fresh slots of `size` bytes.
    mutating func prepare(count: Int, size: Int, wantsControl: Bool) {
        if count > self.count || size > self.size {
            release()
            self.count = max(count, self.count)
            self.size = max(size, self.size)
            data = .allocate(byteCount: self.count * self.size, alignment: 16)
            addresses = .allocate(capacity: self.count)
            iovecs = .allocate(capacity: self.count)
            messages = .allocate(capacity: self.count)
            control = .allocate(byteCount: self.count * controlSize, alignment: 16)
        }
        guard let addresses, let iovecs, let messages, let dataBase = data.baseAddress,
              let controlBase = control.baseAddress else {
            preconditionFailure("receive buffers not allocated")
        }
        for slot in 0..<count {
            iovecs[slot] = iovec(iov_base: dataBase + slot * self.size, iov_len: size)
            var header = msghdr()
            header.msg_name = UnsafeMutableRawPointer(addresses + slot)
            header.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            header.msg_iov = iovecs + slot
            header.msg_iovlen = 1
            if wantsControl {
                header.msg_control = controlBase + slot * controlSize
                header.msg_controllen = controlSize
            }
            messages[slot] = CGroupUnicast_mmsghdr(msg_hdr: header, msg_len: 0)
        }
    }

    /// Frees the datagram slots when one receive made them larger than ``retainedBytesLimit``
    /// (a socket that once received 64 datagrams of 64 KiB should not keep 4 MiB for good).
    mutating func trim() {
        if data.count > retainedBytesLimit { release() }
    }

    /// The datagram in `slot` after a receive of `length` bytes; `boundPort` completes the destination.
    func datagram(slot: Int, length: Int, boundPort: UInt16) -> ReceivedDatagram? {
        guard let addresses, let messages, let iovecs else { return nil }
        guard let source = SocketAddress(addresses + slot) else { return nil }
        let header = messages[slot].msg_hdr
        let stored = min(length, iovecs[slot].iov_len)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: iovecs[slot].iov_base, count: stored))
        var destination: SocketAddress?
        withUnsafePointer(to: header) { headerPointer in
            var cmsg = CGroupUnicast_CMSG_FIRSTHDR(headerPointer)
            var storage = sockaddr_storage()
            while let current = cmsg {
                if CGroupUnicast_pktinfo_destination(current, boundPort, &storage) == 1 {
                    destination = SocketAddress(&storage)
                    break
                }
                cmsg = CGroupUnicast_CMSG_NXTHDR(UnsafeMutablePointer(mutating: headerPointer), current)
            }
        }
        return ReceivedDatagram(
            bytes: bytes,
            source: source,
            destination: destination,
            isTruncated: header.msg_flags & CInt(MSG_TRUNC) != 0
        )
    }

    private mutating func release() {
        data.deallocate()
        addresses?.deallocate()
        iovecs?.deallocate()
        messages?.deallocate()
        control.deallocate()
        data = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        control = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        addresses = nil
        iovecs = nil
        messages = nil
        count = 0
        size = 0
    }

    deinit {
        data.deallocate()
        addresses?.deallocate()
        iovecs?.deallocate()
        messages?.deallocate()
        control.deallocate()
    }
}

/// One datagram received by a ``GroupSocket``.
public struct ReceivedDatagram: Hashable, Sendable {
    /// The datagram's bytes (at most the `maxSize` asked for; see ``isTruncated``).
    public var bytes: [UInt8]
    /// Where it came from (`msg_name` of `recvmsg(2)`).
    public var source: SocketAddress
    /// The local address it was sent to, when the socket was created with
    /// ``GroupSocket/Options/receivesDestinationAddress`` (`IP_PKTINFO` / `IPV6_PKTINFO`).
    public var destination: SocketAddress?
    /// Whether the datagram was longer than the buffer and cut (`MSG_TRUNC` in `msg_flags`).
    public var isTruncated: Bool

    /// Creates a received datagram.
    public init(bytes: [UInt8], source: SocketAddress, destination: SocketAddress? = nil, isTruncated: Bool = false) {
        self.bytes = bytes
        self.source = source
        self.destination = destination
        self.isTruncated = isTruncated
    }
}
