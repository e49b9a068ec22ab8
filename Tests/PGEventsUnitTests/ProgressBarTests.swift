import Synchronization
import Testing

@testable import PGEventsCLI

@Suite("Progress bar")
struct ProgressBarTests {
    final class Written: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    @Test("off a terminal nothing is written, not even the erasing sequence")
    func disabled() {
        let written = Written()
        let bar = ProgressBar(enabled: false, delay: .zero, write: written.append)
        bar.show(step: "check", fraction: 0.5, message: "PostgreSQL 18: exercising")
        bar.clear()
        #expect(written.lines.withLock { $0 }.isEmpty)
    }

    @Test("on a terminal: the bar once the step has lasted its delay, then erased")
    func drawn() {
        let written = Written()
        let bar = ProgressBar(enabled: true, delay: .zero, write: written.append)
        bar.show(step: "check", fraction: 0.5, message: "PostgreSQL 18: 1 of 2 table(s) exercised")
        bar.clear()
        let lines = written.lines.withLock { $0 }
        #expect(lines.count == 2)
        #expect(lines.first == "\r\u{1B}[2K[###############---------------]  50% PostgreSQL 18: 1 of 2 table(s) exercised")
        #expect(lines.last == "\r\u{1B}[2K")
    }

    @Test("a short run draws nothing: the delay has not passed")
    func short() {
        let written = Written()
        let bar = ProgressBar(enabled: true, delay: .seconds(3_600), write: written.append)
        bar.show(step: "check", fraction: 0.9, message: "almost")
        bar.clear()
        #expect(written.lines.withLock { $0 }.isEmpty)
    }
}
