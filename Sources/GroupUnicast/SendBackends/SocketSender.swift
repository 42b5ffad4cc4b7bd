import CGroupUnicast
import SystemPackage

/// ``GroupSendBackend/socket``: one `sendmsg(2)` per recipient, the classic baseline.
internal struct SocketSender: MessageSender {
    var backend: GroupSendBackend { .socket }

    func send(
        _ chunk: ArraySlice<Int>,
        messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        var sent = false
        for (slot, index) in chunk.enumerated() {
            let result = retryingInterrupts(
                .sendmsg(descriptor: call.descriptor, message: messages.header(slot), flags: call.flags))
            switch result {
            case .success:
                sent = true
            case .failure(let error) where Self.isCallLevel(error):
                return stopped(by: error, of: "sendmsg", at: slot, of: chunk, sentBefore: sent, &errors)
            case .failure(let error):
                errors[index] = error
            }
        }
        return .done(sent: sent)
    }
}
