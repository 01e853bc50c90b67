// AGP 9 compiles Kotlin itself ("built-in Kotlin"), with the Kotlin Gradle plugin on this
// classpath: pinned to the Kotlin of the JVM build (bindings/kotlin/pom.xml), as AGP 9.0 would
// otherwise bring KGP 2.2.10, older than the coroutines and Kotlin layer it compiles against.
buildscript {
    val kotlinVersion: String by project
    repositories {
        google()
        mavenCentral()
    }
    dependencies {
        classpath("org.jetbrains.kotlin:kotlin-gradle-plugin:$kotlinVersion")
    }
}

plugins {
    id("com.android.library") apply false
}
