/// The benchmark's arithmetic, pure and unit-tested (Tests/GroupcastLabTests).

/// `y = a + b·x` by least squares, with the coefficient of determination r².
public struct LinearFit: Equatable, Sendable {
    public var a: Double
    public var b: Double
    public var r2: Double

    /// The fit of `y` over `x` (same length). No points: all zero. One distinct x: the mean of
    /// `y` as `a`, slope and r² zero. A perfect line (or constant `y`): r² 1.
    public init(x: [Double], y: [Double]) {
        precondition(x.count == y.count, "LinearFit: x and y differ in length")
        let n = Double(x.count)
        guard n > 0 else { (a, b, r2) = (0, 0, 0); return }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        let sxx = zip(x, x).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - mx) }
        let sxy = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let syy = y.reduce(0) { $0 + ($1 - my) * ($1 - my) }
        guard sxx > 0 else { (a, b, r2) = (my, 0, 0); return }
        b = sxy / sxx
        a = my - b * mx
        r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1
    }
}

/// Amdahl's law: the speed-up of the whole when a share `f` (0...1) of it becomes `s` times
/// faster, `1 / ((1 - f) + f / s)`.
public func amdahlSpeedup(f: Double, s: Double) -> Double {
    1 / ((1 - f) + f / s)
}

/// The value at `p` (0...1) of `values`: the smallest value with more than a share `p` of the
/// values at or below it once sorted (index ⌊p·n⌋, so the median of an even count is the upper
/// one and `p` = 1 is the maximum); nil for no values.
public func percentile<T: Comparable>(_ values: [T], _ p: Double) -> T? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int(p * Double(sorted.count))))]
}

/// The capacity search (Helix-style): the audience doubles from `start` while every step passes
/// (up to `maxAudience`), then bisects between the largest pass and the smallest failure until
/// that bracket is within 1/16 of the pass (or 1), or `maxSteps` steps were run.
public struct CapacitySearch: Sendable, Equatable {
    public let maxAudience: Int
    public let maxSteps: Int
    /// The largest audience that passed (0: none).
    public private(set) var passed = 0
    /// The smallest audience that failed (nil: none).
    public private(set) var firstFailure: Int?
    /// Every audience tried, in order.
    public private(set) var steps: [Int] = []
    /// The audience to try next; nil once the search is over.
    public private(set) var next: Int?

    public init(start: Int, maxAudience: Int, maxSteps: Int) {
        precondition(start >= 1 && maxAudience >= start, "CapacitySearch: need 1 <= start <= maxAudience")
        self.maxAudience = maxAudience
        self.maxSteps = maxSteps
        next = maxSteps > 0 ? start : nil
    }

    /// The largest audience tried when none failed: the cap the search stopped at.
    public var cappedAt: Int? { firstFailure == nil ? steps.last : nil }

    /// Records whether the audience ``next`` was served and picks the one after it.
    public mutating func record(passed ok: Bool) {
        guard let audience = next else { return }
        steps.append(audience)
        if ok {
            passed = audience
        } else {
            firstFailure = min(firstFailure ?? audience, audience)
        }
        if steps.count >= maxSteps {
            next = nil
        } else if let failed = firstFailure {
            next = failed - passed > max(1, passed / 16) ? (passed + failed) / 2 : nil
        } else {
            next = audience < maxAudience ? min(audience * 2, maxAudience) : nil
        }
    }
}
