import GroupcastRingBackend
import GroupcastSFU
import GroupcastSocketBackend
import GroupcastXDPBackend
import Logging

/// The one place that turns a ``ForwarderConfiguration`` into its ``Forwarder``: the socket
/// backends (GroupcastSocketBackend), xdp (GroupcastXDPBackend), ring (GroupcastRingBackend).
/// Each backend takes the backend-neutral configuration as it is.
public enum Backends {
    /// The forwarder of `configuration.backend`. `echo`: whether the routing tables it will be
    /// given send media back to its sender (the xdp backend fixes it at attach time).
    public static func makeForwarder(
        _ configuration: ForwarderConfiguration, echo: Bool = true, logger: Logger
    ) throws(SFUError) -> any Forwarder {
        switch configuration.backend {
        case .socket, .sendmmsg, .sendgroup:
            return try UserspaceForwarder(configuration: configuration, logger: logger)
        case .xdp:
            return try XDPForwarder(configuration: configuration, echo: echo, logger: logger)
        case .ring:
            return try RingForwarder(configuration: configuration, logger: logger)
        }
    }

    /// An SFU: the control plane of `server` driving the forwarder of `forwarder`.
    public static func makeServer(
        _ server: SFUServer.Configuration, forwarder: ForwarderConfiguration, logger: Logger
    ) throws(SFUError) -> SFUServer {
        let made = try makeForwarder(forwarder, echo: server.echo, logger: logger)
        return try SFUServer(configuration: server, forwarder: made, logger: logger)
    }
}
