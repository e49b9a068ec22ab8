/// One thing to write to Redis: an event as it was emitted, a rule's job, a batch item, or a dead letter.
public struct Job: Sendable, Hashable {
    /// Where a job goes.
    public enum Destination: Sendable, Hashable {
        /// `LPUSH` to a list (`BRPOP` workers).
        case list(String)
        /// `XADD` to a stream, trimmed to about `maxLength` entries when given.
        case stream(String, maxLength: Int?)
        /// Staged into a batch that goes out as one message (``BatchDestination``).
        case batch(BatchDestination)
        /// `LPUSH` to the dead-letter list. `replacing` is where the job would have gone: once its dead letter
        /// is written, a replay never sends it there either.
        case deadLetter(String, replacing: Replaced?)

        /// The list or stream the job (or its batch) ends in.
        public var name: String {
            switch self {
            case .list(let name), .stream(let name, _), .deadLetter(let name, _): name
            case .batch(let batch): batch.queue
            }
        }

        /// The destination a dead letter stands in for (without its batch's details).
        public struct Replaced: Sendable, Hashable {
            /// The delivered-position field of that destination (``RedisJobWriter``).
            public var field: String
            /// The destination's list or stream (on a Redis Cluster, its slot is where its position is kept).
            public var name: String

            /// The dead letter stands in for jobs to `destination`.
            public init(_ destination: Destination) {
                self.field = RedisJobWriter.field(for: destination)
                self.name = destination.name
            }
        }
    }

    /// The event it comes from.
    public var event: SourceEvent
    /// Its place among the jobs of its event: 0 for the first. With the event's batch and seq it is the job's
    /// delivery position, the same on every replay.
    public var index: Int
    public var destination: Destination
    /// What is written: the payload, the job's JSON, the batch item, or the dead letter.
    public var body: String

    public init(event: SourceEvent, index: Int = 0, destination: Destination, body: String) {
        self.event = event
        self.index = index
        self.destination = destination
        self.body = body
    }

    /// `<seq>` for an event's first job, `<seq>:<n>` for its further ones: how messages name the job.
    public var key: String { index == 0 ? String(event.seq) : "\(event.seq):\(index)" }

    /// The job's delivery position as fixed-width digits, so that Redis compares positions as strings:
    /// the event's batch, its seq (both offset by 2^63, so negative table keys order too) and the job's index.
    public var position: String { String(decoding: positionBytes, as: UTF8.self) }

    /// ``position`` as the bytes the writer sends (this runs once per job: one buffer, written from the right).
    var positionBytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 46) { buffer, count in
            func put(_ value: UInt64, width: Int, end: Int) {
                var value = value
                for offset in stride(from: end - 1, through: end - width, by: -1) {
                    buffer[offset] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(UInt64(bitPattern: event.batch) &+ (1 << 63), width: 20, end: 20)
            put(UInt64(bitPattern: event.seq) &+ (1 << 63), width: 20, end: 40)
            put(UInt64(min(max(0, index), 999_999)), width: 6, end: 46)
            count = 46
        }
    }
}

/// A batch a job is staged into, and where that batch goes (GC2's "10 changes or 2 seconds").
public struct BatchDestination: Sendable, Hashable {
    /// The list or stream the batch goes to.
    public var queue: String
    public var sink: SinkKind
    /// With a stream sink: `MAXLEN ~`.
    public var streamMaxLength: Int?
    public var channel: String
    /// The group's JSON object: `{"event.table":"parcels","event.op":"INSERT"}` (`{}` without `group_by`).
    public var group: String
    public var spec: BatchSpec

    public init(queue: String, sink: SinkKind, streamMaxLength: Int?, channel: String, group: String, spec: BatchSpec) {
        self.queue = queue
        self.sink = sink
        self.streamMaxLength = streamMaxLength
        self.channel = channel
        self.group = group
        self.spec = spec
    }
}
