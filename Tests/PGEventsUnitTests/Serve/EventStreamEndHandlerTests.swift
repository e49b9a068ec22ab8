import NIOCore
import NIOEmbedded
import Testing

@testable import PGEventsServe

@Suite("serve: an SSE client's end of input")
struct EventStreamEndHandlerTests {
    @Test("the client's half-closure closes the channel; other events pass on and leave it open")
    func inputClosedCloses() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(EventStreamEndHandler())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!channel.isActive)
    }
}
