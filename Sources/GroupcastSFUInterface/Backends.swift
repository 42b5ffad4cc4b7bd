import GroupcastFastPath
import GroupcastRing
import GroupcastSFU
import Logging

/// How interface backends (``ForwarderBackend/needsInterface``) attach.
public struct InterfaceOptions: Sendable {
    /// Interfaces to attach to; empty: those carrying the media address.
    public var interfaces: [String] = []
    /// XDP attach mode (`xdp`; the ring's own options are in `RingForwarder.Configuration`).
    public var xdpMode: XDPMode = .automatic

    public init(interfaces: [String] = [], xdpMode: XDPMode = .automatic) {
        self.interfaces = interfaces
        self.xdpMode = xdpMode
    }
}

/// The one place that turns a ``ForwarderBackend`` into its ``Forwarder``: the user-space
/// backends of GroupcastSFU, the xdp backend of this module, the ring backend of GroupcastRing.
public enum SFUBackends {
    public static func makeForwarder(
        _ configuration: SFUServer.Configuration, interface: InterfaceOptions = .init(), logger: Logger
    ) throws(SFUError) -> any Forwarder {
        switch configuration.backend {
        case .socket, .sendmmsg, .sendgroup:
            return try UserspaceForwarder(backend: configuration.backend, configuration: configuration.forwarder, logger: logger)
        case .xdp:
            var xdp = XDPForwarder.Configuration(slowPath: configuration.forwarder)
            xdp.interfaces = interface.interfaces
            xdp.mode = interface.xdpMode
            xdp.echo = configuration.echo
            return try XDPForwarder(configuration: xdp, logger: logger)
        case .ring:
            // Defaults for the ring's own knobs; `groupcast sfu` sets them from its flags.
            var ring = RingForwarder.Configuration(bindAddress: configuration.forwarder.bindAddress)
            ring.interfaces = interface.interfaces
            ring.batchSize = configuration.forwarder.batchSize
            ring.shedVHQAt = configuration.forwarder.shedVHQAt
            ring.shedVSQAt = configuration.forwarder.shedVSQAt
            return try RingForwarder(configuration: ring, logger: logger)
        }
    }

    /// An SFU on `configuration.backend`, whichever it is.
    public static func makeServer(
        _ configuration: SFUServer.Configuration, interface: InterfaceOptions = .init(), logger: Logger
    ) throws(SFUError) -> SFUServer {
        let forwarder = try makeForwarder(configuration, interface: interface, logger: logger)
        return try SFUServer(configuration: configuration, forwarder: forwarder, logger: logger)
    }
}
