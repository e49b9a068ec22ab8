import NIOCore
import NIOWebSocket

/// A WebSocket client's live messages, written by the hub straight to the client's channel on the channel's own
/// event loop: no task, no wake-up and no queue object per client. The hub hands each event loop what was
/// published since the loop's last pass, once, and the loop writes it to each of its clients and flushes each once.
///
/// The client's queue is what its channel holds but has not yet written to the socket: a client whose channel
/// holds more than `capacity` messages is not keeping up, and is ended (`onOverflow`) without slowing anyone else.
///
/// While the session replays what the client missed (`since=`), live batches are held here instead (counted
/// against the same capacity) and written behind the replay by ``goLive()``.
///
/// Ending a client is done here too, on the loop, so that an idle client costs no task waiting for it: ``end(_:)``
/// writes the farewell (a message, then a close frame with its code) behind what the client has not read. The
/// connection's ``SocketConnectionHandler`` then closes the connection when the client answers, or after
/// `close_timeout`, and the session, waiting for that, ends.
///
/// Everything but the `let`s is touched only on `eventLoop`, hence `@unchecked Sendable`.
final class SocketFeed: @unchecked Sendable {
    /// What a client is told when the hub ends it: an optional text message, then a close frame.
    struct Farewell: Sendable {
        var message: String?
        var code: WebSocketErrorCode
        var reason: String
    }

    let filter: ClientFilter
    let eventLoop: any EventLoop
    private let channel: any Channel
    private let capacity: Int
    private let farewell: @Sendable (ClientHub.Ending) -> Farewell
    private let onOverflow: @Sendable () -> Void
    private let onSent: @Sendable (Int) -> Void

    // On `eventLoop` only.
    /// The last entry sent, per stream: anything at or before it is not sent again.
    private var positions: [String: StreamID]
    /// Live frames that arrived while the replay ran; nil once live.
    private var held: [[FanoutBatch.Frame]]?
    private var heldCount = 0
    /// Messages handed to the channel that it has not written to the socket yet.
    private var unwritten = 0
    private var stopped = false

    /// A feed starting after `positions`; `replaying`: hold live batches until ``goLive()``. When the client falls
    /// `capacity` messages behind, the feed ends it (`.slow`) and calls `onOverflow`, on the event loop. `farewell`
    /// says what an ending tells the client; `onSent` is given each number of messages written.
    init(
        channel: any Channel, filter: ClientFilter, positions: [String: StreamID], replaying: Bool, capacity: Int,
        farewell: @escaping @Sendable (ClientHub.Ending) -> Farewell,
        onOverflow: @escaping @Sendable () -> Void, onSent: @escaping @Sendable (Int) -> Void
    ) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.filter = filter
        self.positions = positions
        self.held = replaying ? [] : nil
        self.capacity = capacity
        self.farewell = farewell
        self.onOverflow = onOverflow
        self.onSent = onSent
    }

    /// Writes (or holds, while replaying) the messages of `batch` that are for this client. On the event loop.
    func deliver(_ batch: FanoutBatch) {
        eventLoop.assertInEventLoop()
        guard !stopped else { return }
        let frames = batch.frames(for: filter)
        guard !frames.isEmpty else { return }
        if held != nil {
            held?.append(frames)
            heldCount += frames.count
            if heldCount > capacity { overflow() }
            return
        }
        write(frames)
    }

    /// Ends the replay: writes the batches held meanwhile, and then every live batch as it comes. Called once the
    /// replay's frames are with the channel's event loop, so the held ones go out behind them.
    func goLive() async throws {
        try await eventLoop.submit {
            let held = self.held ?? []
            self.held = nil
            self.heldCount = 0
            for batch in held where !self.stopped { self.write(batch) }
        }.get()
    }

    /// No more writes: what is already handed to the channel stays, nothing more follows. Returns once the
    /// event loop has taken it, so a frame the session writes next (a close) comes after every message.
    func stop() async {
        try? await eventLoop.submit { self.stopped = true }.get()
    }

    private func write(_ frames: [FanoutBatch.Frame]) {
        var count = 0
        var last: ByteBuffer?
        for frame in frames {
            if let known = positions[frame.stream], frame.id <= known { continue }
            positions[frame.stream] = frame.id
            if let previous = last { channel.write(WebSocketFrame(fin: true, opcode: .text, data: previous), promise: nil) }
            last = frame.bytes
            count += 1
        }
        guard let last else { return }
        // The channel writes in order: once the last is written to the socket, so is every one before it.
        let written = eventLoop.makePromise(of: Void.self)
        unwritten += count
        written.futureResult.whenComplete { [self] _ in unwritten -= count }
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: last), promise: written)
        onSent(count)
        if unwritten > capacity { overflow() }
    }

    private func overflow() {
        guard !stopped else { return }
        end(.slow)
        onOverflow()
    }

    /// Ends the client for `reason`, once: nothing more is written but the farewell. On the event loop.
    func end(_ reason: ClientHub.Ending) {
        eventLoop.assertInEventLoop()
        guard !stopped else { return }
        stopped = true
        held = nil
        let farewell = farewell(reason)
        if let message = farewell.message {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: message)), promise: nil)
        }
        // The connection's handler closes the connection once the client answers, or after close_timeout.
        channel.writeAndFlush(
            SocketConnectionHandler.closeFrame(code: farewell.code, reason: farewell.reason, allocator: channel.allocator), promise: nil)
    }
}
