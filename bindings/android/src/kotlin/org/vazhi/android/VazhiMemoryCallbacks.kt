// Android-only source of the AAR (build-aar copies bindings/android/src/kotlin into the :vazhi
// module). Compiled only by the Android build, which was never run where this was written.
package org.vazhi.android

import android.content.ComponentCallbacks2
import android.content.res.Configuration
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import org.vazhi.ffi.MemoryPressure
import org.vazhi.ffi.Vazhi

/**
 * Forwards Android's memory signals to [Vazhi.onMemoryPressure], which unloads the model at or
 * above the level the Vazhi was configured with (`unloadAt`, default [MemoryPressure.CRITICAL]);
 * the knowledge base keeps answering, and `reload()` loads the model again.
 *
 * ```
 * val callbacks = VazhiMemoryCallbacks(vazhi)
 * context.applicationContext.registerComponentCallbacks(callbacks)
 * // … and unregisterComponentCallbacks(callbacks) before closing the Vazhi.
 * ```
 *
 * The callbacks arrive on the main thread; the unload (which waits for the model's worker and
 * reopens the knowledge base) runs on [executor].
 */
class VazhiMemoryCallbacks @JvmOverloads constructor(
    private val vazhi: Vazhi,
    private val executor: Executor = Executors.newSingleThreadExecutor { task ->
        Thread(task, "vazhi-memory").apply { isDaemon = true }
    },
) : ComponentCallbacks2 {

    override fun onTrimMemory(level: Int) {
        val pressure = pressureFor(level) ?: return
        executor.execute {
            // A failure to unload leaves the model loaded; there is nobody to report it to here.
            runCatching { vazhi.onMemoryPressure(pressure) }
        }
    }

    @Deprecated("Deprecated in Android API 34")
    override fun onLowMemory() {
        onTrimMemory(TRIM_MEMORY_COMPLETE_LEVEL)
    }

    override fun onConfigurationChanged(newConfig: Configuration) {}

    companion object {
        // ComponentCallbacks2's levels, as numbers: most TRIM_MEMORY_* constants are deprecated
        // since API 34 (which delivers only UI_HIDDEN and BACKGROUND), but older Androids still
        // send them.
        private const val TRIM_MEMORY_RUNNING_LOW_LEVEL = 10
        private const val TRIM_MEMORY_RUNNING_CRITICAL_LEVEL = 15
        private const val TRIM_MEMORY_UI_HIDDEN_LEVEL = 20
        private const val TRIM_MEMORY_MODERATE_LEVEL = 60
        private const val TRIM_MEMORY_COMPLETE_LEVEL = 80

        /**
         * The [MemoryPressure] of an `onTrimMemory` level, or null when there is nothing to do.
         * While the app runs: RUNNING_LOW is [MemoryPressure.MODERATE], RUNNING_CRITICAL
         * [MemoryPressure.CRITICAL]. Once its UI is hidden: UI_HIDDEN and BACKGROUND are
         * [MemoryPressure.BACKGROUND], MODERATE is [MemoryPressure.MODERATE], and COMPLETE (the
         * process is among the next to be killed) is [MemoryPressure.CRITICAL].
         */
        @JvmStatic
        fun pressureFor(level: Int): MemoryPressure? = when {
            level >= TRIM_MEMORY_COMPLETE_LEVEL -> MemoryPressure.CRITICAL
            level >= TRIM_MEMORY_MODERATE_LEVEL -> MemoryPressure.MODERATE
            level >= TRIM_MEMORY_UI_HIDDEN_LEVEL -> MemoryPressure.BACKGROUND
            level >= TRIM_MEMORY_RUNNING_CRITICAL_LEVEL -> MemoryPressure.CRITICAL
            level >= TRIM_MEMORY_RUNNING_LOW_LEVEL -> MemoryPressure.MODERATE
            else -> null
        }
    }
}
