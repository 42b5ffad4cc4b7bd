#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

// The one choke point for every system call the library makes (the calls themselves are the
// table in Syscalls.swift).
//
// `EINTR` is retried here and nowhere else; every other failure leaves as the errno that the
// caller turns into a per-recipient result or a `GroupUnicastError.systemCall` naming the call.
// `EFAULT` means the library handed the kernel a bad pointer: a bug, never a user error.
// close(2) is the one call that is not retried (``closeDescriptor(_:)``): on Linux the
// descriptor is gone even when close reports EINTR.

/// Makes `call` until it does not fail with `EINTR`; `-1` is failure and `errno` the reason.
@inline(__always)
internal func retryingInterrupts(_ call: Syscall) -> Result<Int, Errno> {
    retryingInterrupts { call }
}

/// Makes the call `makeCall` gives until it does not fail with `EINTR`, asking for the call
/// again before each attempt (a `poll(2)` recomputes its timeout from its deadline).
@inline(__always)
internal func retryingInterrupts(_ makeCall: () -> Syscall) -> Result<Int, Errno> {
    while true {
        let call = makeCall()
        let result = call.run()
        guard result == -1 else { return .success(result) }
        let error = Errno(rawValue: errno)
        if error == .interrupted { continue }
        precondition(error != .badAddress, "\(call.name) returned EFAULT: GroupUnicast passed a bad pointer")
        return .failure(error)
    }
}

/// Makes `call` through ``retryingInterrupts(_:)`` and throws the failure as a
/// ``GroupUnicastError/systemCall(call:errno:)`` naming the call (`name`, else ``Syscall/name``).
@inline(__always)
internal func systemCall(_ call: Syscall, named name: @autoclosure () -> String? = nil) throws(GroupUnicastError) -> Int {
    switch retryingInterrupts(call) {
    case .success(let value):
        return value
    case .failure(let error):
        throw .systemCall(call: name() ?? call.name, errno: error)
    }
}

/// Closes `descriptor` once: Linux releases it even when close(2) reports EINTR, so retrying
/// could close a descriptor another thread just opened. EINTR is therefore success here.
internal func closeDescriptor(_ descriptor: CInt, named name: String = "close") throws(GroupUnicastError) {
    guard Syscall.close(descriptor: descriptor).run() == -1 else { return }
    let error = Errno(rawValue: errno)
    if error != .interrupted { throw .systemCall(call: name, errno: error) }
}
