#if canImport(Glibc)
import Glibc
#endif
import Foundation

final class ProgressBar {
    private var done = 0.0
    private(set) var total: Double
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = Date.distantPast

    init(total: Double) { self.total = max(total, 1) }

    func grow(_ seconds: Double) { total += seconds }
    func advance(_ seconds: Double) { done += seconds }

    func draw(_ what: String, within: Double = 0, force: Bool = false) {
        let now = Date()
        // On a pipe, a line every few seconds is enough.
        guard force || isTerminal || now.timeIntervalSince(lastDraw) > 5 else { return }
        lastDraw = now
        let fraction = min(1, (done + within) / total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let left = fraction > 0.01 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "[%@] %3.0f%% %@ ~%.0fs left", bar, fraction * 100, what, left)
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1b}[K" : "") + line + (isTerminal ? "" : "\n")).utf8))
    }

    /// Clears the bar's line before other output.
    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Runs the plan: topology, grid, capacity, fits, Amdahl, output files.
