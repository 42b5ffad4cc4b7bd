#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// The SFU's open-file limit. The sendgroup backend's kernel groups hold one descriptor per
/// route (three per participant with audio, video and video-HQ), so the usual soft limit of 1024
/// would leave every route past about 330 participants without its group (sent one-shot, with a
/// warning each). Like most servers, the SFU raises its soft limit to the hard one at start: the
/// hard limit is the operator's (systemd's `LimitNOFILE=`, `ulimit -Hn`), the soft one only a
/// default for programs that do not ask.
enum OpenFileLimit {
    struct Change: Equatable {
        var before: UInt64
        var after: UInt64
        var hard: UInt64
    }

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs what it did; a limit it cannot
    /// read or raise is logged as a warning (the SFU runs on with the limit it has).
    @discardableResult
    static func raiseToHard(logger: Logger) -> Change? {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else {
            logger.warning("cannot read the open-file limit (getrlimit: \(String(cString: strerror(errno)))); kernel groups may run out of descriptors")
            return nil
        }
        let before = UInt64(limit.rlim_cur)
        let hard = UInt64(limit.rlim_max)
        guard limit.rlim_cur < limit.rlim_max else {
            logger.debug("open-file limit \(before) (already the hard limit)")
            return Change(before: before, after: before, hard: hard)
        }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else {
            // The kernel keeps the hard limit within fs.nr_open, so only a sandbox's policy refuses this.
            logger.warning(
                "cannot raise the open-file limit from \(before) to \(hard) (setrlimit: \(String(cString: strerror(errno)))); kernel groups may run out of descriptors",
                metadata: ["soft": "\(before)", "hard": "\(hard)"])
            return Change(before: before, after: before, hard: hard)
        }
        logger.info("open-file limit raised from \(before) to the hard limit \(hard)", metadata: ["soft": "\(hard)", "was": "\(before)"])
        return Change(before: before, after: hard, hard: hard)
    }
}
