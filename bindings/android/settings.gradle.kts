// The Gradle build of Vazhi's Android library (module :vazhi). Run through build-aar, which first
// fills vazhi/src/main/kotlin (generated bindings + Kotlin layers) and vazhi/src/main/jniLibs
// (libvazhi_ffi.so per ABI). Never run where it was written (no Android SDK there): the versions
// in gradle.properties are pins to check on first use, see README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    val agpVersion: String by settings
    plugins {
        id("com.android.library") version agpVersion
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "vazhi-android"
include(":vazhi")
