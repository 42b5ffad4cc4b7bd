import GroupcastSFU
import Logging

/// Mirrors an SFU's participants into the cluster. The control plane hands it the participant
/// list after every routing change (``update(_:)``: it only stores the newest list, never
/// blocks); ``run()`` publishes what changed, so the control plane and the media never wait
/// for Redis. While Redis is down the ``ClusterNode`` keeps the changes and writes them on
/// reconnection.
public final class ClusterPublisher: Sendable {
    private let node: ClusterNode
    private let logger: Logger
    private let lists: AsyncStream<[Participant]>
    private let continuation: AsyncStream<[Participant]>.Continuation

    public init(node: ClusterNode, logger: Logger) {
        self.node = node
        self.logger = logger
        (lists, continuation) = AsyncStream.makeStream(of: [Participant].self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The SFU's participants now (``SFUServer/Configuration/participantsChanged``).
    @Sendable public func update(_ participants: [Participant]) {
        continuation.yield(participants)
    }

    /// Publishes each new list's differences until cancelled.
    public func run() async {
        var published: [UInt32: ClusterParticipant] = [:]
        for await participants in lists {
            let name = node.configuration.name
            let current = Dictionary(uniqueKeysWithValues: participants.map { ($0.id, ClusterParticipant($0, node: name)) })
            for id in published.keys where current[id] == nil {
                do { try await node.remove(id) } catch { logger.debug("cluster: removal queued", metadata: ["participant": "\(id)", "error": "\(error)"]) }
            }
            for (id, participant) in current where published[id] != participant {
                do {
                    try await node.publish(participant)
                } catch ClusterError.notSynchronized {
                    logger.debug("cluster: publish queued until the node has synchronized", metadata: ["participant": "\(id)"])
                } catch let error as ClusterError {
                    // Not built yet: moving the participant to a fresh SSRC (Docs/cluster.md).
                    logger.error("cluster: participant \(id) not published: \(error)")
                } catch {
                    logger.debug("cluster: publish queued", metadata: ["participant": "\(id)", "error": "\(error)"])
                }
            }
            published = current
        }
    }
}
