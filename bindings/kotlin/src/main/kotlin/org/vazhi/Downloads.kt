package org.vazhi

import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.conflate
import org.vazhi.ffi.DownloadListener
import org.vazhi.ffi.DownloadOutcome
import org.vazhi.ffi.DownloadProgress
import org.vazhi.ffi.ModelManager
import org.vazhi.ffi.VazhiException

/** One event of a model download: [Progress] events, then one [Finished]. */
sealed interface DownloadEvent {
    /** Throttled progress (about 4 a second). */
    data class Progress(val progress: DownloadProgress) : DownloadEvent

    /** The download ended: installed, paused or cancelled. Always last. */
    data class Finished(val outcome: DownloadOutcome) : DownloadEvent
}

/**
 * Downloads (or resumes) catalog model [id] as a cold [Flow]. Cancelling the collector pauses
 * the download and keeps the partial file: collecting again resumes it. Failures are thrown as
 * [VazhiException] (`Offline`, `Download`, `Verification`…). A slow collector sees the latest
 * progress only; [DownloadEvent.Finished] is never dropped.
 */
fun ModelManager.downloads(id: String): Flow<DownloadEvent> = callbackFlow {
    val listener = object : DownloadListener {
        override fun onProgress(progress: DownloadProgress) {
            trySendBlocking(DownloadEvent.Progress(progress))
        }

        override fun onFinished(outcome: DownloadOutcome) {
            trySendBlocking(DownloadEvent.Finished(outcome))
            channel.close()
        }

        override fun onError(error: VazhiException) {
            close(error)
        }
    }
    val task = download(id, listener)
    awaitClose {
        if (!task.isFinished()) {
            task.pause()
            // Hold the collector until the download let go of its partial file, so that
            // collecting again at once resumes instead of failing with Busy.
            task.wait(30_000uL)
        }
        task.close()
    }
}.conflate()
