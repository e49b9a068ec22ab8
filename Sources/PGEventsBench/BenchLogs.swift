import Logging
import Synchronization

/// What the processor under a benchmark logged that the bench reports: when each message was first logged (fault
/// detection times) and the last warning, with its metadata (why a soak stalled).
final class BenchLogs: Sendable {
    private let firsts = Mutex<[String: ContinuousClock.Instant]>([:])
    private let last = Mutex<String?>(nil)

    /// When `message` was first logged.
    func first(_ message: String) -> ContinuousClock.Instant? { firsts.withLock { $0[message] } }

    /// The last warning (or worse) logged, with its metadata.
    var lastWarning: String? { last.withLock { $0 } }

    /// A logger that records here, at `level` and above.
    func logger(label: String = "pgevents.bench", level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label) { _ in Handler(logs: self, logLevel: level) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let logs: BenchLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        init(logs: BenchLogs, logLevel: Logger.Level) {
            self.logs = logs
            self.logLevel = logLevel
        }

        func log(event: LogEvent) {
            let now = ContinuousClock.now
            logs.firsts.withLock { if $0[event.message.description] == nil { $0[event.message.description] = now } }
            guard event.level >= .warning else { return }
            let fields = (metadata.merging(event.metadata ?? [:]) { $1 }).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let text = "\(event.message)" + (fields.isEmpty ? "" : " (" + fields.joined(separator: ", ") + ")")
            logs.last.withLock { $0 = text }
        }
    }
}
