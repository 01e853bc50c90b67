// :vazhi — the Android library (AAR): the uniffi-generated Kotlin (org.vazhi.ffi), the Kotlin
// layer of bindings/kotlin, the Android-only sources of bindings/android/src/kotlin, and
// libvazhi_ffi.so per ABI. build-aar copies all of them into src/main/{kotlin,jniLibs} (the
// default source directories, so nothing here depends on source-set DSL that AGP versions
// change) and then runs :vazhi:assembleRelease. Never run where it was written: see README.md.
plugins {
    id("com.android.library")
    `maven-publish`
}

// The workspace version (Cargo.toml [workspace.package]).
val vazhiVersion = "0.1.0"

android {
    namespace = "org.vazhi"
    compileSdk = 36

    defaultConfig {
        // Must match the API level the native libraries were linked against (build-aar,
        // VAZHI_ANDROID_API, default 24).
        minSdk = 24
        // Keep rules for JNA and the generated bindings, applied to the apps' R8.
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        // Kotlin's jvmTarget follows this under AGP 9's built-in Kotlin.
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // build-aar strips the libraries itself and keeps the unstripped copies for
            // symbolication; AGP must not strip them a second time.
            keepDebugSymbols += "**/libvazhi_ffi.so"
        }
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

dependencies {
    // JNA with its Android natives (libjnidispatch.so per ABI, in the @aar artifact): the
    // generated bindings load libvazhi_ffi.so through it. `api`: RustBuffer extends a JNA type.
    api("net.java.dev.jna:jna:${property("jnaVersion")}@aar")
    // Flow in the Kotlin layer's API, and the suspend functions of the generated bindings.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:${property("coroutinesVersion")}")
}

// A local Maven repository (vazhi/build/repo) with a POM that names the dependencies above,
// which a bare .aar file cannot carry: :vazhi:publishReleasePublicationToLocalRepository.
publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "org.vazhi"
            artifactId = "vazhi-android"
            version = vazhiVersion
            afterEvaluate {
                from(components["release"])
            }
        }
    }
    repositories {
        maven {
            name = "local"
            url = uri(layout.buildDirectory.dir("repo"))
        }
    }
}
