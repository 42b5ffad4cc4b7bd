#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast

// The table of every system call GroupUnicast makes.
//
// Each call is a value of `Syscall` holding its arguments; `run()` is the one place that calls
// the C library, and tests replace it with `SyscallMock` (Mocking.swift) to force errnos, short
// counts and inconsistent kernel answers without a kernel that produces them. The choke point
// (SystemCall.swift) adds EINTR retries and errno naming on top.

/// One system call with its arguments, as GroupUnicast passes them to the C library.
internal enum Syscall {
    case open(path: String, flags: CInt)
    case access(path: String, mode: CInt)
    case close(descriptor: CInt)
    case socket(family: CInt, type: CInt, protocol: CInt)
    case setsockopt(descriptor: CInt, level: CInt, option: CInt, value: UnsafeRawPointer, length: socklen_t)
    /// `setsockopt(IP_PKTINFO)` or `setsockopt(IPV6_RECVPKTINFO)` through the C shim (GNU-only names).
    case setReceivePacketInfo(descriptor: CInt, family: CInt, enable: CInt)
    case bind(descriptor: CInt, address: UnsafePointer<sockaddr>, length: socklen_t)
    case getsockname(descriptor: CInt, address: UnsafeMutablePointer<sockaddr>, length: UnsafeMutablePointer<socklen_t>)
    case shutdown(descriptor: CInt, how: CInt)
    case poll(entries: UnsafeMutablePointer<pollfd>, count: nfds_t, milliseconds: CInt)
    case sendmsg(descriptor: CInt, message: UnsafePointer<msghdr>, flags: CInt)
    case sendmmsg(descriptor: CInt, messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>, count: UInt32, flags: CInt)
    case recvmsg(descriptor: CInt, message: UnsafeMutablePointer<msghdr>, flags: CInt)
    case recvmmsg(descriptor: CInt, messages: UnsafeMutablePointer<CGroupUnicast_mmsghdr>, count: UInt32, flags: CInt)
    /// `ioctl(devfd, SENDGROUP_IOC_INFO)`.
    case sendgroupInfo(device: CInt, info: UnsafeMutablePointer<sendgroup_info>)
    /// `ioctl(devfd, SENDGROUP_IOC_SEND)`.
    case sendgroupSend(device: CInt, arguments: UnsafeMutablePointer<sendgroup_send_args>)
    /// `ioctl(devfd, SENDGROUP_IOC_GROUP_CREATE)`: returns the group fd.
    case groupCreate(device: CInt, arguments: UnsafeMutablePointer<sendgroup_group_create_args>)
    /// `ioctl(groupfd, SENDGROUP_GROUP_IOC_ADD)`.
    case groupAdd(group: CInt, arguments: UnsafeMutablePointer<sendgroup_members_args>)
    /// `ioctl(groupfd, SENDGROUP_GROUP_IOC_UPDATE)`.
    case groupUpdate(group: CInt, arguments: UnsafeMutablePointer<sendgroup_members_args>)
    /// `ioctl(groupfd, SENDGROUP_GROUP_IOC_REMOVE)`.
    case groupRemove(group: CInt, arguments: UnsafeMutablePointer<sendgroup_members_args>)
    /// `ioctl(groupfd, SENDGROUP_GROUP_IOC_LIST)`.
    case groupList(group: CInt, arguments: UnsafeMutablePointer<sendgroup_list_args>)
    /// `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND)`.
    case groupSend(group: CInt, arguments: UnsafeMutablePointer<sendgroup_group_send_args>)

    /// The C call as errors name it: `sendmmsg`, `ioctl(SENDGROUP_IOC_SEND)`, `open(/dev/sendgroup)`.
    var name: String {
        switch self {
        case .open(let path, _): "open(\(path))"
        case .access(let path, _): "access(\(path))"
        case .close: "close"
        case .socket: "socket"
        case .setsockopt: "setsockopt"
        case .setReceivePacketInfo(_, let family, _):
            family == AF_INET6 ? "setsockopt(IPV6_RECVPKTINFO)" : "setsockopt(IP_PKTINFO)"
        case .bind: "bind"
        case .getsockname: "getsockname"
        case .shutdown: "shutdown"
        case .poll: "poll"
        case .sendmsg: "sendmsg"
        case .sendmmsg: "sendmmsg"
        case .recvmsg: "recvmsg"
        case .recvmmsg: "recvmmsg"
        case .sendgroupInfo: "ioctl(SENDGROUP_IOC_INFO)"
        case .sendgroupSend: "ioctl(SENDGROUP_IOC_SEND)"
        case .groupCreate: "ioctl(SENDGROUP_IOC_GROUP_CREATE)"
        case .groupAdd: "ioctl(SENDGROUP_GROUP_IOC_ADD)"
        case .groupUpdate: "ioctl(SENDGROUP_GROUP_IOC_UPDATE)"
        case .groupRemove: "ioctl(SENDGROUP_GROUP_IOC_REMOVE)"
        case .groupList: "ioctl(SENDGROUP_GROUP_IOC_LIST)"
        case .groupSend: "ioctl(SENDGROUP_GROUP_IOC_SEND)"
        }
    }

    /// Makes the call: through the test's ``SyscallMock`` when one is installed on this thread,
    /// else through the C library. Returns what the C call returns; `errno` holds the reason of -1.
    @inline(__always)
    func run() -> Int {
        #if ENABLE_MOCKING
        if let mock = SyscallMock.current {
            return mock.handle(self)
        }
        #endif
        return perform()
    }

    /// The C library call itself, never mocked.
    func perform() -> Int {
        switch self {
        case .open(let path, let flags):
            Int(Glibc.open(path, flags))
        case .access(let path, let mode):
            Int(Glibc.access(path, mode))
        case .close(let descriptor):
            Int(Glibc.close(descriptor))
        case .socket(let family, let type, let proto):
            Int(Glibc.socket(family, type, proto))
        case .setsockopt(let descriptor, let level, let option, let value, let length):
            Int(Glibc.setsockopt(descriptor, level, option, value, length))
        case .setReceivePacketInfo(let descriptor, let family, let enable):
            Int(CGroupUnicast_set_receive_pktinfo(descriptor, family, enable))
        case .bind(let descriptor, let address, let length):
            Int(Glibc.bind(descriptor, address, length))
        case .getsockname(let descriptor, let address, let length):
            Int(Glibc.getsockname(descriptor, address, length))
        case .shutdown(let descriptor, let how):
            Int(Glibc.shutdown(descriptor, how))
        case .poll(let entries, let count, let milliseconds):
            Int(Glibc.poll(entries, count, milliseconds))
        case .sendmsg(let descriptor, let message, let flags):
            Glibc.sendmsg(descriptor, message, flags)
        case .sendmmsg(let descriptor, let messages, let count, let flags):
            Int(CGroupUnicast_sendmmsg(descriptor, messages, count, flags))
        case .recvmsg(let descriptor, let message, let flags):
            Glibc.recvmsg(descriptor, message, flags)
        case .recvmmsg(let descriptor, let messages, let count, let flags):
            Int(CGroupUnicast_recvmmsg(descriptor, messages, count, flags, nil))
        case .sendgroupInfo(let device, let info):
            Int(CGroupUnicast_sendgroup_info(device, info))
        case .sendgroupSend(let device, let arguments):
            Int(CGroupUnicast_sendgroup_send(device, arguments))
        case .groupCreate(let device, let arguments):
            Int(CGroupUnicast_sendgroup_group_create(device, arguments))
        case .groupAdd(let group, let arguments):
            Int(CGroupUnicast_sendgroup_group_add(group, arguments))
        case .groupUpdate(let group, let arguments):
            Int(CGroupUnicast_sendgroup_group_update(group, arguments))
        case .groupRemove(let group, let arguments):
            Int(CGroupUnicast_sendgroup_group_remove(group, arguments))
        case .groupList(let group, let arguments):
            Int(CGroupUnicast_sendgroup_group_list(group, arguments))
        case .groupSend(let group, let arguments):
            Int(CGroupUnicast_sendgroup_group_send(group, arguments))
        }
    }
}
