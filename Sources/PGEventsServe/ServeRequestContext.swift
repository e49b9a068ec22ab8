public import Hummingbird
public import NIOCore

/// The request context of the gateway's routes: Hummingbird's, plus the connection's channel, so that a client
/// dropped for being slow can be disconnected even while a write to it is stuck.
public struct ServeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
