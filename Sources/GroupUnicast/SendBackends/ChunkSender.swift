import CGroupUnicast
import SystemPackage

/// One backend of ``GroupSocket``'s group send: hands one chunk of recipients to the kernel.
///
/// ``GroupSocket`` validates the recipients, splits them into chunks of at most ``chunkLimit``,
/// lays each chunk out in ``SendBuffers`` as ``layout`` says, and asks the sender to send it.
/// Implemented by ``SocketSender`` (`sendmsg` loop), ``SendmmsgSender`` and ``SendgroupSender``.
internal protocol ChunkSender {
    /// The backend this sender is.
    var backend: GroupSendBackend { get }
    /// How a chunk is laid out for this sender's system call.
    var layout: SendBuffers.Layout { get }
    /// The most recipients one chunk holds.
    var chunkLimit: Int { get }

    /// Sends `chunk` (indices into the call's recipients, laid out in `buffers` slot by slot) and
    /// records each failed recipient's errno in `errors`.
    func send(
        _ chunk: ArraySlice<Int>,
        _ buffers: borrowing SendBuffers,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome
}

/// What every chunk of one group send shares.
internal struct ChunkCall {
    /// The UDP socket.
    var descriptor: CInt
    /// `MSG_*` flags of every datagram.
    var flags: CInt
    /// The shared payload.
    var payload: GroupSocket.PayloadReference
}

/// How a chunk went.
internal enum ChunkOutcome: Equatable {
    /// Every recipient of the chunk was attempted; `sent` tells whether any datagram went out.
    case done(sent: Bool)
    /// The backend's system call does not exist here (`ENOSYS` before anything was sent) and the
    /// socket may fall back to ``SocketSender``.
    case unavailable
    /// The call itself failed before attempting any recipient of the chunk.
    case refused(call: String, errno: Errno)
}

extension ChunkSender {
    /// Errors that concern the socket, not one recipient: the call could not attempt anyone.
    static func isCallLevel(_ error: Errno) -> Bool {
        error == .badFileDescriptor || error == .notSocket || error == .brokenPipe
            || error == .notSupported || error == .noFunction
    }

    /// The outcome of a call-level `error` of `call` at `slot` of `chunk`: the chunk is refused
    /// when nothing of it went out, else the recipients from `slot` on fail with `error`, so the
    /// result still says exactly who got the datagram.
    func stopped(
        by error: Errno,
        of call: String,
        at slot: Int,
        of chunk: ArraySlice<Int>,
        sentBefore sent: Bool,
        _ errors: inout [Errno?]
    ) -> ChunkOutcome {
        guard sent else { return .refused(call: call, errno: error) }
        for index in chunk.dropFirst(slot) { errors[index] = error }
        return .done(sent: true)
    }
}

/// A sender over one `mmsghdr` per recipient (``SendBuffers/Layout/messages``), at most
/// ``GroupSocket/sendmmsgBatchLimit`` recipients a chunk: ``SocketSender``, ``SendmmsgSender``.
internal protocol MessageSender: ChunkSender {
    /// Sends `chunk`, its messages laid out at `messages` slot by slot, as
    /// ``ChunkSender/send(_:_:_:_:)`` says.
    func send(
        _ chunk: ArraySlice<Int>,
        messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome
}

extension MessageSender {
    var layout: SendBuffers.Layout { .messages }
    var chunkLimit: Int { GroupSocket.sendmmsgBatchLimit }

    func send(
        _ chunk: ArraySlice<Int>,
        _ buffers: borrowing SendBuffers,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        guard let messages = buffers.messages else { preconditionFailure("send buffers not prepared") }
        return try send(chunk, messages: messages, call, &errors)
    }
}
