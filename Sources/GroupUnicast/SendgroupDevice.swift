#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast
import SystemPackage

/// What the loaded sendgroup kernel module reports about itself.
///
/// The corresponding C call is `ioctl(fd, SENDGROUP_IOC_INFO, &info)` on `/dev/sendgroup`.
public struct SendgroupModuleInfo: Hashable, Sendable {
    /// The module's `SENDGROUP_ABI_VERSION`.
    public var abiVersion: UInt32
    /// The most recipients one `SENDGROUP_IOC_SEND` accepts; larger groups are split by ``GroupSocket``.
    public var maxRecipients: Int
    /// The largest shared payload one `SENDGROUP_IOC_SEND` accepts.
    public var maxDatagram: Int
    /// `sizeof(struct sendgroup_recipient)` as the module knows it.
    public var recipientSize: Int
    /// `sizeof(struct sendgroup_send_args)` as the module knows it.
    public var sendArgumentsSize: Int
    /// `SENDGROUP_FEATURE_*` bits.
    public var features: UInt64

    /// Whether every datagram references the shared payload's pages instead of copying them
    /// (`SENDGROUP_FEATURE_SHARED_PAGES`).
    public var sharesPayloadPages: Bool {
        features & UInt64(SENDGROUP_FEATURE_SHARED_PAGES) != 0
    }

    /// Whether the module keeps groups in the kernel (`SENDGROUP_FEATURE_GROUPS`):
    /// ``GroupSocket/makeGroup(backend:)`` then creates a group fd with `SENDGROUP_IOC_GROUP_CREATE`.
    public var supportsGroups: Bool {
        features & UInt64(SENDGROUP_FEATURE_GROUPS) != 0
    }
}

/// An open `/dev/sendgroup`, owned by one ``GroupSocket``; closed when the socket lets go of it.
internal final class SendgroupDevice: Sendable {
    /// `/dev/sendgroup`.
    static let path = SENDGROUP_DEVICE_PATH

    let descriptor: CInt
    let info: SendgroupModuleInfo

    /// Whether `/dev/sendgroup` exists (the module is loaded). The C call is `access(2)`.
    static var isPresent: Bool {
        Syscall.access(path: path, mode: F_OK).run() == 0
    }

    /// Opens `/dev/sendgroup` and asks the module for its limits.
    ///
    /// Throws ``GroupUnicastError/kernelModuleNotLoaded`` when the device does not exist,
    /// ``GroupUnicastError/kernelModuleIncompatible(reason:)`` when its ABI does not fit.
    static func open() throws(GroupUnicastError) -> SendgroupDevice {
        let descriptor: CInt
        do {
            descriptor = CInt(try systemCall(.open(path: path, flags: O_RDWR | O_CLOEXEC)))
        } catch {
            if error.errno == .noSuchFileOrDirectory { throw .kernelModuleNotLoaded }
            throw error
        }
        do {
            let info = try queryInfo(descriptor)
            return SendgroupDevice(descriptor: descriptor, info: info)
        } catch {
            try? closeDescriptor(descriptor)
            throw error
        }
    }

    private init(descriptor: CInt, info: SendgroupModuleInfo) {
        self.descriptor = descriptor
        self.info = info
    }

    private static func queryInfo(_ descriptor: CInt) throws(GroupUnicastError) -> SendgroupModuleInfo {
        var raw = sendgroup_info()
        raw.size = UInt32(MemoryLayout<sendgroup_info>.size)
        _ = try withUnsafeMutablePointer(to: &raw) { (info) throws(GroupUnicastError) in
            try systemCall(.sendgroupInfo(device: descriptor, info: info))
        }
        let info = SendgroupModuleInfo(
            abiVersion: raw.abi_version,
            maxRecipients: Int(raw.max_recipients),
            maxDatagram: Int(raw.max_datagram),
            recipientSize: Int(raw.recipient_size),
            sendArgumentsSize: Int(raw.send_args_size),
            features: raw.features
        )
        if info.abiVersion < UInt32(SENDGROUP_ABI_VERSION) {
            throw .kernelModuleIncompatible(reason: "ABI version \(info.abiVersion), need \(SENDGROUP_ABI_VERSION)")
        }
        if info.maxRecipients < 1 {
            throw .kernelModuleIncompatible(reason: "max_recipients is \(info.maxRecipients)")
        }
        if info.maxDatagram < Int(SENDGROUP_MAX_DATAGRAM) {
            throw .kernelModuleIncompatible(
                reason: "max_datagram is \(info.maxDatagram), below \(SENDGROUP_MAX_DATAGRAM)")
        }
        if info.recipientSize < Int(SENDGROUP_RECIPIENT_SIZE_VER0)
            || info.sendArgumentsSize < Int(SENDGROUP_SEND_ARGS_SIZE_VER0) {
            throw .kernelModuleIncompatible(
                reason: "recipient_size \(info.recipientSize), send_args_size \(info.sendArgumentsSize)")
        }
        return info
    }

    deinit {
        try? closeDescriptor(descriptor)
    }
}
