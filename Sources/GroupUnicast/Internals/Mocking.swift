// Replacing the system calls of one thread in tests (swift-system's Internals/Mocking.swift idea).
//
// Compiled only with ENABLE_MOCKING, which Package.swift defines for debug builds: a release
// build calls the C library directly. The mock is thread-local, so a test that installs one
// affects only the calls its own thread makes (every GroupSocket and MemberGroup operation runs
// its system calls on the caller's thread).

#if ENABLE_MOCKING
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Answers the system calls of the current thread while ``withSyscallMock(_:_:)`` runs.
internal final class SyscallMock {
    /// What the mock makes of one call: `nil` lets the C library answer.
    typealias Answer = (Syscall) -> Result<Int, Errno>?

    /// The name (``Syscall/name``) of every call made under the mock, in order, answered or not.
    private(set) var trace: [String] = []
    private let answer: Answer

    init(_ answer: @escaping Answer) {
        self.answer = answer
    }

    func handle(_ call: Syscall) -> Int {
        trace.append(call.name)
        switch answer(call) {
        case nil:
            return call.perform()
        case .success(let value):
            return value
        case .failure(let error):
            errno = error.rawValue
            return -1
        }
    }

    /// The mock installed on this thread, if any.
    static var current: SyscallMock? {
        guard let pointer = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<SyscallMock>.fromOpaque(pointer).takeUnretainedValue()
    }

    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    fileprivate static func install(_ mock: SyscallMock?) {
        let pointer = mock.map { Unmanaged.passUnretained($0).toOpaque() }
        precondition(pthread_setspecific(currentKey, pointer) == 0, "pthread_setspecific failed")
    }
}

/// Runs `body` with every system call of this thread answered by `answer` (`nil`: the C library
/// answers), then restores the mock that was installed before.
internal func withSyscallMock<R, E: Error>(
    _ answer: @escaping SyscallMock.Answer,
    _ body: (SyscallMock) throws(E) -> R
) throws(E) -> R {
    let previous = SyscallMock.current
    let mock = SyscallMock(answer)
    SyscallMock.install(mock)
    defer {
        SyscallMock.install(previous)
        withExtendedLifetime(mock) {}
    }
    return try body(mock)
}
#endif
