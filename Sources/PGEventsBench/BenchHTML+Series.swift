import Foundation

/// Plots of a result's `series` (a soak's samples): one small SVG chart per figure, elapsed seconds on the x axis,
/// the figure on the y axis from 0, drawn the way the latency plot is (inline SVG, no scripts).
extension BenchHTML {
    /// The figures plotted first, in this order, with their titles and units; any other figure follows by name.
    static let seriesFigures: [(key: String, title: String, scale: Double)] = [
        ("journal_rows", "journal rows", 1),
        ("journal_bytes", "journal size (MB)", 1_048_576),
        ("redis_used_memory_bytes", "Redis used_memory (MB)", 1_048_576),
        ("redis_keys", "Redis keys (DBSIZE)", 1),
        ("rss_mb", "resident size of the bench process (MB)", 1),
        ("backlog", "backlog (committed, not delivered)", 1),
        ("delivered", "delivered", 1),
        ("dead_lettered", "dead-lettered", 1),
        ("duplicated", "duplicated", 1),
    ]

    /// One chart per figure of `result.series`.
    static func seriesPlots(_ result: BenchResult) -> String {
        let points = (result.series ?? []).sorted { $0.elapsedSeconds < $1.elapsedSeconds }
        let keys = Set(points.flatMap(\.values.keys))
        let known = seriesFigures.filter { keys.contains($0.key) }
        let others = keys.subtracting(known.map(\.key)).sorted().map { (key: $0, title: $0, scale: 1.0) }
        var html = "<div class=\"series\">\n"
        for (index, figure) in (known + others).enumerated() {
            let values = points.compactMap { point in point.values[figure.key].map { (point.elapsedSeconds, $0 / figure.scale) } }
            html += seriesPlot(values, title: figure.title, color: palette[index % palette.count]) + "\n"
        }
        return html + "</div>"
    }

    /// A line chart of `(seconds, value)` pairs titled `title`.
    static func seriesPlot(_ values: [(Double, Double)], title: String, color: String) -> String {
        let width = 380.0
        let height = 220.0
        let left = 64.0
        let right = 16.0
        let top = 28.0
        let bottom = 40.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let finite = values.filter { $0.0.isFinite && $0.1.isFinite }
        let xTicks = niceTicks(upTo: max(finite.map(\.0).max() ?? 0, 1))
        let yTicks = niceTicks(upTo: max(finite.map(\.1).max() ?? 0, 0))
        let xMax = xTicks.last ?? 1
        let yMax = yTicks.last ?? 1
        func x(_ value: Double) -> Double { left + min(max(value, 0), xMax) / xMax * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - min(max(value, 0), yMax) / yMax * plotHeight }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        svg += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title)) over time\">\n"
        svg += "<text x=\"\(number(left))\" y=\"16\">\(escape(title))</text>\n"
        for value in xTicks {
            svg +=
                "<line class=\"grid\" x1=\"\(number(x(value)))\" y1=\"\(number(top))\" x2=\"\(number(x(value)))\" y2=\"\(number(top + plotHeight))\"/>\n"
            svg +=
                "<text x=\"\(number(x(value)))\" y=\"\(number(top + plotHeight + 16))\" text-anchor=\"middle\">\(escape(tickLabel(value)))</text>\n"
        }
        for value in yTicks {
            svg +=
                "<line class=\"grid\" x1=\"\(number(left))\" y1=\"\(number(y(value)))\" x2=\"\(number(left + plotWidth))\" y2=\"\(number(y(value)))\"/>\n"
            svg +=
                "<text x=\"\(number(left - 6))\" y=\"\(number(y(value)))\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(BenchComparison.figure(value)))</text>\n"
        }
        svg +=
            "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(top + plotHeight))\" x2=\"\(number(left + plotWidth))\" y2=\"\(number(top + plotHeight))\"/>\n"
        svg +=
            "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(top + plotHeight))\"/>\n"
        svg += "<text x=\"\(number(left + plotWidth / 2))\" y=\"\(number(height - 4))\" text-anchor=\"middle\">seconds</text>\n"
        let coordinates = finite.map { "\(number(x($0.0))),\(number(y($0.1)))" }
        svg +=
            "<polyline class=\"series\" fill=\"none\" stroke-width=\"2\" stroke=\"\(color)\" points=\"\(coordinates.joined(separator: " "))\">"
        svg += "<title>\(escape(title))</title></polyline>\n"
        if coordinates.count == 1, let only = finite.first {
            svg += "<circle cx=\"\(number(x(only.0)))\" cy=\"\(number(y(only.1)))\" r=\"3\" fill=\"\(color)\"/>\n"
        }
        return svg + "</svg>"
    }
}
