/// One receiver of a group send: where the datagram goes and the bytes around the shared payload.
///
/// The datagram this recipient gets is `prepend + payload + append`. The prepend and append bytes
/// map to `sendgroup_recipient.prepend`/`.append` on the ``GroupSendBackend/sendgroup`` backend and
/// to iovecs of the recipient's `struct msghdr` on ``GroupSendBackend/sendmmsg`` and
/// ``GroupSendBackend/socket``.
public struct Recipient: Hashable, Sendable {
    /// The destination.
    public var address: SocketAddress
    /// Bytes placed before the shared payload (a per-client header, say).
    public var prepend: [UInt8]
    /// Bytes placed after the shared payload (a per-client trailer or MAC, say).
    public var append: [UInt8]

    /// Creates a recipient at `address` with optional private bytes around the shared payload.
    public init(_ address: SocketAddress, prepend: [UInt8] = [], append: [UInt8] = []) {
        self.address = address
        self.prepend = prepend
        self.append = append
    }
}
