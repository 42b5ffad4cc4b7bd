#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast

/// Why a subscribers file could not be used.
struct SubscribersFileError: Error, CustomStringConvertible {
    var path: String
    var line: Int?
    var message: String

    var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}

enum Subscribers {
    /// Parses a subscribers file: one `HOST:PORT` or `[IPv6]:PORT` per line; `#` starts a comment.
    static func parse(_ text: String, path: String) throws(SubscribersFileError) -> [SocketAddress] {
        var addresses: [SocketAddress] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }.trimmingCharacters(in: " \t\r")
            if line.isEmpty { continue }
            do {
                addresses.append(try SocketAddress(parsing: line))
            } catch {
                throw SubscribersFileError(path: path, line: number + 1, message: error.description)
            }
        }
        return addresses
    }

    /// Reads and parses the subscribers file at `path`.
    static func load(path: String) throws(SubscribersFileError) -> [SocketAddress] {
        guard let file = fopen(path, "r") else {
            throw SubscribersFileError(path: path, line: nil, message: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes.append(contentsOf: chunk[0..<count])
            if count < chunk.count { break }
        }
        if ferror(file) != 0 {
            throw SubscribersFileError(path: path, line: nil, message: "read error")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
