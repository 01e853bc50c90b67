// swift-tools-version:5.9
// Vazhi for iOS and macOS. Run bindings/swift/build-xcframework on a Mac first: it builds
// build/VazhiFFIFFI.xcframework and writes Sources/VazhiFFI/VazhiFFI.swift (both generated from
// vazhi-ffi, neither committed). Until then this package does not resolve.
// Needs Xcode 16+ (the Swift 6 compiler); the sources are in the Swift 5 language mode.
import PackageDescription

let package = Package(
    name: "Vazhi",
    platforms: [
        // Keep in step with VAZHI_IOS_MIN / VAZHI_MACOS_MIN in build-xcframework.
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        // `import Vazhi` gives the idiomatic layer and (re-exported) the generated API.
        .library(name: "Vazhi", targets: ["Vazhi"]),
    ],
    targets: [
        // vazhi-ffi as a static library per platform (device, simulator, macOS), with the C
        // header and module map (module VazhiFFIFFI) that uniffi generated for it.
        .binaryTarget(
            name: "VazhiFFIFFI",
            path: "build/VazhiFFIFFI.xcframework"
        ),
        // The uniffi-generated Swift API (module VazhiFFI): Vazhi, KnowledgeBase, ModelManager,
        // FeedbackStore, the records, VazhiError. Copied in by build-xcframework.
        .target(
            name: "VazhiFFI",
            dependencies: ["VazhiFFIFFI"],
            exclude: ["README.md"],
            // A static library carries no link dependencies of its own: these are what rustc
            // reports for libvazhi_ffi.a (`--print native-static-libs`; build-xcframework warns
            // when this list lacks one). llama.cpp is C++ (libc++) and uses Accelerate; llama-cpp-sys-2
            // links Foundation, Metal and MetalKit even when Metal is off; Security and
            // CoreFoundation come with rustls-platform-verifier (compiled in by reqwest, unused:
            // Vazhi pins its own roots); iconv with the libc crate on Apple platforms.
            linkerSettings: [
                .linkedLibrary("c++"),
                .linkedLibrary("iconv"),
                .linkedFramework("Foundation"),
                .linkedFramework("CoreFoundation"),
                .linkedFramework("Security"),
                .linkedFramework("Accelerate"),
                .linkedFramework("Metal"),
                .linkedFramework("MetalKit"),
            ]
        ),
        // The idiomatic layer: AsyncThrowingStream answers and downloads, async wrappers for the
        // blocking calls, a Keychain KeyProvider, a memory-warning hook.
        .target(
            name: "Vazhi",
            dependencies: ["VazhiFFI"]
        ),
        // Runs on a Mac (`swift test`, the macOS slice) against the Thirukkural pack in
        // assets/packs; no model. Not run in CI (Linux).
        .testTarget(
            name: "VazhiTests",
            dependencies: ["Vazhi"]
        ),
    ]
)
