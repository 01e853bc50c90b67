package org.vazhi

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import java.io.File
import java.io.IOException
import java.net.InetAddress
import java.net.InetSocketAddress
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertInstanceOf
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import org.vazhi.ffi.DownloadOutcome
import org.vazhi.ffi.DownloadPhase
import org.vazhi.ffi.ModelManager
import org.vazhi.ffi.ModelManagerConfig
import org.vazhi.ffi.ModelState
import org.vazhi.ffi.VazhiException

/** A loopback HTTP server with one file: Content-Length, a strong ETag, `Range: bytes=N-`. */
class ModelServer(private val body: ByteArray, private val chunkDelayMs: Long) : AutoCloseable {
    /** One request as the server saw it. */
    data class Request(val method: String, val path: String, val range: String?, val ifRange: String?)

    val requests = CopyOnWriteArrayList<Request>()
    private val etag = "\"vazhi-test-${sha256Hex(body).take(16)}\""
    private val pool: ExecutorService = Executors.newCachedThreadPool()
    private val server = HttpServer.create(InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0).apply {
        createContext("/") { handle(it) }
        executor = pool
        start()
    }
    val url = "http://127.0.0.1:${server.address.port}/models/test.gguf"

    private fun handle(ex: HttpExchange): Unit = ex.use {
        val h = ex.requestHeaders
        requests += Request(ex.requestMethod, ex.requestURI.path, h.getFirst("Range"), h.getFirst("If-Range"))
        try {
            if (ex.requestURI.path != "/models/test.gguf") return ex.sendResponseHeaders(404, -1)
            ex.responseHeaders.add("ETag", etag)
            ex.responseHeaders.add("Accept-Ranges", "bytes")
            ex.responseHeaders.add("Content-Type", "application/octet-stream")
            val asked = Regex("bytes=(\\d+)-").matchEntire(h.getFirst("Range") ?: "")?.groupValues?.get(1)?.toInt()
            val ifRange = h.getFirst("If-Range")
            val from = if (asked != null && asked < body.size && (ifRange == null || ifRange == etag)) asked else 0
            if (from > 0) {
                ex.responseHeaders.add("Content-Range", "bytes $from-${body.size - 1}/${body.size}")
                ex.sendResponseHeaders(206, (body.size - from).toLong())
            } else {
                ex.sendResponseHeaders(200, body.size.toLong())
            }
            if (ex.requestMethod == "HEAD") return
            val out = ex.responseBody
            var offset = from
            while (offset < body.size) {
                val n = minOf(64 * 1024, body.size - offset)
                out.write(body, offset, n)
                out.flush()
                offset += n
                if (chunkDelayMs > 0) Thread.sleep(chunkDelayMs)
            }
        } catch (_: IOException) {
            // The client went away (a paused download).
        }
    }

    override fun close() {
        server.stop(0)
        pool.shutdownNow()
    }
}

/** Downloads through the Flow layer from a loopback server; offline mode opens no socket. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DownloadTest {
    private val id = "test-model.q4"
    private val body = Random(42).nextBytes(4 shl 20)
    private val sha = sha256Hex(body)
    private val servers = mutableListOf<ModelServer>()

    @AfterEach
    fun stopServers() = servers.forEach { it.close() }

    private fun server(chunkDelayMs: Long) = ModelServer(body, chunkDelayMs).also { servers += it }

    private fun catalog(url: String) = """
        {"format": 1, "models": [{
          "id": "$id", "name": "Test model", "urls": ["$url"],
          "sha256": "$sha", "size": ${body.size},
          "quant": "Q4_0", "arch": "llama", "context_length": 512, "min_ram_mb": 1, "licence": "MIT"
        }]}
    """.trimIndent()

    private fun manager(dir: Path, url: String, offline: Boolean = false) = ModelManager(
        ModelManagerConfig(
            dataDir = dir.toString(),
            catalogJson = catalog(url),
            // A test catalog of a loopback server: not signed.
            allowUnsigned = true,
            offline = offline,
            allowLoopbackHttp = true,
        ),
    )

    private fun assertInstalled(outcome: DownloadOutcome) {
        val installed = assertInstanceOf<DownloadOutcome.Installed>(outcome).model
        assertEquals(id, installed.id)
        assertEquals(sha, installed.sha256)
        assertEquals(body.size.toULong(), installed.size)
        assertEquals(sha, sha256Hex(File(installed.path).readBytes()))
    }

    @Test
    fun `a download streams progress and installs the verified file`(@TempDir dir: Path) = runBlocking {
        val server = server(chunkDelayMs = 20) // about 1.3 s: several progress events
        manager(dir, server.url).use { manager ->
            val events = withTimeout(60_000) { manager.downloads(id).toList() }

            val progress = events.filterIsInstance<DownloadEvent.Progress>().map { it.progress }
            assertTrue(progress.isNotEmpty(), "no progress in $events")
            assertTrue(progress.all { it.id == id && it.total == body.size.toULong() && it.bytes <= it.total })
            assertTrue(progress.any { it.phase == DownloadPhase.DOWNLOADING }, "phases: ${progress.map { it.phase }}")
            val finished = assertInstanceOf<DownloadEvent.Finished>(events.last())
            assertInstalled(finished.outcome)
            assertInstanceOf<ModelState.Installed>(manager.status(id))
            assertEquals(sha, manager.verify(id).sha256)
            assertEquals(listOf(null), server.requests.map { it.range })
        }
    }

    @Test
    fun `cancelling the collector pauses, and collecting again resumes with a Range`(@TempDir dir: Path) = runBlocking {
        val server = server(chunkDelayMs = 40) // about 1.6 MB/s: 2.5 s for the file
        manager(dir, server.url).use { manager ->
            withTimeout(60_000) {
                manager.downloads(id).first {
                    it is DownloadEvent.Progress && it.progress.phase == DownloadPhase.DOWNLOADING && it.progress.bytes > 0u
                }
                // The flow's close waited for the task to let go of the partial file.
                val state = manager.status(id)
                val kept = (state as? ModelState.Partial)?.bytes ?: 0uL
                val events = manager.downloads(id).toList()
                assertTrue(kept > 0uL && kept < body.size.toULong(), "kept $kept bytes")
                assertInstalled((events.last() as DownloadEvent.Finished).outcome)
                val resumed = server.requests.last()
                val from = Regex("bytes=(\\d+)-").matchEntire(resumed.range ?: "")?.groupValues?.get(1)?.toULong()
                assertTrue(from != null && from >= kept && from < body.size.toULong(), "Range: ${resumed.range}, kept $kept")
                assertTrue(resumed.ifRange?.startsWith("\"vazhi-test-") == true, "If-Range: ${resumed.ifRange}")
            }
        }
    }

    @Test
    fun `offline opens no socket`(@TempDir dir: Path) {
        val server = server(chunkDelayMs = 0)
        manager(dir, server.url, offline = true).use { manager ->
            assertThrows<VazhiException.Offline> { runBlocking { manager.downloads(id).toList() } }
        }
        assertEquals(emptyList<ModelServer.Request>(), server.requests)
    }
}
