#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

// The one choke point for every system call the library makes.
//
// `EINTR` is retried here and nowhere else; every other failure leaves as the errno that the
// caller turns into a per-recipient result or a `GroupUnicastError.systemCall` naming the call.
// `EFAULT` means the library handed the kernel a bad pointer: a bug, never a user error.
// close(2) is the one call that bypasses it: on Linux the descriptor is gone even when close
// reports EINTR, so it must never be retried.

/// Runs `body` until it does not fail with `EINTR`; `-1` is failure and `errno` the reason.
@inline(__always)
internal func retryingInterrupts<R: FixedWidthInteger>(
    _ call: @autoclosure () -> String,
    _ body: () -> R
) -> Result<R, Errno> {
    while true {
        let result = body()
        guard result == -1 else { return .success(result) }
        let error = Errno(rawValue: errno)
        if error == .interrupted { continue }
        precondition(error != .badAddress, "\(call()) returned EFAULT: GroupUnicast passed a bad pointer")
        return .failure(error)
    }
}

/// Runs `body` through ``retryingInterrupts(_:_:)`` and throws the failure as a
/// ``GroupUnicastError/systemCall(call:errno:)`` naming `call`.
@inline(__always)
internal func systemCall<R: FixedWidthInteger>(
    _ call: @autoclosure () -> String,
    _ body: () -> R
) throws(GroupUnicastError) -> R {
    switch retryingInterrupts(call(), body) {
    case .success(let value):
        return value
    case .failure(let error):
        throw .systemCall(call: call(), errno: error)
    }
}
