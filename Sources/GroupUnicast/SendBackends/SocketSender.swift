import SystemPackage

/// ``GroupSendBackend/socket``: one `sendmsg(2)` per recipient, the classic baseline.
internal struct SocketSender: ChunkSender {
    var backend: GroupSendBackend { .socket }
    var layout: SendBuffers.Layout { .messages }
    var chunkLimit: Int { GroupSocket.sendmmsgBatchLimit }

    func send(
        _ chunk: ArraySlice<Int>,
        _ buffers: borrowing SendBuffers,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        guard let messages = buffers.messages else { preconditionFailure("send buffers not prepared") }
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
