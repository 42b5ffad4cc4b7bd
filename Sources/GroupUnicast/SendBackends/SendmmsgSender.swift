import CGroupUnicast
import SystemPackage

/// ``GroupSendBackend/sendmmsg``: one `sendmmsg(2)` per up to 1,024 recipients.
internal struct SendmmsgSender: MessageSender {
    /// Whether `ENOSYS` (seccomp, an old kernel) gives ``ChunkOutcome/unavailable`` so the socket
    /// falls back to ``SocketSender`` (``GroupSendBackend/automatic``) instead of refusing the call.
    var fallsBackWhenUnavailable: Bool

    var backend: GroupSendBackend { .sendmmsg }

    func send(
        _ chunk: ArraySlice<Int>,
        messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        // sendmmsg stops at the first message that fails and, having sent some, reports only their
        // count: the failing message is then first of the next call, which reports its errno.
        var slot = 0
        var sent = false
        while slot < chunk.count {
            let remaining = UInt32(chunk.count - slot)
            switch retryingInterrupts(
                .sendmmsg(descriptor: call.descriptor, messages: messages + slot, count: remaining, flags: call.flags)) {
            case .success(let count):
                // A count of 0 or above what was asked for would loop forever or skip recipients.
                guard count > 0 && count <= Int(remaining) else {
                    throw .kernelResultInconsistent(reason: "sendmmsg of \(remaining) messages returned \(count)")
                }
                slot += count
                sent = true
            case .failure(let error) where error == .noFunction && slot == 0 && fallsBackWhenUnavailable:
                return .unavailable
            case .failure(let error) where Self.isCallLevel(error):
                return stopped(by: error, of: "sendmmsg", at: slot, of: chunk, sentBefore: sent, &errors)
            case .failure(let error):
                errors[chunk[chunk.startIndex + slot]] = error
                slot += 1
            }
        }
        return .done(sent: sent)
    }
}
