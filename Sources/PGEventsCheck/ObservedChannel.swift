/// What a trigger was seen to send: for the report's "what each trigger really sends".
public struct ObservedChannel: Sendable, Hashable, Codable {
    public var table: String
    public var trigger: String
    public var operation: String
    public var channel: String
    public var samplePayload: String

    public init(table: String, trigger: String, operation: String, channel: String, samplePayload: String) {
        self.table = table
        self.trigger = trigger
        self.operation = operation
        self.channel = channel
        self.samplePayload = samplePayload
    }
}
