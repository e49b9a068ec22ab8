import PGEventsSystem

/// A job to enqueue, written as JSON (or YAML) whose strings may hold placeholders: `{{event.event_id}}`,
/// `{{row.chain_id}}`, `{{meta.channel}}`, `{{event}}` (spaces inside the braces are allowed).
///
/// - A string that is exactly one placeholder takes the field's value with its type: a number stays a number, an
///   object stays an object; a missing field becomes `null`.
/// - Placeholders inside a longer string are replaced by the field's text: a string as it is (no quotes), a
///   number, boolean, array or object as its JSON text, null or a missing field as nothing.
/// - Keys are never templates; `{{` always opens a placeholder in a value (there is no escape).
public indirect enum JobTemplate: Sendable, Hashable {
    /// A value without placeholders.
    case literal(EventValue)
    /// A string that is exactly one placeholder: the field's value, typed.
    case field(FieldPath)
    /// A string with placeholders among other text.
    case text([Segment])
    case array([JobTemplate])
    case object([Member])

    public enum Segment: Sendable, Hashable {
        case text(String)
        case field(FieldPath)
    }

    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JobTemplate

        public init(key: String, value: JobTemplate) {
            self.key = key
            self.value = value
        }
    }

    /// A malformed placeholder: `'{{' is not closed with '}}' in "id-{{event.id"`.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The template of `value`: the placeholders of every string in it (keys excepted) are read.
    public init(_ value: EventValue) throws(Invalid) {
        switch value {
        case .string(let string):
            self = try Self.parse(string)
        case .array(let elements):
            var templates: [JobTemplate] = []
            for element in elements { templates.append(try JobTemplate(element)) }
            self = Self.collapsed(.array(templates))
        case .object(let object):
            var members: [Member] = []
            for (key, member) in object { members.append(Member(key: key, value: try JobTemplate(member))) }
            self = Self.collapsed(.object(members))
        default:
            self = .literal(value)
        }
    }

    /// The template of one string.
    public static func parse(_ string: String) throws(Invalid) -> JobTemplate {
        var segments: [Segment] = []
        var rest = Substring(string)
        while let open = rest.firstRange(of: "{{") {
            if open.lowerBound > rest.startIndex { segments.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
                throw Invalid(message: "'{{' is not closed with '}}' in \"\(TextExcerpt.excerpt(string, limit: 80))\"")
            }
            let inner = rest[open.upperBound..<close.lowerBound].trimmingWhitespace
            guard !inner.isEmpty else {
                throw Invalid(
                    message:
                        "an empty placeholder in \"\(TextExcerpt.excerpt(string, limit: 80))\" (write {{event.field}}, {{row.column}} or {{meta.channel}})"
                )
            }
            do {
                segments.append(.field(try FieldPath(validating: String(inner))))
            } catch {
                throw Invalid(message: "\(error.message), in the placeholder {{\(TextExcerpt.excerpt(String(inner), limit: 80))}}")
            }
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { segments.append(.text(String(rest))) }
        switch segments.count {
        case 0:
            return .literal(.string(""))
        case 1:
            switch segments[0] {
            case .field(let path): return .field(path)
            case .text(let text): return .literal(.string(text))
            }
        default:
            return .text(segments)
        }
    }

    /// The template with its placeholders replaced by `context`'s values; missing fields go to `report`.
    public func render(_ context: EvaluationContext, report: (EvaluationDiagnostic) -> Void = { _ in }) -> EventValue {
        switch self {
        case .literal(let value):
            return value
        case .field(let path):
            return Self.lookUp(path, in: context, typed: true, report: report) ?? .null
        case .text(let segments):
            var text = ""
            for segment in segments {
                switch segment {
                case .text(let piece): text += piece
                case .field(let path): text += Self.lookUp(path, in: context, typed: false, report: report)?.interpolationText ?? ""
                }
            }
            return .string(text)
        case .array(let templates):
            return .array(templates.map { $0.render(context, report: report) })
        case .object(let members):
            return .object(EventObject(members.map { ($0.key, $0.value.render(context, report: report)) }))
        }
    }

    /// Every field path the template reads.
    public var fieldPaths: [FieldPath] {
        switch self {
        case .literal: []
        case .field(let path): [path]
        case .text(let segments):
            segments.compactMap {
                if case .field(let path) = $0 { return path }
                return nil
            }
        case .array(let templates): templates.flatMap(\.fieldPaths)
        case .object(let members): members.flatMap(\.value.fieldPaths)
        }
    }

    private static func lookUp(_ path: FieldPath, in context: EvaluationContext, typed: Bool, report: (EvaluationDiagnostic) -> Void)
        -> EventValue?
    {
        let value = context.value(at: path)
        if value == nil {
            report(
                EvaluationDiagnostic(
                    kind: .missingField, path: path,
                    message: "\(path) is missing (the job's placeholder {{\(path)}} \(typed ? "becomes null" : "is left empty"))"))
        }
        return value
    }

    /// An array or object whose members are all literals, as one literal.
    private static func collapsed(_ template: JobTemplate) -> JobTemplate {
        switch template {
        case .array(let templates):
            var values: [EventValue] = []
            for case .literal(let value) in templates { values.append(value) }
            return values.count == templates.count ? .literal(.array(values)) : template
        case .object(let members):
            var values: [(String, EventValue)] = []
            for member in members {
                guard case .literal(let value) = member.value else { return template }
                values.append((member.key, value))
            }
            return .literal(.object(EventObject(values)))
        default:
            return template
        }
    }
}

extension Substring {
    fileprivate var trimmingWhitespace: Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}
