import ArgumentParser
import GroupcastCommandLine
import Foundation
import GroupcastAuth
import GroupcastProtocol
import Logging

/// `groupcast token`: mint join tokens (JWT HS256) with the operator's key, or make a key.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint join tokens for an SFU run with --auth-key-file (Docs/protocol.md, \"Join tokens\").",
        discussion: """
            Prints one token per line: `--count N` mints N, for identities IDENTITY-1 ... IDENTITY-N (a room \
            holds one participant per identity). The tokens are standard JWTs (HS256): any JWT library \
            with the same key mints equivalent ones. `--generate-key FILE` writes a new random key (mode 0600).
            """
    )

    @Option(help: "Write a new random key to this file (mode 0600) and exit.")
    var generateKey: String?

    @OptionGroup var key: AuthKeyOptions

    @Option(help: "The room the token admits to.")
    var room: String?

    @Option(help: "The participant's identity (`sub`).")
    var identity: String?

    @Option(help: "Validity from now (e.g. 1h, 30m, 90s).")
    var expires: DurationArgument = .init(.seconds(3600))

    @Option(help: "Rights: send, receive (comma-separated), all or none.")
    var rights: String = "send,receive"

    @Option(help: "Stream types the rights apply to (asq,vsq,vhq | all).")
    var streams: StreamSet = .all

    @Option(help: "Tokens to mint (identities IDENTITY-1 ... IDENTITY-N when more than one).")
    var count: Int = 1

    func validate() throws {
        if generateKey != nil { return }
        guard key.isGiven else { throw ValidationError("--auth-key-file or --auth-key-env: the key to sign with") }
        guard let room, RoomName.isValid(room) else { throw ValidationError("--room: 1-64 of A-Z a-z 0-9 . _ -") }
        guard let identity, !identity.isEmpty, identity.utf8.count <= JoinClaims.maxIdentityBytes - 8 else {
            throw ValidationError("--identity: 1-\(JoinClaims.maxIdentityBytes - 8) bytes")
        }
        guard expires.value >= .seconds(1) else { throw ValidationError("--expires: at least 1s") }
        guard JoinRights(list: rights) != nil else { throw ValidationError("--rights: send, receive, all or none") }
        guard count >= 1 && count <= 100_000 else { throw ValidationError("--count must be 1...100000") }
    }

    func run() throws {
        if let path = generateKey {
            do { _ = try TokenIssuer(keyPath: path) } catch {
                throw ValidationError("\(error.description) (an existing key is never overwritten)")
            }
            return
        }
        guard let signingKey = try key.load(logger: nil) else { throw ValidationError("no key") }
        let now = Int64(Date().timeIntervalSince1970)
        for index in 1...count {
            let claims = JoinClaims(
                room: room!, identity: count == 1 ? identity! : "\(identity!)-\(index)", expires: now + expires.value.components.seconds,
                issuedAt: now, rights: JoinRights(list: rights)!, streams: streams)
            print(JoinToken.mint(claims, key: signingKey))
        }
    }
}

/// The operator's key, from a file or an environment variable (never an argument: /proc/PID/cmdline
/// is world-readable): `groupcast sfu` checks join tokens with it, `groupcast token` signs them.
struct AuthKeyOptions: ParsableArguments {
    @Option(help: "The operator's key file (`groupcast token --generate-key` makes one). The SFU with a key needs a join token signed with it in every REGISTER; without one it is open (trusted networks only).")
    var authKeyFile: String?

    @Option(help: "Like --auth-key-file, the key from this environment variable.")
    var authKeyEnv: String?

    /// Whether a key was named.
    var isGiven: Bool { authKeyFile != nil || authKeyEnv != nil }

    func validate() throws {
        guard authKeyFile == nil || authKeyEnv == nil else { throw ValidationError("--auth-key-file and --auth-key-env: one key, not two") }
    }

    /// The key named, or nil when none is; warns (with a `logger`) about a key file others may read.
    func load(logger: Logger?) throws(ValidationError) -> TokenKey? {
        try Self.load(file: authKeyFile, environment: authKeyEnv, logger: logger)
    }

    /// The key in `file` or in the environment variable `environment` (`groupcast sfu` takes
    /// them from its flags or its configuration file).
    static func load(file: String?, environment: String?, logger: Logger?) throws(ValidationError) -> TokenKey? {
        do {
            if let file {
                var status = stat()
                if stat(file, &status) == 0, status.st_mode & 0o077 != 0 {
                    logger?.warning("key file \(file) is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))): chmod 600 it")
                }
                return try TokenKey(contentsOfFile: file)
            }
            if let environment {
                guard let text = ProcessInfo.processInfo.environment[environment] else {
                    throw TokenKey.LoadError(description: "environment variable \(environment) is not set")
                }
                return try TokenKey(text: text)
            }
            return nil
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
