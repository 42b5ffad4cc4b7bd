// swift-tools-version: 6.0
//
// GroupUnicast: send one shared UDP payload to many receivers in one call.
// One target per entry below; add new targets (C shims, Swift modules,
// executables) to the matching section and, if public, to `products`.
import PackageDescription

let package = Package(
    name: "GroupUnicast",
    products: [
        .library(name: "GroupUnicast", targets: ["GroupUnicast"]),
        .executable(name: "game-broadcaster", targets: ["GameBroadcaster"]),
        .executable(name: "live-relay", targets: ["LiveRelay"]),
        // Reference SFU (Docs/protocol.md): library and the `groupcast` command.
        .library(name: "GroupcastSFU", targets: ["GroupcastSFU"]),
        .executable(name: "groupcast", targets: ["Groupcast"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: C shims

        // ioctl, sendmmsg/recvmmsg, cmsg and sockaddr helpers over kmod's uAPI header.
        .target(name: "CGroupUnicast"),

        // MARK: Libraries

        .target(
            name: "GroupUnicast",
            dependencies: [
                "CGroupUnicast",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Reference SFU (Docs/protocol.md)

        // Pure RTP and control-protocol parsers, session registry, routing table, the
        // `Forwarder` protocol with its socket/sendmmsg/sendgroup backends, the client.
        .target(
            name: "GroupcastSFU",
            dependencies: [
                "GroupUnicast",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `groupcast sfu | client | demo` (and later `xdp`, `bench`).
        .executableTarget(
            name: "Groupcast",
            dependencies: [
                "GroupcastSFU",
                "GroupUnicast",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libFuzzer entry points for the RTP and control parsers (scripts/test-sfu builds them
        // with -sanitize=fuzzer); a plain build replays files given as arguments.
        .executableTarget(
            name: "GroupcastFuzz",
            dependencies: ["GroupcastSFU"]
        ),

        // MARK: Examples (Examples/README.md)

        .executableTarget(
            name: "GameBroadcaster",
            dependencies: [
                "GroupUnicast",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/GameBroadcaster"
        ),
        .executableTarget(
            name: "LiveRelay",
            dependencies: [
                "GroupUnicast",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/LiveRelay"
        ),

        // MARK: Tests

        .testTarget(
            name: "GroupUnicastTests",
            dependencies: [
                "GroupUnicast",
                "CGroupUnicast",
                .product(name: "SystemPackage", package: "swift-system"),
                // Built before the tests, which run them as subprocesses.
                "GameBroadcaster",
                "LiveRelay",
            ]
        ),
        // Reference SFU: parsers, registry, routing, forwarders end to end (scripts/test-sfu).
        .testTarget(
            name: "GroupcastSFUTests",
            dependencies: [
                "GroupcastSFU",
                "GroupUnicast",
                // Built before the tests, which run `groupcast` as a subprocess.
                "Groupcast",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
