#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import GroupUnicast

extension GroupSendBackend: ExpressibleByArgument {}

/// Pushes buffered standard output to a pipe reader (all stdio streams: `fflush(NULL)`).
func flushStandardOutput() {
    fflush(nil)
}

/// Writes one line to standard error.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}
