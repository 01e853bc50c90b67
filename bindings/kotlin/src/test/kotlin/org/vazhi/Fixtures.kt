package org.vazhi

import java.io.File
import java.nio.file.Path
import java.security.MessageDigest
import java.security.SecureRandom
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import org.vazhi.ffi.KeyProvider
import org.vazhi.ffi.LogRecord
import org.vazhi.ffi.LogSink
import org.vazhi.ffi.VazhiConfig

/** Paths passed by Maven (pom.xml, surefire systemPropertyVariables). */
object Fixtures {
    private fun property(name: String): String =
        System.getProperty(name) ?: error("system property $name is not set (run through Maven)")

    /** SmolLM2 135M, the small test model. */
    val smolLm2: String by lazy {
        val file = File(property("vazhi.models"), "SmolLM2-135M-Instruct.Q4_1.gguf")
        check(file.isFile) { "test model missing: $file (run scripts/setup --models)" }
        file.path
    }

    /** The Thirukkural knowledge pack in the repository. */
    val kuralPack: String by lazy {
        val dir = File(property("vazhi.repo"), "assets/packs/thirukkural").canonicalFile
        check(File(dir, "records.jsonl").isFile) { "pack missing: $dir" }
        dir.path
    }

    /** A Qwen/Hermes-style chat template that renders tools (the shipped models' do not). */
    val toolTemplate: String by lazy {
        File(property("vazhi.repo"), "core/tests/fixtures/tool_templates/hermes.jinja").readText()
    }

    /** A Vazhi over [dataDir] with the test model, small and deterministic enough for tests. */
    fun modelConfig(dataDir: Path) = VazhiConfig(
        dataDir = dataDir.toString(),
        modelPath = smolLm2,
        threads = 2u,
        contextTokens = 512u,
    )
}

fun sha256Hex(bytes: ByteArray): String =
    MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }

/** Keys in memory, as an app's Keystore-backed provider would keep them. */
class MemoryKeys : KeyProvider {
    val keys = ConcurrentHashMap<String, ByteArray>()
    private val random = SecureRandom()

    override fun getKey(keyId: String): ByteArray? = keys[keyId]?.copyOf()

    override fun createKey(keyId: String): ByteArray {
        val key = ByteArray(32).also(random::nextBytes)
        keys[keyId] = key
        return key.copyOf()
    }

    override fun deleteKey(keyId: String) {
        keys.remove(keyId)
    }
}

/** Collects Vazhi's log records (from any thread); tests wait for one they expect. */
object TestLog : LogSink {
    private val lock = ReentrantLock()
    private val added = lock.newCondition()
    private val records = ArrayList<LogRecord>()

    override fun log(record: LogRecord) = lock.withLock {
        records.add(record)
        added.signalAll()
    }

    fun clear() = lock.withLock { records.clear() }

    /** A record since the last [clear] matching [predicate], or null after [seconds]. */
    fun await(seconds: Long, predicate: (LogRecord) -> Boolean): LogRecord? = lock.withLock {
        var left = TimeUnit.SECONDS.toNanos(seconds)
        var found = records.firstOrNull(predicate)
        while (found == null && left > 0) {
            left = added.awaitNanos(left)
            found = records.firstOrNull(predicate)
        }
        found
    }
}
