import NIOCore
import NIOWebSocket

/// What one `/broadcast` client sends, taken on its event loop. While SQL is off, every message gets the same
/// refusal, written at once from the loop: no queue and no task for the thousands of clients that never send
/// anything. With SQL on, messages wait in a ``StatementQueue`` that the client's session runs once the client is
/// admitted (before that, nothing of what it sent is run).
final class BroadcastInbox: Sendable {
    /// The statements waiting to run; nil while SQL is off.
    let statements: StatementQueue?
    private let channel: any Channel

    init(gateway: Gateway, channel: any Channel) {
        self.channel = channel
        self.statements = gateway.configuration.sql.enabled ? StatementQueue(capacity: gateway.configuration.sql.maxQueued) : nil
    }

    /// Takes a message from the client; on the event loop.
    func receive(_ message: SocketConnectionHandler.Message) {
        if let statements {
            switch message {
            case .text(let text): statements.add(.statement(text))
            case .binary: statements.add(.binary)
            }
            return
        }
        let answer =
            switch message {
            case .text: SQLRunner.disabled
            case .binary: Self.binaryRefused
            }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: answer)), promise: nil)
    }

    /// The connection is gone: nothing more comes, and what waits is not run.
    func finish() {
        statements?.finish()
    }

    /// The answer to a binary message.
    static let binaryRefused = GatewayError(code: "unsupported", message: "Binary messages are not accepted", status: .badRequest).json
}
