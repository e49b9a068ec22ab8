import Dispatch
import PGEventsHarness
import PGEventsSystem

@testable import PGEventsServe

/// One page of a headless Chromium, driven over the DevTools protocol (JSON commands on the browser's WebSocket,
/// through the raw client): opened at a URL, its DOM read with `Runtime.evaluate`. Only what the browser tests need.
final class DevToolsPage: @unchecked Sendable {
    // Used by one task at a time: every call runs on a Dispatch thread and is awaited before the next one starts.
    private let socket: RawWebSocket
    private let session: String
    private var nextID = 0

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private init(socket: RawWebSocket, session: String) {
        self.socket = socket
        self.session = session
    }

    /// Opens a new page at `url` in `browser` and attaches to it.
    static func open(_ browser: HeadlessChromium, url: String) async throws -> DevToolsPage {
        try await blocking {
            let socket = try RawWebSocket(port: browser.devToolsPort, pathAndQuery: browser.browserPath)
            let opener = DevToolsPage(socket: socket, session: "")
            let target = try opener.call("Target.createTarget", ["url": .string(url)], session: nil)
            guard let targetID = target["targetId"]?.string else { throw Failure(description: "Target.createTarget: \(target)") }
            let attached = try opener.call("Target.attachToTarget", ["targetId": .string(targetID), "flatten": .bool(true)], session: nil)
            guard let session = attached["sessionId"]?.string else { throw Failure(description: "Target.attachToTarget: \(attached)") }
            return DevToolsPage(socket: socket, session: session)
        }
    }

    /// The value of the JavaScript `expression` in the page (`returnByValue`); a thrown exception is a failure.
    func evaluate(_ expression: String) async throws -> JSONValue {
        try await Self.blocking { [self] in
            let result = try call("Runtime.evaluate", ["expression": .string(expression), "returnByValue": .bool(true)], session: session)
            if let exception = result["exceptionDetails"] { throw Failure(description: "\(expression): \(exception)") }
            return result["result"]?["value"] ?? .null
        }
    }

    /// Evaluates `expression` every 50 ms until it is `true`; fails after `seconds`, naming `what` and the last
    /// value of `show` (what the page shows, for the failure message).
    func waitUntil(_ what: String, _ expression: String, show: String, within seconds: Double = 30) async throws {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        while try await evaluate(expression) != .bool(true) {
            if DispatchTime.now().uptimeNanoseconds > deadline {
                throw Failure(description: "waited \(seconds) s for \(what); the page shows: \(try await evaluate(show))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends a command and reads until its answer (events in between are skipped).
    private func call(_ method: String, _ parameters: [String: JSONValue], session: String?) throws -> JSONValue {
        nextID += 1
        var command: [String: JSONValue] = ["id": .number(Double(nextID)), "method": .string(method), "params": .object(parameters)]
        if let session { command["sessionId"] = .string(session) }
        try socket.send(JSONValue.object(command).text)
        while let text = try socket.receiveText() {
            guard let reply = JSONValue.parse(text), reply["id"] == .number(Double(nextID)) else { continue }
            if let error = reply["error"] { throw Failure(description: "\(method): \(error)") }
            return reply["result"] ?? .null
        }
        throw Failure(description: "the browser closed the DevTools connection during \(method)")
    }

    /// Runs `body` on a thread of its own (the raw socket blocks; never on Swift's cooperative pool).
    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onBlockingThread(body)
    }
}
